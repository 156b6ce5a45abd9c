package sqlfront

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
)

func requireSQLError(t *testing.T, err error, num int, state, msgPart string) {
	t.Helper()
	require.Error(t, err)
	var se *mysql.SQLError
	require.True(t, errors.As(sql.UnwrapError(err), &se) || errors.As(err, &se), "not a MySQL error: %v", err)
	require.Equal(t, num, se.Num, "%v", err)
	require.Equal(t, state, se.State, "%v", err)
	require.Contains(t, se.Message, msgPart)
}

// TestKeyTooLongRefusedAtDDL: a primary key or index whose key MySQL counts
// as more than 3072 bytes is refused with 1071 by every DDL that makes one,
// and leaves nothing behind; keys at the limit are accepted.
func TestKeyTooLongRefusedAtDDL(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	const msg = "Specified key was too long; max key length is 3072 bytes"
	for _, q := range []string{
		"CREATE TABLE a (k VARBINARY(20000) PRIMARY KEY)",
		"CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(5000), UNIQUE (v))",
		"CREATE TABLE a (k VARCHAR(769) PRIMARY KEY)",
		"CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(769), KEY (v))",
		"CREATE TABLE a (id INT PRIMARY KEY, x VARCHAR(400), y VARCHAR(400), KEY (x, y))",
		"CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(3073) CHARACTER SET latin1, KEY (v))",
		"CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(1100) CHARACTER SET utf8mb3, KEY (v))",
		"CREATE TABLE a (k VARCHAR(767), n BIGINT, PRIMARY KEY (k, n))",
	} {
		err := db.exec(db.sess, q)
		// As the server does after a failed statement: a CREATE TABLE
		// whose index fails leaves no table.
		db.sess.UndoFailedCreate(sql.NewContext(context.Background(), sql.WithSession(db.sess)))
		requireSQLError(t, err, 1071, "42000", msg)
		require.Empty(t, db.query("SHOW TABLES LIKE 'a'"), q)
	}

	db.query("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(1000), w VARBINARY(4000), x VARCHAR(3072) CHARACTER SET latin1)")
	for _, q := range []string{
		"CREATE INDEX iv ON t (v)",
		"CREATE UNIQUE INDEX iw ON t (w)",
		"ALTER TABLE t ADD INDEX iv (v)",
		"ALTER TABLE t ADD UNIQUE KEY iv (v)",
		"ALTER TABLE t ADD INDEX iv (v(700), x(400))",
	} {
		requireSQLError(t, db.exec(db.sess, q), 1071, "42000", msg)
	}
	require.Len(t, db.query("SHOW INDEX FROM t"), 1, "only the primary key")
	db.query("CREATE TABLE k (id INT NOT NULL, v VARCHAR(1000) NOT NULL, w VARBINARY(4000) NOT NULL)")
	db.query("INSERT INTO k VALUES (1, 'a', 'b')")
	for _, q := range []string{
		"ALTER TABLE k ADD PRIMARY KEY (v)",
		"ALTER TABLE k ADD PRIMARY KEY (id, w)",
	} {
		requireSQLError(t, db.exec(db.sess, q), 1071, "42000", msg)
	}
	require.Empty(t, db.query("SHOW INDEX FROM k"))
	db.query("ALTER TABLE k ADD PRIMARY KEY (id)")

	// At the limit: the whole of a VARCHAR(768) utf8mb4, prefixes that fit,
	// 3072 single-byte characters.
	db.query("CREATE INDEX iv ON t (v(768))")
	db.query("ALTER TABLE t ADD INDEX ix (x)")
	db.query("ALTER TABLE t ADD UNIQUE KEY iw (w(3072))")
	db.query("ALTER TABLE t ADD INDEX ivx (v(500), x(500))")

	// Making an indexed column longer makes its key too long.
	requireSQLError(t, db.exec(db.sess, "ALTER TABLE t MODIFY x VARCHAR(3073) CHARACTER SET latin1"), 1071, "42000", msg)
	db.query("CREATE TABLE m (id INT PRIMARY KEY, v VARCHAR(700), KEY (v))")
	requireSQLError(t, db.exec(db.sess, "ALTER TABLE m MODIFY v VARCHAR(800)"), 1071, "42000", msg)
}

// TestLongestKeysStored: keys at MySQL's limit are stored and found, in a
// primary key and in a secondary index that carries the primary key too,
// whatever the characters (collation weights take 4 bytes each).
func TestLongestKeysStored(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (k VARCHAR(768) PRIMARY KEY, v VARCHAR(768), b VARBINARY(3072), KEY (v), KEY (b))")
	for i, s := range []string{strings.Repeat("a", 768), strings.Repeat("\u00e9", 768), strings.Repeat("\U0001F600", 768), strings.Repeat("\x01", 768)} {
		r := []rune(s)
		k := fmt.Sprintf("%d%s", i, string(r[1:]))
		err := db.exec(db.sess, fmt.Sprintf("INSERT INTO t VALUES ('%s', '%s', REPEAT(0x00, 3072))", k, s))
		require.NoError(t, err, "%.300s", err)
		require.Equal(t, []sql.Row{{int64(1)}}, db.query(fmt.Sprintf("SELECT COUNT(*) FROM t WHERE v = '%s'", s)))
	}
	require.Equal(t, []sql.Row{{int64(4)}}, db.query("SELECT COUNT(*) FROM t WHERE b = REPEAT(0x00, 3072)"))
}

// TestStoredKeyTooLongFailsTheStatement: a key MySQL allows but whose
// stored form is over kv.MaxKeySize (long single-byte-character keys)
// fails its statement with 1071; the transaction goes on and commits the
// rest.
func TestStoredKeyTooLongFailsTheStatement(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (k VARCHAR(3072) CHARACTER SET latin1 PRIMARY KEY)")
	require.NoError(t, db.exec(db.sess, "START TRANSACTION"))
	require.NoError(t, db.exec(db.sess, "INSERT INTO t VALUES ('short')"))
	err := db.exec(db.sess, fmt.Sprintf("INSERT INTO t VALUES ('%s')", strings.Repeat("a", 3072)))
	requireSQLError(t, err, 1071, "42000", fmt.Sprintf("max key length is %d bytes as fogdb stores it", kv.MaxKeySize))
	require.NoError(t, db.exec(db.sess, "COMMIT"))
	require.Equal(t, []sql.Row{{"short"}}, db.query("SELECT k FROM t"))
}
