package replication

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
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

const remoteGroup = 7

// remoteSetup is a group of members, each a Node hosting the group, and a
// client Node that hosts nothing of it and reaches it through a Remote.
type remoteSetup struct {
	members []*Node
	groups  []*Group
	addrs   []string
	down    []bool
	client  *Node
	remote  *Remote
}

type remoteOpts struct {
	leaseTTL  time.Duration // members' Config.LeaseTTL; default when zero
	keepalive time.Duration // every node's KeepaliveInterval; default when zero
	timeout   time.Duration // the client's NodeConfig.Timeout; default when zero
	// sites, when set, places member i at sites[i] and the client at
	// clientSite, and tells every node where every other one is.
	sites      []string
	clientSite string
}

func newRemoteSetup(t *testing.T, n int, o remoteOpts) *remoteSetup {
	s := &remoteSetup{down: make([]bool, n)}
	secret := []byte("replication-test-secret-0123456789abcdef")
	var servers []raft.Server
	for i := range n {
		site := ""
		if o.sites != nil {
			site = o.sites[i]
		}
		nd, err := NewNode(NodeConfig{
			ID:                raft.ServerID(fmt.Sprintf("m%d", i)),
			PeerAddr:          "127.0.0.1:0",
			Secret:            secret,
			KeepaliveInterval: o.keepalive,
			Site:              site,
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = nd.Close() })
		dir := t.TempDir()
		opts := kv.DefaultOptions(filepath.Join(dir, "state.db"))
		opts.Clock = kv.NewClock(nil)
		opts.GCInterval = 0
		opts.Logger = slog.New(slog.DiscardHandler)
		e, err := kv.Open(opts)
		require.NoError(t, err)
		cfg := DefaultConfig(nd.ID(), filepath.Join(dir, "raft"), opts)
		cfg.HeartbeatTimeout = 300 * time.Millisecond
		cfg.ElectionTimeout = 300 * time.Millisecond
		cfg.LeaderLeaseTimeout = 150 * time.Millisecond
		cfg.CommitTimeout = 5 * time.Millisecond
		cfg.LogOutput = io.Discard
		cfg.LeaseTTL = o.leaseTTL
		g, err := nd.NewGroup(remoteGroup, cfg, e)
		require.NoError(t, err)
		s.members = append(s.members, nd)
		s.groups = append(s.groups, g)
		s.addrs = append(s.addrs, nd.Addr())
		servers = append(servers, raft.Server{ID: nd.ID(), Address: raft.ServerAddress(nd.Addr()), Suffrage: raft.Voter})
	}
	require.NoError(t, s.groups[0].Bootstrap(servers))
	client, err := NewNode(NodeConfig{
		ID:                "client",
		PeerAddr:          "127.0.0.1:0",
		Secret:            secret,
		Timeout:           o.timeout,
		KeepaliveInterval: o.keepalive,
		Site:              o.clientSite,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	s.client = client
	if o.sites != nil {
		book := map[string]string{client.Addr(): o.clientSite}
		for i, a := range s.addrs {
			book[a] = o.sites[i]
		}
		for _, nd := range append(slices.Clone(s.members), client) {
			nd.SetPeerSites(book)
		}
	}
	s.remote = client.Remote(remoteGroup, func() []string { return slices.Clone(s.addrs) })
	return s
}

// leader waits until one running member leads and the others agree, and
// returns its index.
func (s *remoteSetup) leader(t *testing.T) int {
	lead := -1
	require.Eventually(t, func() bool {
		lead = -1
		for i, g := range s.groups {
			if !s.down[i] && g.IsLeader() {
				lead = i
			}
		}
		if lead < 0 {
			return false
		}
		for i, g := range s.groups {
			if s.down[i] || i == lead {
				continue
			}
			if _, id := g.Leader(); id != s.groups[lead].cfg.ID {
				return false
			}
		}
		return true
	}, waitLimit, 5*time.Millisecond, "no leader elected")
	return lead
}

func (s *remoteSetup) follower(t *testing.T) int {
	lead := s.leader(t)
	for i := range s.groups {
		if i != lead && !s.down[i] {
			return i
		}
	}
	t.Fatal("no follower running")
	return -1
}

// stop kills member i's node, with its group and port.
func (s *remoteSetup) stop(t *testing.T, i int) {
	require.NoError(t, s.members[i].Close())
	s.down[i] = true
}

// caughtUp waits until every running member has applied index.
func (s *remoteSetup) caughtUp(t *testing.T, index uint64) {
	require.Eventually(t, func() bool {
		for i, g := range s.groups {
			if !s.down[i] && g.FSM().Applied() < index {
				return false
			}
		}
		return true
	}, waitLimit, 5*time.Millisecond, "members did not apply up to %d", index)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func remoteGet(t *testing.T, r *Remote, key string, ts kv.Timestamp) kv.Value {
	t.Helper()
	v, err := r.Get(testCtx(t), []byte(key), ts)
	require.NoError(t, err)
	return v
}

func memberGet(t *testing.T, g *Group, key string) kv.Value {
	t.Helper()
	require.NoError(t, g.ReadBarrier(testCtx(t)))
	v, err := g.Engine().Get([]byte(key), kv.MaxTimestamp)
	require.NoError(t, err)
	return v
}

// Current reads through a Remote see every commit acknowledged before
// them, made on any member or through the Remote itself, and the members
// see the Remote's commits.
func TestRemoteReadsAreLinearizable(t *testing.T) {
	s := newRemoteSetup(t, 3, remoteOpts{})
	lead := s.leader(t)
	r := s.remote
	ctx := testCtx(t)

	require.False(t, remoteGet(t, r, "k", kv.MaxTimestamp).Exists)
	for round := range 5 {
		for i, g := range s.groups {
			val := fmt.Sprintf("%d-%d", round, i)
			_, err := g.Commit(ctx, put("k", val))
			require.NoError(t, err)
			v := remoteGet(t, r, "k", kv.MaxTimestamp)
			require.Equal(t, val, string(v.Data), "the read missed a commit acknowledged on member %d", i)
			require.NotZero(t, v.Version)
		}
		val := fmt.Sprintf("remote-%d", round)
		_, err := r.Commit(ctx, put("k", val))
		require.NoError(t, err)
		require.Equal(t, val, string(remoteGet(t, r, "k", kv.MaxTimestamp).Data), "the Remote missed its own commit")
		for _, g := range s.groups {
			require.Equal(t, val, string(memberGet(t, g, "k").Data))
		}
	}
	require.Equal(t, s.addrs[lead], r.Leader())
}

// scanAll reads [start, end) at ts through chunks of at most limit keys,
// checking each chunk's bounds, and counts the chunks the byte bound cut
// short.
func scanAll(t *testing.T, r *Remote, start, end []byte, ts kv.Timestamp, reverse bool, limit int) (out []KV, cut int) {
	t.Helper()
	ctx := testCtx(t)
	for {
		kvs, more, err := r.Scan(ctx, start, end, ts, reverse, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(kvs), limit)
		size, largest := 0, 0
		for _, e := range kvs {
			size += len(e.Key) + len(e.Value)
			largest = max(largest, len(e.Key)+len(e.Value))
		}
		require.LessOrEqual(t, size, scanChunkBytes+largest, "a chunk went on past the byte bound")
		out = append(out, kvs...)
		if !more {
			return out, cut
		}
		if len(kvs) < limit {
			require.GreaterOrEqual(t, size, scanChunkBytes, "a chunk was cut short below the byte bound")
			cut++
		}
		require.NotEmpty(t, kvs, "an empty chunk that claims more cannot be resumed")
		last := kvs[len(kvs)-1].Key
		if reverse {
			end = bytes.Clone(last)
		} else {
			start = append(bytes.Clone(last), 0)
		}
	}
}

// A Scan reads a large range in bounded chunks, forward and reverse, with
// deleted keys skipped, at the current state and at a snapshot.
func TestRemoteScanChunks(t *testing.T) {
	s := newRemoteSetup(t, 3, remoteOpts{})
	lead := s.groups[s.leader(t)]
	r := s.remote
	ctx := testCtx(t)

	want := map[string]string{}
	b := &kv.Batch{}
	for i := range 400 {
		k, v := fmt.Sprintf("row-%04d", i), fmt.Sprintf("value-%d", i)
		if i%20 == 7 {
			// Five of them pass the byte bound.
			v = string(bytes.Repeat([]byte{byte('a' + i%26)}, 250<<10))
		}
		b.Mutations = append(b.Mutations, kv.Mutation{Key: []byte(k), Value: []byte(v)})
		want[k] = v
		// Entries of a few hundred KB, which a loaded machine replicates
		// well within the election timeout.
		if len(b.Mutations) == 20 {
			_, err := lead.Commit(ctx, b)
			require.NoError(t, err)
			b = &kv.Batch{}
		}
	}
	_, err := lead.Commit(ctx, put("other", "outside"))
	require.NoError(t, err)
	del := &kv.Batch{}
	for i := 0; i < 400; i += 3 {
		k := fmt.Sprintf("row-%04d", i)
		del.Mutations = append(del.Mutations, kv.Mutation{Key: []byte(k), Delete: true})
		delete(want, k)
	}
	_, err = lead.Commit(ctx, del)
	require.NoError(t, err)
	ts, err := r.Snapshot(ctx, 1)
	require.NoError(t, err)
	// Written after the snapshot: visible to current reads only.
	_, err = lead.Commit(ctx, put("row-0001", "changed"))
	require.NoError(t, err)

	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	check := func(got []KV, reverse bool, at kv.Timestamp) {
		t.Helper()
		order := slices.Clone(keys)
		if reverse {
			slices.Reverse(order)
		}
		require.Len(t, got, len(order))
		for i, e := range got {
			require.Equal(t, order[i], string(e.Key))
			v := want[order[i]]
			if order[i] == "row-0001" && at == kv.MaxTimestamp {
				v = "changed"
			}
			require.Equal(t, v, string(e.Value), "key %s", e.Key)
			require.NotZero(t, e.Version)
			require.LessOrEqual(t, e.Version, at)
		}
	}
	for _, reverse := range []bool{false, true} {
		for _, at := range []kv.Timestamp{ts, kv.MaxTimestamp} {
			got, _ := scanAll(t, r, []byte("row-"), []byte("row-~"), at, reverse, 50)
			check(got, reverse, at)
			got, cut := scanAll(t, r, []byte("row-"), []byte("row-~"), at, reverse, maxScanKeys)
			check(got, reverse, at)
			require.Positive(t, cut, "the large values never reached the byte bound")
		}
	}
	// The default chunk is 128 keys, and an unbounded end reaches "other".
	got, more, err := r.Scan(ctx, []byte("row-"), nil, ts, false, 0)
	require.NoError(t, err)
	require.True(t, more)
	require.LessOrEqual(t, len(got), scanChunkKeys)
	all, _ := scanAll(t, r, []byte("row-"), nil, ts, false, 1000)
	require.Len(t, all, len(keys))
	all, _ = scanAll(t, r, nil, nil, ts, true, 1000)
	require.Equal(t, keys[len(keys)-1], string(all[0].Key))
	require.Equal(t, "other", string(all[len(all)-1].Key))
	// An empty range is empty, not everything.
	got, more, err = r.Scan(ctx, []byte("row-"), []byte{}, ts, false, 10)
	require.NoError(t, err)
	require.False(t, more)
	require.Empty(t, got)
}

// A snapshot taken through a Remote stays repeatable while members commit
// and the leader collects garbage; once released, GC removes what it held
// and a read at it fails instead of answering from newer versions.
func TestRemoteSnapshotRepeatableUnderGC(t *testing.T) {
	s := newRemoteSetup(t, 3, remoteOpts{})
	li := s.leader(t)
	lead := s.groups[li]
	follower := s.groups[s.follower(t)]
	r := s.remote
	ctx := testCtx(t)

	b := &kv.Batch{Mutations: []kv.Mutation{
		{Key: []byte("k"), Value: []byte("v1")},
		{Key: []byte("gone"), Value: []byte("x")},
		{Key: []byte("old"), Value: []byte("o1")},
	}}
	_, err := follower.Commit(ctx, b)
	require.NoError(t, err)
	// Garbage from before the snapshot, which GC may collect under it.
	_, err = follower.Commit(ctx, put("old", "o2"))
	require.NoError(t, err)
	ts, err := r.Snapshot(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, 1, lead.rsnaps.count())

	read := func() {
		t.Helper()
		require.Equal(t, "v1", string(remoteGet(t, r, "k", ts).Data))
		require.True(t, remoteGet(t, r, "gone", ts).Exists)
		require.False(t, remoteGet(t, r, "new", ts).Exists)
		got, more, err := r.Scan(ctx, nil, nil, ts, false, 10)
		require.NoError(t, err)
		require.False(t, more)
		require.Len(t, got, 3)
		require.Equal(t, "gone", string(got[0].Key))
		require.Equal(t, "k", string(got[1].Key))
		require.Equal(t, "v1", string(got[1].Value))
		require.Equal(t, "o2", string(got[2].Value))
	}
	read()
	for i := range 3 {
		_, err = follower.Commit(ctx, put("k", fmt.Sprintf("v%d", i+2)))
		require.NoError(t, err)
		_, err = lead.Commit(ctx, put("new", fmt.Sprint(i)))
		require.NoError(t, err)
		_, err = follower.Commit(ctx, &kv.Batch{Mutations: []kv.Mutation{{Key: []byte("gone"), Delete: true}}})
		require.NoError(t, err)
		// GC runs behind the snapshot: only o1, superseded before it, goes.
		removed, err := lead.Engine().GC()
		require.NoError(t, err)
		if i == 0 {
			require.Equal(t, 1, removed)
		} else {
			require.Zero(t, removed)
		}
		read()
	}
	require.Equal(t, "v4", string(remoteGet(t, r, "k", kv.MaxTimestamp).Data))

	require.NoError(t, r.ReleaseSnapshot(ctx, 1))
	require.Zero(t, lead.rsnaps.count())
	removed, err := lead.Engine().GC()
	require.NoError(t, err)
	// v1 to v3 of k, 0 and 1 of new, x and the tombstone of gone.
	require.Equal(t, 7, removed, "the released snapshot still held versions")
	_, err = r.Get(ctx, []byte("k"), ts)
	require.ErrorIs(t, err, ErrSnapshotLost)
	require.ErrorIs(t, err, ErrUnavailable)
	_, _, err = r.Scan(ctx, nil, nil, ts, false, 10)
	require.ErrorIs(t, err, ErrSnapshotLost)
}

// Locks a Remote takes are held at the leader: a member's conflicting lock
// waits for them and times out, ReleaseAll frees them, and a deadlock
// across the Remote's and a member's transactions, or a wait too long,
// comes back as the same error a member's own transaction gets.
func TestRemoteLocks(t *testing.T) {
	s := newRemoteSetup(t, 3, remoteOpts{})
	lead := s.groups[s.leader(t)]
	follower := s.groups[s.follower(t)]
	r := s.remote
	ctx := testCtx(t)

	require.NoError(t, r.Lock(ctx, 1, []byte("a"), lock.Exclusive, time.Second))
	// Held: a member's transaction, local to the leader or forwarded
	// from a follower, waits and times out.
	require.ErrorIs(t, lead.Lock(ctx, 100, []byte("a"), lock.Shared, 50*time.Millisecond), lock.ErrTimeout)
	require.ErrorIs(t, follower.Lock(ctx, 101, []byte("a"), lock.Exclusive, 50*time.Millisecond), lock.ErrTimeout)
	// Shared locks are shared with the Remote too.
	require.NoError(t, r.Lock(ctx, 2, []byte("s"), lock.Shared, time.Second))
	require.NoError(t, lead.Lock(ctx, 100, []byte("s"), lock.Shared, time.Second))

	// The other way round: the Remote waits for a member and times out.
	require.NoError(t, lead.Lock(ctx, 100, []byte("b"), lock.Exclusive, time.Second))
	err := r.Lock(ctx, 1, []byte("b"), lock.Exclusive, 50*time.Millisecond)
	require.ErrorIs(t, err, lock.ErrTimeout)
	require.Equal(t, lock.ErrTimeout, err, "the timeout must come back as the sentinel itself")

	// Deadlock: the member's 100 waits for a held by the Remote's 1; the
	// Remote's 1 then asks for b, held by 100, and is the victim.
	waits := lead.LockStats().Waits
	got := make(chan error, 1)
	go func() { got <- lead.Lock(ctx, 100, []byte("a"), lock.Exclusive, waitLimit) }()
	require.Eventually(t, func() bool { return lead.LockStats().Waits > waits }, waitLimit, time.Millisecond)
	err = r.Lock(ctx, 1, []byte("b"), lock.Exclusive, waitLimit)
	require.ErrorIs(t, err, lock.ErrDeadlock)
	require.Equal(t, lock.ErrDeadlock, err)

	// Released by ReleaseAll: the member's waiting lock is granted.
	r.ReleaseAll(1)
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("the member's lock was not granted after ReleaseAll")
	}
	// The victim locks again at once (its release may be in flight).
	require.NoError(t, r.Lock(ctx, 1, []byte("c"), lock.Exclusive, time.Second))
	require.ErrorIs(t, follower.Lock(ctx, 101, []byte("c"), lock.Exclusive, 50*time.Millisecond), lock.ErrTimeout)
	r.ReleaseAll(1)
	r.ReleaseAll(2)
	lead.ReleaseAll(100)
	require.NoError(t, follower.Lock(ctx, 101, []byte("c"), lock.Exclusive, waitLimit))
	require.NoError(t, follower.Lock(ctx, 101, []byte("s"), lock.Exclusive, waitLimit))
	follower.ReleaseAll(101)
}

// The leader keeps a Remote's locks and snapshots while its node renews
// them, beyond the lease; once the node dies it drops them after the
// lease, so a member's lock goes through and GC proceeds.
func TestRemoteLeasesExpireWhenTheNodeDies(t *testing.T) {
	const ttl = time.Second
	s := newRemoteSetup(t, 3, remoteOpts{leaseTTL: ttl, keepalive: 50 * time.Millisecond})
	lead := s.groups[s.leader(t)]
	r := s.remote
	ctx := testCtx(t)

	_, err := lead.Commit(ctx, put("k", "v1"))
	require.NoError(t, err)
	require.NoError(t, r.Lock(ctx, 1, []byte("row"), lock.Exclusive, time.Second))
	ts, err := r.Snapshot(ctx, 2)
	require.NoError(t, err)
	_, err = lead.Commit(ctx, put("k", "v2"))
	require.NoError(t, err)

	// Renewed for well over the lease: keepalives (counted) go out every
	// 50 ms, so 3 × ttl / 50 ms of them span three leases.
	calls := r.Calls()
	require.Eventually(t, func() bool { return r.Calls() >= calls+uint64(3*ttl/(50*time.Millisecond)) },
		waitLimit, 10*time.Millisecond)
	require.ErrorIs(t, lead.Lock(ctx, 100, []byte("row"), lock.Exclusive, 50*time.Millisecond), lock.ErrTimeout)
	removed, err := lead.Engine().GC()
	require.NoError(t, err)
	require.Zero(t, removed, "GC removed a version a renewed snapshot sees")
	require.Equal(t, "v1", string(remoteGet(t, r, "k", ts).Data))

	require.NoError(t, s.client.Close())
	require.NoError(t, lead.Lock(ctx, 100, []byte("row"), lock.Exclusive, waitLimit),
		"the dead node's lock was never dropped")
	require.Eventually(t, func() bool { return lead.rsnaps.count() == 0 }, waitLimit, 10*time.Millisecond)
	removed, err = lead.Engine().GC()
	require.NoError(t, err)
	require.Equal(t, 1, removed, "the dead node's snapshot still holds GC")
}

// A commit through a Remote is decided by the same preconditions as one
// made on a member, and fails the same way.
func TestRemoteCommitConflictsLikeALocalOne(t *testing.T) {
	s := newRemoteSetup(t, 3, remoteOpts{})
	lead := s.groups[s.leader(t)]
	r := s.remote
	ctx := testCtx(t)

	_, err := r.Commit(ctx, put("row", "v1"))
	require.NoError(t, err)
	v := remoteGet(t, r, "row", kv.MaxTimestamp)
	based := func(val string, version kv.Timestamp) *kv.Batch {
		b := put("row", val)
		b.Preconditions = []kv.Precondition{{Key: []byte("other")}, {Key: []byte("row"), Exists: true, Version: version}}
		return b
	}
	_, err = r.Commit(ctx, based("v2", v.Version))
	require.NoError(t, err)
	require.Equal(t, "v2", string(remoteGet(t, r, "row", kv.MaxTimestamp).Data))

	// The same stale batch, through the Remote and on the leader.
	_, remoteErr := r.Commit(ctx, based("v3", v.Version))
	_, localErr := lead.Commit(ctx, based("v3", v.Version))
	var rce, lce *kv.ConflictError
	require.ErrorAs(t, remoteErr, &rce)
	require.ErrorAs(t, localErr, &lce)
	require.Equal(t, lce, rce)
	require.Equal(t, 1, rce.Index)
	require.Equal(t, "row", string(rce.Key))
	require.ErrorIs(t, remoteErr, kv.ErrConflict)

	// A unique claim: absent expected.
	claim := &kv.Batch{
		Mutations:     []kv.Mutation{{Key: []byte("uniq"), Value: []byte("1")}},
		Preconditions: []kv.Precondition{{Key: []byte("row")}},
	}
	_, err = r.Commit(ctx, claim)
	require.ErrorAs(t, err, &rce)
	require.Equal(t, "row", string(rce.Key))
	require.Equal(t, "v2", string(memberGet(t, lead, "row").Data))
	require.False(t, memberGet(t, lead, "uniq").Exists)

	// A batch that can never be written is refused before it is sent.
	calls := r.Calls()
	_, err = r.Commit(ctx, &kv.Batch{Mutations: []kv.Mutation{{Key: make([]byte, kv.MaxKeySize+1), Value: []byte("x")}}})
	require.ErrorIs(t, err, kv.ErrInvalidBatch)
	require.Equal(t, calls, r.Calls())
}

// When the leader dies, a Remote's requests follow the new leader. Its
// snapshots were registered at the old leader only: a read at one either
// answers exactly (the new leader's store still holds what it sees, and it
// now keeps it) or fails with ErrSnapshotLost, never with other data.
func TestRemoteFollowsFailover(t *testing.T) {
	s := newRemoteSetup(t, 3, remoteOpts{keepalive: 50 * time.Millisecond})
	li := s.leader(t)
	r := s.remote
	ctx := testCtx(t)

	_, err := r.Commit(ctx, put("k", "v1"))
	require.NoError(t, err)
	older, err := r.Snapshot(ctx, 1)
	require.NoError(t, err)
	_, err = r.Commit(ctx, put("k", "v2"))
	require.NoError(t, err)
	newer, err := r.Snapshot(ctx, 2)
	require.NoError(t, err)
	index, err := r.Commit(ctx, put("k", "v3"))
	require.NoError(t, err)
	require.NoError(t, r.Lock(ctx, 3, []byte("row"), lock.Exclusive, time.Second))
	require.Equal(t, s.addrs[li], r.Leader())

	// The followers collect garbage as if a reader of their own held the
	// newer snapshot: behind it, so what the older one sees is gone.
	s.caughtUp(t, index)
	var holds []*kv.Snapshot
	for i, g := range s.groups {
		if i == li {
			continue
		}
		h, err := g.Engine().SnapshotAt(newer)
		require.NoError(t, err)
		holds = append(holds, h)
		removed, err := g.Engine().GC()
		require.NoError(t, err)
		require.Equal(t, 1, removed)
	}

	s.stop(t, li)
	next := s.groups[s.leader(t)]

	require.Equal(t, "v2", string(remoteGet(t, r, "k", newer).Data))
	_, err = r.Get(ctx, []byte("k"), older)
	require.ErrorIs(t, err, ErrSnapshotLost)
	require.ErrorIs(t, err, ErrUnavailable)
	require.Equal(t, next.node.Addr(), r.Leader())

	// The new leader now holds the newer snapshot itself: the followers'
	// holds go, GC runs, and the snapshot still reads alike.
	require.Eventually(t, func() bool { return next.rsnaps.count() == 1 }, waitLimit, 5*time.Millisecond)
	for _, h := range holds {
		h.Release()
	}
	_, err = next.Engine().GC()
	require.NoError(t, err)
	require.Equal(t, "v2", string(remoteGet(t, r, "k", newer).Data))
	got, _, err := r.Scan(ctx, nil, nil, newer, false, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "v2", string(got[0].Value))

	// Current reads, locks and commits go to the new leader. The old
	// leader's lock table died with it.
	require.Equal(t, "v3", string(remoteGet(t, r, "k", kv.MaxTimestamp).Data))
	require.NoError(t, next.Lock(ctx, 100, []byte("row"), lock.Exclusive, time.Second))
	next.ReleaseAll(100)
	r.ReleaseAll(3)
	require.NoError(t, r.Lock(ctx, 3, []byte("row"), lock.Exclusive, time.Second))
	_, err = r.Commit(ctx, put("k", "v4"))
	require.NoError(t, err)
	require.Equal(t, "v4", string(remoteGet(t, r, "k", kv.MaxTimestamp).Data))
	require.Equal(t, "v4", string(memberGet(t, next, "k").Data))
	r.ReleaseAll(3)
}

// With every member down, each kind of request fails with ErrUnavailable
// within the node's timeout, and a commit that could not be sent is not
// "outcome unknown".
func TestRemoteAllMembersDown(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s := newRemoteSetup(t, 3, remoteOpts{timeout: timeout})
	s.leader(t)
	r := s.remote
	ctx := testCtx(t)
	_, err := r.Commit(ctx, put("k", "v"))
	require.NoError(t, err)
	for i := range s.members {
		s.stop(t, i)
	}

	var counted atomic.Uint64
	cctx := WithCallCounter(ctx, &counted)
	for name, op := range map[string]func() error{
		"get":      func() error { _, err := r.Get(cctx, []byte("k"), kv.MaxTimestamp); return err },
		"scan":     func() error { _, _, err := r.Scan(cctx, nil, nil, kv.MaxTimestamp, false, 0); return err },
		"snapshot": func() error { _, err := r.Snapshot(cctx, 1); return err },
		"lock":     func() error { return r.Lock(cctx, 1, []byte("k"), lock.Exclusive, time.Second) },
		"commit":   func() error { _, err := r.Commit(cctx, put("k", "w")); return err },
	} {
		before := counted.Load()
		start := time.Now()
		err := op()
		elapsed := time.Since(start)
		require.ErrorIs(t, err, ErrUnavailable, name)
		require.NotErrorIs(t, err, ErrOutcomeUnknown, name)
		// Bounded by the timeout, not by the test's context.
		require.Less(t, elapsed, 4*timeout, name)
		require.Greater(t, counted.Load(), before+uint64(len(s.members)), "%s: every attempt counts", name)
	}
}

// Each request a Remote sends on behalf of a context counts once on its
// counter; a redirect from a member that does not lead counts again.
func TestRemoteCountsCalls(t *testing.T) {
	s := newRemoteSetup(t, 3, remoteOpts{})
	s.leader(t)
	r := s.remote
	var counted atomic.Uint64
	ctx := WithCallCounter(testCtx(t), &counted)

	remoteGet(t, r, "warm", kv.MaxTimestamp) // finds the leader
	counted.Store(0)
	before := r.Calls()
	_, err := r.Commit(ctx, put("k", "v"))
	require.NoError(t, err)
	_, err = r.Get(ctx, []byte("k"), kv.MaxTimestamp)
	require.NoError(t, err)
	ts, err := r.Snapshot(ctx, 1)
	require.NoError(t, err)
	_, _, err = r.Scan(ctx, nil, nil, ts, false, 0)
	require.NoError(t, err)
	require.NoError(t, r.Lock(ctx, 1, []byte("k"), lock.Exclusive, time.Second))
	require.NoError(t, r.ReleaseSnapshot(ctx, 1))
	require.Equal(t, uint64(6), counted.Load())

	// Sent to a follower first: it redirects, and the leader answers.
	r.setLeader(s.addrs[s.follower(t)])
	_, err = r.Get(ctx, []byte("k"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.Equal(t, uint64(8), counted.Load())
	require.Equal(t, s.addrs[s.leader(t)], r.Leader())

	// The background release is the Remote's, not the context's.
	r.ReleaseAll(1)
	r.releasing.Wait()
	require.Equal(t, uint64(8), counted.Load())
	require.GreaterOrEqual(t, r.Calls(), before+9)
}

// Once a Remote's commit has left the node, the leader may write it
// whatever the caller does: a caller that gives up then is told the
// outcome is unknown, and the commit is in fact written.
func TestRemoteCommitCancelledAfterSendIsOutcomeUnknown(t *testing.T) {
	s := newRemoteSetup(t, 3, remoteOpts{})
	lead := s.groups[s.leader(t)]
	r := s.remote

	applying := make(chan struct{})
	release := make(chan struct{})
	var once, releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	lead.FSM().OnApply(func(batches []*kv.Batch, _ bool) {
		for _, b := range batches {
			for _, m := range b.Mutations {
				if string(m.Key) == "held" {
					once.Do(func() { close(applying) })
					<-release
				}
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.Commit(ctx, put("held", "v"))
		done <- err
	}()
	select {
	case <-applying:
	case <-time.After(waitLimit):
		t.Fatal("the commit never reached the leader's state machine")
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(waitLimit):
		t.Fatal("the cancelled commit did not return")
	}
	unblock()
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.ErrorIs(t, err, context.Canceled)
	require.True(t, remoteGet(t, r, "held", kv.MaxTimestamp).Exists, "the commit the caller gave up on was not written")
}

// A group whose members nobody knows is unavailable, at once.
func TestRemoteWithoutMembers(t *testing.T) {
	n, err := NewNode(NodeConfig{ID: "lonely", PeerAddr: "127.0.0.1:0", Secret: []byte("replication-test-secret-0123456789abcdef"),
		Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer n.Close()
	r := n.Remote(42, func() []string { return nil })
	require.Same(t, r, n.Remote(42, func() []string { return nil }), "one handle per group")
	_, err = r.Get(testCtx(t), []byte("k"), kv.MaxTimestamp)
	require.ErrorIs(t, err, ErrUnavailable)
	require.Zero(t, r.Calls())
	require.NoError(t, n.Close())
	_, err = r.Get(testCtx(t), []byte("k"), kv.MaxTimestamp)
	require.ErrorIs(t, err, ErrShutdown)
}

// Members whose packets are dropped (a cut link) are no faster to give up
// on than dead ones: requests fail with ErrUnavailable within the timeout,
// and a commit that never left is not "outcome unknown".
func TestRemoteUnreachableMembers(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s := newRemoteSetup(t, 3, remoteOpts{})
	s.leader(t)
	var dials atomic.Int32
	n, err := NewNode(NodeConfig{ID: "cut", PeerAddr: "127.0.0.1:0", Secret: []byte("replication-test-secret-0123456789abcdef"),
		Timeout: timeout,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		}})
	require.NoError(t, err)
	defer n.Close()
	r := n.Remote(remoteGroup, func() []string { return slices.Clone(s.addrs) })
	ctx := testCtx(t)
	for name, op := range map[string]func() error{
		"get":    func() error { _, err := r.Get(ctx, []byte("k"), kv.MaxTimestamp); return err },
		"lock":   func() error { return r.Lock(ctx, 1, []byte("k"), lock.Exclusive, timeout) },
		"commit": func() error { _, err := r.Commit(ctx, put("k", "w")); return err },
	} {
		start := time.Now()
		err := op()
		require.ErrorIs(t, err, ErrUnavailable, name)
		require.NotErrorIs(t, err, ErrOutcomeUnknown, name)
		require.Less(t, time.Since(start), 4*timeout, name)
	}
	require.Positive(t, dials.Load())
}
