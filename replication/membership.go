package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// JoinRequest asks a group's leader to admit a node.
type JoinRequest struct {
	ID   raft.ServerID
	Addr string
	// Site is the joining node's site; a leader with an Admit hook places
	// voters by it. Empty from a node that predates sites.
	Site string
	// Voter is what the node asks to be; an Admit hook may decide
	// otherwise.
	Voter bool
}

func (r JoinRequest) encode() []byte {
	req := appendBytes(appendBytes(nil, []byte(r.ID)), []byte(r.Addr))
	if r.Voter {
		req = append(req, 1)
	} else {
		req = append(req, 0)
	}
	// The site follows the fields older builds read, which they ignore.
	return appendBytes(req, []byte(r.Site))
}

func decodeJoin(payload []byte) (JoinRequest, error) {
	d := decoder{buf: payload}
	r := JoinRequest{ID: raft.ServerID(d.bytes()), Addr: string(d.bytes())}
	voter := d.byte()
	if d.err == nil && len(d.buf) > 0 {
		r.Site = string(d.bytes())
	}
	if d.err != nil || voter > 1 || r.ID == "" || r.Addr == "" {
		return r, fmt.Errorf("replication: bad join request")
	}
	r.Voter = voter == 1
	return r, nil
}

// Join adds the server id at addr to the group, as a voter or a non-voter,
// through whichever node leads. Called on a new node, it reaches the leader
// through the member at via (a peer address); a node already in the
// configuration with the same address is left as it is.
func (n *Node) Join(ctx context.Context, group uint64, via string, id raft.ServerID, addr string, voter bool) error {
	return n.JoinWith(ctx, group, via, JoinRequest{ID: id, Addr: addr, Voter: voter})
}

// JoinWith is Join with the whole request, the site included.
func (n *Node) JoinWith(ctx context.Context, group uint64, via string, r JoinRequest) error {
	req := r.encode()
	deadline := time.Now().Add(time.Minute)
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	for {
		_, err := n.rpc.call(ctx, via, group, methodJoin, 0, req)
		if err == nil {
			return nil
		}
		var nl *NotLeaderError
		switch {
		case asNotLeader(err, &nl) && nl.LeaderAddr != "":
			via = string(nl.LeaderAddr)
		case errors.Is(err, ErrRejected):
			// The leader refused this node; asking again changes nothing.
			return fmt.Errorf("replication: joining through %s: %w", via, err)
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("replication: joining through %s: %w", via, err)
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

func (g *Group) serveJoin(ctx context.Context, payload []byte) error {
	r, err := decodeJoin(payload)
	if err != nil {
		return err
	}
	if g.cfg.Admit != nil {
		if !g.IsLeader() {
			return g.notLeader()
		}
		return g.cfg.Admit(ctx, g, r)
	}
	return g.AddServer(ctx, r.ID, raft.ServerAddress(r.Addr), r.Voter)
}

// Promote makes the non-voter id a voter; only the leader can.
func (g *Group) Promote(ctx context.Context, id raft.ServerID) error {
	cf := g.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return g.leaderErr(err)
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID != id {
			continue
		}
		if s.Suffrage == raft.Voter {
			return nil
		}
		if err := waitFuture(ctx, g.raft.AddVoter(id, s.Address, 0, g.cfg.Timeout)); err != nil {
			return g.leaderErr(err)
		}
		g.logger.Info("member promoted to voter", "id", id)
		return nil
	}
	return fmt.Errorf("%w: %s is not a member", ErrNoSuchMember, id)
}

// Demote makes the voter id a non-voter; only the leader can. A leader
// demoting itself steps down once the change commits.
func (g *Group) Demote(ctx context.Context, id raft.ServerID) error {
	if err := waitFuture(ctx, g.raft.DemoteVoter(id, 0, g.cfg.Timeout)); err != nil {
		return g.leaderErr(err)
	}
	g.logger.Info("member demoted to non-voter", "id", id)
	return nil
}

// AddServer adds a member; only the leader can.
func (g *Group) AddServer(ctx context.Context, id raft.ServerID, addr raft.ServerAddress, voter bool) error {
	cf := g.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return g.leaderErr(err)
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == id && s.Address == addr && (s.Suffrage == raft.Voter) == voter {
			return nil
		}
	}
	if err := g.checkJoiner(ctx, addr); err != nil {
		return err
	}
	var f raft.IndexFuture
	if voter {
		f = g.raft.AddVoter(id, addr, 0, g.cfg.Timeout)
	} else {
		f = g.raft.AddNonvoter(id, addr, 0, g.cfg.Timeout)
	}
	if err := waitFuture(ctx, f); err != nil {
		return g.leaderErr(err)
	}
	g.logger.Info("member added", "id", id, "addr", addr, "voter", voter)
	return nil
}

// Remove takes server id out of the group, through the leader.
func (g *Group) Remove(ctx context.Context, id raft.ServerID) error {
	return g.toLeader(ctx, true, func(ctx context.Context) error {
		return g.removeServer(ctx, id)
	}, func(ctx context.Context, addr string) error {
		_, err := g.node.rpc.call(ctx, addr, g.id, methodRemove, g.fsm.Applied(), appendBytes(nil, []byte(id)))
		return err
	})
}

func (g *Group) serveRemove(ctx context.Context, payload []byte) error {
	d := decoder{buf: payload}
	id := raft.ServerID(d.bytes())
	if d.err != nil || id == "" {
		return fmt.Errorf("replication: bad remove request")
	}
	return g.removeServer(ctx, id)
}

func (g *Group) removeServer(ctx context.Context, id raft.ServerID) error {
	cf := g.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return g.leaderErr(err)
	}
	found := false
	for _, s := range cf.Configuration().Servers {
		found = found || s.ID == id
	}
	if !found {
		return fmt.Errorf("%w: %s is not a member", ErrNoSuchMember, id)
	}
	if err := waitFuture(ctx, g.raft.RemoveServer(id, 0, g.cfg.Timeout)); err != nil {
		return g.leaderErr(err)
	}
	g.logger.Info("member removed", "id", id)
	return nil
}

// Member is one server of the group's configuration.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	// Version is what the member advertised when last asked; nil before
	// this node has asked.
	Version *MemberVersion `json:"version,omitempty"`
}

// Status is a group's state as this node sees it.
type Status struct {
	Group        uint64   `json:"group"`
	Role         string   `json:"role"`
	Leader       string   `json:"leader"`
	LeaderAddr   string   `json:"leader_addr"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	LastIndex    uint64   `json:"last_index"`
	Members      []Member `json:"members"`
	// Version is this node's advertised version; ActiveVersion the lowest
	// over the members when last asked (nil before), which bounds what a
	// leader proposes.
	Version       Version  `json:"version"`
	ActiveVersion *Version `json:"active_version"`
	// LogWrites and StateWrites count fsynced writes of the Raft log and
	// of the state file; Commits counts acknowledged commits proposed here
	// and Entries the log entries carrying them.
	LogWrites   uint64 `json:"log_writes"`
	StateWrites uint64 `json:"state_writes"`
	Commits     uint64 `json:"commits"`
	Entries     uint64 `json:"entries"`
}

// Status reports the group's role, leader, indexes and members.
func (g *Group) Status() Status {
	addr, id := g.raft.LeaderWithID()
	st := Status{
		Group:        g.id,
		Role:         g.raft.State().String(),
		Leader:       string(id),
		LeaderAddr:   string(addr),
		Term:         g.raft.CurrentTerm(),
		CommitIndex:  g.raft.CommitIndex(),
		AppliedIndex: g.raft.AppliedIndex(),
		LastIndex:    g.raft.LastIndex(),
		LogWrites:    g.logs.writes.Load(),
		StateWrites:  g.fsm.Engine().Stats().Fsyncs,
		Commits:      g.stats.commits.Load(),
		Entries:      g.stats.entries.Load(),
	}
	byID, active := g.memberVersions()
	st.Version, st.ActiveVersion = g.advertised(), active
	if cf := g.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			m := Member{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter}
			if v, ok := byID[s.ID]; ok {
				m.Version = &v
			}
			st.Members = append(st.Members, m)
		}
	}
	return st
}

// HasState reports whether this node had Raft state (a log, a term or a
// snapshot) when it started, so a restart rejoins with it instead of
// bootstrapping or joining anew.
func (g *Group) HasState() bool { return g.hadState }

// HandOver passes leadership to another voter before this node stops, so
// a clean shutdown costs the cluster no election timeout. It does nothing
// on a follower or a lone voter, and gives up after the timeout.
func (g *Group) HandOver(timeout time.Duration) error {
	if g.raft.State() != raft.Leader {
		return nil
	}
	voters := 0
	if cf := g.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
	}
	if voters < 2 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := waitFuture(ctx, g.raft.LeadershipTransfer()); err != nil {
		return fmt.Errorf("replication: handing leadership over: %w", err)
	}
	return nil
}

// checkJoiner refuses a new member whose build cannot apply the entry
// types the log already holds: it would panic replaying them. Versions only
// rise in a log, so the types in use are those the store has seen.
func (g *Group) checkJoiner(ctx context.Context, addr raft.ServerAddress) error {
	inUse := CommandCommit
	if g.fsm.ClusterID() != nil {
		inUse = CommandClusterID
	}
	if inUse == CommandCommit {
		return nil
	}
	v := g.askVersion(ctx, string(addr))
	if !v.Known {
		return fmt.Errorf("%w: cannot ask the joining node at %s for its version", ErrUnavailable, addr)
	}
	if v.Commands < inUse {
		return fmt.Errorf("%w: the joining node's build (%s, %v) cannot apply command type %d, which the log holds; upgrade it first",
			ErrRejected, v.Build, v.Version, inUse)
	}
	return nil
}
