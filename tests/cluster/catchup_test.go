package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/fogdb/fogdb/server"
)

// Snapshot settings that make a cluster compact its log after a few hundred
// entries, so a follower that was away must be sent a snapshot.
const (
	compactTrailingLogs = 100
	compactThreshold    = 500
	compactInterval     = 200 * time.Millisecond
)

func compactingLog(_ int, cfg *server.Config) {
	cfg.Cluster.TrailingLogs = compactTrailingLogs
	cfg.Cluster.SnapshotThreshold = compactThreshold
	cfg.Cluster.SnapshotInterval = compactInterval
}

// lastSnapshotIndex is the index of the newest snapshot node i took or
// installed, 0 when none.
func lastSnapshotIndex(t testing.TB, c *Cluster, i int) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(c.Nodes[i].Srv.Group().Raft().Stats()["last_snapshot_index"], 10, 64)
	require.NoError(t, err)
	return v
}

// commitRows commits n rows (ids first..first+n-1) into table through
// pool, one autocommit INSERT each, from clients concurrent sessions.
func commitRows(t testing.TB, pool *sql.DB, table string, clients, n, first int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*Patience)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for k := 0; k < clients; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := first + k; id < first+n; id += clients {
				q := fmt.Sprintf("INSERT INTO %s VALUES (%d, %d, 'row %d')", table, id, k, id)
				if _, err := pool.ExecContext(ctx, q); err != nil {
					errs <- fmt.Errorf("%s: %w", q, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// A follower stopped while 10,000 commits are made, and the leader's log
// compacted past the follower's last entry, catches up after a restart
// through an installed snapshot and then holds exactly the leader's rows.
func TestStoppedFollowerCatchesUpFromSnapshot(t *testing.T) {
	const commits, clients = 10000, 16
	c := Start(t, 3, compactingLog)
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE cu", "CREATE TABLE cu.t (id INT PRIMARY KEY, w INT, pad VARCHAR(40))")
	f := c.Follower()
	c.WaitMember(f)
	followerLast := c.Nodes[f].Srv.Group().Raft().LastIndex()
	c.StopNode(f)

	pool := c.DB(l, "cu")
	pool.SetMaxOpenConns(clients)
	lg := c.Nodes[l].Srv.Group()
	before := lg.Status()
	commitRows(t, pool, "t", clients, commits, 0)
	after := lg.Status()
	require.Equal(t, before.Term, after.Term, "the leader changed during the writes")
	require.EqualValues(t, commits, after.Commits-before.Commits, "separate commits acknowledged by the leader")
	t.Logf("%d commits in %d log entries", after.Commits-before.Commits, after.Entries-before.Entries)

	// The leader's log no longer holds what the follower misses.
	require.Eventually(t, func() bool {
		return lastSnapshotIndex(t, c, l) > followerLast+compactTrailingLogs
	}, Patience, 20*time.Millisecond, "the leader never compacted its log past the follower's last entry %d", followerLast)

	c.StartNode(f)
	c.WaitMember(f)
	require.Equal(t, c.Checksum(l), c.Checksum(f), "the follower holds other rows than the leader")
	require.Positive(t, c.Nodes[f].Srv.Group().FSM().Stats().Restores, "the follower caught up without a snapshot")
	var n int
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	require.NoError(t, c.DB(f, "cu").QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n))
	require.Equal(t, commits, n)
}

// raftOnDisk reads a stopped node's Raft state: the newest snapshot's index,
// the log's first and last index, and how many command entries the log
// holds after that snapshot (what a restart hands the state machine again).
func raftOnDisk(t testing.TB, dataDir string) (snapIndex, first, last uint64, commandsAfter uint64) {
	t.Helper()
	dir := filepath.Join(dataDir, "raft")
	snaps, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	require.NoError(t, err)
	metas, err := snaps.List()
	require.NoError(t, err)
	if len(metas) > 0 {
		snapIndex = metas[0].Index
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second},
	})
	require.NoError(t, err)
	defer store.Close()
	first, err = store.FirstIndex()
	require.NoError(t, err)
	last, err = store.LastIndex()
	require.NoError(t, err)
	for i := max(first, snapIndex+1); i <= last; i++ {
		var l raft.Log
		require.NoError(t, store.GetLog(i, &l))
		if l.Type == raft.LogCommand {
			commandsAfter++
		}
	}
	return snapIndex, first, last, commandsAfter
}

// Restarting every node of a cluster whose logs were compacted behind
// snapshots, one of them right after an explicit snapshot, loses nothing
// and applies nothing twice: each node's applied index never goes back,
// the entries a restart hands the state machine again are all skipped as
// replays (FSM Stats: Replayed, never Entries), no snapshot is restored,
// and every node ends with the same rows.
func TestRestartsAfterCompactionReplayNothingTwice(t *testing.T) {
	const clients = 16
	c := Start(t, 3, compactingLog)
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE rs", "CREATE TABLE rs.t (id INT PRIMARY KEY, w INT, pad VARCHAR(40))")
	pool := c.DB(l, "rs")
	pool.SetMaxOpenConns(clients)

	// Commit until every node has taken a snapshot and compacted its log.
	next := 0
	deadline := time.Now().Add(Patience)
	for {
		commitRows(t, pool, "t", clients, 500, next)
		next += 500
		done := true
		for i := range c.Nodes {
			done = done && lastSnapshotIndex(t, c, i) > compactTrailingLogs
		}
		if done {
			break
		}
		require.True(t, time.Now().Before(deadline), "not every node took a snapshot after %d commits", next)
	}
	// From now on no node snapshots by itself, so the commits that follow
	// stay in every log after its newest snapshot and a restart replays
	// them.
	noAutoSnapshots := raft.ReloadableConfig{
		TrailingLogs:      compactTrailingLogs,
		SnapshotInterval:  compactInterval,
		SnapshotThreshold: 1 << 40,
		HeartbeatTimeout:  300 * time.Millisecond,
		ElectionTimeout:   300 * time.Millisecond,
	}
	for i := range c.Nodes {
		require.NoError(t, c.Nodes[i].Srv.Group().Raft().ReloadConfig(noAutoSnapshots))
	}
	c.Tweak = func(i int, cfg *server.Config) {
		compactingLog(i, cfg)
		cfg.Cluster.SnapshotThreshold = noAutoSnapshots.SnapshotThreshold
	}
	commitRows(t, pool, "t", clients, 100, next)
	next += 100
	want := c.Checksum(l)

	// Followers first, then the leader, right after an explicit snapshot.
	var order []int
	for i := range c.Nodes {
		if i != l {
			order = append(order, i)
		}
	}
	order = append(order, l)
	for k, i := range order {
		explicit := k == len(order)-1
		nd := c.Nodes[i]
		c.WaitMember(i)
		g := nd.Srv.Group()
		appliedBefore, err := g.AppliedIndex()
		require.NoError(t, err)
		if explicit {
			require.NoError(t, g.Snapshot())
		}
		c.StopNode(i)

		snapIndex, first, last, replays := raftOnDisk(t, nd.Dir)
		require.Greater(t, first, uint64(1), "%s: the log was never compacted", nd.Name)
		if explicit {
			require.GreaterOrEqual(t, snapIndex, appliedBefore, "%s: the explicit snapshot", nd.Name)
			require.Zero(t, replays, "%s: commands after the explicit snapshot", nd.Name)
		} else {
			require.Positive(t, replays, "%s: no command after the newest snapshot", nd.Name)
		}

		c.StartNode(i)
		c.WaitMember(i)
		g = nd.Srv.Group()
		// Wait until the state machine has been handed every command the
		// log held after the snapshot (raft's own applied index moves when
		// it dispatches entries, before the state machine has them), so the
		// counters are final.
		require.Eventually(t, func() bool {
			st := g.FSM().Stats()
			return g.Raft().AppliedIndex() >= last && st.Replayed+st.Entries >= replays
		}, Patience, 10*time.Millisecond, "%s never applied its log up to %d", nd.Name, last)
		appliedAfter, err := g.AppliedIndex()
		require.NoError(t, err)
		require.GreaterOrEqual(t, appliedAfter, appliedBefore, "%s: the applied index went back", nd.Name)
		st := g.FSM().Stats()
		require.Zero(t, st.Entries, "%s: entries applied again after the restart", nd.Name)
		require.Equal(t, replays, st.Replayed, "%s: entries after the snapshot (%d..%d) skipped as replays", nd.Name, snapIndex+1, last)
		require.Zero(t, st.Restores, "%s: a snapshot was restored although the store had everything", nd.Name)
		require.Equal(t, want, c.Checksum(i), "%s: rows after its restart", nd.Name)
	}
	for i := range c.Nodes {
		require.Equal(t, want, c.Checksum(i), "%s", c.Nodes[i].Name)
		var n int
		ctx, cancel := context.WithTimeout(context.Background(), Patience)
		require.NoError(t, c.DB(i, "rs").QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n))
		cancel()
		require.Equal(t, next, n, "%s", c.Nodes[i].Name)
	}
}
