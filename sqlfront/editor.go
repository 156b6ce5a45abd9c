package sqlfront

import (
	"fmt"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// editor applies one statement's row changes to the session's transaction.
// Every key it writes is locked exclusively first; the versions it replaces
// become commit preconditions.
type editor struct {
	*Table
	sess *Session
	// changesDup: the statement changes the row a duplicate key points to
	// (REPLACE, ON DUPLICATE KEY UPDATE), so the duplicate check locks it.
	changesDup bool
}

var (
	_ sql.TableEditor         = (*editor)(nil)
	_ sql.ForeignKeyEditor    = (*editor)(nil)
	_ sql.AutoIncrementSetter = (*editor)(nil)
)

func (t *Table) editor(ctx *sql.Context) *editor {
	s := ctx.Session.(*Session)
	s.markTarget(ctx, t.m.def.ID)
	return &editor{Table: &Table{p: t.p, m: t.m, live: true}, sess: s}
}

// Inserter implements sql.InsertableTable.
func (t *Table) Inserter(ctx *sql.Context) sql.RowInserter {
	e := t.editor(ctx)
	st := e.sess.stmt(ctx)
	st.inserters = append(st.inserters, e)
	return e
}

// Updater implements sql.UpdatableTable. The engine runs INSERT ... ON
// DUPLICATE KEY UPDATE with an inserter and then an updater of the same
// table: the inserter's duplicates are rows the statement changes.
func (t *Table) Updater(ctx *sql.Context) sql.RowUpdater {
	e := t.editor(ctx)
	for _, ins := range e.sess.stmt(ctx).inserters {
		if ins.m.def.ID == e.m.def.ID {
			ins.changesDup = true
		}
	}
	return e
}

// Deleter implements sql.DeletableTable.
func (t *Table) Deleter(ctx *sql.Context) sql.RowDeleter { return t.editor(ctx) }

// Replacer implements sql.ReplaceableTable.
func (t *Table) Replacer(ctx *sql.Context) sql.RowReplacer {
	e := t.editor(ctx)
	e.changesDup = true
	return e
}

// GetForeignKeyEditor implements sql.ForeignKeyTable.
func (t *Table) GetForeignKeyEditor(ctx *sql.Context) sql.ForeignKeyEditor { return t.editor(ctx) }

// StatementBegin implements sql.EditOpenerCloser.
func (e *editor) StatementBegin(ctx *sql.Context) { e.sess.statementBegin(ctx) }

// DiscardChanges implements sql.EditOpenerCloser.
func (e *editor) DiscardChanges(ctx *sql.Context, _ error) error {
	e.sess.statementRollback(ctx)
	return nil
}

// StatementComplete implements sql.EditOpenerCloser.
func (e *editor) StatementComplete(ctx *sql.Context) error {
	e.sess.statementComplete(ctx)
	return nil
}

// Close implements sql.Closer.
func (e *editor) Close(*sql.Context) error { return nil }

func (e *editor) txn(ctx *sql.Context) (*txn, error) {
	t, err := e.sess.current(ctx)
	if err != nil {
		return nil, err
	}
	if t.readOnly {
		return nil, errReadOnlyTxn
	}
	if cur := e.p.table(e.m.db, e.m.def.Name); cur != nil && cur != e.m && cur.def.ID == e.m.def.ID && sameIndexes(cur, e.m) {
		// A schema change that kept the row format and indexes (a foreign
		// key resolved, a comment) happened since the statement looked the
		// table up: write under the current definition.
		e.m = cur
	}
	if _, ok := t.tables[e.m.def.ID]; !ok {
		// The shared metadata lock keeps DDL off the table until this
		// transaction ends. A placed table's is in its own part, with its
		// definition marker (marker.go).
		if err := e.sess.lockKey(ctx, t, e.m.group(), tableLockKey(e.m), lock.Shared); err != nil {
			return nil, err
		}
		if e.m.placed() {
			if err := e.checkMarker(ctx, t); err != nil {
				return nil, err
			}
		}
		t.tables[e.m.def.ID] = e.m
	}
	return t, nil
}

// pkSuffix encodes the primary key of row (the part of the row key after
// the table's row prefix).
func (m *tableMeta) pkSuffix(row sql.Row) ([]byte, error) {
	var b []byte
	for _, o := range m.pkOrds {
		var err error
		b, err = appendKeyValue(b, m.schema[o].Type, row[o], 0)
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// indexKey returns the key of row's entry in index im. A unique index entry
// whose columns hold no NULL is keyed by its columns alone, so a second row
// with the same values collides on the key; otherwise the row's key suffix
// is appended, as several rows may share the values.
func (m *tableMeta) indexKey(im *indexMeta, row sql.Row, pk []byte) (key []byte, unique bool, err error) {
	key = keys.IndexPrefix(m.def.ID, im.def.ID)
	hasNull := false
	for j, o := range im.ords {
		if row[o] == nil {
			hasNull = true
		}
		key, err = appendKeyValue(key, m.schema[o].Type, row[o], im.prefix[j])
		if err != nil {
			return nil, false, err
		}
	}
	if im.def.Unique && !hasNull {
		return key, true, nil
	}
	return append(key, pk...), false, nil
}

// dupMessage is MySQL's text for a duplicate key, which clients parse
// (oslo.db reads the key name and value from it).
func (m *tableMeta) dupMessage(ctx *sql.Context, keyName string, ords []int, row sql.Row) string {
	parts := make([]string, len(ords))
	for i, o := range ords {
		parts[i] = formatValue(ctx, m.schema[o].Type, row[o])
	}
	return fmt.Sprintf("Duplicate entry '%s' for key '%s.%s'", strings.Join(parts, "-"), m.def.Name, keyName)
}

// dupErr is the engine's duplicate-key error, which drives INSERT IGNORE,
// REPLACE and ON DUPLICATE KEY UPDATE. Its text is the engine's; MySQL's
// text, which names the key, is kept on the session for the wire edge,
// paired with the engine's text so that it is used for this error only.
func (e *editor) dupErr(ctx *sql.Context, keyName string, ords []int, row sql.Row, isPK bool, existing sql.Row) error {
	parts := make([]string, len(ords))
	for i, o := range ords {
		parts[i] = fmt.Sprint(row[o])
	}
	// The engine's own backends print the key values unseparated; its tests
	// compare the text.
	err := sql.NewUniqueKeyErr("["+strings.Join(parts, "")+"]", isPK, existing)
	e.sess.setDupMessage(err.Error(), e.m.dupMessage(ctx, keyName, ords, row))
	return err
}

func formatValue(ctx *sql.Context, typ sql.Type, v interface{}) string {
	if v == nil {
		return "NULL"
	}
	sv, err := typ.SQL(ctx, nil, v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return sv.ToString()
}

// Insert implements sql.RowInserter.
func (e *editor) Insert(ctx *sql.Context, row sql.Row) error {
	t, err := e.txn(ctx)
	if err != nil {
		return err
	}
	m := e.m
	var pk []byte
	if m.keyless() {
		id, err := e.p.nextRowID(ctx, m)
		if err != nil {
			return err
		}
		pk = keys.AppendUint(nil, id)
	} else {
		pk, err = m.pkSuffix(row)
		if err != nil {
			return err
		}
	}
	rowKey := append(m.rowPrefix(), pk...)
	if m.keyless() {
		// A hidden row ID is never handed out twice; should one be all the
		// same, the commit fails rather than overwrite the row it names.
		if _, ok := t.seen[string(rowKey)]; !ok {
			t.seen[string(rowKey)] = observed{exists: false, group: m.group()}
		}
	} else {
		data, exists, err := e.sess.lockedRead(ctx, t, e.m.group(), rowKey, lock.Exclusive)
		if err != nil {
			return err
		}
		if exists {
			existing, err := decodeRow(data, len(m.schema))
			if err != nil {
				return err
			}
			return e.dupErr(ctx, "PRIMARY", m.pkOrds, row, true, existing)
		}
	}
	var entries [][]byte
	for _, im := range m.indexes {
		ik, unique, err := m.indexKey(im, row, pk)
		if err != nil {
			return err
		}
		if unique {
			if err := e.claimUnique(ctx, t, im, ik, row); err != nil {
				return err
			}
		}
		entries = append(entries, ik)
	}
	val, err := encodeRow(nil, row)
	if err != nil {
		return err
	}
	if err := t.write(e.p, e.m.group(), string(rowKey), val, false); err != nil {
		return err
	}
	for _, ik := range entries {
		if err := t.write(e.p, e.m.group(), string(ik), pk, false); err != nil {
			return err
		}
	}
	return e.p.noteAutoInc(ctx, m, row)
}

// claimUnique locks a unique index key the row is about to take and reads
// it: an existing entry is a duplicate; a free one becomes a commit
// precondition whose failure means the same duplicate. Whoever deletes the
// entry holds its lock until its transaction ends (releaseUnique), so the
// entry read under the lock is the answer, as InnoDB judges a duplicate by
// the index record it locks.
//
// REPLACE and ON DUPLICATE KEY UPDATE go on to change the duplicate's row,
// which the engine takes from the error: that row is locked and read under
// its lock. The wait for it may be long; the entry, read again afterwards,
// still decides, never the row it pointed to before the wait. Other
// statements only report the duplicate and read its row without a lock, so
// an INSERT never waits for a row another transaction holds and may yet
// change (which would deadlock when that transaction then frees the
// value).
func (e *editor) claimUnique(ctx *sql.Context, t *txn, im *indexMeta, ik []byte, row sql.Row) error {
	pk, taken, err := e.sess.lockedRead(ctx, t, e.m.group(), ik, lock.Exclusive)
	if err != nil {
		return err
	}
	for taken {
		existing, found, err := e.rowAt(ctx, t, pk, e.changesDup)
		if err != nil {
			return err
		}
		cur, still := pk, taken
		if e.changesDup {
			if cur, still, err = e.sess.peek(ctx, t, e.m.group(), ik); err != nil {
				return err
			}
		}
		if still && string(cur) == string(pk) {
			if !found {
				return fmt.Errorf("sqlfront: index entry of %s points to a missing row", e.m.def.Name)
			}
			return e.dupErr(ctx, im.def.Name, im.ords, row, false, existing)
		}
		pk, taken = cur, still
	}
	t.uniqueMsg[string(ik)] = e.m.dupMessage(ctx, im.def.Name, im.ords, row)
	return nil
}

// releaseUnique locks a unique index entry the transaction is about to
// delete. Until the transaction ends, an insert of the value it held waits
// here: it then finds the value free if the delete commits, and taken if
// it rolls back, as with InnoDB's lock on a delete-marked record. Without
// the lock, the insert would read the committed entry and judge by the row
// it points to, whatever became of that row.
func (e *editor) releaseUnique(ctx *sql.Context, t *txn, ik []byte) error {
	_, _, err := e.sess.lockedRead(ctx, t, e.m.group(), ik, lock.Exclusive)
	return err
}

// rowAt reads the row a unique index entry points to: with an exclusive
// lock as a current read, or else its newest version without a lock.
func (e *editor) rowAt(ctx *sql.Context, t *txn, pk []byte, locked bool) (sql.Row, bool, error) {
	key := append(e.m.rowPrefix(), pk...)
	var (
		data []byte
		ok   bool
		err  error
	)
	if locked {
		data, ok, err = e.sess.lockedRead(ctx, t, e.m.group(), key, lock.Exclusive)
	} else {
		data, ok, err = e.sess.peek(ctx, t, e.m.group(), key)
	}
	if err != nil || !ok {
		return nil, false, err
	}
	row, err := decodeRow(data, len(e.m.schema))
	return row, err == nil, err
}

// rowKeyOf finds the stored key of a row the engine hands back. Keyed
// tables derive it; keyless ones search for an equal row not yet claimed by
// this statement.
func (e *editor) rowKeyOf(ctx *sql.Context, t *txn, row sql.Row) ([]byte, []byte, error) {
	m := e.m
	if !m.keyless() {
		pk, err := m.pkSuffix(row)
		if err != nil {
			return nil, nil, err
		}
		return append(m.rowPrefix(), pk...), pk, nil
	}
	want, err := encodeRow(nil, row)
	if err != nil {
		return nil, nil, err
	}
	st := e.sess.stmt(ctx)
	if st.claimed == nil {
		st.claimed = map[string]bool{}
	}
	rp := m.rowPrefix()
	pt, err := e.p.partOf(m)
	if err != nil {
		return nil, nil, storeErr(err)
	}
	it := newMergeIter(pt.NewIterator(ctx, rp, keys.PrefixEnd(rp), kv.MaxTimestamp, false), t.buf, rp, keys.PrefixEnd(rp), false)
	defer it.close()
	for {
		k, v, _, ok := it.next()
		if !ok {
			if err := it.err(); err != nil {
				return nil, nil, err
			}
			return nil, nil, sql.ErrDeleteRowNotFound.New()
		}
		if st.claimed[string(k)] || string(v) != string(want) {
			continue
		}
		st.claimed[string(k)] = true
		k = append([]byte(nil), k...)
		return k, k[len(rp):], nil
	}
}

// Delete implements sql.RowDeleter.
func (e *editor) Delete(ctx *sql.Context, row sql.Row) error {
	t, err := e.txn(ctx)
	if err != nil {
		return err
	}
	rowKey, pk, err := e.rowKeyOf(ctx, t, row)
	if err != nil {
		return err
	}
	_, buffered := t.get(string(rowKey))
	data, exists, err := e.sess.lockedRead(ctx, t, e.m.group(), rowKey, lock.Exclusive)
	if err != nil {
		return err
	}
	if !exists {
		return nil
	}
	stored, err := decodeRow(data, len(e.m.schema))
	if err != nil {
		return err
	}
	if !buffered {
		if err := e.requireRead(ctx, t, row, stored); err != nil {
			return err
		}
	}
	if err := t.write(e.p, e.m.group(), string(rowKey), nil, true); err != nil {
		return err
	}
	for _, im := range e.m.indexes {
		ik, unique, err := e.m.indexKey(im, stored, pk)
		if err != nil {
			return err
		}
		if unique {
			if err := e.releaseUnique(ctx, t, ik); err != nil {
				return err
			}
		}
		if err := t.write(e.p, e.m.group(), string(ik), nil, true); err != nil {
			return err
		}
	}
	return nil
}

// requireRead is the last guard against a lost update: the engine computed
// the change (the new row, or the decision that the row matches) from old,
// which must be the version the editor has just read under its exclusive
// lock. A row another transaction committed since old was read cannot be
// re-evaluated here (the editor has neither the statement's expressions
// nor its conditions), so the transaction is rolled back as a deadlock
// victim's would be, and the client retries it. Rows the transaction has
// itself written are exempt: its lock has kept them since.
func (e *editor) requireRead(ctx *sql.Context, t *txn, old, stored sql.Row) error {
	for i, col := range e.m.schema {
		if col.Virtual || i >= len(old) || sameValue(ctx, col.Type, old[i], stored[i]) {
			continue
		}
		e.p.log.Warn("a write computed from a row version older than the locked one; rolling the transaction back",
			"table", e.m.db+"."+e.m.def.Name, "connection", e.sess.ID())
		e.sess.abortTxn(t)
		return errDeadlock
	}
	return nil
}

// sameValue reports whether two values of a column are one stored value.
// Equal encodings are; so are values of different Go types that compare
// equal (the engine may hand back a converted number), but not strings
// that only compare equal under their collation ('a' and 'A').
func sameValue(ctx *sql.Context, typ sql.Type, a, b interface{}) bool {
	ea, errA := appendValue(nil, a)
	eb, errB := appendValue(nil, b)
	if errA == nil && errB == nil && string(ea) == string(eb) {
		return true
	}
	switch a.(type) {
	case string, []byte:
		return false
	}
	c, err := typ.Compare(ctx, a, b)
	return err == nil && c == 0
}

// Update implements sql.RowUpdater.
func (e *editor) Update(ctx *sql.Context, old, new sql.Row) error {
	t, err := e.txn(ctx)
	if err != nil {
		return err
	}
	m := e.m
	oldKey, oldPK, err := e.rowKeyOf(ctx, t, old)
	if err != nil {
		return err
	}
	if !m.keyless() {
		newPK, err := m.pkSuffix(new)
		if err != nil {
			return err
		}
		if string(newPK) != string(oldPK) {
			if err := e.Delete(ctx, old); err != nil {
				return err
			}
			return e.Insert(ctx, new)
		}
	}
	_, buffered := t.get(string(oldKey))
	data, exists, err := e.sess.lockedRead(ctx, t, e.m.group(), oldKey, lock.Exclusive)
	if err != nil {
		return err
	}
	if !exists {
		return nil
	}
	stored, err := decodeRow(data, len(m.schema))
	if err != nil {
		return err
	}
	if !buffered {
		if err := e.requireRead(ctx, t, old, stored); err != nil {
			return err
		}
	}
	type change struct {
		del, put []byte
	}
	var changes []change
	for _, im := range m.indexes {
		ok, oldUnique, err := m.indexKey(im, stored, oldPK)
		if err != nil {
			return err
		}
		nk, unique, err := m.indexKey(im, new, oldPK)
		if err != nil {
			return err
		}
		if string(ok) == string(nk) {
			continue
		}
		if oldUnique {
			if err := e.releaseUnique(ctx, t, ok); err != nil {
				return err
			}
		}
		if unique {
			if err := e.claimUnique(ctx, t, im, nk, new); err != nil {
				return err
			}
		}
		changes = append(changes, change{del: ok, put: nk})
	}
	val, err := encodeRow(nil, new)
	if err != nil {
		return err
	}
	if err := t.write(e.p, e.m.group(), string(oldKey), val, false); err != nil {
		return err
	}
	for _, c := range changes {
		if err := t.write(e.p, e.m.group(), string(c.del), nil, true); err != nil {
			return err
		}
		if err := t.write(e.p, e.m.group(), string(c.put), oldPK, false); err != nil {
			return err
		}
	}
	return e.p.noteAutoInc(ctx, m, new)
}

// SetAutoIncrementValue implements sql.AutoIncrementSetter.
func (e *editor) SetAutoIncrementValue(ctx *sql.Context, v uint64) error {
	return e.Table.setAutoInc(ctx, v)
}

// AcquireAutoIncrementLock implements sql.AutoIncrementSetter. Values are
// handed out under the counter's own mutex, one at a time, so there is no
// statement-long lock to take (innodb_autoinc_lock_mode=2 behaviour).
func (e *editor) AcquireAutoIncrementLock(*sql.Context) (func(), error) {
	return func() {}, nil
}

func sameIndexes(a, b *tableMeta) bool {
	if len(a.indexes) != len(b.indexes) {
		return false
	}
	for i := range a.indexes {
		if a.indexes[i].def.ID != b.indexes[i].def.ID || a.indexes[i].def.Unique != b.indexes[i].def.Unique {
			return false
		}
	}
	return true
}
