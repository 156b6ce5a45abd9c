package cluster

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
)

// MySQL error numbers a client of a cluster meets.
const (
	erUnavailable    = 1047 // no quorum reachable: nothing was written
	erOutcomeUnknown = 1180 // a commit proposed but not confirmed
	erDeadlock       = 1213 // a lock lost (or a deadlock): nothing was written
)

// errNo is the MySQL error number of err, 0 when err is not a MySQL error.
func errNo(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// requireErrNo checks that err, the outcome of what, is a MySQL error with
// one of the numbers, and returns its number.
func requireErrNo(t testing.TB, err error, nums []uint16, what string) uint16 {
	t.Helper()
	require.Error(t, err, what)
	n := errNo(err)
	if !slices.Contains(nums, n) {
		t.Fatalf("%s: got %v (MySQL error %d), want MySQL error %v", what, err, n, nums)
	}
	return n
}

// term is node i's current Raft term.
func term(c *Cluster, i int) uint64 { return c.Nodes[i].Srv.Group().Raft().CurrentTerm() }

// waitNewLeader waits until a running node other than old leads in a term
// above oldTerm, and returns it.
func waitNewLeader(t testing.TB, c *Cluster, old int, oldTerm uint64) int {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for time.Now().Before(deadline) {
		for i, nd := range c.Nodes {
			if i == old || nd.Srv == nil {
				continue
			}
			if tm, ok := nd.Srv.Group().LeaderTerm(); ok && tm > oldTerm {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no node but %s took over within %v", c.Nodes[old].Name, Patience)
	return -1
}

// dedicatedConn is one client session on node i, closed at the end of the
// test, so its transaction state is its own.
func dedicatedConn(t testing.TB, c *Cluster, i int, db string) *sql.Conn {
	t.Helper()
	pool := c.DB(i, db)
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	conn, err := pool.Conn(ctx)
	require.NoError(t, err)
	require.NoError(t, conn.PingContext(ctx))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// settledDump polls dsn until its rows can be read (the node may still be
// rejoining: reads fail with 1047 until it reaches a quorum) and returns
// the first read. Reads are linearizable, so with no writes going on the
// first successful read is already final.
func settledDump(t testing.TB, dsn string) Dump {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		d, err := DumpDSN(ctx, dsn)
		cancel()
		if err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rows from %s within %v: %v", dsn, Patience, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settledChecksum is the digest of settledDump.
func settledChecksum(t testing.TB, dsn string) string {
	t.Helper()
	return settledDump(t, dsn).Digest()
}

// requireConverged checks that every running node holds the same rows,
// and names the rows that differ when they do not.
func requireConverged(t testing.TB, c *Cluster) {
	t.Helper()
	var first Dump
	firstName := ""
	for i, nd := range c.Nodes {
		if nd.Srv == nil {
			continue
		}
		d := settledDump(t, c.DSN(i, ""))
		if first == nil {
			first, firstName = d, nd.Name
			continue
		}
		if d.Digest() != first.Digest() {
			t.Fatalf("nodes diverge: rows only %s has: %v; rows only %s has: %v",
				firstName, first.Only(d), nd.Name, d.Only(first))
		}
	}
}

// queryIDs returns the sorted ids of a table's rows, read through q.
func queryIDs(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string) ([]int64, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
