package sqlfront

import (
	"context"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
)

// TablePlacement is where the rows of a table live, as Config.PlaceTable
// decides when the table is created (docs/PLACEMENT.md).
type TablePlacement struct {
	// Group holds every row of a global or site table (0: CatalogGroup).
	// Unused for a local table.
	Group uint64
	// Local: each row lives in its home site's group (Homes).
	Local bool
	// Locality is the column whose value gives a row its home; "" for
	// none.
	Locality string
	// Parent homes each row with a row of another local table of the same
	// database; nil for none. Locality and Parent exclude each other.
	Parent *ParentRef
	// SiteUnique lists the unique keys not checked across sites: index
	// names ("primary" for the primary key) or column lists
	// ("a,b").
	SiteUnique []string
}

// ParentRef homes a row with the row of Table whose Column equals the
// row's Via column.
type ParentRef struct {
	Table, Column, Via string
}

// Homes homes the rows of local tables; the server provides it from its
// registry of sites, the placement's locality map and the registrations
// of locality values (sharding/placement.HomeSite).
type Homes interface {
	// Home is the group of the home site of a row whose locality value is
	// *locality: the group of a site of that name, or of the site the
	// locality map or an earlier registration gives it. Any other value
	// (and nil) is homed at fallback's site, and a non-NULL value is
	// registered there before Home returns, durably, so that every node's
	// Lookup finds it from then on. Inserts pass LocalGroup as fallback;
	// updates the row's current group, so that a value nobody knows yet
	// leaves the row where it is.
	Home(ctx context.Context, locality *string, fallback uint64) (group uint64, err error)
	// Lookup is the group a value is homed at, if known, registering
	// nothing: a read must not write. Unknown values of a query are
	// looked for at every site.
	Lookup(ctx context.Context, locality string) (group uint64, ok bool, err error)
	// LocalGroup is the group of this node's site.
	LocalGroup() uint64
	// AllGroups lists the group of every site, LocalGroup among them: the
	// groups a local table's rows may be in.
	AllGroups(ctx context.Context) []uint64
}

// localDef is the stored placement of a local table: how its rows are
// homed (tableDef.Local).
type localDef struct {
	Locality   string     `json:"locality,omitempty"`
	Parent     *ParentRef `json:"parent,omitempty"`
	SiteUnique []string   `json:"site_unique,omitempty"`
}

// errMovesRow refuses an update that would move a row of a local table to
// another site's group, until moves exist.
func errMovesRow(m *tableMeta, from, to uint64) error {
	return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSClientError,
		"This version of fogdb doesn't yet support 'changing the locality of a row that would move it between sites (%s.%s: group %d to group %d)'",
		m.db, m.def.Name, from, to)
}

// errNoSuchPlacementColumn refuses a placement naming a column the table
// lacks.
func errNoSuchPlacementColumn(col, table string) error {
	return mysql.NewSQLError(mysql.ERBadFieldError, mysql.SSBadFieldError,
		"Unknown column '%s' in 'placement of %s'", col, table)
}

// errPlacementColumnChange refuses DDL that drops or renames the column a
// local table's rows are homed by.
func errPlacementColumnChange(col string) error {
	return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSClientError,
		"This version of fogdb doesn't yet support 'dropping or renaming %s, the column that homes the rows of a local table'", col)
}

// checkLocalDef checks a local placement against the table's columns.
func checkLocalDef(ld *localDef, sch sql.Schema, table string) error {
	for _, c := range []string{ld.Locality, viaOf(ld)} {
		if c != "" && sch.IndexOfColName(c) < 0 {
			return errNoSuchPlacementColumn(c, table)
		}
	}
	return nil
}

func (ld *localDef) locality() string {
	if ld == nil {
		return ""
	}
	return ld.Locality
}

func viaOf(ld *localDef) string {
	if ld == nil || ld.Parent == nil {
		return ""
	}
	return ld.Parent.Via
}

// siteUniqueListed reports whether a site_unique entry names a key: its
// name, or its columns in order ("a,b").
func siteUniqueListed(entries []string, name string, cols []string) bool {
	for _, e := range entries {
		if strings.EqualFold(strings.TrimSpace(e), name) {
			return true
		}
		parts := strings.Split(e, ",")
		if len(parts) != len(cols) {
			continue
		}
		same := true
		for i, p := range parts {
			same = same && strings.EqualFold(strings.TrimSpace(p), cols[i])
		}
		if same {
			return true
		}
	}
	return false
}
