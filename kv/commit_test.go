package kv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func requireConflict(t *testing.T, err error, index int, key string) {
	t.Helper()
	require.ErrorIs(t, err, ErrConflict)
	var ce *ConflictError
	require.True(t, errors.As(err, &ce), "%T is not a *ConflictError", err)
	require.Equal(t, index, ce.Index)
	require.Equal(t, key, string(ce.Key))
}

func TestPreconditions(t *testing.T) {
	e := openTest(t)
	ta := put(t, e, "a", "1")
	td := put(t, e, "d", "1")
	del(t, e, "d")
	ctx := context.Background()
	write := []Mutation{{Key: []byte("a"), Value: []byte("2")}, {Key: []byte("new"), Value: []byte("x")}}

	cases := []struct {
		name  string
		pre   []Precondition
		index int
		key   string
	}{
		{"absent but exists", []Precondition{{Key: []byte("a")}}, 0, "a"},
		{"exists but never written", []Precondition{{Key: []byte("a"), Exists: true, Version: ta}, {Key: []byte("b"), Exists: true, Version: ta}}, 1, "b"},
		{"version mismatch", []Precondition{{Key: []byte("b")}, {Key: []byte("a"), Exists: true, Version: ta + 1}}, 1, "a"},
		{"exists but deleted", []Precondition{{Key: []byte("d"), Exists: true, Version: td}}, 0, "d"},
		{"first failure reported", []Precondition{{Key: []byte("z")}, {Key: []byte("a")}, {Key: []byte("d"), Exists: true, Version: td}}, 1, "a"},
	}
	conflicts := e.Stats().Conflicts
	readTS := e.ReadTS()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts, err := e.Commit(ctx, &Batch{Mutations: write, Preconditions: c.pre})
			requireConflict(t, err, c.index, c.key)
			require.Zero(t, ts)
			require.Equal(t, Value{Data: []byte("1"), Version: ta, Exists: true}, get(t, e, "a", MaxTimestamp), "nothing written")
			require.Equal(t, Value{}, get(t, e, "new", MaxTimestamp), "nothing written")
		})
	}
	require.Equal(t, conflicts+uint64(len(cases)), e.Stats().Conflicts)
	require.Equal(t, readTS, e.ReadTS(), "a conflict commits nothing")

	// The same preconditions, holding.
	ts, err := e.Commit(ctx, &Batch{Mutations: write, Preconditions: []Precondition{
		{Key: []byte("a"), Exists: true, Version: ta},
		{Key: []byte("b")},
		{Key: []byte("d")},
	}})
	require.NoError(t, err)
	require.Equal(t, Value{Data: []byte("2"), Version: ts, Exists: true}, get(t, e, "a", MaxTimestamp))
}

func TestInvalidBatches(t *testing.T) {
	e := openTest(t)
	ctx := context.Background()
	for _, b := range []*Batch{
		nil,
		{Mutations: []Mutation{{Key: nil, Value: []byte("v")}}},
		{Mutations: []Mutation{{Key: make([]byte, MaxKeySize+1)}}},
		{Preconditions: []Precondition{{Key: []byte{}}}},
	} {
		_, err := e.Commit(ctx, b)
		require.ErrorIs(t, err, ErrInvalidBatch)
	}
	// The longest key goes through every bucket.
	long := make([]byte, MaxKeySize)
	ts := commit(t, e, &Batch{Mutations: []Mutation{{Key: long, Value: []byte("1")}}})
	s := e.Snapshot()
	defer s.Release()
	commit(t, e, &Batch{Mutations: []Mutation{{Key: long, Delete: true}}})
	v, err := e.Get(long, s.TS())
	require.NoError(t, err)
	require.Equal(t, ts, v.Version)
}

// holdCommitter blocks the committer before its next write transaction, so
// a test can line up batches in the queue; the returned function releases
// it.
func holdCommitter(t *testing.T, e *Engine) (release func()) {
	e.wmu.Lock()
	var once sync.Once
	release = func() { once.Do(e.wmu.Unlock) }
	t.Cleanup(release)
	return release
}

func TestGroupCommit(t *testing.T) {
	e := openTest(t)
	const writers, each = 32, 8
	before := e.Stats()
	release := holdCommitter(t, e)

	type ack struct {
		key string
		ts  Timestamp
	}
	acks := make(chan ack, writers*each)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("w%02d-%d", g, i)
				ts, err := e.Commit(context.Background(), &Batch{
					Mutations:     []Mutation{{Key: []byte(k), Value: []byte(k)}},
					Preconditions: []Precondition{{Key: []byte(k)}},
				})
				if err != nil {
					t.Errorf("commit %s: %v", k, err)
					return
				}
				acks <- ack{k, ts}
			}
		})
	}
	// Every writer has its first batch queued before anything commits.
	waitFor(t, "one batch per writer queued", func() bool { return e.queued.Load() >= writers })
	release()
	wg.Wait()
	close(acks)

	seen := map[Timestamp]bool{}
	n := 0
	for a := range acks {
		n++
		require.False(t, seen[a.ts], "timestamp %s given twice", a.ts)
		seen[a.ts] = true
		require.Equal(t, Value{Data: []byte(a.key), Version: a.ts, Exists: true}, get(t, e, a.key, MaxTimestamp))
		require.LessOrEqual(t, a.ts, e.ReadTS())
	}
	require.Equal(t, writers*each, n)
	st := e.Stats()
	commits, fsyncs := st.Commits-before.Commits, st.Fsyncs-before.Fsyncs
	require.Equal(t, uint64(writers*each), commits)
	require.Equal(t, uint64(writers*each), st.Batches-before.Batches)
	require.Less(t, fsyncs, commits, "concurrent commits share fsyncs")
	t.Logf("%d commits, %d fsyncs", commits, fsyncs)
}

// TestGroupCommitOrder: batches of one group see the earlier ones, and a
// failed batch does not affect the others.
func TestGroupCommitOrder(t *testing.T) {
	e := openTest(t)
	release := holdCommitter(t, e)
	insertOnce := func(v string) *Batch {
		return &Batch{
			Mutations:     []Mutation{{Key: []byte("k"), Value: []byte(v)}, {Key: []byte("log-" + v), Value: []byte(v)}},
			Preconditions: []Precondition{{Key: []byte("k")}},
		}
	}
	type result struct {
		v   string
		ts  Timestamp
		err error
	}
	results := make(chan result, 3)
	for i, v := range []string{"a", "b", "c"} {
		go func() {
			ts, err := e.Commit(context.Background(), insertOnce(v))
			results <- result{v, ts, err}
		}()
		waitFor(t, "batch queued", func() bool { return e.queued.Load() == uint64(i+1) })
	}
	release()
	var won []result
	for range 3 {
		r := <-results
		if r.err == nil {
			won = append(won, r)
			continue
		}
		requireConflict(t, r.err, 0, "k")
		require.Equal(t, Value{}, get(t, e, "log-"+r.v, MaxTimestamp))
	}
	require.Len(t, won, 1, "exactly one insert of k wins")
	require.Equal(t, "a", won[0].v, "batches apply in queue order")
	require.Equal(t, Value{Data: []byte("a"), Version: won[0].ts, Exists: true}, get(t, e, "k", MaxTimestamp))
	require.Equal(t, uint64(2), e.Stats().Conflicts)
}

func TestCommitContextCancelsOnlyTheQueueWait(t *testing.T) {
	e := openTest(t)
	release := holdCommitter(t, e)

	// A: taken by the committer, which then blocks on the held lock.
	aCtx, cancelA := context.WithCancel(context.Background())
	aDone := make(chan error, 1)
	go func() {
		_, err := e.Commit(aCtx, &Batch{Mutations: []Mutation{{Key: []byte("a"), Value: []byte("1")}}})
		aDone <- err
	}()
	waitFor(t, "A taken", func() bool { return e.queued.Load() == 1 && len(e.queue) == 0 })

	// B: still in the queue when its context is cancelled.
	bCtx, cancelB := context.WithCancel(context.Background())
	bDone := make(chan error, 1)
	go func() {
		_, err := e.Commit(bCtx, &Batch{Mutations: []Mutation{{Key: []byte("b"), Value: []byte("1")}}})
		bDone <- err
	}()
	waitFor(t, "B queued", func() bool { return e.queued.Load() == 2 })
	cancelB()
	require.ErrorIs(t, <-bDone, context.Canceled)

	cancelA() // too late: A is in flight and will commit
	release()
	require.NoError(t, <-aDone)
	require.True(t, get(t, e, "a", MaxTimestamp).Exists)
	// One more commit makes sure the committer has passed B.
	put(t, e, "c", "1")
	require.False(t, get(t, e, "b", MaxTimestamp).Exists)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Commit(ctx, &Batch{Mutations: []Mutation{{Key: []byte("d"), Value: []byte("1")}}})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, get(t, e, "d", MaxTimestamp).Exists)
}
