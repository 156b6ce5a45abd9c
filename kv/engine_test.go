package kv

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, DefaultOptions("x").Validate())
	for _, o := range []Options{
		{},
		{Path: "x", GCInterval: -1},
		{Path: "x", OpenTimeout: -1},
	} {
		require.ErrorIs(t, o.Validate(), ErrInvalidOptions)
		_, err := Open(o)
		require.ErrorIs(t, err, ErrInvalidOptions)
	}
	o := DefaultOptions("x")
	require.Equal(t, 10*time.Second, o.GCInterval)
	require.Equal(t, 5*time.Second, o.OpenTimeout)
}

func TestRestartKeepsDataReadTSAndClock(t *testing.T) {
	opts := testOptions(t)
	e, err := Open(opts)
	require.NoError(t, err)
	t1 := put(t, e, "a", "1")
	t2 := put(t, e, "a", "2")
	t3 := del(t, e, "b")
	require.Equal(t, t3, e.ReadTS(), "deleting an absent key writes no version but still commits")
	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "Close is idempotent")

	// A wall clock far in the past must not make timestamps go backwards.
	opts.Clock = NewClock(func() time.Time { return time.UnixMilli(1000) })
	e = openWith(t, opts)
	require.GreaterOrEqual(t, e.ReadTS(), t2)
	require.Greater(t, opts.Clock.Now(), e.ReadTS())

	v := get(t, e, "a", MaxTimestamp)
	require.Equal(t, Value{Data: []byte("2"), Version: t2, Exists: true}, v)
	v = get(t, e, "a", t1)
	require.Equal(t, Value{Data: []byte("1"), Version: t1, Exists: true}, v)

	t4 := put(t, e, "a", "3")
	require.Greater(t, t4, t3)
	require.Equal(t, t4, e.ReadTS())
}

func TestOpenRefusesUnknownStorageVersion(t *testing.T) {
	opts := testOptions(t)
	e, err := Open(opts)
	require.NoError(t, err)
	require.NoError(t, e.Close())

	setVersion := func(v []byte) {
		db, err := bolt.Open(opts.Path, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Update(func(tx *bolt.Tx) error {
			if v == nil {
				return tx.Bucket(bucketMeta).Delete(metaStorageVersion)
			}
			return tx.Bucket(bucketMeta).Put(metaStorageVersion, v)
		}))
		require.NoError(t, db.Close())
	}
	for _, v := range [][]byte{encodeUint64(storageVersion + 1), encodeUint64(0), {1}, nil} {
		setVersion(v)
		_, err = Open(opts)
		require.ErrorIs(t, err, ErrStorageVersion, "version %x", v)
	}
	setVersion(encodeUint64(storageVersion))
	e = openWith(t, opts)
	require.NoError(t, e.Close())
}

func TestOpenRefusesForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("raft-log"))
		return err
	}))
	require.NoError(t, db.Close())
	_, err = Open(Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	require.ErrorIs(t, err, ErrStorageVersion)
}

func TestOpenFailsFastWhenLocked(t *testing.T) {
	opts := testOptions(t)
	openWith(t, opts)
	opts.OpenTimeout = 50 * time.Millisecond
	start := time.Now()
	_, err := Open(opts)
	require.ErrorIs(t, err, ErrLocked)
	require.Contains(t, err.Error(), opts.Path)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestClosedEngine(t *testing.T) {
	e := openTest(t)
	put(t, e, "a", "1")
	snap := e.Snapshot()
	require.NoError(t, e.Close())

	_, err := e.Get([]byte("a"), MaxTimestamp)
	require.ErrorIs(t, err, ErrClosed)
	_, err = e.Commit(context.Background(), &Batch{Mutations: []Mutation{{Key: []byte("b")}}})
	require.ErrorIs(t, err, ErrClosed)
	_, err = e.Apply(1, nil, nil)
	require.ErrorIs(t, err, ErrClosed)
	_, err = e.AppliedIndex()
	require.ErrorIs(t, err, ErrClosed)
	_, err = e.GC()
	require.ErrorIs(t, err, ErrClosed)
	it := e.NewIterator(nil, nil, MaxTimestamp, false)
	require.False(t, it.Next())
	require.ErrorIs(t, it.Err(), ErrClosed)
	it.Close()
	snap.Release()
}

// A Commit racing Close either commits or fails with ErrClosed, and never
// hangs.
func TestCloseWhileCommitting(t *testing.T) {
	opts := testOptions(t)
	e, err := Open(opts)
	require.NoError(t, err)
	type result struct {
		key string
		ts  Timestamp
		err error
	}
	results := make(chan result, 64)
	for i := range 64 {
		go func() {
			k := string(rune('A' + i))
			ts, err := e.Commit(context.Background(), &Batch{Mutations: []Mutation{{Key: []byte(k), Value: []byte("v")}}})
			results <- result{k, ts, err}
		}()
	}
	waitFor(t, "some commits queued", func() bool { return e.queued.Load() > 0 })
	require.NoError(t, e.Close())
	var ok []result
	for range 64 {
		r := <-results
		if r.err != nil {
			require.True(t, errors.Is(r.err, ErrClosed), "%v", r.err)
			continue
		}
		ok = append(ok, r)
	}
	e = openWith(t, opts)
	for _, r := range ok {
		require.Equal(t, r.ts, get(t, e, r.key, MaxTimestamp).Version)
	}
}
