package sqlfront

import (
	"strings"
	"sync/atomic"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"

	"github.com/fogdb/fogdb/replication"
)

// WANStatusVar is the session status variable that tells how many round
// trips to nodes of other sites the session's last transaction waited for
// (replication/DESIGN.md, "Counting round trips": requests it sent to
// another site, and the acknowledgements from another site its commits and
// read barriers needed). A transaction on rows of the node's own site
// makes none.
const WANStatusVar = "fogdb_wan_round_trips"

// wanCounts holds a session's counts: cur for the transaction running or
// about to run, last for the one before it.
type wanCounts struct {
	cur  atomic.Pointer[replication.CallCounts]
	last atomic.Uint64
}

func newWANCounts() *wanCounts {
	w := &wanCounts{}
	w.cur.Store(&replication.CallCounts{})
	return w
}

// rotate starts the counts of a new transaction.
func (w *wanCounts) rotate() {
	w.last.Store(w.cur.Swap(&replication.CallCounts{}).WAN.Load())
}

// startsTxn reports whether the statement about to run begins a new
// transaction: every statement does, but those inside BEGIN ... COMMIT or
// with autocommit off.
func (s *Session) startsTxn() bool {
	return s.txn == nil || !(s.GetIgnoreAutoCommit() || !s.autocommit())
}

var wanStatusVar = &sql.MySQLStatusVariable{Name: WANStatusVar, Scope: sql.StatusVariableScope_Session, Type: types.Uint64, Default: uint64(0)}

// GetStatusVariable adds fogdb's status variable to the engine's, and
// the connection's TLS (tlsstatus.go).
func (s *Session) GetStatusVariable(ctx *sql.Context, name string) (interface{}, error) {
	if strings.EqualFold(name, WANStatusVar) {
		return s.wan.last.Load(), nil
	}
	if v, ok := s.tlsStatus(name); ok {
		return v, nil
	}
	return s.BaseSession.GetStatusVariable(ctx, name)
}

// GetAllStatusVariables adds fogdb's status variable to the engine's, so
// SHOW SESSION STATUS lists it.
func (s *Session) GetAllStatusVariables(ctx *sql.Context) map[string]sql.StatusVarValue {
	m := s.BaseSession.GetAllStatusVariables(ctx)
	m[WANStatusVar] = &sql.ImmutableStatusVarValue{Var: wanStatusVar, Val: s.wan.last.Load()}
	s.withTLSStatus(m)
	return m
}
