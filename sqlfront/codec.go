package sqlfront

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/shopspring/decimal"

	"github.com/fogdb/fogdb/kv/keys"
)

// Row values are stored as a format byte followed by one tagged field per
// column, in schema order. Each tag names the Go type the engine handed us, so
// a row decodes back to exactly the values that were written without
// consulting the schema; ALTER TABLE rewrites rows, so a stored row always has
// the shape of its table definition.
const rowFormatV1 = 1

const (
	tagNull byte = iota
	tagInt8
	tagInt16
	tagInt32
	tagInt64
	tagUint8
	tagUint16
	tagUint32
	tagUint64
	tagFloat32
	tagFloat64
	tagString
	tagBytes
	tagDecimal
	tagTime
	tagTimespan
	tagJSON
	tagGeometry
	tagBool
)

// encodeRow appends the stored form of row to b.
func encodeRow(b []byte, row sql.Row) ([]byte, error) {
	b = append(b, rowFormatV1)
	b = binary.AppendUvarint(b, uint64(len(row)))
	for i, v := range row {
		var err error
		b, err = appendValue(b, v)
		if err != nil {
			return nil, fmt.Errorf("column %d: %w", i, err)
		}
	}
	return b, nil
}

func appendValue(b []byte, v interface{}) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, tagNull), nil
	case int8:
		return binary.AppendVarint(append(b, tagInt8), int64(x)), nil
	case int16:
		return binary.AppendVarint(append(b, tagInt16), int64(x)), nil
	case int32:
		return binary.AppendVarint(append(b, tagInt32), int64(x)), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt64), x), nil
	case int:
		return binary.AppendVarint(append(b, tagInt64), int64(x)), nil
	case uint8:
		return binary.AppendUvarint(append(b, tagUint8), uint64(x)), nil
	case uint16:
		return binary.AppendUvarint(append(b, tagUint16), uint64(x)), nil
	case uint32:
		return binary.AppendUvarint(append(b, tagUint32), uint64(x)), nil
	case uint64:
		return binary.AppendUvarint(append(b, tagUint64), x), nil
	case uint:
		return binary.AppendUvarint(append(b, tagUint64), uint64(x)), nil
	case bool:
		if x {
			return append(b, tagBool, 1), nil
		}
		return append(b, tagBool, 0), nil
	case float32:
		return binary.BigEndian.AppendUint32(append(b, tagFloat32), math.Float32bits(x)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(b, tagFloat64), math.Float64bits(x)), nil
	case string:
		b = binary.AppendUvarint(append(b, tagString), uint64(len(x)))
		return append(b, x...), nil
	case []byte:
		b = binary.AppendUvarint(append(b, tagBytes), uint64(len(x)))
		return append(b, x...), nil
	case decimal.Decimal:
		// Coefficient and exponent, not the decimal string: the string
		// form drops trailing zeros, and DECIMAL(p,s) values keep them.
		s := x.Coefficient().String()
		b = binary.AppendVarint(append(b, tagDecimal), int64(x.Exponent()))
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...), nil
	case time.Time:
		// Nanoseconds since the epoch overflow int64 past 2262; MySQL's
		// DATETIME goes to 9999, so store seconds and nanoseconds apart.
		b = binary.AppendVarint(append(b, tagTime), x.Unix())
		return binary.AppendUvarint(b, uint64(x.Nanosecond())), nil
	case types.Timespan:
		return binary.AppendVarint(append(b, tagTimespan), int64(x)), nil
	case sql.JSONWrapper:
		js, err := types.MarshallJson(x)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(append(b, tagJSON), uint64(len(js)))
		return append(b, js...), nil
	case types.GeometryValue:
		g := x.Serialize()
		b = binary.AppendUvarint(append(b, tagGeometry), uint64(len(g)))
		return append(b, g...), nil
	default:
		return nil, fmt.Errorf("sqlfront: cannot store a value of Go type %T", v)
	}
}

// decodeRow decodes a stored row. A row written before a column was added
// never exists (ALTER rewrites), so a length mismatch means corruption.
func decodeRow(b []byte, ncols int) (sql.Row, error) {
	if len(b) == 0 || b[0] != rowFormatV1 {
		return nil, errCorruptRow
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || int(n) != ncols {
		return nil, fmt.Errorf("%w: %d stored columns, schema has %d", errCorruptRow, n, ncols)
	}
	b = b[k:]
	row := make(sql.Row, ncols)
	for i := range row {
		v, rest, err := decodeValue(b)
		if err != nil {
			return nil, err
		}
		row[i] = v
		b = rest
	}
	return row, nil
}

func decodeValue(b []byte) (interface{}, []byte, error) {
	if len(b) == 0 {
		return nil, nil, errCorruptRow
	}
	tag := b[0]
	b = b[1:]
	varint := func() (int64, error) {
		v, k := binary.Varint(b)
		if k <= 0 {
			return 0, errCorruptRow
		}
		b = b[k:]
		return v, nil
	}
	uvarint := func() (uint64, error) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, errCorruptRow
		}
		b = b[k:]
		return v, nil
	}
	bytesField := func() ([]byte, error) {
		n, err := uvarint()
		if err != nil || uint64(len(b)) < n {
			return nil, errCorruptRow
		}
		out := b[:n:n]
		b = b[n:]
		return out, nil
	}
	switch tag {
	case tagNull:
		return nil, b, nil
	case tagInt8, tagInt16, tagInt32, tagInt64:
		v, err := varint()
		if err != nil {
			return nil, nil, err
		}
		switch tag {
		case tagInt8:
			return int8(v), b, nil
		case tagInt16:
			return int16(v), b, nil
		case tagInt32:
			return int32(v), b, nil
		}
		return v, b, nil
	case tagUint8, tagUint16, tagUint32, tagUint64:
		v, err := uvarint()
		if err != nil {
			return nil, nil, err
		}
		switch tag {
		case tagUint8:
			return uint8(v), b, nil
		case tagUint16:
			return uint16(v), b, nil
		case tagUint32:
			return uint32(v), b, nil
		}
		return v, b, nil
	case tagBool:
		if len(b) < 1 {
			return nil, nil, errCorruptRow
		}
		return b[0] == 1, b[1:], nil
	case tagFloat32:
		if len(b) < 4 {
			return nil, nil, errCorruptRow
		}
		return math.Float32frombits(binary.BigEndian.Uint32(b)), b[4:], nil
	case tagFloat64:
		if len(b) < 8 {
			return nil, nil, errCorruptRow
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), b[8:], nil
	case tagString:
		s, err := bytesField()
		if err != nil {
			return nil, nil, err
		}
		return string(s), b, nil
	case tagBytes:
		s, err := bytesField()
		if err != nil {
			return nil, nil, err
		}
		return append(make([]byte, 0, len(s)), s...), b, nil
	case tagDecimal:
		exp, err := varint()
		if err != nil {
			return nil, nil, err
		}
		s, err := bytesField()
		if err != nil {
			return nil, nil, err
		}
		coef, ok := new(big.Int).SetString(string(s), 10)
		if !ok {
			return nil, nil, errCorruptRow
		}
		return decimal.NewFromBigInt(coef, int32(exp)), b, nil
	case tagTime:
		sec, err := varint()
		if err != nil {
			return nil, nil, err
		}
		ns, err := uvarint()
		if err != nil {
			return nil, nil, err
		}
		return time.Unix(sec, int64(ns)).UTC(), b, nil
	case tagTimespan:
		v, err := varint()
		if err != nil {
			return nil, nil, err
		}
		return types.Timespan(v), b, nil
	case tagJSON:
		s, err := bytesField()
		if err != nil {
			return nil, nil, err
		}
		v, _, err := types.JSON.Convert(context.Background(), string(s))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errCorruptRow, err)
		}
		return v, b, nil
	case tagGeometry:
		s, err := bytesField()
		if err != nil {
			return nil, nil, err
		}
		v, _, err := types.GeometryType{}.Convert(context.Background(), append([]byte(nil), s...))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errCorruptRow, err)
		}
		return v, b, nil
	default:
		return nil, nil, fmt.Errorf("%w: unknown tag %d", errCorruptRow, tag)
	}
}

// appendKeyValue appends the order-preserving key field of v for a column of
// type typ: byte order of the encodings equals MySQL's comparison order of the
// values, and two values MySQL considers equal (under the column's collation)
// encode alike, so uniqueness checks on keys match MySQL's. prefixLen > 0
// indexes only the first prefixLen characters (bytes for binary strings).
func appendKeyValue(b []byte, typ sql.Type, v interface{}, prefixLen uint16) ([]byte, error) {
	if v == nil {
		return keys.AppendNull(b), nil
	}
	switch x := v.(type) {
	case int8:
		return keys.AppendInt(b, int64(x)), nil
	case int16:
		return keys.AppendInt(b, int64(x)), nil
	case int32:
		return keys.AppendInt(b, int64(x)), nil
	case int64:
		return keys.AppendInt(b, x), nil
	case int:
		return keys.AppendInt(b, int64(x)), nil
	case uint8:
		return keys.AppendUint(b, uint64(x)), nil
	case uint16:
		return keys.AppendUint(b, uint64(x)), nil
	case uint32:
		return keys.AppendUint(b, uint64(x)), nil
	case uint64:
		return keys.AppendUint(b, x), nil
	case uint:
		return keys.AppendUint(b, uint64(x)), nil
	case bool:
		if x {
			return keys.AppendInt(b, 1), nil
		}
		return keys.AppendInt(b, 0), nil
	case float32:
		return keys.AppendFloat(b, float64(x)), nil
	case float64:
		return keys.AppendFloat(b, x), nil
	case decimal.Decimal:
		return keys.AppendBigInt(b, decimalKey(typ, x)), nil
	case time.Time:
		return appendTimeKey(b, x), nil
	case types.Timespan:
		return keys.AppendInt(b, int64(x)), nil
	case string:
		return appendStringKey(b, typ, x, prefixLen), nil
	case []byte:
		if st, ok := typ.(sql.StringType); ok && st.Collation() != sql.Collation_binary {
			return appendStringKey(b, typ, string(x), prefixLen), nil
		}
		if prefixLen > 0 && int(prefixLen) < len(x) {
			x = x[:prefixLen]
		}
		return keys.AppendBytes(b, x), nil
	default:
		return nil, fmt.Errorf("sqlfront: a value of type %s (%T) cannot be part of a key", typ, v)
	}
}

// decimalKey scales a DECIMAL(p,s) value to an integer of units of 10^-s, so
// that 1.50 and 1.5 give the same key. Values the engine hands over are
// already rounded to the column's scale; a range bound may have more digits,
// and is then truncated toward the range (callers re-check the bound).
func decimalKey(typ sql.Type, d decimal.Decimal) *big.Int {
	scale := int32(0)
	if dt, ok := typ.(sql.DecimalType); ok {
		scale = int32(dt.Scale())
	} else if d.Exponent() < 0 {
		scale = -d.Exponent()
	}
	return d.Shift(scale).BigInt()
}

// appendTimeKey keys a time by seconds then nanoseconds: both are needed to
// span MySQL's year 1000-9999 range without overflow.
func appendTimeKey(b []byte, t time.Time) []byte {
	b = keys.AppendInt(b, t.Unix())
	return keys.AppendInt(b, int64(t.Nanosecond()))
}

// appendStringKey keys a character string by its collation weights, one
// big-endian 32-bit weight per character, so byte order is collation order and
// strings equal under the collation ('a' and 'A' under a _ci collation, or
// trailing spaces under a PAD SPACE one) get equal keys.
func appendStringKey(b []byte, typ sql.Type, s string, prefixLen uint16) []byte {
	coll := sql.Collation_Default
	if st, ok := typ.(sql.StringType); ok {
		coll = st.Collation()
	}
	if prefixLen > 0 {
		n := 0
		for i := range s {
			if n == int(prefixLen) {
				s = s[:i]
				break
			}
			n++
		}
	}
	if coll == sql.Collation_binary {
		return keys.AppendString(b, s)
	}
	if coll.PadAttribute() == "PAD SPACE" {
		for len(s) > 0 && s[len(s)-1] == ' ' {
			s = s[:len(s)-1]
		}
	}
	sorter := coll.Sorter()
	if sorter == nil {
		return keys.AppendString(b, s)
	}
	w := make([]byte, 0, 4*len(s))
	for _, r := range s {
		// Flip the sign bit so negative weights sort below positive ones.
		w = binary.BigEndian.AppendUint32(w, uint32(sorter(r))^0x80000000)
	}
	return keys.AppendBytes(b, w)
}
