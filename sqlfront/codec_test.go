package sqlfront

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/planbuilder"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

func mustType(t *testing.T, s string) sql.Type {
	t.Helper()
	typ, err := planbuilder.ParseColumnTypeString(s)
	require.NoError(t, err)
	if tc, ok := typ.(sql.TypeWithCollation); ok && tc.Collation() == sql.Collation_Unspecified {
		typ, err = tc.WithNewCollation(sql.Collation_Default)
		require.NoError(t, err)
	}
	return typ
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestKeyOrderMatchesMySQL checks, for every pair of values of a column
// type, that the order of their keys is the engine's (MySQL's) comparison
// of the values, equality included: uniqueness and ORDER BY through an
// index both depend on it.
func TestKeyOrderMatchesMySQL(t *testing.T) {
	ctx := sql.NewEmptyContext()
	cases := []struct {
		typ    string
		values []interface{}
	}{
		{"bigint", []interface{}{int64(math.MinInt64), int64(-5), int64(-1), int64(0), int64(1), int64(42), int64(math.MaxInt64)}},
		{"int", []interface{}{int32(math.MinInt32), int32(-1), int32(0), int32(7), int32(math.MaxInt32)}},
		{"bigint unsigned", []interface{}{uint64(0), uint64(1), uint64(1 << 40), uint64(math.MaxUint64)}},
		{"tinyint unsigned", []interface{}{uint8(0), uint8(9), uint8(255)}},
		{"double", []interface{}{math.Inf(-1), -1e300, -2.5, -0.0, 0.0, 1e-300, 3.25, math.Inf(1)}},
		{"float", []interface{}{float32(-3.5), float32(0), float32(1.25), float32(1e20)}},
		{"decimal(10,2)", []interface{}{decimal.RequireFromString("-99999999.99"), decimal.RequireFromString("-1.50"), decimal.RequireFromString("-1.5"), decimal.RequireFromString("0.00"), decimal.RequireFromString("0.01"), decimal.RequireFromString("1.5"), decimal.RequireFromString("1.50"), decimal.RequireFromString("99999999.99")}},
		{"varchar(20)", []interface{}{"", "A", "B", "a", "a ", "ab", "b", "é", "z"}},
		{"varchar(20) COLLATE utf8mb3_general_ci", []interface{}{"", "a", "A", "a ", "ab", "AB", "b", "Nova", "nova", "nova  ", "z"}},
		{"varchar(20) COLLATE utf8mb4_general_ci", []interface{}{"host-1", "HOST-1", "host-10", "host-2"}},
		{"varbinary(20)", []interface{}{[]byte{}, []byte{0}, []byte{0, 0}, []byte{0, 1}, []byte{1}, []byte{0xff}}},
		{"datetime(6)", []interface{}{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 5, 6, 7, 8, 9, 1000, time.UTC), time.Date(2024, 5, 6, 7, 8, 9, 2000, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)}},
		{"date", []interface{}{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC)}},
		{"time", []interface{}{types.Timespan(-3600000000), types.Timespan(0), types.Timespan(1), types.Timespan(3600000000)}},
		{"enum('b','a','c')", []interface{}{uint16(1), uint16(2), uint16(3)}},
		{"set('x','y','z')", []interface{}{uint64(0), uint64(1), uint64(2), uint64(3), uint64(7)}},
		{"year", []interface{}{int16(1901), int16(2000), int16(2155)}},
	}
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			typ := mustType(t, c.typ)
			vals := append([]interface{}{nil}, c.values...)
			for _, a := range vals {
				for _, b := range vals {
					ka, err := appendKeyValue(nil, typ, a, 0)
					require.NoError(t, err)
					kb, err := appendKeyValue(nil, typ, b, 0)
					require.NoError(t, err)
					var want int
					switch {
					case a == nil && b == nil:
						want = 0
					case a == nil:
						want = -1
					case b == nil:
						want = 1
					default:
						want, err = typ.Compare(ctx, padSpace(typ, a), padSpace(typ, b))
						require.NoError(t, err)
					}
					require.Equal(t, sign(want), sign(bytes.Compare(ka, kb)), "%s: %v vs %v", c.typ, a, b)
				}
			}
		})
	}
}

// padSpace applies MySQL's PAD SPACE rule (trailing spaces do not count),
// which the engine's Compare leaves out but MySQL's unique keys follow.
func padSpace(typ sql.Type, v interface{}) interface{} {
	st, ok := typ.(sql.StringType)
	s, isStr := v.(string)
	if !ok || !isStr || st.Collation().PadAttribute() != "PAD SPACE" {
		return v
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// TestPrefixKeys: a prefix index keys only the first characters.
func TestPrefixKeys(t *testing.T) {
	typ := mustType(t, "varchar(100)")
	a, err := appendKeyValue(nil, typ, "compute-host-1", 7)
	require.NoError(t, err)
	b, err := appendKeyValue(nil, typ, "compute-host-2", 7)
	require.NoError(t, err)
	require.Equal(t, a, b)
}

func TestRowCodecRoundTrip(t *testing.T) {
	ctx := context.Background()
	js, _, err := types.JSON.Convert(ctx, `{"a": [1, 2.5, "x"], "b": null}`)
	require.NoError(t, err)
	row := sql.Row{
		nil, int8(-8), int16(-16), int32(-32), int64(math.MinInt64),
		uint8(8), uint16(16), uint32(32), uint64(math.MaxUint64),
		float32(1.5), math.Inf(-1), "héllo", []byte{0, 1, 2}, []byte{},
		decimal.RequireFromString("-12.3400"), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), types.Timespan(-12345), js, "",
	}
	enc, err := encodeRow(nil, row)
	require.NoError(t, err)
	got, err := decodeRow(enc, len(row))
	require.NoError(t, err)
	require.Len(t, got, len(row))
	for i := range row {
		switch want := row[i].(type) {
		case decimal.Decimal:
			require.Equal(t, want.String(), got[i].(decimal.Decimal).String())
			require.Equal(t, want.Exponent(), got[i].(decimal.Decimal).Exponent(), "scale is kept")
		case sql.JSONWrapper:
			c, err := types.JSON.Compare(ctx, want, got[i])
			require.NoError(t, err)
			require.Zero(t, c)
		default:
			require.Equal(t, row[i], got[i], "column %d", i)
		}
	}
	_, err = decodeRow(enc[:len(enc)-3], len(row))
	require.Error(t, err, "a truncated row is corrupt")
	_, err = decodeRow(enc, len(row)+1)
	require.Error(t, err, "a row of another shape is corrupt")
}
