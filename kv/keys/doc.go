// Package keys builds the byte keys of fogdb's key/value store.
//
// The store (bbolt) orders keys by plain byte comparison, and range scans,
// seeks and index lookups all rely on that order matching the logical order
// of the values a key was built from. This package provides encoders with
// that property and the map of the keyspace. It deliberately knows nothing
// about SQL: the SQL layer chooses which encoder represents each column type.
//
// # Keyspace
//
// Every key of the multi-version store begins with one prefix byte. In
// physical byte order the keyspace is:
//
//	0x00 ........ 0x0f   reserved
//	0x10                 PrefixCatalog  0x10 <bytes part> <bytes part> ...
//	0x11 ........ 0x1f   reserved
//	0x20                 PrefixTable    0x20 <uint tableID> <uint indexID> <index fields> ...
//	0x21 ........ 0xff   reserved
//
// Because a table's keys all share TablePrefix(tableID), and an index's keys
// all share IndexPrefix(tableID, indexID), dropping or scanning a table or an
// index is a single contiguous range: [prefix, PrefixEnd(prefix)). Unused
// prefix bytes are left on both sides of the catalog so that new areas (for
// example store metadata that must sort first) can be added without moving
// existing data.
//
// Index IDs are the SQL layer's to assign. It keeps index ID 0 for a
// single key per table, IndexPrefix(tableID, 0) itself (a marker of the
// table's definition, in the table's own range so that it goes with it),
// 1 for the rows and 2 and up for secondary indexes.
//
// # Fields
//
// A key after its prefix byte is a tuple of fields. Each field is a marker
// byte naming its kind followed by a payload:
//
//	marker  kind    payload
//	0x01    NULL    none
//	0x30    int     8 bytes big-endian, sign bit flipped
//	0x38    uint    8 bytes big-endian
//	0x40    float   8 bytes big-endian, transformed IEEE 754 bits
//	0x48    bigint  header byte, optional 8-byte length, magnitude
//	0x50    bytes   escaped bytes, then the terminator 0x00 0x01
//
// NULL has the smallest marker, so a NULL sorts before every value of any
// kind. Kinds are never mixed within one column, so the relative order of the
// other markers carries no meaning; they are spaced to leave room for future
// kinds. All markers are below 0x80, which keeps them distinct from the
// markers of descending fields (see below) and lets inspection tools tell the
// direction of a field from its first byte.
//
// Why each payload preserves order:
//
//   - int: flipping the sign bit maps MinInt64..MaxInt64 onto
//     0..MaxUint64 monotonically, and fixed-width big-endian unsigned
//     integers compare like their byte strings.
//   - uint: fixed-width big-endian is already ordered.
//   - float: for non-negative floats the IEEE 754 bit pattern, read as an
//     unsigned integer, grows with the value; setting the sign bit lifts them
//     above every negative. For negative floats the bit pattern grows as the
//     value shrinks, so all bits are complemented, which also clears the sign
//     bit. -0 is encoded as +0, so the two compare equal. Every NaN is encoded
//     as one canonical NaN whose payload is all 0xff bytes, so NaN sorts after
//     +Inf and all NaNs are equal to each other; sign and payload of a NaN are
//     not preserved.
//   - bigint: zero is the header 0x80. A positive value whose magnitude is n
//     bytes long (without leading zeros) has the header 0x80+n for n up to
//     126, or 0xff followed by n as an 8-byte big-endian integer. The
//     magnitude follows big-endian. A longer magnitude therefore means a
//     larger value, and equal lengths compare byte by byte. A negative value
//     is the complement of the encoding of its absolute value (header,
//     length and magnitude), which reverses that order and puts every
//     negative header below 0x80.
//   - bytes: each 0x00 in the value is written as 0x00 0xff and the field
//     ends with 0x00 0x01. Where two values first differ, either both bytes
//     are non-zero and compare directly, or a 0x00 (written 0x00 0xff) meets
//     a larger byte. When one value is a prefix of the other, the shorter
//     one's terminator 0x00 0x01 meets either a non-zero byte or 0x00 0xff,
//     and is smaller in both cases.
//
// Every field is self-delimiting and no encoded field is a proper prefix of
// another, so a tuple is the concatenation of its fields, tuples compare
// field by field, and the encoding of a leading part of a tuple is a byte
// prefix of the whole tuple's encoding.
//
// # Descending fields
//
// Complementing every byte of a prefix-free set of strings reverses their
// order and keeps them prefix-free. A descending column is therefore encoded
// with the ascending encoder followed by Invert on the bytes just appended.
// A descending NULL (0xfe) sorts after all descending values. Decode a
// descending field with DecodeDescending.
package keys
