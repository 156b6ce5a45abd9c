package sqlfront

import (
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
	start := time.Now()
	err := p.cat().Commit(ctx, b)
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
