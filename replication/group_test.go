package replication

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
)

const waitLimit = 10 * time.Second

type testNode struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	dir   string
	clock *kv.Clock
	trans *raft.InmemTransport
	g     *Group
}

func (n *testNode) enginePath() string { return filepath.Join(n.dir, "state.db") }

type testCluster struct {
	t     *testing.T
	nodes []*testNode
	tweak func(*Config)
}

// newCluster starts n nodes over in-memory transports and bootstraps them as
// one group.
func newCluster(t *testing.T, n int, tweak func(*Config)) *testCluster {
	c := &testCluster{t: t, tweak: tweak}
	var servers []raft.Server
	for i := range n {
		nd := &testNode{
			id:    raft.ServerID(fmt.Sprintf("n%d", i)),
			addr:  raft.ServerAddress(fmt.Sprintf("inmem-%d", i)),
			dir:   t.TempDir(),
			clock: kv.NewClock(nil),
		}
		c.nodes = append(c.nodes, nd)
		servers = append(servers, raft.Server{ID: nd.id, Address: nd.addr, Suffrage: raft.Voter})
	}
	for i := range c.nodes {
		c.start(i)
	}
	require.NoError(t, c.nodes[0].g.Bootstrap(servers))
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd.g != nil {
				_ = nd.g.Shutdown()
			}
		}
	})
	return c
}

func (c *testCluster) start(i int) {
	require.NoError(c.t, c.tryStart(i))
}

// tryStart starts node i and returns NewGroup's error.
func (c *testCluster) tryStart(i int) error {
	nd := c.nodes[i]
	_, nd.trans = raft.NewInmemTransport(nd.addr)
	for _, o := range c.nodes {
		if o != nd && o.g != nil {
			nd.trans.Connect(o.addr, o.trans)
			o.trans.Connect(nd.addr, nd.trans)
		}
	}
	opts := kv.DefaultOptions(nd.enginePath())
	opts.Clock = nd.clock
	opts.GCInterval = 0
	e, err := kv.Open(opts)
	require.NoError(c.t, err)
	cfg := DefaultConfig(nd.id, filepath.Join(nd.dir, "raft"), opts)
	cfg.Transport = nd.trans
	// Fast enough for short tests, slow enough that a loaded machine (the
	// race detector, other test binaries) does not depose leaders at random.
	cfg.HeartbeatTimeout = 300 * time.Millisecond
	cfg.ElectionTimeout = 300 * time.Millisecond
	cfg.LeaderLeaseTimeout = 150 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.LogOutput = io.Discard
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	g, err := NewGroup(cfg, e)
	if err != nil {
		return err
	}
	nd.g = g
	return nil
}

func (c *testCluster) stop(i int) {
	nd := c.nodes[i]
	require.NoError(c.t, nd.g.Shutdown())
	nd.g = nil
	for _, o := range c.nodes {
		if o != nd && o.trans != nil {
			o.trans.Disconnect(nd.addr)
		}
	}
}

func (c *testCluster) running() []*testNode {
	var out []*testNode
	for _, nd := range c.nodes {
		if nd.g != nil {
			out = append(out, nd)
		}
	}
	return out
}

// leader waits until exactly one running node leads and the others agree.
func (c *testCluster) leader() *testNode {
	var lead *testNode
	require.Eventually(c.t, func() bool {
		lead = nil
		for _, nd := range c.running() {
			if nd.g.IsLeader() {
				if lead != nil {
					return false
				}
				lead = nd
			}
		}
		if lead == nil {
			return false
		}
		for _, nd := range c.running() {
			if addr, _ := nd.g.Leader(); addr != lead.addr {
				return false
			}
		}
		return true
	}, waitLimit, 5*time.Millisecond, "no leader elected")
	return lead
}

// settle waits until every running node has applied all the leader has.
func (c *testCluster) settle() *testNode {
	lead := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(c.t, lead.g.Barrier(ctx))
	want := lead.g.Raft().AppliedIndex()
	// Raft counts an entry applied once handed to the FSM goroutine; the
	// store's own index says when it is in the store.
	stored := lead.g.FSM().Applied()
	require.Eventually(c.t, func() bool {
		for _, nd := range c.running() {
			if nd.g.Raft().AppliedIndex() < want || nd.g.FSM().Applied() < stored {
				return false
			}
		}
		return true
	}, waitLimit, 5*time.Millisecond, "followers did not apply up to %d", want)
	return lead
}

type version struct {
	value string
	ts    kv.Timestamp
}

func dump(t *testing.T, g *Group) map[string]version {
	it := g.Engine().NewIterator(nil, nil, kv.MaxTimestamp, false)
	defer it.Close()
	out := map[string]version{}
	for it.Next() {
		out[string(it.Key())] = version{string(it.Value()), it.Version()}
	}
	require.NoError(t, it.Err())
	return out
}

// requireIdentical compares every key and version of every running node.
func (c *testCluster) requireIdentical() map[string]version {
	nodes := c.running()
	want := dump(c.t, nodes[0].g)
	for _, nd := range nodes[1:] {
		require.Equal(c.t, want, dump(c.t, nd.g), "node %s differs from %s", nd.id, nodes[0].id)
	}
	return want
}

func put(key, value string) *kv.Batch {
	return &kv.Batch{Mutations: []kv.Mutation{{Key: []byte(key), Value: []byte(value)}}}
}

func propose(t *testing.T, g *Group, batches ...*kv.Batch) []error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	errs, err := g.Propose(ctx, batches)
	require.NoError(t, err)
	require.Len(t, errs, len(batches))
	return errs
}

func proposeMany(t *testing.T, g *Group, prefix string, n int) {
	for i := range n {
		errs := propose(t, g, put(fmt.Sprintf("%s-%04d", prefix, i), fmt.Sprint(i)))
		require.NoError(t, errs[0])
	}
}

func TestReplicatesIdentically(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()

	for i := range 20 {
		errs := propose(t, lead.g,
			put(fmt.Sprintf("k%02d", i), "a"),
			&kv.Batch{Mutations: []kv.Mutation{{Key: []byte(fmt.Sprintf("k%02d", i-1)), Delete: i%3 == 0, Value: []byte("b")}}},
		)
		require.Equal(t, []error{nil, nil}, errs)
	}
	c.settle()
	data := c.requireIdentical()
	require.NotEmpty(t, data)

	var prev kv.Timestamp
	for _, v := range data {
		require.NotZero(t, v.ts)
		prev = max(prev, v.ts)
	}
	require.Less(t, prev, lead.clock.Now(), "the leader's clock must be past what it stamped")

	for _, nd := range c.running() {
		if nd == lead {
			continue
		}
		_, err := nd.g.Propose(context.Background(), []*kv.Batch{put("x", "y")})
		var nle *NotLeaderError
		require.ErrorAs(t, err, &nle)
		require.ErrorIs(t, err, ErrNotLeader)
		require.Equal(t, lead.addr, nle.LeaderAddr)
		require.Equal(t, lead.id, nle.LeaderID)
	}
}

func TestPreconditionDecidedAlike(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()

	require.NoError(t, propose(t, lead.g, put("row", "v1"))[0])
	v, err := lead.g.Engine().Get([]byte("row"), kv.MaxTimestamp)
	require.NoError(t, err)

	based := func(val string) *kv.Batch {
		b := put("row", val)
		b.Preconditions = []kv.Precondition{{Key: []byte("row"), Exists: true, Version: v.Version}}
		return b
	}
	claim := &kv.Batch{
		Mutations:     []kv.Mutation{{Key: []byte("unique"), Value: []byte("1")}},
		Preconditions: []kv.Precondition{{Key: []byte("row")}},
	}
	errs := propose(t, lead.g, based("v2"), based("v3"), claim)
	require.NoError(t, errs[0])
	var ce *kv.ConflictError
	require.ErrorAs(t, errs[1], &ce)
	require.Equal(t, "row", string(ce.Key))
	require.ErrorIs(t, errs[2], kv.ErrConflict)

	c.settle()
	data := c.requireIdentical()
	require.Equal(t, "v2", data["row"].value)
	require.NotContains(t, data, "unique")
	for _, nd := range c.running() {
		st := nd.g.FSM().Stats()
		require.Equal(t, uint64(2), st.Conflicts, "node %s", nd.id)
		require.Equal(t, uint64(2), st.Batches, "node %s", nd.id)
	}
}

func TestFollowerCatchesUpThroughSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 4
		cfg.SnapshotThreshold = 8
		cfg.SnapshotInterval = 20 * time.Millisecond
	})
	lead := c.leader()
	proposeMany(t, lead.g, "before", 5)
	c.settle()

	lag := (slices.Index(c.nodes, lead) + 1) % len(c.nodes)
	c.stop(lag)
	proposeMany(t, lead.g, "during", 60)
	require.NoError(t, lead.g.Snapshot())
	first, err := lead.g.store.FirstIndex()
	require.NoError(t, err)
	require.Greater(t, first, uint64(10), "the leader's log must be compacted past what the follower has")

	c.start(lag)
	c.settle()
	c.requireIdentical()
	require.GreaterOrEqual(t, c.nodes[lag].g.FSM().Stats().Restores, uint64(1),
		"the follower should have caught up through an installed snapshot")

	// It goes on applying from the log after the snapshot.
	proposeMany(t, c.leader().g, "after", 5)
	c.settle()
	c.requireIdentical()
}

func TestRestartAllAfterCompaction(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 4
		cfg.SnapshotThreshold = 1 << 20
	})
	lead := c.leader()
	proposeMany(t, lead.g, "a", 30)
	c.settle()
	for _, nd := range c.nodes {
		require.NoError(t, nd.g.Snapshot())
	}
	// Entries after the snapshots are replayed at restart and must be
	// skipped, not applied twice.
	proposeMany(t, lead.g, "b", 10)
	c.settle()
	before := c.requireIdentical()
	applied := map[raft.ServerID]uint64{}
	for _, nd := range c.nodes {
		idx, err := nd.g.AppliedIndex()
		require.NoError(t, err)
		applied[nd.id] = idx
	}

	for i := range c.nodes {
		c.stop(i)
	}
	for i := range c.nodes {
		c.start(i)
	}
	c.settle()
	require.Equal(t, before, c.requireIdentical())
	for _, nd := range c.nodes {
		idx, err := nd.g.AppliedIndex()
		require.NoError(t, err)
		require.GreaterOrEqual(t, idx, applied[nd.id], "node %s went back", nd.id)
		require.Zero(t, nd.g.Engine().Stats().Batches, "node %s applied a batch twice", nd.id)
		st := nd.g.FSM().Stats()
		require.Zero(t, st.Restores, "node %s", nd.id)
		require.Zero(t, st.Entries, "node %s", nd.id)
	}

	proposeMany(t, c.leader().g, "c", 7)
	c.settle()
	c.requireIdentical()
	for _, nd := range c.nodes {
		require.Equal(t, uint64(7), nd.g.Engine().Stats().Batches, "node %s", nd.id)
	}
}

func TestLeaderLoss(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	proposeMany(t, lead.g, "acked", 25)
	c.stop(slices.Index(c.nodes, lead))

	next := c.leader()
	require.NotEqual(t, lead.id, next.id)
	proposeMany(t, next.g, "later", 5)
	c.settle()
	data := c.requireIdentical()
	for i := range 25 {
		require.Contains(t, data, fmt.Sprintf("acked-%04d", i))
	}
	for i := range 5 {
		require.Contains(t, data, fmt.Sprintf("later-%04d", i))
	}
}

func TestRestoresAtStartWhenStoreIsBehindSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 4
		cfg.SnapshotThreshold = 1 << 20
	})
	lead := c.leader()
	proposeMany(t, lead.g, "a", 10)
	c.settle()
	i := (slices.Index(c.nodes, lead) + 1) % len(c.nodes)
	nd := c.nodes[i]
	c.stop(i)
	old, err := os.ReadFile(nd.enginePath())
	require.NoError(t, err)
	c.start(i)

	proposeMany(t, c.leader().g, "b", 20)
	c.settle()
	require.NoError(t, nd.g.Snapshot())
	snapIdx, err := nd.g.AppliedIndex()
	require.NoError(t, err)
	c.stop(i)
	// An old copy of the state file stands in for a lost one.
	require.NoError(t, os.WriteFile(nd.enginePath(), old, 0o600))
	c.start(i)
	require.Equal(t, uint64(1), nd.g.FSM().Stats().Restores)
	idx, err := nd.g.AppliedIndex()
	require.NoError(t, err)
	require.GreaterOrEqual(t, idx, snapIdx)
	c.settle()
	c.requireIdentical()
}

func TestCorruptSnapshotRefused(t *testing.T) {
	dir := t.TempDir()
	opts := kv.DefaultOptions(filepath.Join(dir, "s.db"))
	opts.Clock = kv.NewClock(nil)
	e, err := kv.Open(opts)
	require.NoError(t, err)
	f := NewFSM(e, opts, nil)
	res := f.Apply(&raft.Log{Index: 3, Data: mustEncode(t, put("k", "v"))}).(*ApplyResult)
	require.Equal(t, []error{nil}, res.Errs)

	snap, err := f.Snapshot()
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))
	snap.Release()

	for _, cut := range []int{0, 10, len(sink.buf) - 1} {
		err := f.Restore(io.NopCloser(bytesReader(sink.buf[:cut])))
		require.ErrorIs(t, err, ErrBadSnapshot, "cut at %d", cut)
	}
	flipped := append([]byte(nil), sink.buf...)
	flipped[snapshotHdrSize+3] ^= 1
	require.ErrorIs(t, f.Restore(io.NopCloser(bytesReader(flipped))), ErrBadSnapshot)
	v, err := f.Engine().Get([]byte("k"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.Equal(t, "v", string(v.Data), "a refused snapshot must leave the store alone")

	require.NoError(t, f.Restore(io.NopCloser(bytesReader(sink.buf))))
	idx, err := f.Engine().AppliedIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(3), idx)
	require.NoError(t, f.close())
}

func mustEncode(t *testing.T, batches ...*kv.Batch) []byte {
	ts := make([]kv.Timestamp, len(batches))
	clock := kv.NewClock(nil)
	for i := range ts {
		ts[i] = clock.Now()
	}
	data, err := EncodeCommit(Commit{Batches: batches, TS: ts})
	require.NoError(t, err)
	return data
}

// TestInvalidBatchFailsOnlyItsCommit: a batch that can never be written
// (a key over kv.MaxKeySize) fails alone, with kv.ErrInvalidBatch, while
// the commits queued with it for the same entry are written.
func TestInvalidBatchFailsOnlyItsCommit(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	g := lead.g

	// Hold the entry in flight, so the next commits queue for one entry.
	applying := make(chan struct{})
	release := make(chan struct{})
	var once, releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	g.FSM().OnApply(func(batches []*kv.Batch, _ bool) {
		for _, b := range batches {
			if string(b.Mutations[0].Key) == "first" {
				once.Do(func() { close(applying) })
				<-release
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	go func() { _, _ = g.Commit(ctx, put("first", "v")) }()
	select {
	case <-applying:
	case <-time.After(waitLimit):
		t.Fatal("the first commit was never applied")
	}

	// The proposer takes the next commit at once and holds it until the
	// entry in flight is done; give it one, so that every commit below is
	// left in its queue, to share the next entry.
	held := &proposal{b: put("held", "h"), res: make(chan proposalResult, 1)}
	g.propCh <- held
	require.Eventually(t, func() bool { return len(g.propCh) == 0 }, waitLimit, time.Millisecond)

	bad := &kv.Batch{Mutations: []kv.Mutation{{Key: make([]byte, kv.MaxKeySize+1), Value: []byte("x")}}}
	commits := []*kv.Batch{put("good-1", "1"), bad, put("good-2", "2")}
	errs := make([]error, len(commits))
	var wg sync.WaitGroup
	// Each commit is either queued for the next entry or already answered.
	var answered atomic.Int32
	for i, b := range commits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = g.Commit(ctx, b)
			answered.Add(1)
		}()
	}
	require.Eventually(t, func() bool {
		return len(g.propCh)+int(answered.Load()) == len(commits)
	}, waitLimit, time.Millisecond)
	unblock()
	wg.Wait()
	require.NoError(t, (<-held.res).err)

	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], kv.ErrInvalidBatch)
	require.ErrorIs(t, errs[1], kv.ErrKeyTooLarge)
	require.NotErrorIs(t, errs[1], ErrRejected)
	require.NoError(t, errs[2])
	require.Zero(t, g.FSM().Stats().Invalid, "the invalid batch was refused before it joined an entry")
	v, err := g.Engine().Get([]byte("good-2"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.True(t, v.Exists)

	// An entry that holds one anyway (as an older build could propose) is
	// refused whole, by every replica alike, as it always was: a replica
	// replaying an old log must decide it as the others did.
	_, err = g.Propose(ctx, []*kv.Batch{put("p-1", "1"), bad, put("p-2", "2")})
	require.ErrorIs(t, err, kv.ErrInvalidBatch)
	require.ErrorIs(t, err, ErrRejected)
	require.Equal(t, uint64(1), g.FSM().Stats().Invalid)
	v, err = g.Engine().Get([]byte("p-1"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.False(t, v.Exists)
	c.settle()
	c.requireIdentical()
}
