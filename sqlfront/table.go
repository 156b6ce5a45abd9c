package sqlfront

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync/atomic"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/google/btree"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// Table is a SQL table over the kv store. A Table value carries the table
// definition current when the engine looked it up; the rows it reads and
// writes go through the session's transaction.
type Table struct {
	p *Provider
	m *tableMeta
	// live tables read the transaction's writes as they are now, not as
	// the statement found them: foreign key checks and cascades reading
	// through an editor must see the rows the statement already changed.
	live bool
	// converting is set while CONVERT TO CHARACTER SET rebuilds the table.
	converting bool
	// lastGroup is the group of the row this table's scan returned last
	// (local tables): the engine copies each row of a rebuild into the
	// new table as soon as it read it (rewrite.go).
	lastGroup atomic.Uint64
}

var (
	_ sql.Table                    = (*Table)(nil)
	_ sql.CommentedTable           = (*Table)(nil)
	_ sql.Databaseable             = (*Table)(nil)
	_ sql.PrimaryKeyTable          = (*Table)(nil)
	_ sql.IndexAddressableTable    = (*Table)(nil)
	_ sql.InsertableTable          = (*Table)(nil)
	_ sql.UpdatableTable           = (*Table)(nil)
	_ sql.DeletableTable           = (*Table)(nil)
	_ sql.ReplaceableTable         = (*Table)(nil)
	_ sql.TruncateableTable        = (*Table)(nil)
	_ sql.AutoIncrementTable       = (*Table)(nil)
	_ sql.StatisticsTable          = (*Table)(nil)
	_ sql.ForeignKeyTable          = (*Table)(nil)
	_ sql.CheckTable               = (*Table)(nil)
	_ sql.CheckAlterableTable      = (*Table)(nil)
	_ sql.IndexAlterableTable      = (*Table)(nil)
	_ sql.IndexBuildingTable       = (*Table)(nil)
	_ sql.AlterableTable           = (*Table)(nil)
	_ sql.RewritableTable          = (*Table)(nil)
	_ sql.PrimaryKeyAlterableTable = (*Table)(nil)
	_ sql.CollationAlterableTable  = (*Table)(nil)
	_ sql.TemporaryTable           = (*Table)(nil)
	_ sql.IndexedTable             = (*IndexedTable)(nil)
)

func newTable(p *Provider, m *tableMeta) *Table { return &Table{p: p, m: m} }

// visibleIn is visibleAt for the snapshots of several groups, checked
// together, once per snapshot.
func (m *tableMeta) visibleIn(ctx context.Context, tps map[uint64]*txnPart, im *indexMeta) error {
	id := [2]uint64{m.def.ID, 0}
	if im != nil {
		id[1] = im.def.ID
	}
	var check []*txnPart
	for _, tp := range tps {
		if !tp.visible[id] {
			check = append(check, tp)
		}
	}
	if len(check) == 0 {
		return nil
	}
	errs := make([]error, len(check))
	_ = parallel(len(check), func(i int) error {
		errs[i] = m.visibleAt(ctx, check[i].part, check[i].snap.TS(), im)
		return errs[i]
	})
	for i, tp := range check {
		if errs[i] != nil {
			return storeErr(errs[i])
		}
		if tp.visible == nil {
			tp.visible = map[[2]uint64]bool{}
		}
		tp.visible[id] = true
	}
	return nil
}

// Name implements sql.Nameable.
func (t *Table) Name() string { return t.m.def.Name }

// String implements fmt.Stringer.
func (t *Table) String() string { return t.m.def.Name }

// Schema implements sql.Table.
func (t *Table) Schema() sql.Schema { return t.m.schema }

// Collation implements sql.Table.
func (t *Table) Collation() sql.CollationID { return t.m.def.Collation }

// Comment implements sql.CommentedTable.
func (t *Table) Comment() string { return t.m.def.Comment }

// IsTemporary implements sql.TemporaryTable: fogdb tables are never
// temporary (the engine's READ ONLY check asks every table).
func (t *Table) IsTemporary() bool { return false }

// Database implements sql.Databaseable.
func (t *Table) Database() string { return t.m.db }

// PrimaryKeySchema implements sql.PrimaryKeyTable.
func (t *Table) PrimaryKeySchema() sql.PrimaryKeySchema { return t.m.pkSchema() }

// spanPartition is a key range of one index to read.
type spanPartition struct {
	start, end []byte
	index      *indexMeta // nil: the rows themselves
	reverse    bool
	filter     sql.Expression // the lookup's ranges; nil for a full scan
	// exact spans hold only rows in range: their rows skip the filter,
	// except rows re-read through a secondary index after a lock wait,
	// whose indexed columns may have changed meanwhile.
	exact bool
	// Routing of a local table's read (Provider.routes): the locality
	// values every row of the span has (its index leads with the locality
	// column, each range a point on it), or a point lookup of a unique
	// key, at most one row.
	locality    []string
	uniquePoint bool
}

func (s *spanPartition) Key() []byte { return s.start }

type partitionIter struct {
	parts []sql.Partition
}

func (it *partitionIter) Next(*sql.Context) (sql.Partition, error) {
	if len(it.parts) == 0 {
		return nil, io.EOF
	}
	p := it.parts[0]
	it.parts = it.parts[1:]
	return p, nil
}

func (it *partitionIter) Close(*sql.Context) error { return nil }

// Partitions implements sql.Table: a table is one partition, its row range.
func (t *Table) Partitions(*sql.Context) (sql.PartitionIter, error) {
	rp := t.m.rowPrefix()
	return &partitionIter{parts: []sql.Partition{&spanPartition{start: rp, end: keys.PrefixEnd(rp)}}}, nil
}

// PartitionRows implements sql.Table.
func (t *Table) PartitionRows(ctx *sql.Context, part sql.Partition) (sql.RowIter, error) {
	sp, ok := part.(*spanPartition)
	if !ok {
		return nil, sql.ErrPartitionNotFound.New(string(part.Key()))
	}
	sess := ctx.Session.(*Session)
	tx, err := sess.current(ctx)
	if err != nil {
		return nil, err
	}
	return &rowIter{t: t, sess: sess, tx: tx, span: sp}, nil
}

// rowIter streams rows of a span. It decides on its first row whether the
// statement reads with locks: by then the engine has opened the statement's
// editors, which mark the tables it writes.
type rowIter struct {
	t     *Table
	sess  *Session
	tx    *txn
	span  *spanPartition
	mode  lockMode
	parts map[uint64]*txnPart // the parts read, by group
	it    groupIter
	view  *btree.BTreeG[bufItem]
	ready bool
}

func (r *rowIter) init(ctx *sql.Context) error {
	r.ready = true
	r.mode = r.sess.readMode(ctx, r.tx, r.t.m.def.ID)
	r.parts = map[uint64]*txnPart{}
	if r.t.live {
		r.view = r.tx.buf
	} else {
		r.view = r.sess.readView(ctx, r.tx)
	}
	m := r.t.m
	if !m.local() {
		it, err := r.open(ctx, []uint64{m.group()})
		r.it = it
		return err
	}
	groups, localFirst, err := r.t.p.routes(ctx, m, r.span)
	if err != nil {
		return err
	}
	if !localFirst {
		r.it, err = r.open(ctx, groups)
		return err
	}
	local := r.t.p.cfg.Homes.LocalGroup()
	first, err := r.open(ctx, []uint64{local})
	if err != nil {
		return err
	}
	var others []uint64
	for _, g := range groups {
		if g != local {
			others = append(others, g)
		}
	}
	r.it = &stagedIter{cur: first, rest: func() (groupIter, error) {
		if len(others) == 0 {
			return nil, nil
		}
		return r.open(ctx, others)
	}}
	return nil
}

// open starts the reads of the span in groups, their snapshots (or, for
// a locking read, read barriers) taken together.
func (r *rowIter) open(ctx *sql.Context, groups []uint64) (groupIter, error) {
	m := r.t.m
	if r.mode == readSnapshot {
		r.tx.staleRead(ctx, r.t.p, m)
		tps, err := r.tx.readTSAll(ctx, r.t.p, groups)
		if err != nil {
			return nil, err
		}
		if err := m.visibleIn(ctx, tps, r.span.index); err != nil {
			return nil, err
		}
		for g, tp := range tps {
			r.parts[g] = tp
		}
	} else {
		for _, g := range groups {
			tp, err := r.tx.in(r.t.p, g)
			if err != nil {
				return nil, err
			}
			r.parts[g] = tp
			if r.sess.stmt(ctx).barrier && g == CatalogGroup {
				// The statement began with a read barrier of this part.
			} else if err := tp.part.ReadBarrier(ctx); err != nil {
				// A locking read scans the newest committed rows, so the
				// replica must first have all of them.
				return nil, storeErr(err)
			}
			// The definition was looked up before that barrier, from a
			// catalog that may be behind it (catalogOnMiss): the newest
			// rows must be those of its table ID, or the scan would lock
			// and read the range a TRUNCATE or rebuild elsewhere
			// orphaned, and an UPDATE would match nothing instead of the
			// rows written since.
			if m.version != 0 && rowStatement(r.sess.stmtText(ctx)) {
				if err := r.current(ctx, tp.part); err != nil {
					return nil, err
				}
			}
		}
	}
	heads := make([]*groupHead, len(groups))
	for i, g := range groups {
		tp := r.parts[g]
		it := tp.part.NewIterator(ctx, r.span.start, r.span.end, r.ts(g), r.span.reverse)
		heads[i] = &groupHead{g: g, m: newMergeIter(it, r.view, g, r.span.start, r.span.end, r.span.reverse)}
	}
	if len(heads) == 1 {
		return heads[0], nil
	}
	return &multiGroupIter{heads: heads, reverse: r.span.reverse}, nil
}

// ts is the timestamp group's reads are at.
func (r *rowIter) ts(group uint64) kv.Timestamp {
	if tp := r.parts[group]; r.mode == readSnapshot && tp != nil && tp.snap != nil {
		return tp.snap.TS()
	}
	return kv.MaxTimestamp
}

// current checks, for a locking read, that the statement's definition of
// its table is the current one. For a placed table the marker answers; a
// missing or unlisting marker of the same table ID may also be one a DDL
// never wrote (it stopped after its catalog commit), so, as a writer
// does (checkMarker), the catalog decides after its barrier.
func (r *rowIter) current(ctx *sql.Context, pt Part) error {
	m, im := r.t.m, r.span.index
	err := m.visibleAt(ctx, pt, kv.MaxTimestamp, im)
	if err != errTableDefChanged || !m.placed() {
		return err
	}
	if err := r.sess.catalogBarrier(ctx); err != nil {
		return err
	}
	cur := r.t.p.table(m.db, m.def.Name)
	if cur == nil || cur.def.ID != m.def.ID {
		return errTableDefChanged
	}
	if im == nil {
		return nil
	}
	for _, x := range cur.indexes {
		if x.def.ID == im.def.ID {
			return nil
		}
	}
	return errTableDefChanged
}

func (r *rowIter) Next(ctx *sql.Context) (sql.Row, error) {
	if !r.ready {
		if err := r.init(ctx); err != nil {
			return nil, err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, errInterrupted
		}
		key, val, fromBuf, group, ok := r.it.next()
		if !ok {
			if err := r.it.err(); err != nil {
				return nil, storeErr(err)
			}
			return nil, io.EOF
		}
		rowKey, rowVal := key, val
		if r.span.index != nil {
			// Index entries hold the row's key suffix as their value.
			rowKey = append(r.t.m.rowPrefix(), val...)
			rowVal = nil
		}
		data, found, err := r.fetch(ctx, group, rowKey, rowVal, fromBuf && r.span.index == nil)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		row, err := decodeRow(data, len(r.t.m.schema))
		if err != nil {
			return nil, err
		}
		if r.span.filter != nil && (!r.span.exact || (r.span.index != nil && r.mode != readSnapshot)) {
			ok, err := r.span.filter.Eval(ctx, row)
			if err != nil {
				return nil, err
			}
			if !sql.IsTrue(ok) {
				continue
			}
		}
		if r.t.m.local() {
			// A rebuild copies each row into the group it came from.
			r.t.lastGroup.Store(group)
		}
		return row, nil
	}
}

// fetch returns a row's stored value in group's part as this statement
// must see it: the transaction's writes as they stood when the statement
// began, then its snapshot or, for a locking read, the newest committed
// version once the lock is granted.
func (r *rowIter) fetch(ctx *sql.Context, group uint64, rowKey, have []byte, haveFromBuf bool) ([]byte, bool, error) {
	if haveFromBuf {
		return have, true, nil
	}
	if it, ok := r.view.Get(bufItem{key: string(rowKey), group: group}); ok {
		return it.val, !it.del, nil
	}
	if r.mode == readSnapshot {
		if have != nil {
			return have, true, nil
		}
		v, err := r.parts[group].part.Get(ctx, rowKey, r.ts(group))
		if err != nil {
			return nil, false, storeErr(err)
		}
		return v.Data, v.Exists, nil
	}
	mode := lock.Shared
	if r.mode == readExclusive {
		mode = lock.Exclusive
	}
	if err := r.sess.lockKey(ctx, r.tx, group, rowKey, mode); err != nil {
		return nil, false, err
	}
	if r.t.m.local() {
		r.tx.rowGroups[string(rowKey)] = group
	}
	return r.sess.currentRead(ctx, r.tx, group, rowKey)
}

func (r *rowIter) Close(*sql.Context) error {
	if r.it != nil {
		r.it.close()
	}
	return nil
}

// lockedRead locks key in group's part and reads it as the transaction's
// writes so far leave it, or else its newest committed version.
func (s *Session) lockedRead(ctx *sql.Context, t *txn, group uint64, key []byte, mode lock.Mode) ([]byte, bool, error) {
	// A key the store cannot hold is refused before it becomes a lock or
	// a commit precondition that would fail the commit.
	if err := checkStoredKey(key); err != nil {
		return nil, false, err
	}
	if err := s.lockKey(ctx, t, group, key, mode); err != nil {
		return nil, false, err
	}
	if it, ok := t.get(group, string(key)); ok {
		return it.val, !it.del, nil
	}
	return s.currentRead(ctx, t, group, key)
}

// lockedReads is lockedRead of key in several groups: locked in the order
// given (ascending, so that statements locking one key in several groups
// queue rather than deadlock), then read in all of them at once.
func (s *Session) lockedReads(ctx *sql.Context, t *txn, groups []uint64, key []byte, mode lock.Mode) ([]findResult, error) {
	if len(groups) == 1 {
		data, ok, err := s.lockedRead(ctx, t, groups[0], key, mode)
		return []findResult{{group: groups[0], data: data, found: ok}}, err
	}
	if err := checkStoredKey(key); err != nil {
		return nil, err
	}
	for _, g := range groups {
		if err := s.lockKey(ctx, t, g, key, mode); err != nil {
			return nil, err
		}
	}
	res := make([]findResult, len(groups))
	var need []int
	for i, g := range groups {
		res[i].group = g
		if it, ok := t.get(g, string(key)); ok {
			res[i].data, res[i].found = it.val, !it.del
		} else {
			need = append(need, i)
		}
	}
	vals := make([]kv.Value, len(need))
	if err := parallel(len(need), func(j int) error {
		var err error
		vals[j], err = t.parts[groups[need[j]]].part.Get(ctx, key, kv.MaxTimestamp)
		return err
	}); err != nil {
		return nil, storeErr(err)
	}
	for j, i := range need {
		k := gkey{groups[i], string(key)}
		if _, ok := t.seen[k]; !ok {
			t.seen[k] = observed{exists: vals[j].Exists, version: vals[j].Version}
		}
		res[i].data, res[i].found = vals[j].Data, vals[j].Exists
	}
	return res, nil
}

// currentRead reads the newest committed version of a key the transaction
// has locked in group's part, remembering the version as a commit
// precondition.
func (s *Session) currentRead(ctx context.Context, t *txn, group uint64, key []byte) ([]byte, bool, error) {
	tp, err := t.in(s.p, group)
	if err != nil {
		return nil, false, err
	}
	v, err := tp.part.Get(ctx, key, kv.MaxTimestamp)
	if err != nil {
		return nil, false, storeErr(err)
	}
	if _, ok := t.seen[gkey{group, string(key)}]; !ok {
		t.seen[gkey{group, string(key)}] = observed{exists: v.Exists, version: v.Version}
	}
	return v.Data, v.Exists, nil
}

// peek reads a key as the transaction's writes so far leave it, or else
// its newest committed version, taking no lock and adding no commit
// precondition. On a key the transaction has locked and read it is a
// current read again (the first version read stays the precondition);
// on another key nothing may be written from what it returns.
func (s *Session) peek(ctx context.Context, t *txn, group uint64, key []byte) ([]byte, bool, error) {
	if it, ok := t.get(group, string(key)); ok {
		return it.val, !it.del, nil
	}
	tp, err := t.in(s.p, group)
	if err != nil {
		return nil, false, err
	}
	v, err := tp.part.Get(ctx, key, kv.MaxTimestamp)
	if err != nil {
		return nil, false, storeErr(err)
	}
	return v.Data, v.Exists, nil
}

// mergeIter merges the transaction's buffered writes over a kv iterator.
// The buffered part is collected when the iterator opens. Keys and values
// it returns are valid until the next call (they may be the kv iterator's
// own buffers): callers copy what they keep.
type mergeIter struct {
	kvIt    Iterator
	buf     []bufItem
	reverse bool
	kvOK    bool
	advance bool // the kv iterator must step before its head is compared
}

// newMergeIter merges buf's writes to group's part in [start, end) over
// it, an iterator of that part over the same range and direction.
func newMergeIter(it Iterator, buf *btree.BTreeG[bufItem], group uint64, start, end []byte, reverse bool) *mergeIter {
	m := &mergeIter{kvIt: it, reverse: reverse, advance: true}
	if buf != nil && buf.Len() > 0 {
		collect := func(it bufItem) bool {
			if it.group == group {
				m.buf = append(m.buf, it)
			}
			return true
		}
		lo, hi := bufItem{key: string(start)}, bufItem{key: string(end)}
		if end == nil {
			buf.AscendGreaterOrEqual(lo, collect)
		} else {
			buf.AscendRange(lo, hi, collect)
		}
		if reverse {
			for i, j := 0, len(m.buf)-1; i < j; i, j = i+1, j-1 {
				m.buf[i], m.buf[j] = m.buf[j], m.buf[i]
			}
		}
	}
	return m
}

// next returns the next live key and value; fromBuf reports whether they
// are the transaction's own.
func (m *mergeIter) next() (key, val []byte, fromBuf, ok bool) {
	for {
		if m.advance {
			m.kvOK = m.kvIt.Next()
			m.advance = false
		}
		hasBuf := len(m.buf) > 0
		if !hasBuf && !m.kvOK {
			return nil, nil, false, false
		}
		var c int
		switch {
		case !hasBuf:
			c = -1
		case !m.kvOK:
			c = 1
		default:
			c = strings.Compare(string(m.kvIt.Key()), m.buf[0].key)
			if m.reverse {
				c = -c
			}
		}
		if c < 0 {
			m.advance = true
			return m.kvIt.Key(), m.kvIt.Value(), false, true
		}
		b := m.buf[0]
		m.buf = m.buf[1:]
		if c == 0 {
			m.advance = true
		}
		if b.del {
			continue
		}
		return []byte(b.key), b.val, true, true
	}
}

func (m *mergeIter) err() error { return storeErr(m.kvIt.Err()) }

func (m *mergeIter) close() { m.kvIt.Close() }

// DataLength implements sql.StatisticsTable (an estimate is enough).
func (t *Table) DataLength(ctx *sql.Context) (uint64, error) {
	n, _, err := t.RowCount(ctx)
	return n * 64, err
}

// RowCount implements sql.StatisticsTable with an estimate kept by commits
// (counted once per table and process, then adjusted), so planning a query
// never scans a table. It is reported as inexact: COUNT(*) still counts.
func (t *Table) RowCount(ctx *sql.Context) (uint64, bool, error) {
	n, err := t.p.rowCount(t.m)
	if n < 0 {
		n = 0
	}
	return uint64(n), false, err
}

// visibleAt fails with 1412 when the snapshot ts predates m's table ID: a
// TRUNCATE or a rebuild by another session since the snapshot moved the
// table to a new ID, whose range holds nothing as of ts, so a consistent
// read would silently see an empty table. InnoDB refuses such a read the
// same way. A catalog change that kept the ID (a comment, a new index)
// leaves the snapshot's rows where they were, and the read goes on, unless
// it reads through index im (non-nil) built since the snapshot, whose
// entries are all newer than it.
//
// It fails likewise when m is older than the definition as of ts: a
// statement on rows looks its tables up in this node's catalog before any
// barrier (catalogOnMiss), so m may be a definition replaced since, whose
// table ID's range holds rows deleted by a TRUNCATE or none of those
// written after a rebuild.
//
// pt is the table's part, whose snapshot ts is. For a table in the catalog
// group the check reads the catalog as of ts; a placed table's part has no
// catalog, and its definition marker answers (placedVisibleAt).
func (m *tableMeta) visibleAt(ctx context.Context, pt Part, ts kv.Timestamp, im *indexMeta) error {
	if m.placed() {
		return m.placedVisibleAt(ctx, pt, ts, im)
	}
	if m.version == 0 {
		return nil // a definition the running DDL is building
	}
	if sc, ok := ctx.(*sql.Context); ok && kv.Timestamp(m.version) <= ts {
		// A DDL statement reads its table under definitions its own
		// earlier steps replaced (a multi-clause ALTER): only statements
		// on rows, whose names come from a catalog that may be behind,
		// must hold the definition stored as of ts.
		if s := sessionOf(sc); s != nil && !rowStatement(s.stmtText(sc)) {
			return nil
		}
	}
	v, err := pt.Get(ctx, keys.CatalogKey(catTable, lower(m.db), lower(m.def.Name)), ts)
	if err != nil {
		return err
	}
	if v.Exists && uint64(v.Version) == m.version {
		return nil
	}
	if v.Exists {
		var def tableDef
		if err := json.Unmarshal(v.Data, &def); err != nil {
			return err
		}
		if def.ID == m.def.ID && im == nil {
			return nil
		}
		if def.ID == m.def.ID {
			for _, id := range def.Indexes {
				if id.ID == im.def.ID {
					return nil
				}
			}
		}
	}
	return errTableDefChanged
}
