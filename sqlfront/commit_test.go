package sqlfront

import (
	"testing"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"
)

// openWriter makes table d.t and a second session with an open transaction
// that has inserted a row into it.
func openWriter(t *testing.T) (*testDB, *Session) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY, v INT)")

	w := db.prov.NewSession(sql.NewBaseSession())
	w.SetCurrentDatabase("d")
	require.NoError(t, db.exec(w, "START TRANSACTION"))
	require.NoError(t, db.exec(w, "INSERT INTO t VALUES (1, 1)"))
	return db, w
}

// TestCommitRacingDDLFails: a transaction that wrote a table whose
// definition changed before it committed fails cleanly (1412) and writes
// nothing, instead of storing rows of the old shape. On one node the table
// metadata lock keeps DDL away from open writers, so the race is staged by
// committing with the definition the transaction started from.
func TestCommitRacingDDLFails(t *testing.T) {
	db, w := openWriter(t)
	stale := w.txn.tables
	// Let the DDL through: end the writer's transaction without losing its
	// buffered rows, as a lost leader lock would.
	txn := w.txn
	db.prov.cat().ReleaseAll(txn.id)
	db.query("ALTER TABLE t ADD COLUMN extra INT")
	txn.tables = stale

	err := db.prov.commit(sql.NewEmptyContext(), txn)
	require.Error(t, err)
	require.Contains(t, err.Error(), "1412")
	require.Equal(t, []sql.Row{{int64(0)}}, db.query("SELECT COUNT(*) FROM t"))
}

// TestDDLWaitsForWriters: the table metadata lock makes ALTER TABLE wait
// for a transaction that wrote the table, as MySQL's metadata locks do.
func TestDDLWaitsForWriters(t *testing.T) {
	db, w := openWriter(t)

	done := make(chan error, 1)
	go func() { done <- db.exec(db.sess, "ALTER TABLE t ADD COLUMN extra INT") }()
	require.Eventually(t, func() bool { return db.prov.LockStats().Waits > 0 }, 10*time.Second, 5*time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("ALTER finished while a writer held the table: %v", err)
	default:
	}
	require.NoError(t, db.exec(w, "COMMIT"))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("ALTER still waiting after the writer committed")
	}
	require.Equal(t, []sql.Row{{int32(1), int32(1), nil}}, db.query("SELECT * FROM t"))
}
