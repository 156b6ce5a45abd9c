package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/replication"
)

// voterSites returns the sites of group's voters and the non-voters' IDs,
// as node i sees the group's configuration.
func (c *Cluster) placement(st replication.Status) (voters map[string]int, nonVoters []string) {
	site := map[string]string{}
	for _, nd := range c.Nodes {
		site[nd.Name] = nd.Site
	}
	voters = map[string]int{}
	for _, m := range st.Members {
		if m.Voter {
			voters[site[m.ID]]++
		} else {
			nonVoters = append(nonVoters, m.ID)
		}
	}
	sort.Strings(nonVoters)
	return voters, nonVoters
}

// Three sites of three nodes: every node holds the global group and its
// site's group; the global group has one voter per site and a non-voting
// replica on every other node; each site group has the site's three nodes
// as voters and no one else. A restarted node comes back in both.
func TestSitesAndGroups(t *testing.T) {
	sites := []string{"paris", "rennes", "nice", "paris", "rennes", "nice", "paris", "rennes", "nice"}
	c := StartSites(t, sites, nil)

	leaderStatus := func(pick func(nd *Node) *replication.Group) replication.Status {
		for _, nd := range c.Nodes {
			if g := pick(nd); g != nil && g.IsLeader() {
				return g.Status()
			}
		}
		return replication.Status{}
	}
	global := func(nd *Node) *replication.Group { return nd.Srv.Group() }
	require.Eventually(t, func() bool {
		st := leaderStatus(global)
		voters, nonVoters := c.placement(st)
		return len(st.Members) == 9 && len(nonVoters) == 6 &&
			voters["paris"] == 1 && voters["rennes"] == 1 && voters["nice"] == 1
	}, Patience, 50*time.Millisecond, "global group: one voter per site, six non-voters")

	groupOf := map[string]uint64{}
	for _, nd := range c.Nodes {
		g := nd.Srv.SiteGroup()
		require.NotNil(t, g, nd.Name)
		id := g.Status().Group
		require.NotEqual(t, uint64(1), id, "a site group is not the global group")
		if prev, ok := groupOf[nd.Site]; ok {
			require.Equal(t, prev, id, "%s is in its site's group", nd.Name)
		}
		groupOf[nd.Site] = id
	}
	require.Len(t, map[uint64]bool{groupOf["paris"]: true, groupOf["rennes"]: true, groupOf["nice"]: true}, 3, "one group per site")

	for _, site := range []string{"paris", "rennes", "nice"} {
		site := site
		of := func(nd *Node) *replication.Group {
			if nd.Site != site {
				return nil
			}
			return nd.Srv.SiteGroup()
		}
		require.Eventually(t, func() bool {
			st := leaderStatus(of)
			voters, nonVoters := c.placement(st)
			return len(st.Members) == 3 && voters[site] == 3 && len(nonVoters) == 0
		}, Patience, 50*time.Millisecond, "the group of %s has its three nodes as voters", site)
	}

	// Every node shows the topology in SQL, from its replica of the
	// registry.
	db := c.DB(7, "")
	rows, err := db.Query("SELECT site, group_id, nodes FROM fogdb.sites ORDER BY site")
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var site string
		var group uint64
		var nodes int
		require.NoError(t, rows.Scan(&site, &group, &nodes))
		require.Equal(t, groupOf[site], group, site)
		got = append(got, fmt.Sprintf("%s:%d", site, nodes))
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"nice:3", "paris:3", "rennes:3"}, got)
	var hosted, total int
	require.NoError(t, db.QueryRow("SELECT SUM(hosted), COUNT(*) FROM fogdb.`groups`").Scan(&hosted, &total))
	require.Equal(t, 2, hosted, "n8 holds the global group and its site's")
	require.Equal(t, 4, total, "the global group and three site groups")
	var site string
	require.NoError(t, db.QueryRow("SELECT site FROM fogdb.nodes WHERE node_id = 'n8'").Scan(&site))
	require.Equal(t, "rennes", site)

	// A restart reopens both groups from the data directory.
	c.StopNode(4)
	c.StartNode(4)
	c.WaitMember(4)
	require.Equal(t, groupOf["rennes"], c.Nodes[4].Srv.SiteGroup().Status().Group)
	require.Eventually(t, func() bool {
		st := c.Nodes[4].Srv.SiteGroup().Status()
		return st.Leader != "" && len(st.Members) == 3
	}, Patience, 50*time.Millisecond)
}

// A cluster started without sites is one site, "default": its three nodes
// vote in the global group and in the default site's group, as the single
// group of earlier versions did.
func TestOneSiteClusterVotesEverywhere(t *testing.T) {
	c := Start(t, 3, nil)
	for _, pick := range []func(nd *Node) *replication.Group{
		func(nd *Node) *replication.Group { return nd.Srv.Group() },
		func(nd *Node) *replication.Group { return nd.Srv.SiteGroup() },
	} {
		require.Eventually(t, func() bool {
			for _, nd := range c.Nodes {
				g := pick(nd)
				if !g.IsLeader() {
					continue
				}
				st := g.Status()
				n := 0
				for _, m := range st.Members {
					if m.Voter {
						n++
					}
				}
				return len(st.Members) == 3 && n == 3
			}
			return false
		}, Patience, 50*time.Millisecond)
	}
	for _, nd := range c.Nodes {
		require.Equal(t, uint64(2), nd.Srv.SiteGroup().Status().Group, fmt.Sprintf("%s: the default site's group", nd.Name))
	}
}

// A data directory from before sites (global state, no site.json and no
// site group) starts serving at once and sets its site group up in the
// background; a node of a three-node site that lost its site group's
// files rejoins the group through the others.
func TestSiteGroupSetUpForOlderDataDirectory(t *testing.T) {
	c := Start(t, 3, nil)
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE up", "CREATE TABLE up.t (id INT PRIMARY KEY)", "INSERT INTO up.t VALUES (1)")
	i := (l + 1) % 3
	group := c.Nodes[i].Srv.SiteGroup().Status().Group
	c.StopNode(i)
	require.NoError(t, os.Remove(filepath.Join(c.Nodes[i].Dir, "site.json")))
	require.NoError(t, os.RemoveAll(filepath.Join(c.Nodes[i].Dir, "groups")))
	c.StartNode(i)
	c.WaitMember(i)
	require.Equal(t, c.Checksum(l), c.Checksum(i), "the node serves its global data")
	require.Eventually(t, func() bool {
		g := c.Nodes[i].Srv.SiteGroup()
		if g == nil {
			return false
		}
		st := g.Status()
		applied, err := g.AppliedIndex()
		return err == nil && st.Group == group && st.Leader != "" && applied > 0
	}, Patience, 50*time.Millisecond, "the node is back in its site's group")
	_, err := os.Stat(filepath.Join(c.Nodes[i].Dir, "site.json"))
	require.NoError(t, err, "site.json is written again")
}
