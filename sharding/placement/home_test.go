package placement

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHomeSite(t *testing.T) {
	sites := map[string]bool{"paris": true, "rennes": true, "lyon": true}
	isSite := func(name string) bool { return sites[name] }
	localityMap := map[string]string{"compute-12": "rennes", "paris": "lyon", "": "lyon"}
	var looked []string
	lookup := func(v string) (string, bool) {
		looked = append(looked, v)
		s, ok := localityMap[v]
		return s, ok
	}
	str := func(s string) *string { return &s }
	byHost := Table{Kind: Local, Locality: "host"}
	child := Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "instance_uuid"}}

	for _, tc := range []struct {
		name     string
		policy   Table
		value    *string
		site     string
		register bool
		lookups  []string
	}{
		{"global rows have no home site", Table{Kind: Global}, str("compute-12"), "", false, nil},
		{"site placement", Table{Kind: Site, Site: "lyon"}, str("compute-12"), "lyon", false, nil},
		{"a site name homes there", byHost, str("rennes"), "rennes", false, nil},
		{"a site name wins over the map", byHost, str("paris"), "paris", false, nil},
		{"a mapped value", byHost, str("compute-12"), "rennes", false, []string{"compute-12"}},
		{"the empty string is a value", byHost, str(""), "lyon", false, []string{""}},
		{"NULL homes at the inserting site", byHost, nil, "paris", false, nil},
		{"an unknown value homes at the inserting site and is registered", byHost, str("compute-99"), "paris", true, []string{"compute-99"}},
		{"no locality key: the inserting site", Table{Kind: Local}, str("rennes"), "paris", false, nil},
		{"a child follows its parent's home", child, str("rennes"), "rennes", false, nil},
		{"a child without a parent row", child, nil, "paris", false, nil},
		{"a parent's home is never looked up or registered", child, str("compute-12"), "paris", false, nil},
	} {
		looked = nil
		site, register := HomeSite(tc.policy, tc.value, "paris", lookup, isSite)
		require.Equal(t, tc.site, site, tc.name)
		require.Equal(t, tc.register, register, tc.name)
		require.Equal(t, tc.lookups, looked, tc.name)
	}
}

func TestHomeSiteWithoutLookups(t *testing.T) {
	v := "rennes"
	site, register := HomeSite(Table{Kind: Local, Locality: "host"}, &v, "paris", nil, nil)
	require.Equal(t, "paris", site, "nothing is known: not even that rennes is a site")
	require.True(t, register)
}
