package keys

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

func pow(base, exp int64) *big.Int {
	return new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil)
}

func add(a *big.Int, d int64) *big.Int { return new(big.Int).Add(a, big.NewInt(d)) }
func neg(a *big.Int) *big.Int          { return new(big.Int).Neg(a) }

// requireStrictlyAscending checks every pair of vals, which must be listed
// in strictly ascending order, in both directions, and round-trips each.
func requireStrictlyAscending(t *testing.T, vals []value) {
	t.Helper()
	for i := range vals {
		for j := range vals {
			require.Equal(t, cmpInt(int64(i), int64(j)), compareValues(vals[i], vals[j]), "test table out of order at %d, %d", i, j)
			requireConsistent(t, vals[i], vals[j])
		}
	}
}

func TestIntOrder(t *testing.T) {
	var vals []value
	for _, i := range []int64{math.MinInt64, math.MinInt64 + 1, -1 << 32, -256, -255, -1, 0, 1, 255, 256, 1 << 32, math.MaxInt64 - 1, math.MaxInt64} {
		vals = append(vals, vInt(i))
	}
	requireStrictlyAscending(t, vals)
}

func TestUintOrder(t *testing.T) {
	var vals []value
	for _, u := range []uint64{0, 1, 255, 256, 1 << 32, math.MaxInt64, 1 << 63, math.MaxUint64 - 1, math.MaxUint64} {
		vals = append(vals, vUint(u))
	}
	requireStrictlyAscending(t, vals)
}

func TestFloatOrder(t *testing.T) {
	var vals []value
	for _, f := range []float64{
		math.Inf(-1), -math.MaxFloat64, -1e300, -math.Pi, -1, -math.SmallestNonzeroFloat64 * 2, -math.SmallestNonzeroFloat64,
		0,
		math.SmallestNonzeroFloat64, 2 * math.SmallestNonzeroFloat64, 0x1p-1022, 1, math.Pi, 1e300, math.MaxFloat64, math.Inf(1),
		math.NaN(),
	} {
		vals = append(vals, vFloat(f))
	}
	requireStrictlyAscending(t, vals)
}

func TestFloatNormalisation(t *testing.T) {
	negZero := math.Copysign(0, -1)
	require.Equal(t, AppendFloat(nil, 0), AppendFloat(nil, negZero))
	requireConsistent(t, vFloat(negZero), vFloat(0))

	nans := []float64{
		math.NaN(),
		-math.NaN(),
		math.Float64frombits(0x7ff0_0000_0000_0001), // signalling
		math.Float64frombits(0xfff8_0000_0000_0000),
		math.Float64frombits(0xffff_ffff_ffff_ffff),
	}
	for _, n := range nans {
		require.Equal(t, AppendFloat(nil, math.NaN()), AppendFloat(nil, n))
		require.Equal(t, 1, bytes.Compare(AppendFloat(nil, n), AppendFloat(nil, math.Inf(1))))
	}
	require.Equal(t, []byte{markerFloat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, AppendFloat(nil, math.NaN()))
}

func TestBytesOrder(t *testing.T) {
	var vals []value
	for _, s := range []string{
		"", "\x00", "\x00\x00", "\x00\x00\xff", "\x00\x01", "\x00\xff", "\x00\xff\x00", "\x01", "\x01\x00",
		"a", "a\x00", "a\x00\x00", "a\x00\x01", "a\x01", "ab", "a\xff", "b", "\xfe", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
	} {
		vals = append(vals, vBytes(s))
	}
	requireStrictlyAscending(t, vals)
}

func TestBytesLayout(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
	}{
		{"", []byte{markerBytes, 0x00, 0x01}},
		{"a", []byte{markerBytes, 'a', 0x00, 0x01}},
		{"\x00", []byte{markerBytes, 0x00, 0xff, 0x00, 0x01}},
		{"a\x00b\x00", []byte{markerBytes, 'a', 0x00, 0xff, 'b', 0x00, 0xff, 0x00, 0x01}},
		{"\xff\x01", []byte{markerBytes, 0xff, 0x01, 0x00, 0x01}},
	} {
		require.Equal(t, tc.want, AppendBytes(nil, []byte(tc.in)), "%q", tc.in)
		require.Equal(t, tc.want, AppendString(nil, tc.in), "%q", tc.in)
	}
}

func TestBigIntOrder(t *testing.T) {
	two64 := pow(2, 64)
	ten40 := pow(10, 40)
	// 126 bytes is the longest magnitude with a one-byte header.
	maxShort := add(pow(2, 8*126), -1)
	minLong := pow(2, 8*126)
	huge := pow(2, 4000)
	ascending := []*big.Int{
		neg(huge),
		neg(add(minLong, 1)),
		neg(minLong),
		neg(maxShort),
		neg(ten40),
		neg(add(two64, 1)),
		neg(two64),
		neg(add(two64, -1)),
		big.NewInt(math.MinInt64),
		big.NewInt(-256),
		big.NewInt(-255),
		big.NewInt(-2),
		big.NewInt(-1),
		big.NewInt(0),
		big.NewInt(1),
		big.NewInt(2),
		big.NewInt(255),
		big.NewInt(256),
		big.NewInt(math.MaxInt64),
		add(two64, -1),
		two64,
		add(two64, 1),
		ten40,
		maxShort,
		minLong,
		add(minLong, 1),
		huge,
	}
	var vals []value
	for _, n := range ascending {
		vals = append(vals, vBig(n))
	}
	requireStrictlyAscending(t, vals)

	require.Equal(t, []byte{markerBigInt, 0x80}, AppendBigInt(nil, big.NewInt(0)))
	require.Equal(t, []byte{markerBigInt, 0x81, 0x01}, AppendBigInt(nil, big.NewInt(1)))
	require.Equal(t, []byte{markerBigInt, 0x7e, 0xfe}, AppendBigInt(nil, big.NewInt(-1)))
	require.Equal(t, []byte{markerBigInt, 0x82, 0x01, 0x00}, AppendBigInt(nil, big.NewInt(256)))
	require.Equal(t, byte(0xfe), AppendBigInt(nil, maxShort)[1])
	long := AppendBigInt(nil, minLong)
	require.Equal(t, []byte{markerBigInt, 0xff, 0, 0, 0, 0, 0, 0, 0, 127, 1}, long[:11])
	require.Len(t, long, 10+127)
}

func TestBigIntDoesNotModifyInput(t *testing.T) {
	v := big.NewInt(-12345)
	AppendBigInt(nil, v)
	require.Equal(t, int64(-12345), v.Int64())
}

func TestTupleOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		cols []column
		// Tuples listed in strictly ascending order.
		tuples [][]value
	}{
		{
			name: "int int",
			cols: []column{asc(KindInt), asc(KindInt)},
			tuples: [][]value{
				{null(), null()},
				{null(), vInt(math.MinInt64)},
				{vInt(-1), vInt(5)},
				{vInt(1), null()},
				{vInt(1), vInt(0)},
				{vInt(1), vInt(1)},
				{vInt(2), null()},
				{vInt(2), vInt(math.MinInt64)},
			},
		},
		{
			name: "bytes int",
			cols: []column{asc(KindBytes), asc(KindInt)},
			tuples: [][]value{
				{null(), vInt(9)},
				{vBytes(""), null()},
				{vBytes(""), vInt(-1)},
				{vBytes("\x00"), vInt(-9)},
				{vBytes("a"), vInt(math.MaxInt64)},
				{vBytes("a\x00"), null()},
				{vBytes("a\x00"), vInt(0)},
				{vBytes("a\x01"), vInt(0)},
				{vBytes("ab"), null()},
			},
		},
		{
			name: "int desc bytes",
			cols: []column{asc(KindInt), desc(KindBytes)},
			tuples: [][]value{
				{vInt(1), vBytes("b")},
				{vInt(1), vBytes("a\x00")},
				{vInt(1), vBytes("a")},
				{vInt(1), vBytes("")},
				{vInt(1), null()},
				{vInt(2), vBytes("\xff")},
				{vInt(2), null()},
			},
		},
		{
			name: "desc float, uint, desc bigint, bytes",
			cols: []column{desc(KindFloat), asc(KindUint), desc(KindBigInt), asc(KindBytes)},
			tuples: [][]value{
				{vFloat(math.NaN()), null(), null(), null()},
				{vFloat(math.Inf(1)), vUint(0), vBigInt64(0), vBytes("")},
				{vFloat(1), null(), vBig(pow(10, 40)), vBytes("z")},
				{vFloat(1), null(), vBigInt64(-1), vBytes("")},
				{vFloat(1), null(), null(), vBytes("")},
				{vFloat(1), vUint(0), vBig(neg(pow(2, 64))), null()},
				{vFloat(1), vUint(0), vBig(neg(pow(2, 64))), vBytes("")},
				{vFloat(0), vUint(math.MaxUint64), vBigInt64(1), vBytes("a")},
				{vFloat(math.Inf(-1)), null(), null(), null()},
				{null(), vUint(0), vBigInt64(0), vBytes("")},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var encs [][]byte
			for _, tup := range tc.tuples {
				encs = append(encs, encodeTuple(tc.cols, tup))
			}
			for i := range encs {
				for j := range encs {
					require.Equal(t, cmpInt(int64(i), int64(j)), compareTuples(tc.cols, tc.tuples[i], tc.tuples[j]), "test table out of order")
					require.Equal(t, cmpInt(int64(i), int64(j)), sign(bytes.Compare(encs[i], encs[j])), "tuples %d and %d: %x vs %x", i, j, encs[i], encs[j])
				}
				got, err := decodeTuple(tc.cols, encs[i])
				require.NoError(t, err)
				for k := range got {
					requireSameValue(t, tc.tuples[i][k], got[k])
				}
				for k := range tc.tuples[i] {
					prefix := encodeTuple(tc.cols, tc.tuples[i][:k])
					require.True(t, bytes.HasPrefix(encs[i], prefix), "prefix of %d fields", k)
				}
			}
		})
	}
}

func TestPrefixOfTupleSortsBeforeExtensions(t *testing.T) {
	cols := []column{asc(KindInt), desc(KindInt)}
	short := encodeTuple(cols, []value{vInt(1)})
	for _, v := range []value{null(), vInt(math.MinInt64), vInt(math.MaxInt64)} {
		long := encodeTuple(cols, []value{vInt(1), v})
		require.True(t, bytes.HasPrefix(long, short))
		require.Equal(t, -1, bytes.Compare(short, long))
		require.Equal(t, 1, bytes.Compare(PrefixEnd(short), long))
	}
}

func TestNullOrder(t *testing.T) {
	encs := [][]byte{
		AppendInt(nil, math.MinInt64), AppendUint(nil, 0), AppendFloat(nil, math.Inf(-1)),
		AppendBytes(nil, nil), AppendBigInt(nil, pow(-2, 4001)),
	}
	for _, e := range encs {
		require.Equal(t, -1, bytes.Compare(AppendNull(nil), e))
		d := bytes.Clone(e)
		Invert(d, 0)
		dn := AppendNull(nil)
		Invert(dn, 0)
		require.Equal(t, 1, bytes.Compare(dn, d))
		require.Less(t, e[0], byte(0x80), "ascending markers stay below 0x80")
		require.Greater(t, e[0], byte(0x01))
		require.Less(t, e[0], byte(0xfe))
	}
}

func TestRoundTrip(t *testing.T) {
	vals := []value{
		null(),
		vInt(math.MinInt64), vInt(-1), vInt(0), vInt(1), vInt(math.MaxInt64),
		vUint(0), vUint(1), vUint(math.MaxUint64),
		vFloat(math.Inf(-1)), vFloat(-1.5), vFloat(math.Copysign(0, -1)), vFloat(0), vFloat(math.SmallestNonzeroFloat64),
		vFloat(math.MaxFloat64), vFloat(math.Inf(1)), vFloat(math.NaN()),
		vBytes(""), vBytes("\x00"), vBytes("\xff"), vBytes("\x00\x01\xff\x00\x00"), vBytes("hello"),
		vBigInt64(0), vBigInt64(1), vBigInt64(-1), vBig(pow(2, 64)), vBig(neg(pow(10, 40))), vBig(pow(3, 1000)), vBig(neg(pow(3, 1000))),
	}
	for _, v := range vals {
		requireRoundTrip(t, v)
	}
}

func TestDecodeBytesDoesNotAlias(t *testing.T) {
	enc := AppendString(nil, "abc")
	got, _, err := DecodeBytes(enc)
	require.NoError(t, err)
	enc[1] = 'x'
	require.Equal(t, []byte("abc"), got)

	got, _, err = DecodeBytes(AppendBytes(nil, nil))
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Empty(t, got)
}

func TestDecodeNull(t *testing.T) {
	isNull, rest, err := DecodeNull(AppendInt(AppendNull(nil), 7))
	require.NoError(t, err)
	require.True(t, isNull)
	isNull, rest, err = DecodeNull(rest)
	require.NoError(t, err)
	require.False(t, isNull)
	require.Equal(t, AppendInt(nil, 7), rest)

	_, _, err = DecodeNull(nil)
	require.ErrorIs(t, err, ErrTruncated)
	d := AppendNull(nil)
	Invert(d, 0)
	_, _, err = DecodeNull(d)
	require.ErrorIs(t, err, ErrUnexpectedMarker)
}

func TestDecodeDescending(t *testing.T) {
	b := AppendNull(nil)
	Invert(b, 0)
	b = AppendInt(b, 3)
	Invert(b, 1)
	b = append(b, 0xaa)

	var isNull bool
	decodeNull := func(f []byte) ([]byte, error) {
		var err error
		isNull, f, err = DecodeNull(f)
		return f, err
	}
	rest, err := DecodeDescending(b, decodeNull)
	require.NoError(t, err)
	require.True(t, isNull)
	require.Equal(t, b[1:], rest)

	rest2, err := DecodeDescending(rest, decodeNull)
	require.NoError(t, err)
	require.False(t, isNull)
	require.Equal(t, rest, rest2, "a non-NULL field is left in place")

	var v int64
	rest, err = DecodeDescending(rest, func(f []byte) ([]byte, error) {
		var err error
		v, f, err = DecodeInt(f)
		return f, err
	})
	require.NoError(t, err)
	require.Equal(t, int64(3), v)
	require.Equal(t, []byte{0xaa}, rest)

	_, err = DecodeDescending(AppendInt(nil, 3), decodeNull)
	require.ErrorIs(t, err, ErrUnexpectedMarker, "ascending field")
	_, err = DecodeDescending(nil, decodeNull)
	require.ErrorIs(t, err, ErrTruncated)

	wantErr := errors.New("boom")
	in := AppendInt(nil, 1)
	Invert(in, 0)
	_, err = DecodeDescending(in, func([]byte) ([]byte, error) { return nil, wantErr })
	require.ErrorIs(t, err, wantErr)
}

func TestFieldLenSkipsFields(t *testing.T) {
	var b []byte
	b = AppendNull(b)
	b = AppendInt(b, -3)
	start := len(b)
	b = AppendString(b, "x\x00y")
	Invert(b, start)
	b = AppendUint(b, 9)
	b = AppendFloat(b, 2.5)
	start = len(b)
	b = AppendBigInt(b, pow(-7, 300))
	Invert(b, start)
	b = AppendBigInt(b, big.NewInt(0))
	b = AppendBytes(b, nil)

	want := []Kind{KindNull, KindInt, KindBytes, KindUint, KindFloat, KindBigInt, KindBigInt, KindBytes}
	var got []Kind
	for len(b) > 0 {
		k, _, err := PeekKind(b)
		require.NoError(t, err)
		got = append(got, k)
		n, err := FieldLen(b)
		require.NoError(t, err)
		b = b[n:]
	}
	require.Equal(t, want, got)
}

func TestDecodeErrors(t *testing.T) {
	withMarker := func(m byte, payload ...byte) []byte { return append([]byte{m}, payload...) }
	float := func(payload uint64) []byte {
		b := []byte{markerFloat}
		for i := 7; i >= 0; i-- {
			b = append(b, byte(payload>>(8*i)))
		}
		return b
	}
	type decoder func([]byte) ([]byte, error)
	dInt := func(b []byte) ([]byte, error) { _, r, err := DecodeInt(b); return r, err }
	dUint := func(b []byte) ([]byte, error) { _, r, err := DecodeUint(b); return r, err }
	dFloat := func(b []byte) ([]byte, error) { _, r, err := DecodeFloat(b); return r, err }
	dBytes := func(b []byte) ([]byte, error) { _, r, err := DecodeBytes(b); return r, err }
	dBig := func(b []byte) ([]byte, error) { _, r, err := DecodeBigInt(b); return r, err }
	dLen := func(b []byte) ([]byte, error) { n, err := FieldLen(b); return b[n:], err }

	for _, tc := range []struct {
		name string
		dec  []decoder
		in   []byte
		want error
	}{
		{"empty", []decoder{dInt, dUint, dFloat, dBytes, dBig, dLen}, nil, ErrTruncated},
		{"null", []decoder{dInt, dUint, dFloat, dBytes, dBig}, AppendNull(nil), ErrUnexpectedMarker},
		{"other kind", []decoder{dUint, dFloat, dBytes, dBig}, AppendInt(nil, 1), ErrUnexpectedMarker},
		{"descending int", []decoder{dInt}, func() []byte { b := AppendInt(nil, 1); Invert(b, 0); return b }(), ErrUnexpectedMarker},
		{"unknown marker", []decoder{dLen}, []byte{0x02}, ErrUnexpectedMarker},
		{"short int", []decoder{dInt, dLen}, AppendInt(nil, 1)[:8], ErrTruncated},
		{"short uint", []decoder{dUint, dLen}, withMarker(markerUint, 1, 2), ErrTruncated},
		{"short float", []decoder{dFloat, dLen}, withMarker(markerFloat), ErrTruncated},
		{"negative zero", []decoder{dFloat}, float(0x7fff_ffff_ffff_ffff), ErrCorrupt},
		{"other NaN", []decoder{dFloat}, float(0xfff8_0000_0000_0000), ErrCorrupt},
		{"negative NaN", []decoder{dFloat}, float(0x0007_ffff_ffff_ffff), ErrCorrupt},
		{"unterminated bytes", []decoder{dBytes, dLen}, withMarker(markerBytes, 'a', 'b'), ErrTruncated},
		{"bytes ending in escape", []decoder{dBytes, dLen}, withMarker(markerBytes, 'a', 0x00), ErrTruncated},
		{"bad escape", []decoder{dBytes, dLen}, withMarker(markerBytes, 'a', 0x00, 0x02, 0x00, 0x01), ErrCorrupt},
		{"bigint without header", []decoder{dBig, dLen}, withMarker(markerBigInt), ErrTruncated},
		{"bigint short magnitude", []decoder{dBig, dLen}, withMarker(markerBigInt, 0x83, 1, 2), ErrTruncated},
		{"bigint leading zero", []decoder{dBig, dLen}, withMarker(markerBigInt, 0x82, 0, 1), ErrCorrupt},
		{"negative bigint leading zero", []decoder{dBig, dLen}, withMarker(markerBigInt, 0x7d, 0xff, 1), ErrCorrupt},
		{"complemented zero header", []decoder{dBig, dLen}, withMarker(markerBigInt, 0x7f), ErrCorrupt},
		{"bigint long form for short length", []decoder{dBig, dLen}, withMarker(markerBigInt, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 1), ErrCorrupt},
		{"bigint short length field", []decoder{dBig, dLen}, withMarker(markerBigInt, 0xff, 0, 0, 0), ErrTruncated},
		{"bigint huge length", []decoder{dBig, dLen}, withMarker(markerBigInt, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1), ErrTruncated},
		{"negative bigint huge length", []decoder{dBig, dLen}, withMarker(markerBigInt, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 1), ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, dec := range tc.dec {
				rest, err := dec(tc.in)
				require.ErrorIs(t, err, tc.want)
				require.ErrorIs(t, err, ErrCorrupt)
				if rest != nil {
					require.Equal(t, tc.in, rest, "input is returned on error")
				}
			}
		})
	}
}

func TestEncodersDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 1024)
	n := pow(-10, 40)
	s := "some\x00string"
	bs := []byte(s)
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendNull(buf)
		b = AppendInt(b, -5)
		b = AppendUint(b, 5)
		b = AppendFloat(b, 5.5)
		b = AppendBytes(b, bs)
		b = AppendString(b, s)
		start := len(b)
		b = AppendBigInt(b, n)
		Invert(b, start)
	})
	require.Zero(t, allocs)
}

func TestKindString(t *testing.T) {
	require.Equal(t, "bigint", KindBigInt.String())
	require.Equal(t, "invalid", Kind(200).String())
}

func BenchmarkAppendString(b *testing.B) {
	buf := make([]byte, 0, 256)
	s := "customer-name-0000000000000042"
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}

func BenchmarkAppendInt(b *testing.B) {
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = AppendInt(buf[:0], 42)
	}
}
