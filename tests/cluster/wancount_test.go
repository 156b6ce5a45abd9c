package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/replication"
)

// knowsPeerSites waits until every running node places every member of its
// groups in the member's site, from its replica of the registry.
func (c *Cluster) knowsPeerSites() {
	c.T.Helper()
	site := map[string]string{}
	for _, nd := range c.Nodes {
		site[nd.Addr()] = nd.Site
	}
	require.Eventually(c.T, func() bool {
		for _, nd := range c.Nodes {
			for addr, want := range site {
				if got, ok := nd.Srv.Node().SiteOf(addr); !ok || got != want {
					return false
				}
			}
		}
		return true
	}, Patience, 20*time.Millisecond, "every node knows where its peers are")
}

// countWAN runs f with a context that counts, and returns what it counted.
func countWAN(t *testing.T, f func(ctx context.Context) error) (calls, wan uint64) {
	t.Helper()
	var cc replication.CallCounts
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	require.NoError(t, f(replication.WithCallCounts(ctx, &cc)))
	return cc.Calls.Load(), cc.WAN.Load()
}

// rowBatch writes one key in the rows of a table no catalog entry names:
// what a batch writes does not change what its commit costs.
func rowBatch(i int) *kv.Batch {
	key := append(keys.IndexPrefix(1<<40, 1), fmt.Sprintf("row-%d", i)...)
	return &kv.Batch{Mutations: []kv.Mutation{{Key: key, Value: []byte("v")}}}
}

// Three sites; the global group has one voter per site and a non-voting
// replica on the other nodes, and paris has three nodes, so its site
// group has three voters there. The round trips between sites a commit
// and a read barrier wait for are counted on their context, exactly:
//
//   - a global commit on the global leader's node: its entry needs a
//     second site's acknowledgement (1);
//   - from a non-voter in the leader's site: forwarded within the site,
//     then the same quorum (1);
//   - from a non-voter of another site: forwarded across, then the quorum
//     (2);
//   - a read barrier on those non-voters: the leader's confirmation of its
//     leadership needs another site's voters, plus the forwarding when the
//     leader is elsewhere (1, 2);
//   - a commit or read barrier in paris's own site group, from any of its
//     nodes: nothing leaves paris (0), which is the product's promise.
func TestWANRoundTripsCounted(t *testing.T) {
	sites := []string{"paris", "rennes", "nice", "paris", "paris", "rennes"}
	c := StartSites(t, sites, nil)

	// Wait for the voters' placement, then move the global leadership to
	// paris's voter, so the cases above are all present.
	var parisVoter int
	require.Eventually(t, func() bool {
		l := c.Leader()
		voters, nonVoters := c.placement(c.Nodes[l].Srv.Group().Status())
		if len(nonVoters) != 3 || voters["paris"] != 1 || voters["rennes"] != 1 || voters["nice"] != 1 {
			return false
		}
		for _, m := range c.Nodes[l].Srv.Group().Status().Members {
			for i, nd := range c.Nodes {
				if nd.Name == m.ID && m.Voter && nd.Site == "paris" {
					parisVoter = i
				}
			}
		}
		return true
	}, Patience, 50*time.Millisecond, "global group: one voter per site")
	require.Eventually(t, func() bool {
		l := c.Leader()
		if l == parisVoter {
			return true
		}
		nd := c.Nodes[parisVoter]
		_ = c.Nodes[l].Srv.Group().Raft().LeadershipTransferToServer(raft.ServerID(nd.Name), raft.ServerAddress(nd.Addr())).Error()
		return false
	}, Patience, 100*time.Millisecond, "paris's voter leads the global group")
	for i := range c.Nodes {
		c.WaitMember(i)
	}
	c.knowsPeerSites()

	isVoter := map[string]bool{}
	for _, m := range c.Nodes[parisVoter].Srv.Group().Status().Members {
		isVoter[m.ID] = m.Voter
	}
	nonVoterAt := func(site string) int {
		for i, nd := range c.Nodes {
			if nd.Site == site && !isVoter[nd.Name] {
				return i
			}
		}
		t.Fatalf("no non-voter in %s", site)
		return -1
	}
	parisNonVoter, rennesNonVoter := nonVoterAt("paris"), nonVoterAt("rennes")

	commit := func(g *replication.Group, i int) func(ctx context.Context) error {
		return func(ctx context.Context) error { _, err := g.Commit(ctx, rowBatch(i)); return err }
	}
	type count struct{ Calls, WAN uint64 }
	got := func(calls, wan uint64) count { return count{calls, wan} }

	global := c.Nodes[parisVoter].Srv.Group()
	require.True(t, global.IsLeader())
	require.Equal(t, count{0, 1}, got(countWAN(t, commit(global, 1))), "global commit on the leader's node")
	require.Equal(t, count{1, 1}, got(countWAN(t, commit(c.Nodes[parisNonVoter].Srv.Group(), 2))),
		"global commit from a non-voter of the leader's site")
	require.Equal(t, count{1, 2}, got(countWAN(t, commit(c.Nodes[rennesNonVoter].Srv.Group(), 3))),
		"global commit from a non-voter of another site")

	require.Equal(t, count{0, 1}, got(countWAN(t, global.ReadBarrier)), "read barrier on the global leader")
	require.Equal(t, count{1, 1}, got(countWAN(t, c.Nodes[parisNonVoter].Srv.Group().ReadBarrier)),
		"read barrier on a non-voter of the leader's site")
	require.Equal(t, count{1, 2}, got(countWAN(t, c.Nodes[rennesNonVoter].Srv.Group().ReadBarrier)),
		"read barrier on a non-voter of another site")

	// Paris's site group: three voters in paris; from each of its nodes,
	// leader or not, nothing crosses.
	for i, nd := range c.Nodes {
		if nd.Site != "paris" {
			continue
		}
		sg := nd.Srv.SiteGroup()
		require.NotNil(t, sg, nd.Name)
		require.Eventually(t, func() bool {
			n := 0
			for _, m := range sg.Status().Members {
				if m.Voter {
					n++
				}
			}
			return n == 3
		}, Patience, 50*time.Millisecond, "paris's group has three voters")
		calls, wan := countWAN(t, commit(sg, 10+i))
		require.Zero(t, wan, "site commit from %s", nd.Name)
		if !sg.IsLeader() {
			require.Equal(t, uint64(1), calls, "a follower forwards within the site")
		}
		_, wan = countWAN(t, sg.ReadBarrier)
		require.Zero(t, wan, "site read barrier on %s", nd.Name)
	}

	// The node that drove a commit counts it in its metric, not the leader
	// that served it. (Other work of the node may add to its count.)
	before := c.Nodes[rennesNonVoter].Srv.Node().WANStats().Critical
	countWAN(t, commit(c.Nodes[rennesNonVoter].Srv.Group(), 4))
	require.GreaterOrEqual(t, c.Nodes[rennesNonVoter].Srv.Node().WANStats().Critical, before+2)

	// Heartbeats to the other sites' voters are background round trips.
	lead := c.Nodes[parisVoter].Srv.Node()
	start := lead.WANStats()
	require.Eventually(t, func() bool {
		st := lead.WANStats()
		return st.Background >= start.Background+20
	}, Patience, 20*time.Millisecond, "the global leader's heartbeats to other sites")
}

// In a cluster of one site, Raft's traffic and every node's background
// requests stay in the site: the background count does not move while the
// heartbeats go on, and neither does the critical one for site-local work.
func TestOneSiteCountsNoWAN(t *testing.T) {
	c := StartSites(t, []string{"paris", "paris", "paris"}, nil)
	for i := range c.Nodes {
		c.WaitMember(i)
	}
	c.knowsPeerSites()
	before := make([]replication.WANStats, len(c.Nodes))
	for i, nd := range c.Nodes {
		before[i] = nd.Srv.Node().WANStats()
	}
	l := c.Leader()
	f := c.Follower()
	calls, wan := countWAN(t, func(ctx context.Context) error {
		_, err := c.Nodes[f].Srv.Group().Commit(ctx, rowBatch(1))
		return err
	})
	require.Equal(t, uint64(1), calls)
	require.Zero(t, wan)
	require.Eventually(t, func() bool {
		return c.Nodes[l].Srv.Node().WANStats().RaftRPCs >= before[l].RaftRPCs+50
	}, Patience, 20*time.Millisecond, "the leader's heartbeats")
	for i, nd := range c.Nodes {
		st := nd.Srv.Node().WANStats()
		require.Equal(t, before[i].Background, st.Background, "%s: background", nd.Name)
		require.Equal(t, before[i].Critical, st.Critical, "%s: critical", nd.Name)
	}
}
