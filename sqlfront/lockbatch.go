package sqlfront

import (
	"context"
	"strings"
	"time"

	"github.com/dolthub/go-mysql-server/sql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
	"github.com/fogdb/fogdb/replication"
)

// Locks deferred to the commit (DESIGN.md, "Locks sent with the commit").
//
// An autocommit statement commits as soon as it ends, so a lock it needs
// only to make its commit safe, not to decide what it returns, may be
// taken at the leader just before the commit, in the commit's own request:
// the table's metadata lock of a write, and the locks of the keys a plain
// INSERT claims where this node's replica shows them free (the commit's
// precondition that they are absent decides the duplicate). Through a
// leader at another site, that makes such a statement one request, not
// one per lock and one for the commit. Inside an explicit transaction
// the metadata lock waits only for the statement's first row lock, which
// it joins, or its first write; a key is claimed when the statement asks,
// as InnoDB does. Locks are deferred only through a leader elsewhere: one
// on this node grants them at no cost.

// batchLocker is a Part that takes several locks in one request to its
// leader, and locks with its commit.
type batchLocker interface {
	LockAll(ctx context.Context, owner lock.TxnID, reqs []replication.LockRequest, timeout time.Duration) error
	CommitLocked(ctx context.Context, owner lock.TxnID, reqs []replication.LockRequest, timeout time.Duration, b *kv.Batch) error
}

func (s GroupStore) LockAll(ctx context.Context, owner lock.TxnID, reqs []replication.LockRequest, timeout time.Duration) error {
	return s.G.LockAll(counted(ctx), owner, reqs, timeout)
}

func (s GroupStore) CommitLocked(ctx context.Context, owner lock.TxnID, reqs []replication.LockRequest, timeout time.Duration, b *kv.Batch) error {
	_, err := s.G.CommitLocked(committing(ctx), owner, reqs, timeout, b)
	return err
}

// committing is counted(ctx), tagged with its session for group commit.
func committing(ctx context.Context) context.Context {
	cctx := counted(ctx)
	if sc, ok := ctx.(*sql.Context); ok && sc.Session != nil {
		// Group commit counts the sessions committing (replication.linger).
		cctx = replication.WithCommitter(cctx, 1<<32|uint64(sc.Session.ID()))
	}
	return cctx
}

// implicitTxn reports whether the session's transaction ends with the
// statement that runs: autocommit, outside BEGIN.
func (s *Session) implicitTxn() bool {
	return !s.GetIgnoreAutoCommit() && s.autocommit()
}

// deferrable reports whether a lock in tp's part may wait to be sent
// with the next one: the part's leader is elsewhere and takes batches.
func (s *Session) deferrable(tp *txnPart) bool {
	if _, ok := tp.part.(batchLocker); !ok {
		return false
	}
	_, leading := tp.part.Leading()
	return !leading
}

// beforeWrite takes the locks left in group's part before the statement
// writes there, unless the transaction ends with the statement (its
// commit takes them): inside an explicit transaction a write is made
// under its locks, so a DDL waits for the transaction rather than failing
// its commit.
func (s *Session) beforeWrite(ctx *sql.Context, t *txn, group uint64) error {
	tp := t.parts[group]
	if tp == nil || len(tp.pending) == 0 || s.implicitTxn() {
		return nil
	}
	return s.takeDeferred(ctx, t, tp, nil)
}

// plainInsert reports whether the client's statement is an INSERT that
// fails on a duplicate key: not INSERT IGNORE, which turns it into a
// warning, nor ON DUPLICATE KEY UPDATE, which changes the row instead.
// Only then may a duplicate be found by the commit rather than by the
// statement. Either word anywhere in the text (in a string, say) rules it
// out: a false no only costs the round trips saved.
//
// The statement's own rows only: the table must be the one it names. A
// trigger's statements (which may be INSERT IGNORE) write other tables
// (MySQL refuses a trigger that writes its own table, 1442).
func plainInsert(q string, m *tableMeta) bool {
	w, i := word(q, skipSpaceAndComments(q, 0))
	if w != "insert" {
		return false
	}
	l := lowerASCII(q)
	if strings.Contains(l, "ignore") || strings.Contains(l, "duplicate") {
		return false
	}
	for {
		i = skipSpaceAndComments(q, i)
		w, next := word(q, i)
		if w != "into" && w != "low_priority" && w != "high_priority" && w != "delayed" {
			break
		}
		i = next
	}
	name, i, ok := identAt(q, i)
	if !ok {
		return false
	}
	db := ""
	if i < len(q) && q[i] == '.' {
		db = name
		if name, _, ok = identAt(q, i+1); !ok {
			return false
		}
	}
	return strings.EqualFold(name, m.def.Name) && (db == "" || strings.EqualFold(db, m.db))
}

// deferLock records a lock the commit will take in tp's part, before the
// locks recorded after it.
func (tp *txnPart) deferLock(key []byte, mode lock.Mode) {
	if i, ok := tp.pendingAt[string(key)]; ok {
		if mode == lock.Exclusive {
			tp.pending[i].Mode = mode
		}
		return
	}
	if tp.pendingAt == nil {
		tp.pendingAt = map[string]int{}
	}
	tp.pendingAt[string(key)] = len(tp.pending)
	tp.pending = append(tp.pending, replication.LockRequest{Key: append([]byte(nil), key...), Mode: mode})
}

// clearPending forgets the locks left for the commit, once taken.
func (tp *txnPart) clearPending() {
	tp.pending, tp.pendingAt = nil, nil
}

// deferredClaim is claim's read of a key a plain INSERT takes, without its
// lock: when this node's replica shows the key free, the lock and the
// check that it is still free go with the commit, and the duplicate, if
// one was committed meanwhile, is reported by the commit as the same
// 1062 (msg). It reports false when the claim must be made now: the
// statement or the part does not allow it, or the key is taken here (the
// replica may be behind a delete, so only a current read may say so).
func (s *Session) deferredClaim(ctx *sql.Context, t *txn, m *tableMeta, group uint64, key []byte, msg func() string) (bool, error) {
	if !s.implicitTxn() || !plainInsert(ctx.Query(), m) {
		return false, nil
	}
	tp, err := t.in(s.p, group)
	if err != nil || !s.deferrable(tp) {
		return false, err
	}
	if err := checkStoredKey(key); err != nil {
		return false, err
	}
	k := gkey{group, string(key)}
	if _, ok := t.get(group, string(key)); ok {
		return false, nil
	}
	if _, ok := t.seen[k]; ok {
		return false, nil
	}
	v, err := tp.part.Get(ctx, key, kv.MaxTimestamp)
	if err != nil {
		return false, storeErr(err)
	}
	if v.Exists {
		return false, nil
	}
	tp.deferLock(key, lock.Exclusive)
	t.seen[k] = observed{exists: false}
	t.uniqueMsg[k] = msg()
	// The commit checks these in the statement's order, so a duplicate
	// found there is the first row's, as MySQL reports it.
	t.deferred = append(t.deferred, k)
	return true, nil
}

// takeDeferred takes the locks tp's part holds for the commit, with one
// more (extra, when not nil), in one request.
func (s *Session) takeDeferred(ctx *sql.Context, t *txn, tp *txnPart, extra *replication.LockRequest) error {
	reqs := tp.pending
	if extra != nil {
		reqs = append(reqs[:len(reqs):len(reqs)], *extra)
	}
	err := lockErr(s, t, tp.part.(batchLocker).LockAll(ctx, t.id, reqs, s.lockWait(ctx)))
	if err == nil {
		tp.clearPending()
	}
	return err
}
