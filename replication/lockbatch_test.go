package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
)

// A follower takes several locks in one request to the leader, and locks
// with a commit in one request; the locks are the leader's, so another
// owner conflicts with them until the follower releases.
func TestLockAllAndCommitLockedOneRequestEach(t *testing.T) {
	c := newNodeCluster(t, 2)
	lead, follower := c.leaderAndFollower(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	const owner, other = lock.TxnID(11), lock.TxnID(12)
	var calls CallCounts
	require.NoError(t, follower.LockAll(WithCallCounts(ctx, &calls), owner, []LockRequest{
		{Key: []byte("meta"), Mode: lock.Shared},
		{Key: []byte("row-1"), Mode: lock.Exclusive},
	}, time.Second))
	require.Equal(t, uint64(1), calls.Calls.Load(), "two locks, one request")
	require.Equal(t, 2, follower.HeldBy(owner))
	// Held at the leader: a shared lock of the metadata is compatible, the
	// row is not.
	require.NoError(t, lead.Lock(ctx, other, []byte("meta"), lock.Shared, time.Second))
	err := lead.Lock(ctx, other, []byte("row-1"), lock.Exclusive, 50*time.Millisecond)
	require.True(t, errors.Is(err, lock.ErrTimeout), "the follower's row lock is not held at the leader: %v", err)

	calls = CallCounts{}
	b := &kv.Batch{
		Mutations:     []kv.Mutation{{Key: []byte("row-2"), Value: []byte("v")}},
		Preconditions: []kv.Precondition{{Key: []byte("row-2"), Exists: false}},
	}
	_, err = follower.CommitLocked(WithCallCounts(ctx, &calls), owner, []LockRequest{{Key: []byte("row-2"), Mode: lock.Exclusive}}, time.Second, b)
	require.NoError(t, err)
	require.Equal(t, uint64(1), calls.Calls.Load(), "a lock and a commit, one request")
	v, err := follower.Engine().Get([]byte("row-2"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.True(t, v.Exists, "the commit is applied on the follower when CommitLocked returns")
	err = lead.Lock(ctx, other, []byte("row-2"), lock.Exclusive, 50*time.Millisecond)
	require.True(t, errors.Is(err, lock.ErrTimeout), "the lock taken with the commit is not held: %v", err)

	// A precondition that fails: nothing written, the lock still held
	// until release, and the conflict reported as such.
	b = &kv.Batch{
		Mutations:     []kv.Mutation{{Key: []byte("row-2"), Value: []byte("w")}},
		Preconditions: []kv.Precondition{{Key: []byte("row-2"), Exists: false}},
	}
	_, err = follower.CommitLocked(ctx, owner, []LockRequest{{Key: []byte("row-2"), Mode: lock.Exclusive}}, time.Second, b)
	var ce *kv.ConflictError
	require.True(t, errors.As(err, &ce), "a failed precondition is a conflict: %v", err)
	require.Equal(t, "row-2", string(ce.Key))

	follower.ReleaseAll(owner)
	require.NoError(t, lead.Lock(ctx, other, []byte("row-1"), lock.Exclusive, 5*time.Second))
	require.NoError(t, lead.Lock(ctx, other, []byte("row-2"), lock.Exclusive, 5*time.Second))
	lead.ReleaseAll(other)

	// A lock the leader cannot grant fails the call with nothing proposed.
	require.NoError(t, lead.Lock(ctx, other, []byte("row-3"), lock.Exclusive, time.Second))
	b = &kv.Batch{Mutations: []kv.Mutation{{Key: []byte("row-3"), Value: []byte("x")}}}
	_, err = follower.CommitLocked(ctx, owner, []LockRequest{{Key: []byte("row-3"), Mode: lock.Exclusive}}, 50*time.Millisecond, b)
	require.True(t, errors.Is(err, lock.ErrTimeout), "%v", err)
	v, err = lead.Engine().Get([]byte("row-3"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.False(t, v.Exists, "a commit whose lock was refused was written")
	follower.ReleaseAll(owner)
	lead.ReleaseAll(other)

	// On the leader itself, the same calls take its own table's locks.
	require.NoError(t, lead.LockAll(ctx, owner, []LockRequest{{Key: []byte("a"), Mode: lock.Exclusive}, {Key: []byte("b"), Mode: lock.Exclusive}}, time.Second))
	err = follower.Lock(ctx, other, []byte("b"), lock.Exclusive, 50*time.Millisecond)
	require.True(t, errors.Is(err, lock.ErrTimeout), "%v", err)
	_, err = lead.CommitLocked(ctx, owner, []LockRequest{{Key: []byte("c"), Mode: lock.Exclusive}}, time.Second,
		&kv.Batch{Mutations: []kv.Mutation{{Key: []byte("c"), Value: []byte("y")}}})
	require.NoError(t, err)
	require.Equal(t, 3, lead.HeldBy(owner))
}
