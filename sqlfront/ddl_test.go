package sqlfront

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
)

// TestFailedRebuildReleasesTableLock: a rebuild that fails half-way (the
// engine then skips closing the row sink) leaves no metadata lock behind;
// other sessions write the table at once.
func TestFailedRebuildReleasesTableLock(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE k (a INT, b INT)")
	db.query("INSERT INTO k VALUES (NULL, 1), (2, 2)")
	for _, q := range []string{"ALTER TABLE k ADD PRIMARY KEY (a)", "ALTER TABLE k MODIFY a INT NOT NULL PRIMARY KEY"} {
		require.Error(t, db.exec(db.sess, q), q)
	}

	w := db.prov.NewSession(sql.NewBaseSession())
	w.SetCurrentDatabase("d")
	require.NoError(t, db.exec(w, "SET SESSION innodb_lock_wait_timeout = 1"))
	require.NoError(t, db.exec(w, "INSERT INTO k VALUES (3, 3)"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO k VALUES (4, 4)"))
	require.Equal(t, []sql.Row{{int64(4)}}, db.query("SELECT COUNT(*) FROM k"))
}

// ddlWaitsForWriter runs DDL while session w has an open transaction that
// wrote d.t: the DDL must wait until w commits, as MySQL's metadata locks
// make it, and then succeed.
func ddlWaitsForWriter(t *testing.T, db *testDB, w *Session, ddl string) {
	t.Helper()
	waits := db.prov.LockStats().Waits
	done := make(chan error, 1)
	go func() { done <- db.exec(db.sess, ddl) }()
	require.Eventually(t, func() bool { return db.prov.LockStats().Waits > waits }, 10*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("%s finished while a writer held the table: %v", ddl, err)
	default:
	}
	require.NoError(t, db.exec(w, "COMMIT"))
	select {
	case err := <-done:
		require.NoError(t, err, ddl)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still waiting after the writer committed", ddl)
	}
}

// TestDropWaitsForWriters: DROP TABLE, DROP DATABASE and RENAME TABLE wait
// for transactions that wrote the table, so no committed row outlives its
// table unseen and no writer commits into a dropped table.
func TestDropWaitsForWriters(t *testing.T) {
	t.Run("drop table", func(t *testing.T) {
		db, w := openWriter(t)
		ddlWaitsForWriter(t, db, w, "DROP TABLE t")
		require.False(t, db.prov.HasDatabase(nil, "d") && db.prov.table("d", "t") != nil)
	})
	t.Run("drop database", func(t *testing.T) {
		db, w := openWriter(t)
		ddlWaitsForWriter(t, db, w, "DROP DATABASE d")
		require.False(t, db.prov.HasDatabase(nil, "d"))
	})
	t.Run("rename table", func(t *testing.T) {
		db, w := openWriter(t)
		ddlWaitsForWriter(t, db, w, "RENAME TABLE t TO t2")
		require.Equal(t, []sql.Row{{int32(1), int32(1)}}, db.query("SELECT * FROM t2"))
	})
}

// bigTable makes d.t (or d.<name>) with n rows, inserted 50 to a
// transaction, larger in total than a 64 KiB transaction limit.
func bigTable(t *testing.T, db *testDB, name, def string, n int) {
	t.Helper()
	db.query("CREATE TABLE " + name + " " + def)
	pad := strings.Repeat("p", 100)
	for i := 0; i < n; i += 50 {
		var vals []string
		for j := i; j < i+50 && j < n; j++ {
			vals = append(vals, fmt.Sprintf("(%d, 'v%05d%s')", j+1, j+1, pad))
		}
		require.NoError(t, db.exec(db.sess, "INSERT INTO "+name+" VALUES "+strings.Join(vals, ",")))
	}
}

func smallTxnDB(t *testing.T) *testDB {
	cfg := DefaultConfig()
	cfg.MaxTxnBytes = 64 << 10
	db := newTestDBWith(t, cfg)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	return db
}

// keysOf counts the stored keys of table ID id (rows and index entries)
// and of its AUTO_INCREMENT watermarks.
func keysOf(t *testing.T, db *testDB, id uint64) int {
	n := 0
	for _, pre := range [][]byte{keys.TablePrefix(id), autoIncPrefix(id)} {
		it := db.eng.NewIterator(pre, keys.PrefixEnd(pre), kv.MaxTimestamp, false)
		for it.Next() {
			n++
		}
		require.NoError(t, it.Err())
		it.Close()
	}
	return n
}

// awaitGone waits until table ID id has no stored keys left and no
// pending cleanup record.
func awaitGone(t *testing.T, db *testDB, id uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		v, err := db.eng.Get(dropKey(id, 0), kv.MaxTimestamp)
		require.NoError(t, err)
		return !v.Exists && keysOf(t, db, id) == 0
	}, 30*time.Second, 5*time.Millisecond, "rows of table ID %d still stored", id)
}

func lastTableID(t *testing.T, db *testDB) uint64 {
	v, err := db.eng.Get(keys.CatalogKey(catSeq, []byte("table")), kv.MaxTimestamp)
	require.NoError(t, err)
	return binary.BigEndian.Uint64(v.Data)
}

func tableID(t *testing.T, db *testDB, name string) uint64 {
	m := db.prov.table("d", name)
	require.NotNil(t, m, name)
	return m.def.ID
}

// TestDDLOnTableLargerThanTxnLimit: DROP TABLE, TRUNCATE, DROP DATABASE and
// rebuilding ALTERs succeed on a table larger than the transaction limit;
// the old rows are removed in the background.
func TestDDLOnTableLargerThanTxnLimit(t *testing.T) {
	const n = 3000
	def := "(id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(200), KEY kv (v))"

	t.Run("drop table", func(t *testing.T) {
		db := smallTxnDB(t)
		bigTable(t, db, "t", def, n)
		id := tableID(t, db, "t")
		require.Greater(t, keysOf(t, db, id), 2*n)
		require.NoError(t, db.exec(db.sess, "DROP TABLE t"))
		awaitGone(t, db, id)
	})
	t.Run("drop database", func(t *testing.T) {
		db := smallTxnDB(t)
		bigTable(t, db, "t", def, n)
		bigTable(t, db, "u", def, n)
		ids := []uint64{tableID(t, db, "t"), tableID(t, db, "u")}
		require.NoError(t, db.exec(db.sess, "DROP DATABASE d"))
		for _, id := range ids {
			awaitGone(t, db, id)
		}
	})
	t.Run("truncate", func(t *testing.T) {
		db := smallTxnDB(t)
		bigTable(t, db, "t", def, n)
		id := tableID(t, db, "t")
		require.NoError(t, db.exec(db.sess, "TRUNCATE TABLE t"))
		require.Equal(t, []sql.Row{{int64(0)}}, db.query("SELECT COUNT(*) FROM t"))
		db.query("INSERT INTO t (v) VALUES ('after')")
		require.Equal(t, []sql.Row{{int32(1), "after"}}, db.query("SELECT * FROM t"), "AUTO_INCREMENT restarts")
		awaitGone(t, db, id)
	})
	t.Run("rebuild", func(t *testing.T) {
		db := smallTxnDB(t)
		bigTable(t, db, "t", def, n)
		for _, q := range []string{
			"ALTER TABLE t ADD COLUMN w INT NOT NULL DEFAULT 7",
			"ALTER TABLE t MODIFY v VARCHAR(220)",
			"ALTER TABLE t DROP PRIMARY KEY, MODIFY id INT NOT NULL",
			"ALTER TABLE t ADD PRIMARY KEY (id)",
			"ALTER TABLE t ADD UNIQUE KEY uv (v)",
		} {
			id := tableID(t, db, "t")
			require.NoError(t, db.exec(db.sess, q), q)
			require.Equal(t, []sql.Row{{int64(n)}}, db.query("SELECT COUNT(*) FROM t"), q)
			if now := tableID(t, db, "t"); now != id {
				awaitGone(t, db, id)
			}
		}
		require.Equal(t, []sql.Row{{int64(n)}}, db.query("SELECT COUNT(*) FROM t WHERE w = 7"))
		require.Equal(t, []sql.Row{{int32(1234), int32(7)}}, db.query("SELECT id, w FROM t WHERE v LIKE 'v01234%'"))
		// A failed rebuild (a duplicate of the new key) leaves the table
		// whole and its copy is removed.
		db.query("ALTER TABLE t DROP PRIMARY KEY")
		db.query("INSERT INTO t VALUES (5, 'dup', 7)")
		before := lastTableID(t, db)
		require.Error(t, db.exec(db.sess, "ALTER TABLE t ADD PRIMARY KEY (id)"))
		require.Equal(t, []sql.Row{{int64(n + 1)}}, db.query("SELECT COUNT(*) FROM t"))
		require.Greater(t, lastTableID(t, db), before, "the copy had a table ID")
		for id := before + 1; id <= lastTableID(t, db); id++ {
			if id != tableID(t, db, "t") {
				awaitGone(t, db, id)
			}
		}
	})
}

// TestCleanupResumesAfterRestart: a restart in the middle of removing a
// dropped table's rows finishes the removal.
func TestCleanupResumesAfterRestart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxTxnBytes = 64 << 10
	cfg.cleanupBatches = 2 // stop after two batches, as a crash would
	db := newTestDBWith(t, cfg)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	bigTable(t, db, "t", "(id INT PRIMARY KEY, v VARCHAR(200), KEY kv (v))", 3000)
	id := tableID(t, db, "t")
	total := keysOf(t, db, id)
	require.NoError(t, db.exec(db.sess, "DROP TABLE t"))
	require.Eventually(t, func() bool { return db.prov.cleanupDone.Load() == 2 }, 30*time.Second, time.Millisecond)
	db.prov.Close()
	left := keysOf(t, db, id)
	require.Less(t, left, total, "the first batches ran")
	require.Greater(t, left, 0, "the cleanup stopped half-way")

	db2 := db.reopen()
	awaitGone(t, db2, id)
}

// TestRebuildKeepsAutoIncrement: a rebuild keeps the AUTO_INCREMENT
// sequence, also past values whose rows are gone and when this process
// has not used the sequence yet (a restart in between), as InnoDB does.
func TestRebuildKeepsAutoIncrement(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
	db.query("INSERT INTO t (v) VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)")
	db.query("DELETE FROM t WHERE id > 5")
	// A clean shutdown gives the unused part of the reserved block back.
	require.NoError(t, db.prov.ReleaseSequences(context.Background()))
	// One provider per store, as in a server: another's cleaner would
	// take the rebuild's unfinished copy for a dead one.
	db.prov.Close()
	db2 := db.reopen()
	require.NoError(t, db2.exec(db2.sess, "ALTER TABLE t ADD COLUMN w INT"))
	db2.query("INSERT INTO t (v) VALUES (11)")
	require.Equal(t, []sql.Row{{int32(11)}}, db2.query("SELECT MAX(id) FROM t"))

	// After a crash (no release) the sequence resumes above its block:
	// never below a value handed out before.
	db2.prov.Close()
	db3 := db2.reopen()
	require.NoError(t, db3.exec(db3.sess, "ALTER TABLE t ADD COLUMN x INT"))
	db3.query("INSERT INTO t (v) VALUES (12)")
	require.Equal(t, []sql.Row{{int64(1)}}, db3.query("SELECT COUNT(*) FROM t WHERE v = 12 AND id > 11"))
}
