package sqlfront

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// partsDB is a provider over the parts of three groups, each its own kv
// engine and lock table: group 1 holds the catalog, and PlaceTable puts
// the tables named in place in group 2 or 3 (others stay in group 1).
type partsDB struct {
	*testDB
	engs  map[uint64]*kv.Engine
	parts map[uint64]*LocalStore // each group's store (behind the fake leader, for a remote group)
	// remote are the groups this node does not host, each reached
	// through a RemotePart over a fake leader.
	remote map[uint64]*fakeRemote
	set    *PartSet
	place  map[string]uint64
	tweak  func(*Config) // changes to config(), if any
}

func newPartsDB(t *testing.T, place map[string]uint64) *partsDB {
	return newPartsDBWith(t, place)
}

// newPartsDBWith is newPartsDB with the groups remote reached through
// RemotePart.
func newPartsDBWith(t *testing.T, place map[string]uint64, remote ...uint64) *partsDB {
	return newPartsDBWithConfig(t, place, nil, remote...)
}

// newPartsDBWithConfig is newPartsDBWith with tweak applied to the
// provider's configuration.
func newPartsDBWithConfig(t *testing.T, place map[string]uint64, tweak func(*Config), remote ...uint64) *partsDB {
	db := &partsDB{engs: map[uint64]*kv.Engine{}, parts: map[uint64]*LocalStore{}, remote: map[uint64]*fakeRemote{}, place: place, tweak: tweak}
	others := map[uint64]Part{}
	for g := uint64(1); g <= 3; g++ {
		opts := kv.DefaultOptions(filepath.Join(t.TempDir(), fmt.Sprintf("group%d.db", g)))
		opts.GCInterval = 0
		eng, err := kv.Open(opts)
		require.NoError(t, err)
		t.Cleanup(func() { eng.Close() })
		db.engs[g] = eng
		db.parts[g] = NewLocalStore(eng)
		others[g] = db.parts[g]
	}
	for _, g := range remote {
		db.remote[g] = newFakeRemote(db.parts[g])
		others[g] = NewRemotePart(db.remote[g])
	}
	db.set = NewPartSet(db.parts[1], others)
	prov, err := NewProviderOn(db.set, db.config())
	require.NoError(t, err)
	t.Cleanup(prov.Close)
	db.testDB = &testDB{t: t, eng: db.engs[1], prov: prov, e: newEngine(prov)}
	db.sess = prov.NewSession(sql.NewBaseSession())
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	return db
}

func (db *partsDB) config() Config {
	cfg := DefaultConfig()
	cfg.PlaceTable = func(_ *sql.Context, _, table string) (TablePlacement, error) {
		return TablePlacement{Group: db.place[strings.ToLower(table)]}, nil
	}
	if db.tweak != nil {
		db.tweak(&cfg)
	}
	return cfg
}

func (db *partsDB) session() *Session {
	s := db.prov.NewSession(sql.NewBaseSession())
	s.SetCurrentDatabase("d")
	return s
}

// countKeys counts the live keys of eng in [start, end).
func countKeys(t *testing.T, eng *kv.Engine, start, end []byte) int {
	t.Helper()
	it := eng.NewIterator(start, end, kv.MaxTimestamp, false)
	defer it.Close()
	n := 0
	for it.Next() {
		n++
	}
	require.NoError(t, it.Err())
	return n
}

// tableKeys counts the keys of table ID id in group g's engine.
func (db *partsDB) tableKeys(g, id uint64) int {
	p := keys.TablePrefix(id)
	return countKeys(db.t.(*testing.T), db.engs[g], p, keys.PrefixEnd(p))
}

// catalogKeys counts the catalog keys in group g's engine.
func (db *partsDB) catalogKeys(g uint64) int {
	return countKeys(db.t.(*testing.T), db.engs[g], []byte{keys.PrefixCatalog}, []byte{keys.PrefixCatalog + 1})
}

func (db *partsDB) id(name string) uint64 { return tableID(db.t.(*testing.T), db.testDB, name) }

// marker reads table ID id's definition marker in group g.
func (db *partsDB) marker(g, id uint64) (defMarker, bool) {
	v, err := db.engs[g].Get(markerKey(id), kv.MaxTimestamp)
	require.NoError(db.t, err)
	if !v.Exists {
		return defMarker{}, false
	}
	mk, err := decodeMarker(v.Data)
	require.NoError(db.t, err)
	return mk, true
}

// awaitGoneFrom waits until table ID id has no keys in group g's part and
// no cleanup record in the catalog.
func (db *partsDB) awaitGoneFrom(g, id uint64) {
	db.t.Helper()
	require.Eventually(db.t, func() bool {
		v, err := db.engs[1].Get(dropKey(id, 0), kv.MaxTimestamp)
		require.NoError(db.t, err)
		return !v.Exists && db.tableKeys(g, id) == 0
	}, 30*time.Second, 5*time.Millisecond, "keys of table ID %d still stored in group %d", id, g)
}

// TestPlacedTableKeepsItsKeysInItsPart: the rows, index entries and
// definition marker of a table placed in group 2 are stored in group 2's
// engine only; the catalog (its definition included) in group 1's only.
// Reads by key, by unique and secondary index and by scan, locking
// updates, unique checks and deletes all work there.
func TestPlacedTableKeepsItsKeysInItsPart(t *testing.T) {
	db := newPartsDB(t, map[string]uint64{"a": 2})
	db.query("CREATE TABLE a (id INT PRIMARY KEY, name VARCHAR(20), v INT, UNIQUE KEY un (name), KEY kv (v))")
	db.query("CREATE TABLE c (id INT PRIMARY KEY, v INT)")
	db.query("INSERT INTO a VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 10)")
	db.query("INSERT INTO c VALUES (1, 1)")
	ida, idc := db.id("a"), db.id("c")

	// 3 rows, 3 unique entries, 3 secondary entries and the marker.
	require.Equal(t, 10, db.tableKeys(2, ida))
	require.Zero(t, db.tableKeys(1, ida))
	require.Zero(t, db.tableKeys(3, ida))
	require.Equal(t, 1, db.tableKeys(1, idc))
	require.Zero(t, db.tableKeys(2, idc))
	require.Zero(t, db.catalogKeys(2))
	require.Zero(t, db.catalogKeys(3))
	require.NotZero(t, db.catalogKeys(1))
	mk, ok := db.marker(2, ida)
	require.True(t, ok)
	require.Equal(t, db.prov.table("d", "a").version, mk.version)
	require.Len(t, mk.indexes, 2)

	// The definition records the group; a catalog table's says nothing,
	// as definitions stored before placement.
	def := func(name string) string {
		v, err := db.engs[1].Get(keys.CatalogKey(catTable, []byte("d"), []byte(name)), kv.MaxTimestamp)
		require.NoError(t, err)
		require.True(t, v.Exists)
		return string(v.Data)
	}
	require.Contains(t, def("a"), `"group":2`)
	require.NotContains(t, def("c"), `"group"`)

	require.Equal(t, []sql.Row{{int32(1), "one", int32(10)}, {int32(2), "two", int32(20)}, {int32(3), "three", int32(10)}},
		db.query("SELECT * FROM a ORDER BY id"))
	require.Contains(t, db.plan("SELECT id FROM a WHERE name = 'two'"), "IndexedTableAccess")
	require.Equal(t, []sql.Row{{int32(2)}}, db.query("SELECT id FROM a WHERE name = 'two'"))
	require.Contains(t, db.plan("SELECT id FROM a WHERE v = 10"), "IndexedTableAccess")
	require.Equal(t, []sql.Row{{int32(1)}, {int32(3)}}, db.query("SELECT id FROM a WHERE v = 10 ORDER BY id"))
	require.Equal(t, []sql.Row{{int32(3)}}, db.query("SELECT id FROM a WHERE id = 3"))

	// A duplicate of the unique key or of the primary key.
	for _, q := range []string{"INSERT INTO a VALUES (4, 'two', 0)", "INSERT INTO a VALUES (3, 'four', 0)"} {
		err := db.exec(db.sess, q)
		require.Error(t, err, q)
		require.Contains(t, strings.ToLower(err.Error()), "duplicate", q)
	}
	require.NoError(t, db.exec(db.sess, "UPDATE a SET v = v + 1, name = 'uno' WHERE id = 1"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO a VALUES (4, 'one', 11)")) // the freed value
	require.NoError(t, db.exec(db.sess, "DELETE FROM a WHERE v = 20"))
	require.Equal(t, []sql.Row{{int32(1), "uno", int32(11)}, {int32(3), "three", int32(10)}, {int32(4), "one", int32(11)}},
		db.query("SELECT * FROM a ORDER BY id"))
	require.Equal(t, []sql.Row{{int32(1)}, {int32(4)}}, db.query("SELECT id FROM a WHERE v = 11 ORDER BY id"))
	require.Equal(t, 10, db.tableKeys(2, ida))
	require.Zero(t, db.tableKeys(1, ida))
	require.Zero(t, db.catalogKeys(2))

	// A keyless placed table: hidden row IDs come from the sequence its
	// own group keeps, rows go to the table's part.
	db.place["k"] = 3
	db.query("CREATE TABLE k (v INT)")
	db.query("INSERT INTO k VALUES (1), (2)")
	require.NoError(t, db.exec(db.sess, "DELETE FROM k WHERE v = 1"))
	require.Equal(t, []sql.Row{{int32(2)}}, db.query("SELECT v FROM k"))
	require.Equal(t, 3, db.tableKeys(3, db.id("k"))) // the row, the marker and the row-ID mark
	require.Zero(t, db.tableKeys(1, db.id("k")))
}

// TestPlacedTableDDL: TRUNCATE, a rebuild, CREATE and DROP INDEX, RENAME
// and DROP TABLE keep a placed table in its group: new table IDs and
// index entries are written in its part, and the cleaner removes the old
// ones from there.
func TestPlacedTableDDL(t *testing.T) {
	db := newPartsDB(t, map[string]uint64{"a": 2})
	db.query("CREATE TABLE a (id INT PRIMARY KEY, name VARCHAR(20), v INT, UNIQUE KEY un (name))")
	db.query("INSERT INTO a VALUES (1, 'one', 10), (2, 'two', 20)")

	// A rebuild copies into a new ID in group 2.
	old := db.id("a")
	require.NoError(t, db.exec(db.sess, "ALTER TABLE a ADD COLUMN extra INT DEFAULT 7"))
	id := db.id("a")
	require.NotEqual(t, old, id)
	require.EqualValues(t, 2, db.prov.table("d", "a").group())
	require.Equal(t, []sql.Row{{int32(1), "one", int32(10), int32(7)}, {int32(2), "two", int32(20), int32(7)}},
		db.query("SELECT * FROM a ORDER BY id"))
	require.Equal(t, 5, db.tableKeys(2, id)) // 2 rows, 2 entries, the marker
	db.awaitGoneFrom(2, old)
	_, ok := db.marker(2, old)
	require.False(t, ok)

	// CREATE INDEX builds its entries in group 2.
	require.NoError(t, db.exec(db.sess, "CREATE INDEX kv ON a (v)"))
	require.Equal(t, 7, db.tableKeys(2, id))
	require.Contains(t, db.plan("SELECT id FROM a WHERE v = 20"), "IndexedTableAccess")
	require.Equal(t, []sql.Row{{int32(2)}}, db.query("SELECT id FROM a WHERE v = 20"))
	mk, ok := db.marker(2, id)
	require.True(t, ok)
	require.Len(t, mk.indexes, 2)
	require.Equal(t, db.prov.table("d", "a").version, mk.version)
	err := db.exec(db.sess, "CREATE UNIQUE INDEX uv ON a (extra)")
	require.Error(t, err) // both rows have extra = 7
	require.Equal(t, 7, db.tableKeys(2, id))

	// DROP INDEX leaves its entries to the cleaner, in group 2.
	require.NoError(t, db.exec(db.sess, "DROP INDEX kv ON a"))
	require.Eventually(t, func() bool { return db.tableKeys(2, id) == 5 }, 30*time.Second, 5*time.Millisecond)

	// RENAME keeps the ID and the group; the marker follows the new
	// definition.
	require.NoError(t, db.exec(db.sess, "RENAME TABLE a TO b"))
	require.Equal(t, id, db.id("b"))
	mk, _ = db.marker(2, id)
	require.Equal(t, db.prov.table("d", "b").version, mk.version)
	require.NoError(t, db.exec(db.sess, "INSERT INTO b VALUES (3, 'three', 30, 0)"))

	// TRUNCATE moves to a new, empty ID in group 2.
	require.NoError(t, db.exec(db.sess, "TRUNCATE TABLE b"))
	tid := db.id("b")
	require.NotEqual(t, id, tid)
	require.Equal(t, []sql.Row{{int64(0)}}, db.query("SELECT COUNT(*) FROM b"))
	require.Equal(t, 1, db.tableKeys(2, tid)) // the marker
	db.awaitGoneFrom(2, id)
	require.NoError(t, db.exec(db.sess, "INSERT INTO b VALUES (1, 'one', 1, 1)"))

	// DROP TABLE: the cleaner removes the range from group 2.
	require.NoError(t, db.exec(db.sess, "DROP TABLE b"))
	db.awaitGoneFrom(2, tid)
	require.Zero(t, db.catalogKeys(2))
	for g := uint64(1); g <= 3; g++ {
		require.Zero(t, countKeys(t, db.engs[g], []byte{keys.PrefixTable}, []byte{keys.PrefixTable + 1}), "group %d", g)
	}

	// The definitions load back from the catalog with their group.
	db.query("CREATE TABLE a (id INT PRIMARY KEY)")
	db.query("INSERT INTO a VALUES (1)")
	prov, err := NewProviderOn(db.set, db.config())
	require.NoError(t, err)
	defer prov.Close()
	require.EqualValues(t, 2, prov.table("d", "a").group())
}

// TestTransactionWritingTwoGroupsRefused: a transaction that writes tables
// of two groups is refused at commit with 1235, writing nothing anywhere,
// and can be rolled back; one that writes one group and reads (even with
// locks) others commits to that group.
func TestTransactionWritingTwoGroupsRefused(t *testing.T) {
	db := newPartsDB(t, map[string]uint64{"a": 2, "b": 3})
	db.query("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
	db.query("CREATE TABLE b (id INT PRIMARY KEY, v INT)")
	db.query("CREATE TABLE c (id INT PRIMARY KEY, v INT)")
	db.query("INSERT INTO a VALUES (1, 1)")
	db.query("INSERT INTO b VALUES (1, 1)")
	db.query("INSERT INTO c VALUES (1, 1)")
	snapshot := func() map[uint64]int {
		n := map[uint64]int{}
		for g, e := range db.engs {
			n[g] = countKeys(t, e, []byte{keys.PrefixTable}, []byte{keys.PrefixTable + 1})
		}
		return n
	}
	before := snapshot()
	contents := func() []sql.Row {
		return db.query("SELECT a.v, b.v, c.v FROM a, b, c WHERE a.id = 1 AND b.id = 1 AND c.id = 1")
	}
	require.Equal(t, []sql.Row{{int32(1), int32(1), int32(1)}}, contents())

	s := db.session()
	for _, second := range []string{"UPDATE b SET v = 2 WHERE id = 1", "UPDATE c SET v = 2 WHERE id = 1"} {
		require.NoError(t, db.exec(s, "START TRANSACTION"))
		require.NoError(t, db.exec(s, "INSERT INTO a VALUES (2, 2)"))
		require.NoError(t, db.exec(s, "UPDATE a SET v = 2 WHERE id = 1"))
		require.NoError(t, db.exec(s, second))
		err := db.exec(s, "COMMIT")
		requireSQLError(t, err, 1235, "42000", "a transaction that writes to more than one group")
		require.Contains(t, err.Error(), "d.a")
		require.NoError(t, db.exec(s, "ROLLBACK"))
		require.Equal(t, before, snapshot(), second)
		require.Equal(t, []sql.Row{{int32(1), int32(1), int32(1)}}, contents())
		require.Equal(t, []sql.Row{{int64(1)}}, db.query("SELECT COUNT(*) FROM a"))
	}

	// One statement writing two groups, in autocommit.
	err := db.exec(s, "UPDATE a JOIN b ON a.id = b.id SET a.v = 5, b.v = 5")
	requireSQLError(t, err, 1235, "42000", "more than one group")
	require.Equal(t, before, snapshot())
	require.Equal(t, []sql.Row{{int32(1), int32(1), int32(1)}}, contents())

	// Writing group 2 while reading groups 1 and 3, with and without locks.
	require.NoError(t, db.exec(s, "START TRANSACTION"))
	require.NoError(t, db.exec(s, "SELECT v FROM b WHERE id = 1 FOR UPDATE"))
	require.NoError(t, db.exec(s, "UPDATE a SET v = (SELECT v FROM c WHERE id = 1) + (SELECT v FROM b WHERE id = 1) WHERE id = 1"))
	id := s.txnIDForTest()
	require.NotZero(t, db.parts[3].HeldBy(id))
	require.NoError(t, db.exec(s, "COMMIT"))
	require.Equal(t, []sql.Row{{int32(2), int32(1), int32(1)}}, contents())
	// Its locks in every group went with the transaction.
	for g, p := range db.parts {
		require.Zero(t, p.HeldBy(id), "group %d", g)
	}
}

// txnIDForTest is the ID of the session's open transaction, or 0.
func (s *Session) txnIDForTest() (id lock.TxnID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.txn != nil {
		id = s.txn.id
	}
	return id
}

// TestReadOnlyJoinAcrossGroups: a read-only transaction joins tables of
// three groups; it takes its snapshot of each group at its first read
// there, and keeps it.
func TestReadOnlyJoinAcrossGroups(t *testing.T) {
	db := newPartsDB(t, map[string]uint64{"a": 2, "b": 3})
	db.query("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
	db.query("CREATE TABLE b (id INT PRIMARY KEY, a_id INT, KEY ka (a_id))")
	db.query("CREATE TABLE c (id INT PRIMARY KEY, name VARCHAR(10))")
	db.query("INSERT INTO a VALUES (1, 10), (2, 20)")
	db.query("INSERT INTO b VALUES (1, 1), (2, 1), (3, 2)")
	db.query("INSERT INTO c VALUES (10, 'ten'), (20, 'twenty')")
	q := "SELECT b.id, a.v, c.name FROM b JOIN a ON a.id = b.a_id JOIN c ON c.id = a.v ORDER BY b.id"
	want := []sql.Row{{int32(1), int32(10), "ten"}, {int32(2), int32(10), "ten"}, {int32(3), int32(20), "twenty"}}
	require.Equal(t, want, db.query(q))

	r := db.session()
	require.NoError(t, db.exec(r, "START TRANSACTION READ ONLY"))
	require.NoError(t, db.exec(r, "SELECT * FROM a"))
	// Written after r's snapshot of group 2, before its first read of
	// group 3.
	db.query("UPDATE a SET v = 20 WHERE id = 1")
	db.query("INSERT INTO b VALUES (4, 2)")
	rows, err := queryIn(db.testDB, r, q)
	require.NoError(t, err)
	require.Equal(t, append(want, sql.Row{int32(4), int32(20), "twenty"}), rows)
	db.query("INSERT INTO b VALUES (5, 2)")
	rows, err = queryIn(db.testDB, r, q)
	require.NoError(t, err)
	require.Len(t, rows, 4, "the snapshot of group 3 moved")
	require.NoError(t, db.exec(r, "COMMIT"))
	require.Len(t, db.query(q), 5)
}

// queryIn runs q in session s as one command and returns its rows.
func queryIn(db *testDB, s *Session, q string) ([]sql.Row, error) {
	if err := s.CommandBegin(); err != nil {
		return nil, err
	}
	defer s.CommandEnd()
	ctx := sql.NewContext(context.Background(), sql.WithSession(s)).WithQuery(q)
	_, it, _, err := db.e.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	return sql.RowIterToRows(ctx, it)
}

// TestPlacedRowLockWaits: a second UPDATE of a row of a placed table waits
// for the first, in the lock table of the table's part, and then applies
// to the newest version.
func TestPlacedRowLockWaits(t *testing.T) {
	for _, g := range []uint64{2, 3} {
		t.Run(fmt.Sprintf("remote=%v", g == 3), func(t *testing.T) { testPlacedRowLockWaits(t, g) })
	}
}

// testPlacedRowLockWaits runs with the table in group g; group 3 is
// remote, its lock table at the fake leader.
func testPlacedRowLockWaits(t *testing.T, g uint64) {
	db := newPartsDBWith(t, map[string]uint64{"a": g}, 3)
	db.query("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
	db.query("INSERT INTO a VALUES (1, 0)")
	w := db.session()
	require.NoError(t, db.exec(w, "START TRANSACTION"))
	require.NoError(t, db.exec(w, "UPDATE a SET v = v + 1 WHERE id = 1"))
	require.NotZero(t, db.parts[g].HeldBy(w.txnIDForTest()))
	require.Zero(t, db.parts[1].HeldBy(w.txnIDForTest()))

	waits1, waits2 := db.parts[1].LockStats().Waits, db.parts[g].LockStats().Waits
	done := make(chan error, 1)
	go func() { done <- db.exec(db.sess, "UPDATE a SET v = v + 10 WHERE id = 1") }()
	require.Eventually(t, func() bool { return db.parts[g].LockStats().Waits > waits2 }, 10*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the second UPDATE did not wait: %v", err)
	default:
	}
	require.NoError(t, db.exec(w, "COMMIT"))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the second UPDATE still waits after the first committed")
	}
	require.Equal(t, waits1, db.parts[1].LockStats().Waits)
	require.Equal(t, []sql.Row{{int32(11)}}, db.query("SELECT v FROM a WHERE id = 1"))
}

// TestPlacedTableDDLWaitsForWriters: DDL on a placed table waits for the
// open transactions that wrote it, on the metadata lock in the table's
// part; a writer whose lock was lost meanwhile (a leader change) fails its
// commit with 1412 and writes nothing.
func TestPlacedTableDDLWaitsForWriters(t *testing.T) {
	for _, ddl := range []string{"ALTER TABLE a ADD COLUMN extra INT", "ALTER TABLE a ADD CONSTRAINT c1 CHECK (v > -100)", "TRUNCATE TABLE a", "DROP TABLE a"} {
		t.Run(ddl, func(t *testing.T) {
			db := newPartsDB(t, map[string]uint64{"a": 2})
			db.query("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
			w := db.session()
			require.NoError(t, db.exec(w, "START TRANSACTION"))
			require.NoError(t, db.exec(w, "INSERT INTO a VALUES (1, 1)"))
			waits := db.parts[2].LockStats().Waits
			ddlWaitsForWriter(t, db.testDB, w, ddl)
			require.Greater(t, db.parts[2].LockStats().Waits, waits)
			if ddl != "DROP TABLE a" && ddl != "TRUNCATE TABLE a" {
				require.Equal(t, []sql.Row{{int64(1)}}, db.query("SELECT COUNT(*) FROM a"))
			}
		})
		t.Run(ddl+" after a lost lock", func(t *testing.T) {
			db := newPartsDB(t, map[string]uint64{"a": 2})
			db.query("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
			db.query("INSERT INTO a VALUES (1, 1)")
			w := db.session()
			require.NoError(t, db.exec(w, "START TRANSACTION"))
			require.NoError(t, db.exec(w, "INSERT INTO a VALUES (2, 2)"))
			require.NoError(t, db.exec(w, "UPDATE a SET v = 5 WHERE id = 1"))
			txn := w.txn
			for _, p := range db.parts {
				p.ReleaseAll(txn.id)
			}
			id := db.id("a")
			before := db.tableKeys(2, id)
			require.NoError(t, db.exec(db.sess, ddl))
			requireSQLError(t, db.prov.commit(sql.NewEmptyContext(), txn), 1412, mysql1412State, "Table definition has changed")
			if ddl == "ALTER TABLE a ADD CONSTRAINT c1 CHECK (v > -100)" {
				require.Equal(t, before, db.tableKeys(2, id))
				require.Equal(t, []sql.Row{{int32(1), int32(1)}}, db.query("SELECT * FROM a"))
			}
		})
	}
}

const mysql1412State = "HY000"

// TestWriterWithStaleDefinition: a writer whose node has not yet applied
// a change of a placed table's definition finds a newer marker in the
// table's part, catches its catalog up, and then writes with the new
// definition (same table ID and indexes) or fails with 1412 (the table
// moved to a new ID): never with the old one.
func TestWriterWithStaleDefinition(t *testing.T) {
	db := newPartsDB(t, map[string]uint64{"a": 2})
	db.query("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
	db.query("INSERT INTO a VALUES (1, 1)")

	// A second node: the same parts, but a catalog cache that follows the
	// catalog group only at its read barriers.
	cat := &barrierPart{LocalStore: db.parts[1]}
	other, err := NewProviderOn(NewPartSet(cat, map[uint64]Part{2: db.parts[2], 3: db.parts[3]}), db.config())
	require.NoError(t, err)
	t.Cleanup(other.Close)
	cat.onBarrier = func() {
		if err := other.reloadDB("d"); err != nil {
			t.Errorf("reloading the catalog: %v", err)
		}
	}
	eng := newEngine(other)
	s := other.NewSession(sql.NewBaseSession())
	s.SetCurrentDatabase("d")
	odb := &testDB{t: t, eng: db.engs[1], prov: other, e: eng, sess: s}

	insert := func(m *tableMeta, id int32) error {
		require.NoError(t, s.CommandBegin())
		defer s.CommandEnd()
		ctx := sql.NewContext(context.Background(), sql.WithSession(s)).WithQuery("INSERT INTO a VALUES (?, ?)")
		tx, err := s.StartTransaction(ctx, sql.ReadWrite)
		require.NoError(t, err)
		e := newTable(other, m).editor(ctx)
		e.StatementBegin(ctx)
		if err := e.Insert(ctx, sql.Row{id, int32(1)}); err != nil {
			require.NoError(t, s.Rollback(ctx, tx))
			return err
		}
		require.NoError(t, e.StatementComplete(ctx))
		return s.CommitTransaction(ctx, tx)
	}

	require.NoError(t, insert(other.table("d", "a"), 2))
	stale := other.table("d", "a")
	// A CHECK added since the statement was planned: its rules are not
	// the table's any more, so 1412 rather than enforce the old ones.
	db.query("ALTER TABLE a ADD CONSTRAINT c1 CHECK (v > -100)")
	requireSQLError(t, insert(stale, 4), 1412, mysql1412State, "Table definition has changed")
	require.Equal(t, []sql.Row{{int64(2)}}, db.query("SELECT COUNT(*) FROM a"))

	// A rebuild moved the table to a new ID: 1412, nothing written.
	stale = other.table("d", "a")
	db.query("ALTER TABLE a ADD COLUMN extra INT")
	requireSQLError(t, insert(stale, 3), 1412, mysql1412State, "Table definition has changed")
	require.Equal(t, []sql.Row{{int64(2)}}, db.query("SELECT COUNT(*) FROM a"))
	require.Equal(t, []sql.Row{{int64(2)}}, odb.query("SELECT COUNT(*) FROM a"))

	// A marker the DDL never wrote (it stopped after its catalog commit)
	// is written by the next writer.
	id := db.id("a")
	v, err := db.engs[2].Get(markerKey(id), kv.MaxTimestamp)
	require.NoError(t, err)
	db.query("ALTER TABLE a ADD CONSTRAINT c2 CHECK (v > -200)")
	_, err = db.engs[2].Commit(context.Background(), &kv.Batch{Mutations: []kv.Mutation{{Key: markerKey(id), Value: v.Data}}})
	require.NoError(t, err)
	mk, ok := db.marker(2, id)
	require.True(t, ok)
	require.Less(t, mk.version, db.prov.table("d", "a").version)
	require.NoError(t, db.exec(db.sess, "INSERT INTO a VALUES (3, 3, 3)"))
	mk, _ = db.marker(2, db.id("a"))
	require.Equal(t, db.prov.table("d", "a").version, mk.version)
}

// barrierPart is a catalog part whose read barrier runs onBarrier, so a
// provider without an apply hook (LocalStore has none) catches up there.
type barrierPart struct {
	*LocalStore
	onBarrier func()
}

func (b *barrierPart) ReadBarrier(context.Context) error {
	if b.onBarrier != nil {
		b.onBarrier()
	}
	return nil
}

// TestDDLRacingWritersOfPlacedTable: rebuilds of a placed table race
// writers on two nodes (one of them learning of definitions only at its
// read barriers); every insert acknowledged is in the final table, and
// the others failed with 1412 or 1213.
func TestDDLRacingWritersOfPlacedTable(t *testing.T) {
	db := newPartsDB(t, map[string]uint64{"a": 2})
	db.query("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
	cat := &barrierPart{LocalStore: db.parts[1]}
	other, err := NewProviderOn(NewPartSet(cat, map[uint64]Part{2: db.parts[2], 3: db.parts[3]}), db.config())
	require.NoError(t, err)
	t.Cleanup(other.Close)
	var reload sync.Mutex
	cat.onBarrier = func() {
		reload.Lock()
		defer reload.Unlock()
		if err := other.reloadDB("d"); err != nil {
			t.Errorf("reloading the catalog: %v", err)
		}
	}
	odb := &testDB{t: t, eng: db.engs[1], prov: other, e: newEngine(other)}

	stop := make(chan struct{})
	var (
		mu      sync.Mutex
		acked   []int
		refused int
		wg      sync.WaitGroup
	)
	writer := func(tdb *testDB, base int) {
		defer wg.Done()
		s := tdb.prov.NewSession(sql.NewBaseSession())
		s.SetCurrentDatabase("d")
		for i := base; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := tdb.exec(s, fmt.Sprintf("INSERT INTO a (id, v) VALUES (%d, %d)", i, i))
			if err == nil {
				mu.Lock()
				acked = append(acked, i)
				mu.Unlock()
				continue
			}
			if !strings.Contains(err.Error(), "1412") && !strings.Contains(err.Error(), "1213") {
				t.Errorf("insert %d: %v", i, err)
				return
			}
			mu.Lock()
			refused++
			mu.Unlock()
		}
	}
	wg.Add(2)
	go writer(db.testDB, 1_000_000)
	go writer(odb, 2_000_000)
	for i := 0; i < 40; i++ {
		if i%2 == 0 {
			require.NoError(t, db.exec(db.sess, "ALTER TABLE a ADD COLUMN extra INT"))
		} else {
			require.NoError(t, db.exec(db.sess, "ALTER TABLE a DROP COLUMN extra"))
		}
	}
	// Writers get one more round after the last rebuild.
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) > n+2
	}, 30*time.Second, time.Millisecond)
	close(stop)
	wg.Wait()

	got := map[int]bool{}
	for _, r := range db.query("SELECT id FROM a") {
		got[int(r[0].(int32))] = true
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d inserts acknowledged, %d refused", len(acked), refused)
	require.NotEmpty(t, acked)
	for _, id := range acked {
		require.True(t, got[id], "acknowledged insert %d lost", id)
	}
	require.Len(t, got, len(acked))
}

// TestSnapshotOlderThanPlacedTableDefinition: a consistent read of a
// placed table whose snapshot of the table's group predates a TRUNCATE,
// a rebuild or an index fails with 1412 (the marker as of the snapshot
// tells), as in the catalog group.
func TestSnapshotOlderThanPlacedTableDefinition(t *testing.T) {
	for _, ddl := range []string{"TRUNCATE TABLE t", "ALTER TABLE t ADD COLUMN extra INT", "CREATE INDEX iv ON t (v)"} {
		for _, g := range []uint64{2, 3} {
			t.Run(fmt.Sprintf("%s/remote=%v", ddl, g == 3), func(t *testing.T) { testSnapshotOlderThanPlacedTable(t, ddl, g) })
		}
	}
}

func testSnapshotOlderThanPlacedTable(t *testing.T, ddl string, g uint64) {
	db := newPartsDBWith(t, map[string]uint64{"t": g, "u": g}, 3)
	db.query("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	db.query("CREATE TABLE u (id INT PRIMARY KEY)")
	db.query("INSERT INTO t VALUES (1, 7), (2, 7), (3, 7)")
	r := db.session()
	require.NoError(t, db.exec(r, "START TRANSACTION"))
	require.NoError(t, db.exec(r, "SELECT * FROM u")) // r's snapshot of group g
	require.NoError(t, db.exec(db.sess, ddl))
	n, err := db.count(t, r)
	if strings.HasPrefix(ddl, "CREATE INDEX") {
		require.NoError(t, err)
		require.EqualValues(t, 3, n)
		require.Contains(t, db.plan("SELECT id FROM t WHERE v = 7"), "index: [t.v]")
		_, err = queryIn(db.testDB, r, "SELECT id FROM t WHERE v = 7")
	}
	requireSQLError(t, err, 1412, mysql1412State, "Table definition has changed")
	require.NoError(t, db.exec(r, "COMMIT"))
	n, err = db.count(t, r)
	require.NoError(t, err)
	if strings.HasPrefix(ddl, "TRUNCATE") {
		require.EqualValues(t, 0, n)
	} else {
		require.EqualValues(t, 3, n)
	}
}

// TestUnreachableGroup: a table whose group this node cannot reach fails
// reads and writes with 1047 ("data unavailable", nothing written), as
// does creating a table there; other tables are unaffected.
func TestUnreachableGroup(t *testing.T) {
	db := newPartsDB(t, map[string]uint64{"b": 3, "x": 4})
	db.query("CREATE TABLE b (id INT PRIMARY KEY)")
	db.query("CREATE TABLE c (id INT PRIMARY KEY)")
	db.query("INSERT INTO b VALUES (1)")
	db.set.Set(3, nil)
	for _, q := range []string{"SELECT * FROM b", "INSERT INTO b VALUES (2)", "CREATE TABLE x (id INT PRIMARY KEY)"} {
		requireSQLError(t, db.exec(db.sess, q), 1047, "08S01", "data unavailable")
	}
	require.Nil(t, db.prov.table("d", "x"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO c VALUES (1)"))
	require.NoError(t, db.exec(db.sess, "SHOW TABLE STATUS"))
	db.set.Set(3, db.parts[3])
	require.Equal(t, []sql.Row{{int32(1)}}, db.query("SELECT * FROM b"))
}
