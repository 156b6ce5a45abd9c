package sqlfront

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// Schema changes that alter the row format rebuild the table under a new
// table ID: the engine streams every row, converted to the new schema, into
// RewriteInserter, which copies them in bounded batches into the new ID's
// range while the table's exclusive metadata lock keeps writers away. No
// catalog entry names the new ID until the copy is complete; then one small
// batch points the table's entry at it, and the old ID's rows are removed
// in the background (cleanup.go). A crash or a failed conversion leaves the
// old table whole and the partial copy to the same cleanup.

// ShouldRewriteTable implements sql.RewritableTable: every column and key
// change rewrites, since a stored row always has its definition's shape.
func (t *Table) ShouldRewriteTable(*sql.Context, sql.PrimaryKeySchema, sql.PrimaryKeySchema, *sql.Column, *sql.Column) bool {
	return true
}

// RewriteInserter implements sql.RewritableTable.
func (t *Table) RewriteInserter(ctx *sql.Context, oldSchema, newSchema sql.PrimaryKeySchema, oldCol, newCol *sql.Column, idxCols []sql.IndexColumn) (sql.RowInserter, error) {
	if err := checkColumnNames(newSchema.Schema); err != nil {
		return nil, err
	}
	if len(newSchema.Schema) == 0 {
		return nil, errDropAllColumns
	}
	s := sessionOf(ctx)
	owner := lock.TxnID(t.p.nextTxn.Add(1))
	unlock := func() { t.p.cat().ReleaseAll(owner) }
	if s != nil {
		locks, err := t.p.tableMDL(ctx, t.m)
		if err != nil {
			return nil, err
		}
		o, u, err := s.ddlLockOwner(ctx, locks...)
		if err != nil {
			return nil, err
		}
		owner, unlock = o, u
		// Rows are read after the lock, from a fresh snapshot.
		s.mu.Lock()
		if s.txn != nil {
			s.txn.dropSnapshots()
		}
		s.mu.Unlock()
	}
	r, err := t.newRewriter(ctx, owner, newSchema, oldCol, newCol)
	if err != nil {
		unlock()
		return nil, err
	}
	r.unlock = unlock
	return r, nil
}

// newRewriter hands out the new table ID and starts the copy under it.
func (t *Table) newRewriter(ctx *sql.Context, owner lock.TxnID, newSchema sql.PrimaryKeySchema, oldCol, newCol *sql.Column) (*rewriter, error) {
	cur := t.p.table(t.m.db, t.m.def.Name)
	if cur == nil {
		return nil, sql.ErrTableNotFound.New(t.m.def.Name)
	}
	nm, err := t.rewrittenMeta(ctx, cur, newSchema, oldCol, newCol)
	if err != nil {
		return nil, err
	}
	var id uint64
	if err := t.p.runDDL(ctx, func(b *ddlBatch) error {
		var err error
		id, err = b.newTableID()
		return err
	}); err != nil {
		return nil, err
	}
	def := nm.def
	def.ID = id
	if nm, err = newTableMeta(cur.db, def, 0); err != nil {
		return nil, err
	}
	f, err := t.p.newFiller(ctx, owner, id, 0, cur, cur.db+"."+cur.def.Name+" (rebuild)")
	if err != nil {
		return nil, err
	}
	return &rewriter{t: t, old: cur, m: nm, fill: f}, nil
}

// rewrittenMeta derives the new definition: columns and key from the new
// schema; secondary indexes, foreign keys and checks carried over, following
// a renamed column and losing a dropped one.
func (t *Table) rewrittenMeta(ctx *sql.Context, cur *tableMeta, newSchema sql.PrimaryKeySchema, oldCol, newCol *sql.Column) (*tableMeta, error) {
	old := copyDef(cur.def)
	def := defFromSchema(0, old.Name, newSchema, old.Collation, old.Comment)
	def.FKs, def.Checks, def.AutoInc, def.NextIndexID = old.FKs, old.Checks, old.AutoInc, old.NextIndexID
	def.Group = old.Group // a rebuild stays in the table's group
	def.Local = old.Local
	for _, c := range []string{old.Local.locality(), viaOf(old.Local)} {
		if c != "" && newSchema.Schema.IndexOfColName(c) < 0 {
			return nil, errPlacementColumnChange(c)
		}
	}
	if cur.autoCol >= 0 {
		// The sequence carries over to the new table ID.
		next, err := t.p.autoIncPeek(ctx, cur)
		if err != nil {
			return nil, err
		}
		def.AutoInc = max(def.AutoInc, next)
	}
	for _, id := range old.Indexes {
		var cols []string
		var prefix []uint16
		for j, c := range id.Columns {
			switch {
			case oldCol != nil && strings.EqualFold(c, oldCol.Name) && newCol == nil:
				continue // dropped column
			case oldCol != nil && newCol != nil && strings.EqualFold(c, oldCol.Name):
				c = newCol.Name
			}
			cols = append(cols, c)
			if j < len(id.Prefix) {
				prefix = append(prefix, id.Prefix[j])
			}
		}
		if len(cols) == 0 {
			continue
		}
		id.Columns, id.Prefix = cols, prefix
		def.Indexes = append(def.Indexes, id)
	}
	m, err := newTableMeta(cur.db, def, 0)
	if err != nil {
		return nil, err
	}
	// A new key, or a key column made longer.
	if err := checkKeyLengths(m); err != nil {
		return nil, err
	}
	return m, nil
}

type rewriter struct {
	t      *Table
	old    *tableMeta
	m      *tableMeta // new definition, under the new table ID
	fill   *filler
	rowID  uint64 // last hidden row ID given, for a keyless result
	failed bool
	unlock func()
	closed bool
}

func (r *rewriter) StatementBegin(*sql.Context)              {}
func (r *rewriter) StatementComplete(*sql.Context) error     { return nil }
func (r *rewriter) DiscardChanges(*sql.Context, error) error { r.failed = true; return nil }

// Insert copies one row and its index entries into the new table ID,
// checking it against the new keys at once: a duplicate introduced by the
// change (a new primary key, a narrower type) fails the statement with
// MySQL's duplicate-entry error. The copy so far is the reference, so
// nothing but the current batch is held in memory.
//
// A row of a local table is copied into the group it was read from: the
// engine hands over each row right after the table's scan returned it,
// and the scan notes its group (Table.lastGroup).
func (r *rewriter) Insert(ctx *sql.Context, row sql.Row) error {
	g := r.m.group()
	if r.m.local() {
		if g = r.t.lastGroup.Load(); g == 0 {
			return fmt.Errorf("sqlfront: rebuilding %s: a row of a local table came from no known group", r.m.def.Name)
		}
	}
	return r.insertIn(ctx, g, row)
}

// insertIn copies one row into group's part.
func (r *rewriter) insertIn(ctx *sql.Context, g uint64, row sql.Row) error {
	m := r.m
	var pk []byte
	if m.keyless() {
		r.rowID++
		pk = keys.AppendUint(nil, r.rowID)
	} else {
		for _, o := range m.pkOrds {
			if row[o] == nil {
				return sql.ErrInsertIntoNonNullableProvidedNull.New(m.schema[o].Name)
			}
		}
		var err error
		if pk, err = m.pkSuffix(row); err != nil {
			return err
		}
	}
	rk := append(m.rowPrefix(), pk...)
	if !m.keyless() {
		dup, err := r.fill.taken(ctx, g, rk, m.pkCross)
		if err != nil {
			return err
		}
		if dup {
			return sql.NewUniqueKeyErr(m.dupMessage(ctx, "PRIMARY", m.pkOrds, row), true, row)
		}
	}
	val, err := encodeRow(nil, row)
	if err != nil {
		return err
	}
	var entries [][]byte
	for _, im := range m.indexes {
		ik, unique, err := m.indexKey(im, row, pk)
		if err != nil {
			return err
		}
		if unique {
			dup, err := r.fill.taken(ctx, g, ik, im.cross)
			if err != nil {
				return err
			}
			if dup {
				return sql.NewUniqueKeyErr(m.dupMessage(ctx, im.def.Name, im.ords, row), false, row)
			}
		}
		entries = append(entries, ik)
	}
	if err := r.fill.put(ctx, g, rk, val); err != nil {
		return err
	}
	for _, ik := range entries {
		if err := r.fill.put(ctx, g, ik, pk); err != nil {
			return err
		}
	}
	return nil
}

// Close publishes the copy: the table's catalog entry takes the new ID in
// one small batch, and the old ID's rows go to the background cleanup.
func (r *rewriter) Close(ctx *sql.Context) error {
	if r.closed {
		return nil
	}
	r.closed = true
	defer r.unlock()
	if r.failed {
		return nil
	}
	if err := r.fill.complete(ctx, r.m); err != nil {
		return err
	}
	return r.t.p.runDDL(ctx, func(b *ddlBatch) error {
		cur := r.t.p.table(r.old.db, r.old.def.Name)
		if cur == nil || cur.version != r.old.version {
			return errDDLConflict
		}
		b.expect(tableLockKey(cur), cur.version)
		if err := b.putTable(r.m); err != nil {
			return err
		}
		r.fill.finish(b)
		if err := b.orphan(cur.def.ID, 0, cur, cur.db+"."+cur.def.Name); err != nil {
			return err
		}
		r.t.p.forgetCounters(cur.def.ID)
		r.t.m = r.m
		return nil
	})
}

// rewriteWith rewrites the table with a new schema, converting each stored
// row with conv. It serves the direct ALTER paths the engine takes for
// tables that cannot be rewritten through RewriteInserter.
func (t *Table) rewriteWith(ctx *sql.Context, newSchema sql.PrimaryKeySchema, oldCol, newCol *sql.Column, conv func(sql.Row) (sql.Row, error)) error {
	ins, err := t.RewriteInserter(ctx, t.m.pkSchema(), newSchema, oldCol, newCol, nil)
	if err != nil {
		return err
	}
	r := ins.(*rewriter)
	for _, g := range r.fill.groups {
		if err := r.copyGroup(ctx, g, conv); err != nil {
			r.failed = true
			_ = r.Close(ctx)
			return err
		}
	}
	return r.Close(ctx)
}

// copyGroup copies the old table's rows in group's part, converted.
func (r *rewriter) copyGroup(ctx *sql.Context, g uint64, conv func(sql.Row) (sql.Row, error)) error {
	rp := r.old.rowPrefix()
	it := r.fill.parts[g].part.NewIterator(ctx, rp, keys.PrefixEnd(rp), kv.MaxTimestamp, false)
	defer it.Close()
	for it.Next() {
		row, err := decodeRow(it.Value(), len(r.old.schema))
		if err == nil {
			row, err = conv(row)
		}
		if err == nil {
			err = r.insertIn(ctx, g, row)
		}
		if err != nil {
			return err
		}
	}
	return storeErr(it.Err())
}

func schemaWith(cols sql.Schema, pk []int) sql.PrimaryKeySchema {
	return sql.NewPrimaryKeySchema(cols, pk...)
}

// AddColumn implements sql.AlterableTable.
func (t *Table) AddColumn(ctx *sql.Context, col *sql.Column, order *sql.ColumnOrder) error {
	if err := checkColumnName(col.Name); err != nil {
		return err
	}
	old := t.m.schema
	pos := len(old)
	if order != nil {
		if order.First {
			pos = 0
		} else if order.AfterColumn != "" {
			pos = old.IndexOfColName(order.AfterColumn) + 1
		}
	}
	cols := append(append(append(sql.Schema{}, old[:pos]...), col), old[pos:]...)
	var pk []int
	for _, n := range t.m.def.PK {
		pk = append(pk, cols.IndexOfColName(n))
	}
	return t.rewriteWith(ctx, schemaWith(cols, pk), nil, col, func(row sql.Row) (sql.Row, error) {
		var v interface{}
		if col.Default != nil {
			d, err := col.Default.Eval(ctx, row)
			if err != nil {
				return nil, err
			}
			if v, _, err = col.Type.Convert(ctx, d); err != nil {
				return nil, err
			}
		} else if !col.Nullable {
			v = col.Type.Zero()
		}
		return append(append(append(sql.Row{}, row[:pos]...), v), row[pos:]...), nil
	})
}

// DropColumn implements sql.AlterableTable.
func (t *Table) DropColumn(ctx *sql.Context, name string) error {
	old := t.m.schema
	pos := old.IndexOfColName(name)
	if pos < 0 {
		return sql.ErrTableColumnNotFound.New(t.m.def.Name, name)
	}
	if len(old) == 1 {
		return errDropAllColumns
	}
	cols := append(append(sql.Schema{}, old[:pos]...), old[pos+1:]...)
	var pk []int
	for _, n := range t.m.def.PK {
		if !strings.EqualFold(n, name) {
			pk = append(pk, cols.IndexOfColName(n))
		}
	}
	return t.rewriteWith(ctx, schemaWith(cols, pk), old[pos], nil, func(row sql.Row) (sql.Row, error) {
		return append(append(sql.Row{}, row[:pos]...), row[pos+1:]...), nil
	})
}

// ModifyColumn implements sql.AlterableTable.
func (t *Table) ModifyColumn(ctx *sql.Context, name string, col *sql.Column, order *sql.ColumnOrder) error {
	if err := checkColumnName(col.Name); err != nil {
		return err
	}
	old := t.m.schema
	pos := old.IndexOfColName(name)
	if pos < 0 {
		return sql.ErrTableColumnNotFound.New(t.m.def.Name, name)
	}
	rest := append(append(sql.Schema{}, old[:pos]...), old[pos+1:]...)
	to := pos
	if order != nil {
		if order.First {
			to = 0
		} else if order.AfterColumn != "" {
			to = rest.IndexOfColName(order.AfterColumn) + 1
		}
	}
	cols := append(append(append(sql.Schema{}, rest[:to]...), col), rest[to:]...)
	var pk []int
	for _, n := range t.m.def.PK {
		if strings.EqualFold(n, name) {
			n = col.Name
		}
		pk = append(pk, cols.IndexOfColName(n))
	}
	return t.rewriteWith(ctx, schemaWith(cols, pk), old[pos], col, func(row sql.Row) (sql.Row, error) {
		v, _, err := col.Type.Convert(ctx, row[pos])
		if err != nil {
			return nil, err
		}
		r := append(append(sql.Row{}, row[:pos]...), row[pos+1:]...)
		return append(append(append(sql.Row{}, r[:to]...), v), r[to:]...), nil
	})
}

// CreatePrimaryKey implements sql.PrimaryKeyAlterableTable.
func (t *Table) CreatePrimaryKey(ctx *sql.Context, columns []sql.IndexColumn) error {
	if len(t.m.pkOrds) > 0 {
		return sql.ErrMultiplePrimaryKeysDefined.New()
	}
	cols := t.m.schema.Copy()
	var pk []int
	for _, c := range columns {
		o := cols.IndexOfColName(c.Name)
		if o < 0 {
			return sql.ErrKeyColumnDoesNotExist.New(c.Name)
		}
		cols[o].PrimaryKey = true
		cols[o].Nullable = false
		pk = append(pk, o)
	}
	return t.rewriteWith(ctx, schemaWith(cols, pk), nil, nil, func(row sql.Row) (sql.Row, error) { return row, nil })
}

// DropPrimaryKey implements sql.PrimaryKeyAlterableTable.
func (t *Table) DropPrimaryKey(ctx *sql.Context) error {
	if len(t.m.pkOrds) == 0 {
		return sql.ErrCantDropFieldOrKey.New("PRIMARY")
	}
	cols := t.m.schema.Copy()
	for _, c := range cols {
		c.PrimaryKey = false
	}
	return t.rewriteWith(ctx, schemaWith(cols, nil), nil, nil, func(row sql.Row) (sql.Row, error) { return row, nil })
}

// Truncate implements sql.TruncateableTable. TRUNCATE TABLE is DDL in
// MySQL: it empties the table at once and resets AUTO_INCREMENT. A DELETE
// without WHERE also lands here and must stay transactional, so it deletes
// row by row in the session's transaction.
func (t *Table) Truncate(ctx *sql.Context) (int, error) {
	if w, _ := word(ctx.Query(), skipSpaceAndComments(ctx.Query(), 0)); w == "truncate" {
		return t.truncateDDL(ctx)
	}
	e := t.editor(ctx)
	tx, err := e.txn(ctx)
	if err != nil {
		return 0, err
	}
	if e.m.local() {
		groups, err := t.p.groupsOf(ctx, e.m)
		if err != nil {
			return 0, storeErr(err)
		}
		for _, g := range groups {
			if err := e.enter(ctx, tx, g); err != nil {
				return 0, err
			}
		}
	}
	rp := t.m.rowPrefix()
	it, err := t.p.scanAll(ctx, tx, e.m, rp, keys.PrefixEnd(rp))
	if err != nil {
		return 0, err
	}
	var victims []sql.Row
	for {
		k, _, _, g, ok := it.next()
		if !ok {
			break
		}
		data, exists, err := e.sess.lockedRead(ctx, tx, g, k, lock.Exclusive)
		if err != nil {
			it.close()
			return 0, err
		}
		if e.m.local() {
			tx.rowGroups[string(k)] = g
		}
		if !exists {
			continue
		}
		row, err := decodeRow(data, len(t.m.schema))
		if err != nil {
			it.close()
			return 0, err
		}
		victims = append(victims, row)
	}
	err = it.err()
	it.close()
	if err != nil {
		return 0, storeErr(err)
	}
	for _, row := range victims {
		if err := e.Delete(ctx, row); err != nil {
			return 0, err
		}
	}
	return len(victims), nil
}

// truncateDDL gives the table a new, empty table ID and leaves the old
// one's rows to the background cleanup, so TRUNCATE is instant whatever the
// table's size. The affected-row count is the table's row-count estimate
// (MySQL reports 0, "no information").
func (t *Table) truncateDDL(ctx *sql.Context) (int, error) {
	var n int64
	err := t.alterDef(ctx, func(def *tableDef, cur *tableMeta, b *ddlBatch) error {
		var err error
		if n, err = t.p.rowCount(cur); err != nil {
			return err
		}
		if def.ID, err = b.newTableID(); err != nil {
			return err
		}
		def.AutoInc = 0
		t.p.forgetCounters(cur.def.ID)
		return b.orphan(cur.def.ID, 0, cur, cur.db+"."+cur.def.Name)
	})
	return int(n), err
}

// PeekNextAutoIncrementValue implements sql.AutoIncrementGetter.
func (t *Table) PeekNextAutoIncrementValue(ctx *sql.Context) (uint64, error) {
	return t.p.autoIncPeek(ctx, t.m)
}

// GetNextAutoIncrementValue implements sql.AutoIncrementTable. Without a
// given value it hands out the next one at once, so concurrent inserts
// never receive the same value; a given value moves the sequence past it.
func (t *Table) GetNextAutoIncrementValue(ctx *sql.Context, given interface{}) (uint64, error) {
	if given == nil {
		return t.p.autoIncNext(ctx, t.m, nil)
	}
	g, ok := autoValue(ctx, given)
	if !ok {
		return g, nil
	}
	return t.p.autoIncNext(ctx, t.m, &g)
}

// autoValue converts an AUTO_INCREMENT column value to the sequence's
// domain; negative values (allowed in signed columns) never move it.
func autoValue(ctx *sql.Context, v interface{}) (uint64, bool) {
	switch x := v.(type) {
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	case int:
		return uint64(x), x >= 0
	case float32:
		return uint64(x), x >= 0
	case float64:
		return uint64(x), x >= 0
	}
	u, _, err := types.Uint64.Convert(ctx, v)
	if err != nil {
		return 0, false
	}
	return u.(uint64), true
}

// AutoIncrementSetter implements sql.AutoIncrementTable.
func (t *Table) AutoIncrementSetter(ctx *sql.Context) sql.AutoIncrementSetter { return t.editor(ctx) }

// setAutoInc persists ALTER TABLE ... AUTO_INCREMENT = v. As in InnoDB, the
// sequence never goes below the largest value present. The mark is
// rewritten with the definition, so every node (the leader included)
// reads the sequence again from it.
func (t *Table) setAutoInc(ctx *sql.Context, v uint64) error {
	if err := t.alterDef(ctx, func(def *tableDef, cur *tableMeta, b *ddlBatch) error {
		def.AutoInc = v
		top, err := t.p.maxAutoValue(ctx, cur)
		if err != nil {
			return err
		}
		old, err := t.p.legacyAutoIncKeys(cur.def.ID)
		if err != nil {
			return err
		}
		for _, k := range old {
			b.del(k)
		}
		b.put(seqMarkKey(cur.def.ID, seqAutoInc), binary.BigEndian.AppendUint64(nil, max(v, satInc(top), 1)))
		return nil
	}); err != nil {
		return err
	}
	t.p.forgetCounters(t.m.def.ID)
	return nil
}

// noteAutoInc moves the sequence past an explicitly inserted value.
func (p *Provider) noteAutoInc(ctx *sql.Context, m *tableMeta, row sql.Row) error {
	if m.autoCol < 0 || row[m.autoCol] == nil {
		return nil
	}
	g, ok := autoValue(ctx, row[m.autoCol])
	if !ok {
		return nil
	}
	if g < p.seqFor(m.def.ID, seqAutoInc).floor.Load() {
		return nil
	}
	_, err := p.autoIncNext(ctx, m, &g)
	return err
}

// maxAutoValue finds the largest value of the AUTO_INCREMENT column: one
// key from the end of the primary key when the column leads it, otherwise
// a scan.
func (p *Provider) maxAutoValue(ctx context.Context, m *tableMeta) (uint64, error) {
	if m.autoCol < 0 {
		return 0, nil
	}
	return p.maxOverGroups(ctx, m, maxAutoIn)
}

// maxOverGroups is the largest of in's answers in every group holding m's
// rows.
func (p *Provider) maxOverGroups(ctx context.Context, m *tableMeta, in func(context.Context, Part, *tableMeta) (uint64, error)) (uint64, error) {
	groups, err := p.groupsOf(ctx, m)
	if err != nil {
		return 0, storeErr(err)
	}
	var top uint64
	for _, g := range groups {
		pt, err := p.part(g)
		if err != nil {
			return 0, storeErr(err)
		}
		v, err := in(ctx, pt, m)
		if err != nil {
			return 0, storeErr(err)
		}
		top = max(top, v)
	}
	return top, nil
}

// maxAutoIn is maxAutoValue in one part. A local table's sequence calls
// it directly, for a table without the column too (SHOW CREATE TABLE asks
// every table for its next value).
func maxAutoIn(ctx context.Context, pt Part, m *tableMeta) (uint64, error) {
	if m.autoCol < 0 {
		return 0, nil
	}
	rp := m.rowPrefix()
	leads := len(m.pkOrds) > 0 && m.pkOrds[0] == m.autoCol
	it := pt.NewIterator(ctx, rp, keys.PrefixEnd(rp), kv.MaxTimestamp, leads)
	defer it.Close()
	var top uint64
	for it.Next() {
		row, err := decodeRow(it.Value(), len(m.schema))
		if err != nil {
			return 0, err
		}
		if v := row[m.autoCol]; v != nil {
			if u, ok := autoValue(nil, v); ok && u > top {
				top = u
			}
		}
		if leads {
			break
		}
	}
	return top, it.Err()
}
