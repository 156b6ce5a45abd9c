package replication

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// namedCluster waits until every running node's state file and raft.db
// name the same cluster, and returns its ID.
func (c *testCluster) namedCluster() []byte {
	var id []byte
	require.Eventually(c.t, func() bool {
		id = nil
		for _, nd := range c.running() {
			got := nd.g.ClusterID()
			if got == nil || (id != nil && !bytes.Equal(got, id)) {
				return false
			}
			id = got
			pos, err := nd.g.Engine().AppliedPosition()
			require.NoError(c.t, err)
			inLog, err := nd.g.raftClusterID()
			require.NoError(c.t, err)
			if !bytes.Equal(pos.ClusterID, id) || !bytes.Equal(inLog, id) {
				return false
			}
		}
		return true
	}, waitLimit, 5*time.Millisecond, "the cluster was never named on every node")
	return id
}

func (n *testNode) raftDir() string { return filepath.Join(n.dir, "raft") }

// stripClusterID makes a stopped node's files look as written before
// cluster IDs were kept.
func stripClusterID(t *testing.T, nd *testNode, stateToo, raftToo bool) {
	if stateToo {
		db, err := bolt.Open(nd.enginePath(), 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Update(func(tx *bolt.Tx) error {
			m := tx.Bucket([]byte("meta"))
			if err := m.Delete([]byte("cluster-id")); err != nil {
				return err
			}
			return m.Delete([]byte("applied-term"))
		}))
		require.NoError(t, db.Close())
	}
	if raftToo {
		s, err := raftboltdb.NewBoltStore(filepath.Join(nd.raftDir(), "raft.db"))
		require.NoError(t, err)
		require.NoError(t, s.Set(stableClusterID, nil))
		require.NoError(t, s.Close())
	}
}

// A state file whose Raft log is gone must not start: raft would begin an
// empty log (or join) and skip every entry up to the file's applied index.
func TestRefusesStateFileWithoutItsLog(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	proposeMany(t, lead.g, "a", 10)
	c.settle()
	i := (slices.Index(c.nodes, lead) + 1) % len(c.nodes)
	nd := c.nodes[i]
	c.stop(i)
	require.NoError(t, os.RemoveAll(nd.raftDir()))

	err := c.tryStart(i)
	require.ErrorIs(t, err, ErrStateMismatch)
	require.ErrorContains(t, err, "holds no Raft state")
	require.ErrorContains(t, err, "move "+nd.enginePath()+" away")

	// Moving the state file away, as the message says, rebuilds the node
	// from its cluster.
	require.NoError(t, os.Rename(nd.enginePath(), nd.enginePath()+".old"))
	c.start(i)
	c.settle()
	c.requireIdentical()
}

// A state file from another cluster is refused even when this node's log
// is long enough, and has the same terms, for its applied index to look
// plausible.
func TestRefusesStateFileOfAnotherCluster(t *testing.T) {
	a := newCluster(t, 1, nil)
	proposeMany(t, a.leader().g, "a", 3)
	idA := a.namedCluster()
	b := newCluster(t, 1, nil)
	proposeMany(t, b.leader().g, "b", 20)
	idB := b.namedCluster()
	require.NotEqual(t, idA, idB)
	posA, err := a.nodes[0].g.Engine().AppliedPosition()
	require.NoError(t, err)
	posB, err := b.nodes[0].g.Engine().AppliedPosition()
	require.NoError(t, err)
	require.Less(t, posA.Index, posB.Index)

	a.stop(0)
	b.stop(0)
	state, err := os.ReadFile(a.nodes[0].enginePath())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(b.nodes[0].enginePath(), state, 0o600))
	err = b.tryStart(0)
	require.ErrorIs(t, err, ErrStateMismatch)
	require.ErrorContains(t, err, "belongs to cluster")
}

// A state file and a Raft log written before cluster IDs were kept start
// as before: a state file adopts its log's ID, and a cluster with none at
// all is named by its leader.
func TestClusterIDAdoptedByOldFiles(t *testing.T) {
	c := newCluster(t, 3, nil)
	proposeMany(t, c.leader().g, "a", 5)
	c.settle()
	id := c.namedCluster()

	i := 1
	c.stop(i)
	stripClusterID(t, c.nodes[i], true, false)
	c.start(i)
	require.Equal(t, id, c.nodes[i].g.ClusterID(), "the state file did not adopt its log's cluster ID")
	c.settle()
	require.Equal(t, id, c.namedCluster())

	for i := range c.nodes {
		c.stop(i)
	}
	for _, nd := range c.nodes {
		stripClusterID(t, nd, true, true)
	}
	for i := range c.nodes {
		c.start(i)
	}
	proposeMany(t, c.leader().g, "b", 5)
	c.settle()
	renamed := c.namedCluster()
	require.NotEqual(t, id, renamed)
	c.requireIdentical()
}

// A follower that catches up through a snapshot gets the cluster ID and
// the applied term with it.
func TestSnapshotCarriesClusterID(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 4
		cfg.SnapshotThreshold = 1 << 20
	})
	lead := c.leader()
	id := c.namedCluster()
	lag := (slices.Index(c.nodes, lead) + 1) % len(c.nodes)
	nd := c.nodes[lag]
	c.stop(lag)
	// A fresh node: the same member, its files lost together.
	require.NoError(t, os.RemoveAll(nd.raftDir()))
	require.NoError(t, os.Remove(nd.enginePath()))
	proposeMany(t, lead.g, "during", 30)
	require.NoError(t, lead.g.Snapshot())
	first, err := lead.g.store.FirstIndex()
	require.NoError(t, err)
	require.Greater(t, first, uint64(2), "the entry naming the cluster must be compacted away")

	c.start(lag)
	c.settle()
	require.Equal(t, id, c.namedCluster())
	require.GreaterOrEqual(t, nd.g.FSM().Stats().Restores, uint64(1))
	pos, err := nd.g.Engine().AppliedPosition()
	require.NoError(t, err)
	require.NotZero(t, pos.Term)
	c.requireIdentical()
}
