package sharding

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func voters(want map[string]bool) []string {
	var out []string
	for id, v := range want {
		if v {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func TestDesiredVoters(t *testing.T) {
	m := func(id, site string, voter bool) Member { return Member{ID: id, Site: site, Voter: voter} }
	for _, tc := range []struct {
		name    string
		members []Member
		max     int
		leader  string
		want    []string
	}{
		{"one node", []Member{m("a1", "a", true)}, 3, "a1", []string{"a1"}},
		{"two nodes of one site: one voter, not two", []Member{m("a1", "a", true), m("a2", "a", false)}, 3, "a1", []string{"a1"}},
		{"three of one site", []Member{m("a1", "a", true), m("a2", "a", false), m("a3", "a", false)}, 3, "a1", []string{"a1", "a2", "a3"}},
		{"four of one site keep three, the current ones", []Member{m("a1", "a", true), m("a2", "a", false), m("a3", "a", true), m("a4", "a", true)}, 3, "a1", []string{"a1", "a3", "a4"}},
		{"three sites of three: one voter each",
			[]Member{m("a1", "a", true), m("a2", "a", true), m("a3", "a", true), m("b1", "b", false), m("b2", "b", false), m("b3", "b", false), m("c1", "c", false), m("c2", "c", false), m("c3", "c", false)},
			3, "a2", []string{"a2", "b1", "c1"}},
		{"two sites: two and one", []Member{m("a1", "a", true), m("a2", "a", true), m("a3", "a", true), m("b1", "b", false)}, 3, "a3", []string{"a1", "a3", "b1"}},
		{"five voters over five sites", []Member{m("a1", "a", true), m("b1", "b", false), m("c1", "c", false), m("d1", "d", false), m("e1", "e", false), m("e2", "e", false)}, 5, "a1", []string{"a1", "b1", "c1", "d1", "e1"}},
		{"more sites than voters keeps current voters", []Member{m("a1", "a", false), m("b1", "b", true), m("c1", "c", true), m("d1", "d", true), m("e1", "e", false)}, 3, "c1", []string{"b1", "c1", "d1"}},
		{"site group of six keeps five", []Member{m("a1", "a", true), m("a2", "a", true), m("a3", "a", true), m("a4", "a", false), m("a5", "a", false), m("a6", "a", false)}, MaxSiteVoters, "a2", []string{"a1", "a2", "a3", "a4", "a5"}},
		{"operator's non-voter never votes", []Member{m("a1", "a", true), m("a2", "a", true), m("a3", "a", true), {ID: "a4", Site: "a", NoVote: true}}, 5, "a1", []string{"a1", "a2", "a3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, voters(DesiredVoters(tc.members, tc.max, tc.leader)))
		})
	}
}

// No site ever holds more than its share, whatever the order of members.
func TestDesiredVotersSpreadOverSites(t *testing.T) {
	var members []Member
	for _, s := range []string{"a", "b", "c", "d"} {
		for i := range 4 {
			members = append(members, Member{ID: s + string(rune('1'+i)), Site: s, Voter: s == "a"})
		}
	}
	for max := 1; max <= 7; max++ {
		want := DesiredVoters(members, max, "a1")
		n := len(voters(want))
		require.Equal(t, 1, n%2, "max %d gives %d voters", max, n)
		share := (n + 3) / 4
		per := map[string]int{}
		for id := range want {
			per[id[:1]]++
		}
		for site, k := range per {
			require.LessOrEqual(t, k, share, "max %d: site %s has %d", max, site, k)
		}
	}
}
