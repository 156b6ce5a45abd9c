package sqlfront

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/expression"
	"github.com/dolthub/go-mysql-server/sql/planbuilder"
	"github.com/dolthub/go-mysql-server/sql/types"

	"github.com/fogdb/fogdb/kv/keys"
)

// primaryIndexID is the index ID of a table's rows: the row of primary key
// (or hidden row ID) pk lives at keys.IndexPrefix(tableID, primaryIndexID)+pk.
// Secondary indexes get IDs from 2 up, never reused within a table ID.
const primaryIndexID = 1

// tableDef is the stored (JSON) definition of a table in the catalog. Types,
// defaults and expressions are kept in their SQL spelling and re-parsed on
// load, so the catalog never depends on the engine's Go structures.
type tableDef struct {
	ID          uint64                     `json:"id"`
	Name        string                     `json:"name"`
	Columns     []colDef                   `json:"columns"`
	PK          []string                   `json:"pk,omitempty"` // primary key columns in key order
	Indexes     []indexDef                 `json:"indexes,omitempty"`
	FKs         []sql.ForeignKeyConstraint `json:"fks,omitempty"`
	Checks      []sql.CheckDefinition      `json:"checks,omitempty"`
	Collation   sql.CollationID            `json:"collation"`
	Comment     string                     `json:"comment,omitempty"`
	AutoInc     uint64                     `json:"autoinc,omitempty"` // floor for the next AUTO_INCREMENT value
	NextIndexID uint64                     `json:"next_index_id"`
	// Group holds the table's rows and index entries; 0 (what a
	// definition stored before placement says) is CatalogGroup. Unused
	// by a local table.
	Group uint64 `json:"group,omitempty"`
	// Local, when set, homes each row in its home site's group.
	Local *localDef `json:"local,omitempty"`
	// RefEpoch counts the foreign keys added to or dropped from other
	// tables that reference this one: each changes this definition's
	// version, so a statement on this table planned before (with the old
	// set of referencing keys to enforce) fails with 1412 at its commit
	// or definition marker instead of enforcing the old set.
	RefEpoch uint64 `json:"ref_epoch,omitempty"`
}

type colDef struct {
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	Nullable  bool    `json:"nullable,omitempty"`
	AutoInc   bool    `json:"autoinc,omitempty"`
	Default   *string `json:"default,omitempty"`
	Generated *string `json:"generated,omitempty"`
	OnUpdate  *string `json:"on_update,omitempty"`
	Virtual   bool    `json:"virtual,omitempty"`
	Comment   string  `json:"comment,omitempty"`
	Extra     string  `json:"extra,omitempty"`
}

type indexDef struct {
	ID      uint64   `json:"id"`
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Prefix  []uint16 `json:"prefix,omitempty"`
	Unique  bool     `json:"unique,omitempty"`
	Comment string   `json:"comment,omitempty"`
	// Implicit marks an index created only to serve a foreign key; as in
	// MySQL, a later index that can serve the key replaces it.
	Implicit bool `json:"implicit,omitempty"`
}

// tableMeta is a table definition ready for use: the parsed schema and the
// column ordinals of every index. It is immutable; DDL builds a new one.
type tableMeta struct {
	def     tableDef
	db      string // database name as created
	version uint64 // kv version of the catalog entry, a precondition of every commit writing the table
	schema  sql.Schema
	pkOrds  []int
	indexes []*indexMeta // secondary indexes
	autoCol int          // ordinal of the AUTO_INCREMENT column, -1 if none
	// Local tables: the ordinals of the locality and via columns (-1 if
	// none), and whether the primary key is checked in every group.
	localityOrd, viaOrd int
	pkCross             bool
}

type indexMeta struct {
	def    indexDef
	ords   []int
	prefix []uint16
	// cross: a unique index of a local table whose values are checked in
	// every group (tableMeta.crossKeys).
	cross bool
}

func (m *tableMeta) keyless() bool { return len(m.pkOrds) == 0 }

// group is the group holding the rows of a table that is not local.
func (m *tableMeta) group() uint64 {
	if m.def.Group == 0 {
		return CatalogGroup
	}
	return m.def.Group
}

// local reports whether each row lives in its home site's group.
func (m *tableMeta) local() bool { return m.def.Local != nil }

// placed reports whether the table's rows live outside the catalog group.
func (m *tableMeta) placed() bool { return m.local() || m.group() != CatalogGroup }

// crossKeys decides which unique keys of a local table are checked in
// every group on insert: all but those declared site-unique, those that
// hold the locality key (rows with equal values share a home; for a child
// table its via column), and those that hold the AUTO_INCREMENT column,
// whose values a sequence hands out once across sites. Hidden row IDs
// likewise.
func (m *tableMeta) crossKeys() {
	if !m.local() {
		return
	}
	exempt := func(name string, ords []int) bool {
		cols := make([]string, len(ords))
		for i, o := range ords {
			cols[i] = m.schema[o].Name
			if o == m.localityOrd || o == m.viaOrd || o == m.autoCol {
				return true
			}
		}
		return siteUniqueListed(m.def.Local.SiteUnique, name, cols)
	}
	m.pkCross = !m.keyless() && !exempt("primary", m.pkOrds)
	for _, im := range m.indexes {
		im.cross = im.def.Unique && !exempt(im.def.Name, im.ords)
	}
}

func (m *tableMeta) rowPrefix() []byte { return keys.IndexPrefix(m.def.ID, primaryIndexID) }

func optString(s string, ok bool) *string {
	if !ok {
		return nil
	}
	return &s
}

// defFromSchema builds a stored definition from an engine schema.
func defFromSchema(id uint64, name string, sch sql.PrimaryKeySchema, coll sql.CollationID, comment string) tableDef {
	def := tableDef{ID: id, Name: name, Collation: coll, Comment: comment, NextIndexID: primaryIndexID + 1}
	for _, c := range sch.Schema {
		def.Columns = append(def.Columns, colDefFromColumn(c))
	}
	for _, ord := range sch.PkOrdinals {
		def.PK = append(def.PK, sch.Schema[ord].Name)
		// Primary key columns are NOT NULL, whatever the definition says
		// (MySQL silently makes them so).
		def.Columns[ord].Nullable = false
	}
	return def
}

func colDefFromColumn(c *sql.Column) colDef {
	cd := colDef{
		Name:     c.Name,
		Type:     c.Type.String(),
		Nullable: c.Nullable,
		AutoInc:  c.AutoIncrement,
		Virtual:  c.Virtual,
		Comment:  c.Comment,
		Extra:    c.Extra,
	}
	cd.Default = defaultString(c.Default)
	if cd.Default != nil && c.Default.Literal {
		// An ENUM or SET literal resolves to its index or bits; store the
		// value's text, as MySQL prints it.
		switch c.Type.(type) {
		case sql.EnumType, sql.SetType:
			ctx := sql.NewEmptyContext()
			if v, err := c.Default.Eval(ctx, nil); err == nil && v != nil {
				if sv, err := c.Type.SQL(ctx, nil, v); err == nil {
					q := "'" + strings.ReplaceAll(sv.ToString(), "'", "''") + "'"
					cd.Default = &q
				}
			}
		}
	}
	cd.Generated = defaultString(c.Generated)
	cd.OnUpdate = defaultString(c.OnUpdate)
	return cd
}

// defaultString is the stored spelling of a default or generated
// expression. A definition loaded from the catalog and not yet resolved by
// the engine keeps its stored text as is: printing it through the engine
// would wrap a literal in parentheses, changing what SHOW CREATE TABLE says.
func defaultString(d *sql.ColumnDefaultValue) *string {
	if d == nil {
		return nil
	}
	if u, ok := d.Expr.(*sql.UnresolvedColumnDefault); ok {
		return optString(u.ExprString, true)
	}
	if u, ok := d.Expr.(sql.UnresolvedColumnDefault); ok {
		return optString(u.ExprString, true)
	}
	return optString(d.String(), true)
}

// newTableMeta parses a stored definition.
func newTableMeta(db string, def tableDef, version uint64) (*tableMeta, error) {
	m := &tableMeta{def: def, db: db, version: version, autoCol: -1, localityOrd: -1, viaOrd: -1}
	pk := make(map[string]bool, len(def.PK))
	for _, n := range def.PK {
		pk[strings.ToLower(n)] = true
	}
	for i, cd := range def.Columns {
		typ, err := planbuilder.ParseColumnTypeString(cd.Type)
		if err != nil {
			return nil, fmt.Errorf("sqlfront: table %s column %s: type %q: %w", def.Name, cd.Name, cd.Type, err)
		}
		// A type's SQL spelling leaves out the default collation, and the
		// parser reads that back as "unspecified", which the engine treats
		// as no collation at all (LIKE then never matches).
		if tc, ok := typ.(sql.TypeWithCollation); ok && tc.Collation() == sql.Collation_Unspecified {
			if typ, err = tc.WithNewCollation(sql.Collation_Default); err != nil {
				return nil, err
			}
		}
		col := &sql.Column{
			Name:           cd.Name,
			Type:           typ,
			Nullable:       cd.Nullable,
			AutoIncrement:  cd.AutoInc,
			Source:         def.Name,
			DatabaseSource: db,
			PrimaryKey:     pk[strings.ToLower(cd.Name)],
			Comment:        cd.Comment,
			Extra:          cd.Extra,
			Virtual:        cd.Virtual,
		}
		if cd.Default != nil {
			col.Default = sql.NewUnresolvedColumnDefaultValue(*cd.Default)
			if d := enumDefault(typ, *cd.Default); d != nil {
				col.Default = d
			}
		}
		if cd.Generated != nil {
			col.Generated = sql.NewUnresolvedColumnDefaultValue(*cd.Generated)
		}
		if cd.OnUpdate != nil {
			col.OnUpdate = sql.NewUnresolvedColumnDefaultValue(*cd.OnUpdate)
		}
		if cd.AutoInc {
			m.autoCol = i
		}
		m.schema = append(m.schema, col)
	}
	for _, n := range def.PK {
		ord := m.schema.IndexOfColName(n)
		if ord < 0 {
			return nil, fmt.Errorf("sqlfront: table %s: primary key column %s missing", def.Name, n)
		}
		m.pkOrds = append(m.pkOrds, ord)
	}
	for _, id := range def.Indexes {
		im := &indexMeta{def: id, prefix: make([]uint16, len(id.Columns))}
		for j, c := range id.Columns {
			ord := m.schema.IndexOfColName(c)
			if ord < 0 {
				return nil, fmt.Errorf("sqlfront: table %s index %s: column %s missing", def.Name, id.Name, c)
			}
			im.ords = append(im.ords, ord)
			if j < len(id.Prefix) {
				im.prefix[j] = id.Prefix[j]
			}
		}
		m.indexes = append(m.indexes, im)
	}
	if ld := def.Local; ld != nil {
		if ld.Locality != "" {
			m.localityOrd = m.schema.IndexOfColName(ld.Locality)
		}
		if v := viaOf(ld); v != "" {
			m.viaOrd = m.schema.IndexOfColName(v)
		}
		m.crossKeys()
	}
	return m, nil
}

func (m *tableMeta) pkSchema() sql.PrimaryKeySchema {
	return sql.NewPrimaryKeySchema(m.schema, m.pkOrds...)
}

func (m *tableMeta) marshal() ([]byte, error) { return json.Marshal(m.def) }

func (m *tableMeta) findIndex(name string) *indexMeta {
	for _, im := range m.indexes {
		if strings.EqualFold(im.def.Name, name) {
			return im
		}
	}
	return nil
}

// enumDefault resolves a quoted literal default of an ENUM or SET column
// itself. Left to the engine, the literal is resolved to the member's
// index, and SHOW CREATE TABLE then prints DEFAULT '1' instead of the name.
func enumDefault(typ sql.Type, text string) *sql.ColumnDefaultValue {
	switch typ.(type) {
	case sql.EnumType, sql.SetType:
	default:
		return nil
	}
	if len(text) < 2 || text[0] != '\'' || text[len(text)-1] != '\'' {
		return nil
	}
	v := strings.ReplaceAll(text[1:len(text)-1], "''", "'")
	// The text type keeps the member's name through SHOW CREATE TABLE
	// (which prints an ENUM-typed default by its index); inserts convert
	// the name to the column's type like any value.
	d, err := sql.NewColumnDefaultValue(expression.NewLiteral(v, types.LongText), types.LongText, true, false, false)
	if err != nil {
		return nil
	}
	return d
}
