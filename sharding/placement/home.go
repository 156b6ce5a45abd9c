package placement

// HomeSite decides the home site of a row from its table's policy
// (DESIGN.md beside this file, "Homing a row").
//
//   - Global: "" and false; the row lives in the global group, at no site.
//   - Site: the policy's site.
//   - Local with a locality column: localityValue is the column's value. A
//     value that names a site (isSite) homes the row there; else a value
//     the locality map knows (lookup) homes it at the mapped site; else the
//     row is homed at insertingSite, and for a non-NULL value register is
//     true: the caller records value → insertingSite, so that later rows
//     with the value, and routing by it, find the same site.
//   - Local with a parent: localityValue is the home site of the parent
//     row, which the caller found through the via column; nil (a NULL
//     reference, or no such parent row) homes the row at insertingSite.
//     Nothing is registered: a parent's home is not a locality value.
//   - Local without either: insertingSite.
//
// insertingSite is the site of the node that writes the row. For an update
// that changes a locality value the caller chooses what to pass; the row's
// current home keeps a value nobody knows yet from moving the row to
// wherever the update happened to run (DESIGN.md).
//
// An empty string is a value like any other; only NULL is no value. lookup
// and isSite get values exactly as stored: comparing them the way the
// column's collation does is the caller's part. Either may be nil, knowing
// nothing.
func HomeSite(policy Table, localityValue *string, insertingSite string,
	lookup func(value string) (site string, ok bool), isSite func(name string) bool) (site string, register bool) {
	switch policy.Kind {
	case Site:
		return policy.Site, false
	case Local:
	default:
		return "", false
	}
	if localityValue == nil || policy.Locality == "" && policy.Parent == nil {
		return insertingSite, false
	}
	v := *localityValue
	if isSite != nil && isSite(v) {
		return v, false
	}
	if policy.Parent != nil {
		return insertingSite, false
	}
	if lookup != nil {
		if site, ok := lookup(v); ok {
			return site, false
		}
	}
	return insertingSite, true
}
