package sqlfront

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/analyzer/analyzererrors"
	"github.com/dolthub/go-mysql-server/sql/types"

	"github.com/fogdb/fogdb/kv/keys"
)

// Database is one SQL database. It holds no state of its own: every call
// reads the provider's current catalog, so a Database value never goes stale.
type Database struct {
	p    *Provider
	name string
}

var (
	_ sql.Database                = (*Database)(nil)
	_ sql.TableCreator            = (*Database)(nil)
	_ sql.TableDropper            = (*Database)(nil)
	_ sql.TableRenamer            = (*Database)(nil)
	_ sql.CollatedDatabase        = (*Database)(nil)
	_ sql.TriggerDatabase         = (*Database)(nil)
	_ sql.StoredProcedureDatabase = (*Database)(nil)
	_ sql.ViewDatabase            = (*Database)(nil)
	_ sql.SchemaValidator         = (*Database)(nil)
)

// Name implements sql.Nameable.
func (d *Database) Name() string { return d.name }

func (d *Database) state() *dbState { return d.p.db(d.name) }

// GetTableInsensitive implements sql.Database.
func (d *Database) GetTableInsensitive(ctx *sql.Context, name string) (sql.Table, bool, error) {
	m := d.p.table(d.name, name)
	if m == nil {
		again, err := d.p.lookupMissed(ctx)
		if err != nil || !again {
			return nil, false, err
		}
		if m = d.p.table(d.name, name); m == nil {
			return nil, false, nil
		}
	}
	return newTable(d.p, m), true, nil
}

// GetTableNames implements sql.Database.
func (d *Database) GetTableNames(*sql.Context) ([]string, error) {
	st := d.state()
	if st == nil {
		return nil, nil
	}
	names := make([]string, 0, len(st.tables))
	for _, m := range st.tables {
		names = append(names, m.def.Name)
	}
	sort.Strings(names)
	return names, nil
}

// CreateTable implements sql.TableCreator.
func (d *Database) CreateTable(ctx *sql.Context, name string, sch sql.PrimaryKeySchema, collation sql.CollationID, comment string) error {
	if err := checkTableName(name); err != nil {
		return err
	}
	if err := checkColumnNames(sch.Schema); err != nil {
		return err
	}
	group := CatalogGroup
	var local *localDef
	if d.p.cfg.PlaceTable != nil {
		pl, err := d.p.cfg.PlaceTable(ctx, d.name, name)
		if err != nil {
			return storeErr(err)
		}
		switch {
		case pl.Local:
			if d.p.cfg.Homes == nil {
				return fmt.Errorf("sqlfront: %s.%s is placed local, but this node homes no rows (no Homes)", d.name, name)
			}
			local = &localDef{Locality: strings.ToLower(pl.Locality), SiteUnique: pl.SiteUnique}
			if pl.Parent != nil {
				local.Parent = &ParentRef{Table: strings.ToLower(pl.Parent.Table), Column: strings.ToLower(pl.Parent.Column), Via: strings.ToLower(pl.Parent.Via)}
			}
			if err := checkLocalDef(local, sch.Schema, d.name+"."+name); err != nil {
				return err
			}
			// A local table is created only where every site's group
			// can be told of it.
			for _, g := range d.p.cfg.Homes.AllGroups(ctx) {
				if _, err := d.p.part(g); err != nil {
					return storeErr(err)
				}
			}
		case pl.Group != 0:
			group = pl.Group
		}
		// A table is created only in a group this node can write.
		if _, err := d.p.part(group); err != nil {
			return storeErr(err)
		}
	}
	return d.p.runDDL(ctx, func(b *ddlBatch) error {
		if d.p.table(d.name, name) != nil {
			return sql.ErrTableAlreadyExists.New(name)
		}
		id, err := b.newTableID()
		if err != nil {
			return err
		}
		if collation == sql.Collation_Unspecified {
			collation = d.GetCollation(ctx)
		}
		def := defFromSchema(id, name, sch, collation, comment)
		if group != CatalogGroup {
			def.Group = group
		}
		def.Local = local
		m, err := newTableMeta(d.name, def, 0)
		if err != nil {
			return err
		}
		if err := checkKeyLengths(m); err != nil {
			return err
		}
		b.expect(keys.CatalogKey(catTable, lower(d.name), lower(name)), 0)
		if s := sessionOf(ctx); s != nil {
			s.stmtState.created = append(s.stmtState.created, createdTable{db: d.name, name: name, id: id})
		}
		return b.putTable(m)
	})
}

// DropTable implements sql.TableDropper: the definition goes at once; the
// rows are removed in the background (cleanup.go), so a DROP is instant
// whatever the table's size.
func (d *Database) DropTable(ctx *sql.Context, name string) error {
	if s := sessionOf(ctx); s != nil {
		m := d.p.table(d.name, name)
		if m == nil {
			return sql.ErrTableNotFound.New(name)
		}
		unlock, err := s.ddlLock(ctx, m)
		if err != nil {
			return err
		}
		defer unlock()
	}
	return d.p.dropTableID(ctx, d.name, name, 0)
}

// dropTableID drops db.name, if it still has table ID id (any ID when 0).
func (p *Provider) dropTableID(ctx *sql.Context, db, name string, id uint64) error {
	return p.runDDL(ctx, func(b *ddlBatch) error {
		m := p.table(db, name)
		if m == nil || (id != 0 && m.def.ID != id) {
			return sql.ErrTableNotFound.New(name)
		}
		if err := b.orphan(m.def.ID, 0, m, m.db+"."+m.def.Name); err != nil {
			return err
		}
		key := keys.CatalogKey(catTable, lower(db), lower(m.def.Name))
		b.expect(key, m.version)
		b.del(key)
		b.dbs[strings.ToLower(db)] = true
		p.forgetCounters(m.def.ID)
		return nil
	})
}

// RenameTable implements sql.TableRenamer. Rows are keyed by table ID, not
// name, so a rename rewrites only the catalog.
func (d *Database) RenameTable(ctx *sql.Context, oldName, newName string) error {
	if err := checkTableName(newName); err != nil {
		return err
	}
	if s := sessionOf(ctx); s != nil {
		locks := []mdlKey{
			{CatalogGroup, keys.CatalogKey(catTable, lower(d.name), lower(oldName))},
			{CatalogGroup, keys.CatalogKey(catTable, lower(d.name), lower(newName))},
		}
		if m := d.p.table(d.name, oldName); m != nil && m.placed() {
			// Its writers lock it by name in its part (parts).
			groups, err := d.p.groupsOf(ctx, m)
			if err != nil {
				return storeErr(err)
			}
			for _, g := range groups {
				locks = append(locks,
					mdlKey{g, keys.CatalogKey(catTable, lower(d.name), lower(oldName))},
					mdlKey{g, keys.CatalogKey(catTable, lower(d.name), lower(newName))})
			}
		}
		unlock, err := s.ddlLockKeys(ctx, locks...)
		if err != nil {
			return err
		}
		defer unlock()
	}
	return d.p.runDDL(ctx, func(b *ddlBatch) error {
		m := d.p.table(d.name, oldName)
		if m == nil {
			return sql.ErrTableNotFound.New(oldName)
		}
		if !strings.EqualFold(oldName, newName) && d.p.table(d.name, newName) != nil {
			return sql.ErrTableAlreadyExists.New(newName)
		}
		oldKey := keys.CatalogKey(catTable, lower(d.name), lower(m.def.Name))
		b.expect(oldKey, m.version)
		b.del(oldKey)
		def := m.def
		def.Name = newName
		for i := range def.FKs {
			def.FKs[i].Table = newName
		}
		nm, err := newTableMeta(d.name, def, 0)
		if err != nil {
			return err
		}
		return b.putTable(nm)
	})
}

// GetCollation implements sql.CollatedDatabase.
func (d *Database) GetCollation(*sql.Context) sql.CollationID {
	if st := d.state(); st != nil && st.def.Collation != sql.Collation_Unspecified {
		return st.def.Collation
	}
	return sql.Collation_Default
}

// SetCollation implements sql.CollatedDatabase.
func (d *Database) SetCollation(ctx *sql.Context, collation sql.CollationID) error {
	return d.p.runDDL(ctx, func(b *ddlBatch) error {
		st := d.state()
		if st == nil {
			return sql.ErrDatabaseNotFound.New(d.name)
		}
		key := keys.CatalogKey(catDB, lower(d.name))
		b.expect(key, st.version)
		b.dbs[strings.ToLower(d.name)] = true
		def := st.def
		def.Collation = collation
		return b.putJSON(key, def)
	})
}

// GetTriggers implements sql.TriggerDatabase.
func (d *Database) GetTriggers(*sql.Context) ([]sql.TriggerDefinition, error) {
	st := d.state()
	if st == nil {
		return nil, nil
	}
	return append([]sql.TriggerDefinition(nil), st.triggers...), nil
}

// CreateTrigger implements sql.TriggerDatabase.
func (d *Database) CreateTrigger(ctx *sql.Context, def sql.TriggerDefinition) error {
	return d.p.runDDL(ctx, func(b *ddlBatch) error {
		if def.CreatedAt.IsZero() {
			def.CreatedAt = time.Now().UTC()
		}
		key := keys.CatalogKey(catTrigger, lower(d.name), lower(def.Name))
		b.expect(key, 0)
		b.dbs[strings.ToLower(d.name)] = true
		return b.putJSON(key, def)
	})
}

// DropTrigger implements sql.TriggerDatabase.
func (d *Database) DropTrigger(ctx *sql.Context, name string) error {
	return d.p.runDDL(ctx, func(b *ddlBatch) error {
		st := d.state()
		found := false
		if st != nil {
			for _, t := range st.triggers {
				found = found || strings.EqualFold(t.Name, name)
			}
		}
		if !found {
			return sql.ErrTriggerDoesNotExist.New(name)
		}
		b.del(keys.CatalogKey(catTrigger, lower(d.name), lower(name)))
		b.dbs[strings.ToLower(d.name)] = true
		return nil
	})
}

// GetStoredProcedure implements sql.StoredProcedureDatabase.
func (d *Database) GetStoredProcedure(_ *sql.Context, name string) (sql.StoredProcedureDetails, bool, error) {
	st := d.state()
	if st == nil {
		return sql.StoredProcedureDetails{}, false, nil
	}
	pd, ok := st.procs[strings.ToLower(name)]
	return pd, ok, nil
}

// GetStoredProcedures implements sql.StoredProcedureDatabase.
func (d *Database) GetStoredProcedures(*sql.Context) ([]sql.StoredProcedureDetails, error) {
	st := d.state()
	if st == nil {
		return nil, nil
	}
	out := make([]sql.StoredProcedureDetails, 0, len(st.procs))
	for _, pd := range st.procs {
		out = append(out, pd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SaveStoredProcedure implements sql.StoredProcedureDatabase.
func (d *Database) SaveStoredProcedure(ctx *sql.Context, spd sql.StoredProcedureDetails) error {
	return d.p.runDDL(ctx, func(b *ddlBatch) error {
		if st := d.state(); st != nil {
			if _, ok := st.procs[strings.ToLower(spd.Name)]; ok {
				return sql.ErrStoredProcedureAlreadyExists.New(spd.Name)
			}
		}
		b.dbs[strings.ToLower(d.name)] = true
		return b.putJSON(keys.CatalogKey(catProc, lower(d.name), lower(spd.Name)), spd)
	})
}

// DropStoredProcedure implements sql.StoredProcedureDatabase.
func (d *Database) DropStoredProcedure(ctx *sql.Context, name string) error {
	return d.p.runDDL(ctx, func(b *ddlBatch) error {
		st := d.state()
		if st == nil {
			return sql.ErrStoredProcedureDoesNotExist.New(name)
		}
		if _, ok := st.procs[strings.ToLower(name)]; !ok {
			return sql.ErrStoredProcedureDoesNotExist.New(name)
		}
		b.del(keys.CatalogKey(catProc, lower(d.name), lower(name)))
		b.dbs[strings.ToLower(d.name)] = true
		return nil
	})
}

// CreateView implements sql.ViewDatabase.
func (d *Database) CreateView(ctx *sql.Context, name string, selectStatement, createViewStmt string) error {
	if err := checkTableName(name); err != nil {
		return err
	}
	return d.p.runDDL(ctx, func(b *ddlBatch) error {
		if st := d.state(); st != nil {
			if _, ok := st.views[strings.ToLower(name)]; ok {
				return sql.ErrExistingView.New(d.name, name)
			}
		}
		b.dbs[strings.ToLower(d.name)] = true
		return b.putJSON(keys.CatalogKey(catView, lower(d.name), lower(name)), sql.ViewDefinition{
			Name:                name,
			TextDefinition:      selectStatement,
			CreateViewStatement: createViewStmt,
			SqlMode:             sql.LoadSqlMode(ctx).String(),
		})
	})
}

// DropView implements sql.ViewDatabase.
func (d *Database) DropView(ctx *sql.Context, name string) error {
	return d.p.runDDL(ctx, func(b *ddlBatch) error {
		st := d.state()
		if st == nil {
			return sql.ErrViewDoesNotExist.New(d.name, name)
		}
		if _, ok := st.views[strings.ToLower(name)]; !ok {
			return sql.ErrViewDoesNotExist.New(d.name, name)
		}
		b.del(keys.CatalogKey(catView, lower(d.name), lower(name)))
		b.dbs[strings.ToLower(d.name)] = true
		return nil
	})
}

// GetViewDefinition implements sql.ViewDatabase.
func (d *Database) GetViewDefinition(_ *sql.Context, name string) (sql.ViewDefinition, bool, error) {
	// The engine asks for a view of every name it resolves, tables
	// included, so a miss here is no reason to ask the catalog group (see
	// catalogOnMiss): a view created elsewhere an instant ago is found
	// once this node has applied it.
	st := d.state()
	if st == nil {
		return sql.ViewDefinition{}, false, nil
	}
	vd, ok := st.views[strings.ToLower(name)]
	return vd, ok, nil
}

// AllViews implements sql.ViewDatabase.
func (d *Database) AllViews(*sql.Context) ([]sql.ViewDefinition, error) {
	st := d.state()
	if st == nil {
		return nil, nil
	}
	out := make([]sql.ViewDefinition, 0, len(st.views))
	for _, v := range st.views {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ValidateSchema implements sql.SchemaValidator with InnoDB's row size
// limit: the declared maximum sizes of a row's columns, off-page types
// counted by their in-row pointer, may not exceed 65535 bytes.
func (d *Database) ValidateSchema(sch sql.Schema) error {
	var n int64
	for _, c := range sch {
		n += maxColumnBytes(c.Type)
	}
	if n > types.MaxRowLength {
		return analyzererrors.ErrInvalidRowLength.New(types.MaxRowLength, n)
	}
	return nil
}

func maxColumnBytes(t sql.Type) int64 {
	switch x := t.(type) {
	case sql.StringType:
		if types.IsTextBlob(x) {
			return 12
		}
		if x.MaxByteLength() < 256 {
			return x.MaxByteLength() + 1
		}
		return x.MaxByteLength() + 2
	case sql.DecimalType:
		return int64(x.Precision())/2 + 1
	case sql.EnumType:
		return 2
	case sql.SetType:
		return 8
	case sql.NumberType, sql.DatetimeType, sql.YearType, types.BitType:
		return 8
	}
	return 12
}
