package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/pki"
	"github.com/fogdb/fogdb/server"
)

// The connection guard (malformed commands, packets over
// max_allowed_packet, prepared statement counts, bad handshakes,
// connect_timeout) applies to clients that use TLS as to the others.

const (
	capProtocol41       = 0x00000200
	capSSL              = 0x00000800
	capSecureConnection = 0x00008000
	capPluginAuth       = 0x00080000
)

// startTLSNode starts a node with a certificate for 127.0.0.1 and returns
// it with the TLS configuration of a client that trusts it.
func startTLSNode(t *testing.T, edit func(*server.Config)) (*server.Server, *sql.DB, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, 0))
	require.NoError(t, pki.Issue(dir, "mysql", []string{"127.0.0.1"}, 0))
	srv, db := startNodeWith(t, func(c *server.Config) {
		c.TLSCert = filepath.Join(dir, "mysql.crt")
		c.TLSKey = filepath.Join(dir, "mysql.key")
		if edit != nil {
			edit(c)
		}
	})
	b, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(b))
	return srv, db, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// startTLS reads the greeting, which must offer TLS, asks for TLS and
// returns the connection over it: the rest of the handshake is the
// caller's, from sequence number 2.
func (c *rawConn) startTLS(t *testing.T, cfg *tls.Config) *rawConn {
	t.Helper()
	g, err := c.readPacket()
	require.NoError(t, err, "server greeting")
	version := 1 + strings.IndexByte(string(g[1:]), 0) + 1
	caps := binary.LittleEndian.Uint16(g[version+4+8+1:])
	require.NotZero(t, caps&capSSL, "the greeting does not offer TLS")
	req := binary.LittleEndian.AppendUint32(nil, capProtocol41|capSecureConnection|capPluginAuth|capSSL)
	req = binary.LittleEndian.AppendUint32(req, 1<<24)
	req = append(req, 33)
	req = append(req, make([]byte, 23)...)
	require.NoError(t, c.writePacket(1, req))
	tc := tls.Client(c.Conn, cfg)
	require.NoError(t, tc.Handshake())
	return &rawConn{tc}
}

// loginTLS logs in as root (no password) over TLS.
func (c *rawConn) loginTLS(t *testing.T, cfg *tls.Config) *rawConn {
	t.Helper()
	tc := c.startTLS(t, cfg)
	resp := binary.LittleEndian.AppendUint32(nil, capProtocol41|capSecureConnection|capPluginAuth|capSSL)
	resp = binary.LittleEndian.AppendUint32(resp, 1<<24)
	resp = append(resp, 33)
	resp = append(resp, make([]byte, 23)...)
	resp = append(resp, "root\x00"...)
	resp = append(resp, 0)
	resp = append(resp, "mysql_native_password\x00"...)
	require.NoError(t, tc.writePacket(2, resp))
	seq := byte(3)
	for {
		var hdr [4]byte
		_, err := io.ReadFull(tc, hdr[:])
		require.NoError(t, err, "login")
		require.Equal(t, seq, hdr[3], "sequence number of the server's answer")
		p := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
		_, err = io.ReadFull(tc, p)
		require.NoError(t, err)
		switch p[0] {
		case 0x00:
			return tc
		case 0xfe:
			require.NoError(t, tc.writePacket(seq+1, nil))
			seq += 2
		default:
			t.Fatalf("login refused: %q", p)
		}
	}
}

func TestGuardOverTLS(t *testing.T) {
	srv, db, cfg := startTLSNode(t, nil)

	t.Run("malformed commands", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			payload []byte
			code    uint16
			msg     string
		}{
			{"empty packet", []byte{}, 1047, "Unknown command"},
			{"COM_REGISTER_REPLICA", []byte{0x15, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1047, "Unknown command"},
			{"COM_STMT_RESET of an unknown statement", []byte{0x1a, 7, 0, 0, 0}, 1243, "Unknown prepared statement handler (7) given to mysqld_stmt_reset"},
			{"COM_STMT_EXECUTE of an unknown statement", []byte{0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0}, 1243, "Unknown prepared statement handler (9) given to mysqld_stmt_execute"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := dialRaw(t, srv).loginTLS(t, cfg)
				require.NoError(t, c.writePacket(0, tc.payload))
				p, err := c.readPacket()
				require.NoError(t, err, "the server dropped the connection instead of answering")
				code, _, msg := rawErr(t, p)
				require.Equal(t, tc.code, code, "%s", msg)
				require.Equal(t, tc.msg, msg)
				require.NoError(t, c.writePacket(0, []byte{0x0e}))
				p, err = c.readPacket()
				require.NoError(t, err, "ping after the error")
				require.Equal(t, byte(0x00), p[0], "ping after the error: %q", p)
			})
		}
	})

	t.Run("handshake response too short", func(t *testing.T) {
		c := dialRaw(t, srv).startTLS(t, cfg)
		require.NoError(t, c.writePacket(2, append([]byte{0x00, 0x8a, 0x00, 0x00}, make([]byte, 27)...)))
		var hdr [4]byte
		_, err := io.ReadFull(c, hdr[:])
		require.NoError(t, err, "the server dropped the connection without an error")
		require.Equal(t, byte(3), hdr[3])
		p := make([]byte, int(hdr[0]))
		_, err = io.ReadFull(c, p)
		require.NoError(t, err)
		code, state, msg := rawErr(t, p)
		require.Equal(t, uint16(1043), code, "%s", msg)
		require.Equal(t, "08S01", state)
		_, err = c.readPacket()
		require.Error(t, err, "the connection stays open after a bad handshake")
	})

	t.Run("packet over max_allowed_packet", func(t *testing.T) {
		mustExec(t, db, "SET GLOBAL max_allowed_packet = 1048576")
		t.Cleanup(func() { _, _ = db.Exec("SET GLOBAL max_allowed_packet = DEFAULT") })
		c := dialRaw(t, srv).loginTLS(t, cfg)
		const size = 8 << 20
		query := append([]byte{0x03}, "SELECT '"+strings.Repeat("x", size)+"'"...)
		packet := append([]byte{byte(len(query)), byte(len(query) >> 8), byte(len(query) >> 16), 0}, query...)
		var p []byte
		var err error
		alloc := allocatedDuring(func() {
			// The node refuses from the header: it may stop reading
			// before the client is done writing.
			go func() { _, _ = c.Write(packet) }()
			p, err = c.readPacket()
		})
		require.NoError(t, err)
		code, state, msg := rawErr(t, p)
		require.Equal(t, uint16(1153), code, "%s", msg)
		require.Equal(t, "08S01", state)
		require.Less(t, alloc, uint64(size), "the node read the packet whole")
		require.EqualValues(t, 1, queryInt(t, db, "SELECT 1"))
	})

	t.Run("max_prepared_stmt_count", func(t *testing.T) {
		restoreGlobals(t)
		mustExec(t, db, "SET GLOBAL max_prepared_stmt_count = 2")
		name := fmt.Sprintf("guard-%d", time.Now().UnixNano())
		require.NoError(t, mysql.RegisterTLSConfig(name, cfg))
		t.Cleanup(func() { mysql.DeregisterTLSConfig(name) })
		tdb := openDSN(t, dsn(srv, "")+"&tls="+name)
		c := clientConn(t, tdb)
		s1, err := c.PrepareContext(context.Background(), "SELECT 1")
		require.NoError(t, err)
		_, err = c.PrepareContext(context.Background(), "SELECT 2")
		require.NoError(t, err)
		_, err = c.PrepareContext(context.Background(), "SELECT 3")
		requireMySQLError(t, err, 1461, "42000")
		require.NoError(t, s1.Close())
		prepareEventually(t, c, "SELECT 3")
	})

	// Prepared statements over TLS are read as text statements are: a
	// word MySQL does not reserve names a column, and a syntax error is
	// 1064.
	t.Run("prepared dialect", func(t *testing.T) {
		restoreGlobals(t)
		name := fmt.Sprintf("guard-%d", time.Now().UnixNano())
		require.NoError(t, mysql.RegisterTLSConfig(name, cfg))
		t.Cleanup(func() { mysql.DeregisterTLSConfig(name) })
		tdb := openDSN(t, dsn(srv, "")+"&tls="+name)
		mustExec(t, tdb, "CREATE DATABASE IF NOT EXISTS tlsdialect")
		mustExec(t, tdb, "CREATE TABLE IF NOT EXISTS tlsdialect.v (id INT PRIMARY KEY, encryption_key_id INT)")
		_, err := tdb.Exec("INSERT INTO tlsdialect.v (id, encryption_key_id) VALUES (?, ?)", 1, 2)
		require.NoError(t, err)
		var n int
		require.NoError(t, tdb.QueryRow("SELECT encryption_key_id FROM tlsdialect.v WHERE id = ?", 1).Scan(&n))
		require.Equal(t, 2, n)
		_, err = tdb.Exec("SELEC encryption_key_id FROM tlsdialect.v WHERE id = ?", 1)
		requireMySQLError(t, err, 1064, "42000")
	})
}

// A client that starts TLS and then says nothing is closed after
// connect_timeout, as a plain one is.
func TestConnectTimeoutOverTLS(t *testing.T) {
	restoreGlobals(t)
	srv, _, cfg := startTLSNode(t, func(c *server.Config) { c.ConnectTimeout = 2 * time.Second })
	c := dialRaw(t, srv).startTLS(t, cfg)
	_ = c.SetReadDeadline(time.Now().Add(patience))
	_, err := c.readPacket()
	require.Error(t, err, "a client that never logged in must be disconnected after connect_timeout")
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded)
	awaitConnections(t, srv, 0)
}
