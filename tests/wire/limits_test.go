package wire

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gmssql "github.com/dolthub/go-mysql-server/sql"
	"github.com/fogdb/fogdb/internal/freeport"
	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
)

// startNodeWith starts a node as startNode does, with its configuration
// changed by edit first.
func startNodeWith(t testing.TB, edit func(*server.Config)) (*server.Server, *sql.DB) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.Cluster.PeerAddr = "127.0.0.1:0"
	edit(&cfg)
	srv, err := server.New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	db, err := sql.Open("mysql", dsn(srv, ""))
	require.NoError(t, err)
	t.Cleanup(func() {
		db.Close()
		srv.Close()
	})
	return srv, db
}

// restoreGlobals puts MySQL's defaults back after a test changed them: the
// engine's global variables are shared by every node of the process.
func restoreGlobals(t *testing.T) {
	t.Cleanup(func() {
		for name, v := range map[string]int64{"max_connections": 151, "connect_timeout": 10, "max_prepared_stmt_count": 16382} {
			require.NoError(t, gmssql.SystemVariables.SetGlobal(gmssql.NewEmptyContext(), name, v))
		}
	})
}

// awaitConnections waits until the node counts n open client connections.
func awaitConnections(t *testing.T, srv *server.Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for srv.MySQLConnections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("open connections: %d, want %d", srv.MySQLConnections(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openOne opens one connection of its own with the given DSN.
func openOne(t *testing.T, dsn string) (*sql.Conn, error) {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	db.SetMaxIdleConns(0)
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	c, err := db.Conn(ctx)
	if err == nil {
		t.Cleanup(func() { c.Close() })
		err = c.PingContext(ctx)
	}
	return c, err
}

// max_connections counts every open connection; one more is let in for an
// administrator (root here), and beyond that every client gets 1040.
func TestMaxConnections(t *testing.T) {
	restoreGlobals(t)
	srv, root := startNodeWith(t, func(c *server.Config) { c.MaxConnections = 3 })
	mustExec(t, root, "CREATE USER app@'%' IDENTIFIED BY 'pw'")
	mustExec(t, root, "GRANT SELECT ON *.* TO app@'%'")
	require.NoError(t, root.Close())
	awaitConnections(t, srv, 0)

	appDSN := fmt.Sprintf("app:pw@tcp(%s)/", srv.MySQLAddr())
	rootDSN := dsn(srv, "")
	var held []*sql.Conn
	for i := 0; i < 3; i++ {
		c, err := openOne(t, appDSN)
		require.NoError(t, err, "connection %d of 3", i+1)
		held = append(held, c)
	}
	awaitConnections(t, srv, 3)

	_, err := openOne(t, appDSN)
	requireMySQLError(t, err, 1040, "08004", "a fourth connection for a user without CONNECTION_ADMIN")
	require.Equal(t, "Too many connections", asMySQL(err).Message)
	awaitConnections(t, srv, 3)

	admin, err := openOne(t, rootDSN)
	require.NoError(t, err, "the connection kept for an administrator")
	awaitConnections(t, srv, 4)

	_, err = openOne(t, rootDSN)
	require.True(t, isMySQLError(err, 1040), "past the administrator's connection: %v", err)
	awaitConnections(t, srv, 4)

	// SET GLOBAL applies to the next connection.
	mustExec(t, admin, "SET GLOBAL max_connections = 5")
	require.EqualValues(t, 5, queryInt(t, admin, "SELECT @@GLOBAL.max_connections"))
	_, err = openOne(t, appDSN)
	require.NoError(t, err, "after raising max_connections")

	// Connections that close make room again.
	mustExec(t, admin, "SET GLOBAL max_connections = 3")
	for _, c := range held {
		require.NoError(t, c.Close())
	}
	awaitConnections(t, srv, 2)
	_, err = openOne(t, appDSN)
	require.NoError(t, err, "after connections closed")
}

// A client that connects and never logs in is closed after connect_timeout;
// a logged-in client is not.
func TestConnectTimeout(t *testing.T) {
	restoreGlobals(t)
	srv, db := startNodeWith(t, func(c *server.Config) { c.ConnectTimeout = 2 * time.Second })
	require.EqualValues(t, 2, queryInt(t, db, "SELECT @@GLOBAL.connect_timeout"))

	loggedIn := dialRaw(t, srv)
	loggedIn.login(t)
	silent := dialRaw(t, srv)
	_, err := silent.readPacket()
	require.NoError(t, err, "server greeting")
	_ = silent.SetReadDeadline(time.Now().Add(patience))
	_, err = silent.readPacket()
	require.ErrorIs(t, err, io.EOF, "a client that never logged in must be disconnected after connect_timeout")

	// The logged-in client has been idle past connect_timeout too.
	require.NoError(t, loggedIn.writePacket(0, []byte{0x0e}))
	p, err := loggedIn.readPacket()
	require.NoError(t, err)
	require.Equal(t, byte(0x00), p[0], "ping after connect_timeout: %q", p)

	// SET GLOBAL changes it for the next client.
	mustExec(t, db, "SET GLOBAL connect_timeout = 3")
	require.EqualValues(t, 3, queryInt(t, db, "SELECT @@GLOBAL.connect_timeout"))
}

// rawErr is a MySQL error packet's code, SQLSTATE and message.
func rawErr(t *testing.T, p []byte) (uint16, string, string) {
	t.Helper()
	require.True(t, len(p) >= 3 && p[0] == 0xff, "want an error packet, got %q", p)
	code := binary.LittleEndian.Uint16(p[1:3])
	rest := string(p[3:])
	if strings.HasPrefix(rest, "#") && len(rest) >= 6 {
		return code, rest[1:6], rest[6:]
	}
	return code, "", rest
}

// Malformed packets get MySQL's answer: an error, and the connection kept
// where MySQL keeps it.
func TestMalformedPacketErrors(t *testing.T) {
	srv, db := startNode(t)

	for _, tc := range []struct {
		name    string
		payload []byte
		code    uint16
		state   string
		msg     string
	}{
		{"empty packet", []byte{}, 1047, "08S01", "Unknown command"},
		{"COM_SLEEP", []byte{0x00}, 1047, "08S01", "Unknown command"},
		{"COM_REGISTER_REPLICA", []byte{0x15, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1047, "08S01", "Unknown command"},
		{"COM_BINLOG_DUMP", []byte{0x12, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 1047, "08S01", "Unknown command"},
		{"COM_BINLOG_DUMP_GTID", []byte{0x1e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1047, "08S01", "Unknown command"},
		{"unknown command byte", []byte{0x7f, 1, 2}, 1047, "08S01", "Unknown command"},
		{"COM_STMT_RESET of an unknown statement", []byte{0x1a, 7, 0, 0, 0}, 1243, "HY000", "Unknown prepared statement handler (7) given to mysqld_stmt_reset"},
		{"COM_STMT_RESET truncated", []byte{0x1a, 7}, 1835, "HY000", "Malformed communication packet."},
		{"COM_STMT_EXECUTE of an unknown statement", []byte{0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0}, 1243, "HY000", "Unknown prepared statement handler (9) given to mysqld_stmt_execute"},
		{"COM_STMT_FETCH of an unknown statement", []byte{0x1c, 9, 0, 0, 0, 1, 0, 0, 0}, 1243, "HY000", "Unknown prepared statement handler (9) given to mysqld_stmt_fetch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, srv)
			rc.login(t)
			require.NoError(t, rc.writePacket(0, tc.payload))
			p, err := rc.readPacket()
			require.NoError(t, err, "the server dropped the connection instead of answering")
			code, state, msg := rawErr(t, p)
			require.Equal(t, tc.code, code, "%s", msg)
			require.Equal(t, tc.state, state)
			require.Equal(t, tc.msg, msg)
			// The connection stays usable.
			require.NoError(t, rc.writePacket(0, []byte{0x0e}))
			p, err = rc.readPacket()
			require.NoError(t, err, "ping after the error")
			require.Equal(t, byte(0x00), p[0], "ping after the error: %q", p)
		})
	}

	// A statement reset of a statement that exists still works.
	t.Run("COM_STMT_RESET of a prepared statement", func(t *testing.T) {
		rc := dialRaw(t, srv)
		rc.login(t)
		require.NoError(t, rc.writePacket(0, append([]byte{0x16}, "SELECT ?"...)))
		p, err := rc.readPacket()
		require.NoError(t, err)
		require.Equal(t, byte(0x00), p[0], "prepare: %q", p)
		id := binary.LittleEndian.Uint32(p[1:5])
		_ = rc.drainPrepare(t, p)
		require.NoError(t, rc.writePacket(0, binary.LittleEndian.AppendUint32([]byte{0x1a}, id)))
		p, err = rc.readPacket()
		require.NoError(t, err)
		require.Equal(t, byte(0x00), p[0], "reset: %q", p)
	})

	// Handshake responses MySQL cannot parse: 1043, then the connection
	// is closed.
	for name, payload := range map[string][]byte{
		"empty handshake response":  {},
		"short handshake response":  {0x01, 0x02},
		"31 bytes":                  append([]byte{0x00, 0x82, 0x00, 0x00}, make([]byte, 27)...),
		"no protocol 4.1":           append(make([]byte, 32), "root\x00\x00"...),
		"user name without its end": append(append([]byte{0x00, 0x82, 0x00, 0x00, 0, 0, 0, 1, 33}, make([]byte, 23)...), "rootroot"...),
		"auth length past its end":  append(append([]byte{0x00, 0x82, 0x00, 0x00, 0, 0, 0, 1, 33}, make([]byte, 23)...), "root\x00\xff"...),
	} {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, srv)
			_, err := rc.readPacket()
			require.NoError(t, err, "server greeting")
			require.NoError(t, rc.writePacket(1, payload))
			p, err := rc.readPacket()
			require.NoError(t, err, "the server dropped the connection without an error")
			code, state, msg := rawErr(t, p)
			require.Equal(t, uint16(1043), code, "%s", msg)
			require.Equal(t, "08S01", state)
			require.Equal(t, "Bad handshake", msg)
			_, err = rc.readPacket()
			require.ErrorIs(t, err, io.EOF)
		})
	}
	require.EqualValues(t, 1, queryInt(t, db, "SELECT 1"))
}

// drainPrepare reads the rest of a COM_STMT_PREPARE answer whose first
// packet is p.
func (c *rawConn) drainPrepare(t *testing.T, p []byte) int {
	t.Helper()
	cols := int(binary.LittleEndian.Uint16(p[5:7]))
	params := int(binary.LittleEndian.Uint16(p[7:9]))
	n := 0
	for _, k := range []int{params, cols} {
		if k == 0 {
			continue
		}
		for i := 0; i < k+1; i++ { // definitions, then EOF
			_, err := c.readPacket()
			require.NoError(t, err)
			n++
		}
	}
	return n
}

// The listener survives running out of file descriptors: the node is
// started with few of them, clients hold them all, and once they let go a
// new client is served again.
func TestListenerSurvivesFileExhaustion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the fogdb binary")
	}
	bin := buildFogdb(t)
	adminAddr := freeport.Addr(t)
	p := startFogdbWith(t, []string{"sh", "-c", `ulimit -n 64 && exec "$0" "$@"`}, bin, t.TempDir(), 0,
		"--admin-addr", adminAddr, "--peer-addr", freeport.Addr(t))

	// Hold connections until one gets no greeting: the node has no
	// descriptor left to accept it with.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	exhausted := false
	for i := 0; i < 200 && !exhausted; i++ {
		c, err := net.DialTimeout("tcp", p.addr, patience)
		require.NoError(t, err)
		held = append(held, c)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
		if _, err := (&rawConn{c}).readPacket(); err != nil {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			exhausted = true
		}
	}
	require.True(t, exhausted, "the node never ran out of file descriptors")
	for _, c := range held {
		c.Close()
	}
	held = nil

	db, err := sql.Open("mysql", p.dsn(""))
	require.NoError(t, err)
	defer db.Close()
	deadline := time.Now().Add(patience)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client is served after the descriptors were freed: %v", err)
		}
		var me *mysql.MySQLError
		require.False(t, errors.As(err, &me), "%v", err)
	}
	resp, err := (&http.Client{Timeout: patience}).Get("http://" + adminAddr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	logText, err := os.ReadFile(p.log)
	require.NoError(t, err)
	require.Contains(t, string(logText), "too many open files", "the failed accepts were not logged")
}

// A node started with a low soft limit on open files raises it to the hard
// limit (the Go runtime does so at start), so a host's default of 1024
// does not cap its clients.
func TestSoftFileLimitRaised(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the fogdb binary")
	}
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Max <= 256 {
		t.Skipf("the hard limit on open files is %d: nothing to raise a soft limit of 256 to", lim.Max)
	}
	bin := buildFogdb(t)
	p := startFogdbWith(t, []string{"sh", "-c", `ulimit -S -n 256 && exec "$0" "$@"`}, bin, t.TempDir(), 0,
		"--admin-addr", freeport.Addr(t), "--peer-addr", freeport.Addr(t))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			require.GreaterOrEqual(t, len(f), 2, line)
			require.Equal(t, f[1], f[0], "soft limit not raised to the hard limit: %s", line)
			require.Equal(t, strconv.FormatUint(lim.Max, 10), f[1], line)
			return
		}
	}
	t.Fatalf("no open files limit in /proc/%d/limits", p.cmd.Process.Pid)
}
