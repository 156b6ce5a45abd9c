package placement

import "slices"

// Change is a difference in the effective policy of some tables between two
// specs.
//
// Database and Table say which tables, since a spec lists only some: a
// Change with a Table covers that table; one with only a Database covers
// every table of it that neither spec lists; one with neither covers every
// table of every database that neither spec lists. A server that knows its
// tables can equally compare old.Effective and new.Effective for each.
type Change struct {
	Database string
	Table    string
	Old, New Table
}

// Moves reports whether rows of the tables the change covers would have to
// live elsewhere: see the package function Moves.
func (c Change) Moves() bool { return Moves(c.Old, c.New) }

// SiteUniqueDropped lists the site_unique entries of a local table that the
// new policy no longer declares. That moves no row, but the index becomes
// checked across sites, and rows already stored may break it: the server
// must check them before it accepts the change.
func (c Change) SiteUniqueDropped() []string {
	if c.Old.Kind != Local || c.New.Kind != Local {
		return nil
	}
	var out []string
	for _, e := range sortedCopy(c.Old.SiteUnique) {
		if !slices.Contains(c.New.SiteUnique, e) {
			out = append(out, e)
		}
	}
	return out
}

// Moves reports whether a table placed by old would have rows to move if it
// were placed by new: the kind changes, a site placement names another
// site, or a local table is homed by another rule (locality column or
// parent). Staleness and strictness change how a global table is read, and
// site_unique how inserts are checked; neither moves a row.
func Moves(old, new Table) bool {
	if old.Kind != new.Kind {
		return true
	}
	switch old.Kind {
	case Site:
		return old.Site != new.Site
	case Local:
		if old.Locality != new.Locality || (old.Parent == nil) != (new.Parent == nil) {
			return true
		}
		return old.Parent != nil && *old.Parent != *new.Parent
	}
	return false
}

// Diff lists the changes of effective policy from old to new, in a stable
// order: the default, then each database by name with its unlisted tables
// first. Changing only the locality map is not reported here (see
// DiffLocalityMap).
func Diff(old, new *Spec) []Change {
	var out []Change
	add := func(db, table string) {
		o, n := old.Effective(db, table), new.Effective(db, table)
		if !o.Equal(n) {
			out = append(out, Change{Database: db, Table: table, Old: o, New: n})
		}
	}
	// A name no spec can list stands for "a table (or database) neither
	// spec lists": Effective then falls through to the level below.
	const unlisted = ""
	if !old.Default.Equal(new.Default) {
		out = append(out, Change{Old: old.Default.clone(), New: new.Default.clone()})
	}
	for _, db := range unionKeys(old.Databases, new.Databases) {
		add(db, unlisted)
		for _, t := range unionKeys(old.Databases[db].Tables, new.Databases[db].Tables) {
			add(db, t)
		}
	}
	return out
}

// MapChange is a locality value whose entry in the locality map differs
// between two specs; a site is "" where the spec has no entry.
//
// Whether rows move depends on data the spec does not hold: rows with the
// value live at the site it was mapped or registered to. A change moves
// them when New is not that site, so adding an entry for a value no row
// holds yet, or one that confirms where its rows already are, moves
// nothing; removing an entry falls back to the registration, if any.
type MapChange struct {
	Value    string
	Old, New string
}

// DiffLocalityMap lists the locality values whose mapping differs, sorted.
func DiffLocalityMap(old, new *Spec) []MapChange {
	var out []MapChange
	for _, v := range unionKeys(old.LocalityMap, new.LocalityMap) {
		if o, n := old.LocalityMap[v], new.LocalityMap[v]; o != n {
			out = append(out, MapChange{Value: v, Old: o, New: n})
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := sortedKeys(a)
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
