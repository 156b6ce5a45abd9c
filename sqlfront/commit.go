package sqlfront

import (
	"context"
	"errors"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
)

// commit turns the transaction's buffered writes into one batch whose
// preconditions are every version the transaction read under a lock, every
// unique key it claimed, and the catalog version of every table it wrote.
// The batch is durable (fsynced) when Commit returns.
func (p *Provider) commit(ctx *sql.Context, t *txn) error {
	if t.buf.Len() == 0 {
		return nil
	}
	b := &kv.Batch{Mutations: make([]kv.Mutation, 0, t.buf.Len())}
	t.buf.Ascend(func(it bufItem) bool {
		b.Mutations = append(b.Mutations, kv.Mutation{Key: []byte(it.key), Value: it.val, Delete: it.del})
		return true
	})
	for k, o := range t.seen {
		b.Preconditions = append(b.Preconditions, kv.Precondition{Key: []byte(k), Exists: o.exists, Version: o.version})
	}
	for _, m := range t.tables {
		b.Preconditions = append(b.Preconditions, kv.Precondition{
			Key:     keys.CatalogKey(catTable, lower(m.db), lower(m.def.Name)),
			Exists:  true,
			Version: kv.Timestamp(m.version),
		})
	}
	if err := p.checkBatchSize(b); err != nil {
		return err
	}
	if ctx.Err() != nil {
		// The statement was stopped (KILL QUERY, its client gone, a time
		// limit) before its commit was proposed: nothing is written. The
		// engine also closes, and so commits, the autocommit transaction of
		// a statement whose rows failed half way; its context has ended.
		return errInterrupted
	}
	if p.cfg.beforeCommit != nil {
		p.cfg.beforeCommit()
	}
	start := time.Now()
	// Once proposed, a commit is not interrupted: the client gets what
	// became of it (success, a conflict, or 1180 when the group could not
	// confirm it within its timeout), never a stop for a commit that may
	// have happened.
	err := p.store.Commit(uncancelled(ctx), b)
	if p.cfg.OnCommit != nil {
		p.cfg.OnCommit(time.Since(start), err)
	}
	if err == nil {
		p.noteCommitted(t)
		return nil
	}
	var ce *kv.ConflictError
	if errors.As(err, &ce) {
		key := string(ce.Key)
		if len(key) > 0 && key[0] == keys.PrefixCatalog {
			return errTableDefChanged
		}
		if msg, ok := t.uniqueMsg[key]; ok {
			return mysql.NewSQLError(mysql.ERDupEntry, mysql.SSConstraintViolation, "%s", msg)
		}
		return errLockLost
	}
	return storeErr(err)
}

// checkBatchSize applies the transaction size limit to a batch built outside
// a transaction (DDL rewrites).
func (p *Provider) checkBatchSize(b *kv.Batch) error {
	if p.cfg.MaxTxnBytes <= 0 {
		return nil
	}
	var n int64
	for _, m := range b.Mutations {
		n += int64(len(m.Key) + len(m.Value) + 32)
	}
	if n > p.cfg.MaxTxnBytes {
		return errTxnTooLarge(p.cfg.MaxTxnBytes)
	}
	return nil
}

// uncancelled is ctx without its cancellation: the session and values stay
// (group commit counts committers by session), the statement's stop does
// not reach the commit.
func uncancelled(ctx *sql.Context) *sql.Context {
	return ctx.WithContext(context.WithoutCancel(ctx.Context))
}
