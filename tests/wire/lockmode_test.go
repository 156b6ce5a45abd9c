package wire

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// incrementFromSnapshot runs txns transactions on each of n connections,
// each of which first opens its snapshot with a plain SELECT and then runs
// stmt, which must add 1 to c.v of row id: a write that read the row from
// the snapshot instead of under its lock would lose increments.
func incrementFromSnapshot(t *testing.T, db *sql.DB, setup []string, stmt string, id, n, txns int) {
	t.Helper()
	ctx := context.Background()
	conns := make([]*sql.Conn, n)
	for i := range conns {
		conns[i] = clientConn(t, db)
		for _, q := range setup {
			mustExec(t, conns[i], q)
		}
	}
	runClients(t, n, func(cid int) error {
		c := conns[cid]
		for i := 0; i < txns; i++ {
			if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
				return err
			}
			var v int
			if err := c.QueryRowContext(ctx, "SELECT v FROM c WHERE id = ?", id).Scan(&v); err != nil {
				return fmt.Errorf("txn %d SELECT: %w", i, err)
			}
			if _, err := c.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("txn %d %s: %w", i, stmt, err)
			}
			if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
				return fmt.Errorf("txn %d COMMIT: %w", i, err)
			}
		}
		return nil
	})
	require.EqualValues(t, n*txns, queryInt(t, db, "SELECT v FROM c WHERE id = ?", id), stmt)
}

// An UPDATE run through a prepared statement (PREPARE ... FROM, EXECUTE),
// spelled with a leading WITH clause or run by a stored procedure is a
// write like any other: it reads
// its row under an exclusive lock at the newest version, whatever the
// transaction's snapshot holds.
func TestWritesNotSpelledUpdateLockTheirRows(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE c (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO c VALUES (1, 0), (2, 0), (3, 0), (4, 0)",
		"CREATE PROCEDURE bump(IN k INT) BEGIN UPDATE c SET v = v + 1 WHERE id = k; END")
	t.Run("prepared", func(t *testing.T) {
		incrementFromSnapshot(t, db, []string{"PREPARE s FROM 'UPDATE c SET v = v + 1 WHERE id = 1'"},
			"EXECUTE s", 1, 4, 40)
	})
	t.Run("cte", func(t *testing.T) {
		incrementFromSnapshot(t, db, nil, "WITH x AS (SELECT 1) UPDATE c SET v = v + 1 WHERE id = 2", 2, 4, 40)
	})
	t.Run("prepared from variable", func(t *testing.T) {
		incrementFromSnapshot(t, db, []string{
			"SET @q = 'UPDATE c SET v = v + 1 WHERE id = 3'",
			"PREPARE s FROM @q",
		}, "EXECUTE s", 3, 4, 40)
	})
	t.Run("procedure", func(t *testing.T) {
		incrementFromSnapshot(t, db, nil, "CALL bump(4)", 4, 4, 40)
	})
}

// EXECUTE of a prepared SELECT ... FOR UPDATE is a locking read: it sees
// the newest committed row, not the snapshot, and holds the row against
// another session's UPDATE until COMMIT.
func TestExecutePreparedSelectForUpdateLocks(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1)")
	a, b := clientConn(t, db), clientConn(t, db)
	mustExec(t, a, "PREPARE lk FROM 'SELECT v FROM r WHERE id = ? FOR UPDATE'")
	mustExec(t, a, "PREPARE sh FROM 'SELECT v FROM r WHERE id = 1 LOCK IN SHARE MODE'")
	mustExec(t, a, "SET @id = 1")

	mustExec(t, a, "BEGIN")
	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, b, "UPDATE r SET v = 2 WHERE id = 1")
	require.EqualValues(t, 2, queryInt(t, a, "EXECUTE lk USING @id"), "locking read returned the snapshot")

	waits := lockWaits(srv)
	done := execAsync(b, "UPDATE r SET v = 3 WHERE id = 1")
	awaitLockWaits(t, srv, waits+1)
	requirePending(t, done, "UPDATE of a row locked by EXECUTE of SELECT ... FOR UPDATE")
	mustExec(t, a, "COMMIT")
	require.NoError(t, outcome(t, done, "UPDATE after the locking transaction"))
	require.EqualValues(t, 3, queryInt(t, db, "SELECT v FROM r WHERE id = 1"))

	mustExec(t, a, "BEGIN")
	require.EqualValues(t, 3, queryInt(t, a, "EXECUTE sh"))
	waits = lockWaits(srv)
	done = execAsync(b, "UPDATE r SET v = 4 WHERE id = 1")
	awaitLockWaits(t, srv, waits+1)
	requirePending(t, done, "UPDATE of a row locked by EXECUTE of SELECT ... LOCK IN SHARE MODE")
	mustExec(t, a, "COMMIT")
	require.NoError(t, outcome(t, done, "UPDATE after the shared-locking transaction"))
}

// A locking SELECT inside another statement (SET, DO, INSERT ... SELECT)
// locks and reads the newest version too.
func TestLockingSubqueryInOtherStatements(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1)")
	a, b := clientConn(t, db), clientConn(t, db)

	mustExec(t, a, "BEGIN")
	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, b, "UPDATE r SET v = 2 WHERE id = 1")
	mustExec(t, a, "SET @x = (SELECT v FROM r WHERE id = 1 FOR UPDATE)")
	require.EqualValues(t, 2, queryInt(t, a, "SELECT @x"), "SET @x = (SELECT ... FOR UPDATE) read the snapshot")

	done := execBlocked(t, srv, b, "UPDATE r SET v = 3 WHERE id = 1", "UPDATE of a row locked by SET @x = (SELECT ... FOR UPDATE)")
	mustExec(t, a, "UPDATE r SET v = @x + 10 WHERE id = 1")
	mustExec(t, a, "COMMIT")
	require.NoError(t, outcome(t, done, "UPDATE after the locking transaction"))
	require.EqualValues(t, 3, queryInt(t, db, "SELECT v FROM r WHERE id = 1"))
}

// A DELETE decides which rows match on their newest committed version:
// rows changed by another transaction since the snapshot are judged as they
// are now, through PREPARE/EXECUTE and WITH ... DELETE as through a plain
// DELETE.
func TestDeleteMatchesNewestVersion(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)")
	a, b := clientConn(t, db), clientConn(t, db)
	mustExec(t, a, "PREPARE d FROM 'DELETE FROM r WHERE v = 1'")
	for _, stmt := range []string{
		"DELETE FROM r WHERE v = 1",
		"EXECUTE d",
		"WITH x AS (SELECT 1 AS one) DELETE FROM r WHERE v = 1",
	} {
		mustExec(t, db, "DELETE FROM r")
		mustExec(t, db, "INSERT INTO r VALUES (1, 1), (2, 2), (3, 1)")
		mustExec(t, a, "BEGIN")
		require.EqualValues(t, 2, queryInt(t, a, "SELECT COUNT(*) FROM r WHERE v = 1"))
		// Row 1 no longer matches; row 2 now does.
		mustExec(t, b, "UPDATE r SET v = 5 WHERE id = 1")
		mustExec(t, b, "UPDATE r SET v = 1 WHERE id = 2")
		res := mustExec(t, a, stmt)
		mustExec(t, a, "COMMIT")
		require.Equal(t, []int64{1}, queryInts(t, db, "SELECT id FROM r ORDER BY id"), stmt)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 2, n, stmt)
	}
}

// A locking read inside a stored procedure locks as it would outside one:
// CALL runs the procedure's statements, whose text is the procedure's.
func TestProcedureLockingRead(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1)",
		"CREATE PROCEDURE lockrow(IN k INT) BEGIN DECLARE y INT; SELECT v INTO y FROM r WHERE id = k FOR UPDATE; SET @x = y; END")
	a, b := clientConn(t, db), clientConn(t, db)

	mustExec(t, a, "BEGIN")
	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, b, "UPDATE r SET v = 2 WHERE id = 1")
	mustExec(t, a, "CALL d.lockrow(1)")
	require.EqualValues(t, 2, queryInt(t, a, "SELECT @x"), "the procedure's FOR UPDATE read the snapshot")

	waits := lockWaits(srv)
	done := background(func() error {
		return b.QueryRowContext(context.Background(), "SELECT v FROM r WHERE id = 1 LOCK IN SHARE MODE").Scan(new(int))
	})
	awaitLockWaits(t, srv, waits+1)
	requirePending(t, done, "a shared read of a row the procedure read FOR UPDATE")
	mustExec(t, a, "COMMIT")
	require.NoError(t, outcome(t, done, "the shared read after COMMIT"))
}

// CALL inside a transaction runs in that transaction: the writes, snapshot
// and locks from before the CALL survive it (go-mysql-server asks the
// session for a transaction while it runs the procedure).
func TestCallKeepsTheTransaction(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1), (2, 2), (3, 3)",
		"CREATE PROCEDURE bump(IN k INT) BEGIN UPDATE r SET v = v + 1 WHERE id = k; END")
	a, b := clientConn(t, db), clientConn(t, db)
	for _, begin := range []string{"BEGIN", "SET autocommit = 0"} {
		mustExec(t, db, "UPDATE r SET v = id")
		mustExec(t, a, begin)
		require.EqualValues(t, 3, queryInt(t, a, "SELECT v FROM r WHERE id = 3"))
		mustExec(t, a, "UPDATE r SET v = 10 WHERE id = 1")
		mustExec(t, b, "UPDATE r SET v = 30 WHERE id = 3")
		mustExec(t, a, "CALL bump(2)")
		require.EqualValues(t, 3, queryInt(t, a, "SELECT v FROM r WHERE id = 3"), "%s: CALL dropped the snapshot", begin)
		done := execBlocked(t, srv, b, "UPDATE r SET v = 100 WHERE id = 1", "UPDATE of a row written before the CALL")
		mustExec(t, a, "COMMIT")
		require.NoError(t, outcome(t, done, "UPDATE after COMMIT"))
		require.Equal(t, []int64{100, 3, 30}, queryInts(t, db, "SELECT v FROM r ORDER BY id"), begin)
		mustExec(t, a, "SET autocommit = 1")
	}
}
