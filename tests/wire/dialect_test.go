package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Words MySQL 8 does not reserve are names, unquoted, in text statements
// and in prepared ones (the driver prepares every statement with
// arguments on the server); a reserved word is a name only quoted, and
// fails with 1064 unquoted, as in MySQL.
func TestKeywordNamesOverTheWire(t *testing.T) {
	srv, db := startWithDB(t, "d")
	c := soloConn(t, srv, "d")
	for _, q := range []string{
		"CREATE TABLE t (id INT PRIMARY KEY, shared BOOL, status VARCHAR(10), comment TEXT)",
		"CREATE TABLE v (id INT PRIMARY KEY, encryption_key_id VARCHAR(36), encrypted BOOL, KEY format (encryption_key_id))",
		"INSERT INTO t (id, shared, status, comment) VALUES (1, TRUE, 'ok', 'x')",
		"UPDATE t SET shared = FALSE, status = 'done' WHERE shared AND status = 'ok'",
		"ALTER TABLE v ADD COLUMN action VARCHAR(8), ADD INDEX level (action)",
	} {
		mustExec(t, c, q)
	}
	require.EqualValues(t, 0, queryInt(t, c, "SELECT shared FROM t WHERE status = 'done'"))

	// Prepared on the server, with arguments.
	mustExec(t, db, "INSERT INTO v (id, encryption_key_id, encrypted, action) VALUES (?, ?, ?, ?)", 1, "k1", true, "go")
	require.EqualValues(t, 1, queryInt(t, db, "SELECT COUNT(*) FROM v WHERE encryption_key_id = ? AND encrypted AND action = ?", "k1", "go"))
	require.EqualValues(t, 1, queryInt(t, db, "SELECT t.shared + 1 FROM t WHERE t.status = ?", "done"))
	require.EqualValues(t, 1, queryInt(t, db, "SELECT id FROM t WHERE id = ? FOR SHARE", 1))
	var name string
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT status FROM t WHERE comment = ?", "x").Scan(&name))
	require.Equal(t, "done", name)

	// A result column is named as the client wrote its expression.
	rows, err := c.QueryContext(t.Context(), "SELECT shared + 1, status FROM t")
	require.NoError(t, err)
	cols, err := rows.Columns()
	require.NoError(t, err)
	require.NoError(t, rows.Close())
	require.Equal(t, []string{"shared + 1", "status"}, cols)

	for _, q := range []string{
		"CREATE TABLE r (select INT)",
		"CREATE TABLE interval (begin INT, end INT)",
		"INSERT INTO t (id, key) VALUES (2, 1)",
		"SELECT * FROM t AS order",
	} {
		_, err := c.ExecContext(t.Context(), q)
		requireMySQLError(t, err, 1064, "42000", q)
	}
	_, err = db.ExecContext(t.Context(), "INSERT INTO t (id, key) VALUES (?, 1)", 2)
	requireMySQLError(t, err, 1064, "42000")
	mustExec(t, c, "CREATE TABLE `interval` (begin INT, end INT, `select` INT)")
	mustExec(t, db, "INSERT INTO `interval` (begin, end, `select`) VALUES (?, ?, ?)", 1, 2, 3)
	require.EqualValues(t, 6, queryInt(t, c, "SELECT begin + end + `select` FROM d.interval"))
}
