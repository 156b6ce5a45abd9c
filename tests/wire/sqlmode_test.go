package wire

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	vtmysql "github.com/dolthub/vitess/go/mysql"
	"github.com/stretchr/testify/require"
)

// warning is one row of SHOW WARNINGS. The engine lists a statement's
// warnings newest first (MySQL: in the order raised), so tests of
// statements raising several compare them as sets.
type warning struct {
	level string
	code  int
	msg   string
}

func showWarnings(t *testing.T, c *sql.Conn) []warning {
	t.Helper()
	rows, err := c.QueryContext(context.Background(), "SHOW WARNINGS")
	require.NoError(t, err)
	defer rows.Close()
	var out []warning
	for rows.Next() {
		var w warning
		require.NoError(t, rows.Scan(&w.level, &w.code, &w.msg))
		out = append(out, w)
	}
	require.NoError(t, rows.Err())
	return out
}

// sqlModeSchema has a column for each kind of value that may not fit.
const sqlModeSchema = "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(3), i TINYINT, d DECIMAL(5,2), q INT, dt DATE)"

// A value that does not fit its column, and what MySQL 8 does with it.
type misfit struct {
	name   string
	insert string // INSERT INTO t (id, col) VALUES (1, value)
	col    string // the column, read back as text
	// strict answer: code, SQLSTATE, text
	num   uint16
	state string
	msg   string
	// non-strict: the stored value and the warning
	stored string
	warn   warning
}

var misfits = []misfit{
	{"over-long string", "INSERT INTO t (id, s) VALUES (1, 'abcdef')", "s",
		1406, "22001", "Data too long for column 's' at row 1",
		"abc", warning{"Warning", 1265, "Data truncated for column 's' at row 1"}},
	{"out-of-range int", "INSERT INTO t (id, i) VALUES (1, 300)", "i",
		1264, "22003", "Out of range value for column 'i' at row 1",
		"127", warning{"Warning", 1264, "Out of range value for column 'i' at row 1"}},
	{"negative out-of-range int", "INSERT INTO t (id, i) VALUES (1, -300)", "i",
		1264, "22003", "Out of range value for column 'i' at row 1",
		"-128", warning{"Warning", 1264, "Out of range value for column 'i' at row 1"}},
	{"out-of-range decimal", "INSERT INTO t (id, d) VALUES (1, 12345.678)", "d",
		1264, "22003", "Out of range value for column 'd' at row 1",
		"999.99", warning{"Warning", 1264, "Out of range value for column 'd' at row 1"}},
	{"string into integer", "INSERT INTO t (id, q) VALUES (1, 'abc')", "q",
		1366, "HY000", "Incorrect integer value: 'abc' for column 'q' at row 1",
		"0", warning{"Warning", 1366, "Incorrect integer value: 'abc' for column 'q' at row 1"}},
	{"integer with trailing text", "INSERT INTO t (id, q) VALUES (1, '12abc')", "q",
		1265, "01000", "Data truncated for column 'q' at row 1",
		"12", warning{"Warning", 1265, "Data truncated for column 'q' at row 1"}},
}

// TestSQLModeMisfits: strict modes refuse a value that does not fit with
// MySQL's error (column and row named); the others store it cut to fit,
// with MySQL's warning.
func TestSQLModeMisfits(t *testing.T) {
	_, db := startWithDB(t, "d", sqlModeSchema)
	modes := []struct {
		mode   string
		strict bool
	}{
		{"", true}, // the default, MySQL 8.0's
		{"STRICT_TRANS_TABLES", true},
		{"STRICT_ALL_TABLES", true},
		{"TRADITIONAL", true},
		{"''", false},
		{"NO_ENGINE_SUBSTITUTION", false},
		{"ANSI", false},
	}
	ctx := context.Background()
	for _, m := range modes {
		for _, f := range misfits {
			name := m.mode
			if name == "" {
				name = "default"
			}
			t.Run(name+"/"+f.name, func(t *testing.T) {
				c := clientConn(t, db)
				if m.mode != "" {
					mustExec(t, c, "SET SESSION sql_mode = "+quoteMode(m.mode))
				}
				mustExec(t, c, "DELETE FROM t")
				_, err := c.ExecContext(ctx, f.insert)
				if m.strict {
					me := requireMySQLError(t, err, f.num, f.state, f.insert)
					require.Equal(t, f.msg, me.Message)
					require.Equal(t, int64(0), queryInt(t, c, "SELECT COUNT(*) FROM t"))
					return
				}
				require.NoError(t, err, f.insert)
				require.Equal(t, []warning{f.warn}, showWarnings(t, c))
				var got string
				require.NoError(t, c.QueryRowContext(ctx, "SELECT CAST("+f.col+" AS CHAR) FROM t WHERE id = 1").Scan(&got))
				require.Equal(t, f.stored, got)
			})
		}
	}
}

func quoteMode(m string) string {
	if strings.HasPrefix(m, "'") {
		return m
	}
	return "'" + m + "'"
}

// TestSQLModeDivisionAndZeroDate: ERROR_FOR_DIVISION_BY_ZERO and
// NO_ZERO_DATE as MySQL 8 applies them to stored values.
func TestSQLModeDivisionAndZeroDate(t *testing.T) {
	_, db := startWithDB(t, "d", sqlModeSchema)
	ctx := context.Background()
	type outcome struct {
		num    uint16 // 0: stored
		state  string
		msg    string
		stored string // a predicate on the row with id 1 that must hold
		warns  []warning
	}
	divFails := outcome{num: 1365, state: "22012", msg: "Division by 0"}
	divNull := outcome{stored: "q IS NULL"}
	divWarns := outcome{stored: "q IS NULL", warns: []warning{{"Warning", 1365, "Division by 0"}}}
	zeroFails := outcome{num: 1292, state: "22007", msg: "Incorrect date value: '0000-00-00' for column 'dt' at row 1"}
	zeroStored := outcome{stored: "dt = '0000-00-00'"}
	zeroWarns := outcome{stored: "dt = '0000-00-00'", warns: []warning{{"Warning", 1264, "Out of range value for column 'dt' at row 1"}}}
	cases := []struct {
		mode      string
		div, zero outcome
	}{
		{"", divFails, zeroFails},
		{"TRADITIONAL", divFails, zeroFails},
		{"STRICT_TRANS_TABLES", divNull, zeroStored},
		{"STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE", divFails, zeroFails},
		{"''", divNull, zeroStored},
		{"ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE", divWarns, zeroWarns},
	}
	for _, tc := range cases {
		for _, step := range []struct {
			what, insert string
			want         outcome
		}{
			{"1/0", "INSERT INTO t (id, q) VALUES (1, 1/0)", tc.div},
			{"zero date", "INSERT INTO t (id, dt) VALUES (1, '0000-00-00')", tc.zero},
		} {
			t.Run(fmt.Sprintf("%s/%s", tc.mode, step.what), func(t *testing.T) {
				c := clientConn(t, db)
				if tc.mode != "" {
					mustExec(t, c, "SET SESSION sql_mode = "+quoteMode(tc.mode))
				}
				mustExec(t, c, "DELETE FROM t")
				_, err := c.ExecContext(ctx, step.insert)
				if step.want.num != 0 {
					me := requireMySQLError(t, err, step.want.num, step.want.state, step.insert)
					require.Equal(t, step.want.msg, me.Message)
					return
				}
				require.NoError(t, err, step.insert)
				require.Equal(t, step.want.warns, showWarnings(t, c))
				require.Equal(t, int64(1), queryInt(t, c, "SELECT COUNT(*) FROM t WHERE id = 1 AND "+step.want.stored))
			})
		}
	}
}

// TestSQLModeDefault: sessions start with MySQL 8.0's sql_mode, and SELECT
// 1/0 is NULL with warning 1365.
func TestSQLModeDefault(t *testing.T) {
	_, db := startNode(t)
	c := clientConn(t, db)
	var mode string
	require.NoError(t, c.QueryRowContext(context.Background(), "SELECT @@SESSION.sql_mode").Scan(&mode))
	want := strings.Split("ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION", ",")
	require.ElementsMatch(t, want, strings.Split(mode, ","))
	require.NoError(t, c.QueryRowContext(context.Background(), "SELECT @@GLOBAL.sql_mode").Scan(&mode))
	require.ElementsMatch(t, want, strings.Split(mode, ","))

	var v sql.NullInt64
	require.NoError(t, c.QueryRowContext(context.Background(), "SELECT 1/0").Scan(&v))
	require.False(t, v.Valid)
	require.Equal(t, []warning{{"Warning", 1365, "Division by 0"}}, showWarnings(t, c))
}

// TestSQLModeStatements: every statement that stores values fits them: the
// row named is the statement's row, INSERT IGNORE warns as non-strict modes
// do, and UPDATE, INSERT ... SELECT, REPLACE and ON DUPLICATE KEY UPDATE
// cut values as INSERT does.
func TestSQLModeStatements(t *testing.T) {
	srv, db := startWithDB(t, "d", sqlModeSchema, "CREATE TABLE src (id INT, s VARCHAR(10), i INT)",
		"INSERT INTO src VALUES (1, 'ok', 1), (2, 'toolong', 1000)")
	ctx := context.Background()
	c := clientConn(t, db)

	// Strict: the error names the row it happened on; nothing is stored.
	_, err := c.ExecContext(ctx, "INSERT INTO t (id, s) VALUES (1, 'ab'), (2, 'abcd')")
	me := requireMySQLError(t, err, 1406, "22001")
	require.Equal(t, "Data too long for column 's' at row 2", me.Message)
	_, err = c.ExecContext(ctx, "INSERT INTO t (id, s, i) SELECT id, s, i FROM src")
	me = requireMySQLError(t, err, 1406, "22001")
	require.Equal(t, "Data too long for column 's' at row 2", me.Message)
	require.Equal(t, int64(0), queryInt(t, c, "SELECT COUNT(*) FROM t"))

	// INSERT IGNORE in strict mode: MySQL's warnings, not the engine's notes.
	mustExec(t, c, "INSERT IGNORE INTO t (id, s, i) VALUES (1, 'ab', 1), (2, 'abcd', 500)")
	require.ElementsMatch(t, []warning{
		{"Warning", 1265, "Data truncated for column 's' at row 2"},
		{"Warning", 1264, "Out of range value for column 'i' at row 2"},
	}, showWarnings(t, c))
	require.Equal(t, int64(127), queryInt(t, c, "SELECT i FROM t WHERE id = 2"))

	// UPDATE in strict mode fails; UPDATE IGNORE clips.
	_, err = c.ExecContext(ctx, "UPDATE t SET i = 1000 WHERE id = 1")
	me = requireMySQLError(t, err, 1264, "22003")
	require.Equal(t, "Out of range value for column 'i' at row 1", me.Message)
	mustExec(t, c, "UPDATE IGNORE t SET i = -1000 WHERE id = 1")
	require.Equal(t, []warning{{"Warning", 1264, "Out of range value for column 'i' at row 1"}}, showWarnings(t, c))
	require.Equal(t, int64(-128), queryInt(t, c, "SELECT i FROM t WHERE id = 1"))

	// Non-strict: every way of storing a value cuts it to fit.
	mustExec(t, c, "SET SESSION sql_mode = ''")
	mustExec(t, c, "DELETE FROM t")
	mustExec(t, c, "INSERT INTO t (id, s, i) SELECT id, s, i FROM src")
	require.ElementsMatch(t, []warning{
		{"Warning", 1265, "Data truncated for column 's' at row 2"},
		{"Warning", 1264, "Out of range value for column 'i' at row 2"},
	}, showWarnings(t, c))
	var s string
	require.NoError(t, c.QueryRowContext(ctx, "SELECT s FROM t WHERE id = 2").Scan(&s))
	require.Equal(t, "too", s)

	mustExec(t, c, "UPDATE t SET s = CONCAT(s, 'xyz') ORDER BY id")
	require.ElementsMatch(t, []warning{
		{"Warning", 1265, "Data truncated for column 's' at row 1"},
		{"Warning", 1265, "Data truncated for column 's' at row 2"},
	}, showWarnings(t, c))
	require.NoError(t, c.QueryRowContext(ctx, "SELECT s FROM t WHERE id = 1").Scan(&s))
	require.Equal(t, "okx", s)

	mustExec(t, c, "REPLACE INTO t (id, s) VALUES (1, 'replaced')")
	require.Equal(t, []warning{{"Warning", 1265, "Data truncated for column 's' at row 1"}}, showWarnings(t, c))
	require.NoError(t, c.QueryRowContext(ctx, "SELECT s FROM t WHERE id = 1").Scan(&s))
	require.Equal(t, "rep", s)

	mustExec(t, c, "INSERT INTO t (id, i) VALUES (2, 1) ON DUPLICATE KEY UPDATE i = 999")
	require.Equal(t, []warning{{"Warning", 1264, "Out of range value for column 'i' at row 1"}}, showWarnings(t, c))
	require.Equal(t, int64(127), queryInt(t, c, "SELECT i FROM t WHERE id = 2"))

	// The OK packet's warning count is the statement's (database/sql does
	// not show it; vitess's client does).
	host, port, err := net.SplitHostPort(srv.MySQLAddr())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	vc, err := vtmysql.Connect(ctx, &vtmysql.ConnParams{Host: host, Port: p, Uname: "root", DbName: "d"})
	require.NoError(t, err)
	defer vc.Close()
	_, _, err = vc.ExecuteFetchWithWarningCount("SET SESSION sql_mode = ''", 0, false)
	require.NoError(t, err)
	_, warns, err := vc.ExecuteFetchWithWarningCount("INSERT INTO t (id, s, i) VALUES (3, 'abcd', 128)", 0, false)
	require.NoError(t, err)
	require.Equal(t, uint16(2), warns)

	// A prepared statement run again numbers its rows afresh.
	mustExec(t, c, "SET SESSION sql_mode = ''")
	ins, err := c.PrepareContext(ctx, "INSERT INTO t (id, s) VALUES (?, ?), (?, ?)")
	require.NoError(t, err)
	defer ins.Close()
	for _, id := range []int{10, 20} {
		_, err := ins.ExecContext(ctx, id, "ok", id+1, "long")
		require.NoError(t, err)
		require.Equal(t, []warning{{"Warning", 1265, "Data truncated for column 's' at row 2"}}, showWarnings(t, c))
	}
	mustExec(t, c, "SET SESSION sql_mode = DEFAULT")
	for _, id := range []int{30, 40} {
		_, err := ins.ExecContext(ctx, id, "ok", id+1, "long")
		me := requireMySQLError(t, err, 1406, "22001")
		require.Equal(t, "Data too long for column 's' at row 2", me.Message)
	}

	// Only trailing spaces lost: a note, and strict mode stores it too.
	mustExec(t, c, "INSERT INTO t (id, s) VALUES (4, 'ab    ')")
	require.Equal(t, []warning{{"Note", 1265, "Data truncated for column 's' at row 1"}}, showWarnings(t, c))
}
