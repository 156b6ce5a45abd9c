package replication

import (
	"io"

	"github.com/hashicorp/raft"
)

// countingTransport counts the Raft RPCs a group sends, and those to nodes
// of other sites as background round trips between sites (WANStats).
// Raft discovers what a transport offers beyond raft.Transport by type
// assertion (raft v1.8.0: WithClose when it shuts down, WithPreVote when
// it starts, and WithPeers in its test helpers), so countRaftRPCs returns
// a value with exactly the optional interfaces of the transport it wraps:
// a wrapper that hid WithPreVote would turn pre-vote off, one that hid
// WithClose would leak the transport's listener and pool.
type countingTransport struct {
	raft.Transport
	cross func(addr string) bool
	wan   *wanCounters
}

var _ raft.Transport = (*countingTransport)(nil)

func (t *countingTransport) count(target raft.ServerAddress) {
	t.wan.raftRPCs.Add(1)
	if t.cross(string(target)) {
		t.wan.background.Add(1)
	}
}

// AppendEntriesPipeline refuses pipelining, so raft replicates with one
// AppendEntries at a time, each under the transport's timeout. raft v1.8's
// network pipeline can deadlock when the peer stops answering: its decoder
// gives up on a read that timed out, nothing drains the in-flight queue,
// and the sender blocks on it for ever, holding the group's shutdown (a
// node whose peer went away could not close). Pipelining only helps a
// follower that is far behind over a long link; commits wait for one
// round trip either way.
func (t *countingTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (t *countingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	t.count(target)
	return t.Transport.AppendEntries(id, target, args, resp)
}

func (t *countingTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	t.count(target)
	return t.Transport.RequestVote(id, target, args, resp)
}

func (t *countingTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	t.count(target)
	return t.Transport.InstallSnapshot(id, target, args, resp, data)
}

func (t *countingTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	t.count(target)
	return t.Transport.TimeoutNow(id, target, args, resp)
}

// countingPreVote is the pre-vote of a transport that has one.
type countingPreVote struct {
	t     *countingTransport
	inner raft.WithPreVote
}

func (p countingPreVote) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	p.t.count(target)
	return p.inner.RequestPreVote(id, target, args, resp)
}

// countRaftRPCs wraps inner, counting every RPC it sends in wan.raftRPCs
// and those to an address cross reports as another site's in
// wan.background. Inbound RPCs and answers are not counted: the sender
// counts them.
func countRaftRPCs(inner raft.Transport, cross func(addr string) bool, wan *wanCounters) raft.Transport {
	t := &countingTransport{Transport: inner, cross: cross, wan: wan}
	closer, hasClose := inner.(raft.WithClose)
	pv, hasPreVote := inner.(raft.WithPreVote)
	peers, hasPeers := inner.(raft.WithPeers)
	pre := countingPreVote{t: t, inner: pv}
	switch {
	case hasClose && hasPreVote && hasPeers:
		return struct {
			*countingTransport
			raft.WithClose
			countingPreVote
			raft.WithPeers
		}{t, closer, pre, peers}
	case hasClose && hasPreVote:
		return struct {
			*countingTransport
			raft.WithClose
			countingPreVote
		}{t, closer, pre}
	case hasClose && hasPeers:
		return struct {
			*countingTransport
			raft.WithClose
			raft.WithPeers
		}{t, closer, peers}
	case hasPreVote && hasPeers:
		return struct {
			*countingTransport
			countingPreVote
			raft.WithPeers
		}{t, pre, peers}
	case hasClose:
		return struct {
			*countingTransport
			raft.WithClose
		}{t, closer}
	case hasPreVote:
		return struct {
			*countingTransport
			countingPreVote
		}{t, pre}
	case hasPeers:
		return struct {
			*countingTransport
			raft.WithPeers
		}{t, peers}
	}
	return t
}
