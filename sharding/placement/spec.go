package placement

import (
	"slices"
	"strings"
	"time"
)

// Kind says where the rows of a table live.
type Kind uint8

// The zero Kind is deliberately invalid: a policy built in code without a
// placement is a bug, and Validate reports it rather than guessing.
const (
	// Global: one copy in the global group, read on every node from its
	// local replica.
	Global Kind = iota + 1
	// Local: each row lives in the site group of its home site.
	Local
	// Site: every row lives in the group of one named site.
	Site
)

// DefaultStaleness is the staleness bound a global policy gets in a
// placement file that does not give one. It is well above the replication
// lag of a healthy cluster over the slowest WAN link (a few hundred
// milliseconds plus a heartbeat), so that reading shared data never waits
// for another site in normal operation, and short enough that a replica
// that fell behind waits to catch up before it answers with old data. Zero
// would mean a round trip to the global group's leader on every read.
//
// Parse writes the value into the Spec, so a stored spec keeps meaning what
// it meant if this default changes in a later version.
const DefaultStaleness = 5 * time.Second

func (k Kind) String() string {
	switch k {
	case Global:
		return "global"
	case Local:
		return "local"
	case Site:
		return "site"
	}
	return "invalid"
}

// ParentRef ties the rows of a child table to a parent row: a child row is
// homed with the row of Table whose Column equals the child's Via column.
// "instances(uuid) via instance_uuid" is {Table: "instances", Column:
// "uuid", Via: "instance_uuid"}.
type ParentRef struct {
	Table  string
	Column string
	Via    string
}

// String gives the form a placement file uses.
func (p ParentRef) String() string {
	return p.Table + "(" + p.Column + ") via " + p.Via
}

// Table is a placement policy: the placement of a table, or the default of
// a database or of the whole spec.
type Table struct {
	Kind Kind
	// Site names the site of a Site policy.
	Site string
	// Locality names the column whose value homes a row of a Local table.
	Locality string
	// Parent homes a row of a Local table with its parent row.
	Parent *ParentRef
	// SiteUnique lists unique indexes of a Local table that the operator
	// declares unique without a check across sites, each by its name or by
	// its columns joined with commas ("resource_type,resource_id").
	SiteUnique []string
	// Staleness bounds how old a Global table's local replica may be when
	// it is read; zero asks for linearizable reads.
	Staleness time.Duration
	// Strict makes reads of a Global table fail rather than answer past
	// the bound when the global group cannot be reached.
	Strict bool
}

// Placement gives the placement as a placement file writes it: "global",
// "local" or "site:NAME".
func (t Table) Placement() string {
	if t.Kind == Site {
		return "site:" + t.Site
	}
	return t.Kind.String()
}

// String describes the policy in one line, for messages.
func (t Table) String() string {
	var b strings.Builder
	b.WriteString(t.Placement())
	if t.Locality != "" {
		b.WriteString(" by " + t.Locality)
	}
	if t.Parent != nil {
		b.WriteString(" with parent " + t.Parent.String())
	}
	if len(t.SiteUnique) > 0 {
		b.WriteString(" site_unique [" + strings.Join(t.SiteUnique, " ") + "]")
	}
	if t.Kind == Global {
		b.WriteString(" staleness " + t.Staleness.String())
		if t.Strict {
			b.WriteString(" strict")
		}
	}
	return b.String()
}

// Equal reports whether two policies are the same; SiteUnique is compared
// as a set.
func (t Table) Equal(o Table) bool {
	if t.Kind != o.Kind || t.Site != o.Site || t.Locality != o.Locality ||
		t.Staleness != o.Staleness || t.Strict != o.Strict {
		return false
	}
	if (t.Parent == nil) != (o.Parent == nil) || t.Parent != nil && *t.Parent != *o.Parent {
		return false
	}
	return slices.Equal(sortedCopy(t.SiteUnique), sortedCopy(o.SiteUnique))
}

func (t Table) clone() Table {
	c := t
	if t.Parent != nil {
		p := *t.Parent
		c.Parent = &p
	}
	c.SiteUnique = slices.Clone(t.SiteUnique)
	return c
}

// Database is the placement of one database: a policy for its tables that
// are not listed (nil: the spec's default) and the policies of listed
// tables, keyed by lower-case name.
type Database struct {
	Policy *Table
	Tables map[string]Table
}

// Spec is a whole placement: what a placement file declares and the catalog
// stores. Database, table and column names are lower case, as MySQL table
// names are here. A Spec is not changed after Parse or Unmarshal returns
// it, so readers may share it.
type Spec struct {
	// Default places the tables of databases the spec does not list, and
	// unlisted tables of listed databases without a policy of their own.
	Default Table
	// Databases are keyed by lower-case name.
	Databases map[string]Database
	// LocalityMap maps locality values to the sites they home rows at
	// (host compute-12 → rennes). Keys are values exactly as stored in
	// rows; how two spellings compare is the locality column's collation,
	// which the caller of HomeSite applies.
	LocalityMap map[string]string
}

// Effective returns the policy of a table: its own entry, else its
// database's policy, else the spec's default. Names are case-insensitive.
// An entry replaces the levels below it whole; fields are not merged, so
// what a table entry says is all there is to its placement.
func (s *Spec) Effective(db, table string) Table {
	db, table = strings.ToLower(db), strings.ToLower(table)
	if d, ok := s.Databases[db]; ok {
		if t, ok := d.Tables[table]; ok {
			return t.clone()
		}
		if d.Policy != nil {
			return d.Policy.clone()
		}
	}
	return s.Default.clone()
}

// Sites lists every site the spec names, sorted: the sites of Site
// policies and the values of the locality map. The server refuses a spec
// that names a site it does not know.
func (s *Spec) Sites() []string {
	seen := map[string]bool{}
	add := func(t Table) {
		if t.Kind == Site {
			seen[t.Site] = true
		}
	}
	add(s.Default)
	for _, d := range s.Databases {
		if d.Policy != nil {
			add(*d.Policy)
		}
		for _, t := range d.Tables {
			add(t)
		}
	}
	for _, site := range s.LocalityMap {
		seen[site] = true
	}
	out := make([]string, 0, len(seen))
	for site := range seen {
		out = append(out, site)
	}
	slices.Sort(out)
	return out
}

// Equal reports whether two specs have the same entries (SiteUnique lists
// compared as sets); equal specs marshal to the same bytes. It compares
// entries, not their effect: an entry that repeats the policy it overrides
// still makes a difference. Diff compares effects.
func (s *Spec) Equal(o *Spec) bool {
	if !s.Default.Equal(o.Default) || len(s.Databases) != len(o.Databases) ||
		len(s.LocalityMap) != len(o.LocalityMap) {
		return false
	}
	for name, d := range s.Databases {
		od, ok := o.Databases[name]
		if !ok || (d.Policy == nil) != (od.Policy == nil) ||
			d.Policy != nil && !d.Policy.Equal(*od.Policy) || len(d.Tables) != len(od.Tables) {
			return false
		}
		for tn, t := range d.Tables {
			ot, ok := od.Tables[tn]
			if !ok || !t.Equal(ot) {
				return false
			}
		}
	}
	for v, site := range s.LocalityMap {
		if os, ok := o.LocalityMap[v]; !ok || os != site {
			return false
		}
	}
	return true
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
