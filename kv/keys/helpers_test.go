package keys

import (
	"bytes"
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

// value is a test-side model of one field, used to compare what the
// encoding says with what the values say.
type value struct {
	kind Kind // KindNull for NULL
	i    int64
	u    uint64
	f    float64
	s    []byte
	n    *big.Int
}

type column struct {
	kind Kind
	desc bool
}

func null() value             { return value{kind: KindNull} }
func vInt(i int64) value      { return value{kind: KindInt, i: i} }
func vUint(u uint64) value    { return value{kind: KindUint, u: u} }
func vFloat(f float64) value  { return value{kind: KindFloat, f: f} }
func vBytes(s string) value   { return value{kind: KindBytes, s: []byte(s)} }
func vBig(n *big.Int) value   { return value{kind: KindBigInt, n: n} }
func vBigInt64(i int64) value { return vBig(big.NewInt(i)) }
func asc(k Kind) column       { return column{kind: k} }
func desc(k Kind) column      { return column{kind: k, desc: true} }
func sign(c int) int          { return min(max(c, -1), 1) }
func appendValue(b []byte, v value) []byte {
	switch v.kind {
	case KindNull:
		return AppendNull(b)
	case KindInt:
		return AppendInt(b, v.i)
	case KindUint:
		return AppendUint(b, v.u)
	case KindFloat:
		return AppendFloat(b, v.f)
	case KindBytes:
		return AppendBytes(b, v.s)
	case KindBigInt:
		return AppendBigInt(b, v.n)
	}
	panic("bad kind")
}

func appendColumn(b []byte, c column, v value) []byte {
	start := len(b)
	b = appendValue(b, v)
	if c.desc {
		Invert(b, start)
	}
	return b
}

func encodeTuple(cols []column, vals []value) []byte {
	var b []byte
	for i, v := range vals {
		b = appendColumn(b, cols[i], v)
	}
	return b
}

func cmpFloat(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareValues(a, b value) int {
	if a.kind == KindNull || b.kind == KindNull {
		switch {
		case a.kind == b.kind:
			return 0
		case a.kind == KindNull:
			return -1
		}
		return 1
	}
	if a.kind != b.kind {
		panic("mixed kinds in one column")
	}
	switch a.kind {
	case KindInt:
		return cmpInt(a.i, b.i)
	case KindUint:
		switch {
		case a.u < b.u:
			return -1
		case a.u > b.u:
			return 1
		}
		return 0
	case KindFloat:
		return cmpFloat(a.f, b.f)
	case KindBytes:
		return bytes.Compare(a.s, b.s)
	case KindBigInt:
		return a.n.Cmp(b.n)
	}
	panic("bad kind")
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareTuples(cols []column, a, b []value) int {
	for i := range min(len(a), len(b)) {
		c := compareValues(a[i], b[i])
		if cols[i].desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return cmpInt(int64(len(a)), int64(len(b)))
}

// decodeColumn decodes one column of kind c.kind and direction c.desc.
func decodeColumn(b []byte, c column) (value, []byte, error) {
	if c.desc {
		var v value
		rest, err := DecodeDescending(b, func(f []byte) ([]byte, error) {
			var err error
			v, f, err = decodeAscending(f, c.kind)
			return f, err
		})
		return v, rest, err
	}
	return decodeAscending(b, c.kind)
}

func decodeAscending(b []byte, k Kind) (value, []byte, error) {
	isNull, b, err := DecodeNull(b)
	if err != nil || isNull {
		return null(), b, err
	}
	v := value{kind: k}
	switch k {
	case KindInt:
		v.i, b, err = DecodeInt(b)
	case KindUint:
		v.u, b, err = DecodeUint(b)
	case KindFloat:
		v.f, b, err = DecodeFloat(b)
	case KindBytes:
		v.s, b, err = DecodeBytes(b)
	case KindBigInt:
		v.n, b, err = DecodeBigInt(b)
	default:
		panic("bad kind")
	}
	return v, b, err
}

func decodeTuple(cols []column, b []byte) ([]value, error) {
	var vals []value
	for _, c := range cols {
		var v value
		var err error
		v, b, err = decodeColumn(b, c)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	if len(b) != 0 {
		return nil, ErrCorrupt
	}
	return vals, nil
}

// requireSameValue checks that got is what decoding want's encoding should
// produce: identical, except that -0 becomes +0 and NaN stays NaN.
func requireSameValue(t testing.TB, want, got value) {
	t.Helper()
	require.Equal(t, want.kind, got.kind)
	switch want.kind {
	case KindInt:
		require.Equal(t, want.i, got.i)
	case KindUint:
		require.Equal(t, want.u, got.u)
	case KindFloat:
		if math.IsNaN(want.f) {
			require.True(t, math.IsNaN(got.f), "got %v, want NaN", got.f)
			return
		}
		require.Equal(t, want.f, got.f)
		require.False(t, math.Signbit(got.f) && got.f == 0, "decoded -0")
	case KindBytes:
		require.NotNil(t, got.s)
		require.True(t, bytes.Equal(want.s, got.s), "got %x, want %x", got.s, want.s)
	case KindBigInt:
		require.Zero(t, want.n.Cmp(got.n), "got %v, want %v", got.n, want.n)
	}
}

// requireConsistent checks that encodings of a and b, ascending and
// descending, compare like the values, and that both round-trip and
// FieldLen agrees with the decoders.
func requireConsistent(t testing.TB, a, b value) {
	t.Helper()
	want := compareValues(a, b)
	ea, eb := appendValue(nil, a), appendValue(nil, b)
	require.Equal(t, want, sign(bytes.Compare(ea, eb)), "ascending %x vs %x", ea, eb)
	da, db := bytes.Clone(ea), bytes.Clone(eb)
	Invert(da, 0)
	Invert(db, 0)
	require.Equal(t, -want, sign(bytes.Compare(da, db)), "descending %x vs %x", da, db)
	for _, v := range []value{a, b} {
		requireRoundTrip(t, v)
	}
}

var trailer = []byte{0x00, 0xff, 0x01}

func requireRoundTrip(t testing.TB, v value) {
	t.Helper()
	for _, c := range []column{asc(v.kind), desc(v.kind)} {
		if v.kind == KindNull {
			c.kind = KindInt
		}
		enc := appendColumn(nil, c, v)
		n, err := FieldLen(enc)
		require.NoError(t, err)
		require.Equal(t, len(enc), n)
		k, d, err := PeekKind(enc)
		require.NoError(t, err)
		require.Equal(t, v.kind, k)
		require.Equal(t, c.desc, d)

		enc = append(enc, trailer...)
		got, rest, err := decodeColumn(enc, c)
		require.NoError(t, err, "%x", enc)
		require.Equal(t, trailer, rest)
		requireSameValue(t, v, got)
	}
}
