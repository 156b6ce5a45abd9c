package server

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/analyzer"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/transform"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/netutil"
)

// Every statement runs under a context that ends when the statement must
// stop: KILL QUERY (the engine's process list cancels its own child of
// it), the client going away, or max_execution_time. The analyzer checks
// it before each rule and the executors before building each iterator, so
// no phase runs on after it ends.

var (
	errMaxExecutionTime = mysql.NewSQLError(3024, mysql.SSUnknownSQLState,
		"Query execution was interrupted, maximum statement execution time exceeded")
	errQueryInterrupted = mysql.NewSQLError(mysql.ERQueryInterrupted, "70100", "Query execution was interrupted")
	// errClientGone is the cause of a statement stopped because its client
	// disconnected; nobody reads the error.
	errClientGone = errors.New("server: client disconnected")
)

// disconnectPoll is how often a running statement checks that its client
// is still there.
const disconnectPoll = 25 * time.Millisecond

// statementContext returns the context a statement of c runs under and
// the function that ends it.
func (h errorEdge) statementContext(ctx context.Context, c *mysql.Conn, query string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	var timer *time.Timer
	if d := h.maxExecutionTime(c, query); d > 0 {
		timer = time.AfterFunc(d, func() { cancel(errMaxExecutionTime) })
	}
	done := make(chan struct{})
	if rc := rawConn(c.Conn); rc != nil {
		go watchClient(rc, done, func() { cancel(errClientGone) })
	}
	return ctx, func() {
		close(done)
		if timer != nil {
			timer.Stop()
		}
		cancel(nil)
	}
}

// stopped turns the error of a statement that was stopped into MySQL's.
// An error with an answer of its own passes unchanged, whatever stopped the
// statement afterwards: a commit's 1180 (outcome unknown) must reach the
// client as such, not as an interruption.
func stopped(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var se *mysql.SQLError
	if errors.As(err, &se) && se.Num != mysql.ERUnknownError && se.Num != mysql.ERQueryInterrupted {
		return err
	}
	// The engine hands a cancelled context's error on as text, under 1105.
	if se == nil || se.Num != mysql.ERQueryInterrupted {
		if !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), context.Canceled.Error()) {
			return err
		}
	}
	if errors.Is(context.Cause(ctx), errMaxExecutionTime) {
		return errMaxExecutionTime
	}
	return errQueryInterrupted
}

// maxExecHint finds the hint after the SELECT of the statement (or of a
// WITH's main query).
var maxExecHint = regexp.MustCompile(`(?is)\bSELECT\s*/\*\+[^*]*?\bMAX_EXECUTION_TIME\s*\(\s*(\d+)\s*\)`)

// maxExecutionTime is the time limit of a statement: MySQL applies
// max_execution_time, or the statement's MAX_EXECUTION_TIME hint, to
// read-only SELECTs only.
func (h errorEdge) maxExecutionTime(c *mysql.Conn, query string) time.Duration {
	// Every statement passes here: the cheap test comes first, so a bulk
	// INSERT's text is neither copied nor searched.
	if !isSelect(query) {
		return 0
	}
	if m := maxExecHint.FindStringSubmatch(query); m != nil {
		ms, err := strconv.ParseInt(m[1], 10, 64)
		if err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
		return 0
	}
	s := h.prov.SessionByConn(c.ConnectionID)
	if s == nil {
		return 0
	}
	v, err := s.GetSessionVariable(sql.NewEmptyContext(), "max_execution_time")
	if err != nil {
		return 0
	}
	ms, ok := v.(int64)
	if !ok || ms <= 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// isSelect reports whether query is a read-only SELECT (or a WITH before
// one). Only a statement that starts so is copied to search it.
func isSelect(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	for strings.HasPrefix(q, "/*") && !strings.HasPrefix(q, "/*!") {
		end := strings.Index(q, "*/")
		if end < 0 {
			return false
		}
		q = strings.TrimLeft(q[end+2:], " \t\r\n(")
	}
	switch {
	case hasPrefixFold(q, "SELECT"):
		return !strings.Contains(strings.ToUpper(q), " FOR UPDATE")
	case hasPrefixFold(q, "WITH"):
		// A common table expression before a SELECT; one before an UPDATE
		// or DELETE writes.
		upper := strings.ToUpper(q)
		return !strings.Contains(upper, "UPDATE") && !strings.Contains(upper, "DELETE")
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// rawConn finds the socket under the protocol guard, TLS and the protocol
// code's timeout wrapper. Peeking the socket works under TLS too: a closed
// connection reads as end of file whatever the layers above it.
func rawConn(c net.Conn) syscall.RawConn {
unwrap:
	for c != nil {
		switch x := c.(type) {
		case *guardedConn:
			c = x.Conn
			continue
		case netutil.ConnWithTimeouts:
			c = x.Conn
			continue
		case *netutil.ConnWithTimeouts:
			c = x.Conn
			continue
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
			continue
		}
		break unwrap
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// watchClient calls gone once the client's end of the connection is
// closed, until done. It peeks without consuming: a client that sent its
// next command early is still there.
func watchClient(rc syscall.RawConn, done <-chan struct{}, gone func()) {
	t := time.NewTicker(disconnectPoll)
	defer t.Stop()
	var b [1]byte
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		closed := false
		err := rc.Read(func(fd uintptr) bool {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case err == syscall.EAGAIN || err == syscall.EINTR:
			case err != nil || n == 0:
				closed = true
			}
			return true
		})
		if closed || err != nil {
			gone()
			return
		}
	}
}

// cancellableAnalyzer makes every analyzer rule check first that its
// statement was not stopped: planning a statement runs many rules (many
// times over for nested subqueries), so a stopped statement ends within
// one rule. The batches are copied, not changed in place: the engine's
// defaults are shared.
func cancellableAnalyzer(a *analyzer.Analyzer) {
	batches := make([]*analyzer.Batch, len(a.Batches))
	for i, b := range a.Batches {
		nb := *b
		nb.Rules = make([]analyzer.Rule, len(b.Rules))
		for j, r := range b.Rules {
			apply := r.Apply
			nb.Rules[j] = analyzer.Rule{Id: r.Id, Apply: func(ctx *sql.Context, a *analyzer.Analyzer, n sql.Node, scope *plan.Scope, sel analyzer.RuleSelector, qf *sql.QueryFlags) (sql.Node, transform.TreeIdentity, error) {
				if err := ctx.Err(); err != nil {
					return n, transform.SameTree, err
				}
				return apply(ctx, a, n, scope, sel, qf)
			}}
		}
		batches[i] = &nb
	}
	a.Batches = batches
}

// maxSubqueryNesting bounds how deeply subqueries nest. The engine works
// out a scalar subquery's type by asking its select list again at every
// level, so planning time grows exponentially with the depth (about fourfold
// a level: seconds at depth 8), inside
// calls that cannot be interrupted; MySQL's own bound (63) is far out of
// reach, so fogdb refuses deeper statements with MySQL's error for it.
const maxSubqueryNesting = 7

var errTooDeep = mysql.NewSQLError(1473, mysql.SSUnknownSQLState,
	"Too high level of nesting for select")

// subqueryNesting is the deepest nesting of parenthesised SELECTs in
// query, outside quotes and comments.
func subqueryNesting(query string) int {
	var stack []bool
	depth, deepest := 0, 0
	afterParen := false
	for i := 0; i < len(query); i++ {
		ch := query[i]
		switch {
		case ch == '\'' || ch == '"' || ch == '`':
			for i++; i < len(query) && query[i] != ch; i++ {
				if query[i] == '\\' && ch != '`' {
					i++
				}
			}
			afterParen = false
		case ch == '/' && i+1 < len(query) && query[i+1] == '*':
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				return deepest
			}
			i += end + 3
		case ch == '#' || (ch == '-' && strings.HasPrefix(query[i:], "-- ")):
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				return deepest
			}
			i += end
		case ch == '(':
			stack = append(stack, false)
			afterParen = true
		case ch == ')':
			if n := len(stack); n > 0 {
				if stack[n-1] {
					depth--
				}
				stack = stack[:n-1]
			}
			afterParen = false
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n':
		default:
			if afterParen && len(stack) > 0 && (ch == 's' || ch == 'S') && len(query)-i >= 6 && strings.EqualFold(query[i:i+6], "select") {
				stack[len(stack)-1] = true
				depth++
				deepest = max(deepest, depth)
			}
			afterParen = false
		}
	}
	return deepest
}

// refuseDeep refuses a statement nested beyond maxSubqueryNesting before
// the engine plans it.
func refuseDeep(query string) error {
	if subqueryNesting(query) > maxSubqueryNesting {
		return errTooDeep
	}
	return nil
}
