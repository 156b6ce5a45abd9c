package sqlfront

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/iters"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/rowexec"
	"github.com/dolthub/vitess/go/mysql"
)

// A statement's buffers (the rows a sort holds, the rows a recursive CTE
// carries from one step to the next) are charged to a per-statement
// budget, max_statement_memory, so that one runaway statement fails with a
// clear error instead of taking the node's memory. The engine's executors
// are replaced for the nodes that buffer what their input gives them.

// MaxStatementMemoryVar is the session variable bounding the memory one
// statement may buffer; 0 means no limit.
const MaxStatementMemoryVar = "max_statement_memory"

const (
	erCapacityExceeded       = 3170
	erCTEMaxRecursionDepth   = 3636
	defaultCTERecursionDepth = 1000
)

func errStatementMemory(limit int64) error {
	return mysql.NewSQLError(erCapacityExceeded, mysql.SSUnknownSQLState, "%s",
		fmt.Sprintf("Memory capacity of %d bytes for '%s' exceeded. The statement was aborted; raise %s to run it.", limit, MaxStatementMemoryVar, MaxStatementMemoryVar))
}

func errCTEDepth(n int) error {
	return mysql.NewSQLError(erCTEMaxRecursionDepth, mysql.SSUnknownSQLState, "%s",
		fmt.Sprintf("Recursive query aborted after %d iterations. Try increasing @@cte_max_recursion_depth to a larger value.", n))
}

// stmtMemory is what the running statement has buffered.
type stmtMemory struct {
	used  atomic.Int64
	limit atomic.Int64
}

// reset starts a statement's account with the session's limit.
func (m *stmtMemory) reset(ctx *sql.Context) {
	m.used.Store(0)
	m.limit.Store(sessionInt(ctx, MaxStatementMemoryVar, 0))
}

// charge adds n bytes (negative to give back) and fails once over the
// limit.
func (m *stmtMemory) charge(n int64) error {
	used := m.used.Add(n)
	if lim := m.limit.Load(); lim > 0 && n > 0 && used > lim {
		return errStatementMemory(lim)
	}
	return nil
}

// sessionInt reads an integer session variable.
func sessionInt(ctx *sql.Context, name string, def int64) int64 {
	v, err := ctx.GetSessionVariable(ctx, name)
	if err != nil {
		return def
	}
	switch n := v.(type) {
	case int64:
		return n
	case uint64:
		return int64(n)
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case uint32:
		return int64(n)
	}
	return def
}

// chargeRow charges a buffered row to the statement of ctx.
func chargeRow(ctx *sql.Context, row sql.Row) (int64, error) {
	s, ok := ctx.Session.(*Session)
	if !ok {
		return 0, nil
	}
	n := rowBytes(row)
	return n, s.mem.charge(n)
}

func release(ctx *sql.Context, n int64) {
	if s, ok := ctx.Session.(*Session); ok && n != 0 {
		_ = s.mem.charge(-n)
	}
}

// rowBytes estimates what a row holds in memory: its values' payloads and
// the interface and slice headers around them.
func rowBytes(row sql.Row) int64 {
	n := int64(24 + 16*len(row))
	for _, v := range row {
		switch x := v.(type) {
		case string:
			n += int64(len(x))
		case []byte:
			n += int64(len(x))
		case nil:
		default:
			n += 16
		}
	}
	return n
}

// NewExecBuilder returns the engine's executor builder with fogdb's
// executors for the nodes that buffer, and the checks of statements that
// touch the host's files (files.go).
func (p *Provider) NewExecBuilder() sql.NodeExecBuilder {
	o := &execOverride{p: p}
	o.full = rowexec.NewOverrideBuilder(o)
	return o.full
}

type execOverride struct {
	full sql.NodeExecBuilder
	p    *Provider
}

// Build returns nil for the nodes it leaves to the engine. It is called
// for every iterator built, and joins build their inner side again for
// each outer row: checking for a stopped statement here ends loops over
// buffered rows, which check nothing themselves.
func (o *execOverride) Build(ctx *sql.Context, n sql.Node, row sql.Row) (sql.RowIter, error) {
	if err := ctx.Err(); err != nil {
		return nil, errInterrupted
	}
	switch n := n.(type) {
	case *plan.Into, *plan.InsertInto, *plan.LoadData:
		checked, err := o.p.checkFileStatement(ctx, n)
		if err != nil {
			return nil, err
		}
		if checked != n {
			// The same node with the file's real path: checked again
			// on the way, it is left to the engine.
			return o.full.Build(ctx, checked, row)
		}
		return nil, nil
	case *plan.RecursiveCte:
		return o.buildRecursiveCte(ctx, n, row)
	case *plan.Sort:
		child, err := o.full.Build(ctx, n.Child, row)
		if err != nil {
			return nil, err
		}
		return iters.NewSortIter(n.SortFields, &chargingIter{child: child}), nil
	}
	return nil, nil
}

// chargingIter charges every row it passes to the statement's budget and
// gives it all back when closed: it feeds an executor that keeps every row
// until it is done.
type chargingIter struct {
	child   sql.RowIter
	charged int64
}

func (c *chargingIter) Next(ctx *sql.Context) (sql.Row, error) {
	row, err := c.child.Next(ctx)
	if err != nil {
		return nil, err
	}
	n, err := chargeRow(ctx, row)
	c.charged += n
	if err != nil {
		return nil, err
	}
	return row, nil
}

func (c *chargingIter) Close(ctx *sql.Context) error {
	release(ctx, c.charged)
	c.charged = 0
	return c.child.Close(ctx)
}

func (o *execOverride) buildRecursiveCte(ctx *sql.Context, n *plan.RecursiveCte, row sql.Row) (sql.RowIter, error) {
	var iter sql.RowIter = &recursiveCteIter{
		init:        n.Left(),
		rec:         n.Right(),
		row:         row,
		working:     n.Working,
		deduplicate: n.Union().Distinct,
		build:       o.full,
		maxDepth:    int(sessionInt(ctx, "cte_max_recursion_depth", defaultCTERecursionDepth)),
	}
	u := n.Union()
	switch {
	case u.Limit != nil && len(u.SortFields) > 0:
		limit, err := iters.GetInt64Value(ctx, u.Limit)
		if err != nil {
			return nil, err
		}
		iter = iters.NewTopRowsIter(u.SortFields, limit, false, iter, len(u.Schema()))
	case u.Limit != nil:
		limit, err := iters.GetInt64Value(ctx, u.Limit)
		if err != nil {
			return nil, err
		}
		iter = &iters.LimitIter{Limit: limit, ChildIter: iter}
	case len(u.SortFields) > 0:
		iter = iters.NewSortIter(u.SortFields, &chargingIter{child: iter})
	}
	return iter, nil
}

// recursiveCteIter runs a recursive CTE as the engine's does (the anchor,
// then the recursive part over the rows of the step before, until a step
// adds nothing), within cte_max_recursion_depth steps and the statement's
// memory budget for the rows it carries.
type recursiveCteIter struct {
	init, rec   sql.Node
	row         sql.Row
	working     *plan.RecursiveTable
	deduplicate bool
	build       sql.NodeExecBuilder
	maxDepth    int

	iter  sql.RowIter
	cycle int
	// temp collects the rows of the running step: the next step's input.
	temp []sql.Row
	// tempBytes and workBytes are what temp and the working table hold.
	tempBytes, workBytes int64
	seen                 sql.KeyValueCache
}

func (r *recursiveCteIter) Next(ctx *sql.Context) (sql.Row, error) {
	if r.iter == nil {
		if r.deduplicate {
			r.seen = sql.NewMapCache()
		}
		it, err := r.build.Build(ctx, r.init, r.row)
		if err != nil {
			return nil, err
		}
		r.iter = it
	}
	for {
		row, err := r.iter.Next(ctx)
		if errors.Is(err, io.EOF) && len(r.temp) > 0 {
			if err := r.nextStep(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if r.deduplicate {
			key, err := sql.HashOf(ctx, row)
			if err != nil {
				return nil, err
			}
			if v, _ := r.seen.Get(key); v != nil {
				continue
			}
			if err := r.seen.Put(key, struct{}{}); err != nil {
				return nil, err
			}
			// The duplicate set lives as long as the statement.
			if _, err := chargeRow(ctx, sql.Row{key}); err != nil {
				return nil, err
			}
		}
		n, err := chargeRow(ctx, row)
		r.tempBytes += n
		if err != nil {
			return nil, err
		}
		r.temp = append(r.temp, row)
		return row, nil
	}
}

// nextStep starts the recursive part over the rows the last step made.
func (r *recursiveCteIter) nextStep(ctx *sql.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.cycle++
	if r.cycle > r.maxDepth {
		return errCTEDepth(r.cycle)
	}
	release(ctx, r.workBytes)
	if r.working != nil {
		r.working.Buf = r.temp
	}
	r.workBytes = r.tempBytes
	r.temp, r.tempBytes = nil, 0
	if err := r.iter.Close(ctx); err != nil {
		return err
	}
	it, err := r.build.Build(ctx, r.rec, r.row)
	if err != nil {
		r.iter = nil
		return err
	}
	r.iter = it
	return nil
}

func (r *recursiveCteIter) Close(ctx *sql.Context) error {
	release(ctx, r.workBytes+r.tempBytes)
	r.workBytes, r.tempBytes = 0, 0
	if r.working != nil {
		r.working.Buf = nil
	}
	r.temp = nil
	if r.iter != nil {
		return r.iter.Close(ctx)
	}
	return nil
}
