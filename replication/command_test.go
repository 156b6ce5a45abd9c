package replication

import (
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
)

func sampleCommit() Commit {
	return Commit{
		Batches: []*kv.Batch{
			{
				Mutations: []kv.Mutation{
					{Key: []byte("a"), Value: []byte("1")},
					{Key: []byte("b"), Delete: true},
					{Key: []byte("c"), Value: []byte{}},
				},
				Preconditions: []kv.Precondition{
					{Key: []byte("a"), Exists: true, Version: 42},
					{Key: []byte("z")},
				},
			},
			{},
			{Mutations: []kv.Mutation{{Key: []byte{0, 0xff, 0}, Value: make([]byte, 300)}}},
		},
		TS: []kv.Timestamp{7, 8, kv.MaxTimestamp - 1},
	}
}

func TestCommitRoundTrip(t *testing.T) {
	c := sampleCommit()
	data, err := EncodeCommit(c)
	require.NoError(t, err)
	require.Equal(t, byte(CommandCommit), data[0])

	typ, payload, err := DecodeCommand(data)
	require.NoError(t, err)
	require.Equal(t, CommandCommit, typ)
	got, err := DecodeCommit(payload)
	require.NoError(t, err)
	require.Equal(t, c.TS, got.TS)
	require.Len(t, got.Batches, len(c.Batches))
	for i, b := range c.Batches {
		g := got.Batches[i]
		require.Len(t, g.Mutations, len(b.Mutations))
		for j, m := range b.Mutations {
			require.Equal(t, string(m.Key), string(g.Mutations[j].Key))
			require.Equal(t, m.Delete, g.Mutations[j].Delete)
			if !m.Delete {
				require.Equal(t, string(m.Value), string(g.Mutations[j].Value))
			}
		}
		require.Len(t, g.Preconditions, len(b.Preconditions))
		for j, p := range b.Preconditions {
			require.Equal(t, string(p.Key), string(g.Preconditions[j].Key))
			require.Equal(t, p.Exists, g.Preconditions[j].Exists)
			require.Equal(t, p.Version, g.Preconditions[j].Version)
		}
	}

	// Every strict prefix is truncated, never a shorter valid command.
	for n := 1; n < len(data); n++ {
		_, err := DecodeCommit(data[1:n])
		require.ErrorIs(t, err, ErrBadCommand, "prefix of %d bytes", n)
	}
	_, err = DecodeCommit(append(data[1:len(data):len(data)], 0))
	require.ErrorIs(t, err, ErrBadCommand)
}

func TestEncodeCommitRejectsMismatch(t *testing.T) {
	_, err := EncodeCommit(Commit{Batches: []*kv.Batch{{}}, TS: nil})
	require.ErrorIs(t, err, kv.ErrInvalidBatch)
	_, err = EncodeCommit(Commit{Batches: []*kv.Batch{nil}, TS: []kv.Timestamp{1}})
	require.ErrorIs(t, err, kv.ErrInvalidBatch)
}

func TestDecodeCommandRejectsUnknown(t *testing.T) {
	for _, data := range [][]byte{nil, {0}, {3}, {255, 1, 2}} {
		_, _, err := DecodeCommand(data)
		require.ErrorIs(t, err, ErrBadCommand, "%x", data)
	}
}

func TestApplyPanicsOnUndecodableEntry(t *testing.T) {
	f := NewFSM(nil, kv.Options{Clock: kv.NewClock(nil)}, nil)
	for _, data := range [][]byte{nil, {9}, {byte(CommandCommit), 5}, {byte(CommandClusterID)}, {byte(CommandClusterID), 0}} {
		require.Panics(t, func() { f.Apply(&raft.Log{Index: 1, Data: data}) }, "%x", data)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	data, err := EncodeCommit(sampleCommit())
	require.NoError(f, err)
	f.Add(data)
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, payload, err := DecodeCommand(data)
		if err != nil {
			return
		}
		if typ == CommandClusterID {
			id, err := DecodeClusterID(payload)
			if err != nil {
				require.ErrorIs(t, err, ErrBadCommand)
				return
			}
			again, err := EncodeClusterID(id)
			require.NoError(t, err)
			require.Equal(t, data, again)
			return
		}
		require.Equal(t, CommandCommit, typ)
		c, err := DecodeCommit(payload)
		if err != nil {
			require.ErrorIs(t, err, ErrBadCommand)
			return
		}
		// What decodes re-encodes to the same bytes: one meaning per entry.
		again, err := EncodeCommit(c)
		require.NoError(t, err)
		require.Equal(t, data, again)
	})
}
