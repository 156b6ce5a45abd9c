package server

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
	ast "github.com/dolthub/vitess/go/vt/sqlparser"

	"github.com/fogdb/fogdb/sqlfront"
)

// sqlStates is MySQL's SQLSTATE for the error codes the engine reports
// with the generic HY000. Clients branch on these (SQLAlchemy's
// IntegrityError is class 23).
var sqlStates = map[uint16]string{
	1007: "HY000", // ER_DB_CREATE_EXISTS
	1008: "HY000", // ER_DB_DROP_EXISTS
	1022: "23000", // ER_DUP_KEY
	1048: "23000", // ER_BAD_NULL_ERROR
	1049: "42000", // ER_BAD_DB_ERROR
	1050: "42S01", // ER_TABLE_EXISTS_ERROR
	1051: "42S02", // ER_BAD_TABLE_ERROR
	1054: "42S22", // ER_BAD_FIELD_ERROR
	1060: "42S21", // ER_DUP_FIELDNAME
	1061: "42000", // ER_DUP_KEYNAME
	1062: "23000", // ER_DUP_ENTRY
	1059: "42000", // ER_TOO_LONG_IDENT
	1064: "42000", // ER_PARSE_ERROR
	1067: "42000", // ER_INVALID_DEFAULT
	1068: "42000", // ER_MULTIPLE_PRI_KEY
	1072: "42000", // ER_KEY_COLUMN_DOES_NOT_EXITS
	1074: "42000", // ER_TOO_BIG_FIELDLENGTH
	1075: "42000", // ER_WRONG_AUTO_KEY
	1090: "42000", // ER_CANT_REMOVE_ALL_FIELDS
	1091: "42000", // ER_CANT_DROP_FIELD_OR_KEY
	1110: "42000", // ER_FIELD_SPECIFIED_TWICE
	1136: "21S01", // ER_WRONG_VALUE_COUNT_ON_ROW
	1170: "42000", // ER_BLOB_KEY_WITHOUT_LENGTH
	1176: "42000", // ER_KEY_DOES_NOT_EXITS
	1146: "42S02", // ER_NO_SUCH_TABLE
	1213: "40001", // ER_LOCK_DEADLOCK
	1264: "22003", // ER_WARN_DATA_OUT_OF_RANGE
	1265: "01000", // WARN_DATA_TRUNCATED
	1292: "22007", // ER_TRUNCATED_WRONG_VALUE
	1364: "HY000", // ER_NO_DEFAULT_FOR_FIELD
	1365: "22012", // ER_DIVISION_BY_ZERO
	1366: "HY000", // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
	1406: "22001", // ER_DATA_TOO_LONG
	1451: "23000", // ER_ROW_IS_REFERENCED_2
	1452: "23000", // ER_NO_REFERENCED_ROW_2
	1690: "22003", // ER_DATA_OUT_OF_RANGE
}

// mysqlError finishes an engine error for the wire: MySQL's SQLSTATE for
// its code, and MySQL's exact duplicate-entry text, which oslo.db parses
// (the engine prefixes it with its own words).
func (h errorEdge) mysqlError(c *mysql.Conn, err error) error {
	return h.mysqlErrorFor(c, "", err)
}

func (h errorEdge) mysqlErrorFor(c *mysql.Conn, query string, err error) error {
	if err == nil {
		return nil
	}
	if s := h.prov.SessionByConn(c.ConnectionID); s != nil {
		s.UndoFailedCreate(sql.NewContext(context.Background(), sql.WithSession(s)))
	}
	se, ok := err.(*mysql.SQLError)
	if !ok {
		se, ok = mysql.NewSQLErrorFromError(err).(*mysql.SQLError)
		if !ok {
			return err
		}
	}
	out := *se
	engineMsg := out.Message
	env := errEnv{prov: h.prov, query: query}
	if s := h.prov.SessionByConn(c.ConnectionID); s != nil {
		env.db = s.GetCurrentDatabase()
		env.usedPassword = s.UsedPassword()
	}
	translate(&out, env)
	if s := h.prov.SessionByConn(c.ConnectionID); s != nil {
		if num, state, msg, ok := s.TakeValueError(engineMsg); ok {
			out.Num, out.State, out.Message = num, state, msg
		}
	}
	out.Message = cutBytes(out.Message, errMsgMaxBytes)
	if st, ok := sqlStates[uint16(out.Num)]; ok && (out.State == "" || out.State == mysql.SSUnknownSQLState) {
		out.State = st
	}
	if out.Num == mysql.ERDupEntry {
		if s := h.prov.SessionByConn(c.ConnectionID); s != nil {
			if m := s.TakeDupMessage(engineMsg); m != "" {
				out.Message = m
			}
		}
		if i := strings.Index(out.Message, "Duplicate entry '"); i > 0 {
			out.Message = out.Message[i:]
		}
	}
	return &out
}

// errorEdge wraps the engine's handler so every error leaving for a client
// passes through mysqlError.
type errorEdge struct {
	mysql.Handler
	prov  *sqlfront.Provider
	conns *connSet
}

// ComInitDB (a database named at connect, or the client's "use") first
// catches up with the cluster, so a database just created on another node
// is found here too.
func (h errorEdge) ComInitDB(c *mysql.Conn, schemaName string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := h.prov.ReadBarrier(ctx); err != nil {
		return h.mysqlError(c, err)
	}
	return h.mysqlError(c, h.Handler.ComInitDB(c, schemaName))
}

func (h errorEdge) ComQuery(ctx context.Context, c *mysql.Conn, query string, cb mysql.ResultSpoolFn) error {
	if strings.TrimSpace(strings.Trim(strings.TrimSpace(query), ";")) == "" {
		return mysql.NewSQLError(mysql.EREmptyQuery, "42000", "Query was empty")
	}
	if err := refuseDeep(query); err != nil {
		return err
	}
	ctx, end := h.statementContext(ctx, c, query)
	defer end()
	answered := false
	err := h.Handler.ComQuery(ctx, c, sqlfront.RewriteQuery(query), answering(cb, &answered))
	if !answered && h.retryStale(c, err) {
		err = h.Handler.ComQuery(ctx, c, sqlfront.RewriteQuery(query), cb)
	}
	return h.mysqlErrorFor(c, query, stopped(ctx, err))
}

// unknownColumn reports whether err is the engine's unknown column, as
// it leaves its handler (converted to a protocol error with its text).
func unknownColumn(err error) bool {
	if err == nil {
		return false
	}
	if sql.ErrColumnNotFound.Is(err) || sql.ErrTableColumnNotFound.Is(err) {
		return true
	}
	var se *mysql.SQLError
	if !errors.As(err, &se) {
		return false
	}
	m := se.Message
	return strings.HasSuffix(m, "could not be found in any table in scope") ||
		strings.Contains(m, "\" does not have column \"") || strings.HasPrefix(m, "Unknown column '")
}

// retryStale reports whether a statement that failed naming an unknown
// column is to be run again, once, after a read barrier of the catalog
// (Session.RetryStale): the column may be one a DDL at another node just
// added, which this node's replica had not applied yet. The engine refuses
// an unknown column while planning, before it runs anything; the caller
// has also checked that nothing reached the client.
func (h errorEdge) retryStale(c *mysql.Conn, err error) bool {
	if err == nil {
		return false
	}
	s := h.prov.SessionByConn(c.ConnectionID)
	if s == nil {
		return false
	}
	var se *mysql.SQLError
	if errors.As(err, &se) && se.Num == 1412 {
		// The client is told to retry: its next statement must see the
		// definition that changed, not this node's possibly older copy.
		s.BarrierNext()
		return false
	}
	return unknownColumn(err) && s.RetryStale()
}

// answering wraps a result callback to note whether it was called: a
// statement that sent anything cannot be run again.
func answering(cb mysql.ResultSpoolFn, answered *bool) mysql.ResultSpoolFn {
	return func(r *sqltypes.Result, more bool) error {
		*answered = true
		return cb(r, more)
	}
}

func (h errorEdge) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, cb mysql.ResultSpoolFn) (string, error) {
	if strings.TrimSpace(strings.Trim(strings.TrimSpace(query), ";")) == "" {
		return "", mysql.NewSQLError(mysql.EREmptyQuery, "42000", "Query was empty")
	}
	if err := refuseDeep(query); err != nil {
		return "", err
	}
	ctx, end := h.statementContext(ctx, c, query)
	defer end()
	answered := false
	rest, err := h.Handler.ComMultiQuery(ctx, c, sqlfront.RewriteQuery(query), answering(cb, &answered))
	if !answered && h.retryStale(c, err) {
		rest, err = h.Handler.ComMultiQuery(ctx, c, sqlfront.RewriteQuery(query), cb)
	}
	return rest, h.mysqlErrorFor(c, query, stopped(ctx, err))
}

func (h errorEdge) ComPrepare(ctx context.Context, c *mysql.Conn, query string, prepare *mysql.PrepareData) ([]*querypb.Field, error) {
	if err := refuseDeep(query); err != nil {
		return nil, err
	}
	g := guardedOf(c.Conn)
	if g != nil {
		if err := g.admitStatement(prepare.StatementID); err != nil {
			return nil, err
		}
	}
	ctx, end := h.statementContext(ctx, c, "")
	defer end()
	f, err := h.Handler.ComPrepare(ctx, c, query, prepare)
	if unknownColumn(err) && h.prov.ReadBarrier(ctx) == nil {
		// Preparing resolves names from this node's catalog without its
		// barrier (the engine runs no session check for it): a column a
		// DDL elsewhere just added may be missing here. Preparing runs
		// nothing, so it is done again after the barrier.
		delete(c.PrepareData, prepare.StatementID)
		f, err = h.Handler.ComPrepare(ctx, c, query, prepare)
	}
	if err != nil {
		// The protocol code keeps a statement that failed to prepare in
		// its map; nobody can use or close it.
		delete(c.PrepareData, prepare.StatementID)
	}
	if g != nil {
		g.countStatements()
	}
	return f, h.mysqlErrorFor(c, query, stopped(ctx, err))
}

func (h errorEdge) ComStmtExecute(ctx context.Context, c *mysql.Conn, prepare *mysql.PrepareData, cb func(*sqltypes.Result) error) error {
	ctx, end := h.statementContext(ctx, c, prepare.PrepareStmt)
	defer end()
	answered := false
	err := h.Handler.ComStmtExecute(ctx, c, prepare, func(r *sqltypes.Result) error {
		answered = true
		return cb(r)
	})
	if !answered && h.retryStale(c, err) {
		err = h.Handler.ComStmtExecute(ctx, c, prepare, cb)
	}
	return h.mysqlErrorFor(c, prepare.PrepareStmt, stopped(ctx, err))
}

// NewConnection announces autocommit in the handshake, as MySQL does: the
// session starts with autocommit on, and drivers (PyMySQL) trust the
// handshake's status flags to decide whether SET AUTOCOMMIT=0 is needed.
func (h errorEdge) NewConnection(c *mysql.Conn) {
	h.Handler.NewConnection(c)
	c.StatusFlags |= uint16(mysql.ServerStatusAutocommit)
	if g := guardedOf(c.Conn); g != nil {
		g.mc = c
		g.parserOptions = func() ast.ParserOptions {
			opts, _ := h.Handler.ParserOptionsForConnection(c)
			return opts
		}
	}
	h.conns.add(c)
}

// ConnectionClosed forgets a connection the client closed.
func (h errorEdge) ConnectionClosed(c *mysql.Conn) {
	if g := guardedOf(c.Conn); g != nil {
		g.forgetStatements()
	}
	h.conns.remove(c)
	h.Handler.ConnectionClosed(c)
}

// connSet holds the open client connections, so that Close can close them:
// the listener's shutdown only stops accepting, and a connection left open
// to a stopped node would answer every statement with an error instead of
// letting the client reconnect elsewhere.
type connSet struct {
	mu     sync.Mutex
	conns  map[*mysql.Conn]struct{}
	closed bool
}

func newConnSet() *connSet { return &connSet{conns: map[*mysql.Conn]struct{}{}} }

func (s *connSet) add(c *mysql.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
}

func (s *connSet) remove(c *mysql.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// closeAll closes every connection, and every later one at once.
func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.conns = map[*mysql.Conn]struct{}{}
}
