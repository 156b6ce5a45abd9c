package sqlfront

import (
	"encoding/binary"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// Schema changes that alter the row format rewrite the table: the engine
// streams every row, converted to the new schema, into RewriteInserter, and
// the new rows go under a fresh table ID. The new definition, the new rows
// and the removal of the old ones commit in one batch, so a crash or a
// failed conversion leaves the old table whole.

// ShouldRewriteTable implements sql.RewritableTable: every column and key
// change rewrites, since a stored row always has its definition's shape.
func (t *Table) ShouldRewriteTable(*sql.Context, sql.PrimaryKeySchema, sql.PrimaryKeySchema, *sql.Column, *sql.Column) bool {
	return true
}

// RewriteInserter implements sql.RewritableTable.
func (t *Table) RewriteInserter(ctx *sql.Context, oldSchema, newSchema sql.PrimaryKeySchema, oldCol, newCol *sql.Column, idxCols []sql.IndexColumn) (sql.RowInserter, error) {
	s := sessionOf(ctx)
	unlock := func() {}
	if s != nil {
		u, err := s.ddlLock(ctx, t.m)
		if err != nil {
			return nil, err
		}
		unlock = u
		// Rows are read after the lock, from a fresh snapshot.
		s.mu.Lock()
		if s.txn != nil && s.txn.snap != nil {
			s.txn.snap.Release()
			s.txn.snap = nil
		}
		s.mu.Unlock()
	}
	cur := t.p.table(t.m.db, t.m.def.Name)
	if cur == nil {
		unlock()
		return nil, sql.ErrTableNotFound.New(t.m.def.Name)
	}
	nm, err := t.rewrittenMeta(ctx, cur, newSchema, oldCol, newCol)
	if err != nil {
		unlock()
		return nil, err
	}
	return &rewriter{t: t, old: cur, m: nm, unlock: unlock, unique: map[string]bool{}}, nil
}

// rewrittenMeta derives the new definition: columns and key from the new
// schema; secondary indexes, foreign keys and checks carried over, following
// a renamed column and losing a dropped one.
func (t *Table) rewrittenMeta(ctx *sql.Context, cur *tableMeta, newSchema sql.PrimaryKeySchema, oldCol, newCol *sql.Column) (*tableMeta, error) {
	old := copyDef(cur.def)
	def := defFromSchema(0, old.Name, newSchema, old.Collation, old.Comment)
	def.FKs, def.Checks, def.AutoInc, def.NextIndexID = old.FKs, old.Checks, old.AutoInc, old.NextIndexID
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
	return newTableMeta(cur.db, def, 0)
}

type rewriter struct {
	t      *Table
	old    *tableMeta
	m      *tableMeta // new definition; its ID is assigned at Close
	rows   []sql.Row
	unique map[string]bool
	failed bool
	unlock func()
	closed bool
}

func (r *rewriter) StatementBegin(*sql.Context)              {}
func (r *rewriter) StatementComplete(*sql.Context) error     { return nil }
func (r *rewriter) DiscardChanges(*sql.Context, error) error { r.failed = true; return nil }

// Insert checks the row against the new keys at once, so a duplicate
// introduced by the change (a new primary key, a narrower type) fails the
// statement with MySQL's duplicate-entry error.
func (r *rewriter) Insert(ctx *sql.Context, row sql.Row) error {
	m := r.m
	if !m.keyless() {
		pk, err := m.pkSuffix(row)
		if err != nil {
			return err
		}
		if r.unique[string(pk)] {
			return sql.NewUniqueKeyErr(m.dupMessage(ctx, "PRIMARY", m.pkOrds, row), true, row)
		}
		r.unique[string(pk)] = true
		for _, o := range m.pkOrds {
			if row[o] == nil {
				return sql.ErrInsertIntoNonNullableProvidedNull.New(m.schema[o].Name)
			}
		}
	}
	for _, im := range m.indexes {
		if !im.def.Unique {
			continue
		}
		ik, unique, err := m.indexKey(im, row, nil)
		if err != nil {
			return err
		}
		if unique {
			if r.unique[string(ik)] {
				return sql.NewUniqueKeyErr(m.dupMessage(ctx, im.def.Name, im.ords, row), false, row)
			}
			r.unique[string(ik)] = true
		}
	}
	r.rows = append(r.rows, row)
	return nil
}

func (r *rewriter) Close(ctx *sql.Context) error {
	if r.closed {
		return nil
	}
	r.closed = true
	defer r.unlock()
	if r.failed {
		return nil
	}
	return r.t.p.runDDL(ctx, func(b *ddlBatch) error {
		cur := r.t.p.table(r.old.db, r.old.def.Name)
		if cur == nil || cur.version != r.old.version {
			return errDDLConflict
		}
		id, err := b.newTableID()
		if err != nil {
			return err
		}
		def := r.m.def
		def.ID = id
		nm, err := newTableMeta(cur.db, def, 0)
		if err != nil {
			return err
		}
		if err := writeRows(b, nm, r.rows); err != nil {
			return err
		}
		for _, pre := range [][]byte{keys.TablePrefix(cur.def.ID), autoIncPrefix(cur.def.ID)} {
			if err := b.deleteRange(pre, keys.PrefixEnd(pre)); err != nil {
				return err
			}
		}
		b.expect(tableLockKey(cur), cur.version)
		if err := b.putTable(nm); err != nil {
			return err
		}
		r.t.p.forgetCounters(cur.def.ID)
		r.t.m = nm
		return nil
	})
}

// writeRows adds rows and their index entries to a DDL batch.
func writeRows(b *ddlBatch, m *tableMeta, rows []sql.Row) error {
	rp := m.rowPrefix()
	for i, row := range rows {
		var pk []byte
		if m.keyless() {
			pk = keys.AppendUint(nil, uint64(i+1))
		} else {
			var err error
			if pk, err = m.pkSuffix(row); err != nil {
				return err
			}
		}
		val, err := encodeRow(nil, row)
		if err != nil {
			return err
		}
		b.put(append(append([]byte(nil), rp...), pk...), val)
		for _, im := range m.indexes {
			ik, _, err := m.indexKey(im, row, pk)
			if err != nil {
				return err
			}
			b.put(ik, pk)
		}
	}
	return nil
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
	rp := r.old.rowPrefix()
	it := t.p.store.Engine().NewIterator(rp, keys.PrefixEnd(rp), kv.MaxTimestamp, false)
	for it.Next() {
		row, err := decodeRow(it.Value(), len(r.old.schema))
		if err == nil {
			row, err = conv(row)
		}
		if err == nil {
			err = r.Insert(ctx, row)
		}
		if err != nil {
			it.Close()
			r.failed = true
			_ = r.Close(ctx)
			return err
		}
	}
	err = it.Err()
	it.Close()
	if err != nil {
		r.failed = true
		_ = r.Close(ctx)
		return err
	}
	return r.Close(ctx)
}

func schemaWith(cols sql.Schema, pk []int) sql.PrimaryKeySchema {
	return sql.NewPrimaryKeySchema(cols, pk...)
}

// AddColumn implements sql.AlterableTable.
func (t *Table) AddColumn(ctx *sql.Context, col *sql.Column, order *sql.ColumnOrder) error {
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
	rp := t.m.rowPrefix()
	it := newMergeIter(t.p.store.Engine(), tx.buf, rp, keys.PrefixEnd(rp), kv.MaxTimestamp, false)
	var victims []sql.Row
	for {
		k, _, _, ok := it.next()
		if !ok {
			break
		}
		data, exists, err := e.sess.lockedRead(ctx, tx, k, lock.Exclusive)
		if err != nil {
			it.close()
			return 0, err
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
		return 0, err
	}
	for _, row := range victims {
		if err := e.Delete(ctx, row); err != nil {
			return 0, err
		}
	}
	return len(victims), nil
}

func (t *Table) truncateDDL(ctx *sql.Context) (int, error) {
	n := 0
	err := t.alterDef(ctx, func(def *tableDef, cur *tableMeta, b *ddlBatch) error {
		rp := cur.rowPrefix()
		it := t.p.store.Engine().NewIterator(rp, keys.PrefixEnd(rp), kv.MaxTimestamp, false)
		for it.Next() {
			n++
		}
		err := it.Err()
		it.Close()
		if err != nil {
			return err
		}
		tp := keys.TablePrefix(cur.def.ID)
		if err := b.deleteRange(tp, keys.PrefixEnd(tp)); err != nil {
			return err
		}
		ap := autoIncPrefix(cur.def.ID)
		if err := b.deleteRange(ap, keys.PrefixEnd(ap)); err != nil {
			return err
		}
		def.AutoInc = 0
		t.p.forgetCounters(cur.def.ID)
		return nil
	})
	return n, err
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
		top, err := t.p.maxAutoValue(cur)
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
func (p *Provider) maxAutoValue(m *tableMeta) (uint64, error) {
	if m.autoCol < 0 {
		return 0, nil
	}
	rp := m.rowPrefix()
	leads := len(m.pkOrds) > 0 && m.pkOrds[0] == m.autoCol
	it := p.store.Engine().NewIterator(rp, keys.PrefixEnd(rp), kv.MaxTimestamp, leads)
	defer it.Close()
	var max uint64
	for it.Next() {
		row, err := decodeRow(it.Value(), len(m.schema))
		if err != nil {
			return 0, err
		}
		if v := row[m.autoCol]; v != nil {
			if u, ok := autoValue(nil, v); ok && u > max {
				max = u
			}
		}
		if leads {
			break
		}
	}
	return max, it.Err()
}
