package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/wanem"
)

// A cluster whose peer traffic all crosses the WAN emulator, each node
// advertising its link as its peer address: writes replicate, the emulated
// delay shows in a follower's commit, and a cut site catches up once
// healed.
func TestClusterBehindWANEmulator(t *testing.T) {
	sites := []string{"paris", "rennes", "nice"}
	c := StartSites(t, sites, nil)

	// Every member is known by its link, so nothing bypasses the proxy.
	links := map[string]bool{}
	for _, nd := range c.Nodes {
		links[nd.Link.Addr()] = true
		require.Equal(t, nd.Link.Addr(), nd.Srv.PeerAddr())
	}
	for i, nd := range c.Nodes {
		members := nd.Srv.Group().Status().Members
		require.Len(t, members, len(c.Nodes), nd.Name)
		for _, m := range members {
			require.True(t, links[m.Address], "%s knows %s at %s, not a WAN link", c.Nodes[i].Name, m.ID, m.Address)
		}
	}

	const oneWay = 20 * time.Millisecond
	for i := range sites {
		for j := i + 1; j < len(sites); j++ {
			c.WAN.SetDelay(sites[i], sites[j], oneWay)
		}
	}
	l := c.Leader()
	f := c.Follower()
	c.Exec(l, "CREATE DATABASE w", "CREATE TABLE w.t (id INT PRIMARY KEY, v INT)")

	// A follower's commit goes to the leader, which needs a follower's
	// acknowledgement of the entry before it answers: each of the four
	// legs crosses a site boundary.
	db := c.DB(f, "w")
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "SELECT 1")
	require.NoError(t, err)
	before := c.Nodes[l].Link.Stats()
	start := time.Now()
	_, err = conn.ExecContext(ctx, "INSERT INTO t VALUES (1, 1)")
	require.NoError(t, err)
	took := time.Since(start)
	require.GreaterOrEqual(t, took, 4*oneWay, "a follower's commit crosses the WAN four times")
	after := c.Nodes[l].Link.Stats()
	require.Greater(t, after.Up.Bytes, before.Up.Bytes, "the commit reached the leader through its link")

	for i := range c.Nodes {
		var v int
		require.Eventually(t, func() bool {
			return c.DB(i, "w").QueryRowContext(ctx, "SELECT v FROM t WHERE id = 1").Scan(&v) == nil && v == 1
		}, Patience, 10*time.Millisecond, "the row reaches %s", c.Nodes[i].Name)
	}

	// Cut the follower's site off in blackhole mode: the other two keep a
	// quorum and go on committing; after the heal the follower catches up.
	for _, s := range sites {
		if s != c.Nodes[f].Site {
			c.WAN.Cut(c.Nodes[f].Site, s, wanem.Blackhole)
		}
	}
	c.Exec(l, "INSERT INTO w.t VALUES (2, 2)", "UPDATE w.t SET v = 10 WHERE id = 1")
	c.WAN.HealAll()
	requireConverged(t, c)
	var n int
	require.NoError(t, c.DB(f, "w").QueryRowContext(ctx, "SELECT SUM(v) FROM t").Scan(&n))
	require.Equal(t, 12, n)
}
