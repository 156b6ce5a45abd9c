package sqlfront

import (
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/analyzer"
	"github.com/dolthub/go-mysql-server/sql/expression"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/transform"
	"github.com/dolthub/go-mysql-server/sql/types"
)

// The engine turns a DELETE without WHERE of one table into a TRUNCATE
// (processTruncate), deciding from the current database, not the table's:
// with no current database the DELETE failed with 1049 "database not
// found: ", and with another one current the engine checked that
// database's foreign keys and triggers, so it emptied a parent table whose
// children still referenced it and skipped its ON DELETE triggers. MySQL
// deletes row by row (as Table.Truncate does for a DELETE anyway, to stay
// transactional), so nothing is gained: keepDeleteRule keeps such a DELETE
// a DELETE, for fogdb's tables, by reading its table through a filter that
// keeps every row, which the conversion does not take. Foreign keys,
// triggers and the affected-row count are then a DELETE's.
// DELETE t FROM t, the same statement, failed likewise.
const keepDeleteRuleID analyzer.RuleId = 1<<20 + 1

func init() {
	rule := analyzer.Rule{Id: keepDeleteRuleID, Apply: keepDelete}
	// A DELETE of one table without explicit targets runs the engine's
	// short batch, which starts with AlwaysBeforeDefault; any other runs
	// the full analyzer, whose OnceAfterDefault batch converts it.
	analyzer.AlwaysBeforeDefault = append(analyzer.AlwaysBeforeDefault, rule)
	rules := make([]analyzer.Rule, 0, len(analyzer.OnceAfterDefault)+1)
	placed := false
	for _, r := range analyzer.OnceAfterDefault {
		if !placed && r.Id.String() == "processTruncate" {
			rules = append(rules, rule)
			placed = true
		}
		rules = append(rules, r)
	}
	if !placed {
		rules = append([]analyzer.Rule{rule}, rules...)
	}
	analyzer.OnceAfterDefault = rules
}

func keepDelete(ctx *sql.Context, _ *analyzer.Analyzer, n sql.Node, _ *plan.Scope, _ analyzer.RuleSelector, _ *sql.QueryFlags) (sql.Node, transform.TreeIdentity, error) {
	return transform.Node(n, func(n sql.Node) (sql.Node, transform.TreeIdentity, error) {
		del, ok := n.(*plan.DeleteFrom)
		if !ok {
			return n, transform.SameTree, nil
		}
		rt, ok := del.Child.(*plan.ResolvedTable)
		if !ok {
			return n, transform.SameTree, nil
		}
		if _, ours := rt.UnderlyingTable().(*Table); !ours {
			return n, transform.SameTree, nil
		}
		if del.HasExplicitTargets() {
			// DELETE d.t FROM d.t names its one table twice; said once,
			// it is the same DELETE, one the engine also runs with
			// triggers (it refuses those with explicit targets).
			if targets := del.GetDeleteTargets(); len(targets) != 1 || !sameTable(targets[0], rt) {
				return n, transform.SameTree, nil
			}
		}
		return plan.NewDeleteFrom(plan.NewFilter(expression.NewLiteral(true, types.Boolean), rt), nil), transform.NewTree, nil
	})
}

// sameTable reports whether a DELETE's target is the table rt reads.
func sameTable(target sql.Node, rt *plan.ResolvedTable) bool {
	t, ok := target.(*plan.ResolvedTable)
	return ok && strings.EqualFold(t.Name(), rt.Name()) && t.Database() != nil && rt.Database() != nil &&
		strings.EqualFold(t.Database().Name(), rt.Database().Name())
}
