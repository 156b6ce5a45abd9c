package kv

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// testOptions keeps the background GC off so tests decide when GC runs.
func testOptions(t testing.TB) Options {
	opts := DefaultOptions(filepath.Join(t.TempDir(), "kv.db"))
	opts.GCInterval = 0
	opts.Logger = slog.New(slog.DiscardHandler)
	return opts
}

func openWith(t testing.TB, opts Options) *Engine {
	t.Helper()
	e, err := Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func openTest(t testing.TB) *Engine { return openWith(t, testOptions(t)) }

// setVar sets a package variable for the duration of a test. Call it before
// opening engines, so that they are closed before the variable is restored.
func setVar(t testing.TB, p *int, v int) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

func commit(t testing.TB, e *Engine, b *Batch) Timestamp {
	t.Helper()
	ts, err := e.Commit(context.Background(), b)
	require.NoError(t, err)
	require.NotZero(t, ts)
	return ts
}

func put(t testing.TB, e *Engine, k, v string) Timestamp {
	t.Helper()
	return commit(t, e, &Batch{Mutations: []Mutation{{Key: []byte(k), Value: []byte(v)}}})
}

func del(t testing.TB, e *Engine, k string) Timestamp {
	t.Helper()
	return commit(t, e, &Batch{Mutations: []Mutation{{Key: []byte(k), Delete: true}}})
}

func get(t testing.TB, e *Engine, k string, ts Timestamp) Value {
	t.Helper()
	v, err := e.Get([]byte(k), ts)
	require.NoError(t, err)
	return v
}

type pair struct {
	Key, Value string
	Version    Timestamp
}

func scan(t testing.TB, e *Engine, start, end []byte, ts Timestamp, reverse bool) []pair {
	t.Helper()
	it := e.NewIterator(start, end, ts, reverse)
	defer it.Close()
	var out []pair
	for it.Next() {
		out = append(out, pair{string(it.Key()), string(it.Value()), it.Version()})
	}
	require.NoError(t, it.Err())
	return out
}

// bucketLen counts the entries of one bucket.
func bucketLen(t testing.TB, e *Engine, name []byte) int {
	t.Helper()
	n := 0
	require.NoError(t, e.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(name).ForEach(func(_, _ []byte) error { n++; return nil })
	}))
	return n
}

// tombstones counts the deletions still stored in latest.
func tombstones(t testing.TB, e *Engine) int {
	t.Helper()
	n := 0
	require.NoError(t, e.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLatest).ForEach(func(_, v []byte) error {
			_, flag, _, err := decodeLatest(v)
			if flag == flagTombstone {
				n++
			}
			return err
		})
	}))
	return n
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond, "waiting for %s", what)
}

func reversed(ps []pair) []pair {
	if len(ps) == 0 {
		return nil
	}
	out := make([]pair, len(ps))
	for i, p := range ps {
		out[len(ps)-1-i] = p
	}
	return out
}

func inRange(k, start, end []byte) bool {
	return bytes.Compare(k, start) >= 0 && (end == nil || bytes.Compare(k, end) < 0)
}
