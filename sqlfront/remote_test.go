package sqlfront

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
	"github.com/fogdb/fogdb/replication"
)

// fakeRemote is a group's leader reached as a replication.Remote reaches
// it, played by a LocalStore: snapshots registered per owner, reads at a
// snapshot or current, chunked scans, locks and commits at the "leader".
// It counts the requests a node would send, and can be cut off.
type fakeRemote struct {
	s     *LocalStore
	chunk int // keys per scan chunk at most, below the caller's limit

	mu    sync.Mutex
	snaps map[lock.TxnID]*kv.Snapshot

	calls atomic.Int64 // requests on behalf of a transaction (not releases)
	down  atomic.Bool
}

var _ RemoteGroup = (*fakeRemote)(nil)

func newFakeRemote(s *LocalStore) *fakeRemote {
	return &fakeRemote{s: s, chunk: 3, snaps: map[lock.TxnID]*kv.Snapshot{}}
}

func (f *fakeRemote) request() error {
	f.calls.Add(1)
	if f.down.Load() {
		return fmt.Errorf("%w: no leader answered (test)", replication.ErrUnavailable)
	}
	return nil
}

// held is how many snapshots are registered at the "leader".
func (f *fakeRemote) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.snaps)
}

func (f *fakeRemote) Snapshot(_ context.Context, owner lock.TxnID) (kv.Timestamp, error) {
	if err := f.request(); err != nil {
		return 0, err
	}
	snap := f.s.Engine().Snapshot()
	f.mu.Lock()
	if old := f.snaps[owner]; old != nil {
		old.Release()
	}
	f.snaps[owner] = snap
	f.mu.Unlock()
	return snap.TS(), nil
}

func (f *fakeRemote) ReleaseSnapshot(_ context.Context, owner lock.TxnID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.snaps[owner]; s != nil {
		s.Release()
		delete(f.snaps, owner)
	}
	return nil
}

func (f *fakeRemote) Get(_ context.Context, key []byte, ts kv.Timestamp) (kv.Value, error) {
	if err := f.request(); err != nil {
		return kv.Value{}, err
	}
	return f.s.Engine().Get(key, ts)
}

func (f *fakeRemote) Scan(_ context.Context, start, end []byte, ts kv.Timestamp, reverse bool, limit int) ([]replication.KV, bool, error) {
	if err := f.request(); err != nil {
		return nil, false, err
	}
	if limit <= 0 || limit > f.chunk {
		limit = f.chunk
	}
	it := f.s.Engine().NewIterator(start, end, ts, reverse)
	defer it.Close()
	var out []replication.KV
	for it.Next() {
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, replication.KV{Key: append([]byte(nil), it.Key()...), Value: append([]byte(nil), it.Value()...), Version: it.Version()})
	}
	return out, false, it.Err()
}

func (f *fakeRemote) Lock(ctx context.Context, owner lock.TxnID, key []byte, mode lock.Mode, timeout time.Duration) error {
	if err := f.request(); err != nil {
		return err
	}
	return f.s.Lock(ctx, owner, key, mode, timeout)
}

func (f *fakeRemote) ReleaseAll(owner lock.TxnID) { f.s.ReleaseAll(owner) }

// Call runs the handler registered on the "leader's" store, as a member
// that leads the group would (the test registers the provider's sequence
// handlers there).
func (f *fakeRemote) Call(ctx context.Context, m replication.Method, req []byte) ([]byte, error) {
	if err := f.request(); err != nil {
		return nil, err
	}
	return f.s.Call(ctx, uint8(m-replication.FirstUserMethod), req)
}

func (f *fakeRemote) Commit(ctx context.Context, b *kv.Batch) (uint64, error) {
	if err := f.request(); err != nil {
		return 0, err
	}
	if err := kv.ValidateBatch(b); err != nil {
		return 0, err
	}
	return 1, f.s.Commit(ctx, b)
}

func newLocalStoreForTest(t *testing.T, name string) *LocalStore {
	opts := kv.DefaultOptions(filepath.Join(t.TempDir(), name))
	opts.GCInterval = 0
	eng, err := kv.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	return NewLocalStore(eng)
}

// TestRemotePartIterator: the chunks of a remote scan join into the same
// keys, values and versions as a local iterator gives, in both
// directions, over bounded and unbounded ranges; an error of any chunk
// ends the walk with that error.
func TestRemotePartIterator(t *testing.T) {
	ls := newLocalStoreForTest(t, "g.db")
	f := newFakeRemote(ls)
	rp := NewRemotePart(f)
	ctx := context.Background()
	b := &kv.Batch{}
	for i := 0; i < 20; i++ {
		b.Mutations = append(b.Mutations, kv.Mutation{Key: []byte(fmt.Sprintf("k%02d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	require.NoError(t, rp.Commit(ctx, b))
	require.NoError(t, rp.Commit(ctx, &kv.Batch{Mutations: []kv.Mutation{{Key: []byte("k05"), Delete: true}}}))

	type kvv struct {
		k, v string
		ver  kv.Timestamp
	}
	walk := func(it Iterator) []kvv {
		defer it.Close()
		var out []kvv
		for it.Next() {
			out = append(out, kvv{string(it.Key()), string(it.Value()), it.Version()})
		}
		require.NoError(t, it.Err())
		return out
	}
	for _, r := range []struct{ start, end []byte }{{[]byte("k"), nil}, {[]byte("k03"), []byte("k17")}, {[]byte("k19"), []byte("k2")}, {[]byte("x"), nil}} {
		for _, rev := range []bool{false, true} {
			want := walk(ls.NewIterator(ctx, r.start, r.end, kv.MaxTimestamp, rev))
			got := walk(rp.NewIterator(ctx, r.start, r.end, kv.MaxTimestamp, rev))
			require.Equal(t, want, got, "%q-%q reverse=%v", r.start, r.end, rev)
		}
	}

	// A snapshot keeps its view through later commits and chunks.
	snap, err := rp.Snapshot(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, 1, f.held())
	require.NoError(t, rp.Commit(ctx, &kv.Batch{Mutations: []kv.Mutation{{Key: []byte("k10"), Value: []byte("new")}, {Key: []byte("k11"), Delete: true}}}))
	old := walk(rp.NewIterator(ctx, []byte("k"), nil, snap.TS(), false))
	require.Len(t, old, 19)
	require.Equal(t, "v10", old[9].v)
	v, err := rp.Get(ctx, []byte("k10"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.Equal(t, "new", string(v.Data))
	snap.Release()
	snap.Release()
	require.Eventually(t, func() bool { return f.held() == 0 }, 10*time.Second, time.Millisecond)

	// The site goes away between chunks.
	it := rp.NewIterator(ctx, []byte("k"), nil, kv.MaxTimestamp, false)
	require.True(t, it.Next())
	f.down.Store(true)
	n := 1
	for it.Next() {
		n++
	}
	require.ErrorIs(t, it.Err(), replication.ErrUnavailable)
	require.Less(t, n, 19)
	it.Close()
	require.False(t, it.Next())
}

// TestRemotePartLocks: locks go to the leader's table, where the
// members' transactions meet them; HeldBy counts what this node holds
// there; what only a member has (sequences, applies) is refused.
func TestRemotePartLocks(t *testing.T) {
	ls := newLocalStoreForTest(t, "g.db")
	f := newFakeRemote(ls)
	rp := NewRemotePart(f)
	ctx := context.Background()
	require.NoError(t, rp.Lock(ctx, 1, []byte("a"), lock.Exclusive, time.Second))
	require.NoError(t, rp.Lock(ctx, 1, []byte("a"), lock.Exclusive, time.Second))
	require.NoError(t, rp.Lock(ctx, 1, []byte("b"), lock.Shared, time.Second))
	require.Equal(t, 2, rp.HeldBy(1))
	require.Equal(t, 2, ls.HeldBy(1))
	// A member's transaction waits for it.
	require.ErrorIs(t, ls.Lock(ctx, 2, []byte("a"), lock.Shared, 0), lock.ErrTimeout)
	require.ErrorIs(t, rp.Lock(ctx, 3, []byte("a"), lock.Shared, 0), lock.ErrTimeout)
	require.EqualValues(t, 1, rp.LockStats().Timeouts)
	require.EqualValues(t, 3, rp.LockStats().Acquired)
	rp.ReleaseAll(1)
	require.Zero(t, rp.HeldBy(1))
	require.Zero(t, ls.HeldBy(1))
	require.NoError(t, ls.Lock(ctx, 2, []byte("a"), lock.Exclusive, 0))

	_, ok := rp.Leading()
	require.False(t, ok)
	// A request runs at the leader: here, one with no handler for it.
	_, err := rp.Call(ctx, 0, nil)
	require.ErrorContains(t, err, "no handler for method 0")
	require.ErrorIs(t, rp.TermBarrier(ctx), ErrNotHosted)
	require.NoError(t, rp.ReadBarrier(ctx))

	f.down.Store(true)
	require.ErrorIs(t, rp.Lock(ctx, 1, []byte("c"), lock.Exclusive, time.Second), replication.ErrUnavailable)
	require.Zero(t, rp.HeldBy(1))
	_, err = rp.Snapshot(ctx, 1)
	require.ErrorIs(t, err, replication.ErrUnavailable)
}

// TestRemoteGroupTables: tables placed in a group this node reaches only
// through RemotePart work as in a hosted group: rows and index entries
// land in that group's store, reads are repeatable under a snapshot
// registered at its leader and released with the transaction, writes
// lock there, DDL and the cleaner work there, and a cut-off group fails
// with 1047.
func TestRemoteGroupTables(t *testing.T) {
	db := newPartsDBWith(t, map[string]uint64{"a": 3, "k": 3}, 3)
	f := db.remote[3]
	db.query("CREATE TABLE a (id INT PRIMARY KEY, name VARCHAR(20), v INT, UNIQUE KEY un (name), KEY kv (v))")
	db.query("INSERT INTO a VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 10), (4, 'four', 40), (5, 'five', 50)")
	ida := db.id("a")
	require.Equal(t, 16, db.tableKeys(3, ida)) // 5 rows, 10 entries, the marker
	require.Zero(t, db.tableKeys(1, ida))
	require.Equal(t, []sql.Row{{int32(5)}, {int32(4)}, {int32(3)}, {int32(2)}, {int32(1)}}, db.query("SELECT id FROM a ORDER BY id DESC"))
	require.Equal(t, []sql.Row{{int32(1)}, {int32(3)}}, db.query("SELECT id FROM a WHERE v = 10 ORDER BY id"))
	require.Equal(t, []sql.Row{{"two"}}, db.query("SELECT name FROM a WHERE name = 'two'"))
	err := db.exec(db.sess, "INSERT INTO a VALUES (6, 'two', 0)")
	require.Error(t, err)
	require.Contains(t, err.Error(), "uplicate")

	// Repeatable reads through the leader's snapshot, released at the end.
	r := db.session()
	require.NoError(t, db.exec(r, "START TRANSACTION"))
	rows, err := queryIn(db.testDB, r, "SELECT COUNT(*) FROM a")
	require.NoError(t, err)
	require.Equal(t, []sql.Row{{int64(5)}}, rows)
	// Earlier statements' snapshots are released in the background.
	require.Eventually(t, func() bool { return f.held() == 1 }, 10*time.Second, time.Millisecond)
	db.query("INSERT INTO a VALUES (6, 'six', 60)")
	db.query("UPDATE a SET v = 11 WHERE id = 1")
	rows, err = queryIn(db.testDB, r, "SELECT COUNT(*), SUM(v) FROM a")
	require.NoError(t, err)
	require.Equal(t, []sql.Row{{int64(5), float64(130)}}, rows)
	require.NoError(t, db.exec(r, "COMMIT"))
	require.Eventually(t, func() bool { return f.held() == 0 }, 10*time.Second, time.Millisecond)

	// READ COMMITTED: each statement takes a snapshot of its own at the
	// leader; the previous one's release, sent in the background, never
	// drops it.
	require.NoError(t, db.exec(r, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"))
	require.NoError(t, db.exec(r, "START TRANSACTION"))
	for i := 7; i <= 10; i++ {
		db.query(fmt.Sprintf("INSERT INTO a VALUES (%d, 'n%d', %d)", i, i, i))
		rows, err := queryIn(db.testDB, r, "SELECT COUNT(*) FROM a")
		require.NoError(t, err)
		require.Equal(t, []sql.Row{{int64(i)}}, rows)
	}
	require.Eventually(t, func() bool { return f.held() == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, db.exec(r, "COMMIT"))
	require.Eventually(t, func() bool { return f.held() == 0 }, 10*time.Second, time.Millisecond)
	db.query("DELETE FROM a WHERE id > 6")

	// A writer holds its row locks at the leader: a member's transaction
	// waits for them, and HeldBy counts them here.
	w := db.session()
	require.NoError(t, db.exec(w, "START TRANSACTION"))
	require.NoError(t, db.exec(w, "UPDATE a SET v = v + 1 WHERE id = 2"))
	rpart, err := db.set.Part(3)
	require.NoError(t, err)
	require.NotZero(t, rpart.HeldBy(w.txnIDForTest()))
	require.Equal(t, rpart.HeldBy(w.txnIDForTest()), db.parts[3].HeldBy(w.txnIDForTest()))
	require.ErrorIs(t, db.parts[3].Lock(context.Background(), 999, rowKeyForTest(db, "a", 2), lock.Shared, 0), lock.ErrTimeout)
	require.NoError(t, db.exec(w, "COMMIT"))
	require.Zero(t, rpart.HeldBy(w.txnIDForTest()))
	require.Equal(t, []sql.Row{{int32(21)}}, db.query("SELECT v FROM a WHERE id = 2"))

	// A keyless table: hidden row IDs come from the sequence the group's
	// leader keeps, and resume above those stored there.
	db.prov.serveSequences(db.parts[3])
	db.query("CREATE TABLE k (v INT)")
	db.query("INSERT INTO k VALUES (1), (2)")
	require.NoError(t, db.exec(db.sess, "DELETE FROM k WHERE v = 1"))
	require.Equal(t, []sql.Row{{int32(2)}}, db.query("SELECT v FROM k"))

	// DDL: a rebuild and an index build copy through the leader, and the
	// cleaner removes the old ID there.
	require.NoError(t, db.exec(db.sess, "ALTER TABLE a ADD COLUMN extra INT DEFAULT 7"))
	nid := db.id("a")
	require.NotEqual(t, ida, nid)
	db.awaitGoneFrom(3, ida)
	require.NoError(t, db.exec(db.sess, "CREATE INDEX ke ON a (extra)"))
	require.Equal(t, []sql.Row{{int64(6)}}, db.query("SELECT COUNT(*) FROM a WHERE extra = 7"))
	require.NoError(t, db.exec(db.sess, "TRUNCATE TABLE a"))
	db.awaitGoneFrom(3, nid)
	require.Equal(t, []sql.Row{{int64(0)}}, db.query("SELECT COUNT(*) FROM a"))

	// Cut off: 1047, nothing written; back: as before.
	db.query("INSERT INTO a VALUES (1, 'one', 1, 1)")
	f.down.Store(true)
	for _, q := range []string{"SELECT * FROM a", "INSERT INTO a VALUES (2, 'two', 2, 2)", "SELECT * FROM a WHERE id = 1"} {
		requireSQLError(t, db.exec(db.sess, q), 1047, "08S01", "data unavailable")
	}
	f.down.Store(false)
	require.Equal(t, []sql.Row{{int32(1), "one", int32(1), int32(1)}}, db.query("SELECT * FROM a"))
}

// rowKeyForTest is the row key of db's table name with integer key id.
func rowKeyForTest(db *partsDB, name string, id int32) []byte {
	m := db.prov.table("d", name)
	pk, err := m.pkSuffix(sql.Row{id})
	require.NoError(db.t, err)
	return append(m.rowPrefix(), pk...)
}
