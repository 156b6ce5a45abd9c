package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
)

// holdApply makes nd's FSM stop after writing the entry that carries key
// gate, until the returned release is called: the entries behind it are in
// nd's log but not in its store.
func holdApply(t *testing.T, nd *testNode, gate string) (held <-chan struct{}, release func()) {
	h, r := make(chan struct{}), make(chan struct{})
	var once, ronce sync.Once
	nd.g.FSM().OnApply(func(batches []*kv.Batch, restored bool) {
		for _, b := range batches {
			for _, m := range b.Mutations {
				if string(m.Key) == gate {
					once.Do(func() { close(h) })
					<-r
				}
			}
		}
	})
	release = func() { ronce.Do(func() { close(r) }) }
	t.Cleanup(release)
	return h, release
}

// A new leader must not grant a row lock before it has applied the entries
// of earlier terms: the current read after the lock would miss a commit the
// old leader acknowledged.
func TestLockWaitsForTermBarrier(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	require.NoError(t, propose(t, lead.g, put("row", "v1"))[0])
	c.settle()

	next := c.nodes[(slices.Index(c.nodes, lead)+1)%len(c.nodes)]
	held, release := holdApply(t, next, "gate")
	require.NoError(t, propose(t, lead.g, put("gate", "x"))[0])
	select {
	case <-held:
	case <-time.After(waitLimit):
		t.Fatal("the follower never applied the gate entry")
	}
	// Acknowledged by the leader and the third node; next has it in its log
	// only.
	require.NoError(t, propose(t, lead.g, put("row", "v2"))[0])
	v, err := next.g.Engine().Get([]byte("row"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.Equal(t, "v1", string(v.Data))

	require.NoError(t, lead.g.Raft().LeadershipTransferToServer(next.id, next.addr).Error())
	require.Eventually(t, next.g.IsLeader, waitLimit, 5*time.Millisecond)

	// While the earlier term's entries are not applied, no lock is granted,
	// neither to a local transaction nor to another node's.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = next.g.Lock(ctx, 1, []byte("row"), lock.Exclusive, time.Second)
	cancel()
	require.Error(t, err, "a lock was granted before the term's barrier")
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = next.g.locks.serveLock(ctx, encodeLock("other", 7, lock.Exclusive, time.Second, []byte("row")))
	cancel()
	require.Error(t, err, "a remote lock was granted before the term's barrier")

	release()
	ctx, cancel = context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, next.g.Lock(ctx, 1, []byte("row"), lock.Exclusive, time.Second))
	v, err = next.g.Engine().Get([]byte("row"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.Equal(t, "v2", string(v.Data), "the current read after the lock missed an acknowledged commit")
	next.g.ReleaseAll(1)

	resp, err := next.g.locks.serveLock(ctx, encodeLock("other", 7, lock.Exclusive, time.Second, []byte("row")))
	require.NoError(t, err)
	rowIndex := next.g.FSM().Applied()
	require.Equal(t, rowIndex, binary.BigEndian.Uint64(resp))
}

// startNodeGroup starts a one-node group through a Node whose dials to other
// nodes go through dial.
func startNodeGroup(t *testing.T, dial func(ctx context.Context, addr string) (net.Conn, error), timeout time.Duration) *Group {
	n, err := NewNode(NodeConfig{ID: "solo", PeerAddr: "127.0.0.1:0", Secret: []byte("0123456789abcdef0123456789abcdef"), Dial: dial})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	dir := t.TempDir()
	opts := kv.DefaultOptions(filepath.Join(dir, "state.db"))
	opts.Clock = kv.NewClock(nil)
	opts.GCInterval = 0
	e, err := kv.Open(opts)
	require.NoError(t, err)
	cfg := DefaultConfig("solo", filepath.Join(dir, "raft"), opts)
	cfg.Timeout = timeout
	cfg.LogOutput = io.Discard
	g, err := n.NewGroup(1, cfg, e)
	require.NoError(t, err)
	require.NoError(t, g.Bootstrap([]raft.Server{{ID: "solo", Address: raft.ServerAddress(n.Addr())}}))
	return g
}

// COMMIT calls ReleaseAll once the commit is acknowledged; it must not wait
// for the leaders the transaction locked through, least of all for one that
// cannot be reached (an old leader after a failover).
func TestReleaseAllDoesNotWaitForLeaders(t *testing.T) {
	var dials atomic.Int32
	dialing := make(chan string, 4)
	unblock := make(chan struct{})
	g := startNodeGroup(t, func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		dialing <- addr
		select {
		case <-unblock:
		case <-ctx.Done():
		}
		return nil, errors.New("unreachable")
	}, time.Minute)

	const owner = lock.TxnID(5)
	st := g.locks.owner(owner)
	g.locks.mu.Lock()
	st.remote = map[string]bool{"10.0.0.1:7000": true, "10.0.0.2:7000": true}
	st.n = 2
	g.locks.mu.Unlock()

	returned := make(chan struct{})
	go func() {
		g.ReleaseAll(owner)
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(waitLimit):
		t.Fatal("ReleaseAll waited for an unreachable leader")
	}
	require.Zero(t, g.HeldBy(owner))
	// Each leader is still told, each by its own request.
	got := map[string]bool{}
	for range 2 {
		select {
		case a := <-dialing:
			got[a] = true
		case <-time.After(waitLimit):
			t.Fatal("a release was never sent")
		}
	}
	require.Equal(t, map[string]bool{"10.0.0.1:7000": true, "10.0.0.2:7000": true}, got)
	close(unblock)
	require.NoError(t, g.Shutdown())
	require.Equal(t, int32(2), dials.Load())
}

// A transaction rolled back in place (a deadlock victim) keeps its owner and
// may lock again at once; the background release of its earlier locks must
// not reach the leader after the new grant and drop it.
func TestReleaseAllThenLockSameOwner(t *testing.T) {
	c := newNodeCluster(t, 2)
	lead, follower := c.leaderAndFollower(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	const owner = lock.TxnID(9)
	require.NoError(t, follower.Lock(ctx, owner, []byte("a"), lock.Exclusive, time.Second))

	relocked := make(chan error, 1)
	hooked := make(chan struct{})
	follower.locks.releaseHook = func() {
		close(hooked)
		// Hold the release back until the new lock is granted, or for a
		// while if the new lock waits for it.
		select {
		case err := <-relocked:
			relocked <- err
		case <-time.After(500 * time.Millisecond):
		}
	}
	follower.ReleaseAll(owner)
	<-hooked
	go func() { relocked <- follower.Lock(ctx, owner, []byte("b"), lock.Exclusive, time.Second) }()
	var err error
	select {
	case err = <-relocked:
		relocked <- err
	case <-ctx.Done():
		t.Fatal("the new lock was never granted")
	}
	require.NoError(t, err)
	follower.locks.releasing.Wait()

	// The follower's transaction holds b: nobody else gets it.
	err = lead.Lock(ctx, 1, []byte("b"), lock.Exclusive, 50*time.Millisecond)
	require.ErrorIs(t, err, lock.ErrTimeout, "the earlier release dropped a lock granted after it")
	// And a is free.
	require.NoError(t, lead.Lock(ctx, 1, []byte("a"), lock.Exclusive, time.Second))
}
