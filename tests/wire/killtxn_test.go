package wire

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestKillQueryInTransaction: KILL QUERY of a statement waiting for a lock
// inside a transaction undoes that statement only, as InnoDB does: the
// transaction's earlier writes stay, it goes on and commits them.
func TestKillQueryInTransaction(t *testing.T) {
	srv, db := startWithDB(t, "d", "CREATE TABLE t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO t VALUES (1, 0), (2, 0), (3, 0)")
	holder := soloConn(t, srv, "d")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "UPDATE t SET v = 100 WHERE id = 3")

	victim := soloConn(t, srv, "d")
	id := connID(t, victim)
	mustExec(t, victim, "BEGIN")
	mustExec(t, victim, "INSERT INTO t VALUES (10, 10)")
	// Rows 1 and 2 are changed in the victim's buffer before it waits for
	// row 3.
	done := execBlocked(t, srv, victim, "UPDATE t SET v = v + 1 ORDER BY id", "the victim's update")
	killer := clientConn(t, db)
	mustExec(t, killer, fmt.Sprintf("KILL QUERY %d", id))
	requireMySQLError(t, outcome(t, done, "the killed update"), 1317, "70100")

	require.Equal(t, []int64{0, 0, 0, 10}, queryInts(t, victim, "SELECT v FROM t ORDER BY id"),
		"the killed statement's writes stay, or the transaction's earlier ones went")
	mustExec(t, holder, "ROLLBACK")
	mustExec(t, victim, "UPDATE t SET v = 7 WHERE id = 3")
	mustExec(t, victim, "COMMIT")
	require.Equal(t, []int64{0, 0, 7, 10}, queryInts(t, db, "SELECT v FROM t ORDER BY id"))
}

// TestKilledStatementFreesLocks: an autocommit statement killed while it
// waits for a lock releases the locks it had taken, and so does a
// transaction whose connection is killed.
func TestKilledStatementFreesLocks(t *testing.T) {
	srv, db := startWithDB(t, "d", "CREATE TABLE t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO t VALUES (1, 0), (2, 0), (3, 0)")
	holder := soloConn(t, srv, "d")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "UPDATE t SET v = 100 WHERE id = 3")

	victim := soloConn(t, srv, "d")
	id := connID(t, victim)
	done := execBlocked(t, srv, victim, "UPDATE t SET v = v + 1 ORDER BY id", "the victim's update")
	killer := clientConn(t, db)
	mustExec(t, killer, fmt.Sprintf("KILL QUERY %d", id))
	requireMySQLError(t, outcome(t, done, "the killed update"), 1317, "70100")

	// Rows 1 and 2 were locked by the killed statement: free now.
	other := soloConn(t, srv, "d")
	mustExec(t, other, "SET innodb_lock_wait_timeout = 1")
	mustExec(t, other, "UPDATE t SET v = 5 WHERE id IN (1, 2)")
	mustExec(t, holder, "ROLLBACK")
	require.Equal(t, []int64{5, 5, 0}, queryInts(t, db, "SELECT v FROM t ORDER BY id"))

	// KILL of the connection rolls back its open transaction.
	mustExec(t, victim, "BEGIN")
	mustExec(t, victim, "UPDATE t SET v = 9 WHERE id = 1")
	mustExec(t, killer, fmt.Sprintf("KILL %d", id))
	require.Eventually(t, func() bool {
		_, err := other.ExecContext(context.Background(), "UPDATE t SET v = 6 WHERE id = 1")
		return err == nil
	}, patience, 10*time.Millisecond, "the killed connection's lock is still held")
	require.Equal(t, []int64{6, 5, 0}, queryInts(t, db, "SELECT v FROM t ORDER BY id"))
}

// clientWatchers counts the goroutines watching a running statement's
// client.
func clientWatchers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "server.watchClient(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestNoWatcherOutlivesItsStatement: statements that finish, fail, are
// killed, time out or lose their client leave no goroutine watching a
// client behind.
func TestNoWatcherOutlivesItsStatement(t *testing.T) {
	srv, db := startWithDB(t, "d", "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	killer := clientConn(t, db)
	for i := 0; i < 20; i++ {
		c := soloConn(t, srv, "d")
		mustExec(t, c, "INSERT INTO t VALUES (?, 0)", i)
		_, err := c.ExecContext(context.Background(), "INSERT INTO t VALUES (?, 0)", i)
		requireMySQLError(t, err, 1062, "23000")
		switch i % 3 {
		case 0:
			id := connID(t, c)
			done := execAsync(c, crossJoin)
			awaitRunning(t, srv, id)
			mustExec(t, killer, fmt.Sprintf("KILL QUERY %d", id))
			requireMySQLError(t, outcome(t, done, "the killed join"), 1317, "70100")
		case 1:
			mustExec(t, c, "SET max_execution_time = 50")
			var n int64
			requireMySQLError(t, c.QueryRowContext(context.Background(), crossJoin).Scan(&n), 3024, "HY000")
		case 2:
			id := connID(t, c)
			ctx, cancel := context.WithCancel(context.Background())
			done := background(func() error {
				_, err := c.ExecContext(ctx, crossJoin)
				return err
			})
			awaitRunning(t, srv, id)
			cancel()
			outcome(t, done, "the abandoned join")
		}
	}
	require.Eventually(t, func() bool { return runningQueries(srv) == 0 && clientWatchers() == 0 }, patience, 10*time.Millisecond,
		"%d statements running, %d client watchers left", runningQueries(srv), clientWatchers())
}
