package placement

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// exampleCatalog is the catalog form of exampleSpec in version 1. It is an
// on-disk format: if this test fails, stored specs would be read
// differently, so the change needs a new version (DESIGN.md), not a new
// expected string.
const exampleCatalog = `{"version":1,` +
	`"default":{"placement":"global","staleness_ns":5000000000},` +
	`"databases":{` +
	`"nova":{"tables":{` +
	`"flavors":{"placement":"global","staleness_ns":1000000000},` +
	`"instance_extra":{"placement":"local","parent":{"table":"instances","column":"uuid","via":"instance_uuid"}},` +
	`"instances":{"placement":"local","locality":"host","site_unique":["uuid"]}}},` +
	`"nova_cell1":{"policy":{"placement":"site","site":"paris"}}},` +
	`"locality_map":{"compute-12":"rennes"}}`

func TestMarshalVersion1(t *testing.T) {
	b, err := Marshal(exampleSpec())
	require.NoError(t, err)
	require.Equal(t, exampleCatalog, string(b))

	s, err := Unmarshal([]byte(exampleCatalog))
	require.NoError(t, err)
	require.Equal(t, exampleSpec(), s)
}

func TestMarshalIsDeterministic(t *testing.T) {
	// The same spec built in a different order, with its site_unique lists
	// in another order, marshals to the same bytes.
	a := &Spec{Default: Table{Kind: Local}, Databases: map[string]Database{}, LocalityMap: map[string]string{}}
	b := &Spec{Default: Table{Kind: Local}, Databases: map[string]Database{}, LocalityMap: map[string]string{}}
	names := []string{"d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"}
	for i, n := range names {
		a.Databases[n] = Database{Tables: map[string]Table{"t": {Kind: Local, SiteUnique: []string{"x", "primary", "a,b"}}}}
		a.LocalityMap[n] = "paris"
		m := names[len(names)-1-i]
		b.LocalityMap[m] = "paris"
		b.Databases[m] = Database{Tables: map[string]Table{"t": {Kind: Local, SiteUnique: []string{"a,b", "x", "primary"}}}}
	}
	ba, err := Marshal(a)
	require.NoError(t, err)
	for range 20 {
		bb, err := Marshal(b)
		require.NoError(t, err)
		require.Equal(t, string(ba), string(bb))
	}
	require.Equal(t, []string{"x", "primary", "a,b"}, a.Databases["d1"].Tables["t"].SiteUnique, "Marshal leaves the spec alone")
}

func TestCatalogRoundTrip(t *testing.T) {
	r := genRand(2)
	for i := range 2000 {
		s := genSpec(t, r)
		b, err := Marshal(s)
		require.NoError(t, err, "spec %d", i)
		back, err := Unmarshal(b)
		require.NoError(t, err, "spec %d: %s", i, b)
		require.True(t, s.Equal(back), "spec %d: %s", i, b)
		again, err := Marshal(back)
		require.NoError(t, err)
		require.Equal(t, string(b), string(again), "spec %d", i)
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, data, msg string
	}{
		{"not JSON", `{"version":1,`, "not a placement catalog entry"},
		{"not an object", `[1]`, "not a placement catalog entry"},
		{"no version", `{"default":{"placement":"global"}}`, "no version"},
		{"version 0", `{"version":0,"default":{"placement":"global"}}`, "version 0"},
		{"unknown field", `{"version":1,"default":{"placement":"global","colour":"red"}}`, `unknown field "colour"`},
		{"unknown placement", `{"version":1,"default":{"placement":"everywhere"}}`, `placement "everywhere"`},
		{"data after the entry", `{"version":1,"default":{"placement":"global"}} {}`, "after top-level value"},
		{"invalid spec", `{"version":1,"default":{"placement":"site","site":"Paris"}}`, `"Paris" is not a valid site name`},
		{"names not lower case", `{"version":1,"default":{"placement":"global"},"databases":{"Nova":{"policy":{"placement":"global"}}}}`, "must be lower case"},
		{"wrong type", `{"version":1,"default":{"placement":"global","staleness_ns":"1s"}}`, "staleness_ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal([]byte(tc.data))
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestUnmarshalNewerVersion(t *testing.T) {
	// A newer version may hold anything; it is refused before it is read.
	_, err := Unmarshal([]byte(`{"version":2,"default":{"placement":"nearby"},"regions":{}}`))
	require.ErrorIs(t, err, ErrVersion)
	require.NotErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "version 2, this build reads up to 1")
}

func TestMarshalRefusesInvalidSpecs(t *testing.T) {
	_, err := Marshal(&Spec{})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = Marshal(nil)
	require.ErrorIs(t, err, ErrInvalid)
}
