package kv

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSnapshotSeesOldVersions(t *testing.T) {
	e := openTest(t)
	t1 := put(t, e, "k", "v1")
	s1 := e.Snapshot()
	defer s1.Release()
	require.Equal(t, t1, s1.TS())

	t2 := put(t, e, "k", "v2")
	s2 := e.Snapshot()
	defer s2.Release()
	t3 := del(t, e, "k")
	require.Less(t, t1, t2)
	require.Less(t, t2, t3)

	require.Equal(t, Value{Data: []byte("v1"), Version: t1, Exists: true}, get(t, e, "k", s1.TS()))
	require.Equal(t, Value{Data: []byte("v2"), Version: t2, Exists: true}, get(t, e, "k", s2.TS()))
	require.Equal(t, Value{}, get(t, e, "k", MaxTimestamp), "a current read sees the deletion")
	require.Equal(t, Value{}, get(t, e, "k", t1-1), "nothing before the first version")
	require.Equal(t, Value{}, get(t, e, "missing", MaxTimestamp))

	t4 := put(t, e, "k", "v4")
	require.Equal(t, Value{}, get(t, e, "k", t3), "the deletion is a version too")
	require.Equal(t, Value{Data: []byte("v4"), Version: t4, Exists: true}, get(t, e, "k", t4))
	require.Equal(t, Value{Data: []byte("v2"), Version: t2, Exists: true}, get(t, e, "k", t3-1))
}

func TestSnapshotTakenAtReadTS(t *testing.T) {
	e := openTest(t)
	require.Zero(t, e.ReadTS())
	ts := put(t, e, "a", "1")
	require.Equal(t, ts, e.ReadTS())
	s := e.Snapshot()
	require.Equal(t, ts, s.TS())
	s.Release()
	s.Release() // idempotent
	require.Empty(t, e.snaps)
}

func TestValueIsACopy(t *testing.T) {
	e := openTest(t)
	put(t, e, "a", "hello")
	v := get(t, e, "a", MaxTimestamp)
	v.Data[0] = 'J'
	require.Equal(t, "hello", string(get(t, e, "a", MaxTimestamp).Data))
}

func TestBatchOrderWithinOneCommit(t *testing.T) {
	e := openTest(t)
	t0 := put(t, e, "a", "0")
	s := e.Snapshot()
	defer s.Release()
	ts := commit(t, e, &Batch{Mutations: []Mutation{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("a"), Value: []byte("2")},
		{Key: []byte("b"), Value: []byte("1")},
		{Key: []byte("b"), Delete: true},
		{Key: []byte("c"), Delete: true},
		{Key: []byte("c"), Value: []byte("3")},
	}})
	require.Equal(t, Value{Data: []byte("2"), Version: ts, Exists: true}, get(t, e, "a", MaxTimestamp))
	require.Equal(t, Value{}, get(t, e, "b", MaxTimestamp))
	require.Equal(t, Value{Data: []byte("3"), Version: ts, Exists: true}, get(t, e, "c", MaxTimestamp))
	require.Equal(t, Value{Data: []byte("0"), Version: t0, Exists: true}, get(t, e, "a", s.TS()))
	require.Equal(t, 1, bucketLen(t, e, bucketHistory), "only a's committed version goes to history")
}

func TestEmptyValueIsLive(t *testing.T) {
	e := openTest(t)
	ts := put(t, e, "a", "")
	v := get(t, e, "a", MaxTimestamp)
	require.True(t, v.Exists)
	require.Equal(t, ts, v.Version)
	require.Empty(t, v.Data)
	require.Equal(t, []pair{{"a", "", ts}}, scan(t, e, nil, nil, MaxTimestamp, false))
}

func TestIteratorAsOfSnapshot(t *testing.T) {
	setVar(t, &iterChunkSize, 3)
	e := openTest(t)
	var want []pair
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		want = append(want, pair{k, "old" + k, put(t, e, k, "old"+k)})
	}
	s := e.Snapshot()
	defer s.Release()
	// After the snapshot: updates, deletions and inserts, including new keys
	// between and around the old ones.
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		switch i % 3 {
		case 0:
			put(t, e, k, "new")
		case 1:
			del(t, e, k)
		}
		put(t, e, k+"x", "inserted")
	}
	put(t, e, "a", "before everything")
	put(t, e, "z", "after everything")

	require.Equal(t, want, scan(t, e, nil, nil, s.TS(), false))
	require.Equal(t, reversed(want), scan(t, e, nil, nil, s.TS(), true))
	// Bounded ranges, with bounds on, between and outside keys.
	for _, r := range [][2]string{{"k05", "k12"}, {"k05x", "k12x"}, {"k", "k99"}, {"a", "k01"}, {"k19", ""}, {"k07", "k07"}, {"zz", ""}} {
		start, end := []byte(r[0]), []byte(r[1])
		if r[1] == "" {
			end = nil
		}
		var sub []pair
		for _, p := range want {
			if inRange([]byte(p.Key), start, end) {
				sub = append(sub, p)
			}
		}
		require.Equal(t, sub, scan(t, e, start, end, s.TS(), false), "range %q", r)
		require.Equal(t, reversed(sub), scan(t, e, start, end, s.TS(), true), "range %q reverse", r)
	}

	// A current read sees the new state: the deleted third is gone.
	var cur []string
	for _, p := range scan(t, e, []byte("k"), []byte("l"), MaxTimestamp, false) {
		cur = append(cur, p.Key+"="+p.Value)
	}
	var wantCur []string
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		switch i % 3 {
		case 0:
			wantCur = append(wantCur, k+"=new")
		case 2:
			wantCur = append(wantCur, k+"=old"+k)
		}
		wantCur = append(wantCur, k+"x=inserted")
	}
	require.Equal(t, wantCur, cur)
}

func TestIteratorDoesNotHoldTransactions(t *testing.T) {
	setVar(t, &iterChunkSize, 2)
	e := openTest(t)
	for i := range 10 {
		put(t, e, fmt.Sprintf("k%d", i), "v")
	}
	s := e.Snapshot()
	defer s.Release()
	it := e.NewIterator(nil, nil, s.TS(), false)
	defer it.Close()
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key()))
		// Between Next calls no read transaction is open; a write here
		// would otherwise still succeed, but bbolt reports open readers.
		require.Zero(t, e.db.Stats().OpenTxN, "read transaction open between Next calls")
		put(t, e, "k"+string(it.Key()), "written while iterating")
	}
	require.NoError(t, it.Err())
	require.Len(t, keys, 10, "writes after the snapshot are invisible to it")
}

func TestIteratorSkipsManyDeletions(t *testing.T) {
	setVar(t, &iterChunkSize, 2)
	e := openTest(t)
	ta := put(t, e, "a", "1")
	var muts []Mutation
	for i := range 100 {
		muts = append(muts, Mutation{Key: fmt.Appendf(nil, "m%03d", i), Value: []byte("x")})
	}
	commit(t, e, &Batch{Mutations: muts})
	for i := range muts {
		muts[i].Delete = true
	}
	commit(t, e, &Batch{Mutations: muts})
	tz := put(t, e, "z", "26")
	want := []pair{{"a", "1", ta}, {"z", "26", tz}}
	require.Equal(t, want, scan(t, e, nil, nil, MaxTimestamp, false))
	require.Equal(t, reversed(want), scan(t, e, nil, nil, MaxTimestamp, true))
}

func TestKeysReadCountsOnlyWhatIsExamined(t *testing.T) {
	e := openTest(t)
	var muts []Mutation
	for i := range 1000 {
		muts = append(muts, Mutation{Key: fmt.Appendf(nil, "t/%04d", i), Value: []byte("row")})
	}
	commit(t, e, &Batch{Mutations: muts})
	before := e.Stats().KeysRead
	get(t, e, "t/0500", MaxTimestamp)
	require.Equal(t, uint64(1), e.Stats().KeysRead-before)

	before = e.Stats().KeysRead
	require.Len(t, scan(t, e, []byte("t/0100"), []byte("t/0105"), MaxTimestamp, false), 5)
	require.Equal(t, uint64(5), e.Stats().KeysRead-before)
}

// TestModel runs random batches against an in-memory model of every
// version, reading at every held snapshot (Get, and scans both ways over
// random ranges) while snapshots come and go and GC runs with small chunks.
func TestModel(t *testing.T) {
	setVar(t, &iterChunkSize, 3)
	setVar(t, &gcChunkSize, 4)
	e := openTest(t)
	r := rand.New(rand.NewPCG(7, 11))
	keys := []string{"\x00", "\x00\x00", "a", "a\x00", "a\x00\x00", "a\x00\x01", "a\x01", "a\xff", "ab", "b", "b\x00", "c", "\xff", "\xff\x00"}

	type version struct {
		ts   Timestamp
		val  string
		live bool
	}
	model := map[string][]version{}
	at := func(k string, ts Timestamp) (version, bool) {
		vs := model[k]
		for i := len(vs) - 1; i >= 0; i-- {
			if vs[i].ts <= ts {
				return vs[i], vs[i].live
			}
		}
		return version{}, false
	}
	check := func(ts Timestamp) {
		var all []pair
		for _, k := range keys {
			v, ok := at(k, ts)
			got := get(t, e, k, ts)
			if !ok {
				require.Equal(t, Value{}, got, "%q at %s", k, ts)
				continue
			}
			require.Equal(t, Value{Data: []byte(v.val), Version: v.ts, Exists: true}, got, "%q at %s", k, ts)
			all = append(all, pair{k, v.val, v.ts})
		}
		slices.SortFunc(all, func(a, b pair) int { return bytes.Compare([]byte(a.Key), []byte(b.Key)) })
		start, end := []byte(keys[r.IntN(len(keys))]), []byte(keys[r.IntN(len(keys))])
		if r.IntN(4) == 0 {
			end = nil
		}
		if r.IntN(4) == 0 {
			start = nil
		}
		var sub []pair
		for _, p := range all {
			if inRange([]byte(p.Key), start, end) {
				sub = append(sub, p)
			}
		}
		require.Equal(t, sub, scan(t, e, start, end, ts, false), "[%q, %q) at %s", start, end, ts)
		require.Equal(t, reversed(sub), scan(t, e, start, end, ts, true), "[%q, %q) at %s reverse", start, end, ts)
	}

	var snaps []*Snapshot
	removed := 0
	for step := range 600 {
		var b Batch
		for range r.IntN(4) + 1 {
			k := keys[r.IntN(len(keys))]
			if r.IntN(3) == 0 {
				b.Mutations = append(b.Mutations, Mutation{Key: []byte(k), Delete: true})
			} else {
				b.Mutations = append(b.Mutations, Mutation{Key: []byte(k), Value: fmt.Appendf(nil, "%s@%d", k, step)})
			}
		}
		ts := commit(t, e, &b)
		for _, m := range b.Mutations {
			k := string(m.Key)
			vs := model[k]
			if n := len(vs); n > 0 && vs[n-1].ts == ts {
				vs = vs[:n-1]
			}
			model[k] = append(vs, version{ts, string(m.Value), !m.Delete})
		}
		switch x := r.IntN(10); {
		case x < 3:
			snaps = append(snaps, e.Snapshot())
		case x < 6 && len(snaps) > 0:
			i := r.IntN(len(snaps))
			snaps[i].Release()
			snaps = slices.Delete(snaps, i, i+1)
		case x < 8:
			n, err := e.GC()
			require.NoError(t, err)
			removed += n
		}
		for _, s := range snaps {
			check(s.TS())
		}
		check(MaxTimestamp)
	}
	for _, s := range snaps {
		s.Release()
	}
	n, err := e.GC()
	require.NoError(t, err)
	removed += n
	require.Positive(t, removed)
	require.Equal(t, uint64(removed), e.Stats().GCRemoved)
	check(MaxTimestamp)
	require.Zero(t, bucketLen(t, e, bucketHistory), "no snapshot left: no history")
	require.Zero(t, bucketLen(t, e, bucketGC))
	require.Zero(t, tombstones(t, e))
}
