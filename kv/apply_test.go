package kv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApply(t *testing.T) {
	opts := testOptions(t)
	opts.Clock = NewClock(nil)
	e := openWith(t, opts)
	base := opts.Clock.Now() + 1000
	batches := []*Batch{
		{Mutations: []Mutation{{Key: []byte("k"), Value: []byte("1")}}},
		{ // sees the first batch, and fails
			Mutations:     []Mutation{{Key: []byte("x"), Value: []byte("lost")}},
			Preconditions: []Precondition{{Key: []byte("k")}},
		},
		{ // sees the first batch, and holds
			Mutations:     []Mutation{{Key: []byte("k"), Value: []byte("2")}},
			Preconditions: []Precondition{{Key: []byte("k"), Exists: true, Version: base}},
		},
	}
	tss := []Timestamp{base, base + 1, base + 2}
	errs, err := e.Apply(5, batches, tss)
	require.NoError(t, err)
	require.Len(t, errs, 3)
	require.NoError(t, errs[0])
	requireConflict(t, errs[1], 0, "k")
	require.NoError(t, errs[2])

	require.Equal(t, base+2, e.ReadTS(), "ReadTS moves to the largest timestamp")
	require.Greater(t, opts.Clock.Now(), base+2, "the clock moves past applied timestamps")
	require.Equal(t, Value{Data: []byte("2"), Version: base + 2, Exists: true}, get(t, e, "k", MaxTimestamp))
	require.Equal(t, Value{Data: []byte("1"), Version: base, Exists: true}, get(t, e, "k", base+1))
	require.False(t, get(t, e, "x", MaxTimestamp).Exists)
	idx, err := e.AppliedIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(5), idx)

	// Replaying index 5 or anything older writes nothing.
	fsyncs := e.Stats().Fsyncs
	for _, i := range []uint64{5, 4, 1} {
		errs, err = e.Apply(i, []*Batch{{Mutations: []Mutation{{Key: []byte("k"), Value: []byte("replayed")}}}}, []Timestamp{base + 100})
		require.NoError(t, err)
		require.Nil(t, errs)
	}
	require.Equal(t, fsyncs, e.Stats().Fsyncs)
	require.Equal(t, "2", string(get(t, e, "k", MaxTimestamp).Data))

	// An entry carrying no batch still records its index.
	errs, err = e.Apply(6, nil, nil)
	require.NoError(t, err)
	require.Empty(t, errs)
	require.NoError(t, e.Close())

	e = openWith(t, opts)
	idx, err = e.AppliedIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(6), idx, "the applied index survives a restart")
	require.Equal(t, base+2, e.ReadTS())
	_, err = e.Apply(6, []*Batch{{}}, []Timestamp{base + 3})
	require.NoError(t, err)
	require.Equal(t, base+2, e.ReadTS())

	// Commit stamps above what was applied.
	require.Greater(t, put(t, e, "k", "3"), base+2)
}

func TestApplyRejectsBadArguments(t *testing.T) {
	e := openTest(t)
	ts := put(t, e, "k", "1")
	one := []*Batch{{Mutations: []Mutation{{Key: []byte("k"), Value: []byte("2")}}}}
	two := append(one, &Batch{})

	_, err := e.Apply(1, one, nil)
	require.ErrorIs(t, err, ErrInvalidBatch)
	_, err = e.Apply(1, one, []Timestamp{ts})
	require.ErrorIs(t, err, ErrTimestampOrder, "not above the last commit")
	_, err = e.Apply(1, two, []Timestamp{ts + 2, ts + 1})
	require.ErrorIs(t, err, ErrTimestampOrder, "not increasing")
	_, err = e.Apply(1, one, []Timestamp{MaxTimestamp})
	require.ErrorIs(t, err, ErrTimestampOrder)

	idx, err := e.AppliedIndex()
	require.NoError(t, err)
	require.Zero(t, idx, "a rejected entry records nothing")
	require.Equal(t, Value{Data: []byte("1"), Version: ts, Exists: true}, get(t, e, "k", MaxTimestamp))

	// Without an index, Apply is not deduplicated but still ordered.
	errs, err := e.Apply(0, one, []Timestamp{ts + 5})
	require.NoError(t, err)
	require.Equal(t, []error{nil}, errs)
	_, err = e.Apply(0, one, []Timestamp{ts + 5})
	require.ErrorIs(t, err, ErrTimestampOrder)
}

// TestApplyRefusesEntryWithInvalidBatch: an entry holding a batch that can
// never be written (an oversized key, a nil batch) is refused whole and its
// index is not recorded, as every earlier build decided it, so a replica
// replaying an old log decides it alike. Proposers keep such a batch out of
// shared entries (ValidateBatch).
func TestApplyRefusesEntryWithInvalidBatch(t *testing.T) {
	opts := testOptions(t)
	opts.Clock = NewClock(nil)
	e := openWith(t, opts)
	base := opts.Clock.Now() + 1000
	good := &Batch{Mutations: []Mutation{{Key: []byte("a"), Value: []byte("1")}}}
	for _, bad := range []*Batch{
		{Mutations: []Mutation{{Key: []byte("b"), Value: []byte("x")}, {Key: make([]byte, MaxKeySize+1), Value: []byte("x")}}},
		nil,
	} {
		_, err := e.Apply(7, []*Batch{good, bad}, []Timestamp{base, base + 1})
		require.ErrorIs(t, err, ErrInvalidBatch)
		require.ErrorIs(t, ValidateBatch(bad), ErrInvalidBatch)
	}
	_, err := e.Apply(7, []*Batch{good, {Mutations: []Mutation{{Key: make([]byte, MaxKeySize+1), Value: []byte("x")}}}}, []Timestamp{base, base + 1})
	require.ErrorIs(t, err, ErrKeyTooLarge)
	require.False(t, get(t, e, "a", MaxTimestamp).Exists, "nothing of a refused entry is written")
	idx, err := e.AppliedIndex()
	require.NoError(t, err)
	require.Zero(t, idx)
}

// The term and cluster ID travel with the applied index: stored in the same
// transaction, kept across a reopen, and never left describing an older
// index.
func TestApplyAtStoresLogPosition(t *testing.T) {
	opts := testOptions(t)
	opts.Clock = NewClock(nil)
	e := openWith(t, opts)
	pos, err := e.AppliedPosition()
	require.NoError(t, err)
	require.Equal(t, LogPosition{}, pos)

	id := []byte("cluster-0123456789")
	b := []*Batch{{Mutations: []Mutation{{Key: []byte("k"), Value: []byte("1")}}}}
	_, err = e.ApplyAt(LogPosition{Index: 4, Term: 2, ClusterID: id}, b, []Timestamp{opts.Clock.Now()})
	require.NoError(t, err)
	// A replay changes nothing, not even the term.
	errs, err := e.ApplyAt(LogPosition{Index: 4, Term: 9}, nil, nil)
	require.NoError(t, err)
	require.Nil(t, errs)
	pos, err = e.AppliedPosition()
	require.NoError(t, err)
	require.Equal(t, LogPosition{Index: 4, Term: 2, ClusterID: id}, pos)

	require.NoError(t, e.Close())
	e = openWith(t, opts)
	pos, err = e.AppliedPosition()
	require.NoError(t, err)
	require.Equal(t, LogPosition{Index: 4, Term: 2, ClusterID: id}, pos)

	// An index stored without its term leaves the term unknown rather than
	// that of an older entry.
	_, err = e.Apply(6, nil, nil)
	require.NoError(t, err)
	pos, err = e.AppliedPosition()
	require.NoError(t, err)
	require.Equal(t, LogPosition{Index: 6, ClusterID: id}, pos)

	require.NoError(t, e.SetClusterID([]byte("other")))
	pos, err = e.AppliedPosition()
	require.NoError(t, err)
	require.Equal(t, []byte("other"), pos.ClusterID)
	require.Error(t, e.SetClusterID(nil))
	_, err = e.ApplyAt(LogPosition{Index: 7, ClusterID: make([]byte, MaxClusterIDSize+1)}, nil, nil)
	require.ErrorIs(t, err, ErrInvalidBatch)
}
