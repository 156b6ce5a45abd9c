package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/mysql_db"
	"github.com/dolthub/vitess/go/mysql"
)

// The MySQL listener is wrapped twice. mysqlListener sits under the
// engine's accept loop, which returns for good on its first error: it
// retries failed accepts (running out of file descriptors is the usual
// one) and enforces max_connections. guardedConn sits under each
// connection: it runs TLS, applies connect_timeout to the handshake, and
// answers the malformed packets the protocol code cannot parse with
// MySQL's errors before they reach it.

// Accept backs off from 5 ms, doubling up to a second, as net/http does.
const (
	acceptMinDelay = 5 * time.Millisecond
	acceptMaxDelay = time.Second
	// acceptLogEvery spaces the log lines of one streak of failed accepts.
	acceptLogEvery = 10 * time.Second
)

// globalInt is a global system variable's current value.
func globalInt(name string, def int64) int64 {
	_, v, ok := sql.SystemVariables.GetGlobal(name)
	if !ok {
		return def
	}
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case uint64:
		return int64(n)
	case int32:
		return int64(n)
	}
	return def
}

// maxConnections and connectTimeout are read at every connection, so SET
// GLOBAL takes effect for the next client.
func maxConnections() int64 { return globalInt("max_connections", 151) }
func connectTimeout() time.Duration {
	return time.Duration(globalInt("connect_timeout", 10)) * time.Second
}

type mysqlListener struct {
	net.Listener
	log *slog.Logger
	// tlsConf is the clients' TLS, run by each connection's guard; nil
	// without --tls-cert.
	tlsConf *tls.Config
	open    atomic.Int64 // connections accepted and not yet closed
	// stmts counts the prepared statements of all connections, against
	// max_prepared_stmt_count.
	stmts atomic.Int64
	done  chan struct{}
	once  sync.Once

	mu          sync.Mutex
	failErr     error // the last accept error of the current streak; nil while accepting
	failSince   time.Time
	failCount   int
	failLogged  time.Time
	loopStopped bool // the accept loop above returned while the listener was open
}

func newMySQLListener(ln net.Listener, log *slog.Logger, tlsConf *tls.Config) *mysqlListener {
	return &mysqlListener{Listener: ln, log: log, tlsConf: tlsConf, done: make(chan struct{})}
}

// Accept returns the next admitted connection. It returns an error only
// once the listener is closed: every other failure is retried.
func (l *mysqlListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, err
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			delay = min(max(2*delay, acceptMinDelay), acceptMaxDelay)
			l.acceptFailed(err, delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		l.acceptOK()
		if g := l.admit(c); g != nil {
			return g, nil
		}
	}
}

func (l *mysqlListener) acceptFailed(err error, delay time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.failErr == nil {
		l.failSince = now
		l.failCount = 0
		l.failLogged = time.Time{}
	}
	l.failErr = err
	l.failCount++
	if now.Sub(l.failLogged) >= acceptLogEvery {
		l.failLogged = now
		l.log.Error("MySQL listener cannot accept connections; retrying", "err", err,
			"failures", l.failCount, "since", l.failSince.Format(time.RFC3339Nano), "retry_in", delay,
			"open_connections", l.open.Load())
	}
}

func (l *mysqlListener) acceptOK() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failErr == nil {
		return
	}
	l.log.Warn("MySQL listener accepting connections again", "failures", l.failCount,
		"failing_for", time.Since(l.failSince).Round(time.Millisecond), "last_err", l.failErr)
	l.failErr = nil
}

// problem describes why the listener is not serving ("" when it is).
func (l *mysqlListener) problem() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loopStopped {
		return "MySQL accept loop stopped"
	}
	if l.failErr != nil {
		return fmt.Sprintf("MySQL listener failing to accept since %s (%d failures): %v",
			l.failSince.Format(time.RFC3339), l.failCount, l.failErr)
	}
	return ""
}

// loopReturned records that the engine's accept loop ended; unless the
// listener was closed on purpose, the node no longer serves clients.
func (l *mysqlListener) loopReturned() {
	select {
	case <-l.done:
		return
	default:
	}
	l.mu.Lock()
	l.loopStopped = true
	l.mu.Unlock()
	l.log.Error("MySQL accept loop stopped; no new clients are served")
}

func (l *mysqlListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// admit counts a new connection against max_connections. MySQL lets one
// connection past the limit through the door, for an administrator;
// authentication then refuses it to everyone else (guardedConn.authenticated).
// Beyond that, the client gets "Too many connections" in place of the
// server's greeting.
func (l *mysqlListener) admit(c net.Conn) net.Conn {
	n := l.open.Add(1)
	if n > maxConnections()+1 {
		l.open.Add(-1)
		go refuseTooMany(c)
		return nil
	}
	g := &guardedConn{Conn: c, l: l, br: bufio.NewReaderSize(c, 1024), tr: c, tlsConf: l.tlsConf}
	if t := connectTimeout(); t > 0 {
		_ = c.SetDeadline(time.Now().Add(t))
	}
	return g
}

// refuseTooMany answers a connection over the limit as MySQL does: an error
// packet in place of the greeting, in the pre-4.1 format (no SQLSTATE)
// because no capabilities have been agreed yet.
func refuseTooMany(c net.Conn) {
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	msg := "Too many connections"
	body := binary.LittleEndian.AppendUint16([]byte{0xff}, mysql.ERConCount)
	body = append(body, msg...)
	_, _ = c.Write(packet(0, body))
}

// packet frames one MySQL packet.
func packet(seq byte, body []byte) []byte {
	out := make([]byte, 4, 4+len(body))
	out[0], out[1], out[2], out[3] = byte(len(body)), byte(len(body)>>8), byte(len(body)>>16), seq
	return append(out, body...)
}

// errPacket is a 4.1 error packet.
func errPacket(seq byte, code uint16, state, msg string) []byte {
	body := binary.LittleEndian.AppendUint16([]byte{0xff}, code)
	body = append(body, '#')
	body = append(body, state...)
	body = append(body, msg...)
	return packet(seq, body)
}

// tooManyConnections is ER_CON_COUNT_ERROR after authentication.
func tooManyConnections() error {
	return mysql.NewSQLError(mysql.ERConCount, "08004", "Too many connections")
}

// admissionAuth hooks the end of authentication, where MySQL checks the
// connection left over for an administrator and where connect_timeout ends.
type admissionAuth struct {
	mysql.AuthServer
	db      *mysql_db.MySQLDb
	onLogin func(*mysql.Conn, sql.MysqlConnectionUser)
	// tlsRequirement is the ssl_type of an account (user and the
	// account's host pattern): "" when it may log in without TLS.
	tlsRequirement func(ctx context.Context, user, host string) (string, error)
}

func (a admissionAuth) AuthMethods() []mysql.AuthMethod {
	ms := a.AuthServer.AuthMethods()
	out := make([]mysql.AuthMethod, len(ms))
	for i, m := range ms {
		out[i] = admissionMethod{AuthMethod: m, a: a}
	}
	return out
}

type admissionMethod struct {
	mysql.AuthMethod
	a admissionAuth
}

func (m admissionMethod) HandleAuthPluginData(c *mysql.Conn, user string, serverData, clientData []byte, addr net.Addr) (mysql.Getter, error) {
	who, err := m.AuthMethod.HandleAuthPluginData(c, user, serverData, clientData, addr)
	if err != nil {
		return who, err
	}
	if !c.TLSEnabled() {
		if err := m.a.checkTLSRequirement(who, addr, len(clientData) > 0); err != nil {
			return nil, err
		}
	}
	if g := guardedOf(c.Conn); g != nil {
		// An empty password is an empty answer to the scramble (or a
		// lone NUL in clear text).
		g.usedPassword = len(clientData) > 0 && !(len(clientData) == 1 && clientData[0] == 0)
		if err := g.authenticated(func() bool { return isConnectionAdmin(m.a.db, who) }); err != nil {
			return who, err
		}
	}
	if cu, ok := who.(sql.MysqlConnectionUser); ok && m.a.onLogin != nil {
		m.a.onLogin(c, cu)
	}
	return who, nil
}

// checkTLSRequirement refuses a login in clear to an account created with
// REQUIRE SSL (or X509...), as MySQL does: access denied, 1045, whatever
// the password. A requirement that cannot be read refuses the login too.
func (a admissionAuth) checkTLSRequirement(who mysql.Getter, client net.Addr, usedPassword bool) error {
	cu, ok := who.(sql.MysqlConnectionUser)
	if !ok || a.db == nil || a.tlsRequirement == nil {
		return nil
	}
	rd := a.db.Reader()
	u := a.db.GetUser(rd, cu.User, cu.Host, false)
	var user, host string
	if u != nil {
		user, host = u.User, u.Host
	}
	rd.Close()
	if u == nil {
		return nil
	}
	req, err := a.tlsRequirement(context.Background(), user, host)
	if err == nil && req == "" {
		return nil
	}
	using := "NO"
	if usedPassword {
		using = "YES"
	}
	// MySQL names the client's host, not the account's pattern.
	clientHost := cu.Host
	if client != nil {
		if h, _, err := net.SplitHostPort(client.String()); err == nil {
			clientHost = h
		}
	}
	return mysql.NewSQLError(mysql.ERAccessDeniedError, mysql.SSAccessDeniedError,
		"Access denied for user '%s'@'%s' (using password: %s)", cu.User, clientHost, using)
}

// isConnectionAdmin: SUPER or CONNECTION_ADMIN, the privileges MySQL lets
// use the connection kept for administrators.
func isConnectionAdmin(db *mysql_db.MySQLDb, who mysql.Getter) bool {
	cu, ok := who.(sql.MysqlConnectionUser)
	if !ok || db == nil {
		return false
	}
	rd := db.Reader()
	defer rd.Close()
	u := db.GetUser(rd, cu.User, cu.Host, false)
	if u == nil {
		return false
	}
	return u.PrivilegeSet.Has(sql.PrivilegeType_Super) || u.PrivilegeSet.HasDynamic("connection_admin")
}
