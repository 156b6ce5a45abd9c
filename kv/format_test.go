package kv

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHistoryKeyOrder(t *testing.T) {
	// Keys chosen around the escape bytes, including prefixes of each other.
	keys := [][]byte{
		{0x00}, {0x00, 0x00}, {0x00, 0x01}, {0x00, 0xFF}, {0x01},
		[]byte("a"), []byte("a\x00"), []byte("a\x00\x00"), []byte("a\x00\x01"),
		[]byte("a\x00\xff"), []byte("a\x01"), []byte("a\xff"), []byte("ab"), {0xFF}, {0xFF, 0x00},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		k := make([]byte, r.IntN(5)+1)
		for i := range k {
			k[i] = []byte{0x00, 0x01, 0x7F, 0xFE, 0xFF}[r.IntN(5)]
		}
		keys = append(keys, k)
	}
	tss := []Timestamp{1, 2, 1 << 20, MaxTimestamp - 1}
	type entry struct {
		key []byte
		ts  Timestamp
		hk  []byte
	}
	var entries []entry
	for _, k := range keys {
		for _, ts := range tss {
			entries = append(entries, entry{k, ts, appendHistoryKey(nil, k, ts)})
		}
	}
	// Sorting by encoded key must equal sorting by (key asc, ts desc).
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.hk, b.hk) })
	for i := 1; i < len(entries); i++ {
		a, b := entries[i-1], entries[i]
		c := bytes.Compare(a.key, b.key)
		require.True(t, c < 0 || (c == 0 && a.ts >= b.ts), "%x@%d sorts before %x@%d", a.key, a.ts, b.key, b.ts)
	}
	for _, e := range entries {
		require.Equal(t, e.ts, historyKeyTS(e.hk))
	}
}

func TestSameHistoryKey(t *testing.T) {
	a := appendHistoryKey(nil, []byte("a"), 5)
	require.True(t, sameHistoryKey(a, appendHistoryKey(nil, []byte("a"), 9)))
	require.False(t, sameHistoryKey(a, appendHistoryKey(nil, []byte("a\x00"), 5)))
	require.False(t, sameHistoryKey(a, appendHistoryKey(nil, []byte("b"), 5)))
}

func TestDecodeRejectsCorruptValues(t *testing.T) {
	for _, v := range [][]byte{nil, {1, 2, 3}, {0, 0, 0, 0, 0, 0, 0, 1, 0x00}, {0, 0, 0, 0, 0, 0, 0, 1, 0x09},
		{0, 0, 0, 0, 0, 0, 0, 1, flagTombstone, 'x'}} {
		_, _, _, err := decodeLatest(v)
		require.True(t, errors.Is(err, ErrCorrupt), "%x: %v", v, err)
	}
	for _, v := range [][]byte{nil, {0x07}, {flagTombstone, 1}} {
		_, _, err := decodeHistory(v)
		require.True(t, errors.Is(err, ErrCorrupt), "%x: %v", v, err)
	}
	_, _, _, err := decodeGCKey([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0x05, 'k'})
	require.ErrorIs(t, err, ErrCorrupt)

	buf := make([]byte, latestHeaderLen+3)
	encodeLatest(buf, 42, flagLive, []byte("abc"))
	ts, flag, val, err := decodeLatest(buf)
	require.NoError(t, err)
	require.Equal(t, Timestamp(42), ts)
	require.Equal(t, flagLive, flag)
	require.Equal(t, "abc", string(val))
}

func TestArenaBuffersStayPut(t *testing.T) {
	var a arena
	var bufs [][]byte
	for i := range 5000 {
		b := a.alloc(i % 300)
		for j := range b {
			b[j] = byte(i)
		}
		bufs = append(bufs, b)
	}
	big := a.alloc(arenaBlockSize)
	require.Len(t, big, arenaBlockSize)
	for i, b := range bufs {
		if !bytes.Equal(b, bytes.Repeat([]byte{byte(i)}, i%300)) {
			t.Fatalf("buffer %d overwritten: %x", i, b)
		}
	}
	a.reset()
	require.LessOrEqual(t, len(a.blocks), arenaKeep)
}
