package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Names come from small pools so that two generated specs share databases,
// tables and locality values, which is what Diff has to get right.
var (
	genDatabases = []string{"nova", "nova_api", "keystone", "glance", "cinder"}
	genTables    = []string{"instances", "instance_extra", "services", "flavors", "tags", "t$1", "été"}
	genColumns   = []string{"host", "uuid", "instance_uuid", "id", "availability_zone"}
	genSites     = []string{"paris", "rennes", "nantes", "0", "site-9"}
	// Locality values that a careless YAML or JSON writer would turn into
	// something else.
	genValues = []string{"compute-12", "", "123", "null", "~", "yes", "true", "a: b", "#x", "- y",
		" lead", "trail ", "x\ny", "ü", "1e3", "0x1f", "'q'", `"dq"`, "<&>", "[1]", "{a: 1}"}
	genStaleness = []time.Duration{0, time.Millisecond, 500 * time.Millisecond, time.Second, DefaultStaleness, 90 * time.Second}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func genPolicy(r *rand.Rand) Table {
	switch r.IntN(3) {
	case 0:
		return Table{Kind: Global, Staleness: pick(r, genStaleness), Strict: r.IntN(3) == 0}
	case 1:
		return Table{Kind: Local}
	default:
		return Table{Kind: Site, Site: pick(r, genSites)}
	}
}

// genSpec returns a random valid spec. Parents point only to tables
// generated before (or to unlisted tables of a local database), so there is
// no cycle by construction.
func genSpec(t testing.TB, r *rand.Rand) *Spec {
	s := &Spec{Default: genPolicy(r)}
	if r.IntN(5) > 0 {
		s.Databases = map[string]Database{}
	}
	for range r.IntN(4) {
		if s.Databases == nil {
			break
		}
		var db Database
		if r.IntN(2) == 0 {
			p := genPolicy(r)
			db.Policy = &p
		}
		n := r.IntN(5)
		if db.Policy == nil && n == 0 {
			n = 1
		}
		var order []string
		for range n {
			name := pick(r, genTables)
			if db.Tables == nil {
				db.Tables = map[string]Table{}
			}
			if _, dup := db.Tables[name]; dup {
				continue
			}
			tbl := genPolicy(r)
			if tbl.Kind == Local {
				switch r.IntN(3) {
				case 0:
					tbl.Locality = pick(r, genColumns)
				case 1:
					var parents []string
					for _, o := range order {
						if db.Tables[o].Kind == Local {
							parents = append(parents, o)
						}
					}
					if db.Policy != nil && db.Policy.Kind == Local {
						parents = append(parents, "unlisted_parent")
					}
					if len(parents) > 0 {
						tbl.Parent = &ParentRef{Table: pick(r, parents), Column: pick(r, genColumns), Via: pick(r, genColumns)}
					}
				}
				for _, e := range []string{"uuid", "primary", "resource_type,resource_id"} {
					if r.IntN(3) == 0 {
						tbl.SiteUnique = append(tbl.SiteUnique, e)
					}
				}
			}
			db.Tables[name] = tbl
			order = append(order, name)
		}
		s.Databases[pick(r, genDatabases)] = db
	}
	for range r.IntN(4) {
		if s.LocalityMap == nil {
			s.LocalityMap = map[string]string{}
		}
		s.LocalityMap[pick(r, genValues)] = pick(r, genSites)
	}
	require.NoError(t, s.Validate(), "generator made an invalid spec: %+v", s)
	return s
}

func genRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func TestGeneratorCoversTheFormat(t *testing.T) {
	// The round-trip tests are only as good as what the generator makes:
	// check that it makes every kind of entry.
	seen := map[string]bool{}
	r := genRand(1)
	for range 500 {
		s := genSpec(t, r)
		seen["default "+s.Default.Kind.String()] = true
		for _, db := range s.Databases {
			if db.Policy != nil {
				seen["db "+db.Policy.Kind.String()] = true
			}
			for _, tbl := range db.Tables {
				seen["table "+tbl.Kind.String()] = true
				seen[fmt.Sprintf("locality %v", tbl.Locality != "")] = true
				seen[fmt.Sprintf("parent %v", tbl.Parent != nil)] = true
				seen[fmt.Sprintf("site_unique %v", len(tbl.SiteUnique) > 1)] = true
				seen[fmt.Sprintf("strict %v", tbl.Strict)] = true
				if tbl.Parent != nil && tbl.Parent.Table == "unlisted_parent" {
					seen["unlisted parent"] = true
				}
			}
		}
		seen[fmt.Sprintf("locality_map %v", len(s.LocalityMap) > 0)] = true
	}
	for _, want := range []string{"default global", "default local", "default site", "db global", "db local", "db site",
		"table global", "table local", "table site", "locality true", "parent true", "site_unique true",
		"strict true", "unlisted parent", "locality_map true", "locality_map false"} {
		require.True(t, seen[want], want)
	}
}
