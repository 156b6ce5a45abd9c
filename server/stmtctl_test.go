package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/stretchr/testify/require"
)

// TestStoppedKeepsAnswersOfTheirOwn: only an interruption becomes 1317 or
// 3024; an error with an answer of its own, above all a commit's 1180
// (outcome unknown), reaches the client as it is, whatever stopped the
// statement afterwards.
func TestStoppedKeepsAnswersOfTheirOwn(t *testing.T) {
	timedOut, cancelT := context.WithCancelCause(context.Background())
	cancelT(errMaxExecutionTime)
	killed, cancelK := context.WithCancel(context.Background())
	cancelK()
	running := context.Background()

	unknown := mysql.NewSQLError(1180, mysql.SSUnknownSQLState, "Got error 1 - 'fogdb: outcome unknown' during COMMIT")
	dup := mysql.NewSQLError(mysql.ERDupEntry, mysql.SSConstraintViolation, "Duplicate entry '1' for key 't.PRIMARY'")
	canceledText := mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "%s", context.Canceled.Error())
	interrupted := mysql.NewSQLError(mysql.ERQueryInterrupted, "70100", "Query execution was interrupted")
	other := mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "something else")

	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want error
	}{
		{timedOut, nil, nil},
		{timedOut, unknown, unknown},
		{killed, unknown, unknown},
		{timedOut, dup, dup},
		{timedOut, canceledText, errMaxExecutionTime},
		{timedOut, interrupted, errMaxExecutionTime},
		{timedOut, fmt.Errorf("reading: %w", context.Canceled), errMaxExecutionTime},
		{timedOut, errMaxExecutionTime, errMaxExecutionTime},
		{killed, canceledText, errQueryInterrupted},
		{killed, interrupted, errQueryInterrupted},
		{killed, other, other},
		{running, other, other},
	} {
		require.Equal(t, tc.want, stopped(tc.ctx, tc.err), "%v under %v", tc.err, context.Cause(tc.ctx))
	}
}

// tcpPair is both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	s := <-accepted
	require.NotNil(t, s)
	t.Cleanup(func() { s.Close(); c.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// watch runs watchClient on the server end of a pair and reports when the
// client was seen gone and when the watcher returned.
func watch(t *testing.T, s net.Conn) (stop func(), gone, returned <-chan struct{}) {
	t.Helper()
	rc := rawConn(s)
	require.NotNil(t, rc)
	done := make(chan struct{})
	g, r := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r)
		watchClient(rc, done, func() { close(g) })
	}()
	return func() { close(done) }, g, r
}

func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// TestWatchClient: the watcher of a running statement sees its client
// close or reset the connection, and ends with the statement otherwise,
// leaving no goroutine behind.
func TestWatchClient(t *testing.T) {
	t.Run("statement ends", func(t *testing.T) {
		s, _ := tcpPair(t)
		stop, gone, returned := watch(t, s)
		stop()
		within(t, returned, "the watcher outlived its statement")
		select {
		case <-gone:
			t.Fatal("a client still connected was reported gone")
		default:
		}
	})
	t.Run("client closes", func(t *testing.T) {
		s, c := tcpPair(t)
		stop, gone, returned := watch(t, s)
		defer stop()
		require.NoError(t, c.Close())
		within(t, gone, "a closed client was not noticed")
		within(t, returned, "the watcher did not return after the client went")
	})
	t.Run("client resets", func(t *testing.T) {
		s, c := tcpPair(t)
		stop, gone, returned := watch(t, s)
		defer stop()
		require.NoError(t, c.SetLinger(0))
		require.NoError(t, c.Close())
		within(t, gone, "a reset client was not noticed")
		within(t, returned, "the watcher did not return after the client went")
	})
	t.Run("guarded", func(t *testing.T) {
		s, c := tcpPair(t)
		g := &guardedConn{Conn: s}
		require.Equal(t, rawConn(s) != nil, rawConn(g) != nil, "the guard hides the socket")
		stop, gone, _ := watch(t, g)
		defer stop()
		require.NoError(t, c.Close())
		within(t, gone, "a closed client under the guard was not noticed")
	})
	t.Run("TLS over the guard", func(t *testing.T) {
		s, c := tcpPair(t)
		// The socket is peeked under the record layer: no handshake needed.
		tc := tls.Server(&guardedConn{Conn: s}, &tls.Config{})
		stop, gone, _ := watch(t, tc)
		defer stop()
		require.NoError(t, c.Close())
		within(t, gone, "a closed client under TLS was not noticed")
	})
}

// TestIsSelect: max_execution_time applies to read-only SELECTs only.
func TestIsSelect(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT 1":                                 true,
		"  (select a FROM t)":                      true,
		"/* note */ SELECT 1":                      true,
		"select * from t for update":               false,
		"WITH c AS (SELECT 1) SELECT * FROM c":     true,
		"WITH c AS (SELECT 1) UPDATE t SET a = 1":  false,
		"INSERT INTO t SELECT 1":                   false,
		"/*!80000 SELECT */ 1":                     false,
		"SEL":                                      false,
		"UPDATE t SET a = (SELECT 1)":              false,
		"DELETE FROM t WHERE a IN (SELECT 1)":      false,
		"SELECT /*+ MAX_EXECUTION_TIME(5) */ 1":    true,
		"with recursive c(n) as (select 1) select": true,
	} {
		require.Equal(t, want, isSelect(q), q)
	}
}
