package keys

// Prefix bytes of the keyspace. Every key of the multi-version store starts
// with one of them; see the package documentation for the full map.
const (
	// PrefixCatalog starts catalog entries: PrefixCatalog, then each part
	// of the entry's name as a bytes field.
	PrefixCatalog byte = 0x10
	// PrefixTable starts table data: PrefixTable, the table ID and index ID
	// as uint fields, then the index's key fields.
	PrefixTable byte = 0x20
)

// CatalogKey returns the catalog key named by parts. Encoding each part as a
// bytes field keeps a key built from fewer parts a prefix of the keys that
// extend it, so a catalog namespace can be listed with a prefix scan.
func CatalogKey(parts ...[]byte) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 3
	}
	k := make([]byte, 1, n)
	k[0] = PrefixCatalog
	for _, p := range parts {
		k = AppendBytes(k, p)
	}
	return k
}

// TablePrefix returns the prefix shared by every key of table tableID.
func TablePrefix(tableID uint64) []byte {
	// Capacity for a following index ID, which nearly every caller adds.
	k := make([]byte, 1, 1+2*fixedLen)
	k[0] = PrefixTable
	return AppendUint(k, tableID)
}

// IndexPrefix returns the prefix shared by every key of index indexID of
// table tableID; the index's key fields are appended to it.
func IndexPrefix(tableID, indexID uint64) []byte {
	return AppendUint(TablePrefix(tableID), indexID)
}
