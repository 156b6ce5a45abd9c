package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
	ast "github.com/dolthub/vitess/go/vt/sqlparser"
	"github.com/dolthub/vitess/go/vt/vterrors"

	"github.com/fogdb/fogdb/sqlfront"
)

// Phases of a connection as guardedConn sees its inbound packets.
const (
	phaseHandshake = iota // until authentication succeeds
	phaseCommand          // commands, each a packet with sequence 0
)

// MySQL's error codes and SQLSTATEs the protocol guard answers with.
const (
	erHandshake          = 1043 // ER_HANDSHAKE_ERROR
	erUnknownStmtHandler = 1243 // ER_UNKNOWN_STMT_HANDLER
	erMalformedPacket    = 1835 // ER_MALFORMED_PACKET
	// ER_MAX_PREPARED_STMT_COUNT_REACHED
	erMaxPreparedStmtCount = 1461
	ssNetError             = "08S01"
	ssGeneral              = "HY000"
)

var errPacketTooLarge = errors.New("server: packet over max_allowed_packet")

// discardDeadline bounds how long a refused packet's payload is drained.
const discardDeadline = 30 * time.Second

const (
	capProtocol41 = 0x00000200
	capSSL        = 0x00000800
	// handshakeMinLen is the fixed part of a 4.1 handshake response
	// (capabilities, max packet size, character set, 23 reserved bytes).
	handshakeMinLen = 32
)

// guardedConn is a client connection under the protocol code. Its Read
// hands the protocol code at most one packet per call, so it is at a packet
// boundary exactly when the protocol code asks for the next packet: when
// that packet starts a command (sequence 0), the previous command is
// finished and the client is waiting for nothing, and a command the
// protocol code would mishandle can be answered here instead.
//
// TLS is the guard's too, so that it sees the packets of every client:
// the protocol code is given no TLS configuration, the guard offers TLS in
// the server's greeting, takes the client's SSL request and runs TLS
// itself. The protocol code never sees that request, so for the rest of
// the handshake the guard renumbers packets (one lower inbound, one
// higher outbound) until the first command; the connection is marked as
// TLS for the protocol code once it has read the handshake response
// (markTLS), which it would otherwise take for a plain one.
type guardedConn struct {
	net.Conn // the socket
	l        *mysqlListener
	br       *bufio.Reader // the client's bytes: the socket's, or TLS's once started
	mc       *mysql.Conn   // set by errorEdge.NewConnection, before the handshake

	// tlsConf is the node's TLS configuration, nil without --tls-cert; tr
	// is where the client's bytes are written: the socket, or TLS.
	tlsConf *tls.Config
	tr      io.Writer
	tlsOn   bool
	// raw reads the socket under TLS (bytes the client sent right after
	// its SSL request may already be in it).
	raw *bufio.Reader

	// shift is how much higher the client's sequence numbers are than
	// the protocol code's, until the first command: 1 after TLS started.
	shift  byte
	adjust bool // the packet being handed over is renumbered
	pktLen int  // its length, header included

	// greeted: the server's greeting was written (it is held until whole,
	// to offer TLS in it). gbuf holds it meanwhile.
	greeted bool
	gbuf    []byte
	// The outbound packet being renumbered: bytes of its payload still
	// to come, of its header seen so far, and its length.
	wLeft, wHdr, wLen int

	phase     int
	remaining int // bytes of the current packet not yet handed over

	// stmts is this connection's share of the node's prepared statements
	// (mysqlListener.stmts) as last counted.
	stmts int

	// total is the length of the logical packet being read so far; more:
	// its last packet was full, so another follows.
	total int64
	more  bool

	// usedPassword: the client logged in with a password (MySQL's
	// access errors say so).
	usedPassword bool
	// pending is a command packet served in place of the one the client
	// sent (a prepared statement's text made parseable, rewritePrepare).
	pending []byte
	// parserOptions are the session's (ANSI_QUOTES); set with mc.
	parserOptions func() ast.ParserOptions

	respSeq   byte // sequence number of the handshake response
	gotResp   bool // the handshake response was read...
	answered  bool // ...and something was written since
	closeOnce sync.Once
}

// guardedOf finds the guardedConn under a connection the protocol code
// holds (directly, or under its TLS layer).
func guardedOf(c net.Conn) *guardedConn {
	for c != nil {
		switch x := c.(type) {
		case *guardedConn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Write carries what the protocol code writes to the client.
func (g *guardedConn) Write(p []byte) (int, error) {
	g.answered = true
	switch {
	case !g.greeted:
		return g.writeGreeting(p)
	case g.shift != 0:
		return g.writeShifted(p)
	}
	return g.tr.Write(p)
}

// send writes a packet of the guard's own, numbered as the client expects.
func (g *guardedConn) send(p []byte) error {
	g.answered = true
	_, err := g.tr.Write(p)
	return err
}

// writeGreeting holds the server's greeting until it is whole, and offers
// TLS in it when the node has a certificate.
func (g *guardedConn) writeGreeting(p []byte) (int, error) {
	g.gbuf = append(g.gbuf, p...)
	if len(g.gbuf) < 4 {
		return len(p), nil
	}
	n := 4 + (int(g.gbuf[0]) | int(g.gbuf[1])<<8 | int(g.gbuf[2])<<16)
	if len(g.gbuf) < n {
		return len(p), nil
	}
	if g.tlsConf != nil {
		offerTLS(g.gbuf[4:n])
	}
	buf := g.gbuf
	g.gbuf, g.greeted = nil, true
	if _, err := g.tr.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// offerTLS sets CLIENT_SSL in a greeting's capabilities: after the
// protocol version, the server's version (NUL-terminated), the connection
// ID, the first 8 bytes of the scramble and a filler byte.
func offerTLS(body []byte) {
	if len(body) < 2 {
		return
	}
	end := bytes.IndexByte(body[1:], 0)
	if end < 0 {
		return
	}
	i := 1 + end + 1 + 4 + 8 + 1
	if i+2 <= len(body) {
		binary.LittleEndian.PutUint16(body[i:], binary.LittleEndian.Uint16(body[i:])|capSSL)
	}
}

// writeShifted writes packets of the protocol code with their sequence
// numbers raised by shift; a header may be split over writes.
func (g *guardedConn) writeShifted(p []byte) (int, error) {
	buf := append([]byte(nil), p...)
	for i := 0; i < len(buf); {
		if g.wLeft > 0 {
			n := min(g.wLeft, len(buf)-i)
			i += n
			g.wLeft -= n
			continue
		}
		if g.wHdr < 3 {
			g.wLen |= int(buf[i]) << (8 * g.wHdr)
		} else {
			buf[i] += g.shift
		}
		g.wHdr++
		i++
		if g.wHdr == 4 {
			g.wLeft, g.wLen, g.wHdr = g.wLen, 0, 0
		}
	}
	if _, err := g.tr.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close answers a handshake the protocol code gave up on without a word
// with MySQL's "Bad handshake", then closes.
func (g *guardedConn) Close() error {
	g.closeOnce.Do(func() {
		if g.phase == phaseHandshake && g.gotResp && !g.answered {
			_ = g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = g.send(errPacket(g.respSeq+1, erHandshake, ssNetError, "Bad handshake"))
		}
		g.l.open.Add(-1)
	})
	return g.Conn.Close()
}

// markTLS tells the protocol code that the connection under c is
// encrypted: its own TLS flag was never set, as the guard runs TLS.
func markTLS(c *mysql.Conn) {
	if g := guardedOf(c.Conn); g != nil && g.tlsOn {
		c.Capabilities |= mysql.CapabilityClientSSL
	}
}

// authenticated is called once the client's credentials are accepted. A
// connection admitted past max_connections stays only for an
// administrator. connect_timeout no longer applies from here on.
func (g *guardedConn) authenticated(admin func() bool) error {
	if g.l.open.Load() > maxConnections() && !admin() {
		return tooManyConnections()
	}
	if err := g.Conn.SetDeadline(time.Time{}); err != nil {
		return err
	}
	if g.phase == phaseHandshake {
		g.phase = phaseCommand
	}
	return nil
}

func (g *guardedConn) Read(p []byte) (int, error) {
	if g.remaining == 0 && g.phase == phaseCommand {
		// The previous command is done: COM_STMT_CLOSE answers nothing,
		// so here is where the statements it closed are noticed.
		g.countStatements()
	}
	for g.remaining == 0 {
		hdr, err := g.br.Peek(4)
		if err != nil {
			if len(hdr) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		length := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		seq := hdr[3]
		if !g.more {
			g.total = 0
		}
		g.total += int64(length)
		g.more = length == mysql.MaxPacketSize
		if g.total > globalMaxAllowedPacket() {
			return 0, g.refuseLarge(length, seq)
		}
		switch {
		case g.phase == phaseHandshake && !g.gotResp:
			g.gotResp, g.answered, g.respSeq = true, false, seq
			startTLS, err := g.checkHandshake(length)
			if err != nil {
				return 0, err
			}
			if startTLS {
				if err := g.startTLS(length); err != nil {
					return 0, err
				}
				continue
			}
		case g.phase == phaseCommand && seq == 0:
			// The handshake is over: from here on the protocol code
			// numbers packets as the client does.
			g.shift = 0
			reply, fatal, err := g.checkCommand(length)
			if err != nil {
				return 0, err
			}
			if reply != nil {
				if _, err := g.br.Discard(4 + length); err != nil {
					return 0, err
				}
				if err := g.send(reply); err != nil {
					return 0, err
				}
				if fatal {
					return 0, io.EOF
				}
				continue
			}
			if pkt, reply, err := g.rewritePrepare(length); err != nil {
				return 0, err
			} else if reply != nil {
				if err := g.send(reply); err != nil {
					return 0, err
				}
				continue
			} else if pkt != nil {
				g.pending, g.remaining = pkt, len(pkt)
				continue
			}
		}
		g.remaining, g.pktLen = 4+length, 4+length
		g.adjust = g.phase == phaseHandshake && g.shift != 0
	}
	if g.pending != nil {
		n := copy(p[:min(len(p), g.remaining)], g.pending)
		g.pending = g.pending[n:]
		g.remaining -= n
		if len(g.pending) == 0 {
			g.pending = nil
		}
		return n, nil
	}
	if len(p) > g.remaining {
		p = p[:g.remaining]
	}
	n, err := g.br.Read(p)
	if off := g.pktLen - g.remaining; g.adjust && off <= 3 && off+n > 3 {
		p[3-off] -= g.shift
	}
	g.remaining -= n
	return n, err
}

// startTLS takes the client's SSL request (a packet of length bytes, not
// yet read) and runs TLS's handshake, within connect_timeout like the rest
// of the handshake. The handshake response then comes again, over TLS.
func (g *guardedConn) startTLS(length int) error {
	if _, err := g.br.Discard(4 + length); err != nil {
		return err
	}
	g.raw = g.br
	tc := tls.Server(&readerConn{Conn: g.Conn, r: g.raw}, g.tlsConf)
	if err := tc.Handshake(); err != nil {
		// Nothing more can be said to this client.
		g.answered = true
		return err
	}
	g.tlsOn, g.tr = true, tc
	g.br = bufio.NewReaderSize(tc, 1024)
	g.shift = 1
	g.gotResp = false
	return nil
}

// readerConn is a socket read through a buffer that may already hold
// some of its bytes.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// rewritePrepare reads a COM_STMT_PREPARE packet whole and returns the
// packet to hand the protocol code instead, or the error to answer it
// with. The protocol code parses a prepared statement with the engine's
// parser directly, before any handler sees it, so the statement gets
// here what every other statement gets from the engine's parser
// (sqlfront.DialectText): names MySQL takes unquoted that the parser
// reads as keywords quoted (INSERT INTO v (encryption_key_id) VALUES
// (?)), FOR SHARE spelled as the parser knows it, and a syntax error
// answered with MySQL's 1064 rather than the protocol code's 1105. A
// statement in packets of 16 MiB or more passes unchanged.
func (g *guardedConn) rewritePrepare(length int) (pkt, reply []byte, err error) {
	if g.more || length < 2 || g.parserOptions == nil {
		return nil, nil, nil
	}
	head, err := g.br.Peek(5)
	if err != nil || head[4] != mysql.ComPrepare {
		return nil, nil, err
	}
	pkt = make([]byte, 4+length)
	if _, err := io.ReadFull(g.br, pkt); err != nil {
		return nil, nil, err
	}
	query := string(pkt[5:])
	text, perr := sqlfront.DialectText(sqlfront.RewriteQuery(query), g.parserOptions())
	if perr != nil {
		if _, ok := vterrors.AsSyntaxError(perr); ok {
			se := mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "%s", perr.Error())
			translate(se, errEnv{query: query})
			return nil, errPacket(1, uint16(se.Num), se.State, cutBytes(se.Message, errMsgMaxBytes)), nil
		}
		return pkt, nil, nil
	}
	if text == query {
		return pkt, nil, nil
	}
	return packet(0, append([]byte{mysql.ComPrepare}, text...)), nil, nil
}

// globalMaxAllowedPacket is the largest packet a client may send. The
// session value is read-only in MySQL 8, so the global one decides.
func globalMaxAllowedPacket() int64 {
	_, v, ok := sql.SystemVariables.GetGlobal("max_allowed_packet")
	if ok {
		switch n := v.(type) {
		case int64:
			return n
		case uint64:
			return int64(n)
		}
	}
	return sqlfront.DefaultMaxAllowedPacket
}

// refuseLarge refuses the logical packet whose header (of a payload of
// length bytes, sequence seq) took it over max_allowed_packet, before the
// protocol code reads any of it, so the node never holds it: the rest of
// the packet is read and dropped, so that a client still writing it is not
// reset and reads MySQL's 1153, and the connection ends, as in MySQL.
func (g *guardedConn) refuseLarge(length int, seq byte) error {
	_ = g.Conn.SetReadDeadline(time.Now().Add(discardDeadline))
	if _, err := g.br.Discard(4 + length); err != nil {
		return errPacketTooLarge
	}
	for g.more {
		hdr, err := g.br.Peek(4)
		if err != nil {
			return errPacketTooLarge
		}
		length = int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		seq = hdr[3]
		g.more = length == mysql.MaxPacketSize
		if _, err := g.br.Discard(4 + length); err != nil {
			return errPacketTooLarge
		}
	}
	_ = g.Conn.SetWriteDeadline(time.Now().Add(discardDeadline))
	_ = g.send(errPacket(seq+1, mysql.ERNetPacketTooLarge, ssNetError,
		"Got a packet bigger than 'max_allowed_packet' bytes"))
	return errPacketTooLarge
}

// checkHandshake refuses a handshake response too short to be one, or of
// the pre-4.1 protocol, as MySQL 8 does; the protocol code would drop the
// client without a word. It tells an SSL request (TLS starts) apart.
func (g *guardedConn) checkHandshake(length int) (startTLS bool, err error) {
	head, _ := g.br.Peek(4 + min(length, 4))
	var caps uint32
	if len(head) >= 8 {
		caps = binary.LittleEndian.Uint32(head[4:8])
	}
	ssl := length == handshakeMinLen && caps&capSSL != 0
	if length < handshakeMinLen || caps&capProtocol41 == 0 || (ssl && (g.tlsConf == nil || g.tlsOn)) {
		_ = g.send(errPacket(g.respSeq+1, erHandshake, ssNetError, "Bad handshake"))
		return false, io.EOF
	}
	return ssl, nil
}

// commands the protocol code handles. Every other command byte is one MySQL
// does not know (or, for the replication protocol, one fogdb does not
// serve), answered with ER_UNKNOWN_COM_ERROR as MySQL does.
var handledCommands = map[byte]bool{
	mysql.ComQuit: true, mysql.ComInitDB: true, mysql.ComQuery: true, mysql.ComFieldList: true,
	mysql.ComPing: true, mysql.ComPrepare: true, mysql.ComStmtExecute: true,
	mysql.ComStmtSendLongData: true, mysql.ComStmtClose: true, mysql.ComStmtReset: true,
	mysql.ComSetOption: true, mysql.ComStmtFetch: true, mysql.ComResetConnection: true,
	0x07: true, // COM_REFRESH
	0x08: true, // COM_SHUTDOWN
	0x09: true, // COM_STATISTICS
	0x0a: true, // COM_PROCESS_INFO
	0x0c: true, // COM_PROCESS_KILL
	0x0d: true, // COM_DEBUG
	0x11: true, // COM_CHANGE_USER
}

// checkCommand looks at a command packet before the protocol code does and
// returns the reply for one it would mishandle (and whether MySQL would
// close the connection after it).
func (g *guardedConn) checkCommand(length int) (reply []byte, fatal bool, err error) {
	if length == 0 {
		// MySQL reads an empty packet as COM_SLEEP, which no client may send.
		return unknownCommand(), false, nil
	}
	head, err := g.br.Peek(4 + min(length, 5))
	if err != nil {
		return nil, false, err
	}
	cmd := head[4]
	if !handledCommands[cmd] {
		return unknownCommand(), false, nil
	}
	var fn string
	switch cmd {
	case mysql.ComStmtReset:
		fn = "mysqld_stmt_reset"
	case mysql.ComStmtExecute:
		fn = "mysqld_stmt_execute"
	case mysql.ComStmtFetch:
		fn = "mysqld_stmt_fetch"
	default:
		return nil, false, nil
	}
	if length < 5 {
		return errPacket(1, erMalformedPacket, ssGeneral, "Malformed communication packet."), false, nil
	}
	id := binary.LittleEndian.Uint32(head[5:9])
	if g.mc == nil {
		return nil, false, nil
	}
	if _, ok := g.mc.PrepareData[id]; ok {
		return nil, false, nil
	}
	return errPacket(1, erUnknownStmtHandler, ssGeneral,
		fmt.Sprintf("Unknown prepared statement handler (%d) given to %s", id, fn)), false, nil
}

func unknownCommand() []byte {
	return errPacket(1, mysql.ERUnknownComError, ssNetError, "Unknown command")
}

// countStatements brings the node's count of prepared statements up to date
// with this connection's. It runs on the connection's goroutine, the only
// one that changes the protocol code's statement map.
func (g *guardedConn) countStatements() {
	n := 0
	if g.mc != nil {
		n = len(g.mc.PrepareData)
	}
	g.l.stmts.Add(int64(n - g.stmts))
	g.stmts = n
}

// admitStatement counts the statement being prepared (already in the
// protocol code's map) against max_prepared_stmt_count, and takes it out of
// the map when it is one too many.
func (g *guardedConn) admitStatement(id uint32) error {
	if g.mc == nil {
		return nil
	}
	p := g.mc.PrepareData[id]
	delete(g.mc.PrepareData, id)
	g.countStatements()
	limit := globalInt("max_prepared_stmt_count", 16382)
	if g.l.stmts.Add(1) > limit {
		g.l.stmts.Add(-1)
		return mysql.NewSQLError(erMaxPreparedStmtCount, "42000",
			"Can't create more than max_prepared_stmt_count statements (current value: %d)", limit)
	}
	g.mc.PrepareData[id] = p
	g.stmts++
	return nil
}

// forgetStatements gives a closing connection's statements back.
func (g *guardedConn) forgetStatements() {
	g.l.stmts.Add(int64(-g.stmts))
	g.stmts = 0
}
