package sqlfront

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv/keys"
)

// fakeHomes homes rows as the server does with sharding/placement: site
// names, a locality map, and registration of unknown values at the site
// given. This node is at paris (group 2); rennes (group 3) is another
// site, reached through a RemotePart.
type fakeHomes struct {
	sites   map[string]uint64 // site → group
	mapping map[string]string // locality map: value → site
	local   uint64

	mu         sync.Mutex
	registered map[string]uint64
	lookups    atomic.Int64
}

func newFakeHomes() *fakeHomes {
	return &fakeHomes{
		sites:      map[string]uint64{"paris": 2, "rennes": 3},
		mapping:    map[string]string{"compute-12": "rennes"},
		local:      2,
		registered: map[string]uint64{},
	}
}

func (h *fakeHomes) find(v string) (uint64, bool) {
	if g, ok := h.sites[v]; ok {
		return g, true
	}
	if s, ok := h.mapping[v]; ok {
		return h.sites[s], true
	}
	g, ok := h.registered[v]
	return g, ok
}

func (h *fakeHomes) Home(_ context.Context, v *string, fallback uint64) (uint64, error) {
	if v == nil {
		return fallback, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if g, ok := h.find(*v); ok {
		return g, nil
	}
	h.registered[*v] = fallback
	return fallback, nil
}

func (h *fakeHomes) Lookup(_ context.Context, v string) (uint64, bool, error) {
	h.lookups.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.find(v)
	return g, ok, nil
}

func (h *fakeHomes) LocalGroup() uint64                 { return h.local }
func (h *fakeHomes) AllGroups(context.Context) []uint64 { return []uint64{3, 2} }

// localDB is a node at paris: the catalog in group 1, paris's group 2
// hosted here, rennes's group 3 behind a fake leader. Tables listed in
// local are placed local.
type localDB struct {
	*partsDB
	homes *fakeHomes
	local map[string]TablePlacement
	f     *fakeRemote
}

func newLocalDB(t *testing.T, local map[string]TablePlacement) *localDB {
	ldb := &localDB{homes: newFakeHomes(), local: local}
	ldb.partsDB = newPartsDBWithConfig(t, map[string]uint64{}, func(cfg *Config) {
		cfg.Homes = ldb.homes
		place := cfg.PlaceTable
		cfg.PlaceTable = func(ctx *sql.Context, db, table string) (TablePlacement, error) {
			if pl, ok := ldb.local[strings.ToLower(table)]; ok {
				pl.Local = true
				return pl, nil
			}
			return place(ctx, db, table)
		}
	}, 3)
	ldb.f = ldb.remote[3]
	return ldb
}

// rows counts the rows of table name in group g's store.
func (db *localDB) rows(g uint64, name string) int {
	p := keys.IndexPrefix(db.id(name), primaryIndexID)
	return countKeys(db.t.(*testing.T), db.engs[g], p, keys.PrefixEnd(p))
}

// remoteCalls runs q and returns how many requests it sent to rennes.
func (db *localDB) remoteCalls(q string) (int64, []sql.Row) {
	before := db.f.calls.Load()
	rows := db.query(q)
	return db.f.calls.Load() - before, rows
}

// keysRead is how many stored entries group g's engine examined.
func (db *localDB) keysRead(g uint64) uint64 { return db.engs[g].Stats().KeysRead }

const instancesDDL = "CREATE TABLE instances (id INT PRIMARY KEY, uuid VARCHAR(36), host VARCHAR(64), name VARCHAR(20), UNIQUE KEY uniq_uuid (uuid), KEY ix_host (host), KEY ix_name (name))"

// TestLocalTableHomesRows: each row of a local table lands in its home
// site's group by its locality value (a site name, a mapped value; NULL
// and an unknown value at this node's site, the unknown value
// registered there), child rows with their parent (through the parent's
// unique key, a parent written in the same transaction included, NULL or
// missing parents at this site), rows of a table with no locality key
// here; the definition records it all.
func TestLocalTableHomesRows(t *testing.T) {
	db := newLocalDB(t, map[string]TablePlacement{
		"instances":      {Locality: "host"},
		"instance_extra": {Parent: &ParentRef{Table: "instances", Column: "uuid", Via: "instance_uuid"}},
		"events":         {},
	})
	db.query(instancesDDL)
	db.query("CREATE TABLE instance_extra (id INT PRIMARY KEY, instance_uuid VARCHAR(36), data VARCHAR(20))")
	db.query("CREATE TABLE events (id INT PRIMARY KEY, what VARCHAR(20))")
	db.query("CREATE TABLE flavors (id INT PRIMARY KEY)")

	// One statement per site: a transaction writes one group.
	db.query("INSERT INTO instances VALUES (1, 'u1', 'paris', 'a'), (4, 'u4', NULL, 'd'), (5, 'u5', 'compute-99', 'e')")
	db.query("INSERT INTO instances VALUES (2, 'u2', 'rennes', 'b'), (3, 'u3', 'compute-12', 'c')")
	require.Equal(t, 3, db.rows(2, "instances"))
	require.Equal(t, 2, db.rows(3, "instances"))
	require.Zero(t, db.rows(1, "instances"))
	g, ok, _ := db.homes.Lookup(context.Background(), "compute-99")
	require.True(t, ok)
	require.EqualValues(t, 2, g)

	// Children follow their parents; a parent inserted in the same
	// transaction is found in its buffered writes.
	db.query("INSERT INTO instance_extra VALUES (1, 'u1', 'x'), (4, NULL, 'n'), (5, 'nope', 'm')")
	db.query("INSERT INTO instance_extra VALUES (2, 'u2', 'y'), (3, 'u3', 'z')")
	requireSQLError(t, db.exec(db.sess, "INSERT INTO instance_extra VALUES (7, 'u1', 'x'), (8, 'u2', 'y')"), 1235, "42000", "more than one group")
	require.Equal(t, 3, db.rows(2, "instance_extra"))
	require.Equal(t, 2, db.rows(3, "instance_extra"))
	require.NoError(t, db.exec(db.sess, "START TRANSACTION"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO instances VALUES (6, 'u6', 'rennes', 'f')"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO instance_extra VALUES (6, 'u6', 'w')"))
	require.NoError(t, db.exec(db.sess, "COMMIT"))
	require.Equal(t, 3, db.rows(3, "instances"))
	require.Equal(t, 3, db.rows(3, "instance_extra"))

	// No locality key: this node's site.
	db.query("INSERT INTO events VALUES (1, 'boot')")
	require.Equal(t, 1, db.rows(2, "events"))
	require.Zero(t, db.rows(3, "events"))
	// A global table stays in the catalog group.
	db.query("INSERT INTO flavors VALUES (1)")
	require.Equal(t, 1, db.rows(1, "flavors"))

	pl, ok := db.prov.TablePlacement("d", "instance_extra")
	require.True(t, ok)
	require.Equal(t, TablePlacement{Local: true, Parent: &ParentRef{Table: "instances", Column: "uuid", Via: "instance_uuid"}}, pl)
	require.Zero(t, db.prov.TableGroup("d", "instances"))
	// Every site's group has the definition marker.
	for _, g := range []uint64{2, 3} {
		mk, ok := db.marker(g, db.id("instances"))
		require.True(t, ok, "group %d", g)
		require.Equal(t, db.prov.table("d", "instances").version, mk.version)
	}

	// A placement naming a column the table lacks refuses the table.
	db.local["bad"] = TablePlacement{Locality: "nosuch"}
	requireSQLError(t, db.exec(db.sess, "CREATE TABLE bad (id INT PRIMARY KEY)"), 1054, "42S22", "placement of d.bad")
}

// TestLocalTableReads: a scan gathers every group's rows and merges them
// in key order (forward and reverse, through the primary key and an
// index, with LIMIT), under a snapshot of each group; a point lookup by
// a unique key reads this site's group first and asks the others only on
// a miss; a lookup by locality value reads its home only.
func TestLocalTableReads(t *testing.T) {
	db := newLocalDB(t, map[string]TablePlacement{"instances": {Locality: "host"}})
	db.query(instancesDDL)
	var vals []string
	for i := 1; i <= 20; i++ {
		host := "paris"
		if i%3 == 0 {
			host = "rennes"
		}
		vals = append(vals, fmt.Sprintf("(%d, 'u%02d', '%s', 'n%02d')", i, i, host, 21-i))
	}
	for _, host := range []string{"paris", "rennes"} {
		var mine []string
		for _, v := range vals {
			if strings.Contains(v, host) {
				mine = append(mine, v)
			}
		}
		db.query("INSERT INTO instances VALUES " + strings.Join(mine, ", "))
	}
	require.Equal(t, 14, db.rows(2, "instances"))
	require.Equal(t, 6, db.rows(3, "instances"))

	ids := func(rows []sql.Row) []int {
		out := make([]int, len(rows))
		for i, r := range rows {
			out[i] = int(r[0].(int32))
		}
		return out
	}
	seq := func(from, to, step int) []int {
		var out []int
		for i := from; i != to+step; i += step {
			out = append(out, i)
		}
		return out
	}
	require.Equal(t, seq(1, 20, 1), ids(db.query("SELECT id FROM instances")))
	require.Equal(t, seq(20, 1, -1), ids(db.query("SELECT id FROM instances ORDER BY id DESC")))
	require.Equal(t, seq(20, 16, -1), ids(db.query("SELECT id FROM instances ORDER BY id DESC LIMIT 5")))
	require.Equal(t, seq(1, 20, 1), ids(db.query("SELECT id FROM instances ORDER BY name DESC")))
	require.NotContains(t, db.plan("SELECT id FROM instances ORDER BY name DESC"), "Sort")
	require.Equal(t, seq(11, 3, -1), ids(db.query("SELECT id FROM instances WHERE name BETWEEN 'n10' AND 'n18' ORDER BY name")))
	require.Equal(t, []int{6, 9, 12}, ids(db.query("SELECT id FROM instances WHERE id BETWEEN 5 AND 12 AND host = 'rennes' ORDER BY id")))
	require.Equal(t, []sql.Row{{int64(20)}}, db.query("SELECT COUNT(*) FROM instances"))
	require.Equal(t, []sql.Row{{int64(6)}}, db.query("SELECT COUNT(*) FROM instances WHERE name LIKE 'n%' AND host = 'rennes'"))

	// Point lookups: this site's rows without a request to rennes.
	for _, q := range []string{"SELECT id FROM instances WHERE id = 4", "SELECT id FROM instances WHERE uuid = 'u04'"} {
		require.Contains(t, db.plan(q), "IndexedTableAccess", q)
		n, rows := db.remoteCalls(q)
		require.Zero(t, n, q)
		require.Equal(t, []int{4}, ids(rows))
	}
	for _, q := range []string{"SELECT id FROM instances WHERE id = 9", "SELECT id FROM instances WHERE uuid = 'u09'", "SELECT id FROM instances WHERE id = 99"} {
		n, rows := db.remoteCalls(q)
		require.NotZero(t, n, q)
		if strings.Contains(q, "99") {
			require.Empty(t, rows)
		} else {
			require.Equal(t, []int{9}, ids(rows))
		}
	}

	// By locality value: one group only.
	n, rows := db.remoteCalls("SELECT id FROM instances WHERE host = 'paris' ORDER BY id")
	require.Zero(t, n)
	require.Len(t, rows, 14)
	before := db.keysRead(2)
	n, rows = db.remoteCalls("SELECT id FROM instances WHERE host = 'rennes' ORDER BY id")
	require.NotZero(t, n)
	require.Equal(t, []int{3, 6, 9, 12, 15, 18}, ids(rows))
	require.Equal(t, before, db.keysRead(2), "the read of rennes's rows touched paris's group")
	// An IN list: the homes of its values.
	n, rows = db.remoteCalls("SELECT id FROM instances WHERE host IN ('paris', 'compute-12') AND id < 5 ORDER BY id")
	require.NotZero(t, n)
	require.Equal(t, []int{1, 2, 4}, ids(rows))
	// A value nobody homed yet: looked for everywhere (another node may
	// know it first), and found nowhere.
	n, rows = db.remoteCalls("SELECT id FROM instances WHERE host = 'compute-77'")
	require.NotZero(t, n)
	require.Empty(t, rows)

	// Repeatable reads: each group's snapshot holds.
	r := db.session()
	require.NoError(t, db.exec(r, "START TRANSACTION"))
	got, err := queryIn(db.testDB, r, "SELECT COUNT(*) FROM instances")
	require.NoError(t, err)
	require.Equal(t, []sql.Row{{int64(20)}}, got)
	db.query("INSERT INTO instances VALUES (21, 'u21', 'rennes', 'x')")
	db.query("INSERT INTO instances VALUES (22, 'u22', 'paris', 'y')")
	db.query("DELETE FROM instances WHERE id = 3")
	got, err = queryIn(db.testDB, r, "SELECT COUNT(*), SUM(id) FROM instances")
	require.NoError(t, err)
	require.Equal(t, []sql.Row{{int64(20), float64(210)}}, got)
	require.NoError(t, db.exec(r, "COMMIT"))
	require.Equal(t, []sql.Row{{int64(21)}}, db.query("SELECT COUNT(*) FROM instances"))
	require.Eventually(t, func() bool { return db.f.held() == 0 }, 10*time.Second, time.Millisecond)
}

// TestLocalTableWrites: UPDATE and DELETE change rows where they live, at
// this site or the other; an update that keeps a row's home (same site,
// or a value nobody homed yet) goes through, one that would move the row
// to another site is refused with 1235, as is a transaction writing rows
// of two sites; a write to a locked row at the other site waits for it.
func TestLocalTableWrites(t *testing.T) {
	db := newLocalDB(t, map[string]TablePlacement{"instances": {Locality: "host", SiteUnique: []string{"uuid", "primary"}}})
	db.query(instancesDDL)
	db.query("INSERT INTO instances VALUES (1, 'u1', 'paris', 'a')")
	db.query("INSERT INTO instances VALUES (2, 'u2', 'rennes', 'b'), (3, 'u3', 'rennes', 'c')")

	require.NoError(t, db.exec(db.sess, "UPDATE instances SET name = 'bb' WHERE id = 2"))
	require.NoError(t, db.exec(db.sess, "UPDATE instances SET name = CONCAT(name, '!') WHERE host = 'rennes'"))
	require.NoError(t, db.exec(db.sess, "UPDATE instances SET name = CONCAT(name, '!') WHERE host = 'paris'"))
	requireSQLError(t, db.exec(db.sess, "UPDATE instances SET name = CONCAT(name, '?')"), 1235, "42000", "more than one group")
	require.NoError(t, db.exec(db.sess, "UPDATE instances SET host = 'compute-12' WHERE id = 3")) // rennes too
	require.NoError(t, db.exec(db.sess, "UPDATE instances SET host = 'compute-50' WHERE id = 2")) // unknown: stays
	g, ok, _ := db.homes.Lookup(context.Background(), "compute-50")
	require.True(t, ok)
	require.EqualValues(t, 3, g, "registered where the row is")
	require.Equal(t, []sql.Row{{int32(1), "paris", "a!"}, {int32(2), "compute-50", "bb!"}, {int32(3), "compute-12", "c!"}},
		db.query("SELECT id, host, name FROM instances ORDER BY id"))
	require.Equal(t, 2, db.rows(3, "instances"))

	for _, q := range []string{"UPDATE instances SET host = 'paris' WHERE id = 2", "UPDATE instances SET host = 'rennes' WHERE id = 1", "UPDATE instances SET host = 'paris' WHERE id = 3"} {
		requireSQLError(t, db.exec(db.sess, q), 1235, "42000", "changing the locality of a row that would move it between sites")
	}
	// NULL homes a row where it is written, so it does not move one.
	require.NoError(t, db.exec(db.sess, "UPDATE instances SET host = NULL WHERE id = 3"))
	require.NoError(t, db.exec(db.sess, "UPDATE instances SET host = 'compute-12' WHERE id = 3"))
	// A primary key change keeps the row where it is.
	require.NoError(t, db.exec(db.sess, "UPDATE instances SET id = 30 WHERE id = 3"))
	require.Equal(t, 2, db.rows(3, "instances"))
	require.NoError(t, db.exec(db.sess, "DELETE FROM instances WHERE id = 30"))
	require.NoError(t, db.exec(db.sess, "DELETE FROM instances WHERE name = 'a!'"))
	require.Equal(t, []sql.Row{{int32(2)}}, db.query("SELECT id FROM instances"))
	require.Equal(t, 1, db.rows(3, "instances"))
	require.Zero(t, db.rows(2, "instances"))

	// Rows of two sites in one transaction: 1235 at commit, nothing
	// written.
	s := db.session()
	require.NoError(t, db.exec(s, "START TRANSACTION"))
	require.NoError(t, db.exec(s, "INSERT INTO instances VALUES (4, 'u4', 'paris', 'd')"))
	require.NoError(t, db.exec(s, "UPDATE instances SET name = 'x' WHERE id = 2"))
	requireSQLError(t, db.exec(s, "COMMIT"), 1235, "42000", "a transaction that writes to more than one group (group 2: d.instances; group 3: d.instances)")
	require.Equal(t, []sql.Row{{int32(2), "bb!"}}, db.query("SELECT id, name FROM instances"))

	// A row locked at rennes: the second writer waits at its leader.
	w := db.session()
	require.NoError(t, db.exec(w, "START TRANSACTION"))
	require.NoError(t, db.exec(w, "UPDATE instances SET name = 'w' WHERE id = 2"))
	waits := db.parts[3].LockStats().Waits
	done := make(chan error, 1)
	go func() { done <- db.exec(db.session(), "UPDATE instances SET name = CONCAT(name, '+') WHERE id = 2") }()
	require.Eventually(t, func() bool { return db.parts[3].LockStats().Waits > waits }, 10*time.Second, time.Millisecond)
	require.NoError(t, db.exec(w, "COMMIT"))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the second UPDATE still waits")
	}
	require.Equal(t, []sql.Row{{"w+"}}, db.query("SELECT name FROM instances WHERE id = 2"))
}

// TestLocalTableUniqueAcrossSites: a unique key that does not hold the
// locality key is unique across sites, checked (under a lock in every
// group) on insert and update; one declared site_unique, or holding the
// locality column, or the AUTO_INCREMENT column, is checked at the row's
// site only and costs no request to another.
func TestLocalTableUniqueAcrossSites(t *testing.T) {
	db := newLocalDB(t, map[string]TablePlacement{
		"instances": {Locality: "host"},
		"ports":     {Locality: "host", SiteUnique: []string{"mac"}},
		"volumes":   {Locality: "host"},
	})
	db.query(instancesDDL)
	db.query("CREATE TABLE ports (id INT PRIMARY KEY AUTO_INCREMENT, host VARCHAR(20), mac VARCHAR(20), slot INT, UNIQUE KEY um (mac), UNIQUE KEY uhs (host, slot))")
	db.query("CREATE TABLE volumes (id INT PRIMARY KEY AUTO_INCREMENT, host VARCHAR(20), name VARCHAR(20), UNIQUE KEY un (name))")
	db.query("INSERT INTO instances VALUES (1, 'u1', 'paris', 'a')")
	db.query("INSERT INTO instances VALUES (2, 'u2', 'rennes', 'b')")

	dup := func(q string) {
		t.Helper()
		err := db.exec(db.sess, q)
		require.Error(t, err, q)
		err = sql.UnwrapError(err)
		require.True(t, sql.ErrUniqueKeyViolation.Is(err) || sql.ErrPrimaryKeyViolation.Is(err), "%s: %v", q, err)
	}
	dup("INSERT INTO instances VALUES (3, 'u2', 'paris', 'c')")  // uuid at rennes
	dup("INSERT INTO instances VALUES (4, 'u1', 'rennes', 'c')") // uuid at paris
	dup("INSERT INTO instances VALUES (2, 'u9', 'paris', 'c')")  // primary key at rennes
	dup("UPDATE instances SET uuid = 'u2' WHERE id = 1")
	require.NoError(t, db.exec(db.sess, "INSERT INTO instances VALUES (3, 'u3', 'paris', 'c')"))
	require.NoError(t, db.exec(db.sess, "UPDATE instances SET uuid = 'u33' WHERE id = 3"))
	// A value freed at one site can be taken at the other.
	require.NoError(t, db.exec(db.sess, "DELETE FROM instances WHERE id = 2"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO instances VALUES (2, 'u2', 'paris', 'b')"))
	require.Equal(t, 3, db.rows(2, "instances"))
	require.Zero(t, db.rows(3, "instances"))
	// INSERT IGNORE skips, ON DUPLICATE KEY UPDATE changes the row that
	// holds the value, where it lives.
	db.query("INSERT INTO instances VALUES (5, 'u5', 'rennes', 'e')")
	require.NoError(t, db.exec(db.sess, "INSERT IGNORE INTO instances VALUES (6, 'u5', 'paris', 'f')"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO instances VALUES (7, 'u5', 'paris', 'g') ON DUPLICATE KEY UPDATE name = 'upserted'"))
	require.Equal(t, []sql.Row{{int32(5), "rennes", "upserted"}}, db.query("SELECT id, host, name FROM instances WHERE uuid = 'u5'"))
	require.Equal(t, 1, db.rows(3, "instances"))

	// Checked at the row's site only: no lock or read at rennes (once
	// the sequence has resumed above the values stored at every site,
	// which it reads when it starts).
	db.query("INSERT INTO ports (host, mac, slot) VALUES ('paris', 'm0', 0)")
	locks := db.parts[3].LockStats().Acquired
	before := db.f.calls.Load()
	db.query("INSERT INTO ports (host, mac, slot) VALUES ('paris', 'm1', 1), ('paris', 'm2', 2)")
	require.Equal(t, before, db.f.calls.Load())
	require.Equal(t, locks, db.parts[3].LockStats().Acquired)
	dup("INSERT INTO ports (host, mac, slot) VALUES ('paris', 'm1', 3)")
	dup("INSERT INTO ports (host, mac, slot) VALUES ('paris', 'm3', 1)")
	// Declared site_unique: the same value at another site is not seen,
	// and a lookup by the key, answered at this site first, finds this
	// site's row only (the declaration says there is no other).
	db.query("INSERT INTO ports (host, mac, slot) VALUES ('rennes', 'm1', 1)")
	require.Equal(t, []sql.Row{{"paris"}}, db.query("SELECT host FROM ports WHERE mac = 'm1'"))
	require.Equal(t, []sql.Row{{"paris"}, {"rennes"}}, db.query("SELECT host FROM ports WHERE CONCAT(mac) = 'm1' ORDER BY host"))

	// Checked across sites: one lock in each group.
	db.query("INSERT INTO volumes (host, name) VALUES ('rennes', 'v1')")
	locks = db.parts[3].LockStats().Acquired
	dup("INSERT INTO volumes (host, name) VALUES ('paris', 'v1')")
	require.Greater(t, db.parts[3].LockStats().Acquired, locks)
}

// TestLocalTableUniqueRace: two sessions insert the same unique value at
// two sites at once; the locks taken in every group in one order make one
// of them wait for the other and then see its row: exactly one succeeds.
func TestLocalTableUniqueRace(t *testing.T) {
	db := newLocalDB(t, map[string]TablePlacement{"volumes": {Locality: "host"}})
	db.query("CREATE TABLE volumes (id INT PRIMARY KEY AUTO_INCREMENT, host VARCHAR(20), name VARCHAR(20), UNIQUE KEY un (name))")
	for round := 0; round < 20; round++ {
		a, b := db.session(), db.session()
		require.NoError(t, db.exec(a, "START TRANSACTION"))
		require.NoError(t, db.exec(b, "START TRANSACTION"))
		name := fmt.Sprintf("v%d", round)
		ea, eb := make(chan error, 1), make(chan error, 1)
		go func() { ea <- db.exec(a, fmt.Sprintf("INSERT INTO volumes (host, name) VALUES ('paris', '%s')", name)) }()
		go func() {
			eb <- db.exec(b, fmt.Sprintf("INSERT INTO volumes (host, name) VALUES ('rennes', '%s')", name))
		}()
		// One gets the value's locks; the other waits for them.
		var winner, loser *Session
		var lost chan error
		select {
		case err := <-ea:
			require.NoError(t, err)
			winner, loser, lost = a, b, eb
		case err := <-eb:
			require.NoError(t, err)
			winner, loser, lost = b, a, ea
		}
		select {
		case err := <-lost:
			t.Fatalf("both inserted %s while neither committed: %v", name, err)
		default:
		}
		require.NoError(t, db.exec(winner, "COMMIT"))
		second := <-lost
		require.Error(t, second)
		require.True(t, sql.ErrUniqueKeyViolation.Is(sql.UnwrapError(second)), "%v", second)
		require.NoError(t, db.exec(loser, "ROLLBACK"))
		require.Equal(t, []sql.Row{{int64(1)}}, db.query(fmt.Sprintf("SELECT COUNT(*) FROM volumes WHERE name = '%s'", name)))
	}
}

// TestLocalTableCutOff: with rennes unreachable, reads that need it fail
// with 1047 (never with some of the rows), while this site's rows are
// still read by key, by locality value, and written (keys checked at this
// site only).
func TestLocalTableCutOff(t *testing.T) {
	db := newLocalDB(t, map[string]TablePlacement{"instances": {Locality: "host", SiteUnique: []string{"primary", "uuid"}}})
	db.query(instancesDDL)
	db.query("INSERT INTO instances VALUES (1, 'u1', 'paris', 'a')")
	db.query("INSERT INTO instances VALUES (2, 'u2', 'rennes', 'b')")
	db.f.down.Store(true)
	for _, q := range []string{
		"SELECT * FROM instances",
		"SELECT COUNT(*) FROM instances",
		"SELECT * FROM instances WHERE id = 2",
		"SELECT * FROM instances WHERE host = 'rennes'",
		"SELECT * FROM instances ORDER BY name DESC",
		"UPDATE instances SET name = 'x' WHERE id = 2",
		"INSERT INTO instances VALUES (3, 'u3', 'rennes', 'c')",
	} {
		requireSQLError(t, db.exec(db.sess, q), 1047, "08S01", "data unavailable")
	}
	require.Equal(t, []sql.Row{{int32(1), "a"}}, db.query("SELECT id, name FROM instances WHERE id = 1"))
	require.Equal(t, []sql.Row{{int32(1), "a"}}, db.query("SELECT id, name FROM instances WHERE uuid = 'u1'"))
	require.Equal(t, []sql.Row{{int32(1), "a"}}, db.query("SELECT id, name FROM instances WHERE host = 'paris'"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO instances VALUES (4, 'u4', 'paris', 'd')"))
	require.NoError(t, db.exec(db.sess, "UPDATE instances SET name = 'dd' WHERE id = 4"))
	db.f.down.Store(false)
	require.Equal(t, []sql.Row{{int32(1)}, {int32(2)}, {int32(4)}}, db.query("SELECT id FROM instances ORDER BY id"))

	// A node that does not know the sites (no Homes) reaches no row of a
	// local table, rather than reading none.
	cfg := db.config()
	cfg.Homes = nil
	other, err := NewProviderOn(db.set, cfg)
	require.NoError(t, err)
	t.Cleanup(other.Close)
	s := other.NewSession(sql.NewBaseSession())
	s.SetCurrentDatabase("d")
	odb := &testDB{t: t, eng: db.engs[1], prov: other, e: newEngine(other), sess: s}
	for _, q := range []string{"SELECT * FROM instances", "SELECT * FROM instances WHERE id = 1", "INSERT INTO instances VALUES (5, 'u5', NULL, 'e')"} {
		requireSQLError(t, odb.exec(s, q), 1047, "08S01", "data unavailable")
	}
}

// TestLocalTableDDL: DDL of a local table works in every site's group:
// CREATE INDEX builds each group's entries from its rows (a unique index
// checked across sites), a rebuild copies each row into its group, RENAME
// keeps it, TRUNCATE and DROP leave every group's range to the cleaner;
// dropping the locality column is refused.
func TestLocalTableDDL(t *testing.T) {
	db := newLocalDB(t, map[string]TablePlacement{"instances": {Locality: "host"}, "k": {}})
	db.query("CREATE TABLE instances (id INT PRIMARY KEY, host VARCHAR(20), name VARCHAR(20), v INT)")
	db.query("INSERT INTO instances VALUES (1, 'paris', 'a', 1)")
	db.query("INSERT INTO instances VALUES (2, 'rennes', 'b', 1), (3, 'rennes', 'a', 2)")
	id := db.id("instances")

	require.NoError(t, db.exec(db.sess, "CREATE INDEX iv ON instances (v)"))
	require.Equal(t, []sql.Row{{int32(1)}, {int32(2)}}, db.query("SELECT id FROM instances WHERE v = 1 ORDER BY id"))
	require.Contains(t, db.plan("SELECT id FROM instances WHERE v = 1"), "IndexedTableAccess")
	err := db.exec(db.sess, "CREATE UNIQUE INDEX un ON instances (name)") // 'a' at both sites
	require.Error(t, err)
	require.Contains(t, strings.ToLower(err.Error()), "duplicate")
	require.NoError(t, db.exec(db.sess, "CREATE UNIQUE INDEX uv ON instances (host, v)"))
	for _, g := range []uint64{2, 3} {
		mk, ok := db.marker(g, id)
		require.True(t, ok)
		require.Len(t, mk.indexes, 2, "group %d", g)
	}

	require.NoError(t, db.exec(db.sess, "ALTER TABLE instances ADD COLUMN extra INT DEFAULT 7"))
	nid := db.id("instances")
	require.NotEqual(t, id, nid)
	require.Equal(t, 1, db.rows(2, "instances"))
	require.Equal(t, 2, db.rows(3, "instances"))
	require.Equal(t, []sql.Row{{int32(1), "paris", int32(7)}, {int32(2), "rennes", int32(7)}, {int32(3), "rennes", int32(7)}},
		db.query("SELECT id, host, extra FROM instances ORDER BY id"))
	db.awaitGoneFrom(2, id)
	db.awaitGoneFrom(3, id)
	requireSQLError(t, db.exec(db.sess, "ALTER TABLE instances DROP COLUMN host"), 1235, "42000", "the column that homes the rows")
	// Rebuilds through the engine's copy and through fogdb's own.
	for _, ddl := range []string{"ALTER TABLE instances MODIFY COLUMN name VARCHAR(30)", "ALTER TABLE instances CONVERT TO CHARACTER SET latin1"} {
		require.NoError(t, db.exec(db.sess, ddl))
		require.NotEqual(t, nid, db.id("instances"), ddl)
		nid = db.id("instances")
		require.Equal(t, 1, db.rows(2, "instances"), ddl)
		require.Equal(t, 2, db.rows(3, "instances"), ddl)
		require.Equal(t, []sql.Row{{int32(2)}, {int32(3)}}, db.query("SELECT id FROM instances WHERE host = 'rennes' ORDER BY id"), ddl)
	}

	require.NoError(t, db.exec(db.sess, "RENAME TABLE instances TO servers"))
	require.NoError(t, db.exec(db.sess, "UPDATE servers SET name = 'c' WHERE id = 3"))
	require.NoError(t, db.exec(db.sess, "TRUNCATE TABLE servers"))
	require.Equal(t, []sql.Row{{int64(0)}}, db.query("SELECT COUNT(*) FROM servers"))
	db.awaitGoneFrom(2, nid)
	db.awaitGoneFrom(3, nid)
	db.query("INSERT INTO servers VALUES (1, 'rennes', 'a', 1, 1)")
	tid := db.id("servers")
	require.NoError(t, db.exec(db.sess, "DROP TABLE servers"))
	db.awaitGoneFrom(2, tid)
	db.awaitGoneFrom(3, tid)

	// A keyless local table: hidden row IDs from the catalog group's
	// sequence; a DELETE finds each row where it lives.
	db.query("CREATE TABLE k (v INT)")
	db.query("INSERT INTO k VALUES (1), (2), (2)")
	require.NoError(t, db.exec(db.sess, "DELETE FROM k WHERE v = 2"))
	require.Equal(t, []sql.Row{{int32(1)}}, db.query("SELECT v FROM k"))
	require.NoError(t, db.exec(db.sess, "DELETE FROM k"))
	require.Empty(t, db.query("SELECT v FROM k"))
}

// TestLocalTableForeignKeys: a child's foreign key to a local parent is
// checked wherever the parent lives; the child lands with its parent, and
// a cascade from the parent reaches it there.
func TestLocalTableForeignKeys(t *testing.T) {
	db := newLocalDB(t, map[string]TablePlacement{
		"instances":      {Locality: "host", SiteUnique: []string{"primary", "uuid"}},
		"instance_extra": {Parent: &ParentRef{Table: "instances", Column: "uuid", Via: "instance_uuid"}, SiteUnique: []string{"primary"}},
	})
	db.query(instancesDDL)
	db.query("CREATE TABLE instance_extra (id INT PRIMARY KEY, instance_uuid VARCHAR(36), data VARCHAR(20), FOREIGN KEY (instance_uuid) REFERENCES instances (uuid) ON DELETE CASCADE)")
	db.query("INSERT INTO instances VALUES (1, 'u1', 'paris', 'a')")
	db.query("INSERT INTO instances VALUES (2, 'u2', 'rennes', 'b')")
	db.query("INSERT INTO instance_extra VALUES (1, 'u1', 'x')")
	db.query("INSERT INTO instance_extra VALUES (2, 'u2', 'y')")
	require.Equal(t, 1, db.rows(2, "instance_extra"))
	require.Equal(t, 1, db.rows(3, "instance_extra"))
	err := db.exec(db.sess, "INSERT INTO instance_extra VALUES (3, 'u9', 'z')")
	require.Error(t, err)
	require.True(t, sql.ErrForeignKeyChildViolation.Is(sql.UnwrapError(err)), "%v", err)

	require.NoError(t, db.exec(db.sess, "DELETE FROM instances WHERE id = 2"))
	require.Zero(t, db.rows(3, "instance_extra"))
	require.Zero(t, db.rows(3, "instances"))
	require.Equal(t, []sql.Row{{int32(1), "u1"}}, db.query("SELECT e.id, i.uuid FROM instance_extra e JOIN instances i ON i.uuid = e.instance_uuid"))
}

// TestLocalTableWithoutAutoIncrement: SHOW CREATE TABLE asks every table
// for its next AUTO_INCREMENT value, one without such a column too. A
// local table's first ask in a term reads the largest value stored at its
// site, which for a table without the column is no value at all (Nova's
// tags, reflected by archive_deleted_rows once the site has tags, used to
// fail with a panic there).
func TestLocalTableWithoutAutoIncrement(t *testing.T) {
	db := newLocalDB(t, map[string]TablePlacement{
		"instances": {Locality: "host", SiteUnique: []string{"uuid"}},
		"tags":      {Parent: &ParentRef{Table: "instances", Column: "uuid", Via: "resource_id"}},
	})
	db.query(instancesDDL)
	db.query("CREATE TABLE tags (resource_id VARCHAR(36) NOT NULL, tag VARCHAR(80) NOT NULL, PRIMARY KEY (resource_id, tag), KEY tags_tag_idx (tag))")
	db.query("INSERT INTO instances VALUES (1, 'u1', 'paris', 'a'), (2, 'u2', 'paris', 'b')")
	db.query("INSERT INTO tags VALUES ('u1', 'x'), ('u2', 'y')")
	require.Equal(t, 2, db.rows(2, "tags"))
	rows := db.query("SHOW CREATE TABLE tags")
	require.Len(t, rows, 1)
	require.NotContains(t, rows[0][1], "AUTO_INCREMENT")
	db.query("INSERT INTO tags VALUES ('u1', 'z')")
	require.Equal(t, []sql.Row{{int64(3)}}, db.query("SELECT COUNT(*) FROM tags"))
}

// TestLocalTableShowsNoAutoIncrementWithoutColumn: at a site whose
// stride starts above 1, a local table without an AUTO_INCREMENT column
// shows no AUTO_INCREMENT table option, as in MySQL, and
// information_schema.tables has NULL for it; a table with the column
// shows the site's next value once it has rows.
func TestLocalTableShowsNoAutoIncrementWithoutColumn(t *testing.T) {
	local := map[string]TablePlacement{
		"instances": {Locality: "host", SiteUnique: []string{"uuid"}},
		"tags":      {Parent: &ParentRef{Table: "instances", Column: "uuid", Via: "resource_id"}},
		"actions":   {},
	}
	// This node is at rennes (values 2, 66, 130...), and hosts its group.
	homes := newFakeHomes()
	homes.local = 3
	db := newPartsDBWithConfig(t, map[string]uint64{}, func(cfg *Config) {
		cfg.Homes = homes
		place := cfg.PlaceTable
		cfg.PlaceTable = func(ctx *sql.Context, d, table string) (TablePlacement, error) {
			if pl, ok := local[strings.ToLower(table)]; ok {
				pl.Local = true
				return pl, nil
			}
			return place(ctx, d, table)
		}
	})
	rowsIn := func(g uint64, name string) int {
		p := keys.IndexPrefix(db.id(name), primaryIndexID)
		return countKeys(t, db.engs[g], p, keys.PrefixEnd(p))
	}
	db.query(instancesDDL)
	db.query("CREATE TABLE tags (resource_id VARCHAR(36) NOT NULL, tag VARCHAR(80) NOT NULL, PRIMARY KEY (resource_id, tag))")
	db.query("CREATE TABLE actions (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	db.query("INSERT INTO instances VALUES (1, 'u1', 'rennes', 'a')")
	db.query("INSERT INTO tags VALUES ('u1', 'x')")
	db.query("INSERT INTO actions (v) VALUES (1)")
	require.Equal(t, 1, rowsIn(3, "tags"))
	require.Equal(t, []sql.Row{{int32(2)}}, db.query("SELECT id FROM actions"))

	for _, table := range []string{"instances", "tags"} {
		rows := db.query("SHOW CREATE TABLE " + table)
		require.NotContains(t, rows[0][1], "AUTO_INCREMENT", table)
		require.Equal(t, []sql.Row{{nil}}, db.query("SELECT auto_increment FROM information_schema.tables WHERE table_schema = 'd' AND table_name = '"+table+"'"), table)
	}
	rows := db.query("SHOW CREATE TABLE actions")
	require.Contains(t, rows[0][1], "AUTO_INCREMENT=66")
}
