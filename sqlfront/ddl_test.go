package sqlfront

import (
	"testing"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"
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
