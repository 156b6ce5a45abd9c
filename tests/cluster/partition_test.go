package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
	"github.com/fogdb/fogdb/wanem"
)

// partitionTimeout is the cluster timeout of the partition tests: how long
// a node cut off from the majority tries before answering 1047 or 1180.
const partitionTimeout = time.Second

// answerBound is how long any statement may take to be answered while the
// network is broken: the cluster timeout plus a generous margin. A
// statement that takes longer hangs.
const answerBound = partitionTimeout + 5*time.Second

func shortClusterTimeout(_ int, cfg *server.Config) {
	cfg.Cluster.Timeout = partitionTimeout
}

// boundedExec runs one statement on conn and fails the test if it is not
// answered within answerBound.
func boundedExec(t testing.TB, conn *sql.Conn, query string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), answerBound)
	defer cancel()
	start := time.Now()
	_, err := conn.ExecContext(ctx, query)
	require.Less(t, time.Since(start), answerBound, "%s: not answered in time (%v)", query, err)
	return err
}

// boundedQueryInt runs a query returning one integer on conn within
// answerBound.
func boundedQueryInt(t testing.TB, conn *sql.Conn, query string) (int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), answerBound)
	defer cancel()
	start := time.Now()
	var v int64
	err := conn.QueryRowContext(ctx, query).Scan(&v)
	require.Less(t, time.Since(start), answerBound, "%s: not answered in time (%v)", query, err)
	return v, err
}

// queryIntOn reads one integer on node i, failing the test on error.
func queryIntOn(t testing.TB, c *Cluster, i int, query string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	var v int64
	require.NoError(t, c.DB(i, "").QueryRowContext(ctx, query).Scan(&v), "%s on %s", query, c.Nodes[i].Name)
	return v
}

// A follower cut off from the rest refuses writes and reads with 1047
// within the cluster timeout (reads are linearizable, so it cannot serve
// what it has), writes nothing of what it refused, and once the network
// heals serves reads and writes again with the rows the majority committed
// meanwhile.
func TestIsolatedFollowerRefusesThenRecovers(t *testing.T) {
	c := Start(t, 3, shortClusterTimeout)
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE p", "CREATE TABLE p.t (id INT PRIMARY KEY, v INT)", "INSERT INTO p.t VALUES (1, 0)")
	f := c.Follower()
	c.WaitMember(f)
	conn := dedicatedConn(t, c, f, "p")

	c.Net.Isolate(c.Nodes[f].Name)
	for _, q := range []string{
		"INSERT INTO t VALUES (100, 100)",
		"UPDATE t SET v = 100 WHERE id = 1",
		"DELETE FROM t WHERE id = 1",
		"BEGIN",
		"INSERT INTO t VALUES (101, 101)",
		"ROLLBACK",
	} {
		err := boundedExec(t, conn, q)
		if q == "BEGIN" || q == "ROLLBACK" {
			require.NoError(t, err, q)
			continue
		}
		requireErrNo(t, err, []uint16{erUnavailable}, q)
	}
	_, err := boundedQueryInt(t, conn, "SELECT v FROM t WHERE id = 1")
	requireErrNo(t, err, []uint16{erUnavailable}, "a read on the isolated follower")
	_, err = boundedQueryInt(t, conn, "SELECT COUNT(*) FROM t")
	requireErrNo(t, err, []uint16{erUnavailable}, "a scan on the isolated follower")

	// The majority goes on without it.
	maj := dedicatedConn(t, c, l, "p")
	for _, q := range []string{"INSERT INTO t VALUES (2, 2)", "UPDATE t SET v = 1 WHERE id = 1"} {
		require.NoError(t, boundedExec(t, maj, q), q)
	}

	c.Net.Heal()
	deadline := time.Now().Add(Patience)
	for {
		_, err := boundedQueryInt(t, conn, "SELECT COUNT(*) FROM t")
		if err == nil {
			break
		}
		require.Equal(t, uint16(erUnavailable), errNo(err), "%v", err)
		require.True(t, time.Now().Before(deadline), "the follower still refuses reads %v after the heal: %v", Patience, err)
	}
	v, err := boundedQueryInt(t, conn, "SELECT v FROM t WHERE id = 1")
	require.NoError(t, err)
	require.EqualValues(t, 1, v, "the follower's read misses the majority's update")
	n, err := boundedQueryInt(t, conn, "SELECT COUNT(*) FROM t WHERE id IN (2)")
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the follower's read misses the majority's insert")
	n, err = boundedQueryInt(t, conn, "SELECT COUNT(*) FROM t WHERE id >= 100")
	require.NoError(t, err)
	require.Zero(t, n, "a write refused with 1047 was written")
	require.NoError(t, boundedExec(t, conn, "INSERT INTO t VALUES (3, 3)"))
	requireConverged(t, c)
	for i := range c.Nodes {
		require.EqualValues(t, 3, queryIntOn(t, c, i, "SELECT COUNT(*) FROM p.t"), "%s", c.Nodes[i].Name)
	}
}

// writeOutcomes records what a client streaming autocommit INSERTs was
// told about each row.
type writeOutcomes struct {
	mu          sync.Mutex
	acked       []int64 // committed: must be everywhere
	unavailable []int64 // 1047, nothing written: must be nowhere
	unknown     []int64 // 1180: either
	other       []error
}

func (w *writeOutcomes) record(id int64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil:
		w.acked = append(w.acked, id)
	case errNo(err) == erUnavailable:
		w.unavailable = append(w.unavailable, id)
	case errNo(err) == erOutcomeUnknown:
		w.unknown = append(w.unknown, id)
	default:
		w.other = append(w.other, fmt.Errorf("row %d: %w", id, err))
	}
}

func (w *writeOutcomes) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// streamInserts runs autocommit INSERTs of ids first, first+1, ... into
// p.t on conn until stop closes, each bounded by answerBound.
func streamInserts(conn *sql.Conn, first int64, stop <-chan struct{}, out *writeOutcomes) (done <-chan struct{}) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for id := first; ; id++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), answerBound)
			_, err := conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO t VALUES (%d, 0)", id))
			if ctx.Err() != nil {
				err = fmt.Errorf("not answered within %v: %w", answerBound, err)
			}
			cancel()
			out.record(id, err)
		}
	}()
	return ch
}

// rowsIn returns which of the ids in [lo, hi] table p.t holds, read on
// node i.
func rowsIn(t testing.TB, c *Cluster, i int, lo, hi int64) map[int64]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	ids, err := queryIDs(ctx, c.DB(i, "p"), fmt.Sprintf("SELECT id FROM t WHERE id BETWEEN %d AND %d", lo, hi))
	require.NoError(t, err)
	has := map[int64]bool{}
	for _, id := range ids {
		has[id] = true
	}
	return has
}

// A leader cut off from the others while clients write on it answers
// every statement within the cluster timeout, with 1180 (outcome unknown)
// when a commit was proposed and cannot be confirmed, or 1047 when nothing
// was proposed. Meanwhile the majority elects a leader and accepts writes;
// after the heal every node holds the same rows, every acknowledged row is
// there, and no row refused with 1047 is.
//
// A client streaming autocommit INSERTs may meet either error, depending
// on where its statement was when the network broke. The 1180 case is
// then made deterministic: a transaction writes (taking its locks) while
// its node leads and nothing else is in flight, the network is cut, and
// only then COMMIT is sent, so it is proposed on the isolated leader
// (which keeps leading for a lease timeout, 300 ms here). Its entry was
// appended after the cut, so it never reaches a majority: the row is
// nowhere after the heal.
func TestIsolatedLeaderCommitOutcomeUnknown(t *testing.T) {
	const commitAttempts = 3
	c := Start(t, 3, shortClusterTimeout)
	c.Exec(c.Leader(), "CREATE DATABASE p", "CREATE TABLE p.t (id BIGINT PRIMARY KEY, v INT)")

	// isolateLeader runs during(leader), which cuts the leader off, then
	// waits for another node to take over and write, heals and checks that
	// every node holds the same rows. Each call writes ids from base, which
	// it returns.
	round := int64(0)
	isolateLeader := func(during func(l int)) (base int64) {
		round++
		base = round * 1_000_000
		l := c.Leader()
		for i := range c.Nodes {
			c.WaitMember(i)
		}
		oldTerm := term(c, l)
		during(l)
		nl := waitNewLeader(t, c, l, oldTerm)
		maj := dedicatedConn(t, c, nl, "p")
		require.NoError(t, boundedExec(t, maj, fmt.Sprintf("INSERT INTO t VALUES (%d, 2)", base)), "a write on the new leader %s", c.Nodes[nl].Name)
		c.Net.Heal()
		requireConverged(t, c)
		require.True(t, rowsIn(t, c, l, base, base)[base], "the majority's write is missing")
		return base
	}

	// A client streams autocommit INSERTs to the leader across its
	// isolation.
	var w writeOutcomes
	base := isolateLeader(func(l int) {
		streamer := dedicatedConn(t, c, l, "p")
		stop := make(chan struct{})
		done := streamInserts(streamer, (round*1_000_000)+1, stop, &w)
		require.Eventually(t, func() bool { return w.ackedCount() >= 5 }, Patience, time.Millisecond, "the streaming client commits nothing")
		c.Net.Isolate(c.Nodes[l].Name)
		// Let it meet the partition: wait until it was answered at least
		// once after the cut.
		w.mu.Lock()
		n0 := len(w.acked) + len(w.unavailable) + len(w.unknown) + len(w.other)
		w.mu.Unlock()
		require.Eventually(t, func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return len(w.acked)+len(w.unavailable)+len(w.unknown)+len(w.other) >= n0+2
		}, Patience, time.Millisecond, "the streaming client got no answer on the isolated leader")
		close(stop)
		<-done
	})
	require.Empty(t, w.other, "the streaming client met other errors than 1047 and 1180, or no answer in time")
	require.NotEmpty(t, append(w.unavailable, w.unknown...), "the streaming client never noticed the partition")
	has := rowsIn(t, c, 0, base, base+999_999)
	for _, id := range w.acked {
		require.True(t, has[id], "acknowledged row %d is missing", id)
	}
	for _, id := range w.unavailable {
		require.False(t, has[id], "row %d, refused with 1047, was written", id)
	}
	t.Logf("streaming client: %d acknowledged, %d unavailable (1047), %d unknown (1180)", len(w.acked), len(w.unavailable), len(w.unknown))

	// A COMMIT sent just after the cut.
	answers := map[uint16]int{}
	for a := 0; a < commitAttempts; a++ {
		var txID int64
		isolateLeader(func(l int) {
			txID = round*1_000_000 + 1
			tx := dedicatedConn(t, c, l, "p")
			require.NoError(t, boundedExec(t, tx, "BEGIN"))
			require.NoError(t, boundedExec(t, tx, fmt.Sprintf("INSERT INTO t VALUES (%d, 1)", txID)))
			c.Net.Isolate(c.Nodes[l].Name)
			err := boundedExec(t, tx, "COMMIT")
			n := requireErrNo(t, err, []uint16{erOutcomeUnknown, erUnavailable}, "COMMIT on the isolated leader "+c.Nodes[l].Name)
			answers[n]++
			t.Logf("attempt %d: COMMIT on the isolated leader %s: %v", a, c.Nodes[l].Name, err)
		})
		for i := range c.Nodes {
			require.False(t, rowsIn(t, c, i, txID, txID)[txID], "%s: the commit proposed on the isolated leader was applied", c.Nodes[i].Name)
		}
	}
	require.Positive(t, answers[erOutcomeUnknown], "no COMMIT on an isolated leader answered 1180: %v", answers)
}

// A row lock lost in a leader change never lets a stale read-modify-write
// through: a transaction on a follower locks a row (SELECT ... FOR
// UPDATE), the leader holding the lock table is cut off and another node
// takes over, a client on the third node updates the row and commits
// without waiting for the lost lock, and the first transaction's COMMIT of
// the value it computed from its read fails with 1213 instead of
// overwriting that update. The row then holds exactly the committed
// updates, on every node, and the retried transaction succeeds.
func TestLockLostInLeaderChangeFailsCommit(t *testing.T) {
	c := Start(t, 3, shortClusterTimeout)
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE lk", "CREATE TABLE lk.c (id INT PRIMARY KEY, v INT)", "INSERT INTO lk.c VALUES (1, 0)")
	x := c.Follower()
	y := 3 - l - x
	for i := range c.Nodes {
		c.WaitMember(i)
	}
	tx := dedicatedConn(t, c, x, "lk")
	other := dedicatedConn(t, c, y, "lk")

	require.NoError(t, boundedExec(t, tx, "BEGIN"))
	v0, err := boundedQueryInt(t, tx, "SELECT v FROM c WHERE id = 1 FOR UPDATE")
	require.NoError(t, err)
	require.EqualValues(t, 0, v0)

	oldTerm := term(c, l)
	c.Net.Isolate(c.Nodes[l].Name)
	nl := waitNewLeader(t, c, l, oldTerm)
	t.Logf("leader %s isolated; %s took over", c.Nodes[l].Name, c.Nodes[nl].Name)
	// The lock lived in the old leader's table: this update does not wait.
	require.NoError(t, boundedExec(t, other, "UPDATE c SET v = v + 1 WHERE id = 1"))
	c.Net.Heal()

	err = boundedExec(t, tx, fmt.Sprintf("UPDATE c SET v = %d WHERE id = 1", v0+100))
	failedAt := "UPDATE"
	if err == nil {
		failedAt = "COMMIT"
		err = boundedExec(t, tx, "COMMIT")
	} else {
		require.NoError(t, boundedExec(t, tx, "ROLLBACK"))
	}
	requireErrNo(t, err, []uint16{erDeadlock}, "the transaction whose lock was lost committed")
	t.Logf("the transaction whose lock was lost failed at %s: %v", failedAt, err)

	requireConverged(t, c)
	for i := range c.Nodes {
		require.EqualValues(t, 1, queryIntOn(t, c, i, "SELECT v FROM lk.c WHERE id = 1"), "%s", c.Nodes[i].Name)
	}

	// Retried, the read-modify-write goes through.
	require.NoError(t, boundedExec(t, tx, "BEGIN"))
	v1, err := boundedQueryInt(t, tx, "SELECT v FROM c WHERE id = 1 FOR UPDATE")
	require.NoError(t, err)
	require.EqualValues(t, 1, v1)
	require.NoError(t, boundedExec(t, tx, fmt.Sprintf("UPDATE c SET v = %d WHERE id = 1", v1+100)))
	require.NoError(t, boundedExec(t, tx, "COMMIT"))
	requireConverged(t, c)
	for i := range c.Nodes {
		require.EqualValues(t, 101, queryIntOn(t, c, i, "SELECT v FROM lk.c WHERE id = 1"), "%s", c.Nodes[i].Name)
	}
}

// A follower that cannot reach the leader never answers from a stale
// catalog: a table whose CREATE TABLE was acknowledged (by the leader and
// the third node) while the follower was cut off from the leader is not
// reported missing there. Statements naming it answer 1047 until the
// follower can catch up (reads are linearizable, DDL included), and
// succeed once the network heals.
func TestFollowerCutFromLeaderServesNoStaleCatalog(t *testing.T) {
	c := Start(t, 3, shortClusterTimeout)
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE sc")
	f := c.Follower()
	for i := range c.Nodes {
		c.WaitMember(i)
	}
	conn := dedicatedConn(t, c, f, "sc")

	c.Net.Cut(c.Nodes[l].Name, c.Nodes[f].Name)
	c.Exec(l, "CREATE TABLE sc.t (id INT PRIMARY KEY, v INT)", "INSERT INTO sc.t VALUES (1, 1)")
	_, err := boundedQueryInt(t, conn, "SELECT COUNT(*) FROM t")
	requireErrNo(t, err, []uint16{erUnavailable}, "a read of a table created while this node was cut off from the leader")
	err = boundedExec(t, conn, "INSERT INTO t VALUES (2, 2)")
	requireErrNo(t, err, []uint16{erUnavailable}, "a write to a table created while this node was cut off from the leader")

	c.Net.Heal()
	deadline := time.Now().Add(Patience)
	for {
		n, err := boundedQueryInt(t, conn, "SELECT COUNT(*) FROM t")
		if err == nil {
			require.EqualValues(t, 1, n)
			break
		}
		requireErrNo(t, err, []uint16{erUnavailable}, "a read after the heal")
		require.True(t, time.Now().Before(deadline), "still unavailable %v after the heal: %v", Patience, err)
	}
	require.NoError(t, boundedExec(t, conn, "INSERT INTO t VALUES (2, 2)"))
	requireConverged(t, c)
}

// A follower whose connection to the leader goes silent (its site cut off
// in blackhole mode, as a WAN link that stops carrying packets, found by
// the container tests) answers a write within the cluster timeout: the row
// lock it asks the leader for may wait up to innodb_lock_wait_timeout
// there, but a leader that answers nothing must not hold the client that
// long. Inside a transaction the lock request fails as unavailable (1047);
// an autocommit write sends its commit with its locks, and may have been
// proposed before the silence, so it may also end as outcome unknown
// (1180).
func TestWriteThroughSilentLeaderFailsInTime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []string // run before the cut
		stmt   string
		want   []uint16
	}{
		// The transaction has passed its read barrier: the UPDATE's first
		// request to the leader is its lock.
		{"in a transaction", []string{"BEGIN", "SELECT v FROM t WHERE id = 1"}, "UPDATE t SET v = 3 WHERE id = 1", []uint16{erUnavailable}},
		{"autocommit", nil, "INSERT INTO t VALUES (2, 2)", []uint16{erUnavailable, erOutcomeUnknown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sites := []string{"paris", "rennes", "nice"}
			c := StartSites(t, sites, shortClusterTimeout)
			l := c.Leader()
			c.Exec(l, "CREATE DATABASE sl", "CREATE TABLE sl.t (id INT PRIMARY KEY, v INT)")
			f := c.Follower()
			c.WaitMember(f)
			conn := dedicatedConn(t, c, f, "sl")
			// The follower has spoken to the leader, several requests at
			// once: connections to it wait in its pool, open.
			require.NoError(t, boundedExec(t, conn, "INSERT INTO t VALUES (1, 1)"))
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := c.DB(f, "sl").Exec(fmt.Sprintf("INSERT INTO t VALUES (%d, 0)", 10+i))
					assert.NoError(t, err)
				}()
			}
			wg.Wait()
			// The lock wait the leader would allow is far longer than
			// answerBound, so an answer within it comes from the silence.
			var wait int
			require.NoError(t, conn.QueryRowContext(context.Background(), "SELECT @@innodb_lock_wait_timeout").Scan(&wait))
			require.Greater(t, time.Duration(wait)*time.Second, answerBound)

			for _, q := range tc.before {
				require.NoError(t, boundedExec(t, conn, q), q)
			}
			for _, s := range sites {
				if s != c.Nodes[f].Site {
					c.WAN.Cut(c.Nodes[f].Site, s, wanem.Blackhole)
				}
			}
			requireErrNo(t, boundedExec(t, conn, tc.stmt), tc.want, tc.stmt)
			c.WAN.HealAll()
			maj := dedicatedConn(t, c, l, "sl")
			require.NoError(t, boundedExec(t, maj, "INSERT INTO t VALUES (3, 3)"))
			requireConverged(t, c)
		})
	}
}
