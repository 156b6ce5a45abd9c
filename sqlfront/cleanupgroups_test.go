package sqlfront

import (
	"testing"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
)

// notLeading is a part of a group whose leader is another node.
type notLeading struct{ *LocalStore }

func (notLeading) Leading() (uint64, bool) { return 0, false }

// TestCleanupOfGroupsTheCatalogLeaderDoesNotHold: the catalog group's
// leader need not hold the groups tables are placed in (the global
// group's leader holds its own site's group only). The rows of a dropped
// table of such a group are still removed, by a node that leads that
// group, and its cleanup record does not hold up the removal of tables
// dropped after it.
func TestCleanupOfGroupsTheCatalogLeaderDoesNotHold(t *testing.T) {
	db := newPartsDB(t, map[string]uint64{"b": 3})
	// The node the DDL runs on holds groups 1 to 3 and leads group 3 but
	// not the catalog group; the catalog's leader holds groups 1 and 2.
	ddlCfg := db.config()
	ddl, err := NewProviderOn(NewPartSet(notLeading{db.parts[1]}, map[uint64]Part{2: db.parts[2], 3: db.parts[3]}), ddlCfg)
	require.NoError(t, err)
	t.Cleanup(ddl.Close)
	s := ddl.NewSession(sql.NewBaseSession())
	s.SetCurrentDatabase("d")
	node := &testDB{t: t, eng: db.engs[1], prov: ddl, e: newEngine(ddl), sess: s}
	// db.prov (all three parts, leading everything) stands down: only
	// the catalog leader below cleans the catalog group.
	db.prov.Close()
	leader, err := NewProviderOn(NewPartSet(db.parts[1], map[uint64]Part{2: db.parts[2]}), db.config())
	require.NoError(t, err)
	t.Cleanup(leader.Close)

	node.query("CREATE TABLE b (id INT PRIMARY KEY)")
	node.query("CREATE TABLE c (id INT PRIMARY KEY)")
	node.query("INSERT INTO b VALUES (1), (2)")
	node.query("INSERT INTO c VALUES (1), (2)")
	bID, cID := ddl.table("d", "b").def.ID, ddl.table("d", "c").def.ID
	require.Less(t, bID, cID, "b's cleanup record comes first")
	require.NoError(t, node.exec(s, "DROP TABLE b"))
	require.NoError(t, node.exec(s, "DROP TABLE c"))
	leader.kickCleanup()
	ddl.kickCleanup()

	gone := func(g, id uint64) func() bool {
		return func() bool {
			v, err := db.engs[1].Get(dropKey(id, 0), kv.MaxTimestamp)
			require.NoError(t, err)
			return !v.Exists && db.tableKeys(g, id) == 0
		}
	}
	require.Eventually(t, gone(1, cID), 3*cleanupInterval, 10*time.Millisecond, "c, in the catalog group, is removed")
	require.Eventually(t, gone(3, bID), 3*cleanupInterval, 10*time.Millisecond, "b, in group 3, is removed")
}
