package sqlfront

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// commit turns the transaction's buffered writes into one batch whose
// preconditions are every version the transaction read under a lock, every
// unique key it claimed, and the definition of every table it wrote: the
// catalog entry's version for a table of the catalog group, the definition
// marker's (read under its lock, so among the versions read) for a table
// placed elsewhere. The batch goes to the one group the transaction wrote
// in; writes to several groups are refused, nothing written. Versions read
// in another group than the one written cannot be checked by its batch
// and are left out: a transaction that writes one group and only reads
// others commits to that group alone. The batch is durable (fsynced) when
// Commit returns.
func (p *Provider) commit(ctx *sql.Context, t *txn) error {
	if t.buf.Len() == 0 {
		return nil
	}
	group := uint64(0)
	multi := false
	t.buf.Ascend(func(it bufItem) bool {
		if group == 0 {
			group = it.group
		} else if it.group != group {
			multi = true
			return false
		}
		return true
	})
	if multi {
		return p.errMultiGroup(t)
	}
	b := &kv.Batch{Mutations: make([]kv.Mutation, 0, t.buf.Len())}
	t.buf.Ascend(func(it bufItem) bool {
		b.Mutations = append(b.Mutations, kv.Mutation{Key: []byte(it.key), Value: it.val, Delete: it.del})
		return true
	})
	// The store reports the first precondition that failed, so the
	// clearest account goes first: a table changed under the transaction
	// (1412), whatever else the change did to its rows (a cleaner removing
	// them, say), from its catalog definition, then from its definition
	// marker; then the keys claimed by this commit (lockbatch.go), in the
	// statement's order, so that a duplicate is the first row's; then the
	// rest.
	if group == CatalogGroup {
		for _, m := range t.tables {
			if m.placed() {
				continue
			}
			b.Preconditions = append(b.Preconditions, kv.Precondition{
				Key:     keys.CatalogKey(catTable, lower(m.db), lower(m.def.Name)),
				Exists:  true,
				Version: kv.Timestamp(m.version),
			})
		}
	}
	for k, o := range t.seen {
		if k.group == group && isMarkerKey([]byte(k.key)) {
			b.Preconditions = append(b.Preconditions, kv.Precondition{Key: []byte(k.key), Exists: o.exists, Version: o.version})
		}
	}
	claimed := map[gkey]bool{}
	for _, k := range t.deferred {
		if o, ok := t.seen[k]; ok && k.group == group && !claimed[k] {
			claimed[k] = true
			b.Preconditions = append(b.Preconditions, kv.Precondition{Key: []byte(k.key), Exists: o.exists, Version: o.version})
		}
	}
	for k, o := range t.seen {
		if k.group == group && !isMarkerKey([]byte(k.key)) && !claimed[k] {
			b.Preconditions = append(b.Preconditions, kv.Precondition{Key: []byte(k.key), Exists: o.exists, Version: o.version})
		}
	}
	if err := p.checkBatchSize(b); err != nil {
		return err
	}
	tp, err := t.in(p, group)
	if err != nil {
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
	if len(tp.pending) > 0 {
		// The locks the statement left for the commit are taken at the
		// leader first, in the commit's request (lockbatch.go).
		sess := sessionOf(ctx)
		err = tp.part.(batchLocker).CommitLocked(uncancelled(ctx), t.id, tp.pending, sess.lockWait(ctx), b)
		if errors.Is(err, lock.ErrDeadlock) || errors.Is(err, lock.ErrAborted) || errors.Is(err, lock.ErrTimeout) {
			// Refused before anything was proposed.
			return lockErr(sess, t, err)
		}
	} else {
		err = tp.part.Commit(uncancelled(ctx), b)
	}
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
		if len(key) > 0 && key[0] == keys.PrefixCatalog || isMarkerKey(ce.Key) {
			return errTableDefChanged
		}
		if msg, ok := t.uniqueMsg[gkey{group, key}]; ok {
			return mysql.NewSQLError(mysql.ERDupEntry, mysql.SSConstraintViolation, "%s", msg)
		}
		return errLockLost
	}
	return storeErr(err)
}

// errMultiGroup is the refusal of a transaction that wrote in several
// groups: an atomic commit across groups is not built yet.
func (p *Provider) errMultiGroup(t *txn) error {
	byGroup := map[uint64][]string{}
	t.buf.Ascend(func(it bufItem) bool {
		if _, ok := byGroup[it.group]; !ok {
			byGroup[it.group] = nil
		}
		return true
	})
	for tg := range t.written {
		m := t.tables[tg.table]
		if _, ok := byGroup[tg.group]; ok && m != nil {
			byGroup[tg.group] = append(byGroup[tg.group], m.db+"."+m.def.Name)
		}
	}
	groups := make([]uint64, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i] < groups[j] })
	parts := make([]string, len(groups))
	for i, g := range groups {
		names := byGroup[g]
		sort.Strings(names)
		parts[i] = fmt.Sprintf("group %d: %s", g, strings.Join(names, ", "))
	}
	return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSClientError, "%s", fmt.Sprintf(
		"This version of fogdb doesn't yet support 'a transaction that writes to more than one group (%s)'; nothing was written",
		strings.Join(parts, "; ")))
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
