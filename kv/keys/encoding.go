package keys

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"slices"
	"strings"
)

// Field markers. NULL must stay the smallest so it sorts first; all markers
// stay below 0x80 so that their complements (the markers of descending
// fields) never collide with them.
const (
	markerNull   byte = 0x01
	markerInt    byte = 0x30
	markerUint   byte = 0x38
	markerFloat  byte = 0x40
	markerBigInt byte = 0x48
	markerBytes  byte = 0x50
)

// Byte-string escaping: 0x00 can't be written bare because the terminator
// starts with it.
const (
	escape       byte = 0x00
	escapedZero  byte = 0xff
	escapeFinish byte = 0x01
)

// BigInt headers. Zero is its own header so that it needs no magnitude and
// sits between the complemented (negative) and plain (positive) headers.
const (
	bigZero     byte = 0x80
	bigLong     byte = 0xff
	bigShortMax      = int(bigLong-bigZero) - 1 // longest magnitude with a one-byte header
)

const signBit = 1 << 63

// canonicalNaN is chosen so that its encoded payload is all 0xff bytes,
// which places NaN after +Inf.
const canonicalNaN = 0x7fff_ffff_ffff_ffff

const fixedLen = 1 + 8 // marker and 8 bytes for ints, uints and floats

// Errors returned by the decoders. ErrTruncated and ErrUnexpectedMarker wrap
// ErrCorrupt, so errors.Is(err, ErrCorrupt) reports any malformed input.
var (
	// ErrCorrupt reports bytes that are not a valid, canonical field
	// encoding.
	ErrCorrupt = errors.New("keys: corrupt encoding")

	// ErrTruncated reports input that ends before the field does,
	// including empty input.
	ErrTruncated error = &corruptError{"keys: truncated field"}

	// ErrUnexpectedMarker reports a field whose marker is not the kind (or
	// direction) the decoder expects, such as DecodeInt reaching a NULL or
	// a bytes field.
	ErrUnexpectedMarker error = &corruptError{"keys: unexpected field marker"}
)

type corruptError struct{ msg string }

func (e *corruptError) Error() string { return e.msg }
func (e *corruptError) Unwrap() error { return ErrCorrupt }

// Kind names the kind of value a field holds.
type Kind uint8

// Kinds of fields, as reported by PeekKind.
const (
	KindInvalid Kind = iota
	KindNull
	KindInt
	KindUint
	KindFloat
	KindBigInt
	KindBytes
)

var kindNames = [...]string{
	KindInvalid: "invalid",
	KindNull:    "null",
	KindInt:     "int",
	KindUint:    "uint",
	KindFloat:   "float",
	KindBigInt:  "bigint",
	KindBytes:   "bytes",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

func kindOfMarker(m byte) Kind {
	switch m {
	case markerNull:
		return KindNull
	case markerInt:
		return KindInt
	case markerUint:
		return KindUint
	case markerFloat:
		return KindFloat
	case markerBigInt:
		return KindBigInt
	case markerBytes:
		return KindBytes
	}
	return KindInvalid
}

// PeekKind reports the kind and direction of the field at the start of b
// without consuming it. It lets inspection tools walk keys whose schema they
// don't know.
func PeekKind(b []byte) (k Kind, descending bool, err error) {
	if len(b) == 0 {
		return KindInvalid, false, ErrTruncated
	}
	if k = kindOfMarker(b[0]); k != KindInvalid {
		return k, false, nil
	}
	if k = kindOfMarker(^b[0]); k != KindInvalid {
		return k, true, nil
	}
	return KindInvalid, false, ErrUnexpectedMarker
}

// AppendNull appends a NULL field.
func AppendNull(b []byte) []byte {
	return append(b, markerNull)
}

// AppendInt appends a signed integer field.
func AppendInt(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, markerInt), uint64(v)^signBit)
}

// AppendUint appends an unsigned integer field.
func AppendUint(b []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, markerUint), v)
}

// AppendFloat appends a float field. The order is -Inf < negatives < zero <
// positives < +Inf < NaN. -0 is encoded as +0, and every NaN is encoded
// identically, so NaNs compare equal to each other and their sign and
// payload are lost.
func AppendFloat(b []byte, v float64) []byte {
	var u uint64
	switch {
	case v == 0:
		u = 0
	case v != v:
		u = canonicalNaN
	default:
		u = math.Float64bits(v)
	}
	if u&signBit != 0 {
		u = ^u
	} else {
		u |= signBit
	}
	return binary.BigEndian.AppendUint64(append(b, markerFloat), u)
}

// AppendBytes appends a byte-string field.
func AppendBytes(b []byte, v []byte) []byte {
	return appendEscaped(b, v, bytes.IndexByte)
}

// AppendString appends a byte-string field; it is identical to
// AppendBytes(b, []byte(v)) but does not copy v.
func AppendString(b []byte, v string) []byte {
	return appendEscaped(b, v, strings.IndexByte)
}

// appendEscaped takes the search function as a parameter so that both
// instantiations use the vectorised IndexByte of their own type.
func appendEscaped[T ~string | ~[]byte](b []byte, v T, indexByte func(T, byte) int) []byte {
	// Room for the marker and terminator; escapes are rare enough that a
	// second growth for them is cheaper than counting them first.
	b = slices.Grow(b, len(v)+3)
	b = append(b, markerBytes)
	for {
		i := indexByte(v, escape)
		if i < 0 {
			break
		}
		b = append(b, v[:i+1]...)
		b = append(b, escapedZero)
		v = v[i+1:]
	}
	b = append(b, v...)
	return append(b, escape, escapeFinish)
}

// AppendBigInt appends an arbitrary-precision signed integer field. v must
// not be nil; SQL NULL is encoded with AppendNull.
func AppendBigInt(b []byte, v *big.Int) []byte {
	sign := v.Sign()
	if sign == 0 {
		return append(b, markerBigInt, bigZero)
	}
	n := (v.BitLen() + 7) / 8
	b = slices.Grow(b, 2+8+n)
	b = append(b, markerBigInt)
	start := len(b)
	if n <= bigShortMax {
		b = append(b, bigZero+byte(n))
	} else {
		b = append(b, bigLong)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	m := len(b)
	b = b[:m+n]
	v.FillBytes(b[m:])
	if sign < 0 {
		Invert(b, start)
	}
	return b
}

// Invert complements every byte of b[from:] in place. Applied to the bytes
// of freshly appended fields it turns them into descending fields.
func Invert(b []byte, from int) {
	s := b[from:]
	for len(s) >= 8 {
		binary.LittleEndian.PutUint64(s, ^binary.LittleEndian.Uint64(s))
		s = s[8:]
	}
	for i := range s {
		s[i] = ^s[i]
	}
}

// PrefixEnd returns the smallest key greater than every key having prefix p,
// for use as the exclusive end of a prefix scan. It returns nil when no such
// key exists, that is when p is empty or all 0xff. p is not modified.
func PrefixEnd(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			end := make([]byte, i+1)
			copy(end, p)
			end[i]++
			return end
		}
	}
	return nil
}

// DecodeNull reports whether the ascending field at the start of b is NULL.
// A NULL is consumed; any other valid field is left in place for the decoder
// of its kind.
func DecodeNull(b []byte) (isNull bool, rest []byte, err error) {
	if len(b) == 0 {
		return false, b, ErrTruncated
	}
	switch kindOfMarker(b[0]) {
	case KindNull:
		return true, b[1:], nil
	case KindInvalid:
		return false, b, ErrUnexpectedMarker
	}
	return false, b, nil
}

func decodeFixed(b []byte, marker byte) (uint64, []byte, error) {
	if len(b) == 0 {
		return 0, b, ErrTruncated
	}
	if b[0] != marker {
		return 0, b, ErrUnexpectedMarker
	}
	if len(b) < fixedLen {
		return 0, b, ErrTruncated
	}
	return binary.BigEndian.Uint64(b[1:fixedLen]), b[fixedLen:], nil
}

// DecodeInt decodes an ascending int field.
func DecodeInt(b []byte) (int64, []byte, error) {
	u, rest, err := decodeFixed(b, markerInt)
	if err != nil {
		return 0, b, err
	}
	return int64(u ^ signBit), rest, nil
}

// DecodeUint decodes an ascending uint field.
func DecodeUint(b []byte) (uint64, []byte, error) {
	return decodeFixed(b, markerUint)
}

// DecodeFloat decodes an ascending float field. Payloads AppendFloat never
// produces (-0 and non-canonical NaNs) are rejected, so every decodable key
// re-encodes to the same bytes.
func DecodeFloat(b []byte) (float64, []byte, error) {
	u, rest, err := decodeFixed(b, markerFloat)
	if err != nil {
		return 0, b, err
	}
	if u&signBit != 0 {
		u &^= signBit
	} else {
		u = ^u
	}
	f := math.Float64frombits(u)
	if u == signBit || (f != f && u != canonicalNaN) {
		return 0, b, ErrCorrupt
	}
	return f, rest, nil
}

// bytesLen returns the length of the byte-string field at the start of b,
// whose bytes are complemented when mask is 0xff.
func bytesLen(b []byte, mask byte) (int, error) {
	i := 1
	for {
		j := bytes.IndexByte(b[i:], escape^mask)
		if j < 0 || i+j+1 >= len(b) {
			return 0, ErrTruncated
		}
		i += j + 1
		switch b[i] ^ mask {
		case escapedZero:
			i++
		case escapeFinish:
			return i + 1, nil
		default:
			return 0, ErrCorrupt
		}
	}
}

// DecodeBytes decodes an ascending bytes field. The result never aliases b:
// keys usually live in store buffers that are only valid for the duration of
// a transaction. A decoded value is never nil, even when empty.
func DecodeBytes(b []byte) ([]byte, []byte, error) {
	if len(b) == 0 {
		return nil, b, ErrTruncated
	}
	if b[0] != markerBytes {
		return nil, b, ErrUnexpectedMarker
	}
	n, err := bytesLen(b, 0)
	if err != nil {
		return nil, b, err
	}
	out := make([]byte, 0, n-3)
	p := b[1 : n-2]
	for {
		i := bytes.IndexByte(p, escape)
		if i < 0 {
			out = append(out, p...)
			return out, b[n:], nil
		}
		out = append(out, p[:i+1]...)
		p = p[i+2:]
	}
}

// bigIntExtent parses the header of the bigint field at the start of b,
// whose bytes are complemented when mask is 0xff. It returns the offset and
// length of the magnitude and whether the value is negative.
func bigIntExtent(b []byte, mask byte) (off, n int, neg bool, err error) {
	if len(b) < 2 {
		return 0, 0, false, ErrTruncated
	}
	h := b[1] ^ mask
	if h == bigZero {
		return 2, 0, false, nil
	}
	if h < bigZero {
		neg = true
		mask = ^mask
		h = ^h
	}
	switch {
	case h == bigZero:
		// Complement of the zero header: never produced.
		return 0, 0, false, ErrCorrupt
	case h == bigLong:
		if len(b) < 10 {
			return 0, 0, false, ErrTruncated
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if mask != 0 {
			u = ^u
		}
		if u <= uint64(bigShortMax) {
			return 0, 0, false, ErrCorrupt
		}
		if u > uint64(len(b)-10) {
			return 0, 0, false, ErrTruncated
		}
		off, n = 10, int(u)
	default:
		off, n = 2, int(h-bigZero)
		if n > len(b)-2 {
			return 0, 0, false, ErrTruncated
		}
	}
	if b[off]^mask == 0 {
		// Leading zero byte in the magnitude: not canonical.
		return 0, 0, false, ErrCorrupt
	}
	return off, n, neg, nil
}

// DecodeBigInt decodes an ascending bigint field into a newly allocated
// big.Int.
func DecodeBigInt(b []byte) (*big.Int, []byte, error) {
	if len(b) == 0 {
		return nil, b, ErrTruncated
	}
	if b[0] != markerBigInt {
		return nil, b, ErrUnexpectedMarker
	}
	off, n, neg, err := bigIntExtent(b, 0)
	if err != nil {
		return nil, b, err
	}
	v := new(big.Int)
	mag := b[off : off+n]
	if neg {
		c := make([]byte, n)
		for i, x := range mag {
			c[i] = ^x
		}
		v.SetBytes(c).Neg(v)
	} else {
		v.SetBytes(mag)
	}
	return v, b[off+n:], nil
}

// FieldLen returns the length in bytes of the field at the start of b, so
// callers can skip fields without decoding them. It accepts ascending and
// descending fields alike.
func FieldLen(b []byte) (int, error) {
	k, desc, err := PeekKind(b)
	if err != nil {
		return 0, err
	}
	var mask byte
	if desc {
		mask = 0xff
	}
	switch k {
	case KindNull:
		return 1, nil
	case KindInt, KindUint, KindFloat:
		if len(b) < fixedLen {
			return 0, ErrTruncated
		}
		return fixedLen, nil
	case KindBigInt:
		off, n, _, err := bigIntExtent(b, mask)
		if err != nil {
			return 0, err
		}
		return off + n, nil
	case KindBytes:
		return bytesLen(b, mask)
	}
	return 0, ErrUnexpectedMarker
}

// DecodeDescending decodes the descending field at the start of b. It
// complements a copy of the field and hands the copy, now an ascending
// field, to decode, which is expected to call one of the ascending decoders
// and keep the value it returns. The remainder decode returns must be a
// suffix of its argument; DecodeDescending maps it back onto b. For example:
//
//	var v int64
//	rest, err := keys.DecodeDescending(b, func(f []byte) ([]byte, error) {
//		var err error
//		v, f, err = keys.DecodeInt(f)
//		return f, err
//	})
//
// Passing DecodeNull works too: for a non-NULL field it consumes nothing and
// b is returned unchanged. Since the copy is private to the call, values
// decoded from it may be retained. b must start with a descending field,
// otherwise ErrUnexpectedMarker is returned.
func DecodeDescending(b []byte, decode func([]byte) (rest []byte, err error)) (rest []byte, err error) {
	_, desc, err := PeekKind(b)
	if err != nil {
		return b, err
	}
	if !desc {
		return b, ErrUnexpectedMarker
	}
	n, err := FieldLen(b)
	if err != nil {
		return b, err
	}
	field := make([]byte, n)
	copy(field, b)
	Invert(field, 0)
	r, err := decode(field)
	if err != nil {
		return b, err
	}
	if len(r) > n {
		panic("keys: DecodeDescending: decode returned more than its input")
	}
	return b[n-len(r):], nil
}
