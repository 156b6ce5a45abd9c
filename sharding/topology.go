package sharding

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/replication"
)

// MaxSiteVoters bounds a site group's voters: five tolerate two failures,
// and more only slow commits down.
const MaxSiteVoters = 5

// Topology places the voters of a node's groups. The node's global group
// is set once it exists; the admission hooks run on whichever node leads.
type Topology struct {
	// Global is the node's member of the global group, whose replica
	// holds the registry.
	Global *replication.Group
	// GlobalVoters is --global-voters.
	GlobalVoters int
	Log          *slog.Logger
}

// AdmitGlobal admits a node to the global group: it records the node in
// the registry, then adds it as a voter or not as the placement of voters
// over sites wants, and moves the other members towards that placement.
func (t *Topology) AdmitGlobal(ctx context.Context, g *replication.Group, r replication.JoinRequest) error {
	site := r.Site
	if site == "" {
		site = DefaultSite
	}
	if err := RegisterNode(ctx, g, Node{ID: string(r.ID), Site: site, PeerAddr: r.Addr, NonVoter: !r.Voter}); err != nil {
		return err
	}
	return t.admit(ctx, g, r, t.GlobalVoters)
}

// AdmitSite admits a node to the group of site.
func (t *Topology) AdmitSite(site string) func(ctx context.Context, g *replication.Group, r replication.JoinRequest) error {
	return func(ctx context.Context, g *replication.Group, r replication.JoinRequest) error {
		if r.Site != site {
			return fmt.Errorf("%w: node %s of site %q asked to join the group of site %q", replication.ErrRejected, r.ID, r.Site, site)
		}
		return t.admit(ctx, g, r, MaxSiteVoters)
	}
}

func (t *Topology) admit(ctx context.Context, g *replication.Group, r replication.JoinRequest, max int) error {
	members, err := t.Members(g)
	if err != nil {
		return err
	}
	found := false
	for i := range members {
		if members[i].ID == string(r.ID) {
			found = true
			members[i].NoVote = members[i].NoVote || !r.Voter
		}
	}
	if !found {
		site := r.Site
		if site == "" {
			site = DefaultSite
		}
		members = append(members, Member{ID: string(r.ID), Site: site, NoVote: !r.Voter})
	}
	_, leader := g.Leader()
	want := DesiredVoters(members, max, string(leader))
	if err := g.AddServer(ctx, r.ID, raft.ServerAddress(r.Addr), want[string(r.ID)]); err != nil {
		return err
	}
	return Reconcile(ctx, g, want)
}

// Members lists g's configuration with each member's site and wishes as
// the registry records them (an unregistered member counts as being of
// the default site).
func (t *Topology) Members(g *replication.Group) ([]Member, error) {
	nodes, err := Nodes(t.Global.Engine())
	if err != nil {
		return nil, err
	}
	cf := g.Raft().GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, err
	}
	var out []Member
	for _, s := range cf.Configuration().Servers {
		m := Member{ID: string(s.ID), Site: DefaultSite, Voter: s.Suffrage == raft.Voter}
		if n, ok := nodes[string(s.ID)]; ok {
			m.Site, m.NoVote = n.Site, n.NonVoter
		}
		out = append(out, m)
	}
	return out, nil
}

// Keep runs on every node for one of its groups until ctx ends: while the
// node leads g, it moves g's voters towards their placement every period
// (members registered after they joined, a leader change in the middle of
// a move, a site that appeared).
func (t *Topology) Keep(ctx context.Context, g *replication.Group, max int, period time.Duration) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	// A failure that repeats every period (a member that is down) is
	// logged when it starts and when it changes, not every second.
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !g.IsLeader() {
			continue
		}
		members, err := t.Members(g)
		if err != nil {
			continue
		}
		_, leader := g.Leader()
		rctx, cancel := context.WithTimeout(ctx, period*5)
		err = Reconcile(rctx, g, DesiredVoters(members, max, string(leader)))
		cancel()
		switch {
		case err == nil:
			lastErr = ""
		case ctx.Err() == nil && err.Error() != lastErr:
			lastErr = err.Error()
			if t.Log != nil {
				t.Log.Warn("placing voters", "group", g.Status().Group, "err", err)
			}
		}
	}
}
