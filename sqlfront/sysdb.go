package sqlfront

import (
	"sort"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"
)

// SystemDBName is the read-only database that shows the cluster's
// topology: fogdb.sites, fogdb.nodes, fogdb.groups.
const SystemDBName = "fogdb"

// Topology is what the system database shows, gathered by the server when
// a statement reads it.
type Topology struct {
	Sites      []SiteRow
	Nodes      []NodeRow
	Groups     []GroupRow
	Placements []PlacementRow
}

// PlacementRow is a row of fogdb.placements: a table's effective
// placement, and the group its rows are in now.
type PlacementRow struct {
	DB, Table, Placement, Site, Locality, Parent, SiteUnique string
	StalenessMillis                                          int64
	Strict                                                   bool
	Group                                                    uint64
}

// SiteRow is a row of fogdb.sites.
type SiteRow struct {
	Site  string
	Group uint64
	Nodes int
}

// NodeRow is a row of fogdb.nodes.
type NodeRow struct {
	Node, Site, PeerAddr string
	NonVoter             bool
}

// GroupRow is a row of fogdb.groups: a group as this node sees it.
type GroupRow struct {
	Group uint64
	// Kind is "global" or "site".
	Kind, Site string
	// Hosted: this node holds a replica; Role, Leader, Term and the
	// indexes are then its view, and empty or zero otherwise.
	Hosted          bool
	Role, Leader    string
	Term            uint64
	Voters, Members int
	AppliedIndex    uint64
	// Version is what this node advertises (COMMANDS.SNAPSHOT) and
	// ActiveVersion the lowest over the members, "" until known: the
	// entry types a leader may propose during a rolling upgrade.
	Version, ActiveVersion string
}

type sysTable struct {
	name   string
	schema sql.Schema
	rows   func(t Topology) []sql.Row
}

func sysColumn(table, name string, typ sql.Type) *sql.Column {
	return &sql.Column{Name: name, Type: typ, Source: table, DatabaseSource: SystemDBName, Nullable: false}
}

var sysTables = []*sysTable{
	{
		name: "sites",
		schema: sql.Schema{
			sysColumn("sites", "site", types.LongText),
			sysColumn("sites", "group_id", types.Uint64),
			sysColumn("sites", "nodes", types.Int64),
		},
		rows: func(t Topology) []sql.Row {
			out := make([]sql.Row, 0, len(t.Sites))
			for _, s := range t.Sites {
				out = append(out, sql.NewRow(s.Site, s.Group, int64(s.Nodes)))
			}
			return out
		},
	},
	{
		name: "nodes",
		schema: sql.Schema{
			sysColumn("nodes", "node_id", types.LongText),
			sysColumn("nodes", "site", types.LongText),
			sysColumn("nodes", "peer_addr", types.LongText),
			sysColumn("nodes", "non_voter", types.Boolean),
		},
		rows: func(t Topology) []sql.Row {
			out := make([]sql.Row, 0, len(t.Nodes))
			for _, n := range t.Nodes {
				nv := int8(0)
				if n.NonVoter {
					nv = 1
				}
				out = append(out, sql.NewRow(n.Node, n.Site, n.PeerAddr, nv))
			}
			return out
		},
	},
	{
		name: "groups",
		schema: sql.Schema{
			sysColumn("groups", "group_id", types.Uint64),
			sysColumn("groups", "kind", types.LongText),
			sysColumn("groups", "site", types.LongText),
			sysColumn("groups", "hosted", types.Boolean),
			sysColumn("groups", "role", types.LongText),
			sysColumn("groups", "leader", types.LongText),
			sysColumn("groups", "term", types.Uint64),
			sysColumn("groups", "voters", types.Int64),
			sysColumn("groups", "members", types.Int64),
			sysColumn("groups", "applied_index", types.Uint64),
			sysColumn("groups", "version", types.LongText),
			sysColumn("groups", "active_version", types.LongText),
		},
		rows: func(t Topology) []sql.Row {
			out := make([]sql.Row, 0, len(t.Groups))
			for _, g := range t.Groups {
				hosted := int8(0)
				if g.Hosted {
					hosted = 1
				}
				out = append(out, sql.NewRow(g.Group, g.Kind, g.Site, hosted, g.Role, g.Leader, g.Term,
					int64(g.Voters), int64(g.Members), g.AppliedIndex, nullIfEmpty(g.Version), nullIfEmpty(g.ActiveVersion)))
			}
			return out
		},
	},
}

func init() {
	sysTables = append(sysTables, &sysTable{
		name: "placements",
		schema: sql.Schema{
			sysColumn("placements", "table_schema", types.LongText),
			sysColumn("placements", "table_name", types.LongText),
			sysColumn("placements", "placement", types.LongText),
			sysColumn("placements", "site", types.LongText),
			sysColumn("placements", "locality", types.LongText),
			sysColumn("placements", "parent", types.LongText),
			sysColumn("placements", "site_unique", types.LongText),
			sysColumn("placements", "staleness_ms", types.Int64),
			sysColumn("placements", "strict", types.Boolean),
			sysColumn("placements", "group_id", types.Uint64),
		},
		rows: func(t Topology) []sql.Row {
			out := make([]sql.Row, 0, len(t.Placements))
			for _, p := range t.Placements {
				strict := int8(0)
				if p.Strict {
					strict = 1
				}
				out = append(out, sql.NewRow(p.DB, p.Table, p.Placement, p.Site, p.Locality, p.Parent,
					p.SiteUnique, p.StalenessMillis, strict, p.Group))
			}
			return out
		},
	})
}

// sysDatabase is the fogdb database. It is resolved by name but not listed
// among the databases (SHOW DATABASES, a dump of all databases), since it
// holds no data of its own that could be restored.
type sysDatabase struct{ p *Provider }

// Every change is refused as MySQL refuses one to information_schema:
// 1044, access denied to the database, for every user (the engine's
// read-only database answers 1105 instead).
var (
	_ sql.TableCreator = sysDatabase{}
	_ sql.TableDropper = sysDatabase{}
	_ sql.TableRenamer = sysDatabase{}
)

func (d sysDatabase) Name() string { return SystemDBName }
func (d sysDatabase) CreateTable(ctx *sql.Context, _ string, _ sql.PrimaryKeySchema, _ sql.CollationID, _ string) error {
	return errSystemDB(ctx)
}
func (d sysDatabase) DropTable(ctx *sql.Context, _ string) error      { return errSystemDB(ctx) }
func (d sysDatabase) RenameTable(ctx *sql.Context, _, _ string) error { return errSystemDB(ctx) }

func (d sysDatabase) GetTableInsensitive(_ *sql.Context, name string) (sql.Table, bool, error) {
	for _, t := range sysTables {
		if strings.EqualFold(t.name, name) {
			return sysTableOf{t: t, p: d.p}, true, nil
		}
	}
	return nil, false, nil
}

func (d sysDatabase) GetTableNames(*sql.Context) ([]string, error) {
	names := make([]string, 0, len(sysTables))
	for _, t := range sysTables {
		names = append(names, t.name)
	}
	return names, nil
}

type sysTableOf struct {
	t *sysTable
	p *Provider
}

var _ sql.Table = sysTableOf{}

func (t sysTableOf) Name() string               { return t.t.name }
func (t sysTableOf) String() string             { return t.t.name }
func (t sysTableOf) Schema() sql.Schema         { return t.t.schema }
func (t sysTableOf) Collation() sql.CollationID { return sql.Collation_Default }
func (t sysTableOf) Partitions(*sql.Context) (sql.PartitionIter, error) {
	return sql.PartitionsToPartitionIter(sysPartition{}), nil
}

func (t sysTableOf) PartitionRows(ctx *sql.Context, _ sql.Partition) (sql.RowIter, error) {
	var topo Topology
	if t.p.cfg.Topology != nil {
		var err error
		if topo, err = t.p.cfg.Topology(ctx); err != nil {
			return nil, err
		}
	}
	return sql.RowsToRowIter(t.t.rows(topo)...), nil
}

var (
	_ sql.InsertableTable   = sysTableOf{}
	_ sql.UpdatableTable    = sysTableOf{}
	_ sql.DeletableTable    = sysTableOf{}
	_ sql.ReplaceableTable  = sysTableOf{}
	_ sql.TruncateableTable = sysTableOf{}
)

func (t sysTableOf) Inserter(*sql.Context) sql.RowInserter  { return sysEditor{} }
func (t sysTableOf) Updater(*sql.Context) sql.RowUpdater    { return sysEditor{} }
func (t sysTableOf) Deleter(*sql.Context) sql.RowDeleter    { return sysEditor{} }
func (t sysTableOf) Replacer(*sql.Context) sql.RowReplacer  { return sysEditor{} }
func (t sysTableOf) Truncate(ctx *sql.Context) (int, error) { return 0, errSystemDB(ctx) }

// sysEditor refuses every row change.
type sysEditor struct{}

func (sysEditor) StatementBegin(*sql.Context)                 {}
func (sysEditor) DiscardChanges(*sql.Context, error) error    { return nil }
func (sysEditor) StatementComplete(*sql.Context) error        { return nil }
func (sysEditor) Insert(ctx *sql.Context, _ sql.Row) error    { return errSystemDB(ctx) }
func (sysEditor) Update(ctx *sql.Context, _, _ sql.Row) error { return errSystemDB(ctx) }
func (sysEditor) Delete(ctx *sql.Context, _ sql.Row) error    { return errSystemDB(ctx) }
func (sysEditor) Close(*sql.Context) error                    { return nil }

type sysPartition struct{}

func (sysPartition) Key() []byte { return []byte("all") }

// errSystemDB is MySQL's answer to a change of one of its own schemas
// (DROP DATABASE information_schema): access denied.
func errSystemDB(ctx *sql.Context) error {
	user, host := "root", "localhost"
	if ctx != nil && ctx.Session != nil {
		c := ctx.Session.Client()
		user, host = c.User, c.Address
		if i := strings.LastIndexByte(host, ':'); i > 0 {
			host = host[:i]
		}
	}
	return mysql.NewSQLError(mysql.ERDBAccessDenied, "42000", "Access denied for user '%s'@'%s' to database '%s'", user, host, SystemDBName)
}

// The fogdb database has no views; the engine asks every database for
// them when it resolves a name.
var _ sql.ViewDatabase = sysDatabase{}

func (d sysDatabase) CreateView(ctx *sql.Context, _, _, _ string) error { return errSystemDB(ctx) }
func (d sysDatabase) DropView(ctx *sql.Context, _ string) error         { return errSystemDB(ctx) }
func (d sysDatabase) GetViewDefinition(*sql.Context, string) (sql.ViewDefinition, bool, error) {
	return sql.ViewDefinition{}, false, nil
}
func (d sysDatabase) AllViews(*sql.Context) ([]sql.ViewDefinition, error) { return nil, nil }

// Nor triggers: the engine looks for them before any row change.
var _ sql.TriggerDatabase = sysDatabase{}

func (d sysDatabase) GetTriggers(*sql.Context) ([]sql.TriggerDefinition, error) { return nil, nil }
func (d sysDatabase) CreateTrigger(ctx *sql.Context, _ sql.TriggerDefinition) error {
	return errSystemDB(ctx)
}
func (d sysDatabase) DropTrigger(ctx *sql.Context, _ string) error { return errSystemDB(ctx) }

// TableRef names a table of the catalog.
type TableRef struct{ DB, Table string }

// Tables lists every table of the catalog as this node has it, by
// database and name (lower case, as the catalog keys them).
func (p *Provider) Tables() []TableRef {
	p.catMu.RLock()
	defer p.catMu.RUnlock()
	var out []TableRef
	for db, st := range p.dbs {
		if st == nil {
			continue
		}
		for name := range st.tables {
			out = append(out, TableRef{DB: db, Table: name})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DB != out[j].DB {
			return out[i].DB < out[j].DB
		}
		return out[i].Table < out[j].Table
	})
	return out
}

// TableGroup is the group that holds the rows of db.table (0 when there is
// no such table, or when it is local: its rows are in every site's group).
func (p *Provider) TableGroup(db, table string) uint64 {
	m := p.table(db, table)
	if m == nil || m.local() {
		return 0
	}
	return m.group()
}

// TablePlacement is the placement db.table was created with, as its
// definition records it.
func (p *Provider) TablePlacement(db, table string) (TablePlacement, bool) {
	m := p.table(db, table)
	if m == nil {
		return TablePlacement{}, false
	}
	ld := m.def.Local
	if ld == nil {
		return TablePlacement{Group: m.group()}, true
	}
	pl := TablePlacement{Local: true, Locality: ld.Locality, SiteUnique: append([]string(nil), ld.SiteUnique...)}
	if ld.Parent != nil {
		ref := *ld.Parent
		pl.Parent = &ref
	}
	return pl, true
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
