package keys

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct {
		in, want []byte
	}{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte{0xff}, nil},
		{[]byte{0xff, 0xff, 0xff}, nil},
		{[]byte{0x00}, []byte{0x01}},
		{[]byte{0x00, 0x00}, []byte{0x00, 0x01}},
		{[]byte{0xfe}, []byte{0xff}},
		{[]byte{0x01, 0xff}, []byte{0x02}},
		{[]byte{0x10, 0xfe, 0xff, 0xff}, []byte{0x10, 0xff}},
		{[]byte("ab"), []byte("ac")},
	} {
		in := bytes.Clone(tc.in)
		got := PrefixEnd(in)
		require.Equal(t, tc.want, got, "%x", tc.in)
		require.Equal(t, tc.in, in, "input modified")
		if got == nil {
			continue
		}
		// got bounds every extension of the prefix and nothing between.
		for _, suffix := range [][]byte{nil, {0x00}, {0xff, 0xff, 0xff}} {
			require.Equal(t, -1, bytes.Compare(append(bytes.Clone(tc.in), suffix...), got))
		}
		require.False(t, bytes.HasPrefix(got, tc.in))
	}
}

func TestPrefixEndDoesNotAliasInput(t *testing.T) {
	p := make([]byte, 2, 10)
	p[0], p[1] = 'a', 0xff
	end := PrefixEnd(p)
	end[0] = 'z'
	require.Equal(t, []byte{'a', 0xff}, p)
}

func TestCatalogKey(t *testing.T) {
	require.Equal(t, []byte{PrefixCatalog}, CatalogKey())
	require.Equal(t,
		[]byte{PrefixCatalog, markerBytes, 'd', 'b', 0x00, 0x01, markerBytes, 'a', 0x00, 0xff, 0x00, 0x01},
		CatalogKey([]byte("db"), []byte("a\x00")))

	// A namespace lists with a prefix scan, without matching namespaces
	// whose name merely starts the same way.
	ns := CatalogKey([]byte("tables"))
	inside := CatalogKey([]byte("tables"), []byte("t1"))
	require.True(t, bytes.HasPrefix(inside, ns))
	require.False(t, bytes.HasPrefix(CatalogKey([]byte("tables2"), []byte("t1")), ns))
	require.Equal(t, -1, bytes.Compare(inside, PrefixEnd(ns)))

	keys := [][]byte{
		CatalogKey([]byte("a")),
		CatalogKey([]byte("a"), []byte("")),
		CatalogKey([]byte("a"), []byte("x")),
		CatalogKey([]byte("a\x00")),
		CatalogKey([]byte("b")),
	}
	for i := 1; i < len(keys); i++ {
		require.Equal(t, -1, bytes.Compare(keys[i-1], keys[i]), "%d", i)
	}
}

func TestTableAndIndexPrefixes(t *testing.T) {
	require.Equal(t, []byte{PrefixTable, markerUint, 0, 0, 0, 0, 0, 0, 0, 7}, TablePrefix(7))
	require.Equal(t, append(TablePrefix(7), markerUint, 0, 0, 0, 0, 0, 0, 0, 2), IndexPrefix(7, 2))

	ordered := [][]byte{
		CatalogKey([]byte("\xff\xff")),
		TablePrefix(0),
		IndexPrefix(1, 0),
		IndexPrefix(1, 1),
		AppendInt(IndexPrefix(1, 1), 5),
		IndexPrefix(1, math.MaxUint64),
		TablePrefix(2),
		IndexPrefix(math.MaxUint64, 0),
	}
	for i := 1; i < len(ordered); i++ {
		require.Equal(t, -1, bytes.Compare(ordered[i-1], ordered[i]), "%d", i)
	}

	// Every key of table 1 lies in [TablePrefix(1), PrefixEnd(TablePrefix(1))),
	// which ends at or before table 2.
	end := PrefixEnd(TablePrefix(1))
	require.Equal(t, -1, bytes.Compare(AppendBytes(IndexPrefix(1, math.MaxUint64), []byte("\xff\xff")), end))
	require.LessOrEqual(t, bytes.Compare(end, TablePrefix(2)), 0)
	require.True(t, bytes.HasPrefix(IndexPrefix(3, 4), TablePrefix(3)))

	// The prefix is a fresh slice each time, safe to append to.
	a := IndexPrefix(1, 1)
	b := IndexPrefix(1, 1)
	require.NotEqual(t, AppendInt(a, 1), AppendInt(b, 2))
	require.Equal(t, IndexPrefix(1, 1), a)
}
