package wire

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"
)

func isolationOf(t *testing.T, c *sql.Conn, v string) string {
	t.Helper()
	var s string
	require.NoError(t, c.QueryRowContext(context.Background(), "SELECT @@"+v).Scan(&s))
	return s
}

// The isolation level variables and statements, as MySQL 8 has them.
func TestIsolationLevelVariables(t *testing.T) {
	srv, db := startWithDB(t, "d", "CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)")
	c := soloConn(t, srv, "d")
	require.Equal(t, "REPEATABLE-READ", isolationOf(t, c, "transaction_isolation"))
	require.Equal(t, "REPEATABLE-READ", isolationOf(t, c, "tx_isolation"))

	mustExec(t, c, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
	require.Equal(t, "READ-COMMITTED", isolationOf(t, c, "transaction_isolation"))
	require.Equal(t, "READ-COMMITTED", isolationOf(t, c, "tx_isolation"))
	require.Equal(t, "READ-COMMITTED", isolationOf(t, c, "SESSION.transaction_isolation"))
	mustExec(t, c, "SET SESSION transaction_isolation = 'SERIALIZABLE'")
	require.Equal(t, "SERIALIZABLE", isolationOf(t, c, "tx_isolation"))
	mustExec(t, c, "SET tx_isolation = 'REPEATABLE-READ'")
	require.Equal(t, "REPEATABLE-READ", isolationOf(t, c, "transaction_isolation"))
	_, err := c.ExecContext(context.Background(), "SET SESSION transaction_isolation = 'SNAPSHOT'")
	require.Error(t, err)
	require.Equal(t, "REPEATABLE-READ", isolationOf(t, c, "transaction_isolation"))

	// Without SESSION or GLOBAL, SET TRANSACTION is for the next
	// transaction only, and refused inside one.
	mustExec(t, c, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
	require.Equal(t, "REPEATABLE-READ", isolationOf(t, c, "transaction_isolation"))
	mustExec(t, c, "BEGIN")
	mustExec(t, c, "SELECT * FROM r")
	_, err = c.ExecContext(context.Background(), "SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
	requireMySQLError(t, err, 1568, "25001")
	mustExec(t, c, "COMMIT")
	mustExec(t, c, "SET @@transaction_isolation = 'READ-COMMITTED'")
	require.Equal(t, "REPEATABLE-READ", isolationOf(t, c, "SESSION.transaction_isolation"))

	// GLOBAL is what new connections start with.
	mustExec(t, c, "SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED")
	t.Cleanup(func() { db.Exec("SET GLOBAL TRANSACTION ISOLATION LEVEL REPEATABLE READ") })
	require.Equal(t, "READ-COMMITTED", isolationOf(t, c, "GLOBAL.transaction_isolation"))
	require.Equal(t, "REPEATABLE-READ", isolationOf(t, c, "transaction_isolation"))
	require.Equal(t, "READ-COMMITTED", isolationOf(t, soloConn(t, srv, "d"), "transaction_isolation"))
	mustExec(t, c, "SET GLOBAL TRANSACTION ISOLATION LEVEL REPEATABLE READ")
}

// READ COMMITTED: every statement of a transaction reads the newest
// committed rows, never uncommitted ones. READ UNCOMMITTED runs as READ
// COMMITTED.
func TestReadCommitted(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1)")
	for _, level := range []string{"READ COMMITTED", "READ UNCOMMITTED"} {
		mustExec(t, db, "UPDATE r SET v = 1 WHERE id = 1")
		mustExec(t, db, "DELETE FROM r WHERE id > 1")
		a, b := soloConn(t, srv, "d"), soloConn(t, srv, "d")
		mustExec(t, a, "SET SESSION TRANSACTION ISOLATION LEVEL "+level)

		mustExec(t, a, "BEGIN")
		require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), level)
		mustExec(t, b, "UPDATE r SET v = 2 WHERE id = 1")
		mustExec(t, b, "INSERT INTO r VALUES (2, 2)")
		require.EqualValues(t, 2, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "%s: a committed update is not seen", level)
		require.EqualValues(t, 2, queryInt(t, a, "SELECT COUNT(*) FROM r"), "%s: a committed insert is not seen", level)

		mustExec(t, b, "BEGIN")
		mustExec(t, b, "UPDATE r SET v = 3 WHERE id = 1")
		require.EqualValues(t, 2, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "%s: an uncommitted update is seen", level)
		mustExec(t, b, "COMMIT")
		require.EqualValues(t, 3, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), level)
		// Own writes stay visible on top of the newest commits.
		mustExec(t, a, "UPDATE r SET v = v + 10 WHERE id = 2")
		mustExec(t, b, "UPDATE r SET v = 4 WHERE id = 1")
		require.Equal(t, []int64{4, 12}, queryInts(t, a, "SELECT v FROM r ORDER BY id"), level)
		mustExec(t, a, "COMMIT")
		require.Equal(t, []int64{4, 12}, queryInts(t, db, "SELECT v FROM r ORDER BY id"), level)
	}

	// SET TRANSACTION (no scope) and SET @@transaction_isolation apply to
	// the next transaction only.
	a, b := soloConn(t, srv, "d"), soloConn(t, srv, "d")
	for _, set := range []string{
		"SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
		"SET @@transaction_isolation = 'READ-COMMITTED'",
	} {
		mustExec(t, a, set)
		for i, want := range []int64{5, 4} {
			mustExec(t, db, "UPDATE r SET v = 4 WHERE id = 1")
			mustExec(t, a, "START TRANSACTION")
			require.EqualValues(t, 4, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
			mustExec(t, b, "UPDATE r SET v = 5 WHERE id = 1")
			require.EqualValues(t, want, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "%s: transaction %d", set, i)
			mustExec(t, a, "COMMIT")
		}
	}
}

// SERIALIZABLE: inside a transaction (or with autocommit off) a plain
// SELECT reads with shared locks, so two transactions that each read a
// condition and then break it cannot both commit: InnoDB makes one of them
// the deadlock victim. With autocommit on, a lone SELECT is a consistent
// read that waits for nobody.
func TestSerializable(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE doctors (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, on_call BOOL NOT NULL)")
	onCall := func(level string) (error, error) {
		mustExec(t, db, "DELETE FROM doctors")
		mustExec(t, db, "INSERT INTO doctors VALUES (1, 'alice', 1), (2, 'bob', 1)")
		a, b := soloConn(t, srv, "d"), soloConn(t, srv, "d")
		for _, c := range []*sql.Conn{a, b} {
			mustExec(t, c, "SET SESSION TRANSACTION ISOLATION LEVEL "+level)
			mustExec(t, c, "BEGIN")
			require.EqualValues(t, 2, queryInt(t, c, "SELECT COUNT(*) FROM doctors WHERE on_call = 1"))
		}
		waits := lockWaits(srv)
		doneA := execAsync(a, "UPDATE doctors SET on_call = 0 WHERE id = 1")
		if level == "SERIALIZABLE" {
			awaitLockWaits(t, srv, waits+1)
		} else {
			require.NoError(t, outcome(t, doneA, "A's UPDATE"))
			doneA = nil
		}
		errB := outcome(t, execAsync(b, "UPDATE doctors SET on_call = 0 WHERE id = 2"), "B's UPDATE")
		var errA error
		if doneA != nil {
			errA = outcome(t, doneA, "A's UPDATE")
		}
		for c, err := range map[*sql.Conn]error{a: errA, b: errB} {
			if err == nil {
				mustExec(t, c, "COMMIT")
			} else {
				mustExec(t, c, "ROLLBACK")
			}
		}
		return errA, errB
	}

	errA, errB := onCall("REPEATABLE READ")
	require.NoError(t, errA)
	require.NoError(t, errB)
	require.EqualValues(t, 0, queryInt(t, db, "SELECT COUNT(*) FROM doctors WHERE on_call = 1"), "REPEATABLE READ allows the write skew")

	errA, errB = onCall("SERIALIZABLE")
	require.True(t, (errA == nil) != (errB == nil), "want exactly one deadlock victim; A got %v, B got %v", errA, errB)
	victim := errA
	if victim == nil {
		victim = errB
	}
	requireMySQLError(t, victim, 1213, "40001")
	require.EqualValues(t, 1, queryInt(t, db, "SELECT COUNT(*) FROM doctors WHERE on_call = 1"))

	// A row locked by another transaction: a SERIALIZABLE autocommit SELECT
	// reads the committed version without waiting; with autocommit off the
	// SELECT waits for the lock and then sees the commit.
	holder, reader := soloConn(t, srv, "d"), soloConn(t, srv, "d")
	mustExec(t, reader, "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "UPDATE doctors SET on_call = 1 WHERE id = 1")
	waits := lockWaits(srv)
	require.EqualValues(t, 1, queryInt(t, reader, "SELECT COUNT(*) FROM doctors WHERE on_call = 1"))
	require.Equal(t, waits, lockWaits(srv), "an autocommit SELECT waited for a lock")

	mustExec(t, reader, "SET autocommit = 0")
	done := background(func() error {
		n := queryInt(t, reader, "SELECT COUNT(*) FROM doctors WHERE on_call = 1")
		if n != 2 {
			t.Errorf("after the holder's commit, the locking read counted %d", n)
		}
		return nil
	})
	awaitLockWaits(t, srv, waits+1)
	requirePending(t, done, "SERIALIZABLE SELECT with autocommit off")
	mustExec(t, holder, "COMMIT")
	require.NoError(t, outcome(t, done, "SERIALIZABLE SELECT with autocommit off"))
	mustExec(t, reader, "COMMIT")
}
