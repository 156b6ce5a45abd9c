package sqlfront

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
)

type testDB struct {
	t    testing.TB
	eng  *kv.Engine
	prov *Provider
	e    *sqle.Engine
	sess *Session
}

func newTestDB(t testing.TB) *testDB { return newTestDBWith(t, DefaultConfig()) }

func newTestDBWith(t testing.TB, cfg Config) *testDB {
	opts := kv.DefaultOptions(filepath.Join(t.TempDir(), "state.db"))
	opts.GCInterval = 0
	eng, err := kv.Open(opts)
	require.NoError(t, err)
	prov, err := NewProvider(eng, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		prov.Close()
		eng.Close()
	})
	db := &testDB{t: t, eng: eng, prov: prov, e: newEngine(prov)}
	db.sess = prov.NewSession(sql.NewBaseSession())
	return db
}

// reopen serves the same store through a fresh provider, which reads the
// catalog and rows back from disk, with database d selected.
func (db *testDB) reopen() *testDB {
	prov, err := NewProvider(db.eng, DefaultConfig())
	require.NoError(db.t, err)
	db.t.Cleanup(prov.Close)
	db2 := &testDB{t: db.t, eng: db.eng, prov: prov, e: newEngine(prov)}
	db2.sess = prov.NewSession(sql.NewBaseSession())
	db2.sess.SetCurrentDatabase("d")
	return db2
}

func newEngine(p *Provider) *sqle.Engine {
	e := sqle.NewDefault(p)
	p.AttachEngine(e)
	return e
}

func (db *testDB) query(q string) []sql.Row {
	db.t.Helper()
	ctx := sql.NewContext(context.Background(), sql.WithSession(db.sess)).WithQuery(q)
	_, it, _, err := db.e.Query(ctx, q)
	require.NoError(db.t, err, q)
	rows, err := sql.RowIterToRows(ctx, it)
	require.NoError(db.t, err, q)
	return rows
}

func (db *testDB) plan(q string) string {
	var b strings.Builder
	for _, r := range db.query("EXPLAIN PLAN " + q) {
		fmt.Fprintln(&b, r[0])
	}
	return b.String()
}

// TestLookupsDoNotScan proves index lookups read only their range: the
// plan uses the index, and the store examines a handful of keys for a
// lookup in a 2000-row table.
func TestLookupsDoNotScan(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY, host VARCHAR(64) COLLATE utf8mb3_general_ci, n INT, UNIQUE KEY uh (host), KEY kn (n))")
	var vals []string
	for i := 0; i < 2000; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'Host-%04d', %d)", i, i, i%100))
	}
	db.query("INSERT INTO t VALUES " + strings.Join(vals, ","))

	cases := []struct {
		q       string
		rows    int
		maxKeys uint64
		planHas string
	}{
		{"SELECT * FROM t WHERE id = 1234", 1, 4, "IndexedTableAccess"},
		{"SELECT * FROM t WHERE host = 'host-0042'", 1, 6, "IndexedTableAccess"},
		{"SELECT * FROM t WHERE n = 7", 20, 50, "IndexedTableAccess"},
		{"SELECT * FROM t WHERE id BETWEEN 100 AND 109", 10, 15, "IndexedTableAccess"},
	}
	for _, c := range cases {
		require.Contains(t, db.plan(c.q), c.planHas, c.q)
		before := db.eng.Stats().KeysRead
		rows := db.query(c.q)
		read := db.eng.Stats().KeysRead - before
		require.Len(t, rows, c.rows, c.q)
		require.LessOrEqual(t, read, c.maxKeys, "%s read %d keys", c.q, read)
	}
	// A full scan, for contrast, reads every row.
	before := db.eng.Stats().KeysRead
	db.query("SELECT * FROM t WHERE id + 0 = 5")
	require.GreaterOrEqual(t, db.eng.Stats().KeysRead-before, uint64(2000))
}

// TestOrderByIndexNeedsNoSort: keys are stored in index order, so ORDER BY
// an index prefix (both directions) is served without a sort.
func TestOrderByIndexNeedsNoSort(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10), KEY ab (a, b))")
	db.query("INSERT INTO t VALUES (1, 3, 'x'), (2, 1, 'z'), (3, 2, 'y'), (4, 1, 'a'), (5, NULL, 'q')")
	for _, q := range []string{
		"SELECT a, b FROM t ORDER BY a, b",
		"SELECT a, b FROM t ORDER BY a DESC, b DESC",
		"SELECT * FROM t ORDER BY id DESC",
		"SELECT a, b FROM t WHERE a > 0 ORDER BY a",
	} {
		p := db.plan(q)
		require.NotContains(t, p, "Sort", "%s\n%s", q, p)
	}
	require.Equal(t, []sql.Row{{nil, "q"}, {int32(1), "a"}, {int32(1), "z"}, {int32(2), "y"}, {int32(3), "x"}}, db.query("SELECT a, b FROM t ORDER BY a, b"))
	require.Equal(t, []sql.Row{{int32(3), "x"}, {int32(2), "y"}, {int32(1), "z"}, {int32(1), "a"}, {nil, "q"}}, db.query("SELECT a, b FROM t ORDER BY a DESC, b DESC"))
}

// TestCaseInsensitiveUnique: under utf8mb3_general_ci (what OpenStack's
// CHARSET=utf8 tables get) 'Nova' and 'nova ' are one key, as in MySQL.
func TestCaseInsensitiveUnique(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE s (id INT PRIMARY KEY, name VARCHAR(20), UNIQUE KEY un (name)) CHARSET=utf8")
	db.query("INSERT INTO s VALUES (1, 'Nova')")
	ctx := sql.NewContext(context.Background(), sql.WithSession(db.sess))
	for _, v := range []string{"nova", "NOVA", "nova "} {
		q := fmt.Sprintf("INSERT INTO s VALUES (2, '%s')", v)
		_, it, _, err := db.e.Query(ctx.WithQuery(q), q)
		if err == nil {
			_, err = sql.RowIterToRows(ctx, it)
		}
		require.Error(t, err, v)
		require.True(t, sql.ErrUniqueKeyViolation.Is(sql.UnwrapError(err)), "%v", err)
	}
	require.Equal(t, []sql.Row{{int32(1), "Nova"}}, db.query("SELECT * FROM s WHERE name = 'NOVA'"))
}

// exec runs one statement as the server does: one client command.
func (db *testDB) exec(s *Session, q string) error {
	if err := s.CommandBegin(); err != nil {
		return err
	}
	defer s.CommandEnd()
	ctx := sql.NewContext(context.Background(), sql.WithSession(s)).WithQuery(q)
	_, it, _, err := db.e.Query(ctx, q)
	if err != nil {
		return err
	}
	_, err = sql.RowIterToRows(ctx, it)
	return err
}

// TestTransactionSizeLimit: a transaction buffering more than MaxTxnBytes
// fails with MySQL's 1197, and nothing of it is committed.
func TestTransactionSizeLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxTxnBytes = 64 << 10
	db := newTestDBWith(t, cfg)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
	big := strings.Repeat("x", 20<<10)
	require.NoError(t, db.exec(db.sess, "START TRANSACTION"))
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = db.exec(db.sess, fmt.Sprintf("INSERT INTO t VALUES (%d, '%s')", i, big))
	}
	require.Error(t, err)
	require.Contains(t, err.Error(), "1197")
	require.NoError(t, db.exec(db.sess, "ROLLBACK"))
	require.Equal(t, []sql.Row{{int64(0)}}, db.query("SELECT COUNT(*) FROM t"))
}

// TestTransactionSizeCountsBufferedBytes: the size limit is on what the
// transaction buffers, so overwriting one row many times stays far below
// it, and a rolled-back statement gives its bytes back.
func TestTransactionSizeCountsBufferedBytes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxTxnBytes = 4 << 10
	db := newTestDBWith(t, cfg)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY, v INT, k INT, UNIQUE KEY (k))")
	db.query("INSERT INTO t VALUES (1, 0, 1)")
	require.NoError(t, db.exec(db.sess, "START TRANSACTION"))
	for i := 1; i <= 500; i++ {
		require.NoError(t, db.exec(db.sess, "UPDATE t SET v = v + 1 WHERE id = 1"), "update %d", i)
	}
	require.NoError(t, db.exec(db.sess, "SAVEPOINT s"))
	for i := 0; i < 20; i++ {
		require.NoError(t, db.exec(db.sess, "SAVEPOINT s"))
		require.NoError(t, db.exec(db.sess, fmt.Sprintf("INSERT INTO t VALUES (%d, 0, %d)", 1000+i, 1000+i)))
		require.NoError(t, db.exec(db.sess, "ROLLBACK TO SAVEPOINT s"))
	}
	require.NoError(t, db.exec(db.sess, "COMMIT"))
	require.Equal(t, []sql.Row{{int32(1), int32(500), int32(1)}}, db.query("SELECT * FROM t"))
}

// TestIdleTransactionReleased: a transaction idle past IdleTxnTimeout is
// rolled back, its locks go, and its next statement says so.
func TestIdleTransactionReleased(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IdleTxnTimeout = 200 * time.Millisecond
	db := newTestDBWith(t, cfg)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	db.query("INSERT INTO t VALUES (1, 0)")

	idle := db.prov.NewSession(sql.NewBaseSession())
	idle.SetCurrentDatabase("d")
	require.NoError(t, db.exec(idle, "START TRANSACTION"))
	require.NoError(t, db.exec(idle, "UPDATE t SET v = 1 WHERE id = 1"))
	txnID := idle.txn.id
	require.NotZero(t, db.prov.cat().HeldBy(txnID))
	require.Eventually(t, func() bool { return db.prov.cat().HeldBy(txnID) == 0 }, 10*time.Second, 10*time.Millisecond)

	// Another session's update proceeds at once (it would wait otherwise).
	require.NoError(t, db.exec(db.sess, "SET SESSION innodb_lock_wait_timeout = 1"))
	require.NoError(t, db.exec(db.sess, "UPDATE t SET v = 2 WHERE id = 1"))
	err := db.exec(idle, "UPDATE t SET v = 3 WHERE id = 1")
	require.Error(t, err)
	require.Contains(t, err.Error(), "idle")
	require.Equal(t, []sql.Row{{int32(2)}}, db.query("SELECT v FROM t WHERE id = 1"))
}

// TestStaleRowIsNeverWritten: an editor handed a row older than the
// version it reads under its lock (what a statement that read its target
// from the snapshot would hand it) writes nothing and rolls the
// transaction back with 1213, for UPDATE and DELETE alike; a row the
// transaction wrote itself is current whatever its snapshot holds.
func TestStaleRowIsNeverWritten(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	db.query("INSERT INTO t VALUES (1, 1), (2, 1)")
	a := db.prov.NewSession(sql.NewBaseSession())
	a.SetCurrentDatabase("d")

	stale := sql.Row{int32(1), int32(1)}
	edits := map[string]func(*editor, *sql.Context) error{
		"update": func(e *editor, ctx *sql.Context) error { return e.Update(ctx, stale, sql.Row{int32(1), int32(2)}) },
		"delete": func(e *editor, ctx *sql.Context) error { return e.Delete(ctx, stale) },
	}
	want := int32(1)
	for name, edit := range edits {
		require.NoError(t, db.exec(a, "START TRANSACTION"))
		require.NoError(t, db.exec(a, "SELECT * FROM t"))
		want++
		require.NoError(t, db.exec(db.sess, fmt.Sprintf("UPDATE t SET v = %d WHERE id = 1", want)))
		require.NoError(t, db.exec(a, "UPDATE t SET v = 5 WHERE id = 2"))

		ctx := sql.NewContext(context.Background(), sql.WithSession(a)).WithQuery("UPDATE t SET v = 7")
		e := newTable(db.prov, db.prov.table("d", "t")).editor(ctx)
		e.StatementBegin(ctx)
		require.Equal(t, errDeadlock, edit(e, ctx), name)
		require.Zero(t, a.txn.buf.Len(), "%s: the transaction was not rolled back", name)
		require.NoError(t, db.exec(a, "COMMIT"))
		require.Equal(t, []sql.Row{{int32(1), want}, {int32(2), int32(1)}}, db.query("SELECT * FROM t ORDER BY id"), name)
	}

	// A row of the transaction's own is exempt.
	require.NoError(t, db.exec(a, "START TRANSACTION"))
	require.NoError(t, db.exec(a, "SELECT * FROM t"))
	require.NoError(t, db.exec(a, "UPDATE t SET v = 5 WHERE id = 2"))
	ctx := sql.NewContext(context.Background(), sql.WithSession(a)).WithQuery("UPDATE t SET v = 7")
	e := newTable(db.prov, db.prov.table("d", "t")).editor(ctx)
	e.StatementBegin(ctx)
	require.NoError(t, e.Update(ctx, sql.Row{int32(2), int32(5)}, sql.Row{int32(2), int32(7)}))
	require.NoError(t, db.exec(a, "COMMIT"))
	require.Equal(t, []sql.Row{{int32(1), want}, {int32(2), int32(7)}}, db.query("SELECT * FROM t ORDER BY id"))
}
