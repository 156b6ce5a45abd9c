package wire

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Keys longer than InnoDB allows are refused by the DDL that would make
// them, with MySQL's 1071, and a CREATE TABLE refused so leaves no table.
func TestKeyTooLong(t *testing.T) {
	_, db := startWithDB(t, "d", "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(1000), txt TEXT)")
	c := clientConn(t, db)
	ctx := context.Background()
	const msg = "Specified key was too long; max key length is 3072 bytes"
	for _, q := range []string{
		"CREATE TABLE big (k VARBINARY(20000) PRIMARY KEY)",
		"CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(5000), UNIQUE (v))",
		"CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(769), KEY (v))",
		"CREATE INDEX iv ON t (v)",
		"ALTER TABLE t ADD UNIQUE KEY iv (v)",
		"CREATE INDEX itxt ON t (txt(1000))",
	} {
		_, err := c.ExecContext(ctx, q)
		me := requireMySQLError(t, err, 1071, "42000", q)
		require.Equal(t, msg, me.Message, q)
		require.Zero(t, queryInt(t, c, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'd' AND table_name = 'big'"), q)
	}
	require.EqualValues(t, 1, queryInt(t, c, "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = 'd' AND table_name = 't'"))

	mustExec(t, c, "CREATE TABLE ok (k VARCHAR(768) PRIMARY KEY, v VARCHAR(768), KEY (v))")
	mustExec(t, c, "INSERT INTO ok VALUES (?, ?)", strings.Repeat("\u00e9", 768), strings.Repeat("\U0001F600", 768))
	require.EqualValues(t, 1, queryInt(t, c, "SELECT COUNT(*) FROM ok WHERE v = ?", strings.Repeat("\U0001F600", 768)))
}
