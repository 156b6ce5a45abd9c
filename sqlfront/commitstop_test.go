package sqlfront

import (
	"context"
	"testing"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"
)

// TestStoppedStatementCommitsNothing: a statement stopped (KILL QUERY, its
// client gone, a time limit) before its commit is proposed writes nothing,
// answers 1317 and leaves no lock behind.
func TestStoppedStatementCommitsNothing(t *testing.T) {
	db, w := openWriter(t)
	txn := w.txn
	require.Positive(t, db.prov.cat().HeldBy(txn.id))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := w.CommitTransaction(sql.NewContext(ctx, sql.WithSession(w)), nil)
	require.ErrorIs(t, err, errInterrupted)
	require.Zero(t, db.prov.cat().HeldBy(txn.id), "a stopped commit kept its locks")
	require.Equal(t, []sql.Row{{int64(0)}}, db.query("SELECT COUNT(*) FROM t"))
	// The row's lock is free: another transaction writes it at once.
	require.NoError(t, db.exec(db.sess, "INSERT INTO t VALUES (1, 2)"))
}

// TestProposedCommitIsNotInterrupted: a stop that arrives once the commit
// is proposed does not interrupt it: the commit completes and succeeds, so
// the client is never told a written transaction failed.
func TestProposedCommitIsNotInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := DefaultConfig()
	cfg.beforeCommit = cancel
	db := newTestDBWith(t, cfg)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	w := db.prov.NewSession(sql.NewBaseSession())
	w.SetCurrentDatabase("d")
	require.NoError(t, db.exec(w, "START TRANSACTION"))
	require.NoError(t, db.exec(w, "INSERT INTO t VALUES (1, 1)"))

	require.NoError(t, w.CommitTransaction(sql.NewContext(ctx, sql.WithSession(w)), nil))
	require.Error(t, ctx.Err(), "the stop arrived during the commit")
	require.Equal(t, []sql.Row{{int32(1), int32(1)}}, db.query("SELECT * FROM t"))
}
