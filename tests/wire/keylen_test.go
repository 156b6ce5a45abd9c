package wire

import (
	"context"
	"fmt"
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

// A prefix key is counted as MySQL counts it whatever the column's
// character set: CREATE TABLE, CREATE INDEX and ALTER TABLE ... ADD INDEX
// take a prefix up to 3072 bytes (its characters times the character
// set's longest character; bytes for binary strings), refuse one byte
// more with 1071, and refuse a prefix longer than its column with 1089.
func TestPrefixKeysInEveryCharset(t *testing.T) {
	srv, _ := startWithDB(t, "d")
	c := soloConn(t, srv, "d")
	ctx := context.Background()
	const tooLong = "Specified key was too long; max key length is 3072 bytes"
	const badPrefix = "Incorrect prefix key; the used key part isn't a string, the used length is longer than the key part, or the storage engine doesn't support unique prefix keys"
	for i, cs := range []struct {
		name   string
		column string // the column's type, the table's character set
		table  string
		limit  int // the longest prefix within 3072 bytes
		length int // the column's length, in its units
	}{
		{"utf8mb3", "VARCHAR(1100)", "CHARSET=utf8", 1024, 1100},
		{"utf8mb3 text", "TEXT", "CHARSET=utf8mb3", 1024, 21845},
		{"utf8mb4", "VARCHAR(1000)", "CHARSET=utf8mb4", 768, 1000},
		{"utf8mb4 column", "VARCHAR(1000) CHARACTER SET utf8mb4", "CHARSET=latin1", 768, 1000},
		{"latin1", "VARCHAR(3100)", "CHARSET=latin1", 3072, 3100},
		{"latin1 text", "TEXT", "CHARSET=latin1", 3072, 65535},
		{"binary", "VARBINARY(3100)", "", 3072, 3100},
		{"blob", "BLOB", "", 3072, 65535},
		{"binary charset", "VARCHAR(3100)", "CHARSET=binary", 3072, 3100},
	} {
		t.Run(cs.name, func(t *testing.T) {
			table := func(n int) string { return fmt.Sprintf("p%d_%d", i, n) }
			for n, form := range []func(name string, prefix int) []string{
				func(name string, prefix int) []string {
					return []string{fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, c %s, KEY k (c(%d))) %s", name, cs.column, prefix, cs.table)}
				},
				func(name string, prefix int) []string {
					return []string{
						fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, c %s) %s", name, cs.column, cs.table),
						fmt.Sprintf("CREATE INDEX k ON %s (c(%d))", name, prefix),
					}
				},
				func(name string, prefix int) []string {
					return []string{
						fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, c %s) %s", name, cs.column, cs.table),
						fmt.Sprintf("ALTER TABLE %s ADD INDEX k (c(%d))", name, prefix),
					}
				},
			} {
				// Within the limit: the key is made and used.
				name := table(n)
				for _, q := range form(name, cs.limit) {
					mustExec(t, c, q)
				}
				require.EqualValues(t, cs.limit, queryInt(t, c, "SELECT sub_part FROM information_schema.statistics WHERE table_schema = 'd' AND table_name = ? AND index_name = 'k'", name))
				mustExec(t, c, fmt.Sprintf("INSERT INTO %s VALUES (1, 'abc'), (2, 'abd')", name))
				require.EqualValues(t, 2, queryInt(t, c, fmt.Sprintf("SELECT id FROM %s FORCE INDEX (k) WHERE c = 'abd'", name)))
				mustExec(t, c, "DROP TABLE "+name)

				// One character (byte) more: 1071, and nothing is left.
				qs := form(name, cs.limit+1)
				for _, q := range qs[:len(qs)-1] {
					mustExec(t, c, q)
				}
				_, err := c.ExecContext(ctx, qs[len(qs)-1])
				me := requireMySQLError(t, err, 1071, "42000", qs[len(qs)-1])
				require.Equal(t, tooLong, me.Message)
				require.Zero(t, queryInt(t, c, "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = 'd' AND table_name = ? AND index_name = 'k'", name))
				mustExec(t, c, "DROP TABLE IF EXISTS "+name)

				// Longer than the column: 1089.
				if cs.length < 3072 {
					qs := form(name, cs.length+1)
					for _, q := range qs[:len(qs)-1] {
						mustExec(t, c, q)
					}
					_, err := c.ExecContext(ctx, qs[len(qs)-1])
					me := requireMySQLError(t, err, 1089, "HY000", qs[len(qs)-1])
					require.Equal(t, badPrefix, me.Message)
					mustExec(t, c, "DROP TABLE IF EXISTS "+name)
				}
			}
		})
	}
	// The case: a 255-character prefix of a VARCHAR(256) in utf8.
	mustExec(t, c, "CREATE TABLE u (id INT PRIMARY KEY, c VARCHAR(256)) CHARSET=utf8")
	mustExec(t, c, "CREATE INDEX i ON u (c(255))")
	mustExec(t, c, "ALTER TABLE u ADD INDEX j (c(255)), MODIFY c VARCHAR(300)")
	// A prefix of a column that is no string.
	_, err := c.ExecContext(ctx, "CREATE INDEX n ON u (id(2))")
	requireMySQLError(t, err, 1089, "HY000")
}
