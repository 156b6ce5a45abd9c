package sqlfront

import (
	"fmt"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"

	"github.com/fogdb/fogdb/kv"
)

// maxIndexKeyBytes is InnoDB's limit on an index key (DYNAMIC and
// COMPRESSED row formats, 16 KiB pages), counted as MySQL counts it.
const maxIndexKeyBytes = 3072

var errKeyTooLong = mysql.NewSQLError(mysql.ERTooLongKey, "42000",
	"Specified key was too long; max key length is %d bytes", maxIndexKeyBytes)

// checkStoredKey refuses a key the store could never hold.
func checkStoredKey(key []byte) error {
	if len(key) > kv.MaxKeySize {
		return errStoredKeyTooLong(fmt.Sprintf("this key takes %d", len(key)))
	}
	return nil
}

// errStoredKeyTooLong: a key within MySQL's limit whose stored form is
// still too long for the store. Only long keys of single-byte character
// sets can get there (DESIGN.md, "Key length").
func errStoredKeyTooLong(detail string) error {
	return mysql.NewSQLError(mysql.ERTooLongKey, "42000", "%s",
		fmt.Sprintf("Specified key was too long; max key length is %d bytes as fogdb stores it (%s)", kv.MaxKeySize, detail))
}

// checkKeyLengths refuses, as MySQL does at CREATE and ALTER, a primary
// key or index whose key may be longer than maxIndexKeyBytes: the sum of
// its parts' maximum lengths, a character column (or prefix) counting its
// characters times its character set's longest character.
func checkKeyLengths(m *tableMeta) error {
	var pk int64
	for _, o := range m.pkOrds {
		pk += keyPartBytes(m.schema[o].Type, 0)
	}
	if pk > maxIndexKeyBytes {
		return errKeyTooLong
	}
	for _, im := range m.indexes {
		var n int64
		for j, o := range im.ords {
			n += keyPartBytes(m.schema[o].Type, im.prefix[j])
		}
		if n > maxIndexKeyBytes {
			return errKeyTooLong
		}
	}
	return nil
}

// keyPartBytes is how many bytes MySQL counts for one key part: a column
// of type typ, or its first prefix characters (bytes for binary strings).
func keyPartBytes(typ sql.Type, prefix uint16) int64 {
	switch t := typ.(type) {
	case sql.EnumType:
		if t.NumberOfElements() > 255 {
			return 2
		}
		return 1
	case sql.SetType:
		switch n := (t.NumberOfElements() + 7) / 8; {
		case n > 4:
			return 8
		case n == 0:
			return 1
		default:
			return int64(n)
		}
	case sql.StringType:
		perChar := int64(1)
		if t.Collation() != sql.Collation_binary {
			perChar = int64(t.CharacterSet().MaxLength())
		}
		if prefix > 0 {
			return int64(prefix) * perChar
		}
		return t.MaxByteLength()
	case sql.DecimalType:
		return decimalBytes(int(t.Precision())-int(t.Scale())) + decimalBytes(int(t.Scale()))
	case types.BitType:
		return int64(t.NumberOfBits()+7) / 8
	}
	switch typ.Type() {
	case sqltypes.Int8, sqltypes.Uint8, sqltypes.Year:
		return 1
	case sqltypes.Int16, sqltypes.Uint16:
		return 2
	case sqltypes.Int24, sqltypes.Uint24, sqltypes.Date:
		return 3
	case sqltypes.Int32, sqltypes.Uint32, sqltypes.Float32:
		return 4
	case sqltypes.Time:
		return 3 + fracBytes(typ)
	case sqltypes.Timestamp:
		return 4 + fracBytes(typ)
	case sqltypes.Datetime:
		return 5 + fracBytes(typ)
	}
	return 8
}

// decimalBytes is MySQL's packed size of digits decimal digits: 4 bytes
// per 9, and 0-4 for the rest.
func decimalBytes(digits int) int64 {
	rest := [...]int64{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}
	return int64(digits/9)*4 + rest[digits%9]
}

// fracBytes is the storage of a temporal type's fractional seconds.
func fracBytes(typ sql.Type) int64 {
	if dt, ok := typ.(sql.DatetimeType); ok {
		return int64(dt.Precision()+1) / 2
	}
	return 0
}
