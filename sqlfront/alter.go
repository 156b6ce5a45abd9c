package sqlfront

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// DDL on a table takes the table's metadata lock exclusively, after
// committing the session's open transaction as MySQL's implicit commit
// does; DML transactions hold it shared from their first write to the
// table until they end. So a schema change waits for the transactions
// writing the table, and they wait for it, as with MySQL's metadata locks.

func tableLockKey(m *tableMeta) []byte {
	return keys.CatalogKey(catTable, lower(m.db), lower(m.def.Name))
}

// implicitCommit commits the session's open transaction before DDL.
func (s *Session) implicitCommit(ctx *sql.Context) error {
	s.mu.Lock()
	t := s.txn
	if t == nil {
		s.mu.Unlock()
		return nil
	}
	s.txn = s.p.newTxn(false)
	s.mu.Unlock()
	defer t.release(s.p)
	return s.p.commit(ctx, t)
}

// ddlLock commits the open transaction and locks table m for a schema
// change. The returned function releases the lock.
func (s *Session) ddlLock(ctx *sql.Context, m *tableMeta) (func(), error) {
	locks, err := s.p.tableMDL(ctx, m)
	if err != nil {
		return nil, err
	}
	return s.ddlLockKeys(ctx, locks...)
}

// ddlLockKeys commits the open transaction and takes metadata locks
// exclusively: the catalog part's first, then each other group's, each
// in key order, so that two statements locking several tables never
// deadlock on each other.
func (s *Session) ddlLockKeys(ctx *sql.Context, locks ...mdlKey) (func(), error) {
	_, unlock, err := s.ddlLockOwner(ctx, locks...)
	return unlock, err
}

// ddlLockOwner is ddlLockKeys, also returning the lock owner for the
// statement's further locks (in the catalog part).
func (s *Session) ddlLockOwner(ctx *sql.Context, locks ...mdlKey) (lock.TxnID, func(), error) {
	if err := s.implicitCommit(ctx); err != nil {
		return 0, nil, err
	}
	sort.Slice(locks, func(i, j int) bool {
		if locks[i].group != locks[j].group {
			return locks[i].group < locks[j].group
		}
		return string(locks[i].key) < string(locks[j].key)
	})
	owner := s.ddlOwner()
	for _, k := range locks {
		if err := s.lockDDLKey(ctx, owner, k); err != nil {
			s.releaseDDL(owner)
			return 0, nil, err
		}
	}
	return owner.id, func() { s.releaseDDL(owner) }, nil
}

// ddlOwner starts a lock owner for one DDL statement. The session keeps
// it until the statement ends: the engine does not close a row sink whose
// statement failed, so a lock released only on the success path would be
// held until restart.
func (s *Session) ddlOwner() *ddlOwner {
	o := &ddlOwner{id: lock.TxnID(s.p.nextTxn.Add(1))}
	s.mu.Lock()
	s.ddlOwners = append(s.ddlOwners, o)
	s.mu.Unlock()
	return o
}

// lockDDLKey takes a metadata lock exclusively for a DDL owner.
func (s *Session) lockDDLKey(ctx *sql.Context, owner *ddlOwner, k mdlKey) error {
	pt, err := s.p.part(k.group)
	if err != nil {
		return storeErr(err)
	}
	if k.group != CatalogGroup {
		s.mu.Lock()
		owner.groups = append(owner.groups, k.group)
		s.mu.Unlock()
	}
	err = pt.Lock(ctx, owner.id, k.key, lock.Exclusive, s.lockWait(ctx))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lock.ErrTimeout):
		return errLockWaitTimeout
	case errors.Is(err, lock.ErrDeadlock), errors.Is(err, lock.ErrAborted):
		return errDeadlock
	}
	return storeErr(err)
}

// releaseDDL drops the locks of one DDL owner.
func (s *Session) releaseDDL(owner *ddlOwner) {
	s.mu.Lock()
	for i, o := range s.ddlOwners {
		if o == owner {
			s.ddlOwners = append(s.ddlOwners[:i], s.ddlOwners[i+1:]...)
			break
		}
	}
	groups := append([]uint64(nil), owner.groups...)
	s.mu.Unlock()
	s.p.releaseOwner(owner, groups)
	// A copy the statement left unfinished can be removed now.
	s.p.kickCleanup()
}

// endDDL drops every DDL lock the session still holds: a statement ended,
// whichever path it took.
func (s *Session) endDDL() {
	s.mu.Lock()
	owners := s.ddlOwners
	s.ddlOwners = nil
	groups := make([][]uint64, len(owners))
	for i, o := range owners {
		groups[i] = append([]uint64(nil), o.groups...)
	}
	s.mu.Unlock()
	for i, o := range owners {
		s.p.releaseOwner(o, groups[i])
	}
	if len(owners) > 0 {
		s.p.kickCleanup()
	}
}

func sessionOf(ctx *sql.Context) *Session {
	s, _ := ctx.Session.(*Session)
	return s
}

func copyDef(d tableDef) tableDef {
	data, err := json.Marshal(d)
	if err != nil {
		panic(err) // tableDef always marshals
	}
	var out tableDef
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}

// alterDef changes the stored definition of the table under its DDL lock.
// fn may also add rows to the batch (index builds).
func (t *Table) alterDef(ctx *sql.Context, fn func(def *tableDef, cur *tableMeta, b *ddlBatch) error) error {
	s := sessionOf(ctx)
	if s != nil {
		unlock, err := s.ddlLock(ctx, t.m)
		if err != nil {
			return err
		}
		defer unlock()
	}
	return t.alterDefLocked(ctx, fn)
}

// alterDefLocked is alterDef for a caller holding the table's DDL lock.
func (t *Table) alterDefLocked(ctx *sql.Context, fn func(def *tableDef, cur *tableMeta, b *ddlBatch) error) error {
	return t.p.runDDL(ctx, func(b *ddlBatch) error {
		cur := t.p.table(t.m.db, t.m.def.Name)
		if cur == nil {
			return sql.ErrTableNotFound.New(t.m.def.Name)
		}
		def := copyDef(cur.def)
		if err := fn(&def, cur, b); err != nil {
			return err
		}
		nm, err := newTableMeta(cur.db, def, 0)
		if err != nil {
			return err
		}
		b.expect(tableLockKey(cur), cur.version)
		if err := b.putTable(nm); err != nil {
			return err
		}
		t.m = nm
		return nil
	})
}

// GetDeclaredForeignKeys implements sql.ForeignKeyTable.
func (t *Table) GetDeclaredForeignKeys(*sql.Context) ([]sql.ForeignKeyConstraint, error) {
	fks := append([]sql.ForeignKeyConstraint(nil), t.m.def.FKs...)
	sort.Slice(fks, func(i, j int) bool { return fks[i].Name < fks[j].Name })
	return fks, nil
}

// GetReferencedForeignKeys implements sql.ForeignKeyTable.
func (t *Table) GetReferencedForeignKeys(*sql.Context) ([]sql.ForeignKeyConstraint, error) {
	var out []sql.ForeignKeyConstraint
	t.p.catMu.RLock()
	dbs := t.p.dbs
	t.p.catMu.RUnlock()
	for _, st := range dbs {
		for _, m := range st.tables {
			for _, fk := range m.def.FKs {
				if strings.EqualFold(fk.ParentDatabase, t.m.db) && strings.EqualFold(fk.ParentTable, t.m.def.Name) {
					out = append(out, fk)
				}
			}
		}
	}
	return out, nil
}

// AddForeignKey implements sql.ForeignKeyTable. Names are unique per
// database, as in MySQL.
func (t *Table) AddForeignKey(ctx *sql.Context, fk sql.ForeignKeyConstraint) error {
	if st := t.p.db(t.m.db); st != nil {
		for _, m := range st.tables {
			for _, other := range m.def.FKs {
				if strings.EqualFold(other.Name, fk.Name) {
					return sql.ErrForeignKeyDuplicateName.New(fk.Name)
				}
			}
		}
	}
	return t.alterDef(ctx, func(def *tableDef, cur *tableMeta, b *ddlBatch) error {
		def.FKs = append(def.FKs, fk)
		return t.p.bumpReferenced(b, cur, fk)
	})
}

// bumpReferenced changes the definition of fk's parent table in b (its
// RefEpoch), unless the key refers to its own table: the parent's
// statements must now enforce the key, and those planned without it must
// not commit.
func (p *Provider) bumpReferenced(b *ddlBatch, child *tableMeta, fk sql.ForeignKeyConstraint) error {
	parent := p.table(fk.ParentDatabase, fk.ParentTable)
	if parent == nil || parent.def.ID == child.def.ID {
		return nil
	}
	def := copyDef(parent.def)
	def.RefEpoch++
	nm, err := newTableMeta(parent.db, def, 0)
	if err != nil {
		return err
	}
	b.expect(tableLockKey(parent), parent.version)
	return b.putTable(nm)
}

// DropForeignKey implements sql.ForeignKeyTable.
func (t *Table) DropForeignKey(ctx *sql.Context, name string) error {
	return t.alterDef(ctx, func(def *tableDef, cur *tableMeta, b *ddlBatch) error {
		for i, fk := range def.FKs {
			if strings.EqualFold(fk.Name, name) {
				def.FKs = append(def.FKs[:i], def.FKs[i+1:]...)
				return t.p.bumpReferenced(b, cur, fk)
			}
		}
		return sql.ErrForeignKeyNotFound.New(name, t.m.def.Name)
	})
}

// UpdateForeignKey implements sql.ForeignKeyTable.
// The engine's RENAME TABLE repoints the referencing foreign keys before it
// renames the parent; a rename onto an existing table must fail here, or
// the keys would be left pointing at that other table.
func (t *Table) UpdateForeignKey(ctx *sql.Context, name string, fk sql.ForeignKeyConstraint) error {
	return t.alterDef(ctx, func(def *tableDef, _ *tableMeta, _ *ddlBatch) error {
		for i, old := range def.FKs {
			if strings.EqualFold(old.Name, name) {
				if !strings.EqualFold(old.ParentTable, fk.ParentTable) && t.p.table(fk.ParentDatabase, fk.ParentTable) != nil {
					return sql.ErrTableAlreadyExists.New(fk.ParentTable)
				}
				def.FKs[i] = fk
				return nil
			}
		}
		return sql.ErrForeignKeyNotFound.New(name, t.m.def.Name)
	})
}

// CreateIndexForForeignKey implements sql.ForeignKeyTable.
func (t *Table) CreateIndexForForeignKey(ctx *sql.Context, idx sql.IndexDef) error {
	return t.createIndex(ctx, idx, true)
}

// GetChecks implements sql.CheckTable.
func (t *Table) GetChecks(*sql.Context) ([]sql.CheckDefinition, error) {
	return append([]sql.CheckDefinition(nil), t.m.def.Checks...), nil
}

// CreateCheck implements sql.CheckAlterableTable.
func (t *Table) CreateCheck(ctx *sql.Context, check *sql.CheckDefinition) error {
	return t.alterDef(ctx, func(def *tableDef, _ *tableMeta, _ *ddlBatch) error {
		c := *check
		if c.Name == "" {
			// MySQL names an unnamed check <table>_chk_<n>.
			for n := 1; ; n++ {
				c.Name = fmt.Sprintf("%s_chk_%d", def.Name, n)
				if !hasCheck(def, c.Name) {
					break
				}
			}
		} else if hasCheck(def, c.Name) {
			return errDupCheck(c.Name)
		}
		def.Checks = append(def.Checks, c)
		return nil
	})
}

// DropCheck implements sql.CheckAlterableTable.
func (t *Table) DropCheck(ctx *sql.Context, name string) error {
	return t.alterDef(ctx, func(def *tableDef, _ *tableMeta, _ *ddlBatch) error {
		for i, c := range def.Checks {
			if strings.EqualFold(c.Name, name) {
				def.Checks = append(def.Checks[:i], def.Checks[i+1:]...)
				return nil
			}
		}
		return sql.ErrUnknownConstraint.New(name)
	})
}

// CreateIndex implements sql.IndexAlterableTable. Under the table's
// exclusive metadata lock, the index gets its ID in the catalog, its
// entries are written in bounded batches (invisible, as no definition names
// the index yet), with a uniqueness check against those already written,
// and then one small batch adds the index to the definition. A failed
// build leaves its entries to the background cleanup.
func (t *Table) CreateIndex(ctx *sql.Context, idx sql.IndexDef) error {
	if err := checkIndexName(idx.Name); err != nil {
		return err
	}
	return t.createIndex(ctx, idx, false)
}

func (t *Table) createIndex(ctx *sql.Context, idx sql.IndexDef, implicit bool) error {
	if idx.IsFullText() || idx.IsSpatial() || idx.IsVector() {
		return sql.ErrUnsupportedFeature.New("FULLTEXT, SPATIAL and VECTOR indexes")
	}
	if idx.IsPrimary() {
		return t.CreatePrimaryKey(ctx, idx.Columns)
	}
	owner := lock.TxnID(t.p.nextTxn.Add(1))
	unlock := func() { t.p.cat().ReleaseAll(owner) }
	if s := sessionOf(ctx); s != nil {
		locks, err := t.p.tableMDL(ctx, t.m)
		if err != nil {
			return err
		}
		o, u, err := s.ddlLockOwner(ctx, locks...)
		if err != nil {
			return err
		}
		owner, unlock = o, u
	}
	defer unlock()

	// Check the definition and take an index ID for good, so a failed
	// build's entries can never be mistaken for a later index's.
	var ixID uint64
	err := t.alterDefLocked(ctx, func(def *tableDef, cur *tableMeta, _ *ddlBatch) error {
		ixID = def.NextIndexID
		trial := copyDef(*def)
		if _, err := addIndexDef(&trial, cur, idx, ixID, implicit); err != nil {
			return err
		}
		def.NextIndexID++
		return nil
	})
	if err != nil {
		return err
	}
	cur := t.p.table(t.m.db, t.m.def.Name)
	if cur == nil {
		return sql.ErrTableNotFound.New(t.m.def.Name)
	}
	def := copyDef(cur.def)
	if _, err := addIndexDef(&def, cur, idx, ixID, implicit); err != nil {
		return err
	}
	nm, err := newTableMeta(cur.db, def, 0)
	if err != nil {
		return err
	}
	if err := checkKeyLengths(nm); err != nil {
		return err
	}
	f, err := t.p.newFiller(ctx, owner, def.ID, ixID, cur, cur.db+"."+cur.def.Name+" index "+idx.Name)
	if err != nil {
		return err
	}
	if err := buildIndexEntries(ctx, f, nm, nm.indexes[len(nm.indexes)-1]); err != nil {
		return err
	}
	if err := f.complete(ctx, nm); err != nil {
		return err
	}
	return t.alterDefLocked(ctx, func(def *tableDef, cur *tableMeta, b *ddlBatch) error {
		dropped, err := addIndexDef(def, cur, idx, ixID, implicit)
		if err != nil {
			return err
		}
		for _, d := range dropped {
			if err := b.orphan(def.ID, d.ID, cur, cur.db+"."+cur.def.Name+" index "+d.Name); err != nil {
				return err
			}
		}
		f.finish(b)
		return nil
	})
}

// addIndexDef adds index idx, with ID id, to def, returning the indexes
// it replaces. An index made only for a foreign key gives way to an
// explicit one that can serve the key (same name, or its columns lead the
// new index's), as in MySQL.
func addIndexDef(def *tableDef, cur *tableMeta, idx sql.IndexDef, id uint64, implicit bool) ([]indexDef, error) {
	name := idx.Name
	nd := indexDef{ID: id, Name: name, Unique: idx.IsUnique(), Comment: idx.Comment, Implicit: implicit}
	for _, c := range idx.Columns {
		ord := cur.schema.IndexOfColName(c.Name)
		if ord < 0 {
			return nil, sql.ErrKeyColumnDoesNotExist.New(c.Name)
		}
		nd.Columns = append(nd.Columns, cur.schema[ord].Name)
		nd.Prefix = append(nd.Prefix, uint16(c.Length))
	}
	var kept, dropped []indexDef
	for _, other := range def.Indexes {
		if !implicit && other.Implicit && (strings.EqualFold(other.Name, name) || columnsLead(other, nd)) {
			dropped = append(dropped, other)
			continue
		}
		if strings.EqualFold(other.Name, name) {
			return nil, sql.ErrDuplicateKey.New(name)
		}
		kept = append(kept, other)
	}
	def.Indexes = append(kept, nd)
	return dropped, nil
}

// buildIndexEntries writes the entries of index im for every committed
// row of the table through f, in the group of each row, failing with a
// duplicate-entry error as MySQL: a unique index of a local table checked
// across sites against the entries of every group.
func buildIndexEntries(ctx *sql.Context, f *filler, m *tableMeta, im *indexMeta) error {
	for _, g := range f.groups {
		if err := buildGroupEntries(ctx, f, g, m, im); err != nil {
			return err
		}
	}
	return nil
}

func buildGroupEntries(ctx *sql.Context, f *filler, g uint64, m *tableMeta, im *indexMeta) error {
	rp := m.rowPrefix()
	it := f.parts[g].part.NewIterator(ctx, rp, keys.PrefixEnd(rp), kv.MaxTimestamp, false)
	defer it.Close()
	for it.Next() {
		row, err := decodeRow(it.Value(), len(m.schema))
		if err != nil {
			return err
		}
		pk := append([]byte(nil), it.Key()[len(rp):]...)
		ik, unique, err := m.indexKey(im, row, pk)
		if err != nil {
			return err
		}
		if unique {
			dup, err := f.taken(ctx, g, ik, im.cross)
			if err != nil {
				return err
			}
			if dup {
				return sql.NewUniqueKeyErr(m.dupMessage(ctx, im.def.Name, im.ords, row), false, row)
			}
		}
		if err := f.put(ctx, g, ik, pk); err != nil {
			return err
		}
	}
	return storeErr(it.Err())
}

// DropIndex implements sql.IndexAlterableTable.
func (t *Table) DropIndex(ctx *sql.Context, name string) error {
	if strings.EqualFold(name, "PRIMARY") {
		return t.DropPrimaryKey(ctx)
	}
	return t.alterDef(ctx, func(def *tableDef, cur *tableMeta, b *ddlBatch) error {
		for i, id := range def.Indexes {
			if strings.EqualFold(id.Name, name) {
				def.Indexes = append(def.Indexes[:i], def.Indexes[i+1:]...)
				return b.orphan(def.ID, id.ID, cur, cur.db+"."+cur.def.Name+" index "+id.Name)
			}
		}
		return sql.ErrIndexNotFound.New(name)
	})
}

// RenameIndex implements sql.IndexAlterableTable.
func (t *Table) RenameIndex(ctx *sql.Context, from, to string) error {
	if err := checkIndexName(to); err != nil {
		return err
	}
	return t.alterDef(ctx, func(def *tableDef, _ *tableMeta, _ *ddlBatch) error {
		for i := range def.Indexes {
			if strings.EqualFold(def.Indexes[i].Name, from) {
				def.Indexes[i].Name = to
				return nil
			}
		}
		return sql.ErrIndexNotFound.New(from)
	})
}

// ShouldBuildIndex implements sql.IndexBuildingTable: CreateIndex already
// built the entries in the batch that created the index.
func (t *Table) ShouldBuildIndex(*sql.Context, sql.IndexDef) (bool, error) { return false, nil }

// BuildIndex implements sql.IndexBuildingTable. The engine calls it after
// CREATE UNIQUE INDEX; the index is complete by then, so the inserter
// checks that every row streamed to it has its entry.
func (t *Table) BuildIndex(ctx *sql.Context, idx sql.IndexDef) (sql.RowInserter, error) {
	m := t.p.table(t.m.db, t.m.def.Name)
	if m == nil {
		return nil, sql.ErrTableNotFound.New(t.m.def.Name)
	}
	im := m.findIndex(idx.Name)
	if im == nil {
		return nil, sql.ErrIndexNotFound.New(idx.Name)
	}
	return &indexChecker{p: t.p, m: m, im: im}, nil
}

type indexChecker struct {
	p  *Provider
	m  *tableMeta
	im *indexMeta
}

func (c *indexChecker) StatementBegin(*sql.Context)              {}
func (c *indexChecker) DiscardChanges(*sql.Context, error) error { return nil }
func (c *indexChecker) StatementComplete(*sql.Context) error     { return nil }
func (c *indexChecker) Close(*sql.Context) error                 { return nil }
func (c *indexChecker) Insert(ctx *sql.Context, row sql.Row) error {
	pk, err := c.m.pkSuffix(row)
	if err != nil || c.m.keyless() {
		return err
	}
	ik, _, err := c.m.indexKey(c.im, row, pk)
	if err != nil {
		return err
	}
	groups, err := c.p.groupsOf(ctx, c.m)
	if err != nil {
		return storeErr(err)
	}
	for _, g := range groups {
		pt, err := c.p.part(g)
		if err != nil {
			return storeErr(err)
		}
		v, err := pt.Get(ctx, ik, kv.MaxTimestamp)
		if err != nil {
			return storeErr(err)
		}
		if v.Exists {
			return nil
		}
	}
	return fmt.Errorf("sqlfront: index %s of %s lacks the entry of a row", c.im.def.Name, c.m.def.Name)
}

// ModifyStoredCollation implements sql.CollationAlterableTable (ALTER
// TABLE ... CONVERT TO CHARACTER SET): every character column takes the
// new collation, and the table is rebuilt, since index keys are collation
// weights.
func (t *Table) ModifyStoredCollation(ctx *sql.Context, collation sql.CollationID) error {
	cols := t.m.schema.Copy()
	for _, c := range cols {
		tc, ok := c.Type.(sql.TypeWithCollation)
		if !ok || tc.Collation() == sql.Collation_binary {
			continue
		}
		nt, err := tc.WithNewCollation(collation)
		if err != nil {
			return err
		}
		c.Type = nt
	}
	if err := t.rewriteWith(ctx, sql.NewPrimaryKeySchema(cols, t.m.pkOrds...), nil, nil, func(r sql.Row) (sql.Row, error) { return r, nil }); err != nil {
		return err
	}
	return t.ModifyDefaultCollation(ctx, collation)
}

// ModifyDefaultCollation implements sql.CollationAlterableTable. The
// engine calls it for ALTER TABLE ... CONVERT TO CHARACTER SET too, which
// must convert the columns as well: the statement text tells them apart.
func (t *Table) ModifyDefaultCollation(ctx *sql.Context, collation sql.CollationID) error {
	if q := lowerASCII(ctx.Query()); strings.Contains(q, "convert to") && !t.converting {
		t.converting = true
		defer func() { t.converting = false }()
		return t.ModifyStoredCollation(ctx, collation)
	}
	return t.alterDef(ctx, func(def *tableDef, _ *tableMeta, _ *ddlBatch) error {
		def.Collation = collation
		return nil
	})
}

// columnsLead reports whether index a's columns are the leading columns of
// index b, so b can do whatever a did for a foreign key.
func columnsLead(a, b indexDef) bool {
	if len(a.Columns) > len(b.Columns) {
		return false
	}
	for i, c := range a.Columns {
		if !strings.EqualFold(c, b.Columns[i]) || (i < len(b.Prefix) && b.Prefix[i] != 0) {
			return false
		}
	}
	return true
}

func hasCheck(def *tableDef, name string) bool {
	for _, c := range def.Checks {
		if strings.EqualFold(c.Name, name) {
			return true
		}
	}
	return false
}
