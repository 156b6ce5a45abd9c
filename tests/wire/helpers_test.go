package wire

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
)

// patience bounds every wait for something that is expected to happen, so a
// hang shows up as a failure with a message instead of a stuck test binary.
// It is generous because the race detector slows everything down.
const patience = 30 * time.Second

// startNode starts a fogdb node on a free loopback port with its data in a
// temporary directory, and returns it with a connection pool to it.
func startNode(t testing.TB) (*server.Server, *sql.DB) {
	t.Helper()
	return startNodeIn(t, t.TempDir())
}

func startNodeIn(t testing.TB, dir string) (*server.Server, *sql.DB) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.Cluster.PeerAddr = "127.0.0.1:0"
	srv, err := server.New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	db, err := sql.Open("mysql", dsn(srv, ""))
	require.NoError(t, err)
	t.Cleanup(func() {
		db.Close()
		srv.Close()
	})
	return srv, db
}

func dsn(srv *server.Server, dbname string) string {
	return fmt.Sprintf("root@tcp(%s)/%s?parseTime=true&multiStatements=true", srv.MySQLAddr(), dbname)
}

// openDB opens a pool on srv whose connections start in database dbname.
func openDB(t testing.TB, srv *server.Server, dbname string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn(srv, dbname))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// startWithDB starts a node, creates database dbname with the given schema
// statements and returns the node with a pool whose default database is
// dbname.
func startWithDB(t testing.TB, dbname string, schema ...string) (*server.Server, *sql.DB) {
	t.Helper()
	srv, root := startNode(t)
	mustExec(t, root, "CREATE DATABASE "+dbname)
	db := openDB(t, srv, dbname)
	for _, s := range schema {
		mustExec(t, db, s)
	}
	return srv, db
}

// clientConn reserves one connection for a simulated client, so that its
// session state (open transaction, autocommit, variables) stays its own.
func clientConn(t testing.TB, db *sql.DB) *sql.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	c, err := db.Conn(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// soloConn opens a connection of its own, closed (not returned to a pool)
// when the test ends, so whatever state a test leaves in its session dies
// with the test instead of leaking into the next one.
func soloConn(t testing.TB, srv *server.Server, dbname string) *sql.Conn {
	t.Helper()
	db, err := sql.Open("mysql", dsn(srv, dbname))
	require.NoError(t, err)
	db.SetMaxIdleConns(0)
	t.Cleanup(func() { db.Close() })
	return clientConn(t, db)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func mustExec(t testing.TB, db execer, query string, args ...any) sql.Result {
	t.Helper()
	res, err := db.ExecContext(context.Background(), query, args...)
	require.NoError(t, err, "%s", query)
	return res
}

// queryInt runs a query returning one integer.
func queryInt(t testing.TB, db querier, query string, args ...any) int64 {
	t.Helper()
	var v int64
	require.NoError(t, db.QueryRowContext(context.Background(), query, args...).Scan(&v), "%s", query)
	return v
}

// queryInts runs a query returning one integer column.
func queryInts(t testing.TB, db querier, query string, args ...any) []int64 {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query, args...)
	require.NoError(t, err, "%s", query)
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

// asMySQL returns the MySQL error inside err, or nil.
func asMySQL(err error) *mysql.MySQLError {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me
	}
	return nil
}

func isMySQLError(err error, num uint16) bool {
	me := asMySQL(err)
	return me != nil && me.Number == num
}

// requireMySQLError checks that err is MySQL error num with SQLSTATE state.
func requireMySQLError(t testing.TB, err error, num uint16, state string, msgAndArgs ...any) *mysql.MySQLError {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	me := asMySQL(err)
	require.NotNil(t, me, "not a MySQL error: %v (%T)", err, err)
	require.Equal(t, num, me.Number, "error number of %q", me.Message)
	require.Equal(t, state, string(me.SQLState[:]), "SQLSTATE of %d %q", me.Number, me.Message)
	return me
}

// lockWaits is the number of lock requests that have had to queue so far.
func lockWaits(srv *server.Server) uint64 {
	return srv.Provider().LockStats().Waits
}

// awaitLockWaits blocks until at least n lock requests have queued in
// total: the way to know that a statement sent in the background is now
// blocked on a lock rather than merely not yet sent.
func awaitLockWaits(t testing.TB, srv *server.Server, n uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return lockWaits(srv) >= n }, patience, time.Millisecond,
		"expected %d lock waits, have %d", n, lockWaits(srv))
}

// background runs f in a goroutine and hands back its error.
func background(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return done
}

// execAsync sends a statement on c from another goroutine.
func execAsync(c *sql.Conn, query string, args ...any) <-chan error {
	return background(func() error {
		_, err := c.ExecContext(context.Background(), query, args...)
		return err
	})
}

// outcome waits for a background statement to finish.
func outcome(t testing.TB, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(patience):
		t.Fatalf("%s did not finish within %v", what, patience)
		return nil
	}
}

// execBlocked sends a statement on c in the background and returns once it
// is queued behind a lock (one more lock wait than before it was sent),
// failing the test if it finished instead.
func execBlocked(t testing.TB, srv *server.Server, c *sql.Conn, query, what string) <-chan error {
	t.Helper()
	waits := lockWaits(srv)
	done := execAsync(c, query)
	awaitLockWaits(t, srv, waits+1)
	requirePending(t, done, what)
	return done
}

// requirePending checks that a background statement has not finished.
func requirePending(t testing.TB, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s finished (err=%v) while it should be waiting for a lock", what, err)
	default:
	}
}
