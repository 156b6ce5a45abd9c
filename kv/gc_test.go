package kv

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGCKeepsWhatSnapshotsSee(t *testing.T) {
	e := openTest(t)
	t1 := put(t, e, "k", "v1")
	s1 := e.Snapshot()
	t2 := put(t, e, "k", "v2")
	s2 := e.Snapshot()
	t3 := put(t, e, "k", "v3")
	put(t, e, "gone", "x")
	s3 := e.Snapshot()
	t4 := del(t, e, "gone")

	// s1 holds everything.
	n, err := e.GC()
	require.NoError(t, err)
	require.Zero(t, n)

	// Horizon s2: v1 was superseded at t2 <= s2; v2 (superseded at t3) stays.
	s1.Release()
	n, err = e.GC()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, Value{Data: []byte("v2"), Version: t2, Exists: true}, get(t, e, "k", s2.TS()))
	require.Equal(t, Value{Data: []byte("v3"), Version: t3, Exists: true}, get(t, e, "k", MaxTimestamp))
	// s1 is released: its view is no longer guaranteed, and here it is gone.
	require.False(t, get(t, e, "k", t1).Exists)

	// Horizon s3: v2 goes; "gone" is still visible to s3.
	s2.Release()
	n, err = e.GC()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.True(t, get(t, e, "gone", s3.TS()).Exists)
	require.Equal(t, 1, tombstones(t, e))

	// No snapshot: the horizon is ReadTS. The deleted key's last version and
	// its tombstone go, leaving nothing of it.
	s3.Release()
	n, err = e.GC()
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Zero(t, tombstones(t, e))
	require.Zero(t, bucketLen(t, e, bucketHistory))
	require.Zero(t, bucketLen(t, e, bucketGC))
	require.Equal(t, 1, bucketLen(t, e, bucketLatest))
	require.Equal(t, uint64(4), e.Stats().GCRemoved)
	require.False(t, get(t, e, "gone", MaxTimestamp).Exists)
	require.False(t, get(t, e, "gone", t4).Exists)
	require.Equal(t, []pair{{"k", "v3", t3}}, scan(t, e, nil, nil, MaxTimestamp, false))

	n, err = e.GC()
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to collect")
}

func TestGCInChunks(t *testing.T) {
	setVar(t, &gcChunkSize, 7)
	e := openTest(t)
	const keys = 50
	var muts []Mutation
	for i := range keys {
		muts = append(muts, Mutation{Key: fmt.Appendf(nil, "k%02d", i), Value: []byte("old")})
	}
	commit(t, e, &Batch{Mutations: muts})
	for i := range muts {
		muts[i].Value = []byte("new")
	}
	commit(t, e, &Batch{Mutations: muts})
	var dels []Mutation
	for i := 0; i < keys; i += 2 {
		dels = append(dels, Mutation{Key: muts[i].Key, Delete: true})
	}
	tLast := commit(t, e, &Batch{Mutations: dels})
	s := e.Snapshot()
	defer s.Release()

	fsyncs := e.Stats().Fsyncs
	n, err := e.GC()
	require.NoError(t, err)
	// Every "old", the "new" of deleted keys, and their tombstones.
	require.Equal(t, keys+keys/2+keys/2, n)
	require.GreaterOrEqual(t, e.Stats().Fsyncs-fsyncs, uint64(n/7), "one write transaction per chunk")
	got := scan(t, e, nil, nil, s.TS(), false)
	require.Len(t, got, keys/2)
	for _, p := range got {
		require.Equal(t, "new", p.Value)
		require.Less(t, p.Version, tLast)
	}
}

// A key deleted, collected, then written again must not resurrect versions
// from before the deletion for any snapshot.
func TestGCThenRecreate(t *testing.T) {
	e := openTest(t)
	put(t, e, "k", "before")
	del(t, e, "k")
	n, err := e.GC()
	require.NoError(t, err)
	require.Equal(t, 2, n)
	s := e.Snapshot()
	defer s.Release()
	t2 := put(t, e, "k", "after")
	require.False(t, get(t, e, "k", s.TS()).Exists)
	require.Equal(t, Value{Data: []byte("after"), Version: t2, Exists: true}, get(t, e, "k", MaxTimestamp))
}

func TestBackgroundGC(t *testing.T) {
	opts := testOptions(t)
	opts.GCInterval = time.Millisecond
	e := openWith(t, opts)
	for i := range 20 {
		put(t, e, "k", fmt.Sprint(i))
	}
	waitFor(t, "background GC", func() bool { return e.Stats().GCRemoved == 19 })
	require.Equal(t, "19", string(get(t, e, "k", MaxTimestamp).Data))
	require.NoError(t, e.Close())
}

// A snapshot registered at a timestamp chosen elsewhere holds GC like any
// other, but only while the engine can still answer exactly there: GC's
// horizon only rises, and a reopened file forgets what it collected, so it
// starts at ReadTS.
func TestSnapshotAtAndHorizon(t *testing.T) {
	opts := testOptions(t)
	e, err := Open(opts)
	require.NoError(t, err)
	require.Zero(t, e.Horizon())
	t1 := put(t, e, "k", "v1")
	t2 := put(t, e, "k", "v2")

	s, err := e.SnapshotAt(t1)
	require.NoError(t, err)
	require.Equal(t, t1, s.TS())
	_, err = e.GC()
	require.NoError(t, err)
	require.Equal(t, t1, e.Horizon())
	require.Equal(t, "v1", string(get(t, e, "k", t1).Data), "GC removed a version a registered snapshot sees")

	s.Release()
	n, err := e.GC()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, t2, e.Horizon())
	_, err = e.SnapshotAt(t1)
	require.ErrorIs(t, err, ErrSnapshotTooOld)
	_, err = e.SnapshotAt(t2 + 1)
	require.ErrorIs(t, err, ErrSnapshotAhead)
	s, err = e.SnapshotAt(t2)
	require.NoError(t, err)
	s.Release()

	// Releasing a snapshot lowers nothing: the horizon is what GC did.
	put(t, e, "k", "v3")
	require.Equal(t, t2, e.Horizon())
	require.NoError(t, e.Close())

	e = openWith(t, opts)
	require.Equal(t, e.ReadTS(), e.Horizon())
	_, err = e.SnapshotAt(t2)
	require.ErrorIs(t, err, ErrSnapshotTooOld)
}
