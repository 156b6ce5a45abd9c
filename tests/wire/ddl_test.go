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
