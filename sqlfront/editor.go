package sqlfront

import (
	"fmt"
	"sort"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"

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

// txn returns the transaction the editor writes in. A table that is not
// local has all its rows in one group, entered at once; a local table's
// group is entered row by row (enter).
func (e *editor) txn(ctx *sql.Context) (*txn, error) {
	t, err := e.sess.current(ctx)
	if err != nil {
		return nil, err
	}
	if t.readOnly {
		return nil, errReadOnlyTxn
	}
	if cur := e.p.table(e.m.db, e.m.def.Name); cur != nil && cur != e.m && cur.def.ID == e.m.def.ID && sameIndexes(cur, e.m) &&
		(sameRules(cur, e.m) || !rowStatement(e.sess.stmtText(ctx))) {
		// A schema change that kept the row format and indexes (a foreign
		// key resolved, a comment) happened since the statement looked the
		// table up: write under the current definition.
		e.m = cur
	}
	if !e.m.local() {
		if err := e.enter(ctx, t, e.m.group()); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// enter readies the transaction to write the table in group's part, once
// per transaction: the shared metadata lock keeps DDL off the table until
// the transaction ends; a placed table's is in that part, with its
// definition marker (marker.go).
func (e *editor) enter(ctx *sql.Context, t *txn, group uint64) error {
	tg := tableGroup{e.m.def.ID, group}
	if t.written[tg] {
		return nil
	}
	if tp, err := t.in(e.p, group); err != nil {
		return err
	} else if !e.m.placed() && e.sess.deferrable(tp) {
		// Taken with the statement's first row lock, or its commit.
		tp.deferLock(tableLockKey(e.m), lock.Shared)
	} else if err := e.sess.lockKey(ctx, t, group, tableLockKey(e.m), lock.Shared); err != nil {
		return err
	}
	if e.m.placed() {
		if err := e.checkMarker(ctx, t, group); err != nil {
			return err
		}
	}
	t.written[tg] = true
	t.tables[e.m.def.ID] = e.m
	return nil
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
	group := e.m.group()
	if e.m.local() {
		local, err := e.p.localGroup()
		if err != nil {
			return err
		}
		if group, err = e.home(ctx, t, row, local); err != nil {
			return err
		}
	}
	return e.insertIn(ctx, t, group, row)
}

// insertIn inserts row in group's part.
func (e *editor) insertIn(ctx *sql.Context, t *txn, group uint64, row sql.Row) error {
	if err := e.enter(ctx, t, group); err != nil {
		return err
	}
	m := e.m
	var (
		pk  []byte
		err error
	)
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
		if _, ok := t.seen[gkey{group, string(rowKey)}]; !ok {
			t.seen[gkey{group, string(rowKey)}] = observed{exists: false}
		}
	} else {
		deferred := false
		if !m.pkCross && !e.changesDup {
			deferred, err = e.sess.deferredClaim(ctx, t, m, group, rowKey, func() string {
				return m.dupMessage(ctx, "PRIMARY", m.pkOrds, row)
			})
			if err != nil {
				return err
			}
		}
		found := findResult{group: group}
		if !deferred {
			if found, err = e.claim(ctx, t, group, rowKey, m.pkCross); err != nil {
				return err
			}
		}
		if found.found {
			existing, err := decodeRow(found.data, len(m.schema))
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
			if err := e.claimUnique(ctx, t, group, im, ik, row); err != nil {
				return err
			}
		}
		entries = append(entries, ik)
	}
	val, err := encodeRow(nil, row)
	if err != nil {
		return err
	}
	if err := e.sess.beforeWrite(ctx, t, group); err != nil {
		return err
	}
	if err := t.write(e.p, group, string(rowKey), val, false); err != nil {
		return err
	}
	for _, ik := range entries {
		if err := t.write(e.p, group, string(ik), pk, false); err != nil {
			return err
		}
	}
	return e.p.noteAutoInc(ctx, m, row)
}

// checkGroups are the groups a unique key of a row homed in group is
// checked in: that group, or for a key checked across sites (cross) every
// site's group, in ascending order, the order their locks are taken in.
func (e *editor) checkGroups(ctx *sql.Context, group uint64, cross bool) ([]uint64, error) {
	if !cross {
		return []uint64{group}, nil
	}
	all, err := e.p.siteGroups(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	for _, g := range all {
		if g == group {
			return all, nil
		}
	}
	all = append(all, group)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all, nil
}

// claim locks a key a row homed in group is about to take (its row key, or
// a unique entry) exclusively and reads it: in group, or when cross in
// every group, the locks taken in ascending group order so that two
// inserts of one value at two sites queue instead of deadlocking, and the
// reads then sent at once. It returns what it found, group's own first.
// What an insert reads absent in another group is checked by no
// precondition of its commit, which goes to its home group alone: held by
// its lock only (DESIGN.md, "Local tables").
func (e *editor) claim(ctx *sql.Context, t *txn, group uint64, key []byte, cross bool) (findResult, error) {
	groups, err := e.checkGroups(ctx, group, cross)
	if err != nil {
		return findResult{}, err
	}
	res, err := e.sess.lockedReads(ctx, t, groups, key, lock.Exclusive)
	if err != nil {
		return findResult{}, err
	}
	for _, r := range res {
		if r.found && r.group == group {
			return r, nil
		}
	}
	for _, r := range res {
		if r.found {
			if e.m.local() {
				t.rowGroups[string(key)] = r.group
			}
			return r, nil
		}
	}
	return findResult{group: group}, nil
}

// claimUnique locks a unique index key the row, homed in group, is about
// to take and reads it: an existing entry is a duplicate; a free one
// becomes a commit precondition whose failure means the same duplicate.
// Whoever deletes the entry holds its lock until its transaction ends
// (releaseUnique), so the entry read under the lock is the answer, as
// InnoDB judges a duplicate by the index record it locks. A unique index
// of a local table checked across sites is claimed in every group.
//
// REPLACE and ON DUPLICATE KEY UPDATE go on to change the duplicate's row,
// which the engine takes from the error: that row is locked and read under
// its lock. The wait for it may be long; the entry, read again afterwards,
// still decides, never the row it pointed to before the wait. Other
// statements only report the duplicate and read its row without a lock, so
// an INSERT never waits for a row another transaction holds and may yet
// change (which would deadlock when that transaction then frees the
// value).
func (e *editor) claimUnique(ctx *sql.Context, t *txn, group uint64, im *indexMeta, ik []byte, row sql.Row) error {
	if !im.cross && !e.changesDup {
		deferred, err := e.sess.deferredClaim(ctx, t, e.m, group, ik, func() string {
			return e.m.dupMessage(ctx, im.def.Name, im.ords, row)
		})
		if deferred || err != nil {
			return err
		}
	}
	groups, err := e.checkGroups(ctx, group, im.cross)
	if err != nil {
		return err
	}
	res, err := e.sess.lockedReads(ctx, t, groups, ik, lock.Exclusive)
	if err != nil {
		return err
	}
	// The row's own group first: a duplicate there is the one to report.
	sort.SliceStable(res, func(i, j int) bool { return res[i].group == group && res[j].group != group })
	for _, r := range res {
		h, pk, taken := r.group, r.data, r.found
		for taken {
			existing, found, err := e.rowAt(ctx, t, h, pk, e.changesDup)
			if err != nil {
				return err
			}
			cur, still := pk, taken
			if e.changesDup {
				if cur, still, err = e.sess.peek(ctx, t, h, ik); err != nil {
					return err
				}
			}
			if still && string(cur) == string(pk) {
				if !found {
					return fmt.Errorf("sqlfront: index entry of %s points to a missing row", e.m.def.Name)
				}
				if e.m.local() {
					t.rowGroups[string(append(e.m.rowPrefix(), pk...))] = h
				}
				return e.dupErr(ctx, im.def.Name, im.ords, row, false, existing)
			}
			pk, taken = cur, still
		}
	}
	t.uniqueMsg[gkey{group, string(ik)}] = e.m.dupMessage(ctx, im.def.Name, im.ords, row)
	return nil
}

// releaseUnique locks a unique index entry the transaction is about to
// delete in group's part. Until the transaction ends, an insert of the
// value it held waits here: it then finds the value free if the delete
// commits, and taken if it rolls back, as with InnoDB's lock on a
// delete-marked record. Without the lock, the insert would read the
// committed entry and judge by the row it points to, whatever became of
// that row.
func (e *editor) releaseUnique(ctx *sql.Context, t *txn, group uint64, ik []byte) error {
	_, _, err := e.sess.lockedRead(ctx, t, group, ik, lock.Exclusive)
	return err
}

// rowAt reads the row a unique index entry of group's part points to:
// with an exclusive lock as a current read, or else its newest version
// without a lock.
func (e *editor) rowAt(ctx *sql.Context, t *txn, group uint64, pk []byte, locked bool) (sql.Row, bool, error) {
	key := append(e.m.rowPrefix(), pk...)
	var (
		data []byte
		ok   bool
		err  error
	)
	if locked {
		data, ok, err = e.sess.lockedRead(ctx, t, group, key, lock.Exclusive)
	} else {
		data, ok, err = e.sess.peek(ctx, t, group, key)
	}
	if err != nil || !ok {
		return nil, false, err
	}
	row, err := decodeRow(data, len(e.m.schema))
	return row, err == nil, err
}

// rowKeyOf finds the stored key of a row the engine hands back, and the
// group it lives in. Keyed tables derive the key; keyless ones search for
// an equal row not yet claimed by this statement.
func (e *editor) rowKeyOf(ctx *sql.Context, t *txn, row sql.Row) (key, pk []byte, group uint64, err error) {
	m := e.m
	if !m.keyless() {
		pk, err := m.pkSuffix(row)
		if err != nil {
			return nil, nil, 0, err
		}
		key := append(m.rowPrefix(), pk...)
		group, err := e.rowGroup(ctx, t, key)
		return key, pk, group, err
	}
	want, err := encodeRow(nil, row)
	if err != nil {
		return nil, nil, 0, err
	}
	st := e.sess.stmt(ctx)
	if st.claimed == nil {
		st.claimed = map[string]bool{}
	}
	rp := m.rowPrefix()
	it, err := e.p.scanAll(ctx, t, m, rp, keys.PrefixEnd(rp))
	if err != nil {
		return nil, nil, 0, err
	}
	defer it.close()
	for {
		k, v, _, g, ok := it.next()
		if !ok {
			if err := it.err(); err != nil {
				return nil, nil, 0, storeErr(err)
			}
			return nil, nil, 0, sql.ErrDeleteRowNotFound.New()
		}
		if st.claimed[string(k)] || string(v) != string(want) {
			continue
		}
		st.claimed[string(k)] = true
		k = append([]byte(nil), k...)
		return k, k[len(rp):], g, nil
	}
}

// rowGroup is the group a row of the table lives in: for a local table,
// where the transaction read it under a lock or wrote it, else where it
// is found, this site's group first; a row found nowhere is looked for
// no further (its change then changes nothing).
func (e *editor) rowGroup(ctx *sql.Context, t *txn, key []byte) (uint64, error) {
	m := e.m
	if !m.local() {
		return m.group(), nil
	}
	if g, ok := t.rowGroups[string(key)]; ok {
		return g, nil
	}
	if it, ok := t.getAny(string(key)); ok {
		return it.group, nil
	}
	groups, err := e.p.groupsOf(ctx, m)
	if err != nil {
		return 0, storeErr(err)
	}
	r, err := e.sess.findKey(ctx, t, groups, key)
	if err != nil {
		return 0, err
	}
	if r.found {
		t.rowGroups[string(key)] = r.group
		return r.group, nil
	}
	return e.p.cfg.Homes.LocalGroup(), nil
}

// home is the group a row of a local table is homed in
// (docs/PLACEMENT.md): by its locality value, or with its parent row, or
// fallback's when neither decides (no locality key, a NULL, no parent
// row). Inserts pass this site's group as fallback; updates the row's.
func (e *editor) home(ctx *sql.Context, t *txn, row sql.Row, fallback uint64) (uint64, error) {
	m := e.m
	switch {
	case m.localityOrd >= 0:
		g, err := e.p.cfg.Homes.Home(ctx, localityValue(ctx, m.schema[m.localityOrd].Type, row[m.localityOrd]), fallback)
		return g, storeErr(err)
	case m.viaOrd >= 0 && row[m.viaOrd] != nil:
		r, err := e.parentRow(ctx, t, row[m.viaOrd])
		if err != nil || !r.found {
			return fallback, err
		}
		return r.group, nil
	}
	return fallback, nil
}

// parentRow finds the parent of a child row by its via value: the row of
// the parent table whose column equals it, found through the parent's
// primary key or an index that leads with the column, this site's group
// first (the transaction's own writes included). A parent table that is
// gone, not local, or without such a key has no row to follow.
func (e *editor) parentRow(ctx *sql.Context, t *txn, via interface{}) (findResult, error) {
	ref := e.m.def.Local.Parent
	pm := e.p.table(e.m.db, ref.Table)
	if pm == nil || !pm.local() {
		return findResult{}, nil
	}
	col := pm.schema.IndexOfColName(ref.Column)
	if col < 0 {
		return findResult{}, nil
	}
	typ := pm.schema[col].Type
	cv, inRange, err := typ.Convert(ctx, via)
	if err != nil || inRange != sql.InRange {
		return findResult{}, nil // no parent can hold the value
	}
	field, err := appendKeyValue(nil, typ, cv, 0)
	if err != nil {
		return findResult{}, err
	}
	groups, err := e.p.groupsOf(ctx, pm)
	if err != nil {
		return findResult{}, storeErr(err)
	}
	if len(pm.pkOrds) == 1 && pm.pkOrds[0] == col {
		return e.sess.findKey(ctx, t, groups, append(pm.rowPrefix(), field...))
	}
	var best *indexMeta
	for _, im := range pm.indexes {
		if im.ords[0] == col && im.prefix[0] == 0 && (best == nil || im.def.Unique && !best.def.Unique) {
			best = im
		}
	}
	switch {
	case best != nil:
		return e.sess.findPrefix(ctx, t, groups, append(keys.IndexPrefix(pm.def.ID, best.def.ID), field...))
	case len(pm.pkOrds) > 0 && pm.pkOrds[0] == col:
		return e.sess.findPrefix(ctx, t, groups, append(pm.rowPrefix(), field...))
	}
	return findResult{}, nil
}

// Delete implements sql.RowDeleter.
func (e *editor) Delete(ctx *sql.Context, row sql.Row) error {
	t, err := e.txn(ctx)
	if err != nil {
		return err
	}
	rowKey, pk, group, err := e.rowKeyOf(ctx, t, row)
	if err != nil {
		return err
	}
	if err := e.enter(ctx, t, group); err != nil {
		return err
	}
	_, buffered := t.get(group, string(rowKey))
	data, exists, err := e.sess.lockedRead(ctx, t, group, rowKey, lock.Exclusive)
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
	if err := e.sess.beforeWrite(ctx, t, group); err != nil {
		return err
	}
	if err := t.write(e.p, group, string(rowKey), nil, true); err != nil {
		return err
	}
	for _, im := range e.m.indexes {
		ik, unique, err := e.m.indexKey(im, stored, pk)
		if err != nil {
			return err
		}
		if unique {
			if err := e.releaseUnique(ctx, t, group, ik); err != nil {
				return err
			}
		}
		if err := t.write(e.p, group, string(ik), nil, true); err != nil {
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

// Update implements sql.RowUpdater. A row of a local table stays in its
// group: an update whose new locality value (or parent) homes the row
// elsewhere is refused, until rows can move.
func (e *editor) Update(ctx *sql.Context, old, new sql.Row) error {
	t, err := e.txn(ctx)
	if err != nil {
		return err
	}
	m := e.m
	oldKey, oldPK, group, err := e.rowKeyOf(ctx, t, old)
	if err != nil {
		return err
	}
	if m.local() {
		to, err := e.newHome(ctx, t, old, new, group)
		if err != nil {
			return err
		}
		if to != group {
			return errMovesRow(m, group, to)
		}
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
			return e.insertIn(ctx, t, group, new)
		}
	}
	if err := e.enter(ctx, t, group); err != nil {
		return err
	}
	_, buffered := t.get(group, string(oldKey))
	data, exists, err := e.sess.lockedRead(ctx, t, group, oldKey, lock.Exclusive)
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
			if err := e.releaseUnique(ctx, t, group, ok); err != nil {
				return err
			}
		}
		if unique {
			if err := e.claimUnique(ctx, t, group, im, nk, new); err != nil {
				return err
			}
		}
		changes = append(changes, change{del: ok, put: nk})
	}
	val, err := encodeRow(nil, new)
	if err != nil {
		return err
	}
	if err := e.sess.beforeWrite(ctx, t, group); err != nil {
		return err
	}
	if err := t.write(e.p, group, string(oldKey), val, false); err != nil {
		return err
	}
	for _, c := range changes {
		if err := t.write(e.p, group, string(c.del), nil, true); err != nil {
			return err
		}
		if err := t.write(e.p, group, string(c.put), oldPK, false); err != nil {
			return err
		}
	}
	return e.p.noteAutoInc(ctx, m, new)
}

// newHome is the group a row of a local table living in group is homed
// in after an update: group, unless the update changed its locality
// value or via column; then the new value's home, a value nobody knows
// yet staying (and registered) in group.
func (e *editor) newHome(ctx *sql.Context, t *txn, old, new sql.Row, group uint64) (uint64, error) {
	m := e.m
	ord := m.localityOrd
	if ord < 0 {
		ord = m.viaOrd
	}
	if ord < 0 || sameValue(ctx, m.schema[ord].Type, old[ord], new[ord]) {
		return group, nil
	}
	return e.home(ctx, t, new, group)
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
