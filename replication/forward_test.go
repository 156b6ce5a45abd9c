package replication

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
)

// nodeCluster is n Nodes on loopback ports, one group over them, so that
// requests go between nodes as in production (forwarded commits, locks).
type nodeCluster struct {
	nodes  []*Node
	groups []*Group
}

func newNodeCluster(t *testing.T, n int) *nodeCluster {
	c := &nodeCluster{}
	var servers []raft.Server
	for i := range n {
		nd, err := NewNode(NodeConfig{
			ID:       raft.ServerID(fmt.Sprintf("n%d", i)),
			PeerAddr: "127.0.0.1:0",
			Secret:   []byte("replication-test-secret-0123456789abcdef"),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = nd.Close() })
		dir := t.TempDir()
		opts := kv.DefaultOptions(filepath.Join(dir, "state.db"))
		opts.Clock = kv.NewClock(nil)
		opts.GCInterval = 0
		e, err := kv.Open(opts)
		require.NoError(t, err)
		cfg := DefaultConfig(nd.ID(), filepath.Join(dir, "raft"), opts)
		cfg.HeartbeatTimeout = 300 * time.Millisecond
		cfg.ElectionTimeout = 300 * time.Millisecond
		cfg.LeaderLeaseTimeout = 150 * time.Millisecond
		cfg.CommitTimeout = 5 * time.Millisecond
		cfg.LogOutput = io.Discard
		g, err := nd.NewGroup(1, cfg, e)
		require.NoError(t, err)
		c.nodes = append(c.nodes, nd)
		c.groups = append(c.groups, g)
		servers = append(servers, raft.Server{ID: nd.ID(), Address: raft.ServerAddress(nd.Addr()), Suffrage: raft.Voter})
	}
	require.NoError(t, c.groups[0].Bootstrap(servers))
	return c
}

// leaderAndFollower waits until one group leads and every other knows it.
func (c *nodeCluster) leaderAndFollower(t *testing.T) (lead, follower *Group) {
	require.Eventually(t, func() bool {
		lead, follower = nil, nil
		for _, g := range c.groups {
			if g.IsLeader() {
				lead = g
			}
		}
		if lead == nil {
			return false
		}
		for _, g := range c.groups {
			if g == lead {
				continue
			}
			if _, id := g.Leader(); id != lead.cfg.ID {
				return false
			}
			follower = g
		}
		return follower != nil
	}, waitLimit, 5*time.Millisecond, "no leader elected")
	return lead, follower
}

// TestFollowerCommitCancelledAfterSendIsOutcomeUnknown: once a forwarded
// commit has left the follower, the leader may write it whatever the
// follower's client does, so a client that gives up then must be told the
// outcome is unknown, not that its commit failed.
func TestFollowerCommitCancelledAfterSendIsOutcomeUnknown(t *testing.T) {
	c := newNodeCluster(t, 2)
	lead, follower := c.leaderAndFollower(t)

	// Hold the leader's apply of the entry, so the commit is proposed but
	// unanswered while the client gives up.
	applying := make(chan struct{})
	release := make(chan struct{})
	var once, releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	lead.FSM().OnApply(func(batches []*kv.Batch, _ bool) {
		for _, b := range batches {
			for _, m := range b.Mutations {
				if string(m.Key) == "held" {
					once.Do(func() { close(applying) })
					<-release
				}
			}
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := follower.Commit(ctx, put("held", "v"))
		done <- err
	}()
	select {
	case <-applying:
	case <-time.After(waitLimit):
		t.Fatal("the forwarded commit never reached the leader's state machine")
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(waitLimit):
		t.Fatal("the cancelled commit did not return")
	}
	unblock()
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.ErrorIs(t, err, context.Canceled)

	// And it was in fact written: the client had to be told "unknown".
	require.Eventually(t, func() bool {
		v, err := follower.Engine().Get([]byte("held"), kv.MaxTimestamp)
		return err == nil && v.Exists
	}, waitLimit, time.Millisecond, "the commit the client gave up on was not written")
}

// Requests a follower sends to the leader on behalf of a context are
// counted on its counters; what the leader does for itself is not.
func TestCallCounterCountsForwardedRequests(t *testing.T) {
	c := newNodeCluster(t, 2)
	lead, follower := c.leaderAndFollower(t)
	var txn, stmt atomic.Uint64
	ctx, cancel := context.WithTimeout(WithCallCounter(context.Background(), &txn), waitLimit)
	defer cancel()

	_, err := lead.Commit(ctx, put("a", "1"))
	require.NoError(t, err)
	require.NoError(t, lead.ReadBarrier(ctx))
	require.Zero(t, txn.Load(), "the leader sent requests for its own work")

	_, err = follower.Commit(ctx, put("b", "1"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), txn.Load())
	sctx := WithCallCounter(ctx, &stmt)
	require.NoError(t, follower.ReadBarrier(sctx))
	require.NoError(t, follower.Lock(sctx, 3, []byte("b"), lock.Exclusive, time.Second))
	require.Equal(t, uint64(2), stmt.Load())
	require.Equal(t, uint64(3), txn.Load(), "a nested counter must count into its parent too")
	follower.ReleaseAll(3)
	follower.locks.releasing.Wait()
	require.Equal(t, uint64(3), txn.Load(), "a background release counted against the transaction")
}
