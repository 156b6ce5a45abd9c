package sqlfront

import (
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/analyzer"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/transform"
	"github.com/dolthub/go-mysql-server/sql/types"
)

// The engine's DDL validation (validateCreateTable, and ResolveAlterColumn
// for CREATE INDEX and ALTER TABLE ... ADD INDEX) counts every character
// of a prefix key as 4 bytes and compares the result with the column's
// length in bytes, so a 255-character prefix of a utf8mb3 VARCHAR(256)
// failed with "incorrect prefix key" and a 1000-character latin1 prefix
// with 1071. MySQL counts a prefix in its column's characters, each its
// character set's longest (bytes for a binary string), which
// checkKeyLengths does when the definition is made. So the two rules run
// with each character prefix shortened to one character, which their
// counting always takes, and get the prefixes back when they return; what
// they checked of the prefix that is MySQL's own is done here first: a
// prefix longer than its column is 1089.
func init() {
	for i, r := range analyzer.OnceBeforeDefault {
		switch r.Id.String() {
		case "validateCreateTable", "ResolveAlterColumn":
			analyzer.OnceBeforeDefault[i].Apply = withCharPrefixesShortened(r.Apply)
		}
	}
}

func withCharPrefixesShortened(apply analyzer.RuleFunc) analyzer.RuleFunc {
	return func(ctx *sql.Context, a *analyzer.Analyzer, n sql.Node, scope *plan.Scope, sel analyzer.RuleSelector, qf *sql.QueryFlags) (sql.Node, transform.TreeIdentity, error) {
		var restore []func()
		defer func() {
			for _, f := range restore {
				f()
			}
		}()
		var err error
		shorten := func(cols []sql.IndexColumn, schema map[string]*sql.Column) {
			for i := range cols {
				c := &cols[i]
				col := schema[strings.ToLower(c.Name)]
				st, ok := colType(col).(sql.StringType)
				if c.Length <= 0 || !ok || !types.IsTextOnly(st) {
					continue
				}
				if c.Length > st.MaxCharacterLength() {
					err = sql.ErrInvalidIndexPrefix.New(c.Name)
					return
				}
				length := c.Length
				c.Length = 1
				restore = append(restore, func() { c.Length = length })
			}
		}
		transform.Inspect(n, func(n sql.Node) bool {
			switch n := n.(type) {
			case *plan.CreateTable:
				schema := columnsByName(n.PkSchema().Schema)
				for _, idx := range n.Indexes() {
					shorten(idx.Columns, schema)
				}
			case *plan.AlterIndex:
				if n.Action == plan.IndexAction_Create {
					shorten(n.Columns, alterColumns(n))
				}
			}
			return err == nil
		})
		if err != nil {
			return nil, transform.SameTree, err
		}
		return apply(ctx, a, n, scope, sel, qf)
	}
}

func columnsByName(sch sql.Schema) map[string]*sql.Column {
	m := make(map[string]*sql.Column, len(sch))
	for _, c := range sch {
		m[strings.ToLower(c.Name)] = c
	}
	return m
}

// alterColumns are the columns an ALTER TABLE's index may name: its
// table's, as the statement's earlier clauses left them.
func alterColumns(n *plan.AlterIndex) map[string]*sql.Column {
	var sch sql.Schema
	if n.Table != nil {
		sch = n.Table.Schema()
	}
	if ts := n.TargetSchema(); len(ts) > 0 {
		sch = ts
	}
	return columnsByName(sch)
}

func colType(c *sql.Column) sql.Type {
	if c == nil {
		return nil
	}
	return c.Type
}
