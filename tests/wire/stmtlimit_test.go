package wire

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// max_prepared_stmt_count bounds the prepared statements of all
// connections together; closing statements or connections gives them back.
func TestMaxPreparedStmtCount(t *testing.T) {
	restoreGlobals(t)
	srv, db := startNode(t)
	mustExec(t, db, "SET GLOBAL max_prepared_stmt_count = 3")
	ctx := context.Background()
	c1 := soloConn(t, srv, "")
	c2 := soloConn(t, srv, "")

	// Statements that fail to prepare are not kept.
	for i := 0; i < 5; i++ {
		_, err := c1.PrepareContext(ctx, "SELECT * FROM mysql.no_such_table")
		require.Error(t, err)
	}
	s1, err := c1.PrepareContext(ctx, "SELECT 1")
	require.NoError(t, err)
	_, err = c1.PrepareContext(ctx, "SELECT 2")
	require.NoError(t, err)
	_, err = c2.PrepareContext(ctx, "SELECT 3")
	require.NoError(t, err)

	_, err = c2.PrepareContext(ctx, "SELECT 4")
	me := requireMySQLError(t, err, 1461, "42000")
	require.Equal(t, "Can't create more than max_prepared_stmt_count statements (current value: 3)", me.Message)

	// The connection refused is still fine.
	require.EqualValues(t, 5, queryInt(t, c2, "SELECT 5"))

	// A closed statement makes room (COM_STMT_CLOSE has no answer, so
	// the node notices it a moment later).
	require.NoError(t, s1.Close())
	s4 := prepareEventually(t, c2, "SELECT 4")
	require.NoError(t, s4.Close())

	// So does a connection that goes away with its statements.
	s5 := prepareEventually(t, c2, "SELECT 5")
	_, err = c2.PrepareContext(ctx, "SELECT 6")
	requireMySQLError(t, err, 1461, "42000")
	require.NoError(t, c1.Close())
	s6 := prepareEventually(t, c2, "SELECT 6")
	_ = s5
	_ = s6
}

// prepareEventually prepares query on c, retrying while the node still
// counts statements that were just closed.
func prepareEventually(t *testing.T, c *sql.Conn, query string) *sql.Stmt {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		s, err := c.PrepareContext(context.Background(), query)
		if err == nil {
			return s
		}
		require.True(t, isMySQLError(err, 1461), "%v", err)
		if time.Now().After(deadline) {
			t.Fatalf("%s: still refused after statements were closed: %v", query, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SHOW PROCESSLIST names each connection's user once it has logged in,
// whether or not it chose a database, and its State column is text.
func TestShowProcessList(t *testing.T) {
	srv, db := startWithDB(t, "d", "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2), (3), (4)")
	noDB := soloConn(t, srv, "")
	require.EqualValues(t, 1, queryInt(t, noDB, "SELECT 1"))
	busy := soloConn(t, srv, "d")
	done := execAsync(busy, "SELECT SLEEP(0.5) FROM t")
	_ = db

	watcher := soloConn(t, srv, "")
	deadline := time.Now().Add(patience)
	sawBusy := false
	var finished error
	// List the connections over and over while the select runs: the
	// engine's progress shows only while a table is being read.
	for running := true; running; {
		select {
		case finished = <-done:
			running = false
		default:
		}
		rows, err := watcher.QueryContext(context.Background(), "SHOW PROCESSLIST")
		require.NoError(t, err)
		n := 0
		for rows.Next() {
			var id int64
			var user, host, command, state string
			var dbName, info sql.NullString
			var secs int64
			require.NoError(t, rows.Scan(&id, &user, &host, &dbName, &command, &secs, &state, &info))
			n++
			require.Equal(t, "root", user, "connection %d (%s)", id, info.String)
			require.True(t, utf8.ValidString(state), "State of %d is not text: %q", id, state)
			require.False(t, strings.ContainsFunc(state, func(r rune) bool { return !unicode.IsPrint(r) }),
				"State of %d is not text: %q", id, state)
			if strings.Contains(info.String, "SLEEP") {
				sawBusy = true
			}
		}
		require.NoError(t, rows.Err())
		require.GreaterOrEqual(t, n, 3)
		require.True(t, time.Now().Before(deadline), "the sleeping select did not finish")
	}
	require.NoError(t, finished)
	require.True(t, sawBusy, "the running statement never showed in SHOW PROCESSLIST")
}
