package sqlfront

import (
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/vt/sqlparser"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// Config holds the SQL front end's limits.
type Config struct {
	// MaxTxnBytes caps the keys and values one transaction may buffer before
	// commit; beyond it a statement fails with ER_TRANS_CACHE_FULL (1197).
	MaxTxnBytes int64
	// MaxStatementMemory is max_statement_memory's default: the bytes one
	// statement may buffer (sorts, recursive CTEs) before it fails with
	// ER_CAPACITY_EXCEEDED (3170); 0 means no limit.
	MaxStatementMemory int64
	// IdleTxnTimeout rolls back a transaction that has been idle (no
	// statement) for longer, releasing its locks; 0 disables it.
	IdleTxnTimeout time.Duration
	// DefaultLockWaitTimeout is innodb_lock_wait_timeout's default.
	DefaultLockWaitTimeout time.Duration
	// DefaultCollation is the collation of a database created without one
	// (and so of its tables and columns). MySQL 8's is utf8mb4_0900_ai_ci.
	DefaultCollation sql.CollationID
	// SQLMode is sql_mode's default, global and session; empty means
	// MySQL 8.0's (MySQL80SQLMode).
	SQLMode string
	// KeysByName lists a table's secondary keys (SHOW CREATE TABLE, SHOW
	// INDEX) by name, as go-mysql-server's own backends do, rather than in
	// InnoDB's order; its engine suites expect that order.
	KeysByName bool
	// OnCommit, when set, is told how long each transaction's commit took
	// (the durable kv commit, fsync included) and how it ended.
	OnCommit func(elapsed time.Duration, err error)
	// OnGrantsChanged, when set, is called (on the replication apply path,
	// so it must not block) when users or grants changed in the store, or a
	// failed change left the in-memory copy behind it; the server reloads
	// them (ReloadGrants) on its own goroutine for logins, and statements
	// reload them themselves before they start.
	OnGrantsChanged func()
	// Topology gathers what the fogdb system database shows (sysdb.go);
	// nil shows it empty.
	Topology func(ctx *sql.Context) (Topology, error)
	// PlaceTable, when set, says where the rows and index entries of a
	// table being created live: in one group (CatalogGroup, or a group
	// the store's Part serves), or, for a local table, each row in its
	// home site's group (Homes). The choice is recorded in the table's
	// definition and kept for its life (TRUNCATE and rebuilds included).
	// Nil places every table in CatalogGroup. An error fails the CREATE
	// TABLE (through storeErr: an unreachable group is 1047).
	PlaceTable func(ctx *sql.Context, db, table string) (TablePlacement, error)
	// Homes homes the rows of local tables; it must be set for
	// PlaceTable to place a table local.
	Homes Homes
	// ReadPolicy, when set, gives the staleness bound of plain reads of a
	// table of the catalog group (staleness.go); nil: every read passes
	// the group's read barrier.
	ReadPolicy func(db, table string) ReadPolicy
	Logger     *slog.Logger

	// cleanupBatches, when positive, stops the removal of dropped tables'
	// rows after that many batches, as a crash would (tests).
	cleanupBatches int
	// beforeCommit, when set, runs as a transaction's commit is about to
	// be proposed, past the last point where a stopped statement writes
	// nothing (tests).
	beforeCommit func()
}

// DefaultConfig returns the defaults: InnoDB's 50 s lock wait, a 256 MiB
// transaction and a 10 minute idle transaction limit.
func DefaultConfig() Config {
	return Config{
		MaxTxnBytes:            256 << 20,
		MaxStatementMemory:     1 << 30,
		IdleTxnTimeout:         10 * time.Minute,
		DefaultLockWaitTimeout: 50 * time.Second,
		DefaultCollation:       sql.Collation_utf8mb4_0900_ai_ci,
	}
}

// Provider is the go-mysql-server database provider over a Store: the
// catalog group's part and the parts tables are placed in. It owns the
// cached catalog and the per-table counters.
type Provider struct {
	store Store
	// hooked are the parts of other groups this provider has used, by
	// group: a snapshot installed in one resets the row counts of its
	// tables (part), and LockStats adds their counters.
	hooked sync.Map
	cfg    Config
	log    *slog.Logger

	ddlMu sync.Mutex // serialises DDL on this node

	catMu sync.RWMutex
	dbs   map[string]*dbState // copy-on-write; by lower-cased name

	seqMu     sync.Mutex
	seqs      map[seqID]*seqState
	rowCounts map[uint64]*rowCountState
	nextTxn   atomic.Uint64
	sessions  sync.Map // *Session, for the idle reaper
	byConn    sync.Map // connection ID -> *Session, for the wire edge

	grants   grantsState // grants.go
	prepared atomic.Pointer[sqle.PreparedDataCache]

	stop chan struct{}
	done chan struct{}

	cleanupKick    chan struct{} // wakes the cleaner (cleanup.go)
	cleanupStopped chan struct{}
	cleanupDone    atomic.Int64 // batches of deletions committed
}

var (
	_ sql.DatabaseProvider         = (*Provider)(nil)
	_ sql.MutableDatabaseProvider  = (*Provider)(nil)
	_ sql.CollatedDatabaseProvider = (*Provider)(nil)
)

// AttachEngine connects the provider to the engine that serves it, for
// the statement texts that decide locking: the engine's prepared
// statements, so that EXECUTE locks as its statement's locking clauses
// ask, and its statement runner, which runs procedure and stored function
// statements without their text.
func (p *Provider) AttachEngine(e *sqle.Engine) {
	p.prepared.Store(e.PreparedDataCache)
	e.Analyzer.Runner = stmtRunner{next: e.Analyzer.Runner}
}

// stmtRunner hands the text of each statement of a procedure or stored
// function body to its session before the engine runs it.
type stmtRunner struct {
	next sql.StatementRunner
}

// QueryWithBindings implements sql.StatementRunner.
func (r stmtRunner) QueryWithBindings(ctx *sql.Context, query string, parsed sqlparser.Statement, bindings map[string]sqlparser.Expr, qFlags *sql.QueryFlags) (sql.Schema, sql.RowIter, *sql.QueryFlags, error) {
	if s, ok := ctx.Session.(*Session); ok && query == "" && parsed != nil {
		s.innerQuery = sqlparser.String(parsed)
	}
	return r.next.QueryWithBindings(ctx, query, parsed, bindings, qFlags)
}

// preparedText returns the text of the statement session sessID prepared
// as name, printed from its parsed form.
func (p *Provider) preparedText(sessID uint32, name string) (string, bool) {
	ps := p.prepared.Load()
	if ps == nil {
		return "", false
	}
	stmt, ok := ps.GetCachedStmt(sessID, name)
	if !ok || stmt == nil {
		return "", false
	}
	return sqlparser.String(stmt), true
}

// NewProvider serves the kv store eng, owned by this process alone.
func NewProvider(eng *kv.Engine, cfg Config) (*Provider, error) {
	return NewProviderOn(NewLocalStore(eng), cfg)
}

// NewProviderOn loads the catalog of store and starts the idle-transaction
// reaper.
func NewProviderOn(store Store, cfg Config) (*Provider, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DefaultLockWaitTimeout <= 0 {
		cfg.DefaultLockWaitTimeout = DefaultConfig().DefaultLockWaitTimeout
	}
	p := &Provider{
		store:     store,
		cfg:       cfg,
		log:       cfg.Logger,
		seqs:      map[seqID]*seqState{},
		rowCounts: map[uint64]*rowCountState{},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),

		cleanupKick:    make(chan struct{}, 1),
		cleanupStopped: make(chan struct{}),
	}
	// The hook goes in before the catalog is read, and the read holds
	// catMu, which the hook needs: a change applied meanwhile is reloaded
	// after the first read, never lost under it.
	store.Catalog().OnApply(p.onApply)
	p.catMu.Lock()
	dbs, err := loadCatalog(store.Catalog())
	p.dbs = dbs
	p.catMu.Unlock()
	if err != nil {
		return nil, err
	}
	registerSystemVariables(cfg)
	p.registerSequences()
	go p.reapIdle()
	go p.runCleanup()
	return p, nil
}

// Close stops background work; the engine is closed by its owner.
func (p *Provider) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
		<-p.done
		<-p.cleanupStopped
	}
}

// SessionByConn returns the session of a client connection, if any.
func (p *Provider) SessionByConn(id uint32) *Session {
	if s, ok := p.byConn.Load(id); ok {
		return s.(*Session)
	}
	return nil
}

// Engine returns the local replica of the catalog group's part (nil for a
// part that has none).
func (p *Provider) Engine() *kv.Engine {
	if r, ok := p.cat().(replica); ok {
		return r.Engine()
	}
	return nil
}

// LockStats returns the row lock counters of the catalog group's part and
// of every other part this provider has used, summed.
func (p *Provider) LockStats() lock.Stats {
	st := p.cat().LockStats()
	p.hooked.Range(func(_, v any) bool {
		o := v.(Part).LockStats()
		st.Acquired += o.Acquired
		st.Waits += o.Waits
		st.Timeouts += o.Timeouts
		st.Deadlocks += o.Deadlocks
		return true
	})
	return st
}

// cat is the catalog group's part.
func (p *Provider) cat() Part { return p.store.Catalog() }

// part returns the part of group id (0 meaning CatalogGroup, as in a
// definition stored before placement existed).
func (p *Provider) part(id uint64) (Part, error) {
	if id == 0 || id == CatalogGroup {
		return p.cat(), nil
	}
	pt, err := p.store.Part(id)
	if err != nil {
		return nil, err
	}
	if _, loaded := p.hooked.LoadOrStore(id, pt); !loaded {
		// A snapshot installed in a data part replaces its rows: the
		// row-count estimates of its tables go.
		pt.OnApply(func(_ []*kv.Batch, restored bool) {
			if restored {
				p.forgetGroupCounters(id)
			}
		})
	}
	return pt, nil
}

func (p *Provider) db(name string) *dbState {
	p.catMu.RLock()
	defer p.catMu.RUnlock()
	return p.dbs[strings.ToLower(name)]
}

func (p *Provider) table(db, name string) *tableMeta {
	st := p.db(db)
	if st == nil {
		return nil
	}
	return st.tables[strings.ToLower(name)]
}

// Database implements sql.DatabaseProvider.
func (p *Provider) Database(ctx *sql.Context, name string) (sql.Database, error) {
	if strings.EqualFold(name, SystemDBName) {
		return sysDatabase{p: p}, nil
	}
	st := p.db(name)
	if st == nil {
		if again, err := p.lookupMissed(ctx); err != nil {
			return nil, err
		} else if again {
			st = p.db(name)
		}
	}
	if st == nil {
		return nil, sql.ErrDatabaseNotFound.New(name)
	}
	return &Database{p: p, name: st.def.Name}, nil
}

// HasDatabase implements sql.DatabaseProvider.
func (p *Provider) HasDatabase(ctx *sql.Context, name string) bool {
	if p.db(name) != nil || strings.EqualFold(name, SystemDBName) {
		return true
	}
	if again, err := p.lookupMissed(ctx); err == nil && again {
		return p.db(name) != nil
	}
	return false
}

// AllDatabases implements sql.DatabaseProvider.
func (p *Provider) AllDatabases(*sql.Context) []sql.Database {
	p.catMu.RLock()
	all := make([]sql.Database, 0, len(p.dbs))
	for _, st := range p.dbs {
		all = append(all, &Database{p: p, name: st.def.Name})
	}
	p.catMu.RUnlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Name() < all[j].Name() })
	return all
}

// CreateDatabase implements sql.MutableDatabaseProvider.
func (p *Provider) CreateDatabase(ctx *sql.Context, name string) error {
	return p.CreateCollatedDatabase(ctx, name, sql.Collation_Default)
}

// CreateCollatedDatabase implements sql.CollatedDatabaseProvider.
func (p *Provider) CreateCollatedDatabase(ctx *sql.Context, name string, collation sql.CollationID) error {
	if err := checkDBName(name); err != nil {
		return err
	}
	// The engine fills in its own default when the statement names no
	// collation; fogdb's default is MySQL 8's, unless configured otherwise.
	if collation == sql.Collation_Default && p.cfg.DefaultCollation != sql.Collation_Unspecified && ctx != nil && !namesCollation(ctx.Query()) {
		collation = p.cfg.DefaultCollation
	}
	return p.runDDL(ctx, func(b *ddlBatch) error {
		if p.db(name) != nil {
			return sql.ErrDatabaseExists.New(name)
		}
		key := keys.CatalogKey(catDB, lower(name))
		b.expect(key, 0)
		b.dbs[strings.ToLower(name)] = true
		return b.putJSON(key, dbDef{Name: name, Collation: collation})
	})
}

// DropDatabase implements sql.MutableDatabaseProvider: the catalog entries
// go in one batch, with a cleanup record for the rows of every table.
func (p *Provider) DropDatabase(ctx *sql.Context, name string) error {
	if strings.EqualFold(name, SystemDBName) {
		return errSystemDB(ctx)
	}
	if s := sessionOf(ctx); s != nil {
		var locks []mdlKey
		if st := p.db(name); st != nil {
			for _, m := range st.tables {
				mdl, err := p.tableMDL(ctx, m)
				if err != nil {
					return err
				}
				locks = append(locks, mdl...)
			}
		}
		unlock, err := s.ddlLockKeys(ctx, locks...)
		if err != nil {
			return err
		}
		defer unlock()
	}
	return p.runDDL(ctx, func(b *ddlBatch) error {
		st := p.db(name)
		if st == nil {
			return sql.ErrDatabaseNotFound.New(name)
		}
		ln := lower(name)
		for _, m := range st.tables {
			b.expect(tableLockKey(m), m.version)
			if err := b.orphan(m.def.ID, 0, m, m.db+"."+m.def.Name); err != nil {
				return err
			}
			p.forgetCounters(m.def.ID)
		}
		for _, kind := range [][]byte{catTable, catView, catTrigger, catProc} {
			pre := keys.CatalogKey(kind, ln)
			if err := b.deleteRange(pre, keys.PrefixEnd(pre)); err != nil {
				return err
			}
		}
		key := keys.CatalogKey(catDB, ln)
		b.expect(key, st.version)
		b.del(key)
		b.dbs[string(ln)] = true
		return nil
	})
}

// reapIdle rolls back transactions idle past the configured limit, so a
// client that went away mid-transaction cannot hold row locks forever.
func (p *Provider) reapIdle() {
	defer close(p.done)
	if p.cfg.IdleTxnTimeout <= 0 {
		<-p.stop
		return
	}
	period := p.cfg.IdleTxnTimeout / 4
	if period > 10*time.Second {
		period = 10 * time.Second
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.sessions.Range(func(k, _ any) bool {
				k.(*Session).abortIfIdle(now, p.cfg.IdleTxnTimeout)
				return true
			})
		}
	}
}

// namesCollation reports whether a CREATE DATABASE statement names a
// character set or collation.
func namesCollation(q string) bool {
	q = lowerASCII(q)
	return strings.Contains(q, "collate") || strings.Contains(q, "character") || strings.Contains(q, "charset")
}
