package kv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

const benchKeys = 100_000

// loadBench fills an engine with benchKeys rows of 200 bytes, keyed like a
// table's primary index.
func loadBench(b *testing.B) (*Engine, [][]byte) {
	e := openWith(b, testOptions(b))
	keys := make([][]byte, benchKeys)
	val := make([]byte, 200)
	for i := 0; i < benchKeys; i += 1000 {
		batch := &Batch{}
		for j := i; j < i+1000; j++ {
			keys[j] = fmt.Appendf(nil, "t\x00\x01%08d", j)
			batch.Mutations = append(batch.Mutations, Mutation{Key: keys[j], Value: val})
		}
		commit(b, e, batch)
	}
	return e, keys
}

func BenchmarkGet(b *testing.B) {
	e, keys := loadBench(b)
	b.Run("current", func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 1))
		b.ReportAllocs()
		for b.Loop() {
			v, err := e.Get(keys[r.IntN(len(keys))], MaxTimestamp)
			if err != nil || !v.Exists {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("snapshot-history", func(b *testing.B) {
		// Every key has a newer version than the snapshot: each read seeks
		// into history.
		s := e.Snapshot()
		defer s.Release()
		for i := 0; i < benchKeys; i += 1000 {
			batch := &Batch{}
			for _, k := range keys[i : i+1000] {
				batch.Mutations = append(batch.Mutations, Mutation{Key: k, Value: []byte("new")})
			}
			commit(b, e, batch)
		}
		r := rand.New(rand.NewPCG(1, 1))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			v, err := e.Get(keys[r.IntN(len(keys))], s.TS())
			if err != nil || !v.Exists || len(v.Data) != 200 {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(seed.Add(1), 1))
			for pb.Next() {
				v, err := e.Get(keys[r.IntN(len(keys))], MaxTimestamp)
				if err != nil || !v.Exists {
					b.Fatal(v, err)
				}
			}
		})
	})
}

func BenchmarkIterator(b *testing.B) {
	e, keys := loadBench(b)
	r := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for b.Loop() {
		i := r.IntN(len(keys) - 1000)
		it := e.NewIterator(keys[i], keys[i+1000], MaxTimestamp, false)
		n := 0
		for it.Next() {
			n++
		}
		if it.Err() != nil || n != 1000 {
			b.Fatal(n, it.Err())
		}
		it.Close()
	}
}

// BenchmarkCommitParallel commits small read-write transactions (a checked
// update of one row plus an insert) from many goroutines, the shape of an
// OLTP workload; it reports how many batches share an fsync.
func BenchmarkCommitParallel(b *testing.B) {
	for _, par := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", par*2), func(b *testing.B) {
			e := openWith(b, testOptions(b))
			var next atomic.Uint64
			before := e.Stats()
			b.SetParallelism(par) // times GOMAXPROCS (2 here)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				row := fmt.Appendf(nil, "row/%d", next.Add(1))
				version := Timestamp(0)
				exists := false
				for pb.Next() {
					ins := fmt.Appendf(nil, "ins/%d", next.Add(1))
					ts, err := e.Commit(ctx, &Batch{
						Mutations: []Mutation{
							{Key: row, Value: make([]byte, 200)},
							{Key: ins, Value: make([]byte, 200)},
						},
						Preconditions: []Precondition{{Key: row, Exists: exists, Version: version}, {Key: ins}},
					})
					if err != nil {
						b.Fatal(err)
					}
					version, exists = ts, true
				}
			})
			st := e.Stats()
			commits := float64(st.Commits - before.Commits)
			b.ReportMetric(float64(st.Fsyncs-before.Fsyncs)/commits, "fsyncs/commit")
		})
	}
}
