package sqlfront

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"
)

// TestAllTypesStoreAndIndex stores a row of every column type through SQL,
// reads it back after reopening the provider (so it comes from disk and the
// stored catalog), and looks each indexable column up through an index.
func TestAllTypesStoreAndIndex(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	cols := []struct{ name, typ, val string }{
		{"ti", "TINYINT", "-7"},
		{"tu", "TINYINT UNSIGNED", "250"},
		{"si", "SMALLINT", "-300"},
		{"mi", "MEDIUMINT", "70000"},
		{"bi", "BIGINT UNSIGNED", "18446744073709551615"},
		{"fl", "FLOAT", "1.5"},
		{"db", "DOUBLE", "-2.25"},
		{"de", "DECIMAL(12,4)", "12.3400"},
		{"ch", "CHAR(5)", "'ab'"},
		{"vc", "VARCHAR(20) COLLATE utf8mb3_general_ci", "'MiXeD'"},
		{"bn", "BINARY(3)", "'xy'"},
		{"vb", "VARBINARY(10)", "0x00FF10"},
		{"tx", "TEXT", "'long text'"},
		{"bl", "BLOB", "0xCAFE"},
		{"dt", "DATE", "'2024-02-29'"},
		{"dtm", "DATETIME(6)", "'2024-02-29 13:14:15.123456'"},
		{"ts", "TIMESTAMP", "'2024-02-29 13:14:15'"},
		{"tm", "TIME", "'-12:34:56'"},
		{"yr", "YEAR", "2024"},
		{"en", "ENUM('x','y','z')", "'y'"},
		{"st", "SET('a','b','c')", "'a,c'"},
		{"bt", "BIT(8)", "b'101'"},
		{"js", "JSON", `'{"k": [1, "two", null]}'`},
		{"pt", "POINT", "POINT(1, 2)"},
	}
	ddl := "CREATE TABLE t (id INT PRIMARY KEY"
	ins, vals := "INSERT INTO t (id", "VALUES (1"
	for _, c := range cols {
		ddl += fmt.Sprintf(", %s %s", c.name, c.typ)
		ins += ", " + c.name
		vals += ", " + c.val
	}
	db.query(ddl + ")")
	db.query(ins + ") " + vals + ")")
	before := db.query("SELECT * FROM t")
	require.Len(t, before, 1)

	// Reopen: a fresh provider over the same store reads the row from disk.
	db2 := db.reopen()
	after := db2.query("SELECT * FROM t")
	require.Equal(t, len(before[0]), len(after[0]))
	for i := range before[0] {
		require.Equal(t, fmt.Sprint(before[0][i]), fmt.Sprint(after[0][i]), "column %d", i)
	}

	for _, c := range cols {
		if c.name == "js" || c.name == "pt" || c.name == "tx" || c.name == "bl" {
			continue // not indexable without a prefix or expression
		}
		db2.query(fmt.Sprintf("CREATE INDEX i_%s ON t (%s)", c.name, c.name))
		q := fmt.Sprintf("SELECT id FROM t WHERE %s = %s", c.name, c.val)
		require.Contains(t, db2.plan(q), "IndexedTableAccess", q)
		require.Equal(t, []sql.Row{{int32(1)}}, db2.query(q), q)
	}
	require.Equal(t, []sql.Row{{int32(1)}}, db2.query("SELECT id FROM t WHERE vc = 'mixed'"), "case-insensitive lookup")
}

// TestCommitIsDurable: every autocommit statement that writes is flushed to
// disk before its OK, one fsync at least per sequential commit.
func TestCommitIsDurable(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY)")
	before := db.eng.Stats().Fsyncs
	for i := 0; i < 20; i++ {
		db.query(fmt.Sprintf("INSERT INTO t VALUES (%d)", i))
	}
	require.GreaterOrEqual(t, db.eng.Stats().Fsyncs-before, uint64(20))
	// A read-only statement does not flush.
	before = db.eng.Stats().Fsyncs
	db.query("SELECT COUNT(*) FROM t")
	require.Equal(t, before, db.eng.Stats().Fsyncs)
}

// TestSchemaDetailsSurviveReload: details OpenStack's migrations depend on,
// checked through SHOW CREATE TABLE after the catalog is reloaded.
func TestSchemaDetailsSurviveReload(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE p (id INT PRIMARY KEY)")
	db.query("CREATE TABLE c (id INT PRIMARY KEY, pid INT, k ENUM('ssh','x509') NOT NULL DEFAULT 'ssh', a BOOL, b BOOL, " +
		"CONSTRAINT c_pid_fkey FOREIGN KEY (pid) REFERENCES p (id), CHECK (a IN (0, 1)), CHECK (b IN (0, 1)))")
	// An explicit index replaces the one made for the foreign key.
	db.query("CREATE INDEX c_pid_fkey ON c (pid)")
	db.query("CREATE TABLE e (id INT PRIMARY KEY, v VARCHAR(20)) CHARSET=utf8")
	db.query("INSERT INTO e VALUES (1, 'a')")
	db.query("ALTER TABLE e CONVERT TO CHARACTER SET utf8 COLLATE utf8_bin")

	db2 := db.reopen()
	show := db2.query("SHOW CREATE TABLE c")[0][1].(string)
	require.Contains(t, show, "DEFAULT 'ssh'")
	require.Contains(t, show, "CONSTRAINT `c_chk_1` CHECK")
	require.Contains(t, show, "CONSTRAINT `c_chk_2` CHECK")
	require.Equal(t, 1, strings.Count(show, "KEY `c_pid_fkey` (`pid`)"), show)
	require.Equal(t, []sql.Row{{int64(0)}}, db2.query("SELECT COUNT(*) FROM e WHERE v = 'A'"), "utf8_bin is case-sensitive")
	require.Equal(t, []sql.Row{{int64(1)}}, db2.query("SELECT COUNT(*) FROM e WHERE v = 'a'"))
}
