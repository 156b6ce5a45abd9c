package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSharedIsShared(t *testing.T) {
	m := NewManager()
	ctx := context.Background()
	require.NoError(t, m.Acquire(ctx, 1, []byte("k"), Shared, 0))
	require.NoError(t, m.Acquire(ctx, 2, []byte("k"), Shared, 0))
	require.Equal(t, 1, m.HeldBy(1))
	require.Equal(t, 1, m.HeldBy(2))
	require.Equal(t, Stats{Acquired: 2}, m.Stats())

	m.ReleaseAll(1)
	m.ReleaseAll(2)
	require.Zero(t, m.HeldBy(1))
	requireEmpty(t, m)
}

func TestExclusiveConflicts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ held, asked Mode }{
		{Exclusive, Shared},
		{Exclusive, Exclusive},
		{Shared, Exclusive},
	} {
		t.Run(tc.held.String()+"/"+tc.asked.String(), func(t *testing.T) {
			m := NewManager()
			acquire(t, m, 1, "k", tc.held)
			require.ErrorIs(t, m.Acquire(ctx, 2, []byte("k"), tc.asked, 0), ErrTimeout)
			require.ErrorIs(t, m.Acquire(ctx, 2, []byte("k"), tc.asked, -time.Second), ErrTimeout)
			require.Zero(t, m.HeldBy(2))
			require.Equal(t, uint64(2), m.Stats().Timeouts)
			require.Zero(t, m.Stats().Waits, "a zero timeout must not queue")
			m.ReleaseAll(1)
			requireEmpty(t, m)
		})
	}
}

func TestDifferentKeysDoNotConflict(t *testing.T) {
	m := NewManager()
	acquire(t, m, 1, "a", Exclusive)
	require.NoError(t, m.Acquire(context.Background(), 2, []byte("b"), Exclusive, 0))
	// The empty key is a key like any other.
	require.NoError(t, m.Acquire(context.Background(), 3, []byte{}, Exclusive, 0))
	require.ErrorIs(t, m.Acquire(context.Background(), 4, nil, Shared, 0), ErrTimeout)
	m.ReleaseAll(1)
	m.ReleaseAll(2)
	m.ReleaseAll(3)
	requireEmpty(t, m)
}

func TestWaiterProceedsAfterRelease(t *testing.T) {
	m := NewManager()
	acquire(t, m, 1, "k", Exclusive)
	acquire(t, m, 1, "other", Shared)

	done := acquireAsync(context.Background(), m, 2, "k", Exclusive, long)
	awaitWaiting(t, m, 1)
	requirePending(t, done)
	require.Equal(t, uint64(1), m.Stats().Waits)

	m.ReleaseAll(1)
	require.NoError(t, result(t, done))
	require.Zero(t, m.HeldBy(1))
	require.Equal(t, 1, m.HeldBy(2))
	require.Equal(t, 1, m.entryCount())

	m.ReleaseAll(2)
	requireEmpty(t, m)
}

func TestReleaseWakesAllCompatibleWaiters(t *testing.T) {
	m := NewManager()
	acquire(t, m, 1, "k", Exclusive)
	s2 := acquireAsync(context.Background(), m, 2, "k", Shared, long)
	awaitWaiting(t, m, 1)
	s3 := acquireAsync(context.Background(), m, 3, "k", Shared, long)
	awaitWaiting(t, m, 2)

	m.ReleaseAll(1)
	require.NoError(t, result(t, s2))
	require.NoError(t, result(t, s3))
	m.ReleaseAll(2)
	m.ReleaseAll(3)
	requireEmpty(t, m)
}

func TestTimeout(t *testing.T) {
	m := NewManager()
	acquire(t, m, 1, "k", Exclusive)
	acquire(t, m, 2, "mine", Exclusive)

	start := time.Now()
	err := m.Acquire(context.Background(), 2, []byte("k"), Exclusive, 20*time.Millisecond)
	require.ErrorIs(t, err, ErrTimeout)
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
	require.Equal(t, Stats{Acquired: 2, Waits: 1, Timeouts: 1}, m.Stats())

	// The wait is gone, and the lock the transaction already had is kept.
	require.Zero(t, m.waiting())
	require.Nil(t, m.waitOf(2))
	require.Equal(t, 1, m.HeldBy(2))

	// Nobody is left queued behind the holder: once it releases, the key
	// is forgotten.
	m.ReleaseAll(1)
	require.Equal(t, 1, m.entryCount())
	m.ReleaseAll(2)
	requireEmpty(t, m)
}

func TestDepartureOfHeadWaiterLetsSharersIn(t *testing.T) {
	m := NewManager()
	acquire(t, m, 1, "k", Shared)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := acquireAsync(ctx, m, 2, "k", Exclusive, long)
	awaitWaiting(t, m, 1)
	s := acquireAsync(context.Background(), m, 3, "k", Shared, long)
	awaitWaiting(t, m, 2)
	requirePending(t, s)

	cancel()
	require.ErrorIs(t, result(t, x), context.Canceled)
	// With the writer gone, the reader queued behind it is compatible with
	// the current holder.
	require.NoError(t, result(t, s))
	m.ReleaseAll(1)
	m.ReleaseAll(3)
	requireEmpty(t, m)
}

func TestReentrant(t *testing.T) {
	m := NewManager()
	acquire(t, m, 1, "k", Exclusive)
	ctx := context.Background()
	require.NoError(t, m.Acquire(ctx, 1, []byte("k"), Shared, 0))
	require.NoError(t, m.Acquire(ctx, 1, []byte("k"), Exclusive, 0))
	acquire(t, m, 1, "s", Shared)
	require.NoError(t, m.Acquire(ctx, 1, []byte("s"), Shared, 0))
	require.Equal(t, 2, m.HeldBy(1))
	require.Equal(t, Stats{Acquired: 5}, m.Stats())

	// Re-entrant requests are satisfied even behind a waiting writer.
	done := acquireAsync(ctx, m, 2, "s", Exclusive, long)
	awaitWaiting(t, m, 1)
	require.NoError(t, m.Acquire(ctx, 1, []byte("s"), Shared, 0))

	m.ReleaseAll(1)
	require.NoError(t, result(t, done))
	m.ReleaseAll(2)
	requireEmpty(t, m)
}

func TestUpgrade(t *testing.T) {
	ctx := context.Background()

	t.Run("sole sharer", func(t *testing.T) {
		m := NewManager()
		acquire(t, m, 1, "k", Shared)
		require.NoError(t, m.Acquire(ctx, 1, []byte("k"), Exclusive, 0))
		require.ErrorIs(t, m.Acquire(ctx, 2, []byte("k"), Shared, 0), ErrTimeout)
		require.Equal(t, 1, m.HeldBy(1))
		m.ReleaseAll(1)
		requireEmpty(t, m)
	})

	t.Run("waits for other sharers", func(t *testing.T) {
		m := NewManager()
		acquire(t, m, 1, "k", Shared)
		acquire(t, m, 2, "k", Shared)
		up := acquireAsync(ctx, m, 1, "k", Exclusive, long)
		awaitWaiting(t, m, 1)
		requirePending(t, up)

		m.ReleaseAll(2)
		require.NoError(t, result(t, up))
		require.ErrorIs(t, m.Acquire(ctx, 2, []byte("k"), Shared, 0), ErrTimeout)
		require.Equal(t, 1, m.HeldBy(1))
		m.ReleaseAll(1)
		requireEmpty(t, m)
	})

	t.Run("goes ahead of waiting non-holders", func(t *testing.T) {
		m := NewManager()
		acquire(t, m, 1, "k", Shared)
		acquire(t, m, 2, "k", Shared)
		x3 := acquireAsync(ctx, m, 3, "k", Exclusive, long)
		awaitWaiting(t, m, 1)
		// Queued behind txn 3 the upgrade would wait for 3, which waits for
		// 1: a deadlock. Ahead of it, it only waits for txn 2.
		up := acquireAsync(ctx, m, 1, "k", Exclusive, long)
		awaitWaiting(t, m, 2)
		require.Zero(t, m.Stats().Deadlocks)

		m.ReleaseAll(2)
		require.NoError(t, result(t, up))
		requirePending(t, x3)
		m.ReleaseAll(1)
		require.NoError(t, result(t, x3))
		m.ReleaseAll(3)
		requireEmpty(t, m)
	})

	t.Run("with a writer waiting and no other sharer", func(t *testing.T) {
		m := NewManager()
		acquire(t, m, 1, "k", Shared)
		x2 := acquireAsync(ctx, m, 2, "k", Exclusive, long)
		awaitWaiting(t, m, 1)
		require.NoError(t, m.Acquire(ctx, 1, []byte("k"), Exclusive, long))
		require.Equal(t, uint64(1), m.Stats().Waits, "the upgrade must not wait")
		m.ReleaseAll(1)
		require.NoError(t, result(t, x2))
		m.ReleaseAll(2)
		requireEmpty(t, m)
	})
}

func TestDeadlockTwoTxns(t *testing.T) {
	m := NewManager()
	ctx := context.Background()
	acquire(t, m, 1, "a", Exclusive)
	acquire(t, m, 2, "b", Exclusive)

	first := acquireAsync(ctx, m, 1, "b", Exclusive, long)
	awaitWaiting(t, m, 1)

	start := time.Now()
	require.ErrorIs(t, m.Acquire(ctx, 2, []byte("a"), Exclusive, long), ErrDeadlock)
	require.Less(t, time.Since(start), long/2, "the victim must not wait")
	require.Equal(t, uint64(1), m.Stats().Deadlocks)

	// The victim keeps its locks and the other transaction keeps waiting.
	require.Equal(t, 1, m.HeldBy(2))
	require.Equal(t, 1, m.waiting())
	requirePending(t, first)

	m.ReleaseAll(2)
	require.NoError(t, result(t, first))
	require.Equal(t, 2, m.HeldBy(1))
	m.ReleaseAll(1)
	requireEmpty(t, m)
}

func TestDeadlockSharedAgainstExclusive(t *testing.T) {
	m := NewManager()
	ctx := context.Background()
	acquire(t, m, 1, "a", Shared)
	acquire(t, m, 2, "b", Shared)
	first := acquireAsync(ctx, m, 1, "b", Exclusive, long)
	awaitWaiting(t, m, 1)
	require.ErrorIs(t, m.Acquire(ctx, 2, []byte("a"), Exclusive, long), ErrDeadlock)
	m.ReleaseAll(2)
	require.NoError(t, result(t, first))
	m.ReleaseAll(1)
	requireEmpty(t, m)
}

func TestDeadlockConcurrentUpgrades(t *testing.T) {
	for range 20 {
		m := NewManager()
		acquire(t, m, 1, "k", Shared)
		acquire(t, m, 2, "k", Shared)

		type outcome struct {
			txn TxnID
			err error
		}
		results := make(chan outcome, 2)
		for _, txn := range []TxnID{1, 2} {
			go func() {
				err := m.Acquire(context.Background(), txn, []byte("k"), Exclusive, long)
				if errors.Is(err, ErrDeadlock) {
					// Rolling back is what lets the survivor through.
					m.ReleaseAll(txn)
				}
				results <- outcome{txn, err}
			}()
		}
		var victims, winners []TxnID
		for range 2 {
			var o outcome
			select {
			case o = <-results:
			case <-time.After(5 * time.Second):
				t.Fatal("upgrades did not resolve")
			}
			switch {
			case errors.Is(o.err, ErrDeadlock):
				victims = append(victims, o.txn)
			case o.err == nil:
				winners = append(winners, o.txn)
			default:
				t.Fatalf("txn %d: unexpected error %v", o.txn, o.err)
			}
		}
		require.Len(t, victims, 1)
		require.Len(t, winners, 1)
		require.Equal(t, uint64(1), m.Stats().Deadlocks)
		require.Equal(t, 1, m.HeldBy(winners[0]))
		require.ErrorIs(t, m.Acquire(context.Background(), victims[0], []byte("k"), Shared, 0), ErrTimeout)
		m.ReleaseAll(winners[0])
		requireEmpty(t, m)
	}
}

func TestDeadlockThreeTxns(t *testing.T) {
	m := NewManager()
	ctx := context.Background()
	acquire(t, m, 1, "a", Exclusive)
	acquire(t, m, 2, "b", Exclusive)
	acquire(t, m, 3, "c", Exclusive)

	w1 := acquireAsync(ctx, m, 1, "b", Exclusive, long)
	awaitWaiting(t, m, 1)
	w2 := acquireAsync(ctx, m, 2, "c", Shared, long)
	awaitWaiting(t, m, 2)
	require.ErrorIs(t, m.Acquire(ctx, 3, []byte("a"), Shared, long), ErrDeadlock)
	require.Equal(t, uint64(1), m.Stats().Deadlocks)
	requirePending(t, w1)
	requirePending(t, w2)

	m.ReleaseAll(3)
	require.NoError(t, result(t, w2))
	requirePending(t, w1)
	m.ReleaseAll(2)
	require.NoError(t, result(t, w1))
	m.ReleaseAll(1)
	requireEmpty(t, m)
}

func TestDeadlockThroughQueuedWaiter(t *testing.T) {
	// Txn 3 holds nothing that 1 needs, but 1's request queues behind 3's
	// pending writer on "a", and 3 waits for 2 which waits for 1.
	m := NewManager()
	ctx := context.Background()
	acquire(t, m, 4, "a", Shared)
	acquire(t, m, 2, "b", Exclusive)
	acquire(t, m, 1, "c", Exclusive)

	w3 := acquireAsync(ctx, m, 3, "a", Exclusive, long) // 3 -> 4
	awaitWaiting(t, m, 1)
	w2 := acquireAsync(ctx, m, 2, "c", Exclusive, long) // 2 -> 1
	awaitWaiting(t, m, 2)
	// 1 -> 3 (queued writer ahead); no cycle yet since 3 waits for 4.
	w1 := acquireAsync(ctx, m, 1, "a", Shared, long)
	awaitWaiting(t, m, 3)
	require.Zero(t, m.Stats().Deadlocks)

	// 4 -> 2 closes 4 -> 2 -> 1 -> 3 -> 4.
	require.ErrorIs(t, m.Acquire(ctx, 4, []byte("b"), Shared, long), ErrDeadlock)
	m.ReleaseAll(4)
	require.NoError(t, result(t, w3))
	requirePending(t, w1)
	m.ReleaseAll(3)
	require.NoError(t, result(t, w1))
	m.ReleaseAll(1)
	require.NoError(t, result(t, w2))
	m.ReleaseAll(2)
	requireEmpty(t, m)
}

func TestWaitChainIsNotADeadlock(t *testing.T) {
	m := NewManager()
	ctx := context.Background()
	acquire(t, m, 1, "a", Exclusive)
	acquire(t, m, 1, "s", Shared)
	acquire(t, m, 2, "b", Exclusive)
	acquire(t, m, 3, "c", Exclusive)

	w2 := acquireAsync(ctx, m, 2, "c", Exclusive, long) // 2 -> 3
	awaitWaiting(t, m, 1)
	w1 := acquireAsync(ctx, m, 1, "b", Shared, long) // 1 -> 2
	awaitWaiting(t, m, 2)
	w4 := acquireAsync(ctx, m, 4, "a", Shared, long) // 4 -> 1
	awaitWaiting(t, m, 3)
	require.Zero(t, m.Stats().Deadlocks)

	// A compatible lock held by a waiting transaction is no edge.
	require.NoError(t, m.Acquire(ctx, 3, []byte("s"), Shared, 0))
	// A conflicting one is: 3 -> 1 -> 2 -> 3.
	require.ErrorIs(t, m.Acquire(ctx, 3, []byte("a"), Shared, long), ErrDeadlock)
	require.Equal(t, uint64(1), m.Stats().Deadlocks)

	m.ReleaseAll(3)
	require.NoError(t, result(t, w2))
	m.ReleaseAll(2)
	require.NoError(t, result(t, w1))
	m.ReleaseAll(1)
	require.NoError(t, result(t, w4))
	m.ReleaseAll(4)
	requireEmpty(t, m)
}

func TestFIFOSharedQueuesBehindExclusive(t *testing.T) {
	m := NewManager()
	ctx := context.Background()
	acquire(t, m, 1, "k", Shared)

	x2 := acquireAsync(ctx, m, 2, "k", Exclusive, long)
	awaitWaiting(t, m, 1)
	// Compatible with the holder, but a writer is already waiting.
	require.ErrorIs(t, m.Acquire(ctx, 3, []byte("k"), Shared, 0), ErrTimeout)
	s3 := acquireAsync(ctx, m, 3, "k", Shared, long)
	awaitWaiting(t, m, 2)
	x4 := acquireAsync(ctx, m, 4, "k", Exclusive, long)
	awaitWaiting(t, m, 3)
	requirePending(t, x2)
	requirePending(t, s3)

	m.ReleaseAll(1)
	require.NoError(t, result(t, x2))
	requirePending(t, s3)
	requirePending(t, x4)

	m.ReleaseAll(2)
	require.NoError(t, result(t, s3))
	requirePending(t, x4)

	m.ReleaseAll(3)
	require.NoError(t, result(t, x4))
	m.ReleaseAll(4)
	requireEmpty(t, m)
}

func TestContextCancel(t *testing.T) {
	m := NewManager()
	acquire(t, m, 1, "k", Exclusive)

	ctx, cancel := context.WithCancel(context.Background())
	done := acquireAsync(ctx, m, 2, "k", Exclusive, long)
	awaitWaiting(t, m, 1)
	cancel()
	require.ErrorIs(t, result(t, done), context.Canceled)
	require.Zero(t, m.waiting())
	require.Zero(t, m.Stats().Timeouts)

	// A request with a context already done does not even try.
	require.ErrorIs(t, m.Acquire(ctx, 3, []byte("free"), Shared, long), context.Canceled)
	require.Zero(t, m.HeldBy(3))

	m.ReleaseAll(1)
	m.ReleaseAll(2)
	requireEmpty(t, m)
}

func TestReleaseAllAbortsPendingWait(t *testing.T) {
	m := NewManager()
	acquire(t, m, 1, "k", Exclusive)
	acquire(t, m, 2, "mine", Exclusive)
	done := acquireAsync(context.Background(), m, 2, "k", Exclusive, long)
	awaitWaiting(t, m, 1)

	m.ReleaseAll(2)
	require.ErrorIs(t, result(t, done), ErrAborted)
	require.Zero(t, m.HeldBy(2))
	require.Zero(t, m.waiting())
	m.ReleaseAll(1)
	requireEmpty(t, m)
}

func TestCloseDropsEveryLockAndWait(t *testing.T) {
	m := NewManager()
	acquire(t, m, 1, "k", Exclusive)
	acquire(t, m, 2, "other", Shared)
	done := acquireAsync(context.Background(), m, 2, "k", Exclusive, long)
	awaitWaiting(t, m, 1)

	m.Close()
	require.ErrorIs(t, result(t, done), ErrAborted)
	require.Zero(t, m.HeldBy(1))
	require.Zero(t, m.HeldBy(2))
	requireEmpty(t, m)
	require.ErrorIs(t, m.Acquire(context.Background(), 3, []byte("free"), Shared, long), ErrAborted)
	require.Zero(t, m.HeldBy(3))
}

func TestInvalidMode(t *testing.T) {
	m := NewManager()
	require.Error(t, m.Acquire(context.Background(), 1, []byte("k"), 0, long))
	require.Error(t, m.Acquire(context.Background(), 1, []byte("k"), Exclusive+1, long))
	requireEmpty(t, m)
}

func TestKeyIsCopied(t *testing.T) {
	m := NewManager()
	ctx := context.Background()
	key := []byte("k")
	require.NoError(t, m.Acquire(ctx, 1, key, Exclusive, 0))
	key[0] = 'z'
	require.ErrorIs(t, m.Acquire(ctx, 2, []byte("k"), Shared, 0), ErrTimeout)
	require.NoError(t, m.Acquire(ctx, 2, []byte("z"), Exclusive, 0))
	m.ReleaseAll(1)
	m.ReleaseAll(2)
	requireEmpty(t, m)
}
