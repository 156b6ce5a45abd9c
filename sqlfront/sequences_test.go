package sqlfront

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/replication"
)

// termStore is a LocalStore whose leadership can be taken away and given
// back in a later term, as a member of a replicated group's is. Several
// termStores over one engine play the members of a group whose logs are
// applied everywhere at once.
type termStore struct {
	*LocalStore
	mu       sync.Mutex
	term     uint64
	leading  bool
	barriers int // TermBarrier calls
}

// Catalog and Part make the termStore itself the store's one part (the
// embedded LocalStore's would hand out the LocalStore).
func (s *termStore) Catalog() Part                { return s }
func (s *termStore) Part(id uint64) (Part, error) { return onePart(s, id) }

func (s *termStore) Leading() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term, s.leading
}

func (s *termStore) TermBarrier(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading {
		return replication.ErrNotLeader
	}
	s.barriers++
	return nil
}

func (s *termStore) lead(term uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.term, s.leading = term, true
}

func (s *termStore) follow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leading = false
}

// member is one node of such a group: its store, provider and engine.
type member struct {
	st *termStore
	db *testDB
}

func newMember(t *testing.T, eng *kv.Engine) *member {
	st := &termStore{LocalStore: NewLocalStore(eng)}
	prov, err := NewProviderOn(st, DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(prov.Close)
	db := &testDB{t: t, eng: eng, prov: prov, e: newEngine(prov)}
	db.sess = prov.NewSession(sql.NewBaseSession())
	return &member{st: st, db: db}
}

func (m *member) session(db string) *Session {
	s := m.db.prov.NewSession(sql.NewBaseSession())
	s.SetCurrentDatabase(db)
	return s
}

func sharedEngine(t *testing.T) *kv.Engine {
	opts := kv.DefaultOptions(filepath.Join(t.TempDir(), "state.db"))
	opts.GCInterval = 0
	eng, err := kv.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	return eng
}

// A transaction holding hidden row IDs handed out by one leader commits
// after the next leader has handed out IDs to another transaction: both
// transactions' rows are kept (no ID is handed out twice, and a reissued
// one could not overwrite a committed row).
func TestKeylessRowIDsSurviveLeaderChange(t *testing.T) {
	eng := sharedEngine(t)
	a := newMember(t, eng)
	a.st.lead(1)
	a.db.query("CREATE DATABASE d")
	a.db.query("CREATE TABLE d.k (v INT)")
	a.db.query("INSERT INTO d.k VALUES (1)")
	b := newMember(t, eng)

	held := a.session("d")
	require.NoError(t, a.db.exec(held, "BEGIN"))
	require.NoError(t, a.db.exec(held, "INSERT INTO k VALUES (10), (11), (12)"))

	a.st.follow()
	b.st.lead(2)
	require.NoError(t, b.db.exec(b.session("d"), "INSERT INTO k VALUES (20), (21), (22)"))
	require.NoError(t, a.db.exec(held, "COMMIT"))

	want := []sql.Row{{int32(1)}, {int32(10)}, {int32(11)}, {int32(12)}, {int32(20)}, {int32(21)}, {int32(22)}}
	require.Equal(t, want, b.db.query("SELECT v FROM d.k ORDER BY v"))
	require.Equal(t, []sql.Row{{int64(7)}}, b.db.query("SELECT COUNT(*) FROM d.k"))
	require.Positive(t, b.st.barriers, "the new leader handed out IDs without passing its term's barrier")
}

// AUTO_INCREMENT values handed out by one leader, to a transaction still
// open when leadership moves, are not handed out again by the next leader:
// both transactions commit (no 1062, no 1213), and the next leader's values
// are above the old one's, explicit values included.
func TestAutoIncrementSurvivesLeaderChange(t *testing.T) {
	eng := sharedEngine(t)
	a := newMember(t, eng)
	a.st.lead(1)
	a.db.query("CREATE DATABASE d")
	a.db.query("CREATE TABLE d.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
	a.db.query("INSERT INTO d.t (v) VALUES (1)")
	b := newMember(t, eng)

	held := a.session("d")
	require.NoError(t, a.db.exec(held, "BEGIN"))
	require.NoError(t, a.db.exec(held, "INSERT INTO t (v) VALUES (10), (11), (12)"))
	require.NoError(t, a.db.exec(held, "INSERT INTO t VALUES (500, 13)"))

	a.st.follow()
	b.st.lead(2)
	require.NoError(t, b.db.exec(b.session("d"), "INSERT INTO t (v) VALUES (20), (21), (22)"))
	require.NoError(t, a.db.exec(held, "COMMIT"))

	rows := b.db.query("SELECT id, v FROM d.t ORDER BY v")
	require.Len(t, rows, 8)
	require.Equal(t, []sql.Row{{int64(1), int32(1)}, {int64(2), int32(10)}, {int64(3), int32(11)}, {int64(4), int32(12)}, {int64(500), int32(13)}}, rows[:5])
	for _, r := range rows[5:] {
		require.Greater(t, r[0].(int64), int64(500), "the new leader handed out %v below a value the old one had moved past", r[0])
	}
}

// A keyless insert never overwrites a committed row, even were its hidden
// row ID handed out twice: the row key is expected absent at commit.
func TestKeylessInsertExpectsItsRowIDFree(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE k (v INT)")
	db.query("INSERT INTO k VALUES (1)")
	require.NoError(t, db.exec(db.sess, "BEGIN"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO k VALUES (2)"))

	// Another writer commits a row under the ID the transaction holds.
	m := db.prov.table("d", "k")
	top, err := db.prov.maxRowID(context.Background(), m)
	require.NoError(t, err)
	require.EqualValues(t, 1, top)
	val, err := encodeRow(nil, sql.Row{int32(99)})
	require.NoError(t, err)
	_, err = db.eng.Commit(context.Background(), &kv.Batch{Mutations: []kv.Mutation{{
		Key: append(m.rowPrefix(), keys.AppendUint(nil, 2)...), Value: val,
	}}})
	require.NoError(t, err)

	err = db.exec(db.sess, "COMMIT")
	require.Error(t, err)
	require.Contains(t, err.Error(), "1213")
	require.Equal(t, []sql.Row{{int32(1)}, {int32(99)}}, db.query("SELECT v FROM k ORDER BY v"))
}

func (db *testDB) autoIncOf(table string) uint64 {
	db.t.Helper()
	rows := db.query("SELECT AUTO_INCREMENT FROM information_schema.tables WHERE table_schema = 'd' AND table_name = '" + table + "'")
	require.Len(db.t, rows, 1)
	v, ok := autoValue(nil, rows[0][0])
	require.True(db.t, ok, "%v", rows[0][0])
	return v
}

func (db *testDB) insertID(q string) uint64 {
	db.t.Helper()
	require.NoError(db.t, db.exec(db.sess, q))
	rows := db.query("SELECT LAST_INSERT_ID()")
	v, ok := autoValue(nil, rows[0][0])
	require.True(db.t, ok)
	return v
}

// Values come from memory within a reserved block, so the next value shown
// is the next one handed out, not the block's end. A clean shutdown gives
// the rest of the block back: the sequence resumes right after the last
// value. After a crash it resumes above every value handed out, skipping
// at most one block.
func TestAutoIncrementBlocksAndRestarts(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
	db.query("INSERT INTO t (v) VALUES (1), (2), (3)")
	require.EqualValues(t, 4, db.autoIncOf("t"))

	crashed := db.reopen()
	id := crashed.insertID("INSERT INTO t (v) VALUES (4)")
	require.Greater(t, id, uint64(3))
	require.LessOrEqual(t, id, uint64(4+seqBlockMax))
	require.EqualValues(t, id+1, crashed.autoIncOf("t"))

	require.NoError(t, crashed.prov.ReleaseSequences(context.Background()))
	clean := crashed.reopen()
	require.EqualValues(t, id+1, clean.autoIncOf("t"))
	require.EqualValues(t, id+1, clean.insertID("INSERT INTO t (v) VALUES (5)"))

	// Explicit values move the sequence, also past the reserved block.
	require.NoError(t, clean.exec(clean.sess, "INSERT INTO t VALUES (100000, 6)"))
	require.EqualValues(t, 100001, clean.insertID("INSERT INTO t (v) VALUES (7)"))
	require.NoError(t, clean.exec(clean.sess, "ALTER TABLE t AUTO_INCREMENT = 200000"))
	require.EqualValues(t, 200000, clean.autoIncOf("t"))
	require.EqualValues(t, 200000, clean.insertID("INSERT INTO t (v) VALUES (8)"))
	// ALTER may lower the sequence, not below the largest value present.
	require.NoError(t, clean.exec(clean.sess, "DELETE FROM t WHERE id >= 100000"))
	require.NoError(t, clean.exec(clean.sess, "ALTER TABLE t AUTO_INCREMENT = 10"))
	require.EqualValues(t, id+2, clean.insertID("INSERT INTO t (v) VALUES (9)"))
	// A rebuild carries the sequence over to the new table.
	require.NoError(t, clean.exec(clean.sess, "ALTER TABLE t ADD COLUMN w INT"))
	require.EqualValues(t, id+3, clean.autoIncOf("t"))
	require.EqualValues(t, id+3, clean.insertID("INSERT INTO t (v) VALUES (10)"))
	require.NoError(t, clean.exec(clean.sess, "TRUNCATE TABLE t"))
	require.EqualValues(t, 1, clean.insertID("INSERT INTO t (v) VALUES (11)"))
}

// Watermarks of the older format are read: the sequence resumes above the
// largest, and the first reservation replaces them by a mark.
func TestAutoIncrementReadsOlderWatermarks(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
	m := db.prov.table("d", "t")
	_, err := db.eng.Commit(context.Background(), &kv.Batch{Mutations: []kv.Mutation{
		{Key: autoIncKey(m.def.ID, 40)}, {Key: autoIncKey(m.def.ID, 50)},
	}})
	require.NoError(t, err)

	db = db.reopen()
	require.EqualValues(t, 50, db.autoIncOf("t"))
	require.EqualValues(t, 50, db.insertID("INSERT INTO t (v) VALUES (1)"))
	old, err := db.prov.legacyAutoIncKeys(m.def.ID)
	require.NoError(t, err)
	require.Empty(t, old)
	mk, err := db.prov.readSeqMark(db.prov.cat(), db.prov.table("d", "t"), seqAutoInc)
	require.NoError(t, err)
	require.Greater(t, mk.hi, uint64(50))
}

// Leadership that comes back with no reservation by anyone meanwhile
// keeps its place in its block; a mark moved under a leader (a deposed
// leader's reservation) makes it resume above the new mark.
func TestSequenceFollowsItsMark(t *testing.T) {
	eng := sharedEngine(t)
	a := newMember(t, eng)
	a.st.lead(1)
	a.db.query("CREATE DATABASE d")
	a.db.sess.SetCurrentDatabase("d")
	a.db.query("CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
	require.EqualValues(t, 1, a.db.insertID("INSERT INTO t (v) VALUES (1)"))
	b := newMember(t, eng)
	b.db.sess.SetCurrentDatabase("d")

	a.st.follow()
	b.st.lead(2)
	mk, err := b.db.prov.readSeqMark(b.db.prov.cat(), b.db.prov.table("d", "t"), seqAutoInc)
	require.NoError(t, err)
	require.Equal(t, mk.hi, b.db.autoIncOf("t"), "the new leader resumes at the old leader's mark")
	b.st.follow()
	a.st.lead(3)
	require.EqualValues(t, 2, a.db.insertID("INSERT INTO t (v) VALUES (2)"))

	m := a.db.prov.table("d", "t")
	key := seqMarkKey(m.def.ID, seqAutoInc)
	_, err = eng.Commit(context.Background(), &kv.Batch{Mutations: []kv.Mutation{{Key: key, Value: binary.BigEndian.AppendUint64(nil, 1000)}}})
	require.NoError(t, err)
	var vals []string
	for i := 0; i < seqBlockMin+1; i++ {
		vals = append(vals, "(3)")
	}
	require.NoError(t, a.db.exec(a.db.sess, "INSERT INTO t (v) VALUES "+strings.Join(vals, ", ")))
	rows := a.db.query("SELECT MAX(id) FROM t")
	top, _ := autoValue(nil, rows[0][0])
	require.GreaterOrEqual(t, top, uint64(1000))
	require.Equal(t, []sql.Row{{int64(seqBlockMin + 3)}}, a.db.query("SELECT COUNT(*) FROM t"))
}
