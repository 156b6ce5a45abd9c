package wire

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFailedRebuildReleasesTableLock: ALTER TABLE ... ADD PRIMARY KEY over a
// NULL fails, and the table's metadata lock goes with the statement: other
// sessions write the table at once instead of timing out with 1205.
func TestFailedRebuildReleasesTableLock(t *testing.T) {
	srv, db := startWithDB(t, "ddl", "CREATE TABLE k (a INT, b INT)", "INSERT INTO k VALUES (NULL, 1), (2, 2)")
	alter := soloConn(t, srv, "ddl")
	_, err := alter.ExecContext(context.Background(), "ALTER TABLE k ADD PRIMARY KEY (a)")
	require.Error(t, err)

	w := soloConn(t, srv, "ddl")
	mustExec(t, w, "SET SESSION innodb_lock_wait_timeout = 1")
	mustExec(t, w, "INSERT INTO k VALUES (3, 3)")
	mustExec(t, alter, "SET SESSION innodb_lock_wait_timeout = 1")
	mustExec(t, alter, "INSERT INTO k VALUES (4, 4)")
	require.Equal(t, int64(4), queryInt(t, db, "SELECT COUNT(*) FROM k"))
}

// TestDropTableWaitsForWriter: DROP TABLE waits for a transaction that
// wrote the table, as MySQL's metadata locks make it; the writer's commit
// succeeds, then the table goes.
func TestDropTableWaitsForWriter(t *testing.T) {
	srv, _ := startWithDB(t, "ddl", "CREATE TABLE t (id INT PRIMARY KEY)")
	w := soloConn(t, srv, "ddl")
	mustExec(t, w, "START TRANSACTION")
	mustExec(t, w, "INSERT INTO t VALUES (1)")

	d := soloConn(t, srv, "ddl")
	done := execBlocked(t, srv, d, "DROP TABLE t", "DROP TABLE")
	mustExec(t, w, "COMMIT")
	require.NoError(t, outcome(t, done, "DROP TABLE"))
	_, err := w.ExecContext(context.Background(), "SELECT * FROM t")
	requireMySQLError(t, err, 1146, "42S02")
}

// A CREATE TABLE that fails, at whichever of its parts, leaves nothing
// behind, as MySQL 8's atomic DDL does: the same name can be created
// right after, and no key, check or foreign key of it lingers.
func TestFailedCreateTableOfEveryKindLeavesNothing(t *testing.T) {
	srv, _ := startWithDB(t, "d", "CREATE TABLE p (id INT PRIMARY KEY, v INT)")
	c := soloConn(t, srv, "d")
	for _, tc := range []struct {
		create string
		num    uint16
	}{
		{"CREATE TABLE x (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_x FOREIGN KEY (pid) REFERENCES nosuch (id))", 1824},
		{"CREATE TABLE x (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_x FOREIGN KEY (pid) REFERENCES p (nosuch))", 3734},
		{"CREATE TABLE x (id INT PRIMARY KEY, v INT, CONSTRAINT fk_x FOREIGN KEY (v) REFERENCES p (id), CONSTRAINT fk_x FOREIGN KEY (id) REFERENCES p (id))", 1826},
		{"CREATE TABLE x (id INT PRIMARY KEY, v INT, CONSTRAINT ck CHECK (v > 0), CONSTRAINT ck CHECK (v > 1))", 3822},
		{"CREATE TABLE x (id INT PRIMARY KEY, v INT, CHECK (nosuch > 0))", 1054},
		{"CREATE TABLE x (id INT PRIMARY KEY, v INT, KEY k (v), KEY k (id))", 1061},
		{"CREATE TABLE x (id INT PRIMARY KEY, v INT, KEY k (nosuch))", 1072},
		{"CREATE TABLE x (id INT PRIMARY KEY, v VARCHAR(1000), KEY k (v))", 1071},
		{"CREATE TABLE x (id INT PRIMARY KEY, v INT DEFAULT 'abc')", 1067},
		{"CREATE TABLE x (id INT PRIMARY KEY, v INT, UNIQUE KEY u (v), KEY k (v(3)))", 1089},
	} {
		_, err := c.ExecContext(t.Context(), tc.create)
		me := asMySQL(err)
		require.NotNil(t, me, "%s: %v", tc.create, err)
		require.Equal(t, tc.num, me.Number, "%s: %s", tc.create, me.Message)
		require.Zero(t, queryInt(t, c, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'd' AND table_name = 'x'"), tc.create)
		require.Zero(t, queryInt(t, c, "SELECT COUNT(*) FROM information_schema.table_constraints WHERE table_schema = 'd' AND table_name = 'x'"), tc.create)
		require.Zero(t, queryInt(t, c, "SELECT COUNT(*) FROM information_schema.referential_constraints WHERE constraint_schema = 'd'"), tc.create)
		// The name is free.
		mustExec(t, c, "CREATE TABLE x (id INT PRIMARY KEY)")
		mustExec(t, c, "DROP TABLE x")
	}
}
