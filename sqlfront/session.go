package sqlfront

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/google/btree"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
	"github.com/fogdb/fogdb/replication"
)

// Session is one client connection's state: the engine's base session plus
// the open transaction, if any.
type Session struct {
	*sql.BaseSession
	p *Provider
	// wan counts the round trips to other sites of the session's
	// transactions (wan.go).
	wan *wanCounts
	// tlsVersion and tlsCipher are the connection's TLS, empty in clear
	// (tlsstatus.go); set once, before the first statement.
	tlsVersion, tlsCipher string

	// cmdMu is held for the whole of each client command (CommandBegin to
	// CommandEnd), so the idle reaper never touches a session whose
	// statement is running, and what it did is visible to the next one.
	cmdMu sync.Mutex
	// mu guards txn against the idle reaper; the connection's own goroutine
	// is the only other user.
	mu  sync.Mutex
	txn *txn
	// aborted is set when the reaper rolled back an idle transaction: the
	// next statement of that transaction reports it instead of silently
	// running in a fresh one.
	aborted   bool
	lastUsed  time.Time
	stmtState stmtState
	dupMsg    atomic.Pointer[dupMessage]
	// ddlOwners are the lock owners of the DDL statement running, if any
	// (guarded by mu). Whatever way the statement ends, its metadata locks
	// go with it: at the end of the command, or at the start of the next
	// statement for callers that run statements outside commands.
	ddlOwners []*ddlOwner
	// innerQuery is the text of the procedure or stored function statement the
	// engine is about to run (stmtRunner).
	innerQuery string
	// nextIso is the level SET TRANSACTION ISOLATION LEVEL (without
	// SESSION or GLOBAL) chose for the next transaction only.
	nextIso  isolation
	valueErr atomic.Pointer[valueErrorText]
	// mem is what the running statement has buffered (stmtlimit.go).
	mem stmtMemory
	// forceBarrier: the next statement passes the catalog group's barrier
	// whatever its names (RetryStale).
	forceBarrier bool
	// usedPassword: the client logged in with a password (files.go).
	usedPassword atomic.Bool
}

// valueErrorText is MySQL's answer to a value its column refuses (strict
// sql_mode), paired with the engine's text of the error that carries it.
type valueErrorText struct {
	engine     string
	num        int
	state, msg string
}

// TakeValueError returns MySQL's code, SQLSTATE and text for the error
// whose engine text is engineMsg, if this session's last refused value
// raised it; once.
func (s *Session) TakeValueError(engineMsg string) (num int, state, msg string, ok bool) {
	v := s.valueErr.Swap(nil)
	if v == nil || !strings.HasSuffix(engineMsg, v.engine) {
		return 0, "", "", false
	}
	return v.num, v.state, v.msg, true
}

// dupMessage pairs MySQL's text for a duplicate key with the engine's text
// of the error it belongs to. The engine swallows duplicate-key errors
// (INSERT IGNORE, ON DUPLICATE KEY UPDATE, REPLACE), so the last one raised
// need not be the one a client gets: the pairing tells.
type dupMessage struct{ engine, mysql string }

func (s *Session) setDupMessage(engine, mysql string) {
	s.dupMsg.Store(&dupMessage{engine: engine, mysql: mysql})
}

// TakeDupMessage returns MySQL's text for the duplicate-key error whose
// engine text is engineMsg, if this session raised it in the current
// command; once.
func (s *Session) TakeDupMessage(engineMsg string) string {
	m := s.dupMsg.Swap(nil)
	if m == nil || m.engine == "" || !strings.HasSuffix(engineMsg, m.engine) {
		return ""
	}
	return m.mysql
}

var (
	_ sql.Session               = (*Session)(nil)
	_ sql.TransactionSession    = (*Session)(nil)
	_ sql.LifecycleAwareSession = (*Session)(nil)
	_ sql.Transaction           = (*Transaction)(nil)
)

// NewSession wraps a base session.
func (p *Provider) NewSession(base *sql.BaseSession) *Session {
	s := &Session{BaseSession: base, p: p, lastUsed: time.Now(), wan: newWANCounts()}
	p.sessions.Store(s, struct{}{})
	p.byConn.Store(base.ID(), s)
	return s
}

// Transaction is the engine's handle on a fogdb transaction.
type Transaction struct {
	t *txn
}

func (t *Transaction) String() string { return fmt.Sprintf("fogdb transaction %d", t.t.id) }

// IsReadOnly implements sql.Transaction.
func (t *Transaction) IsReadOnly() bool { return t.t.readOnly }

// bufItem is one buffered write. del marks a delete; group is the group
// whose part the key belongs to. The keys of a local table's rows are the
// same in every group, so an item is known by its key and group, ordered
// by key first: a range of keys is one range of the buffer, whatever the
// groups.
type bufItem struct {
	key   string
	val   []byte
	del   bool
	group uint64
}

func bufLess(a, b bufItem) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	return a.group < b.group
}

type undoRec struct {
	key   string
	group uint64
	had   bool
	prev  bufItem
	size  int64 // what the write changed txn.size by
}

// gkey is a key in one group's part.
type gkey struct {
	group uint64
	key   string
}

// observed is what a current read saw of a key: the commit precondition
// that turns a lock lost to a leader change into a failed commit instead of
// a lost update.
type observed struct {
	exists  bool
	version kv.Timestamp
}

// tableGroup is a table ID in one group: where a transaction took the
// table's shared metadata lock and checked its definition.
type tableGroup struct {
	table, group uint64
}

type savepoint struct {
	name string
	undo int
}

// txnPart is what a transaction holds in the part of one group: its
// snapshot there, taken at its first plain read of that part, and (in the
// part's lock table) its locks.
type txnPart struct {
	part Part
	snap Snapshot
	// visible are the table (and index) IDs the snapshot was found to
	// know (tableMeta.visibleAt), so a transaction asks once per snapshot.
	visible map[[2]uint64]bool
	// noBarrier: the snapshot may be taken from the replica as it is
	// (staleRead).
	noBarrier bool
	// pending are locks left for the commit to take (lockbatch.go), and
	// pendingAt the position of each key in it.
	pending   []replication.LockRequest
	pendingAt map[string]int
}

// txn is the state of one open transaction.
type txn struct {
	id       lock.TxnID
	readOnly bool
	// parts are the groups the transaction read, locked or wrote in.
	parts     map[uint64]*txnPart
	buf       *btree.BTreeG[bufItem]
	undo      []undoRec
	seen      map[gkey]observed
	uniqueMsg map[gkey]string       // unique-index keys this txn claimed, with the duplicate-entry message their failed precondition means
	deferred  []gkey                // keys claimed by their commit's precondition (lockbatch.go), in order
	tables    map[uint64]*tableMeta // definitions of the tables written, checked at commit
	written   map[tableGroup]bool   // where the tables written hold their metadata lock
	// rowGroups are the groups where rows of local tables were read under
	// a lock, by row key: an UPDATE or DELETE writes the row there.
	rowGroups map[string]uint64
	size      int64
	saves     []savepoint
	// barrierDone: a read barrier of the catalog group's part ran since
	// the transaction began and before its snapshot there, so taking the
	// snapshot needs no other.
	barrierDone bool
	// iso is the transaction's isolation level, fixed when it first
	// touches a table (Session.isolation).
	iso isolation
}

func (p *Provider) newTxn(readOnly bool) *txn {
	return &txn{
		id:        lock.TxnID(p.nextTxn.Add(1)),
		readOnly:  readOnly,
		parts:     map[uint64]*txnPart{},
		buf:       btree.NewG[bufItem](16, bufLess),
		seen:      map[gkey]observed{},
		uniqueMsg: map[gkey]string{},
		tables:    map[uint64]*tableMeta{},
		written:   map[tableGroup]bool{},
		rowGroups: map[string]uint64{},
	}
}

// in returns what the transaction holds in group's part, starting it.
func (t *txn) in(p *Provider, group uint64) (*txnPart, error) {
	if tp := t.parts[group]; tp != nil {
		return tp, nil
	}
	pt, err := p.part(group)
	if err != nil {
		return nil, storeErr(err)
	}
	tp := &txnPart{part: pt}
	t.parts[group] = tp
	return tp, nil
}

// readTS returns the transaction's snapshot of group's part, taken at its
// first read of that part as InnoDB does for REPEATABLE READ and
// SERIALIZABLE; under READ COMMITTED each statement drops them
// (ValidateSession), so the next read takes a fresh one. On a replica a
// snapshot is taken only after a read barrier of its part, so it holds
// every commit acknowledged there before the read began, wherever it was
// made. Groups keep their own clocks: the snapshots of two parts are
// taken one after the other, never at one common time.
func (t *txn) readTS(ctx context.Context, p *Provider, group uint64) (kv.Timestamp, *txnPart, error) {
	tp, err := t.in(p, group)
	if err != nil {
		return 0, nil, err
	}
	if tp.snap == nil {
		snap, err := t.takeSnapshot(ctx, tp, group)
		if err != nil {
			return 0, nil, err
		}
		tp.snap, tp.visible = snap, nil
	}
	return tp.snap.TS(), tp, nil
}

// takeSnapshot registers a snapshot in tp's part after its read barrier.
// It touches none of the transaction's state, so snapshots of several
// parts can be taken at once (readTSAll).
func (t *txn) takeSnapshot(ctx context.Context, tp *txnPart, group uint64) (Snapshot, error) {
	if (!t.barrierDone || group != CatalogGroup) && !tp.noBarrier {
		if err := tp.part.ReadBarrier(ctx); err != nil {
			return nil, storeErr(err)
		}
	}
	snap, err := tp.part.Snapshot(ctx, t.id)
	if err != nil {
		return nil, storeErr(err)
	}
	return snap, nil
}

// readTSAll is readTS for several groups at once: the snapshots missing
// are taken in parallel, each part's barrier and registration waiting for
// its own site only.
func (t *txn) readTSAll(ctx context.Context, p *Provider, groups []uint64) (map[uint64]*txnPart, error) {
	out := make(map[uint64]*txnPart, len(groups))
	var need []uint64
	for _, g := range groups {
		tp, err := t.in(p, g)
		if err != nil {
			return nil, err
		}
		out[g] = tp
		if tp.snap == nil {
			need = append(need, g)
		}
	}
	snaps := make([]Snapshot, len(need))
	errs := parallel(len(need), func(i int) error {
		var err error
		snaps[i], err = t.takeSnapshot(ctx, out[need[i]], need[i])
		return err
	})
	for i, g := range need {
		if snaps[i] != nil {
			out[g].snap, out[g].visible = snaps[i], nil
		}
	}
	return out, errs
}

// parallel runs fn(0..n-1) at once (inline when n is 1) and returns the
// first error by index.
func parallel(n int, fn func(i int) error) error {
	if n == 1 {
		return fn(0)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return firstErr(errs)
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// hasSnapshot reports whether the transaction took a snapshot of any part.
func (t *txn) hasSnapshot() bool {
	for _, tp := range t.parts {
		if tp.snap != nil {
			return true
		}
	}
	return false
}

// dropSnapshots releases the transaction's snapshots: its next plain read
// of each part takes a new one.
func (t *txn) dropSnapshots() {
	for _, tp := range t.parts {
		if tp.snap != nil {
			tp.snap.Release()
			tp.snap, tp.visible = nil, nil
		}
		tp.noBarrier = false
	}
}

// heldBy counts the locks the transaction holds in every part.
func (t *txn) heldBy(p *Provider) int {
	n := p.cat().HeldBy(t.id)
	for g, tp := range t.parts {
		if g != CatalogGroup {
			n += tp.part.HeldBy(t.id)
		}
	}
	return n
}

// get returns the transaction's write of key in group's part.
func (t *txn) get(group uint64, key string) (bufItem, bool) {
	return t.buf.Get(bufItem{key: key, group: group})
}

// getAny returns the transaction's write of key in whichever part it
// wrote it (the first, should there be several).
func (t *txn) getAny(key string) (bufItem, bool) {
	var out bufItem
	found := false
	t.buf.AscendGreaterOrEqual(bufItem{key: key}, func(it bufItem) bool {
		if it.key == key {
			out, found = it, true
		}
		return false
	})
	return out, found
}

// bufSize is what a buffered write counts towards MaxTxnBytes: roughly
// what it adds to the commit's batch.
func bufSize(key string, val []byte) int64 { return int64(len(key) + len(val) + 32) }

// write buffers a write of key, which belongs to group's part.
func (t *txn) write(p *Provider, group uint64, key string, val []byte, del bool) error {
	// The store would refuse the commit; fail the statement instead.
	if err := checkStoredKey([]byte(key)); err != nil {
		return err
	}
	prev, had := t.buf.ReplaceOrInsert(bufItem{key: key, val: val, del: del, group: group})
	// The limit is on the batch the commit sends, where an overwritten
	// key appears once: a row updated many times counts once.
	sz := bufSize(key, val)
	if had {
		sz -= bufSize(prev.key, prev.val)
	}
	t.undo = append(t.undo, undoRec{key: key, group: group, had: had, prev: prev, size: sz})
	t.size += sz
	if p.cfg.MaxTxnBytes > 0 && t.size > p.cfg.MaxTxnBytes {
		return errTxnTooLarge(p.cfg.MaxTxnBytes)
	}
	return nil
}

// rollbackTo undoes buffered writes back to undo position n. Locks stay
// held, as InnoDB keeps them after a statement or savepoint rollback.
func (t *txn) rollbackTo(n int) {
	for i := len(t.undo) - 1; i >= n; i-- {
		u := t.undo[i]
		if u.had {
			t.buf.ReplaceOrInsert(u.prev)
		} else {
			t.buf.Delete(bufItem{key: u.key, group: u.group})
		}
		t.size -= u.size
	}
	t.undo = t.undo[:n]
}

// release drops the transaction's locks and snapshots in every part.
func (t *txn) release(p *Provider) {
	p.cat().ReleaseAll(t.id)
	for g, tp := range t.parts {
		tp.clearPending()
		if g != CatalogGroup {
			tp.part.ReleaseAll(t.id)
		}
	}
	t.dropSnapshots()
}

// lockMode is how a statement reads a table.
type lockMode uint8

const (
	readSnapshot  lockMode = iota // plain consistent read
	readShared                    // current read + shared lock
	readExclusive                 // current read + exclusive lock
)

// stmtState is the per-statement part of the session. The engine calls
// ValidateSession at the start of every statement it runs, which resets it.
type stmtState struct {
	query   string
	kind    stmtKind
	targets map[uint64]bool // tables this statement writes: their rows are read with X locks
	undo    int             // undo position where the open statement (or row checkpoint) began
	depth   int             // editors that began and have not completed or discarded
	claimed map[string]bool // keyless rows already matched by this statement
	created []createdTable  // tables this statement created, undone if it fails
	view    *btree.BTreeG[bufItem]
	viewOf  *txn
	barrier bool // a read barrier ran at the start of this statement

	// inserters are the statement's row inserters; an updater of the same
	// table (ON DUPLICATE KEY UPDATE) marks them as changing duplicates.
	inserters []*editor
}

type createdTable struct {
	db, name string
	id       uint64
}

// UndoFailedCreate drops the tables the failed statement created. The
// engine creates a table and then, one by one, its checks, indexes and
// foreign keys; when one of those fails, MySQL 8 (atomic DDL) leaves no
// table behind, and neither does fogdb.
func (s *Session) UndoFailedCreate(ctx *sql.Context) {
	created := s.stmtState.created
	s.stmtState.created = nil
	for _, c := range created {
		if err := s.p.dropTableID(ctx, c.db, c.name, c.id); err != nil && !sql.ErrTableNotFound.Is(err) {
			s.p.log.Warn("could not drop the table of a failed CREATE TABLE", "table", c.db+"."+c.name, "err", err)
		}
	}
}

// ValidateSession implements sql.Session; fogdb uses it as the hook that
// marks the start of a statement.
//
// A statement that begins a transaction's reads first passes a read
// barrier here, before the engine resolves its table names: the catalog
// this node caches must already hold every change acknowledged anywhere,
// or a table just created on another node would be reported missing.
func (s *Session) ValidateSession(ctx *sql.Context) error {
	q := ctx.Query()
	s.endDDL()
	inner := q == "" && s.innerQuery != ""
	if inner {
		// A statement of a procedure or stored function body, run
		// without its text: the text is the one the statement runner
		// printed.
		q = s.innerQuery
	}
	s.innerQuery = ""
	s.stmtState = stmtState{query: q}
	if t := s.txn; t != nil && t.hasSnapshot() && t.iso == isoReadCommitted && !inner {
		// READ COMMITTED: each statement reads the newest commits, so it
		// takes its own snapshots after their own read barriers. A body's
		// statement keeps its caller's: a stored function runs while the
		// calling statement may still be scanning as of them.
		t.dropSnapshots()
		t.barrierDone = false
	}
	if t := s.txn; t != nil && !inner {
		// A barrier an earlier statement ran (SHOW, a name that missed)
		// is older than this statement: a snapshot this statement takes
		// must follow a barrier of its own, or it could miss commits
		// acknowledged in between. A body's statement runs within its
		// CALL's statement, and keeps its barrier.
		t.barrierDone = false
	}
	s.mem.reset(ctx)
	if s.startsTxn() && !inner {
		s.wan.rotate()
	}
	force := s.forceBarrier && !inner
	s.forceBarrier = false
	if (s.txn == nil || !s.txn.hasSnapshot()) && needsBarrier(q) && (force || !catalogOnMiss(q) || strings.EqualFold(ctx.GetCurrentDatabase(), "mysql")) {
		if err := s.catalogBarrier(ctx); err != nil {
			return err
		}
	}
	// Users and grants are not transactional: every statement sees the
	// newest this node has, whatever its transaction's snapshot.
	if err := s.p.SyncGrants(ctx); err != nil {
		return err
	}
	return s.BaseSession.ValidateSession(ctx)
}

// catalogBarrier makes this node's catalog current for the statement: a
// read barrier of the catalog group, once per statement.
func (s *Session) catalogBarrier(ctx *sql.Context) error {
	if s.stmtState.barrier {
		return nil
	}
	if err := s.p.cat().ReadBarrier(ctx); err != nil {
		return storeErr(err)
	}
	s.stmtState.barrier = true
	if s.txn != nil {
		s.txn.barrierDone = true
	}
	return nil
}

// catalogOnMiss reports whether a statement resolves its names from the
// catalog this node has, asking the catalog group only for a name it does
// not find: reads and writes of rows. A table placed at this node's site
// is then read and written without any request to the global group (whose
// leader may be at another site, or cut off), and a table created
// elsewhere an instant ago is still found, after that one barrier. A
// change of a definition this node has not applied yet is caught by the
// table's version check at commit (and, for a table placed in another
// group, by its definition marker), and a read of a global table still
// passes the catalog group's barrier before its snapshot. Other statements
// (DDL, SHOW, CALL...) begin with the barrier, as before.
func catalogOnMiss(q string) bool {
	if rowStatement(q) {
		// Listings of the catalog (information_schema) are answered from
		// it whole, with no miss to notice; the grant tables (mysql.user,
		// ...) are the engine's copy of users and grants, refreshed from
		// this node's replica.
		lq := lowerASCII(q)
		return !strings.Contains(lq, "information_schema") && !strings.Contains(lq, "mysql")
	}
	return false
}

// rowStatement reports whether q reads or writes rows (SELECT, INSERT,
// UPDATE, DELETE, REPLACE, WITH), as opposed to DDL and the rest.
func rowStatement(q string) bool {
	i := skipSpaceAndComments(q, 0)
	for i < len(q) && q[i] == '(' {
		i = skipSpaceAndComments(q, i+1)
	}
	w, _ := word(q, i)
	switch w {
	case "select", "insert", "update", "delete", "replace", "with":
		return true
	}
	return false
}

// lookupMissed is called when a name the statement uses is not in this
// node's catalog: it may have been created elsewhere, so the catalog is
// brought up to date (once per statement) and found tells whether to look
// again.
func (p *Provider) lookupMissed(ctx *sql.Context) (again bool, err error) {
	if ctx == nil {
		return false, nil
	}
	s := sessionOf(ctx)
	if s == nil || s.stmtState.barrier {
		return false, nil
	}
	if err := s.catalogBarrier(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// RetryStale reports whether the statement that just failed naming an
// unknown column may be run again after the catalog group's barrier, and
// arranges that it will be. It resolved its names from this node's replica
// of the catalog without that barrier (catalogOnMiss), which may be behind
// a DDL made at another node that added the column; a single MySQL server
// would have found it. The engine refuses an unknown column while it
// plans, before anything runs, so nothing of the first run remains: its
// autocommit transaction ended with it (inside an explicit transaction the
// error stands, as the transaction may have read under the old
// definition). A table missed is asked about as it is looked up
// (lookupMissed). A commit refused because a definition changed (1412) is
// not run again: the statement ran by then, and what it did to the
// session (LAST_INSERT_ID, variables a trigger set) would show twice.
func (s *Session) RetryStale() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.txn != nil || s.stmtState.barrier || !catalogOnMiss(s.stmtState.query) {
		return false
	}
	s.forceBarrier = true
	return true
}

// BarrierNext makes the session's next statement pass the catalog group's
// barrier, whatever names it uses: the statement that just ended found a
// definition changed under it (1412), and the client's retry must be
// planned under the new one.
func (s *Session) BarrierNext() {
	s.mu.Lock()
	s.forceBarrier = true
	s.mu.Unlock()
}

// stmtText is the text of the statement running: the one ValidateSession
// saw, or the context's.
func (s *Session) stmtText(ctx *sql.Context) string {
	if q := s.stmtState.query; q != "" {
		return q
	}
	return ctx.Query()
}

func (s *Session) stmt(ctx *sql.Context) *stmtState {
	st := &s.stmtState
	if st.kind == stmtUnknown {
		q := st.query
		if q == "" {
			q = ctx.Query()
		}
		if name, ok := executedName(q); ok {
			if text, ok := s.p.preparedText(s.ID(), name); ok {
				q = text
			}
		}
		st.kind = classify(q)
	}
	return st
}

// readMode decides how this statement reads table id in transaction t:
// exclusively locked if the statement writes it (an editor of the
// statement's plan marked it) or asks FOR UPDATE; share-locked if the
// statement writes elsewhere or asks for shared locks, or if t is
// SERIALIZABLE and not an autocommit statement (InnoDB's implicit LOCK IN
// SHARE MODE); else from the snapshot. The cost for a plain SELECT is one
// pass over the query text per statement.
func (s *Session) readMode(ctx *sql.Context, t *txn, id uint64) lockMode {
	st := s.stmt(ctx)
	switch {
	case st.targets[id] || st.kind == stmtLockExclusive:
		return readExclusive
	case st.kind == stmtLockShared || len(st.targets) > 0:
		return readShared
	case s.isolation(ctx, t) == isoSerializable && (s.GetIgnoreAutoCommit() || !s.autocommit()):
		return readShared
	}
	return readSnapshot
}

func (s *Session) markTarget(ctx *sql.Context, id uint64) {
	st := s.stmt(ctx)
	if st.targets == nil {
		st.targets = map[uint64]bool{}
	}
	st.targets[id] = true
}

// statementBegin marks where a statement (or, for INSERT IGNORE, one row)
// starts. Editors of one statement nest (triggers, cascades): only the
// outermost begin sets the mark.
func (s *Session) statementBegin(ctx *sql.Context) {
	st := s.stmt(ctx)
	if t := s.txn; t != nil {
		s.readView(ctx, t)
	}
	if st.depth == 0 {
		st.undo = 0
		if t := s.txn; t != nil {
			st.undo = len(t.undo)
		}
	}
	st.depth++
}

// readView is the transaction's writes as they stood when the statement
// began: a statement never reads rows it wrote itself (an UPDATE over a
// join would otherwise update a row again each time the join meets it).
// The copy is a copy-on-write clone, so taking it costs nothing up front.
func (s *Session) readView(ctx *sql.Context, t *txn) *btree.BTreeG[bufItem] {
	st := s.stmt(ctx)
	if st.view == nil || st.viewOf != t {
		st.view = t.buf.Clone()
		st.viewOf = t
	}
	return st.view
}

// statementComplete closes one editor's statement.
func (s *Session) statementComplete(ctx *sql.Context) {
	if st := s.stmt(ctx); st.depth > 0 {
		st.depth--
	}
}

// statementRollback undoes the current statement's writes, keeping locks:
// a failed statement leaves nothing behind, as in InnoDB.
func (s *Session) statementRollback(ctx *sql.Context) {
	st := s.stmt(ctx)
	if t := s.txn; t != nil && st.undo <= len(t.undo) {
		t.rollbackTo(st.undo)
	}
	if st.depth > 0 {
		st.depth--
	}
}

// current returns the open transaction, starting an implicit one for
// engine paths that run without (DDL row rewrites, for example).
func (s *Session) current(ctx *sql.Context) (*txn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		s.aborted = false
		return nil, errIdleAborted
	}
	if s.txn == nil {
		s.txn = s.p.newTxn(false)
	}
	s.lastUsed = time.Now()
	s.isolation(ctx, s.txn)
	return s.txn, nil
}

// StartTransaction implements sql.TransactionSession. The engine drops an
// autocommit transaction whose statement failed without rolling it back, so
// a transaction still here in autocommit mode is rolled back first. Inside
// an explicit transaction, or with autocommit off, the engine never drops
// one: a request for a transaction while one is open comes from CALL, which
// hides the statement's transaction from the procedure and asks for one;
// the procedure runs in the open transaction, as in MySQL.
func (s *Session) StartTransaction(ctx *sql.Context, chr sql.TransactionCharacteristic) (sql.Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.txn != nil {
		if s.GetIgnoreAutoCommit() || !s.autocommit() {
			s.lastUsed = time.Now()
			return &Transaction{t: s.txn}, nil
		}
		s.txn.release(s.p)
	}
	s.aborted = false
	s.txn = s.p.newTxn(chr == sql.ReadOnly)
	s.txn.barrierDone = s.stmtState.barrier
	s.lastUsed = time.Now()
	// The engine drops WITH CONSISTENT SNAPSHOT; honour it by taking the
	// snapshot now instead of at the first read.
	if strings.Contains(lowerASCII(ctx.Query()), "consistent snapshot") {
		s.isolation(ctx, s.txn)
		if _, _, err := s.txn.readTS(ctx, s.p, CatalogGroup); err != nil {
			return nil, err
		}
	}
	return &Transaction{t: s.txn}, nil
}

// CommitTransaction implements sql.TransactionSession.
func (s *Session) CommitTransaction(ctx *sql.Context, tx sql.Transaction) error {
	s.mu.Lock()
	t := s.txn
	aborted := s.aborted
	s.txn = nil
	s.aborted = false
	s.mu.Unlock()
	if aborted {
		return errIdleAborted
	}
	if t == nil {
		return nil
	}
	defer t.release(s.p)
	return s.p.commit(ctx, t)
}

// Rollback implements sql.TransactionSession.
func (s *Session) Rollback(ctx *sql.Context, tx sql.Transaction) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.txn != nil {
		s.txn.release(s.p)
		s.txn = nil
	}
	s.aborted = false
	return nil
}

// CreateSavepoint implements sql.TransactionSession.
func (s *Session) CreateSavepoint(ctx *sql.Context, tx sql.Transaction, name string) error {
	t, err := s.current(ctx)
	if err != nil {
		return err
	}
	for i, sp := range t.saves {
		if strings.EqualFold(sp.name, name) {
			t.saves = append(t.saves[:i], t.saves[i+1:]...)
			break
		}
	}
	t.saves = append(t.saves, savepoint{name: name, undo: len(t.undo)})
	return nil
}

func (s *Session) findSavepoint(name string) (*txn, int, error) {
	t := s.txn
	if t != nil {
		for i := len(t.saves) - 1; i >= 0; i-- {
			if strings.EqualFold(t.saves[i].name, name) {
				return t, i, nil
			}
		}
	}
	return nil, 0, sql.ErrSavepointDoesNotExist.New(name)
}

// RollbackToSavepoint implements sql.TransactionSession. Later savepoints
// are forgotten; the named one stays, as in MySQL.
func (s *Session) RollbackToSavepoint(ctx *sql.Context, tx sql.Transaction, name string) error {
	t, i, err := s.findSavepoint(name)
	if err != nil {
		return err
	}
	t.rollbackTo(t.saves[i].undo)
	t.saves = t.saves[:i+1]
	return nil
}

// ReleaseSavepoint implements sql.TransactionSession.
func (s *Session) ReleaseSavepoint(ctx *sql.Context, tx sql.Transaction, name string) error {
	t, i, err := s.findSavepoint(name)
	if err != nil {
		return err
	}
	t.saves = t.saves[:i]
	return nil
}

// CommandBegin implements sql.LifecycleAwareSession.
func (s *Session) CommandBegin() error {
	s.cmdMu.Lock()
	s.dupMsg.Store(nil)
	s.mu.Lock()
	s.lastUsed = time.Now()
	s.mu.Unlock()
	return nil
}

// CommandEnd implements sql.LifecycleAwareSession. A statement that fails
// while its rows are being sent leaves the engine's autocommit transaction
// in place; a successful autocommit statement always clears it. So an
// autocommit transaction still open at the end of a command belongs to a
// failed statement: it is rolled back now, releasing its locks, rather than
// lingering until the connection's next statement.
func (s *Session) CommandEnd() {
	defer s.cmdMu.Unlock()
	s.endDDL()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUsed = time.Now()
	if s.txn == nil {
		return
	}
	if s.GetTransaction() != nil {
		if s.GetIgnoreAutoCommit() || !s.autocommit() {
			return
		}
		s.SetTransaction(nil)
	}
	s.txn.release(s.p)
	s.txn = nil
}

func (s *Session) autocommit() bool {
	ctx := sql.NewContext(context.Background(), sql.WithSession(s))
	v, err := s.GetSessionVariable(ctx, sql.AutoCommitSessionVar)
	if err != nil {
		return true
	}
	on, err := sql.ConvertToBool(ctx, v)
	return err != nil || on
}

// SessionEnd implements sql.LifecycleAwareSession: a dropped connection
// rolls back its transaction.
func (s *Session) SessionEnd() {
	s.endDDL()
	s.mu.Lock()
	if s.txn != nil {
		s.txn.release(s.p)
		s.txn = nil
	}
	s.mu.Unlock()
	s.p.sessions.Delete(s)
	s.p.byConn.CompareAndDelete(s.ID(), s)
}

func (s *Session) abortIfIdle(now time.Time, limit time.Duration) {
	if !s.cmdMu.TryLock() {
		return // a command is running: not idle
	}
	defer s.cmdMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.txn == nil || now.Sub(s.lastUsed) < limit {
		return
	}
	if s.txn.size == 0 && s.txn.heldBy(s.p) == 0 && !s.txn.hasSnapshot() {
		return // holds nothing; an idle empty transaction costs nothing
	}
	s.p.log.Info("rolling back idle transaction", "connection", s.ID(), "idle", now.Sub(s.lastUsed).Round(time.Second))
	s.txn.release(s.p)
	s.txn = nil
	s.aborted = true
}

// lockWait returns the session's innodb_lock_wait_timeout.
func (s *Session) lockWait(ctx *sql.Context) time.Duration {
	v, err := s.GetSessionVariable(ctx, "innodb_lock_wait_timeout")
	if err == nil {
		switch n := v.(type) {
		case int64:
			return time.Duration(n) * time.Second
		case int:
			return time.Duration(n) * time.Second
		case uint64:
			return time.Duration(n) * time.Second
		}
	}
	return s.p.cfg.DefaultLockWaitTimeout
}

// lockKey takes a row lock for the transaction in group's part. A
// deadlock rolls the whole transaction back, as InnoDB does; a timeout
// only fails the statement.
func (s *Session) lockKey(ctx *sql.Context, t *txn, group uint64, key []byte, mode lock.Mode) error {
	tp, err := t.in(s.p, group)
	if err != nil {
		return err
	}
	if len(tp.pending) > 0 {
		// The locks left for the commit go first, in the same request.
		return s.takeDeferred(ctx, t, tp, &replication.LockRequest{Key: key, Mode: mode})
	}
	return lockErr(s, t, tp.part.Lock(ctx, t.id, key, mode, s.lockWait(ctx)))
}

// lockErr maps a store's lock failure as the client meets it: a deadlock
// victim's transaction is rolled back.
func lockErr(s *Session, t *txn, err error) error {
	err = storeErr(err)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lock.ErrDeadlock), errors.Is(err, lock.ErrAborted):
		s.abortTxn(t)
		return errDeadlock
	case errors.Is(err, lock.ErrTimeout):
		return errLockWaitTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errInterrupted
	}
	return err
}

// abortTxn rolls back t in place: its buffer and locks go, and the
// transaction the engine holds becomes empty, so later statements start
// from scratch as after an InnoDB deadlock rollback.
func (s *Session) abortTxn(t *txn) {
	t.release(s.p)
	t.buf.Clear(false)
	t.undo = nil
	t.size = 0
	t.saves = nil
	t.seen = map[gkey]observed{}
	t.uniqueMsg = map[gkey]string{}
	t.deferred = nil
	t.tables = map[uint64]*tableMeta{}
	t.written = map[tableGroup]bool{}
	t.rowGroups = map[string]uint64{}
	s.stmtState.undo = 0
}
