package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
)

func book(self string, sites map[string]string) *siteBook {
	b := &siteBook{self: self}
	b.sites.Store(&sites)
	return b
}

func TestSiteBookCrossSite(t *testing.T) {
	b := book("paris", map[string]string{"p:1": "paris", "r:1": "rennes"})
	require.False(t, b.crossSite("p:1"), "same site")
	require.True(t, b.crossSite("r:1"), "another site")
	require.True(t, b.crossSite("x:1"), "an unknown address may be anywhere: it counts")

	none := book("", map[string]string{"r:1": "rennes"})
	require.False(t, none.crossSite("r:1"), "a node with no site counts nothing")
	require.False(t, none.crossSite("x:1"))

	empty := &siteBook{self: "paris"}
	require.True(t, empty.crossSite("p:1"), "no map yet: every peer is unknown")
}

func TestQuorumCrossSite(t *testing.T) {
	sites := map[string]string{"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b", "c1": "c"}
	voter := func(id string) raft.Server {
		return raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id), Suffrage: raft.Voter}
	}
	nonVoter := func(id string) raft.Server {
		return raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id), Suffrage: raft.Nonvoter}
	}
	for _, tc := range []struct {
		name         string
		self, leader string
		servers      []raft.Server
		cross        bool
	}{
		{"one voter per site", "a1", "a1", []raft.Server{voter("a1"), voter("b1"), voter("c1")}, true},
		{"all voters in the leader's site", "a1", "a1", []raft.Server{voter("a1"), voter("a2"), voter("a3")}, false},
		{"non-voters elsewhere do not matter", "a1", "a1", []raft.Server{voter("a1"), voter("a2"), voter("a3"), nonVoter("b1"), nonVoter("c1")}, false},
		{"two of three in the leader's site", "a1", "a1", []raft.Server{voter("a1"), voter("a2"), voter("b1")}, false},
		{"the lone voter of its site leads", "b1", "b1", []raft.Server{voter("a1"), voter("a2"), voter("b1")}, true},
		{"three of five", "a1", "a1", []raft.Server{voter("a1"), voter("a2"), voter("a3"), voter("b1"), voter("b2")}, false},
		{"two of four is no majority", "a1", "a1", []raft.Server{voter("a1"), voter("a2"), voter("b1"), voter("b2")}, true},
		{"sole voter", "a1", "a1", []raft.Server{voter("a1"), nonVoter("b1")}, false},
		{"seen from a follower elsewhere", "c1", "a1", []raft.Server{voter("a1"), voter("a2"), voter("a3"), nonVoter("c1")}, false},
		{"seen from a follower elsewhere, spread", "c1", "a1", []raft.Server{voter("a1"), voter("b1"), voter("c1")}, true},
		{"seen from a follower of the leader's site", "a2", "a1", []raft.Server{voter("a1"), voter("a2"), voter("b1")}, false},
		{"a voter at an unknown address is elsewhere", "a1", "a1", []raft.Server{voter("a1"), voter("z1"), voter("b1")}, true},
		{"a leader at an unknown address has no site", "a1", "z1", []raft.Server{voter("z1"), voter("a1"), voter("a2")}, true},
		{"an unknown leader", "a1", "", []raft.Server{voter("a1"), voter("a2"), voter("a3")}, true},
	} {
		self := sites[tc.self]
		require.Equal(t, tc.cross, book(self, sites).quorumCrossSite(tc.servers, raft.ServerID(tc.self), raft.ServerID(tc.leader)), tc.name)
	}
	require.False(t, book("", sites).quorumCrossSite([]raft.Server{voter("a1"), voter("b1"), voter("c1")}, "a1", "a1"),
		"a node with no site counts nothing")
}

// fakeTransport answers every RPC at once and records nothing; the
// optional interfaces are added by the wrappers below.
type fakeTransport struct{ closed, preVotes atomic.Int64 }

func (f *fakeTransport) Consumer() <-chan raft.RPC          { return nil }
func (f *fakeTransport) LocalAddr() raft.ServerAddress      { return "self" }
func (f *fakeTransport) SetHeartbeatHandler(func(raft.RPC)) {}
func (f *fakeTransport) EncodePeer(_ raft.ServerID, a raft.ServerAddress) []byte {
	return []byte(a)
}
func (f *fakeTransport) DecodePeer(b []byte) raft.ServerAddress { return raft.ServerAddress(b) }
func (f *fakeTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return fakePipeline{}, nil
}
func (f *fakeTransport) AppendEntries(raft.ServerID, raft.ServerAddress, *raft.AppendEntriesRequest, *raft.AppendEntriesResponse) error {
	return nil
}
func (f *fakeTransport) RequestVote(raft.ServerID, raft.ServerAddress, *raft.RequestVoteRequest, *raft.RequestVoteResponse) error {
	return nil
}
func (f *fakeTransport) InstallSnapshot(raft.ServerID, raft.ServerAddress, *raft.InstallSnapshotRequest, *raft.InstallSnapshotResponse, io.Reader) error {
	return nil
}
func (f *fakeTransport) TimeoutNow(raft.ServerID, raft.ServerAddress, *raft.TimeoutNowRequest, *raft.TimeoutNowResponse) error {
	return nil
}

type fakePipeline struct{}

func (fakePipeline) AppendEntries(*raft.AppendEntriesRequest, *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	return nil, nil
}
func (fakePipeline) Consumer() <-chan raft.AppendFuture { return nil }
func (fakePipeline) Close() error                       { return nil }

type fakeClose struct{ f *fakeTransport }

func (c fakeClose) Close() error { c.f.closed.Add(1); return nil }

type fakePreVote struct{ f *fakeTransport }

func (p fakePreVote) RequestPreVote(raft.ServerID, raft.ServerAddress, *raft.RequestPreVoteRequest, *raft.RequestPreVoteResponse) error {
	p.f.preVotes.Add(1)
	return nil
}

type fakePeers struct{}

func (fakePeers) Connect(raft.ServerAddress, raft.Transport) {}
func (fakePeers) Disconnect(raft.ServerAddress)              {}
func (fakePeers) DisconnectAll()                             {}

// fakeWith builds a transport with exactly the optional interfaces asked.
func fakeWith(f *fakeTransport, withClose, withPreVote, withPeers bool) raft.Transport {
	type T = raft.Transport
	c, p := fakeClose{f}, fakePreVote{f}
	switch {
	case withClose && withPreVote && withPeers:
		return struct {
			T
			fakeClose
			fakePreVote
			fakePeers
		}{f, c, p, fakePeers{}}
	case withClose && withPreVote:
		return struct {
			T
			fakeClose
			fakePreVote
		}{f, c, p}
	case withClose && withPeers:
		return struct {
			T
			fakeClose
			fakePeers
		}{f, c, fakePeers{}}
	case withPreVote && withPeers:
		return struct {
			T
			fakePreVote
			fakePeers
		}{f, p, fakePeers{}}
	case withClose:
		return struct {
			T
			fakeClose
		}{f, c}
	case withPreVote:
		return struct {
			T
			fakePreVote
		}{f, p}
	case withPeers:
		return struct {
			T
			fakePeers
		}{f, fakePeers{}}
	}
	return struct{ T }{f}
}

// The wrapper offers exactly the optional interfaces of the transport it
// wraps (raft looks for them by type assertion), and passes their calls on.
func TestCountingTransportKeepsOptionalInterfaces(t *testing.T) {
	for mask := range 8 {
		withClose, withPreVote, withPeers := mask&1 != 0, mask&2 != 0, mask&4 != 0
		f := &fakeTransport{}
		inner := fakeWith(f, withClose, withPreVote, withPeers)
		w := countRaftRPCs(inner, func(string) bool { return true }, &wanCounters{})
		_, hasClose := w.(raft.WithClose)
		_, hasPreVote := w.(raft.WithPreVote)
		_, hasPeers := w.(raft.WithPeers)
		require.Equal(t, withClose, hasClose, "mask %d: WithClose", mask)
		require.Equal(t, withPreVote, hasPreVote, "mask %d: WithPreVote", mask)
		require.Equal(t, withPeers, hasPeers, "mask %d: WithPeers", mask)
		if hasClose {
			require.NoError(t, w.(raft.WithClose).Close())
			require.Equal(t, int64(1), f.closed.Load(), "Close reaches the transport")
		}
		if hasPreVote {
			require.NoError(t, w.(raft.WithPreVote).RequestPreVote("x", "x", &raft.RequestPreVoteRequest{}, &raft.RequestPreVoteResponse{}))
			require.Equal(t, int64(1), f.preVotes.Load(), "a pre-vote reaches the transport")
		}
	}

	// raft's own transports keep what they offer too.
	_, inmem := raft.NewInmemTransport("a")
	w := countRaftRPCs(inmem, func(string) bool { return false }, &wanCounters{})
	_, ok := w.(raft.LoopbackTransport)
	require.True(t, ok, "an in-memory transport stays a loopback transport")
}

// Every RPC sent counts once, whatever its kind; those to another site
// count as background round trips too.
func TestCountingTransportCounts(t *testing.T) {
	var wan wanCounters
	sites := book("paris", map[string]string{"p": "paris", "r": "rennes"})
	w := countRaftRPCs(fakeWith(&fakeTransport{}, true, true, false), sites.crossSite, &wan)
	send := func(target raft.ServerAddress) {
		require.NoError(t, w.AppendEntries("x", target, &raft.AppendEntriesRequest{}, &raft.AppendEntriesResponse{}))
		require.NoError(t, w.RequestVote("x", target, &raft.RequestVoteRequest{}, &raft.RequestVoteResponse{}))
		require.NoError(t, w.(raft.WithPreVote).RequestPreVote("x", target, &raft.RequestPreVoteRequest{}, &raft.RequestPreVoteResponse{}))
		require.NoError(t, w.InstallSnapshot("x", target, &raft.InstallSnapshotRequest{}, &raft.InstallSnapshotResponse{}, bytes.NewReader(nil)))
		require.NoError(t, w.TimeoutNow("x", target, &raft.TimeoutNowRequest{}, &raft.TimeoutNowResponse{}))
		// Pipelining is refused (AppendEntriesPipeline): raft then sends
		// every append as one AppendEntries, counted above.
		_, err := w.AppendEntriesPipeline("x", target)
		require.ErrorIs(t, err, raft.ErrPipelineReplicationNotSupported)
	}
	send("p")
	require.Equal(t, uint64(5), wan.raftRPCs.Load())
	require.Zero(t, wan.background.Load(), "within the site")
	send("r")
	require.Equal(t, uint64(10), wan.raftRPCs.Load())
	require.Equal(t, uint64(5), wan.background.Load(), "to another site")
	send("unknown")
	require.Equal(t, uint64(10), wan.background.Load(), "to an unknown address")
	require.Zero(t, wan.critical.Load(), "no caller waits for Raft's traffic by name")
}

// Counters nest, and WithCallCounter keeps counting calls alone.
func TestCallCountsNest(t *testing.T) {
	var outer CallCounts
	var calls atomic.Uint64
	var inner CallCounts
	ctx := WithCallCounts(context.Background(), &outer)
	ctx = WithCallCounter(ctx, &calls)
	ctx = WithCallCounts(ctx, &inner)
	countCall(ctx)
	var w wanCounters
	w.count(ctx, 2)
	require.Equal(t, uint64(1), outer.Calls.Load())
	require.Equal(t, uint64(1), calls.Load())
	require.Equal(t, uint64(1), inner.Calls.Load())
	require.Equal(t, uint64(2), outer.WAN.Load())
	require.Equal(t, uint64(2), inner.WAN.Load())
	require.Equal(t, uint64(2), w.critical.Load())

	// Spent on behalf of a caller on another node: that node counts it.
	var spent CallCounts
	w.count(spending(ctx, &spent), 1)
	require.Equal(t, uint64(1), spent.WAN.Load())
	require.Equal(t, uint64(3), outer.WAN.Load())
	require.Equal(t, uint64(2), w.critical.Load())

	// Background work counts for no caller.
	w.count(inBackground(ctx), 1)
	require.Equal(t, uint64(3), outer.WAN.Load())
	require.Equal(t, uint64(1), w.background.Load())
}

// wanSetup is a group of three members and a client node, placed in
// sites; it returns the setup and the leader's index.
func wanSetup(t *testing.T, sites []string, clientSite string) (*remoteSetup, int) {
	s := newRemoteSetup(t, len(sites), remoteOpts{sites: sites, clientSite: clientSite})
	lead := s.leader(t)
	// Every member has seen the leader's term barrier and applied it, so
	// no count below includes a new term's first barrier.
	for _, g := range s.groups {
		require.NoError(t, g.ReadBarrier(testCtx(t)))
	}
	return s, lead
}

func counted(t *testing.T, f func(ctx context.Context) error) (calls, wan uint64) {
	t.Helper()
	var c CallCounts
	require.NoError(t, f(WithCallCounts(testCtx(t), &c)))
	return c.Calls.Load(), c.WAN.Load()
}

// A group with one voter per site: a commit waits for another site's
// acknowledgement even on the leader (1), a follower's also crosses to
// reach the leader (2, of which 1 call); a read index likewise. The
// leader's node counts nothing of a forwarded request: its caller's node
// does.
func TestGroupCountsWANRoundTrips(t *testing.T) {
	s, lead := wanSetup(t, []string{"paris", "rennes", "nice"}, "lyon")
	f := (lead + 1) % 3
	leader, follower := s.groups[lead], s.groups[f]

	before := s.members[lead].WANStats().Critical
	calls, wan := counted(t, func(ctx context.Context) error { _, err := leader.Commit(ctx, put("a", "1")); return err })
	require.Equal(t, [2]uint64{0, 1}, [2]uint64{calls, wan}, "commit on the leader: calls, WAN")
	require.Equal(t, before+1, s.members[lead].WANStats().Critical)

	calls, wan = counted(t, func(ctx context.Context) error { _, err := follower.Commit(ctx, put("b", "1")); return err })
	require.Equal(t, [2]uint64{1, 2}, [2]uint64{calls, wan}, "commit from a follower at another site: forward + quorum")
	require.Equal(t, before+1, s.members[lead].WANStats().Critical, "the leader's node does not count a forwarded commit")

	calls, wan = counted(t, func(ctx context.Context) error { _, err := leader.ReadIndex(ctx); return err })
	require.Equal(t, [2]uint64{0, 1}, [2]uint64{calls, wan}, "read index on the leader: its confirmation")
	fBefore := s.members[f].WANStats().Critical
	calls, wan = counted(t, follower.ReadBarrier)
	require.Equal(t, [2]uint64{1, 2}, [2]uint64{calls, wan}, "read barrier on a follower at another site")
	require.Equal(t, fBefore+2, s.members[f].WANStats().Critical)

	// A conflict went through the log all the same.
	calls, wan = counted(t, func(ctx context.Context) error {
		_, err := follower.Commit(ctx, &kv.Batch{
			Mutations:     []kv.Mutation{{Key: []byte("a"), Value: []byte("2")}},
			Preconditions: []kv.Precondition{{Key: []byte("a"), Exists: false}},
		})
		var ce *kv.ConflictError
		if errors.As(err, &ce) {
			return nil
		}
		return fmt.Errorf("expected a conflict, got %v", err)
	})
	require.Equal(t, [2]uint64{1, 2}, [2]uint64{calls, wan}, "a conflicting commit")

	// What a follower works out for a leader that does not report.
	require.Equal(t, uint64(1), follower.leaderQuorumWAN(s.addrs[lead]))
}

// All voters in one site: nothing crosses, whoever commits or reads;
// forwarding still counts as a call.
func TestGroupInOneSiteCountsNoWAN(t *testing.T) {
	s, lead := wanSetup(t, []string{"paris", "paris", "paris"}, "paris")
	f := (lead + 1) % 3
	for _, g := range []*Group{s.groups[lead], s.groups[f]} {
		calls, wan := counted(t, func(ctx context.Context) error { _, err := g.Commit(ctx, put("k", "v")); return err })
		require.Zero(t, wan)
		calls2, wan2 := counted(t, g.ReadBarrier)
		require.Zero(t, wan2)
		if g == s.groups[f] {
			require.Equal(t, uint64(1), calls)
			require.Equal(t, uint64(1), calls2)
		}
	}
	for _, nd := range s.members {
		require.Zero(t, nd.WANStats().Critical)
	}
	require.Equal(t, uint64(0), s.groups[f].leaderQuorumWAN(s.addrs[lead]))
}

// A Remote counts its request as a WAN round trip when the group is at
// another site, and the leader's quorum when it spans sites; its
// background releases count for no caller, on the node's background count.
func TestRemoteCountsWANRoundTrips(t *testing.T) {
	s, _ := wanSetup(t, []string{"rennes", "rennes", "rennes"}, "paris")
	r := s.remote
	remoteGet(t, r, "warm", kv.MaxTimestamp) // finds the leader
	calls, wan := counted(t, func(ctx context.Context) error { _, err := r.Commit(ctx, put("k", "v")); return err })
	require.Equal(t, [2]uint64{1, 1}, [2]uint64{calls, wan}, "commit to a site group elsewhere")
	calls, wan = counted(t, func(ctx context.Context) error { _, err := r.Get(ctx, []byte("k"), kv.MaxTimestamp); return err })
	require.Equal(t, [2]uint64{1, 1}, [2]uint64{calls, wan}, "current read")
	calls, wan = counted(t, func(ctx context.Context) error {
		return r.Lock(ctx, 1, []byte("k"), lock.Exclusive, time.Second)
	})
	require.Equal(t, [2]uint64{1, 1}, [2]uint64{calls, wan}, "lock")
	critical, bg := s.client.WANStats().Critical, s.client.WANStats().Background
	r.ReleaseAll(1)
	r.releasing.Wait()
	require.Equal(t, critical, s.client.WANStats().Critical)
	require.Equal(t, bg+1, s.client.WANStats().Background, "the release is background work")

	// The same client in the group's site crosses nothing.
	s2, _ := wanSetup(t, []string{"rennes", "rennes", "rennes"}, "rennes")
	remoteGet(t, s2.remote, "warm", kv.MaxTimestamp)
	calls, wan = counted(t, func(ctx context.Context) error { _, err := s2.remote.Commit(ctx, put("k", "v")); return err })
	require.Equal(t, [2]uint64{1, 0}, [2]uint64{calls, wan})

	// A group whose voters span sites: the leader's quorum comes back in
	// its answer.
	s3, lead := wanSetup(t, []string{"rennes", "nice", "lyon"}, "paris")
	remoteGet(t, s3.remote, "warm", kv.MaxTimestamp)
	leaderCritical := s3.members[lead].WANStats().Critical
	calls, wan = counted(t, func(ctx context.Context) error { _, err := s3.remote.Commit(ctx, put("k", "v")); return err })
	require.Equal(t, [2]uint64{1, 2}, [2]uint64{calls, wan})
	// A current read makes the leader confirm its leadership across
	// sites; the answer does not report it (DESIGN.md), and the leader's
	// node does not count the caller's wait as its own either.
	calls, wan = counted(t, func(ctx context.Context) error {
		_, err := s3.remote.Get(ctx, []byte("k"), kv.MaxTimestamp)
		return err
	})
	require.Equal(t, [2]uint64{1, 1}, [2]uint64{calls, wan})
	require.Equal(t, leaderCritical, s3.members[lead].WANStats().Critical, "served work is the caller's")
}

// Raft's traffic is counted on every node: heartbeats to other sites raise
// the background count; within one site it stays at zero while the
// heartbeats go on.
func TestRaftTrafficCountedBySite(t *testing.T) {
	spread, lead := wanSetup(t, []string{"paris", "rennes", "nice"}, "lyon")
	nd := spread.members[lead]
	start := nd.WANStats()
	require.Eventually(t, func() bool {
		st := nd.WANStats()
		return st.RaftRPCs >= start.RaftRPCs+20 && st.Background >= start.Background+20
	}, waitLimit, 10*time.Millisecond, "the leader's heartbeats to other sites")

	// (Counted from now: the election ran before the nodes were told
	// where their peers are, and an unknown peer counts as elsewhere.)
	one, lead := wanSetup(t, []string{"paris", "paris", "paris"}, "paris")
	nd = one.members[lead]
	before := make([]WANStats, len(one.members))
	for i, m := range one.members {
		before[i] = m.WANStats()
	}
	require.Eventually(t, func() bool { return nd.WANStats().RaftRPCs >= before[lead].RaftRPCs+20 },
		waitLimit, 10*time.Millisecond, "the leader's heartbeats")
	for i, m := range one.members {
		require.Equal(t, before[i].Background, m.WANStats().Background, "%s: nothing left the site", m.ID())
	}
}
