package placement

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEffective(t *testing.T) {
	s := &Spec{
		Default: Table{Kind: Site, Site: "paris"},
		Databases: map[string]Database{
			"nova": {
				Policy: &Table{Kind: Global, Staleness: 2 * time.Second},
				Tables: map[string]Table{"instances": {Kind: Local, Locality: "host"}},
			},
			"glance": {Tables: map[string]Table{"images": {Kind: Global}}},
		},
	}
	require.NoError(t, s.Validate())
	for _, tc := range []struct {
		db, table string
		want      Table
	}{
		{"nova", "instances", Table{Kind: Local, Locality: "host"}},
		{"NOVA", "Instances", Table{Kind: Local, Locality: "host"}},
		{"nova", "flavors", Table{Kind: Global, Staleness: 2 * time.Second}},
		{"glance", "images", Table{Kind: Global}},
		{"glance", "tasks", Table{Kind: Site, Site: "paris"}},
		{"keystone", "user", Table{Kind: Site, Site: "paris"}},
	} {
		require.Equal(t, tc.want, s.Effective(tc.db, tc.table), "%s.%s", tc.db, tc.table)
	}
}

func TestEffectiveReturnsACopy(t *testing.T) {
	s, err := Parse([]byte(exampleFile))
	require.NoError(t, err)
	got := s.Effective("nova", "instance_extra")
	got.Parent.Table = "changed"
	got = s.Effective("nova", "instances")
	got.SiteUnique[0] = "changed"
	require.Equal(t, exampleSpec(), s)
}

func TestSites(t *testing.T) {
	s := exampleSpec()
	s.Default = Table{Kind: Site, Site: "lyon"}
	s.LocalityMap["compute-13"] = "paris"
	require.Equal(t, []string{"lyon", "paris", "rennes"}, s.Sites())
	require.Empty(t, (&Spec{Default: Table{Kind: Global}}).Sites())
}

func TestTableEqual(t *testing.T) {
	a := Table{Kind: Local, Locality: "host", SiteUnique: []string{"uuid", "primary"}}
	require.True(t, a.Equal(Table{Kind: Local, Locality: "host", SiteUnique: []string{"primary", "uuid"}}),
		"site_unique is a set")
	require.False(t, a.Equal(Table{Kind: Local, Locality: "host", SiteUnique: []string{"uuid"}}))
	require.False(t, a.Equal(Table{Kind: Local, Locality: "node", SiteUnique: []string{"primary", "uuid"}}))
	p := Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "instance_uuid"}}
	require.True(t, p.Equal(Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "instance_uuid"}}))
	require.False(t, p.Equal(Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "uuid"}}))
	require.False(t, p.Equal(Table{Kind: Local}))
	require.False(t, Table{Kind: Global}.Equal(Table{Kind: Global, Strict: true}))
	require.False(t, Table{Kind: Global}.Equal(Table{Kind: Global, Staleness: 1}))
	require.False(t, Table{Kind: Site, Site: "a"}.Equal(Table{Kind: Site, Site: "b"}))
}

func TestSpecEqual(t *testing.T) {
	require.True(t, exampleSpec().Equal(exampleSpec()))
	for name, change := range map[string]func(*Spec){
		"default":        func(s *Spec) { s.Default.Staleness = 0 },
		"database added": func(s *Spec) { s.Databases["x"] = Database{Policy: &Table{Kind: Local}} },
		"database policy": func(s *Spec) {
			s.Databases["nova"] = Database{Policy: &Table{Kind: Local}, Tables: s.Databases["nova"].Tables}
		},
		"table":         func(s *Spec) { s.Databases["nova"].Tables["flavors"] = Table{Kind: Global} },
		"table removed": func(s *Spec) { delete(s.Databases["nova"].Tables, "flavors") },
		"map value":     func(s *Spec) { s.LocalityMap["compute-12"] = "paris" },
		"map entry":     func(s *Spec) { s.LocalityMap["compute-13"] = "rennes" },
	} {
		s := exampleSpec()
		change(s)
		require.False(t, exampleSpec().Equal(s), name)
		require.False(t, s.Equal(exampleSpec()), name)
	}
}

func TestTableString(t *testing.T) {
	require.Equal(t, "local by host site_unique [uuid]", Table{Kind: Local, Locality: "host", SiteUnique: []string{"uuid"}}.String())
	require.Equal(t, "local with parent instances(uuid) via instance_uuid",
		Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "instance_uuid"}}.String())
	require.Equal(t, "global staleness 1s strict", Table{Kind: Global, Staleness: time.Second, Strict: true}.String())
	require.Equal(t, "site:paris", Table{Kind: Site, Site: "paris"}.String())
	require.Equal(t, "invalid", Table{}.Placement())
}

// Specs built in code meet the same rules as files, and some that a file
// cannot break.
func TestValidateBuiltSpecs(t *testing.T) {
	global := Table{Kind: Global, Staleness: DefaultStaleness}
	for _, tc := range []struct {
		name string
		spec *Spec
		want []string // ": path: message part", no line
	}{
		{"nil", nil, []string{"0: : no spec"}},
		{"zero default", &Spec{}, []string{"0: default.placement: placement missing"}},
		{"site on a global policy", &Spec{Default: Table{Kind: Global, Site: "paris"}},
			[]string{"0: default.placement: a site is given for global placement"}},
		{"upper-case names", &Spec{Default: global, Databases: map[string]Database{
			"Nova": {Tables: map[string]Table{"Instances": {Kind: Local, Locality: "Host", SiteUnique: []string{"UUID"}}}}}},
			[]string{`0: databases.Nova: database name "Nova" must be lower case`,
				`0: databases.Nova.tables.Instances: table name "Instances" must be lower case`,
				`0: databases.Nova.tables.Instances.locality: column name "Host" must be lower case`,
				`0: databases.Nova.tables.Instances.site_unique: "UUID" is neither`}},
		{"parent names", &Spec{Default: Table{Kind: Local}, Databases: map[string]Database{
			"nova": {Tables: map[string]Table{"t": {Kind: Local, Parent: &ParentRef{"", "Uuid", "a b"}}}}}},
			[]string{`0: databases.nova.tables.t.parent: "" is not a valid table name`,
				`0: databases.nova.tables.t.parent: column name "Uuid" must be lower case`,
				`0: databases.nova.tables.t.parent: "a b" is not a valid column name`}},
		{"empty database", &Spec{Default: global, Databases: map[string]Database{"nova": {Tables: map[string]Table{}}}},
			[]string{"0: databases.nova: places nothing"}},
		{"invalid UTF-8 locality value", &Spec{Default: global, LocalityMap: map[string]string{"\xff": "paris"}},
			[]string{`0: locality_map["\xff"]: a locality value must be valid UTF-8`}},
		{"strict local default", &Spec{Default: Table{Kind: Local, Strict: true}},
			[]string{"0: default.strict: strict applies to global placement only, not local"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, tc.spec.Validate(), tc.want...)
		})
	}
	require.NoError(t, exampleSpec().Validate())
}

func TestValidIdent(t *testing.T) {
	for name, want := range map[string]bool{
		"instances": true, "t$1": true, "_": true, "1a": true, "été": true, "a1": true, "ＡＢ": true,
		"": false, "123": false, "a-b": false, "a b": false, "a.b": false, "a`b": false, "😀": false,
		string(make([]byte, 65)): false,
	} {
		require.Equal(t, want, validIdent(name), "%q", name)
	}
	require.True(t, validIdent(string([]rune{'a', 0xFFFF})))
	require.True(t, validIdent(repeatRune('é', 64)), "the limit counts characters, not bytes")
	require.False(t, validIdent(repeatRune('é', 65)))
}

func repeatRune(r rune, n int) string {
	out := make([]rune, n)
	for i := range out {
		out[i] = r
	}
	return string(out)
}

func TestValidSiteName(t *testing.T) {
	for name, want := range map[string]bool{
		"paris": true, "0": true, "site-9": true, "a-": true,
		"": false, "-a": false, "Paris": false, "a_b": false, "a.b": false, "é": false,
	} {
		require.Equal(t, want, ValidSiteName(name), "%q", name)
	}
	require.True(t, ValidSiteName("a"+repeatRune('b', 62)))
	require.False(t, ValidSiteName("a"+repeatRune('b', 63)))
}
