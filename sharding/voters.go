package sharding

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/replication"
)

// Member is a group member as voter placement sees it.
type Member struct {
	ID    string
	Site  string
	Voter bool
	// NoVote: the operator asked for a replica that never votes.
	NoVote bool
}

// DesiredVoters picks the voters a group of members should have: an odd
// number (an even one tolerates no more failures than the odd one below
// it, and splits evenly in a cut), at most max, spread over sites so that
// no site holds more than its share (the ceiling of voters / sites).
// Current voters are kept where the rules allow, so a group changes as
// little as it can; leader, when set and allowed, is kept above all.
//
// For the global group max is --global-voters: with three sites or more
// that is one voter per site, as DESIGN.md asks; with two sites it is two
// in one and one in the other, because a cut of the site with one voter
// then leaves the other a quorum, where one voter per site would leave
// neither side able to write. A site group's members share one site, so
// its voters are the largest odd number up to max (5) of its nodes.
func DesiredVoters(members []Member, max int, leader string) map[string]bool {
	var cands []Member
	sites := map[string]int{}
	for _, m := range members {
		if m.NoVote {
			continue
		}
		cands = append(cands, m)
		sites[m.Site]++
	}
	target := min(max, len(cands))
	if target%2 == 0 {
		target--
	}
	out := map[string]bool{}
	if target <= 0 {
		return out
	}
	share := (target + len(sites) - 1) / len(sites)
	// The leader first, then current voters, then the rest; by ID within
	// each, so every node computes the same answer.
	rank := func(m Member) int {
		switch {
		case m.ID == leader:
			return 0
		case m.Voter:
			return 1
		}
		return 2
	}
	sort.SliceStable(cands, func(i, j int) bool {
		ri, rj := rank(cands[i]), rank(cands[j])
		if ri != rj {
			return ri < rj
		}
		return cands[i].ID < cands[j].ID
	})
	perSite := map[string]int{}
	// Each pass adds at most one voter per site, so voters spread over
	// sites before any site gets a second.
	for pass := 1; len(out) < target && pass <= share; pass++ {
		for _, m := range cands {
			if len(out) == target {
				break
			}
			if out[m.ID] || perSite[m.Site] >= pass {
				continue
			}
			out[m.ID] = true
			perSite[m.Site]++
		}
	}
	return out
}

// Reconcile moves g's configuration one step at a time towards want:
// promotions first, so the group never has fewer voters than it needs on
// the way, then demotions. Only the leader can; it keeps its own vote for
// last, so a leader demoting itself hands over after everything else.
func Reconcile(ctx context.Context, g *replication.Group, want map[string]bool) error {
	cf := g.Raft().GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	if len(want) == 0 {
		return nil
	}
	_, leaderID := g.Leader()
	var demote []raft.ServerID
	for _, s := range cf.Configuration().Servers {
		voter := s.Suffrage == raft.Voter
		switch {
		case want[string(s.ID)] && !voter:
			if err := g.Promote(ctx, s.ID); err != nil {
				return fmt.Errorf("sharding: promoting %s: %w", s.ID, err)
			}
		case !want[string(s.ID)] && voter:
			demote = append(demote, s.ID)
		}
	}
	sort.SliceStable(demote, func(i, j int) bool { return demote[i] != leaderID && demote[j] == leaderID })
	for _, id := range demote {
		if err := g.Demote(ctx, id); err != nil {
			return fmt.Errorf("sharding: demoting %s: %w", id, err)
		}
	}
	return nil
}
