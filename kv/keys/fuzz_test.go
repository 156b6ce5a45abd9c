package keys

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzInt(f *testing.F) {
	for _, v := range []int64{math.MinInt64, -1, 0, 1, math.MaxInt64} {
		f.Add(v, v)
		f.Add(v, -v)
		f.Add(v, ^v)
	}
	f.Fuzz(func(t *testing.T, a, b int64) {
		requireConsistent(t, vInt(a), vInt(b))
	})
}

func FuzzUint(f *testing.F) {
	for _, v := range []uint64{0, 1, math.MaxInt64, 1 << 63, math.MaxUint64} {
		f.Add(v, v)
		f.Add(v, ^v)
		f.Add(v, v+1)
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		requireConsistent(t, vUint(a), vUint(b))
	})
}

func FuzzFloat(f *testing.F) {
	special := []float64{math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64, math.Copysign(0, -1), 0,
		math.SmallestNonzeroFloat64, 1, math.MaxFloat64, math.Inf(1), math.NaN(), -math.NaN()}
	for _, a := range special {
		for _, b := range special {
			f.Add(math.Float64bits(a), math.Float64bits(b))
		}
	}
	// Raw bits rather than float64 arguments so the fuzzer explores every
	// NaN payload and both zeros.
	f.Fuzz(func(t *testing.T, a, b uint64) {
		requireConsistent(t, vFloat(math.Float64frombits(a)), vFloat(math.Float64frombits(b)))
	})
}

func FuzzBytes(f *testing.F) {
	seeds := []string{"", "\x00", "\x00\x01", "\x00\xff", "\x01", "a", "a\x00", "\xff", "\xff\x00\xff"}
	for _, a := range seeds {
		for _, b := range seeds {
			f.Add([]byte(a), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		requireConsistent(t, value{kind: KindBytes, s: a}, value{kind: KindBytes, s: b})
		require.Equal(t, AppendBytes(nil, a), AppendString(nil, string(a)))
	})
}

// bigFromBytes reads a signed big integer: the low bit of the first byte is
// the sign and the remaining bytes, leading zeros included, the magnitude.
func bigFromBytes(b []byte) *big.Int {
	if len(b) == 0 {
		return new(big.Int)
	}
	v := new(big.Int).SetBytes(b[1:])
	if b[0]&1 != 0 {
		v.Neg(v)
	}
	return v
}

func FuzzBigInt(f *testing.F) {
	seeds := [][]byte{
		nil, {0}, {1}, {0, 1}, {1, 1}, {0, 0, 1}, {1, 0xff}, {0, 1, 0},
		append([]byte{0, 1}, make([]byte, 8)...),              // 2^64
		append([]byte{1, 1}, make([]byte, 8)...),              // -2^64
		append([]byte{0}, bytes.Repeat([]byte{0xff}, 126)...), // longest one-byte header
		append([]byte{1, 1}, make([]byte, 126)...),            // shortest long form, negative
	}
	for _, a := range seeds {
		for _, b := range seeds {
			f.Add(a, b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		requireConsistent(t, vBig(bigFromBytes(a)), vBig(bigFromBytes(b)))
	})
}

// tupleReader turns fuzzer bytes into values; missing bytes read as zero so
// every input yields a tuple.
type tupleReader struct{ b []byte }

func (r *tupleReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *tupleReader) bytes() []byte {
	n := min(int(r.byte()%8), len(r.b))
	s := bytes.Clone(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *tupleReader) uint64() uint64 {
	var buf [8]byte
	n := copy(buf[:], r.b)
	r.b = r.b[n:]
	return binary.BigEndian.Uint64(buf[:])
}

func (r *tupleReader) value(k Kind) value {
	// Values are built from few bytes so that equal leading fields, which
	// make later fields matter, are common.
	if r.byte()%4 == 0 {
		return null()
	}
	switch k {
	case KindInt:
		return vInt(int64(int8(r.byte())))
	case KindUint:
		return vUint(uint64(r.byte()))
	case KindFloat:
		if c := r.byte(); c < 0x80 {
			return vFloat(float64(int8(c)) / 4)
		}
		return vFloat(math.Float64frombits(r.uint64()))
	case KindBytes:
		return value{kind: KindBytes, s: r.bytes()}
	case KindBigInt:
		return vBig(bigFromBytes(r.bytes()))
	}
	panic("bad kind")
}

var tupleKinds = []Kind{KindInt, KindUint, KindFloat, KindBytes, KindBigInt}

func FuzzTuple(f *testing.F) {
	f.Add([]byte{0, 1}, []byte{1, 1, 0}, []byte{1, 2, 0})
	f.Add([]byte{0x80, 0x83}, []byte{1, 1, 1, 0}, []byte{1, 1, 0})
	f.Add([]byte{2, 0x84, 3}, []byte{1, 0xc0, 1, 2, 0, 1, 1, 7}, []byte{1, 0xc0, 1, 2, 0, 0})
	f.Fuzz(func(t *testing.T, schema, a, b []byte) {
		if len(schema) > 8 {
			schema = schema[:8]
		}
		cols := make([]column, len(schema))
		for i, s := range schema {
			cols[i] = column{kind: tupleKinds[int(s&0x7f)%len(tupleKinds)], desc: s&0x80 != 0}
		}
		ra, rb := &tupleReader{a}, &tupleReader{b}
		ta, tb := make([]value, len(cols)), make([]value, len(cols))
		for i, c := range cols {
			ta[i], tb[i] = ra.value(c.kind), rb.value(c.kind)
		}
		ea, eb := encodeTuple(cols, ta), encodeTuple(cols, tb)
		require.Equal(t, compareTuples(cols, ta, tb), sign(bytes.Compare(ea, eb)), "%x vs %x", ea, eb)

		for _, tc := range []struct {
			tuple []value
			enc   []byte
		}{{ta, ea}, {tb, eb}} {
			got, err := decodeTuple(cols, tc.enc)
			require.NoError(t, err)
			for i := range got {
				requireSameValue(t, tc.tuple[i], got[i])
			}
			rest := tc.enc
			for i := range cols {
				require.True(t, bytes.HasPrefix(tc.enc, encodeTuple(cols, tc.tuple[:i])))
				n, err := FieldLen(rest)
				require.NoError(t, err)
				rest = rest[n:]
			}
			require.Empty(t, rest)
		}
	})
}

// FuzzDecode feeds arbitrary bytes to the decoders: they must not panic,
// FieldLen must agree with them, and whatever decodes must re-encode to the
// same bytes, so each value has exactly one encoding.
func FuzzDecode(f *testing.F) {
	f.Add(AppendInt(nil, 1))
	f.Add(AppendFloat(nil, -2))
	f.Add(AppendBytes(nil, []byte("a\x00b")))
	f.Add(AppendBigInt(nil, pow(-10, 40)))
	f.Add(AppendNull(nil))
	f.Add([]byte{markerBigInt, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x7f, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, lenErr := FieldLen(b)
		if lenErr != nil {
			require.ErrorIs(t, lenErr, ErrCorrupt)
		}
		check := func(enc []byte, rest []byte, err error) {
			if err != nil {
				require.ErrorIs(t, err, ErrCorrupt)
				require.Equal(t, b, rest)
				return
			}
			require.NoError(t, lenErr)
			require.Equal(t, n, len(b)-len(rest))
			require.Equal(t, b[:n], enc)
		}
		isNull, rest, err := DecodeNull(b)
		if err == nil && isNull {
			check(AppendNull(nil), rest, err)
		}
		i, rest, err := DecodeInt(b)
		check(AppendInt(nil, i), rest, err)
		u, rest, err := DecodeUint(b)
		check(AppendUint(nil, u), rest, err)
		fl, rest, err := DecodeFloat(b)
		check(AppendFloat(nil, fl), rest, err)
		s, rest, err := DecodeBytes(b)
		check(AppendBytes(nil, s), rest, err)
		bi, rest, err := DecodeBigInt(b)
		if err == nil {
			check(AppendBigInt(nil, bi), rest, err)
		} else {
			check(nil, rest, err)
		}

		// The same bytes read as a descending field.
		if _, desc, err := PeekKind(b); err == nil && desc {
			inv := bytes.Clone(b)
			Invert(inv, 0)
			n2, err := FieldLen(inv)
			require.Equal(t, lenErr == nil, err == nil)
			if err == nil {
				require.Equal(t, n, n2)
			}
		}
	})
}
