package wire

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every kind of statement works with fully qualified names and no current
// database, and with another database current that holds tables of the
// same names (which must stay untouched). A DELETE without WHERE was
// turned into the engine's TRUNCATE, which looked its table up in the
// current database: with none it failed with 1049 "database not found: ",
// and with another one it checked that database's foreign keys and
// triggers, so it emptied a parent table its children still referenced.
func TestQualifiedNamesWithoutCurrentDatabase(t *testing.T) {
	for _, current := range []string{"", "o"} {
		t.Run("current="+current, func(t *testing.T) {
			srv, root := startNode(t)
			for _, q := range []string{
				"CREATE DATABASE o",
				"CREATE TABLE o.t (id INT PRIMARY KEY, v INT)",
				"CREATE TABLE o.c (id INT PRIMARY KEY)",
				"INSERT INTO o.t VALUES (100, 100)",
				"INSERT INTO o.c VALUES (100)",
			} {
				mustExec(t, root, q)
			}
			c := soloConn(t, srv, current)
			ctx := context.Background()
			affected := func(q string) int64 {
				t.Helper()
				res, err := c.ExecContext(ctx, q)
				require.NoError(t, err, q)
				n, err := res.RowsAffected()
				require.NoError(t, err)
				return n
			}
			count := func(table string) int64 {
				t.Helper()
				return queryInt(t, c, "SELECT COUNT(*) FROM "+table)
			}
			for _, q := range []string{
				"CREATE DATABASE d",
				"CREATE TABLE d.t (id INT PRIMARY KEY, v INT)",
				"CREATE TABLE d.c (id INT PRIMARY KEY, pid INT, KEY kp (pid), CONSTRAINT fk_c FOREIGN KEY (pid) REFERENCES d.t (id))",
				"CREATE TABLE d.log (n INT)",
				"CREATE INDEX kv ON d.t (v)",
				"ALTER TABLE d.t ADD COLUMN w INT",
				"CREATE VIEW d.vt AS SELECT id, v FROM d.t",
				"CREATE TRIGGER d.td AFTER DELETE ON d.t FOR EACH ROW INSERT INTO d.log VALUES (OLD.id)",
			} {
				mustExec(t, c, q)
			}
			require.EqualValues(t, 3, affected("INSERT INTO d.t (id, v) VALUES (1, 1), (2, 2), (3, 3)"))
			require.EqualValues(t, 2, affected("REPLACE INTO d.t (id, v) VALUES (3, 30)"))
			require.EqualValues(t, 1, affected("INSERT INTO d.c SELECT id, id FROM d.t WHERE id = 1"))
			require.EqualValues(t, 1, affected("UPDATE d.t SET w = v WHERE id = 2"))
			require.EqualValues(t, 3, affected("UPDATE d.t SET w = 0"))
			require.EqualValues(t, 1, affected("UPDATE d.t JOIN d.c ON d.c.pid = d.t.id SET d.t.w = 9"))
			if current != "" {
				// With no current database the engine cannot expand a
				// view (README).
				require.EqualValues(t, 3, count("d.vt"))
			} else {
				_, err := c.ExecContext(ctx, "SELECT * FROM d.vt")
				requireMySQLError(t, err, 1046, "3D000")
			}
			require.EqualValues(t, 9, queryInt(t, c, "SELECT w FROM d.t WHERE id = 1"))
			var name, def string
			require.NoError(t, c.QueryRowContext(ctx, "SHOW CREATE TABLE d.t").Scan(&name, &def))
			require.Equal(t, "t", name)
			rows, err := c.QueryContext(ctx, "SHOW INDEX FROM d.t")
			require.NoError(t, err)
			require.NoError(t, rows.Close())

			// The parent still has a child: both forms of DELETE without
			// WHERE fail as MySQL's do, and change nothing.
			for _, q := range []string{"DELETE FROM d.t", "DELETE d.t FROM d.t"} {
				_, err := c.ExecContext(ctx, q)
				me := requireMySQLError(t, err, 1451, "23000", q)
				require.Equal(t, "Cannot delete or update a parent row: a foreign key constraint fails (`d`.`c`, CONSTRAINT `fk_c` FOREIGN KEY (`pid`) REFERENCES `t` (`id`))", me.Message, q)
				require.EqualValues(t, 3, count("d.t"), q)
			}
			_, err = c.ExecContext(ctx, "DROP TABLE d.t")
			me := requireMySQLError(t, err, 3730, "HY000", "DROP TABLE d.t")
			require.Equal(t, "Cannot drop table 't' referenced by a foreign key constraint 'fk_c' on table 'c'.", me.Message)

			require.EqualValues(t, 1, affected("DELETE FROM d.c"))
			require.EqualValues(t, 1, affected("DELETE FROM d.t WHERE id = 3"))
			require.EqualValues(t, 2, affected("DELETE d.t FROM d.t"))
			// The trigger ran for every row, as for any DELETE.
			require.EqualValues(t, 3, count("d.log"))
			require.EqualValues(t, 3, affected("INSERT INTO d.t (id, v) VALUES (1, 1), (2, 2), (3, 3)"))
			require.EqualValues(t, 3, affected("DELETE FROM d.t"))
			require.EqualValues(t, 6, count("d.log"))
			mustExec(t, c, "INSERT INTO d.t (id, v) VALUES (1, 1)")
			// A table a foreign key references is not truncated, even
			// with no child rows.
			_, err = c.ExecContext(ctx, "TRUNCATE TABLE d.t")
			me = requireMySQLError(t, err, 1701, "42000", "TRUNCATE TABLE d.t")
			require.Equal(t, "Cannot truncate a table referenced in a foreign key constraint (`d`.`c`, CONSTRAINT `fk_c`)", me.Message)
			mustExec(t, c, "DROP TABLE d.c")
			mustExec(t, c, "TRUNCATE TABLE d.t")
			require.EqualValues(t, 0, count("d.t"))
			mustExec(t, c, "INSERT INTO d.t (id, v) VALUES (1, 1)")
			mustExec(t, c, "DROP TRIGGER d.td")
			// d.t's row 1 and the two rows d.log holds for it.
			mustExec(t, c, "DELETE d.t, d.log FROM d.t JOIN d.log ON d.log.n = d.t.id WHERE d.t.id = 1")
			require.EqualValues(t, 0, count("d.t"))
			require.EqualValues(t, 4, count("d.log"))

			// RENAME TABLE and ALTER TABLE ... RENAME TO act in the
			// current database whatever their names say (README).
			for _, q := range []string{
				"DROP INDEX kv ON d.t",
				"DROP VIEW d.vt",
				"DROP TABLE d.t, d.log",
				"DROP DATABASE d",
			} {
				mustExec(t, c, q)
			}

			// The other database's tables of the same names were not touched.
			require.EqualValues(t, 100, queryInt(t, root, "SELECT SUM(id) + 0 FROM o.t"))
			require.EqualValues(t, 1, queryInt(t, root, "SELECT COUNT(*) FROM o.c"))
			var cur sql.NullString
			require.NoError(t, c.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&cur))
			require.Equal(t, current, cur.String, fmt.Sprintf("current database after the statements: %v", cur))
		})
	}
}
