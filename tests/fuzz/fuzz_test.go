package fuzz

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vtlog "github.com/dolthub/vitess/go/vt/log"
	_ "github.com/go-sql-driver/mysql"

	"github.com/fogdb/fogdb/server"
)

// patience bounds every wait for the node.
const patience = 30 * time.Second

var node struct {
	once   sync.Once
	err    error
	srv    *server.Server
	db     *sql.DB
	dir    string
	panics atomic.Int64
	last   atomic.Value // string: the last panic logged
}

func TestMain(m *testing.M) {
	code := m.Run()
	if node.srv != nil {
		node.db.Close()
		node.srv.Close()
	}
	if node.dir != "" {
		os.RemoveAll(node.dir)
	}
	os.Exit(code)
}

// startNode starts this process's node (each fuzz worker has its own).
func startNode(t testing.TB) *server.Server {
	t.Helper()
	node.once.Do(func() {
		// The protocol code logs the panics it catches; count them.
		logf := vtlog.Errorf
		vtlog.Errorf = func(format string, args ...any) {
			if strings.Contains(format, "caught panic") {
				node.panics.Add(1)
				node.last.Store(fmt.Sprintf(format, args...))
			}
			logf(format, args...)
		}
		dir, err := os.MkdirTemp("", "fogdb-fuzz-")
		if err != nil {
			node.err = err
			return
		}
		node.dir = dir
		cfg := server.DefaultConfig()
		cfg.MySQLAddr = "127.0.0.1:0"
		cfg.AdminAddr = ""
		cfg.Cluster.PeerAddr = "127.0.0.1:0"
		cfg.DataDir = dir
		cfg.ConnectTimeout = 2 * time.Second
		cfg.MaxConnections = 1000
		srv, err := server.New(cfg)
		if err == nil {
			err = srv.Start()
		}
		if err != nil {
			node.err = err
			return
		}
		node.srv = srv
		node.db, node.err = sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/?multiStatements=true", srv.MySQLAddr()))
		if node.err == nil {
			_, node.err = node.db.Exec("CREATE DATABASE IF NOT EXISTS f; CREATE TABLE IF NOT EXISTS f.t (id INT PRIMARY KEY, s VARCHAR(20), b BLOB, KEY (s)); INSERT IGNORE INTO f.t VALUES (1, 'a', 'x'), (2, 'b', NULL), (3, NULL, '')")
		}
	})
	if node.err != nil {
		t.Fatalf("starting the node: %v", node.err)
	}
	return node.srv
}

// checkNode fails if the protocol code caught a panic, or if the node no
// longer serves a new client, once the input's connections are gone (when
// before >= 0: a statement still running after its client left is not the
// protocol's to end).
func checkNode(t *testing.T, srv *server.Server, before int64) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for before >= 0 && srv.MySQLConnections() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open %v after their clients closed them", srv.MySQLConnections()-before, patience)
		}
		time.Sleep(time.Millisecond)
	}
	if n := node.panics.Load(); n > 0 {
		t.Fatalf("the protocol code caught %d panic(s); the last: %v", n, node.last.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var one int
	if err := node.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the node no longer serves: %v", err)
	}
}

func writePacket(c net.Conn, seq byte, payload []byte) error {
	hdr := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	_, err := c.Write(append(hdr, payload...))
	return err
}

func readPacket(c net.Conn) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	_, err := io.ReadFull(c, buf)
	return buf, err
}

// handshakeResponse logs in as root (no password) with
// mysql_native_password.
func handshakeResponse() []byte {
	const caps = 0x00000001 | 0x00000200 | 0x00008000 | 0x00080000 | 0x00010000 // long password, 4.1, secure conn, plugin auth, multi statements
	resp := binary.LittleEndian.AppendUint32(nil, caps)
	resp = binary.LittleEndian.AppendUint32(resp, 1<<24)
	resp = append(resp, 33)
	resp = append(resp, make([]byte, 23)...)
	resp = append(resp, "root\x00"...)
	resp = append(resp, 0)
	return append(resp, "mysql_native_password\x00"...)
}

func login(t *testing.T, srv *server.Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.MySQLAddr(), patience)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(patience))
	if _, err := readPacket(c); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if err := writePacket(c, 1, handshakeResponse()); err != nil {
		t.Fatal(err)
	}
	for seq := byte(2); ; {
		p, err := readPacket(c)
		if err != nil || len(p) == 0 {
			t.Fatalf("login: %v %q", err, p)
		}
		switch p[0] {
		case 0x00:
			return c
		case 0xfe:
			seq++
			if err := writePacket(c, seq, nil); err != nil {
				t.Fatal(err)
			}
			seq++
		default:
			t.Fatalf("login refused: %q", p)
		}
	}
}

// exchange writes raw and reads what comes back until an OK packet (the
// answer to a trailing ping, or a login), the end of the connection, or a
// moment of silence: the inputs are judged by the node's state afterwards,
// not by the answer.
func exchange(c net.Conn, raw []byte) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(raw); err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		p, err := readPacket(c)
		if err != nil || (len(p) > 0 && p[0] == 0x00) {
			return
		}
	}
}

// seedPacket frames a seed: inputs are raw bytes, headers included, so
// that the fuzzer mutates the framing too.
func seedPacket(seq byte, payload []byte) []byte {
	hdr := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	return append(hdr, payload...)
}

// FuzzWireHandshake sends mutated bytes in place of the handshake
// response.
func FuzzWireHandshake(f *testing.F) {
	f.Add(seedPacket(1, handshakeResponse()))
	f.Add(seedPacket(1, nil))
	f.Add(seedPacket(1, []byte{0x01, 0x02}))
	f.Add(seedPacket(1, append([]byte{0x00, 0x8a, 0x00, 0x00, 0, 0, 0, 1, 33}, make([]byte, 23)...))) // SSL request
	f.Fuzz(func(t *testing.T, raw []byte) {
		srv := startNode(t)
		before := srv.MySQLConnections()
		c, err := net.DialTimeout("tcp", srv.MySQLAddr(), patience)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(patience))
		if _, err := readPacket(c); err != nil {
			t.Fatalf("greeting: %v", err)
		}
		exchange(c, raw)
		c.Close()
		checkNode(t, srv, before)
	})
}

// FuzzWireCommand sends mutated bytes after a successful login, followed
// by a ping.
func FuzzWireCommand(f *testing.F) {
	for _, p := range [][]byte{
		{0x0e},
		{},
		append([]byte{0x03}, "SELECT 1"...),
		append([]byte{0x16}, "SELECT ?"...),
		{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0},
		{0x1a, 7, 0, 0, 0},
		{0x15, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{0x18, 1, 0, 0, 0, 0, 0, 'x'},
		{0x11, 'r', 'o', 'o', 't', 0, 0},
		{0x1b, 0x01, 0x00},
		{0x1c, 1, 0, 0, 0, 1, 0, 0, 0},
		{0x04, 't', 0},
		{0x02, 'f'},
	} {
		f.Add(seedPacket(0, p))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		srv := startNode(t)
		before := srv.MySQLConnections()
		c := login(t, srv)
		exchange(c, append(raw, seedPacket(0, []byte{0x0e})...))
		c.Close()
		checkNode(t, srv, before)
	})
}

// FuzzSQL runs mutated SQL text. A statement may fail or run long (it is
// given up after a few seconds); it must not take the node with it.
func FuzzSQL(f *testing.F) {
	for _, q := range []string{
		"SELECT 1",
		"SELECT * FROM f.t WHERE id = 1",
		"INSERT INTO f.t VALUES (4, 'd', 'y')",
		"UPDATE f.t SET s = CONCAT(s, 'x') WHERE id < 3",
		"SELECT s, COUNT(*) FROM f.t GROUP BY s ORDER BY 2 DESC",
		"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 10) SELECT SUM(n) FROM c",
		"SELECT (SELECT (SELECT 1))",
		"CREATE TABLE f.u (a INT, b TEXT)",
		"SELECT CAST('2024-01-01' AS DATETIME), 1e10, -0.5, x'ff', _utf8mb4'é'",
		"PREPARE s FROM 'SELECT ?'; SET @a = 1; EXECUTE s USING @a",
		"SELECT `\xff`",
		"SELECT 'a' '",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		srv := startNode(t)
		db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/f?multiStatements=true", srv.MySQLAddr()))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		rows, err := db.QueryContext(ctx, q)
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
		}
		cancel()
		db.Close()
		checkNode(t, srv, -1)
	})
}
