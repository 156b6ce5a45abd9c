package sqlfront

import (
	"fmt"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/sqltypes"
)

// Schema-diffing tools (and people) compare SHOW CREATE TABLE with
// MySQL's text, so a column is printed as MySQL 8 prints it (sql.cc's
// store_create_info), in its order: type, GENERATED ALWAYS AS (...)
// VIRTUAL or STORED, NOT NULL (or NULL for a nullable TIMESTAMP), SRID,
// DEFAULT (DEFAULT NULL for a nullable column without one, but for the
// BLOB and TEXT types, which take no default), ON UPDATE, AUTO_INCREMENT,
// COMMENT. The engine's formatter left DEFAULT NULL out, put NOT NULL and
// AUTO_INCREMENT before GENERATED, and never said VIRTUAL. The order of the
// keys is the table's (Table.GetIndexes). In CHECK and generated
// expressions a <> b is printed as MySQL prints it.
func init() {
	sql.GlobalSchemaFormatter = &schemaFormatter{}
}

type schemaFormatter struct{ sql.MySqlSchemaFormatter }

var _ sql.SchemaFormatter = (*schemaFormatter)(nil)

func (f *schemaFormatter) GenerateCreateTableColumnDefinition(col *sql.Column, colDefault, onUpdate string, tableCollation sql.CollationID) string {
	var b strings.Builder
	typ := col.Type.String()
	if tc, ok := col.Type.(sql.TypeWithCollation); ok {
		typ = tc.StringWithTableCollation(tableCollation)
	}
	fmt.Fprintf(&b, "  %s %s", f.QuoteIdentifier(col.Name), typ)
	if col.Generated != nil {
		storage := "VIRTUAL"
		if !col.Virtual {
			storage = "STORED"
		}
		fmt.Fprintf(&b, " GENERATED ALWAYS AS %s %s", mysqlNotEqual(col.Generated.String()), storage)
	}
	switch {
	case !col.Nullable:
		b.WriteString(" NOT NULL")
	case col.Type.Type() == sqltypes.Timestamp:
		b.WriteString(" NULL")
	}
	if c, ok := col.Type.(sql.SpatialColumnType); ok {
		if s, defined := c.GetSpatialTypeSRID(); defined {
			fmt.Fprintf(&b, " /*!80003 SRID %v */", s)
		}
	}
	if col.Generated == nil && !col.AutoIncrement {
		switch {
		case col.Default != nil:
			fmt.Fprintf(&b, " DEFAULT %s", colDefault)
		case col.Nullable && !types.IsTextBlob(col.Type):
			b.WriteString(" DEFAULT NULL")
		}
	}
	if col.OnUpdate != nil {
		fmt.Fprintf(&b, " ON UPDATE %s", onUpdate)
	}
	if col.AutoIncrement {
		b.WriteString(" AUTO_INCREMENT")
	}
	if col.Comment != "" {
		fmt.Fprintf(&b, " COMMENT '%s'", mysqlEscape(col.Comment))
	}
	return b.String()
}

// mysqlEscape escapes text for a quoted string as SHOW CREATE TABLE does
// (append_unescaped).
var mysqlEscape = strings.NewReplacer(`\`, `\\`, "\x00", `\0`, "'", `\'`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`).Replace

func (f *schemaFormatter) GenerateCreateTableCheckConstraintClause(checkName, checkExpr string, enforced bool) string {
	return f.MySqlSchemaFormatter.GenerateCreateTableCheckConstraintClause(checkName, mysqlNotEqual(checkExpr), enforced)
}

// mysqlNotEqual spells the engine's (NOT((a = b))), its form of a <> b,
// as MySQL prints a <> b: (a <> b).
func mysqlNotEqual(expr string) string {
	const not = "(NOT(("
	for from := 0; ; {
		i := strings.Index(expr[from:], not)
		if i < 0 {
			return expr
		}
		i += from
		inner := i + len("(NOT(")
		end := closingParen(expr, inner)
		if end < 0 || !strings.HasPrefix(expr[end+1:], "))") {
			from = i + 1
			continue
		}
		eq := topLevel(expr[inner+1:end], " = ")
		if eq < 0 {
			from = i + 1
			continue
		}
		body := expr[inner+1 : end]
		repl := "(" + body[:eq] + " <> " + body[eq+len(" = "):] + ")"
		expr = expr[:i] + repl + expr[end+3:]
		from = i + 1
	}
}

// closingParen returns the index of the parenthesis closing the one at
// open, skipping quoted text.
func closingParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"', '`':
			i = skipQuoted(s, i) - 1
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// topLevel finds sep in s outside parentheses and quoted text.
func topLevel(s, sep string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"', '`':
			i = skipQuoted(s, i) - 1
		case '(':
			depth++
		case ')':
			depth--
		default:
			if depth == 0 && strings.HasPrefix(s[i:], sep) {
				return i
			}
		}
	}
	return -1
}
