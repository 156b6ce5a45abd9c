package wire

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The duplicate-entry text a client reads names the key of the error it
// got, not one an earlier INSERT IGNORE or upsert ran into and swallowed.
func TestDuplicateMessageBelongsToItsError(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE t (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE u (id INT PRIMARY KEY, v INT)",
		"INSERT INTO t VALUES (1, 1)",
		"INSERT INTO u VALUES (1, 7), (2, 7)")
	c := clientConn(t, db)
	ctx := context.Background()

	mustExec(t, c, "INSERT IGNORE INTO t VALUES (1, 2)")
	_, err := c.ExecContext(ctx, "ALTER TABLE u ADD UNIQUE KEY uv (v)")
	me := requireMySQLError(t, err, 1062, "23000")
	if me.Message != "Duplicate entry '7' for key 'u.uv'" {
		t.Fatalf("after INSERT IGNORE: %q", me.Message)
	}

	mustExec(t, c, "INSERT INTO t VALUES (1, 3) ON DUPLICATE KEY UPDATE v = 3")
	_, err = c.ExecContext(ctx, "ALTER TABLE u ADD UNIQUE KEY uv (v)")
	me = requireMySQLError(t, err, 1062, "23000")
	if me.Message != "Duplicate entry '7' for key 'u.uv'" {
		t.Fatalf("after an upsert: %q", me.Message)
	}

	// The statement's own duplicate still gets MySQL's text.
	_, err = c.ExecContext(ctx, "INSERT INTO t VALUES (1, 4)")
	me = requireMySQLError(t, err, 1062, "23000")
	if me.Message != "Duplicate entry '1' for key 't.PRIMARY'" {
		t.Fatalf("own duplicate: %q", me.Message)
	}
}

// ddlErrorSchema is what the DDL and DML mistakes below run against.
const ddlErrorSchema = `
CREATE TABLE p (id INT PRIMARY KEY, name VARCHAR(10) NOT NULL, n INT, tiny TINYINT, b BLOB, KEY kn (n), CONSTRAINT chk_n CHECK (n >= 0));
CREATE TABLE c (id INT PRIMARY KEY, pid INT, KEY kp (pid), CONSTRAINT fk_p FOREIGN KEY (pid) REFERENCES p (id));
CREATE TABLE nokey (a INT, b INT);
CREATE TABLE one (a INT);
INSERT INTO p VALUES (1, 'one', 7, 1, NULL);
INSERT INTO c VALUES (1, 1);
`

// ddlErrors are MySQL 8's answers (code, SQLSTATE and text) to DDL and DML
// mistakes that clients and migration tools branch on.
var ddlErrors = []badInput{
	{"drop unknown column", "ALTER TABLE p DROP COLUMN nosuch", 1091, "42000", "Can't DROP 'nosuch'; check that column/key exists"},
	{"drop unknown index", "ALTER TABLE p DROP INDEX nosuch", 1091, "42000", "Can't DROP 'nosuch'; check that column/key exists"},
	{"drop index on", "DROP INDEX nosuch ON p", 1091, "42000", "Can't DROP 'nosuch'; check that column/key exists"},
	{"drop unknown foreign key", "ALTER TABLE c DROP FOREIGN KEY nosuch", 1091, "42000", "Can't DROP 'nosuch'; check that column/key exists"},
	{"drop missing primary key", "ALTER TABLE nokey DROP PRIMARY KEY", 1091, "42000", "Can't DROP 'PRIMARY'; check that column/key exists"},
	{"drop unknown check", "ALTER TABLE p DROP CHECK nosuch", 3821, "HY000", "Check constraint 'nosuch' is not found in the table."},
	{"drop unknown constraint", "ALTER TABLE p DROP CONSTRAINT nosuch", 3940, "HY000", "Constraint 'nosuch' does not exist."},
	{"modify unknown column", "ALTER TABLE p MODIFY nosuch INT", 1054, "42S22", "Unknown column 'nosuch' in 'p'"},
	{"change unknown column", "ALTER TABLE p CHANGE nosuch x INT", 1054, "42S22", "Unknown column 'nosuch' in 'p'"},
	{"rename unknown column", "ALTER TABLE p RENAME COLUMN nosuch TO x", 1054, "42S22", "Unknown column 'nosuch' in 'p'"},
	{"rename unknown index", "ALTER TABLE p RENAME INDEX nosuch TO x", 1176, "42000", "Key 'nosuch' doesn't exist in table 'p'"},
	{"index on unknown column", "CREATE INDEX k ON p (nosuch)", 1072, "42000", "Key column 'nosuch' doesn't exist in table"},
	{"add existing column", "ALTER TABLE p ADD COLUMN name INT", 1060, "42S21", "Duplicate column name 'name'"},
	{"create with duplicate column", "CREATE TABLE x (a INT, a INT)", 1060, "42S21", "Duplicate column name 'a'"},
	{"duplicate key name", "CREATE INDEX kn ON p (tiny)", 1061, "42000", "Duplicate key name 'kn'"},
	{"second primary key", "ALTER TABLE p ADD PRIMARY KEY (n)", 1068, "42000", "Multiple primary key defined"},
	{"foreign key to unknown column", "CREATE TABLE x (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_x FOREIGN KEY (pid) REFERENCES p (nosuch))", 3734, "HY000",
		"Failed to add the foreign key constraint. Missing column 'nosuch' for constraint 'fk_x' in the referenced table 'p'"},
	{"foreign key from unknown column", "CREATE TABLE x (id INT PRIMARY KEY, CONSTRAINT fk_x FOREIGN KEY (nosuch) REFERENCES p (id))", 1072, "42000",
		"Key column 'nosuch' doesn't exist in table"},
	{"foreign key without parent index", "CREATE TABLE x (id INT PRIMARY KEY, pn VARCHAR(10), CONSTRAINT fk_x FOREIGN KEY (pn) REFERENCES p (name))", 1822, "HY000",
		"Failed to add the foreign key constraint. Missing index for constraint 'fk_x' in the referenced table 'p'"},
	{"foreign key to unknown table", "CREATE TABLE x (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_x FOREIGN KEY (pid) REFERENCES nosuch (id))", 1824, "HY000",
		"Failed to open the referenced table 'nosuch'"},
	{"foreign key of other type", "CREATE TABLE x (id INT PRIMARY KEY, pn VARCHAR(10), CONSTRAINT fk_x FOREIGN KEY (pn) REFERENCES p (id))", 3780, "HY000",
		"Referencing column 'pn' and referenced column 'id' in foreign key constraint 'fk_x' are incompatible."},
	{"duplicate foreign key name", "CREATE TABLE x (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_p FOREIGN KEY (pid) REFERENCES p (id))", 1826, "HY000",
		"Duplicate foreign key constraint name 'fk_p'"},
	{"drop index needed by a foreign key", "DROP INDEX kp ON c", 1553, "HY000", "Cannot drop index 'kp': needed in a foreign key constraint"},
	{"drop referenced table", "DROP TABLE p", 3730, "HY000", "Cannot drop table 'p' referenced by a foreign key constraint 'fk_p' on table 'c'."},
	{"foreign key over existing rows", "ALTER TABLE p ADD CONSTRAINT fk_self FOREIGN KEY (n) REFERENCES c (id)", 1452, "23000", ""},
	{"invalid default", "CREATE TABLE x (a INT DEFAULT 'abc')", 1067, "42000", "Invalid default value for 'a'"},
	{"default too long", "CREATE TABLE x (a VARCHAR(2) DEFAULT 'abc')", 1067, "42000", "Invalid default value for 'a'"},
	{"table name too long", "CREATE TABLE " + strings.Repeat("x", 65) + " (a INT)", 1059, "42000", "Identifier name '" + strings.Repeat("x", 65) + "' is too long"},
	{"column name too long", "CREATE TABLE x (" + strings.Repeat("y", 65) + " INT)", 1059, "42000", "Identifier name '" + strings.Repeat("y", 65) + "' is too long"},
	{"blob key without length", "CREATE TABLE x (id INT PRIMARY KEY, b BLOB, KEY kb (b))", 1170, "42000", "BLOB/TEXT column 'b' used in key specification without a key length"},
	{"auto increment not a key", "CREATE TABLE x (a INT AUTO_INCREMENT, b INT)", 1075, "42000",
		"Incorrect table definition; there can be only one auto column and it must be defined as a key"},
	{"varchar too long", "CREATE TABLE x (a VARCHAR(70000))", 1074, "42000", "Column length too big for column 'a' (max = 16383); use BLOB or TEXT instead"},
	{"drop every column", "ALTER TABLE one DROP COLUMN a", 1090, "42000", "You can't delete all columns with ALTER TABLE; use DROP TABLE instead"},
	{"create existing table", "CREATE TABLE p (a INT)", 1050, "42S01", "Table 'p' already exists"},
	{"rename onto existing table", "RENAME TABLE p TO c", 1050, "42S01", "Table 'c' already exists"},
	{"create existing view name", "CREATE VIEW p AS SELECT 1", 1050, "42S01", "Table 'p' already exists"},
	{"alter unknown table", "ALTER TABLE nosuch ADD COLUMN x INT", 1146, "42S02", "Table 'd.nosuch' doesn't exist"},
	{"truncate unknown table", "TRUNCATE TABLE nosuch", 1146, "42S02", "Table 'd.nosuch' doesn't exist"},
	{"rename unknown table", "RENAME TABLE nosuch TO y", 1146, "42S02", "Table 'd.nosuch' doesn't exist"},
	{"drop unknown table", "DROP TABLE nosuch", 1051, "42S02", "Unknown table 'd.nosuch'"},
	{"drop unknown view", "DROP VIEW nosuch", 1051, "42S02", "Unknown table 'd.nosuch'"},
	{"create existing database", "CREATE DATABASE d", 1007, "HY000", "Can't create database 'd'; database exists"},
	{"drop unknown database", "DROP DATABASE nosuch", 1008, "HY000", "Can't drop database 'nosuch'; database doesn't exist"},
	{"table in unknown database", "CREATE TABLE nosuch.x (a INT)", 1049, "42000", "Unknown database 'nosuch'"},
	{"unknown column in where", "SELECT id FROM p WHERE nosuch = 1", 1054, "42S22", "Unknown column 'nosuch' in 'where clause'"},
	{"unknown column in order", "SELECT id FROM p ORDER BY nosuch", 1054, "42S22", "Unknown column 'nosuch' in 'order clause'"},
	{"unknown column in insert", "INSERT INTO p (id, nosuch) VALUES (5, 1)", 1054, "42S22", "Unknown column 'nosuch' in 'field list'"},
	{"column specified twice", "INSERT INTO p (id, id) VALUES (5, 5)", 1110, "42000", "Column 'id' specified twice"},
	{"NULL into NOT NULL", "INSERT INTO p (id, name) VALUES (5, NULL)", 1048, "23000", "Column 'name' cannot be null"},
	{"wrong value count", "INSERT INTO p VALUES (5)", 1136, "21S01", "Column count doesn't match value count at row 1"},
	{"check violated", "INSERT INTO p (id, name, n) VALUES (5, 'x', -1)", 3819, "HY000", "Check constraint 'chk_n' is violated."},
	{"child without parent", "INSERT INTO c VALUES (2, 99)", 1452, "23000",
		"Cannot add or update a child row: a foreign key constraint fails (`d`.`c`, CONSTRAINT `fk_p` FOREIGN KEY (`pid`) REFERENCES `p` (`id`))"},
	{"parent with child", "DELETE FROM p WHERE id = 1", 1451, "23000",
		"Cannot delete or update a parent row: a foreign key constraint fails (`d`.`c`, CONSTRAINT `fk_p` FOREIGN KEY (`pid`) REFERENCES `p` (`id`))"},
	{"string too long", "INSERT INTO p (id, name) VALUES (5, 'abcdefghijk')", 1406, "22001", "Data too long for column 'name' at row 1"},
	{"tinyint out of range", "INSERT INTO p (id, name, tiny) VALUES (5, 'x', 300)", 1264, "22003", ""},
}

// Each DDL or DML mistake gets MySQL 8's code, SQLSTATE and text, and
// changes nothing.
func TestDDLAndDMLErrorCodes(t *testing.T) {
	srv, db := startWithDB(t, "d", ddlErrorSchema)
	ctx := context.Background()
	schema := func() string {
		var out []string
		for _, tbl := range []string{"p", "c", "nokey", "one"} {
			var name, def string
			require.NoError(t, db.QueryRowContext(ctx, "SHOW CREATE TABLE "+tbl).Scan(&name, &def))
			out = append(out, def)
		}
		return strings.Join(out, "\n")
	}
	before := schema()
	for _, tc := range ddlErrors {
		t.Run(tc.name, func(t *testing.T) {
			c := soloConn(t, srv, "d")
			_, err := c.ExecContext(ctx, tc.query)
			// A statement wrongly accepted must not make the next one
			// fail for another reason.
			defer func() {
				mustExec(t, db, "DROP TABLE IF EXISTS x")
				require.Equal(t, before, schema(), "after %s", tc.query)
			}()
			me := requireMySQLError(t, err, tc.num, tc.state, tc.query)
			if tc.msg != "" {
				require.Equal(t, tc.msg, me.Message, tc.query)
			}
		})
	}
	require.EqualValues(t, 0, queryInt(t, db, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'd' AND table_name = 'x'"))
	require.EqualValues(t, 1, queryInt(t, db, "SELECT COUNT(*) FROM p"))
	require.EqualValues(t, 1, queryInt(t, db, "SELECT COUNT(*) FROM c"))
}
