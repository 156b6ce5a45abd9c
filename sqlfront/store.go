package sqlfront

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
	"github.com/fogdb/fogdb/replication"
)

// CatalogGroup is the ID of the group that holds the catalog: table
// definitions, users and grants, sequences' marks and cleanup records
// (every key under keys.PrefixCatalog). A table placed nowhere else keeps
// its rows there too.
const CatalogGroup uint64 = 1

// ErrPartUnavailable: this node serves no part of the group asked for, or
// cannot reach it now. A statement meets it as "data unavailable" (1047).
var ErrPartUnavailable = errors.New("sqlfront: group not reachable from this node")

// Part is what the SQL layer needs from the storage of one group: reads
// (current, or as of a snapshot registered for a transaction), durable
// commits, row locks held where every node's transactions meet, read
// barriers, and a way to run a request where the group's sequences are
// kept. LocalStore is one process on its own; GroupStore is a member of a
// replicated group, read from its local replica; RemotePart is a group
// this node does not host, read at its leader.
type Part interface {
	// Get reads key as of ts: a timestamp a Snapshot of this part holds,
	// or kv.MaxTimestamp for the newest committed version (after Lock of
	// the key, a current read).
	Get(ctx context.Context, key []byte, ts kv.Timestamp) (kv.Value, error)
	// NewIterator walks the live keys in [start, end) as of ts (end nil:
	// unbounded), ascending, or descending when reverse is set, in
	// kv.Iterator's manner: no storage transaction stays open between
	// calls, so a consistent view needs ts held by a Snapshot.
	NewIterator(ctx context.Context, start, end []byte, ts kv.Timestamp, reverse bool) Iterator
	// Snapshot registers a read point for transaction owner: reads at its
	// TS see every commit acknowledged before the call, and keep seeing
	// exactly that until Release.
	Snapshot(ctx context.Context, owner lock.TxnID) (Snapshot, error)
	// Commit writes b; when it returns nil, b is durable and visible to
	// this node's next read. A failed precondition is a *kv.ConflictError.
	Commit(ctx context.Context, b *kv.Batch) error
	// ReadBarrier returns once this node's reads of the part see every
	// commit acknowledged to anyone before the call.
	ReadBarrier(ctx context.Context) error
	// Lock, ReleaseAll, HeldBy: row locks (see kv/lock). After Lock, a
	// read of the key at kv.MaxTimestamp is a current read.
	Lock(ctx context.Context, owner lock.TxnID, key []byte, mode lock.Mode, timeout time.Duration) error
	ReleaseAll(owner lock.TxnID)
	HeldBy(owner lock.TxnID) int
	LockStats() lock.Stats
	// Leading reports whether sequences are kept here, and since which
	// term: a new term means another node kept them meanwhile.
	Leading() (term uint64, ok bool)
	// TermBarrier returns once this node, leading, has applied every
	// entry of earlier terms: before it, what is stored may lack values
	// an earlier leader handed out and recorded.
	TermBarrier(ctx context.Context) error
	// Call runs a handler registered with Handle where sequences are kept.
	Call(ctx context.Context, method uint8, req []byte) ([]byte, error)
	Handle(method uint8, h func(ctx context.Context, req []byte) ([]byte, error))
	// OnApply registers a hook told of batches written by other nodes (and
	// of snapshot installs), so cached state follows them.
	OnApply(h func(batches []*kv.Batch, restored bool))
}

// Iterator walks keys of a part; *kv.Iterator is one. Key and Value are
// valid until the next call to Next.
type Iterator interface {
	Next() bool
	Key() []byte
	Value() []byte
	Version() kv.Timestamp
	Err() error
	Close()
}

// Snapshot is a read point registered in a part; *kv.Snapshot is one.
type Snapshot interface {
	TS() kv.Timestamp
	Release()
}

var (
	_ Iterator = (*kv.Iterator)(nil)
	_ Snapshot = (*kv.Snapshot)(nil)
	_ Part     = (*LocalStore)(nil)
	_ Part     = GroupStore{}
)

// replica is a part with a local replica: its engine, for callers outside
// the SQL layer (Provider.Engine) and for estimates that must not cost a
// request to another node.
type replica interface {
	Engine() *kv.Engine
}

// Store is the storage a provider serves: the part of the catalog group,
// and the parts of the groups tables are placed in (Config.PlaceTable).
// LocalStore and GroupStore are stores of one part, which holds every
// table; PartSet is a store of several.
type Store interface {
	// Catalog is the part of CatalogGroup.
	Catalog() Part
	// Part returns the part of group id (Catalog for CatalogGroup). A
	// group this node cannot reach is an error wrapping
	// ErrPartUnavailable.
	Part(id uint64) (Part, error)
}

// PartSet is a Store of several parts, one per group, fixed or changed
// with Set as groups come and go.
type PartSet struct {
	mu    sync.RWMutex
	parts map[uint64]Part
}

// NewPartSet returns a store whose catalog part is catalog and whose other
// groups are others (by group ID).
func NewPartSet(catalog Part, others map[uint64]Part) *PartSet {
	s := &PartSet{parts: map[uint64]Part{CatalogGroup: catalog}}
	for id, p := range others {
		if id != CatalogGroup {
			s.parts[id] = p
		}
	}
	return s
}

// Catalog implements Store.
func (s *PartSet) Catalog() Part {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.parts[CatalogGroup]
}

// Part implements Store.
func (s *PartSet) Part(id uint64) (Part, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.parts[id]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("%w: group %d", ErrPartUnavailable, id)
}

// Set makes p the part of group id; nil makes the group unreachable. The
// catalog part cannot be removed.
func (s *PartSet) Set(id uint64, p Part) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case p != nil:
		s.parts[id] = p
	case id != CatalogGroup:
		delete(s.parts, id)
	}
}

// onePart is the Store of a single part.
func onePart(p Part, id uint64) (Part, error) {
	if id == CatalogGroup {
		return p, nil
	}
	return nil, fmt.Errorf("%w: group %d (this store has one group)", ErrPartUnavailable, id)
}

// LocalStore is a Part of one process over one kv engine, and the Store
// of that one part.
type LocalStore struct {
	eng      *kv.Engine
	locks    *lock.Manager
	handlers map[uint8]func(ctx context.Context, req []byte) ([]byte, error)
}

// NewLocalStore returns a Part over eng with its own lock table.
func NewLocalStore(eng *kv.Engine) *LocalStore {
	return &LocalStore{eng: eng, locks: lock.NewManager(), handlers: map[uint8]func(context.Context, []byte) ([]byte, error){}}
}

func (s *LocalStore) Catalog() Part                { return s }
func (s *LocalStore) Part(id uint64) (Part, error) { return onePart(s, id) }
func (s *LocalStore) Engine() *kv.Engine           { return s.eng }
func (s *LocalStore) Get(_ context.Context, key []byte, ts kv.Timestamp) (kv.Value, error) {
	return s.eng.Get(key, ts)
}
func (s *LocalStore) NewIterator(_ context.Context, start, end []byte, ts kv.Timestamp, reverse bool) Iterator {
	return s.eng.NewIterator(start, end, ts, reverse)
}
func (s *LocalStore) Snapshot(context.Context, lock.TxnID) (Snapshot, error) {
	return s.eng.Snapshot(), nil
}
func (s *LocalStore) Commit(ctx context.Context, b *kv.Batch) error {
	_, err := s.eng.Commit(ctx, b)
	return err
}
func (s *LocalStore) ReadBarrier(context.Context) error { return nil }
func (s *LocalStore) Lock(ctx context.Context, owner lock.TxnID, key []byte, mode lock.Mode, timeout time.Duration) error {
	return s.locks.Acquire(ctx, owner, key, mode, timeout)
}
func (s *LocalStore) ReleaseAll(owner lock.TxnID)     { s.locks.ReleaseAll(owner) }
func (s *LocalStore) HeldBy(owner lock.TxnID) int     { return s.locks.HeldBy(owner) }
func (s *LocalStore) LockStats() lock.Stats           { return s.locks.Stats() }
func (s *LocalStore) Leading() (uint64, bool)         { return 1, true }
func (s *LocalStore) OnApply(func([]*kv.Batch, bool)) {} // no other writer

// TermBarrier: one process has one term.
func (s *LocalStore) TermBarrier(context.Context) error { return nil }

func (s *LocalStore) Handle(m uint8, h func(context.Context, []byte) ([]byte, error)) {
	s.handlers[m] = h
}
func (s *LocalStore) Call(ctx context.Context, m uint8, req []byte) ([]byte, error) {
	h := s.handlers[m]
	if h == nil {
		return nil, fmt.Errorf("sqlfront: no handler for method %d", m)
	}
	return h(ctx, req)
}

// GroupStore is a Part over a replication group, and the Store of that
// one part.
type GroupStore struct{ G *replication.Group }

func (s GroupStore) Catalog() Part                { return s }
func (s GroupStore) Part(id uint64) (Part, error) { return onePart(s, id) }

func (s GroupStore) Engine() *kv.Engine { return s.G.Engine() }
func (s GroupStore) Get(_ context.Context, key []byte, ts kv.Timestamp) (kv.Value, error) {
	return s.G.Engine().Get(key, ts)
}
func (s GroupStore) NewIterator(_ context.Context, start, end []byte, ts kv.Timestamp, reverse bool) Iterator {
	return s.G.Engine().NewIterator(start, end, ts, reverse)
}

// Snapshot registers the snapshot in the local replica: a read barrier
// (the caller's) before it makes it hold every acknowledged commit.
func (s GroupStore) Snapshot(context.Context, lock.TxnID) (Snapshot, error) {
	return s.G.Engine().Snapshot(), nil
}
func (s GroupStore) Commit(ctx context.Context, b *kv.Batch) error {
	_, err := s.G.Commit(committing(ctx), b)
	return err
}
func (s GroupStore) ReadBarrier(ctx context.Context) error { return s.G.ReadBarrier(counted(ctx)) }
func (s GroupStore) Lock(ctx context.Context, owner lock.TxnID, key []byte, mode lock.Mode, timeout time.Duration) error {
	return s.G.Lock(counted(ctx), owner, key, mode, timeout)
}
func (s GroupStore) ReleaseAll(owner lock.TxnID) { s.G.ReleaseAll(owner) }
func (s GroupStore) HeldBy(owner lock.TxnID) int { return s.G.HeldBy(owner) }
func (s GroupStore) LockStats() lock.Stats       { return s.G.LockStats() }
func (s GroupStore) Leading() (uint64, bool)     { return s.G.LeaderTerm() }
func (s GroupStore) TermBarrier(ctx context.Context) error {
	return s.G.TermBarrier(counted(ctx))
}
func (s GroupStore) OnApply(h func([]*kv.Batch, bool)) {
	s.G.FSM().OnApply(replication.ApplyHook(h))
}
func (s GroupStore) Handle(m uint8, h func(context.Context, []byte) ([]byte, error)) {
	s.G.Handle(replication.FirstUserMethod+replication.Method(m), h)
}
func (s GroupStore) Call(ctx context.Context, m uint8, req []byte) ([]byte, error) {
	return s.G.Call(counted(ctx), replication.FirstUserMethod+replication.Method(m), req)
}

// SinceLeaderContact implements ContactReporter.
func (s GroupStore) SinceLeaderContact() (time.Duration, bool) {
	return s.G.SinceLeaderContact()
}

// counted makes the requests sent on behalf of a statement count against
// its session's transaction (fogdb_wan_round_trips, wan.go).
func counted(ctx context.Context) context.Context {
	sc, ok := ctx.(*sql.Context)
	if !ok || sc.Session == nil {
		return ctx
	}
	s, ok := sc.Session.(*Session)
	if !ok {
		return ctx
	}
	return replication.WithCallCounts(ctx, s.wan.cur.Load())
}

// Errors of a replicated store, as a client meets them (README, "Errors a
// client can meet").
func errUnavailable(err error) error {
	return mysql.NewSQLError(mysql.ERUnknownComError, mysql.SSNetError, "%s",
		"fogdb: data unavailable, nothing was written; retry later ("+err.Error()+")")
}

func errOutcomeUnknown(err error) error {
	return mysql.NewSQLError(1180, mysql.SSUnknownSQLState, "%s",
		"Got error 1 - 'fogdb: outcome unknown: the commit was proposed but not confirmed; check before retrying ("+err.Error()+")' during COMMIT")
}

// ReadBarrier makes this node's catalog and data current (Store.ReadBarrier)
// for work that does not go through a statement, with the error a client
// would get.
func (p *Provider) ReadBarrier(ctx context.Context) error {
	return storeErr(p.cat().ReadBarrier(ctx))
}

// storeErr maps the replication errors a statement can meet; others pass.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replication.ErrOutcomeUnknown):
		return errOutcomeUnknown(err)
	case errors.Is(err, replication.ErrUnavailable), errors.Is(err, replication.ErrNotLeader),
		errors.Is(err, replication.ErrShutdown), errors.Is(err, ErrPartUnavailable):
		return errUnavailable(err)
	case errors.Is(err, kv.ErrKeyTooLarge):
		return errStoredKeyTooLong(err.Error())
	case errors.Is(err, kv.ErrInvalidBatch):
		return mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "%s",
			"fogdb: the store refused this commit, nothing was written ("+err.Error()+")")
	}
	return err
}

// onApply follows catalog changes made by other nodes: the cached
// definitions of the databases they touch are reloaded, and users and grants
// are marked for reloading when those changed. It runs before readers
// waiting for the entry go on.
func (p *Provider) onApply(batches []*kv.Batch, restored bool) {
	if restored {
		if dbs, err := loadCatalog(p.cat()); err == nil {
			p.catMu.Lock()
			p.dbs = dbs
			p.catMu.Unlock()
		} else {
			p.log.Error("reloading catalog after a snapshot install", "error", err)
		}
		p.forgetAllCounters()
		p.grants.dirty.Store(true)
		if p.cfg.OnGrantsChanged != nil {
			p.cfg.OnGrantsChanged()
		}
		return
	}
	touched := map[string]bool{}
	grants := false
	for _, b := range batches {
		for _, m := range b.Mutations {
			if len(m.Key) == 0 || m.Key[0] != keys.PrefixCatalog {
				continue
			}
			kind, rest, err := keys.DecodeBytes(m.Key[1:])
			if err != nil {
				continue
			}
			switch {
			case bytes.Equal(kind, catMySQLDB):
				grants = true
			case bytes.Equal(kind, catDrop):
				p.kickCleanup()
			case bytes.Equal(kind, catDB), bytes.Equal(kind, catTable), bytes.Equal(kind, catView),
				bytes.Equal(kind, catTrigger), bytes.Equal(kind, catProc):
				if db, _, err := keys.DecodeBytes(rest); err == nil {
					touched[string(db)] = true
				}
			}
		}
	}
	for db := range touched {
		old := p.db(db)
		if err := p.reloadDB(db); err != nil {
			p.log.Error("reloading catalog of a database changed elsewhere", "db", db, "error", err)
			continue
		}
		p.forgetChanged(old, p.db(db))
	}
	if grants {
		p.grants.dirty.Store(true)
		if p.cfg.OnGrantsChanged != nil {
			p.cfg.OnGrantsChanged()
		}
	}
}

// forgetChanged drops the counters of tables whose definition changed or
// went away (a TRUNCATE or ALTER elsewhere resets their sequences).
func (p *Provider) forgetChanged(old, cur *dbState) {
	if old == nil {
		return
	}
	for name, m := range old.tables {
		var n *tableMeta
		if cur != nil {
			n = cur.tables[name]
		}
		if n == nil || n.def.ID != m.def.ID || n.version != m.version {
			p.forgetCounters(m.def.ID)
		}
	}
}

func (p *Provider) forgetAllCounters() {
	p.seqMu.Lock()
	p.rowCounts = map[uint64]*rowCountState{}
	sts := make([]*seqState, 0, len(p.seqs))
	for _, st := range p.seqs {
		sts = append(sts, st)
	}
	p.seqMu.Unlock()
	for _, st := range sts {
		st.forget()
	}
}
