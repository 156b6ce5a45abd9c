package wire

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
)

// allocatedDuring is how many bytes the process allocated while f ran: the
// node runs in this process, so a statement that builds a huge value shows
// up here whatever it answers.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// warnings returns SHOW WARNINGS of the session as "level code message".
func warnings(t testing.TB, c querier) []string {
	t.Helper()
	rows, err := c.QueryContext(context.Background(), "SHOW WARNINGS")
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var level, msg string
		var code int
		require.NoError(t, rows.Scan(&level, &code, &msg))
		out = append(out, fmt.Sprintf("%s %d %s", level, code, msg))
	}
	require.NoError(t, rows.Err())
	return out
}

// TestStringResultOverMaxAllowedPacket: a string function whose result
// would exceed max_allowed_packet answers NULL with warning 1301 without
// building the value, as MySQL does.
func TestStringResultOverMaxAllowedPacket(t *testing.T) {
	_, db := startNode(t)
	c := clientConn(t, db)
	const limit = 67108864
	require.Equal(t, int64(limit), queryInt(t, c, "SELECT @@max_allowed_packet"))
	cases := []struct{ fn, expr string }{
		{"space", "space(4294967295)"},
		{"space", "space(67108865)"},
		{"repeat", "repeat('ab', 100000000)"},
		{"repeat", "repeat('x', 18446744073709551615)"},
		{"lpad", "lpad('', 10000000000, 'x')"},
		{"rpad", "rpad('a', 70000000, 'xy')"},
		{"concat", "concat(repeat('a', 40000000), repeat('b', 40000000))"},
		{"concat_ws", "concat_ws(',', repeat('a', 40000000), repeat('b', 30000000))"},
		{"replace", "replace(repeat('a', 1000000), 'a', repeat('b', 100))"},
		{"to_base64", "to_base64(repeat('a', 60000000))"},
		{"hex", "hex(repeat('a', 40000000))"},
	}
	for _, tc := range cases {
		var got sql.NullInt64
		alloc := allocatedDuring(func() {
			require.NoError(t, c.QueryRowContext(context.Background(), "SELECT length("+tc.expr+")").Scan(&got), tc.expr)
		})
		require.False(t, got.Valid, "%s: want NULL, got %d", tc.expr, got.Int64)
		want := fmt.Sprintf("Warning 1301 Result of %s() was larger than max_allowed_packet (%d) - truncated", tc.fn, limit)
		require.Equal(t, []string{want}, warnings(t, c), tc.expr)
		// The arguments may be built (each under the limit); the result
		// never is.
		require.Less(t, alloc, uint64(8*limit), "%s allocated %d bytes", tc.expr, alloc)
	}
	// Under the limit nothing changes.
	require.Equal(t, int64(1000000), queryInt(t, c, "SELECT length(lpad('', 1000000, 'ab'))"))
	require.Equal(t, int64(6), queryInt(t, c, "SELECT length(concat('abc', 'def'))"))
	require.Empty(t, warnings(t, c))
}

// TestRecursiveCTEDepth: cte_max_recursion_depth bounds a recursive CTE as
// in MySQL (error 3636), settable per session.
func TestRecursiveCTEDepth(t *testing.T) {
	_, db := startNode(t)
	c := clientConn(t, db)
	count := func(limit int) string {
		return fmt.Sprintf("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < %d) SELECT COUNT(*) FROM c", limit)
	}
	require.Equal(t, int64(1000), queryInt(t, c, count(1000)))
	var n int64
	err := c.QueryRowContext(context.Background(), count(1001)).Scan(&n)
	me := requireMySQLError(t, err, 3636, "HY000")
	require.Equal(t, "Recursive query aborted after 1001 iterations. Try increasing @@cte_max_recursion_depth to a larger value.", me.Message)
	mustExec(t, c, "SET cte_max_recursion_depth = 2000")
	require.Equal(t, int64(1500), queryInt(t, c, count(1500)))
	mustExec(t, c, "SET cte_max_recursion_depth = 10")
	err = c.QueryRowContext(context.Background(), count(100)).Scan(&n)
	requireMySQLError(t, err, 3636, "HY000")

	// A value that doubles each step is cut by max_allowed_packet and then
	// the depth stops the recursion: memory stays bounded.
	mustExec(t, c, "SET cte_max_recursion_depth = DEFAULT")
	alloc := allocatedDuring(func() {
		err = c.QueryRowContext(context.Background(),
			"WITH RECURSIVE c(n) AS (SELECT CAST('x' AS CHAR(1000)) UNION ALL SELECT CONCAT(n, n) FROM c) SELECT COUNT(*) FROM c").Scan(&n)
	})
	requireMySQLError(t, err, 3636, "HY000")
	require.Less(t, alloc, uint64(1<<30), "allocated %d bytes", alloc)
}

// TestStatementMemoryBudget: a statement that buffers more than
// max_statement_memory fails with a clear error; the session goes on.
func TestStatementMemoryBudget(t *testing.T) {
	_, db := startNode(t)
	c := clientConn(t, db)
	mustExec(t, c, "SET max_statement_memory = 16777216")
	// Rows double each step: far over the budget before the depth limit.
	var n int64
	alloc := allocatedDuring(func() {
		err := c.QueryRowContext(context.Background(),
			"WITH RECURSIVE c(n, s) AS (SELECT 1, repeat('x', 100) UNION ALL SELECT c.n + 1, c.s FROM c, (SELECT 1 UNION ALL SELECT 2) d WHERE c.n < 40) SELECT COUNT(*) FROM c").Scan(&n)
		me := requireMySQLError(t, err, 3170, "HY000")
		require.Contains(t, me.Message, "max_statement_memory")
	})
	require.Less(t, alloc, uint64(1<<30), "allocated %d bytes", alloc)
	// A sort of more than the budget fails the same way.
	err := c.QueryRowContext(context.Background(),
		"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 900) SELECT COUNT(*) FROM (SELECT a.n, repeat('y', 100) s FROM c a, c b ORDER BY s, a.n) x").Scan(&n)
	requireMySQLError(t, err, 3170, "HY000")
	require.Equal(t, int64(1), queryInt(t, c, "SELECT 1"))
	mustExec(t, c, "SET max_statement_memory = DEFAULT")
	require.Equal(t, int64(900*900), queryInt(t, c,
		"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 900) SELECT COUNT(*) FROM (SELECT a.n FROM c a, c b ORDER BY a.n) x"))
}

// runningQueries counts the statements the node is executing.
func runningQueries(srv *server.Server) int {
	n := 0
	for _, p := range srv.Engine().ProcessList.Processes() {
		if p.Query != "" && !strings.Contains(strings.ToLower(p.Query), "processlist") {
			n++
		}
	}
	return n
}

// connID is the connection id of c's session.
func connID(t testing.TB, c querier) int64 {
	t.Helper()
	return queryInt(t, c, "SELECT CONNECTION_ID()")
}

// awaitRunning waits until the session id runs a statement.
func awaitRunning(t testing.TB, srv *server.Server, id int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, p := range srv.Engine().ProcessList.Processes() {
			if int64(p.Connection) == id && p.Query != "" {
				return true
			}
		}
		return false
	}, patience, time.Millisecond)
}

// stopDeadline bounds how long a statement may run on after it was told to
// stop. The target is 100 ms; the bound leaves room for a loaded machine
// and the race detector while still failing a statement that runs on.
const stopDeadline = 3 * time.Second

// nestedSubqueries is a scalar subquery nested depth deep: its planning
// time doubled with each level.
func nestedSubqueries(depth int) string {
	q := "SELECT 1"
	for i := 0; i < depth; i++ {
		q = fmt.Sprintf("SELECT (%s) + 1", q)
	}
	return q
}

// crossJoin runs for hours: 10^12 rows of a join, none of them kept.
const crossJoin = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) SELECT COUNT(*) FROM c a, c b, c d, c e WHERE a.n + b.n + d.n + e.n = 0"

// TestKillQueryStopsExecution: KILL QUERY stops a statement looping over
// buffered rows, answering 1317, and the session goes on.
func TestKillQueryStopsExecution(t *testing.T) {
	srv, db := startNode(t)
	killer := clientConn(t, db)
	for _, q := range []string{crossJoin} {
		victim := soloConn(t, srv, "")
		id := connID(t, victim)
		done := execAsync(victim, q)
		awaitRunning(t, srv, id)
		mustExec(t, killer, fmt.Sprintf("KILL QUERY %d", id))
		killed := time.Now()
		var err error
		select {
		case err = <-done:
		case <-time.After(stopDeadline):
			t.Fatalf("statement still running %v after KILL QUERY: %.60s", stopDeadline, q)
		}
		requireMySQLError(t, err, 1317, "70100", q)
		require.Eventually(t, func() bool { return runningQueries(srv) == 0 }, stopDeadline, time.Millisecond,
			"statement still running after KILL QUERY answered (%v)", time.Since(killed))
		require.Equal(t, int64(1), queryInt(t, victim, "SELECT 1"))
	}
}

// TestSubqueryNesting: subqueries nested deeper than planning can bear
// are refused at once, as MySQL refuses beyond its own bound.
func TestSubqueryNesting(t *testing.T) {
	_, db := startNode(t)
	c := clientConn(t, db)
	require.Equal(t, int64(6), queryInt(t, c, nestedSubqueries(5)))
	done := background(func() error {
		var n int64
		return c.QueryRowContext(context.Background(), nestedSubqueries(26)).Scan(&n)
	})
	select {
	case err := <-done:
		me := requireMySQLError(t, err, 1473, "HY000")
		require.Equal(t, "Too high level of nesting for select", me.Message)
	case <-time.After(stopDeadline):
		t.Fatalf("nested subqueries still planning after %v", stopDeadline)
	}
	require.Equal(t, int64(1), queryInt(t, c, "SELECT '(SELECT (SELECT (SELECT (SELECT (SELECT (SELECT (SELECT (SELECT (SELECT' IS NOT NULL"))
}

// TestMaxExecutionTime: the session variable and the optimizer hint stop a
// SELECT with 3024.
func TestMaxExecutionTime(t *testing.T) {
	srv, _ := startNode(t)
	c := soloConn(t, srv, "")
	mustExec(t, c, "SET max_execution_time = 200")
	var n int64
	err := c.QueryRowContext(context.Background(), crossJoin).Scan(&n)
	me := requireMySQLError(t, err, 3024, "HY000")
	require.Equal(t, "Query execution was interrupted, maximum statement execution time exceeded", me.Message)
	mustExec(t, c, "SET max_execution_time = 0")
	hinted := strings.Replace(crossJoin, "SELECT COUNT(*)", "SELECT /*+ MAX_EXECUTION_TIME(200) */ COUNT(*)", 1)
	err = c.QueryRowContext(context.Background(), hinted).Scan(&n)
	requireMySQLError(t, err, 3024, "HY000")
	require.Equal(t, int64(1), queryInt(t, c, "SELECT 1"))
}

// TestDisconnectStopsStatement: a client that goes away stops its
// statement and its transaction is rolled back: its locks are free.
func TestDisconnectStopsStatement(t *testing.T) {
	srv, db := startWithDB(t, "d", "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 0)")
	for _, q := range []string{crossJoin} {
		pool := openDB(t, srv, "d")
		pool.SetMaxIdleConns(0)
		victim := clientConn(t, pool)
		mustExec(t, victim, "BEGIN")
		mustExec(t, victim, "UPDATE t SET v = v + 1 WHERE id = 1")
		id := connID(t, victim)
		ctx, cancel := context.WithCancel(context.Background())
		done := background(func() error {
			_, err := victim.ExecContext(ctx, q)
			return err
		})
		awaitRunning(t, srv, id)
		// The driver closes the socket when the context is cancelled.
		cancel()
		<-done
		require.Eventually(t, func() bool { return runningQueries(srv) == 0 }, stopDeadline, time.Millisecond,
			"statement still running after its client disconnected: %.60s", q)
		other := clientConn(t, db)
		mustExec(t, other, "SET innodb_lock_wait_timeout = 5")
		mustExec(t, other, "UPDATE d.t SET v = v + 10 WHERE id = 1")
		// The disconnected client's update is gone.
		require.Equal(t, int64(10), queryInt(t, other, "SELECT v FROM d.t WHERE id = 1"))
		mustExec(t, other, "UPDATE d.t SET v = 0 WHERE id = 1")
	}
}

// TestPacketOverMaxAllowedPacket: a packet over max_allowed_packet is
// refused with 1153 before it is buffered, and nothing is written.
func TestPacketOverMaxAllowedPacket(t *testing.T) {
	srv, db := startWithDB(t, "d", "CREATE TABLE b (id INT PRIMARY KEY, v LONGBLOB)")
	mustExec(t, db, "SET GLOBAL max_allowed_packet = 4194304")
	// The variable is the process's: later tests get the default back
	// even if this one fails half way.
	t.Cleanup(func() { _, _ = db.Exec("SET GLOBAL max_allowed_packet = DEFAULT") })
	big, err := sql.Open("mysql", dsn(srv, "d")+"&maxAllowedPacket=67108864")
	require.NoError(t, err)
	defer big.Close()
	c := clientConn(t, big)
	blob := strings.Repeat("z", 32<<20)
	alloc := allocatedDuring(func() {
		_, err = c.ExecContext(context.Background(), "INSERT INTO b VALUES (1, '"+blob+"')")
	})
	requireMySQLError(t, err, 1153, "08S01")
	require.Equal(t, "Got a packet bigger than 'max_allowed_packet' bytes", asMySQL(err).Message)
	// The client's own copy of the statement is 32 MiB; the node must not
	// have read it whole.
	require.Less(t, alloc, uint64(3*32<<20), "allocated %d bytes", alloc)
	require.Equal(t, int64(0), queryInt(t, db, "SELECT COUNT(*) FROM d.b"))
	// A statement under the limit goes through.
	mustExec(t, big, "INSERT INTO b VALUES (2, '"+strings.Repeat("y", 3<<20)+"')")
	require.Equal(t, int64(1), queryInt(t, db, "SELECT COUNT(*) FROM d.b"))
}
