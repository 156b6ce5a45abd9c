package wire

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
)

const badInputSchema = `
CREATE TABLE t (
	id INT PRIMARY KEY,
	name VARCHAR(10) NOT NULL,
	n INT,
	tiny TINYINT,
	d DATE,
	txt TEXT,
	u VARCHAR(10),
	UNIQUE KEY u (u)
);
CREATE TABLE child (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_pid FOREIGN KEY (pid) REFERENCES t (id));
CREATE TABLE marker (id INT PRIMARY KEY);
INSERT INTO t VALUES (1, 'one', 1, 1, '2024-01-01', 'x', 'u1'), (2, 'two', 2, 2, '2024-01-02', 'y', 'u2'), (3, 'three', 3, 3, NULL, NULL, NULL);
INSERT INTO child VALUES (1, 1);
`

// committedRows is every row badInputSchema commits, as the text a client
// reads back: bad input must never change it.
const committedRows = "1|one|1|1|2024-01-01|x|u1;2|two|2|2|2024-01-02|y|u2;3|three|3|3|NULL|NULL|NULL;child 1->1"

func readCommitted(t *testing.T, db querier) string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, "SELECT id, name, n, tiny, DATE_FORMAT(d, '%Y-%m-%d'), txt, u FROM d.t ORDER BY id")
	require.NoError(t, err)
	var parts []string
	for rows.Next() {
		vals := make([]sql.NullString, 7)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		var cols []string
		for _, v := range vals {
			if v.Valid {
				cols = append(cols, v.String)
			} else {
				cols = append(cols, "NULL")
			}
		}
		parts = append(parts, strings.Join(cols, "|"))
	}
	require.NoError(t, rows.Err())
	rows.Close()
	rows, err = db.QueryContext(ctx, "SELECT id, pid FROM d.child ORDER BY id")
	require.NoError(t, err)
	for rows.Next() {
		var id, pid int
		require.NoError(t, rows.Scan(&id, &pid))
		parts = append(parts, fmt.Sprintf("child %d->%d", id, pid))
	}
	require.NoError(t, rows.Err())
	rows.Close()
	return strings.Join(parts, ";")
}

type badInput struct {
	name  string
	query string
	num   uint16
	state string
	// msg is MySQL's exact text where client libraries parse it: oslo.db
	// reads key, table and constraint names out of these.
	msg string
}

// badInputs are MySQL 8's answers (default sql_mode, which is strict) to
// common mistakes.
var badInputs = []badInput{
	{"syntax error", "SELEC 1", 1064, "42000", ""},
	{"truncated statement", "SELECT * FROM t WHERE", 1064, "42000", ""},
	{"unterminated string", "INSERT INTO t (id, name) VALUES (50, 'oops)", 1064, "42000", ""},
	{"empty query", "", 1065, "42000", "Query was empty"},
	{"unknown table", "SELECT * FROM nosuch", 1146, "42S02", "Table 'd.nosuch' doesn't exist"},
	{"unknown database", "USE nosuchdb", 1049, "42000", "Unknown database 'nosuchdb'"},
	{"unknown column in select", "SELECT nosuch FROM t", 1054, "42S22", ""},
	{"unknown column in update", "UPDATE t SET nosuch = 1", 1054, "42S22", ""},
	{"unknown column in insert", "INSERT INTO t (id, nosuch) VALUES (51, 1)", 1054, "42S22", ""},
	{"ambiguous column", "SELECT id FROM t JOIN child ON t.id = child.pid", 1052, "23000", ""},
	{"unknown function", "SELECT nosuchfn(1)", 1305, "42000", ""},
	{"subquery with many rows", "SELECT (SELECT id FROM t)", 1242, "21000", ""},
	{"duplicate primary key", "INSERT INTO t (id, name) VALUES (1, 'dup')", 1062, "23000", "Duplicate entry '1' for key 't.PRIMARY'"},
	{"duplicate unique key", "INSERT INTO t (id, name, u) VALUES (52, 'dup', 'u1')", 1062, "23000", "Duplicate entry 'u1' for key 't.u'"},
	{"duplicate by update", "UPDATE t SET u = 'u1' WHERE id = 2", 1062, "23000", "Duplicate entry 'u1' for key 't.u'"},
	{"duplicate primary key by update", "UPDATE t SET id = 1 WHERE id = 2", 1062, "23000", "Duplicate entry '1' for key 't.PRIMARY'"},
	{"NULL into NOT NULL", "INSERT INTO t (id, name) VALUES (53, NULL)", 1048, "23000", ""},
	{"update to NULL", "UPDATE t SET name = NULL WHERE id = 1", 1048, "23000", ""},
	{"missing value without default", "INSERT INTO t (id) VALUES (54)", 1364, "HY000", ""},
	{"string too long", "INSERT INTO t (id, name) VALUES (55, 'abcdefghijk')", 1406, "22001", ""},
	{"text too long", "INSERT INTO t (id, name, txt) VALUES (56, 'x', REPEAT('y', 70000))", 1406, "22001", ""},
	{"update too long", "UPDATE t SET name = 'abcdefghijk' WHERE id = 1", 1406, "22001", ""},
	{"string into integer", "INSERT INTO t (id, name, n) VALUES (57, 'x', 'abc')", 1366, "HY000", ""},
	{"bad date", "INSERT INTO t (id, name, d) VALUES (58, 'x', 'not a date')", 1292, "22007", ""},
	{"tinyint out of range", "INSERT INTO t (id, name, tiny) VALUES (59, 'x', 300)", 1264, "22003", ""},
	{"int out of range", "INSERT INTO t (id, name, n) VALUES (60, 'x', 99999999999)", 1264, "22003", ""},
	{"wrong value count", "INSERT INTO t VALUES (61)", 1136, "21S01", ""},
	{"table exists", "CREATE TABLE t (id INT PRIMARY KEY)", 1050, "42S01", ""},
	{"database exists", "CREATE DATABASE d", 1007, "HY000", ""},
	{"drop unknown table", "DROP TABLE nosuch", 1051, "42S02", ""},
	{"foreign key child", "INSERT INTO child VALUES (2, 999)", 1452, "23000",
		"Cannot add or update a child row: a foreign key constraint fails (`d`.`child`, CONSTRAINT `fk_pid` FOREIGN KEY (`pid`) REFERENCES `t` (`id`))"},
	{"foreign key parent", "DELETE FROM t WHERE id = 1", 1451, "23000",
		"Cannot delete or update a parent row: a foreign key constraint fails (`d`.`child`, CONSTRAINT `fk_pid` FOREIGN KEY (`pid`) REFERENCES `t` (`id`))"},
	{"two errors in one row", "INSERT INTO t (id, name, n) VALUES (62, NULL, 'abc')", 1048, "23000", ""},
}

// Each bad statement gets MySQL's error number and SQLSTATE; the session
// that sent it stays usable, other sessions do not notice, and nothing
// committed changes.
func TestBadInputErrors(t *testing.T) {
	srv, db := startWithDB(t, "d", badInputSchema)
	other := clientConn(t, db)
	mustExec(t, other, "SET innodb_lock_wait_timeout = 1")
	ctx := context.Background()

	for _, tc := range badInputs {
		t.Run(tc.name, func(t *testing.T) {
			c := soloConn(t, srv, "d")
			_, err := c.ExecContext(ctx, tc.query)
			me := requireMySQLError(t, err, tc.num, tc.state, tc.query)
			if tc.msg != "" {
				require.Equal(t, tc.msg, me.Message, tc.query)
			}
			// Before the failed session sends anything else, another one
			// reads, and locks every row, without waiting on anything the
			// failed statement left behind.
			require.EqualValues(t, 3, queryInt(t, other, "SELECT COUNT(*) FROM t FOR UPDATE"))
			require.EqualValues(t, 1, queryInt(t, other, "SELECT COUNT(*) FROM child FOR UPDATE"))
			require.Equal(t, committedRows, readCommitted(t, other))
			require.EqualValues(t, 1, queryInt(t, c, "SELECT 1"), "the session that got the error")
			require.Equal(t, "d", queryString(t, c, "SELECT DATABASE()"))
			require.Equal(t, committedRows, readCommitted(t, c))
		})
	}
	require.Equal(t, committedRows, readCommitted(t, db))
}

// The same mistakes inside an explicit transaction fail only their own
// statement: the transaction's earlier write survives to COMMIT.
func TestBadInputInsideTransaction(t *testing.T) {
	_, db := startWithDB(t, "d", badInputSchema)
	other := clientConn(t, db)
	ctx := context.Background()

	for i, tc := range badInputs {
		t.Run(tc.name, func(t *testing.T) {
			c := clientConn(t, db)
			mustExec(t, c, "BEGIN")
			mustExec(t, c, "INSERT INTO d.marker VALUES (?)", i)
			// Whether and how it fails is TestBadInputErrors' business.
			if _, err := c.ExecContext(ctx, tc.query); err != nil {
				require.NotNil(t, asMySQL(err), "%s: want a MySQL error, got %v", tc.query, err)
			}
			require.EqualValues(t, 1, queryInt(t, c, "SELECT COUNT(*) FROM d.marker WHERE id = ?", i), "the transaction lost its earlier write")
			mustExec(t, c, "COMMIT")
			require.EqualValues(t, 1, queryInt(t, other, "SELECT COUNT(*) FROM d.marker WHERE id = ?", i), "the earlier write was not committed")
			require.Equal(t, committedRows, readCommitted(t, other))
		})
	}
	require.EqualValues(t, len(badInputs), queryInt(t, db, "SELECT COUNT(*) FROM d.marker"))
}

// Bad input over the binary protocol: preparing a bad statement, executing
// with arguments of the wrong type or size, and a prepared statement whose
// table went away.
func TestBadInputPrepared(t *testing.T) {
	_, db := startWithDB(t, "d", badInputSchema)
	ctx := context.Background()
	c := clientConn(t, db)

	for _, tc := range []struct {
		query string
		num   uint16
		state string
	}{
		// The protocol layer parses a COM_STMT_PREPARE itself, before
		// fogdb's handler; the connection guard answers a syntax error
		// first, with MySQL's code (over TLS it cannot: README).
		{"SELEC ?", 1064, "42000"},
		{"SELECT * FROM nosuch WHERE id = ?", 1146, "42S02"},
		{"SELECT nosuch FROM t WHERE id = ?", 1054, "42S22"},
	} {
		t.Run("prepare "+tc.query, func(t *testing.T) {
			_, err := c.PrepareContext(ctx, tc.query)
			requireMySQLError(t, err, tc.num, tc.state, tc.query)
			require.EqualValues(t, 1, queryInt(t, c, "SELECT ?", 1))
		})
	}

	for _, tc := range []struct {
		name  string
		query string
		args  []any
		num   uint16
		state string
	}{
		{"duplicate", "INSERT INTO t (id, name) VALUES (?, ?)", []any{1, "dup"}, 1062, "23000"},
		{"NULL into NOT NULL", "INSERT INTO t (id, name) VALUES (?, ?)", []any{70, nil}, 1048, "23000"},
		{"string too long", "INSERT INTO t (id, name) VALUES (?, ?)", []any{71, strings.Repeat("z", 11)}, 1406, "22001"},
		{"string into integer", "INSERT INTO t (id, name, n) VALUES (?, ?, ?)", []any{72, "x", "abc"}, 1366, "HY000"},
		{"out of range", "INSERT INTO t (id, name, tiny) VALUES (?, ?, ?)", []any{73, "x", 300}, 1264, "22003"},
		{"bad date", "INSERT INTO t (id, name, d) VALUES (?, ?, ?)", []any{74, "x", "not a date"}, 1292, "22007"},
		{"text too long", "INSERT INTO t (id, name, txt) VALUES (?, ?, ?)", []any{75, "x", strings.Repeat("y", 70000)}, 1406, "22001"},
	} {
		t.Run("execute "+tc.name, func(t *testing.T) {
			_, err := c.ExecContext(ctx, tc.query, tc.args...)
			requireMySQLError(t, err, tc.num, tc.state, tc.query)
			require.EqualValues(t, 1, queryInt(t, c, "SELECT ?", 1))
		})
	}

	// A prepared statement whose table is dropped fails cleanly.
	mustExec(t, db, "CREATE TABLE gone (id INT PRIMARY KEY)")
	stmt, err := c.PrepareContext(ctx, "SELECT id FROM gone WHERE id = ?")
	require.NoError(t, err)
	defer stmt.Close()
	mustExec(t, db, "DROP TABLE gone")
	_, err = stmt.QueryContext(ctx, 1)
	requireMySQLError(t, err, 1146, "42S02")

	require.EqualValues(t, 1, queryInt(t, c, "SELECT 1"))
	require.Equal(t, committedRows, readCommitted(t, db))
}

// Garbage on the wire (malformed handshakes, unknown commands, truncated
// and random packets) costs the sender its connection at most: the node
// keeps serving everyone else and loses nothing.
func TestMalformedPackets(t *testing.T) {
	srv, db := startWithDB(t, "d", badInputSchema)
	watcher := clientConn(t, db)

	// Before authentication.
	for name, payload := range map[string][]byte{
		"empty handshake response":  {},
		"short handshake response":  {0x01, 0x02},
		"no protocol 4.1":           append(make([]byte, 32), "root\x00\x00"...),
		"username without end":      append(append([]byte{0x00, 0x82, 0x00, 0x00, 0, 0, 0, 1, 33}, make([]byte, 23)...), "rootroot"...),
		"auth length past the end":  append(append([]byte{0x00, 0x82, 0x00, 0x00, 0, 0, 0, 1, 33}, make([]byte, 23)...), "root\x00\xff"...),
		"unsupported plugin prefix": append(append([]byte{0x00, 0x82, 0x08, 0x00, 0, 0, 0, 1, 33}, make([]byte, 23)...), "root\x00\x00d\x00no_such_plugin"...),
	} {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, srv)
			_, err := rc.readPacket()
			require.NoError(t, err, "server greeting")
			require.NoError(t, rc.writePacket(1, payload))
			reply, err := rc.readPacket()
			if err == nil && len(reply) > 0 {
				require.NotEqual(t, byte(0x00), reply[0], "garbage handshake was accepted")
			}
			rc.Close()
		})
	}

	// After authentication: commands the server must refuse without
	// dropping its guard.
	for name, payload := range map[string][]byte{
		"unknown command":               {0x7f, 1, 2, 3},
		"empty packet":                  {},
		"execute unknown statement":     {0x17, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0},
		"execute truncated":             {0x17, 0x01},
		"fetch unknown statement":       {0x1c, 9, 0, 0, 0, 1, 0, 0, 0},
		"long data to unknown":          {0x18, 9, 0, 0, 0, 0, 0, 'x'},
		"prepare garbage":               append([]byte{0x16}, "\xff\xfe\x00SELECT"...),
		"query with invalid utf8":       append([]byte{0x03}, "SELECT '\xff\xfe'"...),
		"field list of unknown table":   append([]byte{0x04}, "nosuch\x00"...),
		"init unknown db":               append([]byte{0x02}, "nosuchdb"...),
		"set option out of range":       {0x1b, 0x09, 0x00},
		"change user with garbage":      {0x11, 0xff},
		"binlog dump with garbage":      {0x12, 0x01},
		"statement reset of unknown id": {0x1a, 7, 0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, srv)
			rc.login(t)
			require.NoError(t, rc.writePacket(0, payload))
			require.NoError(t, rc.writePacket(0, []byte{0x0e}))
			require.False(t, rc.drain(), "the server neither answered nor closed the connection")
			rc.Close()
		})
	}

	// A packet whose header promises more than is sent, then silence: the
	// server must not be stuck on it for anyone else.
	rc := dialRaw(t, srv)
	rc.login(t)
	_, err := rc.Conn.Write([]byte{0xff, 0xff, 0x00, 0x00, 0x03, 'S', 'E'})
	require.NoError(t, err)
	require.EqualValues(t, 3, queryInt(t, watcher, "SELECT COUNT(*) FROM t"))
	rc.Close()

	// Random packets, bounded in number, from a fixed seed.
	rng := rand.New(rand.NewSource(1))
	commands := []byte{0x02, 0x03, 0x04, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x60}
	for i := 0; i < 40; i++ {
		rc := dialRaw(t, srv)
		rc.login(t)
		payload := make([]byte, 1+rng.Intn(64))
		rng.Read(payload)
		payload[0] = commands[rng.Intn(len(commands))]
		require.NoError(t, rc.writePacket(0, payload))
		require.NoError(t, rc.writePacket(0, []byte{0x0e}))
		require.False(t, rc.drain(), "packet %x: the server neither answered nor closed the connection", payload)
		rc.Close()
	}

	require.EqualValues(t, 1, queryInt(t, watcher, "SELECT 1"))
	require.Equal(t, committedRows, readCommitted(t, watcher))
	mustExec(t, db, "INSERT INTO t (id, name) VALUES (100, 'after')")
	require.EqualValues(t, 4, queryInt(t, db, "SELECT COUNT(*) FROM t"))
}

func queryString(t testing.TB, db querier, query string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, db.QueryRowContext(context.Background(), query, args...).Scan(&s), "%s", query)
	return s
}

// rawConn speaks just enough of the MySQL protocol to send malformed
// packets.
type rawConn struct {
	net.Conn
}

func dialRaw(t *testing.T, srv *server.Server) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.MySQLAddr(), patience)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(patience)))
	t.Cleanup(func() { c.Close() })
	return &rawConn{c}
}

func (c *rawConn) writePacket(seq byte, payload []byte) error {
	hdr := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	_, err := c.Write(append(hdr, payload...))
	return err
}

func (c *rawConn) readPacket() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// drain reads until the server closes the connection or answers with OK
// (to the ping that follows the garbage), and reports whether it did
// neither in time.
func (c *rawConn) drain() (timedOut bool) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		p, err := c.readPacket()
		if err != nil {
			return errors.Is(err, os.ErrDeadlineExceeded)
		}
		if len(p) > 0 && p[0] == 0x00 {
			return false
		}
	}
}

// login authenticates as root, which has no password.
func (c *rawConn) login(t *testing.T) {
	t.Helper()
	_, err := c.readPacket()
	require.NoError(t, err, "server greeting")
	const (
		longPassword     = 0x00000001
		protocol41       = 0x00000200
		secureConnection = 0x00008000
		pluginAuth       = 0x00080000
	)
	resp := binary.LittleEndian.AppendUint32(nil, longPassword|protocol41|secureConnection|pluginAuth)
	resp = binary.LittleEndian.AppendUint32(resp, 1<<24)
	resp = append(resp, 33) // utf8_general_ci
	resp = append(resp, make([]byte, 23)...)
	resp = append(resp, "root\x00"...)
	resp = append(resp, 0) // empty auth response
	resp = append(resp, "mysql_native_password\x00"...)
	require.NoError(t, c.writePacket(1, resp))
	seq := byte(2)
	for {
		p, err := c.readPacket()
		require.NoError(t, err, "login")
		require.NotEmpty(t, p)
		switch p[0] {
		case 0x00:
			return
		case 0xfe: // auth switch: the empty password again
			seq++
			require.NoError(t, c.writePacket(seq, nil))
			seq++
		case 0xff:
			t.Fatalf("login refused: %q", p)
		default:
			t.Fatalf("unexpected login packet %x", p)
		}
	}
}

// A user is refused what it was not granted with MySQL's access errors.
func TestAccessDenied(t *testing.T) {
	srv, db := startWithDB(t, "d", badInputSchema)
	mustExec(t, db, "CREATE USER 'app'@'%' IDENTIFIED BY 's3cret'")
	mustExec(t, db, "GRANT SELECT, INSERT ON d.t TO 'app'@'%'")
	app := openDSN(t, userDSN(srv, "app", "s3cret", "d"))
	ctx := context.Background()

	for _, tc := range []struct {
		query string
		num   uint16
		state string
	}{
		{"DELETE FROM t WHERE id = 1", 1142, "42000"},
		{"UPDATE t SET n = 0", 1142, "42000"},
		{"SELECT * FROM child", 1142, "42000"},
		{"DROP TABLE t", 1142, "42000"},
		{"CREATE TABLE t2 (id INT PRIMARY KEY)", 1142, "42000"},
		{"CREATE DATABASE other", 1044, "42000"},
		{"CREATE USER 'x'@'%'", 1227, "42000"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			c := clientConn(t, app)
			_, err := c.ExecContext(ctx, tc.query)
			requireMySQLError(t, err, tc.num, tc.state, tc.query)
			require.EqualValues(t, 1, queryInt(t, c, "SELECT 1"))
		})
	}

	for _, login := range []struct{ user, password string }{{"app", "wrong"}, {"app", ""}} {
		t.Run("login "+login.user+":"+login.password, func(t *testing.T) {
			bad := openDSN(t, userDSN(srv, login.user, login.password, "d"))
			me := requireMySQLError(t, bad.Ping(), 1045, "28000")
			require.Contains(t, me.Message, "Access denied for user '"+login.user+"'")
		})
	}
	// An account that does not exist is refused during the handshake by
	// the protocol layer, with CR_SERVER_HANDSHAKE_ERR rather than 1045
	// (README, "Where fogdb differs").
	t.Run("login of an unknown account", func(t *testing.T) {
		bad := openDSN(t, userDSN(srv, "nobody", "x", "d"))
		requireMySQLError(t, bad.Ping(), 2012, "HY000")
	})

	require.Equal(t, committedRows, readCommitted(t, db))
	mustExec(t, app, "INSERT INTO t (id, name) VALUES (90, 'granted')")
	require.EqualValues(t, 4, queryInt(t, db, "SELECT COUNT(*) FROM t"))
}

// A CREATE TABLE that fails part way (here on a foreign key to a missing
// table) leaves no table behind, as MySQL 8's atomic DDL does, so running
// it again after fixing the cause works.
func TestFailedCreateTableLeavesNothing(t *testing.T) {
	_, db := startWithDB(t, "d")
	c := clientConn(t, db)
	ctx := context.Background()
	_, err := c.ExecContext(ctx, "CREATE TABLE kid (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_p FOREIGN KEY (pid) REFERENCES nosuch (id))")
	require.Error(t, err)
	require.EqualValues(t, 0, queryInt(t, c, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'd' AND table_name = 'kid'"))
	mustExec(t, c, "CREATE TABLE kid (id INT PRIMARY KEY, pid INT)")
}
