package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/fogdb/fogdb/internal/freeport"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/replication"
	"github.com/fogdb/fogdb/server"
)

// oldBuild is the version of a build from before cluster IDs: it applies
// commits only, and panics on any other entry type.
var oldBuild = replication.Version{Commands: replication.CommandCommit, Snapshot: 1}

// A cluster of old builds is upgraded one node at a time under writes. While
// any member is on the old build, no leader proposes the cluster-ID entry
// (an old node would panic applying it); once every member is upgraded, the
// cluster names itself. /status's data shows each member's version and the
// active one, and an old build can no longer join afterwards.
func TestRollingUpgradeGatesNewEntryTypes(t *testing.T) {
	upgraded := map[int]bool{}
	tweak := func(i int, cfg *server.Config) {
		if !upgraded[i] {
			cfg.Cluster.AdvertiseVersion = oldBuild
		}
	}
	c := Start(t, 3, tweak)
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE u", "CREATE TABLE u.t (id INT PRIMARY KEY)")

	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	next := 0
	write := func() {
		t.Helper()
		next++
		for {
			i := c.Leader()
			db, err := sql.Open("mysql", c.DSN(i, "u"))
			require.NoError(t, err)
			_, err = db.ExecContext(ctx, fmt.Sprintf("INSERT INTO t VALUES (%d)", next))
			db.Close()
			if err == nil {
				return
			}
			require.NoError(t, ctx.Err(), "writing %d: %v", next, err)
		}
	}
	noClusterID := func(stage string) {
		t.Helper()
		for i, nd := range c.Nodes {
			require.Nil(t, nd.Srv.Group().ClusterID(), "%s: node %d has a cluster ID while an old build is a member", stage, i)
		}
	}
	activeIs := func(want replication.Version) {
		t.Helper()
		v, err := c.Nodes[c.Leader()].Srv.Group().ClusterVersion(ctx)
		require.NoError(t, err)
		require.Equal(t, want, v)
	}

	write()
	activeIs(oldBuild)
	noClusterID("all old")

	for i := range c.Nodes {
		c.StopNode(i)
		upgraded[i] = true
		c.StartNode(i)
		c.WaitMember(i)
		write()
		if i < len(c.Nodes)-1 {
			activeIs(oldBuild)
			// The leader (re)tries naming the cluster each second while it
			// leads; an old member must keep it from doing so.
			require.Never(t, func() bool {
				for _, nd := range c.Nodes {
					if nd.Srv.Group().ClusterID() != nil {
						return true
					}
				}
				return false
			}, 1500*time.Millisecond, 50*time.Millisecond, "named with node %d still old", i+1)
			noClusterID(fmt.Sprintf("%d upgraded", i+1))
		}
	}

	require.Eventually(t, func() bool {
		v, err := c.Nodes[c.Leader()].Srv.Group().ClusterVersion(ctx)
		return err == nil && v == replication.BuildVersion
	}, Patience, 10*time.Millisecond, "every member upgraded, yet the active version is not the build's")
	require.Eventually(t, func() bool {
		id := c.Nodes[0].Srv.Group().ClusterID()
		if id == nil {
			return false
		}
		for _, nd := range c.Nodes[1:] {
			if string(nd.Srv.Group().ClusterID()) != string(id) {
				return false
			}
		}
		return true
	}, Patience, 10*time.Millisecond, "every member upgraded, yet the cluster was not named")

	st := c.Nodes[c.Leader()].Srv.Group().Status()
	require.Equal(t, replication.BuildVersion, st.Version)
	require.NotNil(t, st.ActiveVersion)
	require.Equal(t, replication.BuildVersion, *st.ActiveVersion)
	require.Len(t, st.Members, 3)
	for _, m := range st.Members {
		require.NotNil(t, m.Version, m.ID)
		require.True(t, m.Version.Known, m.ID)
		require.Equal(t, replication.BuildVersion, m.Version.Version, m.ID)
		require.Equal(t, server.Version, m.Version.Build, m.ID)
	}

	// An old build cannot join a log that holds entries it cannot apply.
	nd := &Node{Name: "n4", Dir: t.TempDir(), PeerAddr: freeport.Addr(t), MySQLAddr: freeport.Addr(t)}
	c.Net.Name(nd.PeerAddr, nd.Name)
	c.Nodes = append(c.Nodes, nd)
	cfg := c.Config(3)
	cfg.Cluster.AdvertiseVersion = oldBuild
	cfg.Cluster.Join = c.Nodes[c.Leader()].PeerAddr
	_, err := server.New(cfg)
	require.Error(t, err, "an old build joined")
	require.ErrorContains(t, err, "cannot apply command type 2")
	c.Nodes = c.Nodes[:3]
	require.Len(t, c.Nodes[c.Leader()].Srv.Group().Status().Members, 3)
	write()
}
