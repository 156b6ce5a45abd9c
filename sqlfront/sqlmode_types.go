package sqlfront

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/shopspring/decimal"
)

// The fitters of the types whose values the engine converts by rules of its
// own: BIT, YEAR, TIME, ENUM and SET. Each lets the engine convert what it
// takes as MySQL does, and decides what MySQL decides about the rest.

var maxUint64 = decUint(math.MaxUint64)

// fitBit: a value with more bits than the column is 1406 ("Data too long"),
// all ones otherwise; a number beyond 64 bits is out of range (1264).
func (f fitter) fitBit(t sql.Type, v interface{}) (interface{}, error) {
	bt, ok := t.(types.BitType)
	if !ok {
		return v, nil
	}
	max := uint64(math.MaxUint64)
	if n := bt.NumberOfBits(); n < 64 {
		max = 1<<n - 1
	}
	var d decimal.Decimal
	switch x := v.(type) {
	case decimal.Decimal:
		d = x
	case float64:
		d = decimal.NewFromFloat(x)
	case float32:
		d = decimal.NewFromFloat(float64(x))
	}
	if d.Round(0).GreaterThan(maxUint64) {
		if err := f.problem(sql.ErrValueOutOfRange.New(d.String(), t), erWarnDataOutOfRange, "22003", "%s", f.outOfRange()); err != nil {
			return nil, err
		}
		return max, nil
	}
	out, _, err := t.Convert(f.ctx, v)
	if err == nil {
		return out, nil
	}
	if err := f.problem(err, erDataTooLong, "22001", "Data too long for column '%s' at row %d", f.col, f.row); err != nil {
		return nil, err
	}
	return max, nil
}

// fitYear: a year outside 1901-2155 (and 0) is out of range, text that is
// no number is an incorrect integer; either is stored as 0000 otherwise.
func (f fitter) fitYear(t sql.Type, v interface{}) (interface{}, error) {
	out, _, err := t.Convert(f.ctx, v)
	if err == nil {
		return out, nil
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		if err := f.problem(err, erWarnDataOutOfRange, "22003", "%s", f.outOfRange()); err != nil {
			return nil, err
		}
		return int16(0), nil
	}
	if numericPrefix.FindString(strings.TrimSpace(s)) == "" {
		if err := f.problem(err, erTruncatedWrongForFld, "HY000", "Incorrect integer value: '%s' for column '%s' at row %d", s, f.col, f.row); err != nil {
			return nil, err
		}
		return int16(0), nil
	}
	n, perr := f.parseNumber(types.Int64, s)
	if perr != nil {
		return nil, perr
	}
	if out, _, err := t.Convert(f.ctx, n.Round(0).IntPart()); err == nil {
		return out, nil
	}
	if err := f.problem(err, erWarnDataOutOfRange, "22003", "%s", f.outOfRange()); err != nil {
		return nil, err
	}
	return int16(0), nil
}

// maxTimeSeconds is TIME's bound, 838:59:59.
const maxTimeSeconds = 838*3600 + 59*60 + 59

var timeText = regexp.MustCompile(`^\s*(-)?(?:(\d+)\s+)?(\d+):(\d+)(?::(\d+))?(?:\.\d*)?\s*$`)

// timeSeconds reads the seconds a TIME value would hold before the
// engine clips it to the type's range (ok false when it is not a time).
func timeSeconds(v interface{}) (secs int64, ok bool) {
	hms := func(n int64) int64 {
		neg := n < 0
		if neg {
			n = -n
		}
		s := n/10000*3600 + n/100%100*60 + n%100
		if neg {
			return -s
		}
		return s
	}
	switch x := v.(type) {
	case int64:
		return hms(x), true
	case int32:
		return hms(int64(x)), true
	case int:
		return hms(int64(x)), true
	case uint64:
		if x > math.MaxInt64 {
			return math.MaxInt64, true
		}
		return hms(int64(x)), true
	case float64:
		return hms(int64(x)), true
	case decimal.Decimal:
		return hms(x.IntPart()), true
	case []byte:
		return timeSeconds(string(x))
	case string:
		m := timeText.FindStringSubmatch(x)
		if m == nil {
			n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			if err != nil {
				return 0, false
			}
			return hms(n), true
		}
		var s int64
		for i, mult := range []int64{86400, 3600, 60, 1} {
			if p := m[i+2]; p != "" {
				n, err := strconv.ParseInt(p, 10, 64)
				if err != nil {
					return math.MaxInt64, true
				}
				s += n * mult
			}
		}
		if m[1] == "-" {
			s = -s
		}
		return s, true
	}
	return 0, false
}

// fitTime: a time beyond ±838:59:59 is 1292 in strict modes and clipped
// with warning 1264 otherwise; one with a minute or second over 59 is
// 1292, or 00:00:00 with 1264.
func (f fitter) fitTime(t sql.Type, v interface{}) (interface{}, error) {
	shown := fmt.Sprint(v)
	if b, ok := v.([]byte); ok {
		shown = string(b)
	}
	refuse := func(engine error, code int) error {
		if f.strict {
			return valueError(f.ctx, engine, erTruncatedWrongValue, "22007",
				"Incorrect time value: '%s' for column '%s' at row %d", shown, f.col, f.row)
		}
		if code == erWarnDataOutOfRange {
			f.warn("Warning", code, f.outOfRange())
		} else {
			f.warn("Warning", code, f.truncated())
		}
		return nil
	}
	out, _, err := t.Convert(f.ctx, v)
	if err != nil {
		code := erWarnDataTruncated
		if _, ok := timeSeconds(v); ok {
			code = erWarnDataOutOfRange
		}
		if err := refuse(err, code); err != nil {
			return nil, err
		}
		return t.Zero(), nil
	}
	if secs, ok := timeSeconds(v); ok && (secs > maxTimeSeconds || secs < -maxTimeSeconds) {
		if err := refuse(types.ErrConvertingToTimeType.New(v), erWarnDataOutOfRange); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fitEnum: a value that is none of the labels, or the index 0, is
// truncated (1265): the empty error value otherwise. Trailing spaces do
// not count, as in MySQL.
func (f fitter) fitEnum(t sql.Type, v interface{}) (interface{}, error) {
	out, _, err := t.Convert(f.ctx, v)
	if err != nil {
		if s, ok := v.(string); ok && strings.TrimRight(s, " ") != s {
			out, _, err = t.Convert(f.ctx, strings.TrimRight(s, " "))
		}
	}
	if err == nil && out != uint16(0) {
		return out, nil
	}
	if err == nil {
		err = types.ErrConvertingToEnum.New(v)
	}
	if err := f.problem(err, erWarnDataTruncated, "01000", "%s", f.truncated()); err != nil {
		return nil, err
	}
	return uint16(0), nil
}

// fitSet: members that are none of the set's are truncated (1265): the
// others are kept otherwise.
func (f fitter) fitSet(t sql.Type, v interface{}) (interface{}, error) {
	out, _, err := t.Convert(f.ctx, v)
	if err == nil {
		return out, nil
	}
	var kept uint64
	switch x := v.(type) {
	case string:
		kept = f.setMembers(t, x)
	case []byte:
		kept = f.setMembers(t, string(x))
	default:
		if st, ok := t.(sql.SetType); ok {
			if n, _, cerr := types.Uint64.Convert(f.ctx, v); cerr == nil {
				if u, ok := n.(uint64); ok {
					kept = u & (1<<st.NumberOfElements() - 1)
				}
			}
		}
	}
	if err := f.problem(err, erWarnDataTruncated, "01000", "%s", f.truncated()); err != nil {
		return nil, err
	}
	return kept, nil
}

func (f fitter) setMembers(t sql.Type, s string) uint64 {
	var bits uint64
	for _, m := range strings.Split(s, ",") {
		if out, _, err := t.Convert(f.ctx, m); err == nil {
			if b, ok := out.(uint64); ok {
				bits |= b
			}
		}
	}
	return bits
}
