package sqlfront

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
)

// Catalog entries live in the same multi-version store as rows, under
// keys.PrefixCatalog, so DDL commits atomically with the row rewrites it
// implies and, once the store is replicated, replicates like data.
//
//	("db", db)               database definition (dbDef, JSON)
//	("tbl", db, table)       table definition (tableDef, JSON)
//	("view", db, view)       sql.ViewDefinition (JSON)
//	("trg", db, trigger)     sql.TriggerDefinition (JSON)
//	("proc", db, procedure)  sql.StoredProcedureDetails (JSON)
//	("seq", "table")         last table ID handed out (8 bytes, big-endian)
//	("mysqldb")              users and grants, in the engine's own format
//	("autoinc", id, next)    AUTO_INCREMENT watermark of a table (empty value)
//	("drop", id)             rows of table ID id wait for removal (cleanup.go)
//
// Names in keys are lower-cased: MySQL compares database and table names
// case-insensitively here (lower_case_table_names=1 semantics); the
// definitions keep the spelling they were created with.
var (
	catDB      = []byte("db")
	catTable   = []byte("tbl")
	catView    = []byte("view")
	catTrigger = []byte("trg")
	catProc    = []byte("proc")
	catSeq     = []byte("seq")
	catMySQLDB = []byte("mysqldb")
	catAutoInc = []byte("autoinc")
)

// The sequences of a table are kept under ("autoinc", table ID): a mark
// ("autoinc", table ID, kind) per sequence, kind "a" for AUTO_INCREMENT and
// "r" for hidden row IDs, whose value (u64) is the end of the block the
// leader reserved: no value at or above it was ever handed out
// (sequences.go). Older versions wrote watermarks ("autoinc", table ID,
// u64 next), empty-valued, one per commit that moved the sequence; the
// sequence still resumes above the largest, and the first reservation
// deletes them.
func autoIncPrefix(id uint64) []byte {
	return keys.CatalogKey(catAutoInc, binary.BigEndian.AppendUint64(nil, id))
}

func autoIncKey(id, next uint64) []byte {
	return keys.CatalogKey(catAutoInc, binary.BigEndian.AppendUint64(nil, id), binary.BigEndian.AppendUint64(nil, next))
}

var seqMarkKinds = [...][]byte{seqAutoInc: []byte("a"), seqRowID: []byte("r")}

func seqMarkKey(id uint64, kind seqKind) []byte {
	return keys.CatalogKey(catAutoInc, binary.BigEndian.AppendUint64(nil, id), seqMarkKinds[kind])
}

func lower(s string) []byte { return []byte(strings.ToLower(s)) }

type dbDef struct {
	Name      string          `json:"name"`
	Collation sql.CollationID `json:"collation"`
}

// dbState is the cached catalog of one database. It is replaced, never
// mutated, when DDL commits, so readers need no lock once they hold it.
type dbState struct {
	def      dbDef
	version  uint64
	tables   map[string]*tableMeta // by lower-cased name
	views    map[string]sql.ViewDefinition
	triggers []sql.TriggerDefinition // in creation order
	procs    map[string]sql.StoredProcedureDetails
}

// loadCatalog reads every catalog entry of the catalog part.
func loadCatalog(cat Part) (map[string]*dbState, error) {
	dbs := map[string]*dbState{}
	ctx := context.Background()
	it := cat.NewIterator(ctx, keys.CatalogKey(catDB), keys.PrefixEnd(keys.CatalogKey(catDB)), kv.MaxTimestamp, false)
	for it.Next() {
		var d dbDef
		if err := json.Unmarshal(it.Value(), &d); err != nil {
			it.Close()
			return nil, fmt.Errorf("sqlfront: catalog entry of a database: %w", err)
		}
		dbs[strings.ToLower(d.Name)] = nil
	}
	err := it.Err()
	it.Close()
	if err != nil {
		return nil, err
	}
	for name := range dbs {
		st, err := loadDB(cat, name)
		if err != nil {
			return nil, err
		}
		dbs[name] = st
	}
	return dbs, nil
}

// loadDB reads the catalog of one database (nil when it does not exist).
func loadDB(cat Part, lname string) (*dbState, error) {
	ctx := context.Background()
	v, err := cat.Get(ctx, keys.CatalogKey(catDB, []byte(lname)), kv.MaxTimestamp)
	if err != nil {
		return nil, err
	}
	if !v.Exists {
		return nil, nil
	}
	st := &dbState{
		version: uint64(v.Version),
		tables:  map[string]*tableMeta{},
		views:   map[string]sql.ViewDefinition{},
		procs:   map[string]sql.StoredProcedureDetails{},
	}
	if err := json.Unmarshal(v.Data, &st.def); err != nil {
		return nil, fmt.Errorf("sqlfront: catalog entry of database %s: %w", lname, err)
	}
	scan := func(kind []byte, fn func(data []byte, version uint64) error) error {
		p := keys.CatalogKey(kind, []byte(lname))
		it := cat.NewIterator(ctx, p, keys.PrefixEnd(p), kv.MaxTimestamp, false)
		defer it.Close()
		for it.Next() {
			if err := fn(it.Value(), uint64(it.Version())); err != nil {
				return err
			}
		}
		return it.Err()
	}
	err = scan(catTable, func(data []byte, version uint64) error {
		var def tableDef
		if err := json.Unmarshal(data, &def); err != nil {
			return fmt.Errorf("sqlfront: catalog entry of a table in %s: %w", lname, err)
		}
		m, err := newTableMeta(st.def.Name, def, version)
		if err != nil {
			return err
		}
		st.tables[strings.ToLower(def.Name)] = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = scan(catView, func(data []byte, _ uint64) error {
		var vd sql.ViewDefinition
		if err := json.Unmarshal(data, &vd); err != nil {
			return err
		}
		st.views[strings.ToLower(vd.Name)] = vd
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = scan(catTrigger, func(data []byte, _ uint64) error {
		var td sql.TriggerDefinition
		if err := json.Unmarshal(data, &td); err != nil {
			return err
		}
		st.triggers = append(st.triggers, td)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(st.triggers, func(i, j int) bool { return st.triggers[i].CreatedAt.Before(st.triggers[j].CreatedAt) })
	err = scan(catProc, func(data []byte, _ uint64) error {
		var pd sql.StoredProcedureDetails
		if err := json.Unmarshal(data, &pd); err != nil {
			return err
		}
		st.procs[strings.ToLower(pd.Name)] = pd
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// ddlBatch accumulates the catalog and row changes of one DDL statement;
// they commit as one batch.
type ddlBatch struct {
	p       *Provider
	ctx     context.Context
	batch   kv.Batch
	dbs     map[string]bool // databases whose cached catalog must be reloaded
	cleanup bool            // the batch orphans a table ID: wake the cleaner
	// markers are the definition markers of placed tables the batch makes
	// stale, written once it has committed (marker.go).
	markers []markerChange
}

func (b *ddlBatch) put(key, value []byte) {
	b.batch.Mutations = append(b.batch.Mutations, kv.Mutation{Key: key, Value: value})
}

func (b *ddlBatch) del(key []byte) {
	b.batch.Mutations = append(b.batch.Mutations, kv.Mutation{Key: key, Delete: true})
}

// expect makes the batch fail if key changed since version was read, which
// catches two DDL statements racing on the same object.
func (b *ddlBatch) expect(key []byte, version uint64) {
	b.batch.Preconditions = append(b.batch.Preconditions, kv.Precondition{Key: key, Exists: version != 0, Version: kv.Timestamp(version)})
}

func (b *ddlBatch) putJSON(key []byte, v interface{}) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.put(key, data)
	return nil
}

func (b *ddlBatch) putTable(m *tableMeta) error {
	data, err := m.marshal()
	if err != nil {
		return err
	}
	key := keys.CatalogKey(catTable, lower(m.db), lower(m.def.Name))
	b.put(key, data)
	b.dbs[strings.ToLower(m.db)] = true
	if m.placed() {
		groups, err := b.p.groupsOf(b.ctx, m)
		if err != nil {
			return storeErr(err)
		}
		for _, g := range groups {
			b.markers = append(b.markers, markerChange{group: g, id: m.def.ID, db: m.db, name: m.def.Name})
		}
	}
	return nil
}

// newTableID hands out a table ID inside the batch. Table IDs are never
// reused, so the rows of a dropped table can be cleared lazily without ever
// being confused with a new table's.
func (b *ddlBatch) newTableID() (uint64, error) {
	key := keys.CatalogKey(catSeq, []byte("table"))
	for i := len(b.batch.Mutations) - 1; i >= 0; i-- {
		if m := b.batch.Mutations[i]; string(m.Key) == string(key) {
			id := binary.BigEndian.Uint64(m.Value) + 1
			b.put(key, binary.BigEndian.AppendUint64(nil, id))
			return id, nil
		}
	}
	v, err := b.p.cat().Get(context.Background(), key, kv.MaxTimestamp)
	if err != nil {
		return 0, err
	}
	var last uint64 = 99 // IDs below 100 are kept for the system
	if v.Exists {
		last = binary.BigEndian.Uint64(v.Data)
	}
	b.expect(key, uint64(v.Version))
	b.put(key, binary.BigEndian.AppendUint64(nil, last+1))
	return last + 1, nil
}

// deleteRange deletes every stored key in [start, end) as of now: only for
// small catalog ranges; rows go through the background cleanup
// (cleanup.go), whatever their number.
func (b *ddlBatch) deleteRange(start, end []byte) error {
	it := b.p.cat().NewIterator(context.Background(), start, end, kv.MaxTimestamp, false)
	defer it.Close()
	for it.Next() {
		b.del(append([]byte(nil), it.Key()...))
	}
	return it.Err()
}

// runDDL serialises DDL on this node, commits the batch fn builds,
// reloads the cached catalog of the databases it touched, and tells the
// parts of placed tables the batch changed (publishMarkers).
func (p *Provider) runDDL(ctx *sql.Context, fn func(b *ddlBatch) error) error {
	p.ddlMu.Lock()
	defer p.ddlMu.Unlock()
	var cctx context.Context = context.Background()
	if ctx != nil {
		cctx = ctx
	}
	b := &ddlBatch{p: p, ctx: cctx, dbs: map[string]bool{}}
	if err := fn(b); err != nil {
		return err
	}
	if len(b.batch.Mutations) == 0 {
		return nil
	}
	if err := p.checkBatchSize(&b.batch); err != nil {
		return err
	}
	// As for a transaction's commit (Provider.commit): a stopped statement
	// writes nothing, a proposed change is seen through.
	if ctx != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		cctx = uncancelled(ctx)
	}
	if err := p.cat().Commit(cctx, &b.batch); err != nil {
		if errors.Is(err, kv.ErrConflict) {
			return errDDLConflict
		}
		return storeErr(err)
	}
	if b.cleanup {
		p.kickCleanup()
	}
	for name := range b.dbs {
		if err := p.reloadDB(name); err != nil {
			return err
		}
	}
	p.publishMarkers(cctx, b.markers)
	return nil
}

func (p *Provider) reloadDB(lname string) error {
	st, err := loadDB(p.cat(), lname)
	if err != nil {
		return err
	}
	p.catMu.Lock()
	defer p.catMu.Unlock()
	next := make(map[string]*dbState, len(p.dbs)+1)
	for k, v := range p.dbs {
		next[k] = v
	}
	if st == nil {
		delete(next, lname)
	} else {
		next[lname] = st
	}
	p.dbs = next
	return nil
}

// ReferencingForeignKey returns the foreign key named name, declared by some
// table of database db, that references table parent.
func (p *Provider) ReferencingForeignKey(db, parent, name string) (sql.ForeignKeyConstraint, bool) {
	st := p.db(db)
	if st == nil {
		return sql.ForeignKeyConstraint{}, false
	}
	for _, m := range st.tables {
		for _, fk := range m.def.FKs {
			if strings.EqualFold(fk.Name, name) && strings.EqualFold(fk.ParentTable, parent) {
				return fk, true
			}
		}
	}
	return sql.ForeignKeyConstraint{}, false
}

// ForeignKey returns the foreign key named name declared by table db.table.
func (p *Provider) ForeignKey(db, table, name string) (sql.ForeignKeyConstraint, bool) {
	m := p.table(db, table)
	if m == nil {
		return sql.ForeignKeyConstraint{}, false
	}
	for _, fk := range m.def.FKs {
		if strings.EqualFold(fk.Name, name) {
			return fk, true
		}
	}
	return sql.ForeignKeyConstraint{}, false
}
