package placement

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// exampleFile is the example of the placement file's documentation.
const exampleFile = `default: global                 # global | local | site:NAME
databases:
  nova_cell1:
    placement: site:paris
  nova:
    tables:
      instances:
        placement: local
        locality: host
        site_unique: [uuid]
      instance_extra:
        placement: local
        parent: instances(uuid) via instance_uuid
      flavors:
        placement: global
        staleness: 1s
        strict: false
locality_map:
  compute-12: rennes
`

func exampleSpec() *Spec {
	return &Spec{
		Default: Table{Kind: Global, Staleness: DefaultStaleness},
		Databases: map[string]Database{
			"nova_cell1": {Policy: &Table{Kind: Site, Site: "paris"}},
			"nova": {Tables: map[string]Table{
				"instances":      {Kind: Local, Locality: "host", SiteUnique: []string{"uuid"}},
				"instance_extra": {Kind: Local, Parent: &ParentRef{Table: "instances", Column: "uuid", Via: "instance_uuid"}},
				"flavors":        {Kind: Global, Staleness: time.Second},
			}},
		},
		LocalityMap: map[string]string{"compute-12": "rennes"},
	}
}

func TestParseExample(t *testing.T) {
	s, err := Parse([]byte(exampleFile))
	require.NoError(t, err)
	require.Equal(t, exampleSpec(), s)
}

func TestParseLowerCasesNames(t *testing.T) {
	s, err := Parse([]byte(`
databases:
  NOVA:
    tables:
      Instances: {placement: local, locality: HOST, site_unique: [UUID, "Project_ID, Name", [A, B]]}
      Instance_Extra: {placement: local, parent: INSTANCES(UUID) VIA Instance_UUID}
`))
	require.NoError(t, err)
	require.Equal(t, map[string]Database{"nova": {Tables: map[string]Table{
		"instances":      {Kind: Local, Locality: "host", SiteUnique: []string{"a,b", "project_id,name", "uuid"}},
		"instance_extra": {Kind: Local, Parent: &ParentRef{Table: "instances", Column: "uuid", Via: "instance_uuid"}},
	}}}, s.Databases)
	require.Equal(t, Table{Kind: Local, Locality: "host", SiteUnique: []string{"a,b", "project_id,name", "uuid"}},
		s.Effective("Nova", "INSTANCES"))
}

func TestParseEmptyPlacesEverythingGlobal(t *testing.T) {
	for _, src := range []string{"", "# nothing yet\n", "~\n", "---\n", "null"} {
		s, err := Parse([]byte(src))
		require.NoError(t, err, "%q", src)
		require.Equal(t, &Spec{Default: Table{Kind: Global, Staleness: DefaultStaleness}}, s, "%q", src)
	}
}

func TestParseDefaultForms(t *testing.T) {
	for src, want := range map[string]Table{
		"default: global":     {Kind: Global, Staleness: DefaultStaleness},
		"default: local":      {Kind: Local},
		"default: site:paris": {Kind: Site, Site: "paris"},
		"default: {placement: global, staleness: 0s}":         {Kind: Global},
		"default: {placement: global, strict: true}":          {Kind: Global, Staleness: DefaultStaleness, Strict: true},
		"default:\n  placement: global\n  staleness: 250ms\n": {Kind: Global, Staleness: 250 * time.Millisecond},
		"default: {placement: site:lyon}":                     {Kind: Site, Site: "lyon"},
	} {
		s, err := Parse([]byte(src))
		require.NoError(t, err, src)
		require.Equal(t, want, s.Default, src)
	}
}

func TestParseStalenessDefaults(t *testing.T) {
	s, err := Parse([]byte(`
databases:
  keystone: {placement: global}
  glance: {placement: global, staleness: 0s}
  nova:
    placement: global
    staleness: 2s
    tables:
      flavors: {placement: global}
`))
	require.NoError(t, err)
	require.Equal(t, DefaultStaleness, s.Effective("keystone", "user").Staleness)
	require.Equal(t, time.Duration(0), s.Effective("glance", "images").Staleness, "0s asks for linearizable reads")
	require.Equal(t, 2*time.Second, s.Effective("nova", "quotas").Staleness)
	require.Equal(t, DefaultStaleness, s.Effective("nova", "flavors").Staleness,
		"a table entry replaces its database's policy whole")
}

func TestParseAliasesAndMergeKeys(t *testing.T) {
	s, err := Parse([]byte(`
databases:
  nova: &cell
    tables:
      instances: {placement: local, locality: host}
      instance_extra: &child {placement: local, parent: instances(uuid) via instance_uuid}
      instance_metadata: *child
      tags:
        <<: *child
        parent: instances(uuid) via resource_id
      flavors:
        <<: [{placement: global, staleness: 1s}, {placement: local, strict: true}]
  nova_cell0: *cell
`))
	require.NoError(t, err)
	child := Table{Kind: Local, Parent: &ParentRef{Table: "instances", Column: "uuid", Via: "instance_uuid"}}
	require.Equal(t, child, s.Effective("nova", "instance_metadata"))
	require.Equal(t, Table{Kind: Local, Parent: &ParentRef{Table: "instances", Column: "uuid", Via: "resource_id"}},
		s.Effective("nova", "tags"), "a mapping's own keys win over merged ones")
	require.Equal(t, Table{Kind: Global, Staleness: time.Second, Strict: true}, s.Effective("nova", "flavors"),
		"earlier merged mappings win over later ones")
	require.Equal(t, s.Databases["nova"], s.Databases["nova_cell0"])
}

func TestParseAliasExpansionIsBounded(t *testing.T) {
	// 40 databases, each an alias of one with 40 tables, each an alias of
	// one with 40 column lists of 40 columns: 2.6 million nodes from a file
	// of a few kilobytes.
	var cols, lists, tables, dbs []string
	for range 40 {
		cols = append(cols, "a")
	}
	lists = append(lists, "&c ["+strings.Join(cols, ", ")+"]")
	for range 39 {
		lists = append(lists, "*c")
	}
	tables = append(tables, "t00: &t {placement: local, site_unique: ["+strings.Join(lists, ", ")+"]}")
	for i := 1; i < 40; i++ {
		tables = append(tables, fmt.Sprintf("t%02d: *t", i))
	}
	dbs = append(dbs, "  d00: &d {tables: {"+strings.Join(tables, ", ")+"}}")
	for i := 1; i < 40; i++ {
		dbs = append(dbs, fmt.Sprintf("  d%02d: *d", i))
	}
	src := "databases:\n" + strings.Join(dbs, "\n") + "\n"
	require.Less(t, len(src), 4096)
	_, err := Parse([]byte(src))
	require.ErrorIs(t, err, ErrInvalid)
	require.Contains(t, err.Error(), "more than 1048576 YAML nodes")
}

func TestParseErrorsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("databases:\n")
	for i := range 150 {
		fmt.Fprintf(&b, "  d%03d: {placement: nowhere}\n", i)
	}
	_, err := Parse([]byte(b.String()))
	var es Errors
	require.True(t, errors.As(err, &es))
	require.Len(t, es, maxErrors+1)
	require.Equal(t, 2, es[0].Line)
	require.Equal(t, maxErrors+1, es[maxErrors-1].Line)
	require.Equal(t, "more than 100 errors; the rest are not reported", es[maxErrors].Msg)
}

func TestParseMergeKeyIntoItself(t *testing.T) {
	_, err := Parse([]byte("databases:\n  nova: &n\n    placement: global\n    <<: *n\n"))
	require.ErrorContains(t, err, "merge key (<<) brings in the mapping that holds it")
}

// requireError checks that err lists exactly the errors wanted, each given
// as "line: path: message part".
func requireError(t *testing.T, err error, want ...string) {
	t.Helper()
	require.ErrorIs(t, err, ErrInvalid)
	var es Errors
	require.True(t, errors.As(err, &es), "%v", err)
	require.Len(t, es, len(want), "%v", err)
	for i, w := range want {
		parts := strings.SplitN(w, ": ", 3)
		require.Len(t, parts, 3, w)
		require.Equal(t, parts[0], fmt.Sprint(es[i].Line), "line of %v", es[i])
		require.Equal(t, parts[1], es[i].Path, "path of %v", es[i])
		require.Contains(t, es[i].Msg, parts[2], "message of %v", es[i])
	}
}

func TestParseStructureErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"unknown top-level field", "default: global\ndatabase: {}\n",
			[]string{`2: database: unknown field "database" (known here: default, databases, locality_map)`}},
		{"unknown table field", "databases:\n  nova:\n    tables:\n      t:\n        placement: local\n        localty: host\n",
			[]string{`6: databases.nova.tables.t.localty: unknown field "localty" (known here: placement, locality, parent, site_unique, staleness, strict)`}},
		{"unknown database field", "databases:\n  nova:\n    table: {}\n",
			[]string{`3: databases.nova.table: unknown field "table" (known here: placement, locality, parent, site_unique, staleness, strict, tables)`}},
		{"key given twice", "default: global\ndefault: local\n",
			[]string{"2: default: given twice (first on line 1)"}},
		{"database listed twice in other case", "databases:\n  nova: {placement: global}\n  Nova: {placement: local}\n",
			[]string{"3: databases.nova: database listed twice (first on line 2; names are case-insensitive)"}},
		{"table listed twice in other case", "databases:\n  nova:\n    tables:\n      t: {placement: global}\n      T: {placement: global}\n",
			[]string{"5: databases.nova.tables.t: table listed twice (first on line 4"}},
		{"bad placement", "databases:\n  nova:\n    placement: everywhere\n",
			[]string{`3: databases.nova.placement: "everywhere" is not a placement: global, local or site:NAME`}},
		{"bad default", "default: Global\n",
			[]string{`1: default: "Global" is not a placement`}},
		{"placement not a scalar", "databases:\n  nova:\n    placement: [global]\n",
			[]string{"3: databases.nova.placement: expected a value, got a list"}},
		{"placement null", "databases:\n  nova:\n    placement:\n",
			[]string{"3: databases.nova.placement: expected a value, got nothing"}},
		{"staleness without a unit", "databases:\n  nova: {placement: global, staleness: 5}\n",
			[]string{`2: databases.nova.staleness: "5" is not a duration (write it with a unit`}},
		{"staleness not a duration", "databases:\n  nova: {placement: global, staleness: soon}\n",
			[]string{`2: databases.nova.staleness: "soon" is not a duration`}},
		{"strict not a boolean", "databases:\n  nova: {placement: global, strict: yes}\n",
			[]string{`2: databases.nova.strict: expected true or false, got "yes"`}},
		{"parent syntax", "databases:\n  nova:\n    tables:\n      t: {placement: local, parent: instances.uuid}\n",
			[]string{`4: databases.nova.tables.t.parent: expected TABLE(COLUMN) via COLUMN, as in "instances(uuid) via instance_uuid"; got "instances.uuid"`}},
		{"parent without via", "databases:\n  nova:\n    tables:\n      t: {placement: local, parent: instances(uuid)}\n",
			[]string{`4: databases.nova.tables.t.parent: expected TABLE(COLUMN) via COLUMN`}},
		{"site_unique not a list", "databases:\n  nova:\n    tables:\n      t: {placement: local, site_unique: uuid}\n",
			[]string{`4: databases.nova.tables.t.site_unique: expected a list of index names or column lists, got "uuid"`}},
		{"site_unique empty column list", "databases:\n  nova:\n    tables:\n      t: {placement: local, site_unique: [[]]}\n",
			[]string{`4: databases.nova.tables.t.site_unique: an empty column list`}},
		{"tables not a mapping", "databases:\n  nova:\n    tables: [a, b]\n",
			[]string{"3: databases.nova.tables: expected a mapping, got a list"}},
		{"file not a mapping", "- global\n",
			[]string{"1: : a placement file is a mapping of default, databases and locality_map; got a list"}},
		{"locality_map without a site", "locality_map:\n  compute-1:\n",
			[]string{`2: locality_map["compute-1"]: expected a value, got nothing`}},
		{"key not a name", "databases:\n  ? [a, b]\n  : {placement: global}\n",
			[]string{"2: databases: keys must be plain names, not a list"}},
		{"null key", "databases:\n  ~: {placement: global}\n",
			[]string{"2: databases: keys must be plain names, not nothing"}},
		{"two documents", "default: global\n---\ndefault: local\n",
			[]string{"2: : a placement file holds one YAML document; this is a second"}},
		{"errors in file order", "databases:\n  b:\n    bogus: 1\n  a:\n    placement: nowhere\n",
			[]string{`3: databases.b.bogus: unknown field`, `5: databases.a.placement: "nowhere" is not a placement`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src))
			requireError(t, err, tc.want...)
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse([]byte("default: global\ndatabases: nova: {}\n"))
	require.ErrorIs(t, err, ErrInvalid)
	var e *Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, 2, e.Line)
	require.Equal(t, "YAML: mapping values are not allowed in this context", e.Msg)
}

func TestParseRuleErrors(t *testing.T) {
	long := strings.Repeat("a", 65)
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"locality on a global table", "databases:\n  nova:\n    tables:\n      t: {placement: global, locality: host}\n",
			[]string{"4: databases.nova.tables.t.locality: locality applies to local placement only, not global"}},
		{"parent on a site table", "databases:\n  nova:\n    tables:\n      t: {placement: site:paris, parent: a(b) via c}\n",
			[]string{"4: databases.nova.tables.t.parent: parent applies to local placement only, not site"}},
		{"site_unique on a global table, even empty", "databases:\n  nova:\n    tables:\n      t: {placement: global, site_unique: []}\n",
			[]string{"4: databases.nova.tables.t.site_unique: site_unique applies to local placement only, not global"}},
		{"locality on a database", "databases:\n  nova:\n    placement: local\n    locality: host\n",
			[]string{"4: databases.nova.locality: locality belongs to a table, not to a database"}},
		{"parent on the default", "default: {placement: local, parent: a(b) via c}\n",
			[]string{"1: default.parent: parent belongs to a table, not to the default"}},
		{"locality and parent", "databases:\n  nova:\n    tables:\n      p: {placement: local}\n      t:\n        placement: local\n        locality: host\n        parent: p(id) via p_id\n",
			[]string{"8: databases.nova.tables.t.parent: locality and parent are exclusive"}},
		{"zero staleness on a local table", "databases:\n  nova:\n    tables:\n      t: {placement: local, staleness: 0s}\n",
			[]string{"4: databases.nova.tables.t.staleness: staleness applies to global placement only, not local"}},
		{"strict false on a site database", "databases:\n  nova:\n    placement: site:paris\n    strict: false\n",
			[]string{"4: databases.nova.strict: strict applies to global placement only, not site"}},
		{"negative staleness", "databases:\n  nova: {placement: global, staleness: -1s}\n",
			[]string{"2: databases.nova.staleness: staleness -1s is negative"}},
		{"staleness without placement", "databases:\n  nova:\n    staleness: 1s\n",
			[]string{"2: databases.nova.placement: placement missing"}},
		{"table without placement", "databases:\n  nova:\n    tables:\n      t: {locality: host}\n",
			[]string{"4: databases.nova.tables.t.placement: placement missing"}},
		{"database placing nothing", "databases:\n  nova:\n",
			[]string{"2: databases.nova: places nothing"}},
		{"site names", "default: site:Paris\ndatabases:\n  a: {placement: site:-x}\n  b: {placement: 'site:'}\n  c: {placement: site:" + strings.Repeat("s", 64) + "}\n  d: {placement: site:a_b}\n",
			[]string{`1: default.placement: "Paris" is not a valid site name`, `3: databases.a.placement: "-x" is not a valid site name`,
				`4: databases.b.placement: "" is not a valid site name`, `5: databases.c.placement: "sss`, `6: databases.d.placement: "a_b" is not`}},
		{"identifiers", "databases:\n  '1234': {placement: global}\n  a-b: {placement: global}\n  " + long + ": {placement: global}\n  nova:\n    tables:\n      t: {placement: local, locality: host name}\n",
			[]string{`2: databases.1234: "1234" is not a valid database name`, `3: databases.a-b: "a-b" is not a valid database name`,
				`4: databases.` + long + `: "` + long + `" is not a valid database name`, `7: databases.nova.tables.t.locality: "host name" is not a valid column name`}},
		{"site_unique entries", "databases:\n  nova:\n    tables:\n      t: {placement: local, site_unique: [uuid, UUID, 'a,,b', [x, 'y z']]}\n",
			[]string{`4: databases.nova.tables.t.site_unique: "a,,b" is neither an index name nor a comma-separated column list`,
				`4: databases.nova.tables.t.site_unique: "uuid" is listed twice`,
				`4: databases.nova.tables.t.site_unique: "x,y z" is neither`}},
		{"parent is global", "databases:\n  nova:\n    tables:\n      p: {placement: global}\n      t: {placement: local, parent: p(id) via p_id}\n",
			[]string{"5: databases.nova.tables.t.parent: parent p is placed global; a parent must be local"}},
		{"unlisted parent placed by the default", "default: site:paris\ndatabases:\n  nova:\n    tables:\n      t: {placement: local, parent: p(id) via p_id}\n",
			[]string{"5: databases.nova.tables.t.parent: parent p is placed site:paris; a parent must be local"}},
		{"parent is itself", "databases:\n  nova:\n    tables:\n      t: {placement: local, parent: t(id) via parent_id}\n",
			[]string{"4: databases.nova.tables.t.parent: table t is its own parent"}},
		{"cycle", "databases:\n  nova:\n    tables:\n      a: {placement: local, parent: b(id) via b_id}\n      b: {placement: local, parent: c(id) via c_id}\n      c: {placement: local, parent: a(id) via a_id}\n      d: {placement: local, parent: a(id) via a_id}\n",
			[]string{"6: databases.nova.tables.c.parent: parents form a cycle: a → b → c → a"}},
		{"locality_map site", "locality_map:\n  compute-1: Rennes\n  compute-2: rennes\n",
			[]string{`2: locality_map["compute-1"]: "Rennes" is not a valid site name`}},
		{"rules reported in file order", "databases:\n  z: {placement: site:Z}\n  a: {placement: site:A}\n",
			[]string{`2: databases.z.placement: "Z"`, `3: databases.a.placement: "A"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src))
			requireError(t, err, tc.want...)
		})
	}
}

func TestParseParentChains(t *testing.T) {
	s, err := Parse([]byte(`
databases:
  nova:
    tables:
      instances: {placement: local, locality: host}
      instance_actions: {placement: local, parent: instances(uuid) via instance_uuid}
      instance_actions_events: {placement: local, parent: instance_actions(id) via action_id}
  cinder:
    placement: local
    tables:
      # The parent is not listed: the database's policy makes it local.
      volume_metadata: {placement: local, parent: volumes(id) via volume_id}
`))
	require.NoError(t, err)
	require.Equal(t, &ParentRef{Table: "instance_actions", Column: "id", Via: "action_id"},
		s.Effective("nova", "instance_actions_events").Parent)
	require.Equal(t, Local, s.Effective("cinder", "volumes").Kind)
}

func TestErrorFormat(t *testing.T) {
	require.Equal(t, "placement: line 3: databases.nova: oops", (&Error{Path: "databases.nova", Line: 3, Msg: "oops"}).Error())
	require.Equal(t, "placement: databases.nova: oops", (&Error{Path: "databases.nova", Msg: "oops"}).Error())
	require.Equal(t, "placement: oops", (&Error{Msg: "oops"}).Error())
	es := Errors{{Msg: "a"}, {Line: 2, Msg: "b"}}
	require.Equal(t, "placement: a\nplacement: line 2: b", es.Error())
	require.ErrorIs(t, es, ErrInvalid)
	var e *Error
	require.True(t, errors.As(error(es), &e))
	require.Equal(t, "a", e.Msg)
}
