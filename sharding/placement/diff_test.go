package placement

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMoves(t *testing.T) {
	host := Table{Kind: Local, Locality: "host"}
	child := Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "instance_uuid"}}
	for _, tc := range []struct {
		name     string
		old, new Table
		moves    bool
	}{
		{"same", host, host, false},
		{"global to local", Table{Kind: Global}, host, true},
		{"local to global", host, Table{Kind: Global}, true},
		{"site to local", Table{Kind: Site, Site: "paris"}, Table{Kind: Local}, true},
		{"other site", Table{Kind: Site, Site: "paris"}, Table{Kind: Site, Site: "rennes"}, true},
		{"other locality column", host, Table{Kind: Local, Locality: "node"}, true},
		{"locality added", Table{Kind: Local}, host, true},
		{"locality to parent", host, child, true},
		{"parent removed", child, Table{Kind: Local}, true},
		{"other parent column", child, Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "uuid"}}, true},
		{"same parent", child, Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "instance_uuid"}}, false},
		{"staleness", Table{Kind: Global, Staleness: time.Second}, Table{Kind: Global}, false},
		{"strict", Table{Kind: Global}, Table{Kind: Global, Strict: true}, false},
		{"site_unique added", host, Table{Kind: Local, Locality: "host", SiteUnique: []string{"uuid"}}, false},
	} {
		require.Equal(t, tc.moves, Moves(tc.old, tc.new), tc.name)
		require.Equal(t, tc.moves, Change{Old: tc.old, New: tc.new}.Moves(), tc.name)
	}
}

func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := Parse([]byte(src))
	require.NoError(t, err)
	return s
}

func TestDiff(t *testing.T) {
	old := mustParse(t, `
default: global
databases:
  nova:
    placement: global
    tables:
      instances: {placement: local, locality: host, site_unique: [uuid, primary]}
      instance_extra: {placement: local, parent: instances(uuid) via instance_uuid}
      flavors: {placement: global, staleness: 1s}
  glance: {placement: global}
locality_map:
  compute-1: paris
  compute-2: rennes
`)
	new := mustParse(t, `
default: global
databases:
  nova:
    placement: site:paris
    tables:
      instances: {placement: local, locality: host, site_unique: [uuid]}
      instance_extra: {placement: local}
      flavors: {placement: global, staleness: 2s, strict: true}
      services: {placement: global}
  cinder: {placement: local}
locality_map:
  compute-1: paris
  compute-2: paris
  compute-3: lyon
`)
	changes := Diff(old, new)
	byName := map[string]Change{}
	for _, c := range changes {
		byName[c.Database+"."+c.Table] = c
	}
	require.Len(t, changes, 5, "%+v", changes)
	require.Equal(t, Change{Database: "cinder", Old: Table{Kind: Global, Staleness: DefaultStaleness}, New: Table{Kind: Local}}, byName["cinder."])
	require.Equal(t, Change{Database: "nova", Old: Table{Kind: Global, Staleness: DefaultStaleness}, New: Table{Kind: Site, Site: "paris"}}, byName["nova."])
	require.False(t, byName["nova.flavors"].Moves())
	require.True(t, byName["nova.instance_extra"].Moves())
	require.False(t, byName["nova.instances"].Moves())
	require.Equal(t, []string{"primary"}, byName["nova.instances"].SiteUniqueDropped())
	// services was placed by nova's policy (global, 5s) and is now listed
	// as global, 5s: no change. glance's entry went, and the default it
	// falls back to is the same policy: no change either.
	require.NotContains(t, byName, "nova.services")
	require.NotContains(t, byName, "glance.")
	require.Contains(t, byName, "nova.flavors")

	require.Equal(t, []MapChange{{Value: "compute-2", Old: "rennes", New: "paris"}, {Value: "compute-3", New: "lyon"}},
		DiffLocalityMap(old, new))
	require.Equal(t, []MapChange{{Value: "compute-2", Old: "paris", New: "rennes"}, {Value: "compute-3", Old: "lyon"}},
		DiffLocalityMap(new, old))
	require.Empty(t, Diff(old, old))
	require.Empty(t, DiffLocalityMap(old, old))
}

func TestDiffDefault(t *testing.T) {
	old := mustParse(t, "default: global\ndatabases:\n  nova: {tables: {instances: {placement: local}}}\n")
	new := mustParse(t, "default: local\ndatabases:\n  nova: {tables: {instances: {placement: local}}}\n")
	require.Equal(t, []Change{
		{Old: Table{Kind: Global, Staleness: DefaultStaleness}, New: Table{Kind: Local}},
		{Database: "nova", Old: Table{Kind: Global, Staleness: DefaultStaleness}, New: Table{Kind: Local}},
	}, Diff(old, new))
}

func TestSiteUniqueDroppedOnlyBetweenLocalPolicies(t *testing.T) {
	c := Change{Old: Table{Kind: Local, SiteUnique: []string{"b", "a"}}, New: Table{Kind: Local, SiteUnique: []string{"b"}}}
	require.Equal(t, []string{"a"}, c.SiteUniqueDropped())
	c.New = Table{Kind: Global}
	require.Nil(t, c.SiteUniqueDropped(), "a move rewrites the rows anyway")
}

// covers says whether a change stands for the table (db, table), by the
// rule Change documents.
func covers(c Change, old, new *Spec, db, table string) bool {
	listedDB := func(s *Spec) bool { _, ok := s.Databases[db]; return ok }
	listedTable := func(s *Spec) bool { _, ok := s.Databases[db].Tables[table]; return ok }
	switch {
	case c.Database == "":
		return !listedDB(old) && !listedDB(new)
	case c.Database != db:
		return false
	case c.Table == "":
		return !listedTable(old) && !listedTable(new)
	}
	return c.Table == table
}

// TestDiffCoversExactlyTheChangedTables checks Diff against Effective on
// random pairs of specs, for listed and unlisted tables and databases: a
// table's effective policy differs exactly when one change covers it, and
// that change says from what to what.
func TestDiffCoversExactlyTheChangedTables(t *testing.T) {
	r := genRand(4)
	dbs := append([]string{"unlisted_db"}, genDatabases...)
	tables := append([]string{"unlisted_table"}, genTables...)
	for i := range 3000 {
		old, new := genSpec(t, r), genSpec(t, r)
		if i%3 == 0 {
			// Pairs that differ a little are the interesting ones.
			b, err := Marshal(old)
			require.NoError(t, err)
			new, err = Unmarshal(b)
			require.NoError(t, err)
			if db, ok := new.Databases[pick(r, genDatabases)]; ok && len(db.Tables) > 0 {
				for name := range db.Tables {
					db.Tables[name] = genPolicy(r)
					break
				}
			}
		}
		changes := Diff(old, new)
		for _, db := range dbs {
			for _, table := range tables {
				o, n := old.Effective(db, table), new.Effective(db, table)
				var covering []Change
				for _, c := range changes {
					if covers(c, old, new, db, table) {
						covering = append(covering, c)
					}
				}
				if o.Equal(n) {
					require.Empty(t, covering, "pair %d, %s.%s", i, db, table)
					continue
				}
				require.Len(t, covering, 1, "pair %d, %s.%s: %v → %v", i, db, table, o, n)
				require.True(t, covering[0].Old.Equal(o) && covering[0].New.Equal(n), "pair %d, %s.%s", i, db, table)
				require.Equal(t, Moves(o, n), covering[0].Moves())
			}
		}
	}
}
