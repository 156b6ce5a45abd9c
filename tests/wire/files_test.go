package wire

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
)

// secret is what the host's files hold in these tests: no answer, error
// or warning may ever show it unless the client may read the file.
const secret = "root:$6$s3cr3t-hash:19000:0:99999:7:::"

const secureFilePrivMsg = "The MySQL server is running with the --secure-file-priv option so it cannot execute this statement"

// writeFile writes a file of the host with the given mode (chmod, so that
// the umask does not decide).
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), mode))
	require.NoError(t, os.Chmod(path, mode))
}

// loadFile is LOAD_FILE(path) on c: nil for NULL.
func loadFile(t *testing.T, c querier, path string) []byte {
	t.Helper()
	var b []byte
	require.NoError(t, c.QueryRowContext(context.Background(), "SELECT LOAD_FILE(?)", path).Scan(&b))
	return b
}

func requireNoSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		require.NotContains(t, err.Error(), "s3cr3t")
	}
}

// fileStatements are the statements that read or write the host's files.
func fileStatements(in, out string) []string {
	return []string{
		"LOAD DATA INFILE '" + in + "' INTO TABLE t",
		"LOAD DATA INFILE '" + in + "' INTO TABLE t FIELDS TERMINATED BY ':'",
		"SELECT id INTO OUTFILE '" + out + "' FROM t",
		"SELECT id INTO DUMPFILE '" + out + "' FROM t LIMIT 1",
	}
}

// Without --secure-file-priv, SQL reaches no file of the host:
// secure_file_priv is NULL, LOAD_FILE is NULL and LOAD DATA INFILE and
// SELECT ... INTO OUTFILE fail with 1290, for root too; an account without
// the FILE privilege gets 1045 first, as in MySQL. Nothing shows the file.
func TestFileAccessDisabledByDefault(t *testing.T) {
	srv, db := startWithDB(t, "d", "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))")
	mustExec(t, db, "INSERT INTO t VALUES (1, 'a')")
	dir := t.TempDir()
	shadow := filepath.Join(dir, "shadow")
	writeFile(t, shadow, secret+"\n", 0o644)
	out := filepath.Join(dir, "out.txt")

	c := soloConn(t, srv, "d")
	var priv sql.NullString
	require.NoError(t, c.QueryRowContext(context.Background(), "SELECT @@GLOBAL.secure_file_priv").Scan(&priv))
	require.False(t, priv.Valid, "secure_file_priv is %q, not NULL", priv.String)
	_, err := c.ExecContext(context.Background(), "SET GLOBAL secure_file_priv = '"+dir+"'")
	requireMySQLError(t, err, 1238, "HY000")

	require.Nil(t, loadFile(t, c, shadow))
	require.Nil(t, loadFile(t, c, "/etc/passwd"))
	for _, q := range fileStatements(shadow, out) {
		_, err := c.ExecContext(context.Background(), q)
		me := requireMySQLError(t, err, 1290, "HY000", q)
		require.Equal(t, secureFilePrivMsg, me.Message)
		requireNoSecret(t, err)
	}
	_, err = os.Stat(out)
	require.True(t, os.IsNotExist(err), "%s was written", out)
	require.EqualValues(t, 1, queryInt(t, c, "SELECT COUNT(*) FROM t"))

	mustExec(t, db, "CREATE USER 'app'@'%' IDENTIFIED BY 's3cret'")
	mustExec(t, db, "GRANT ALL ON d.* TO 'app'@'%'")
	app := openDSN(t, userDSN(srv, "app", "s3cret", "d"))
	require.Nil(t, loadFile(t, app, shadow))
	for _, q := range fileStatements(shadow, out) {
		_, err := app.ExecContext(context.Background(), q)
		me := requireMySQLError(t, err, 1045, "28000", q)
		require.Equal(t, "Access denied for user 'app'@'%' (using password: YES)", me.Message, q)
	}
}

// With --secure-file-priv DIR, files in DIR (and below it) can be read and
// written by accounts holding FILE; anything else is refused as MySQL
// refuses it, and no refusal shows what a file holds.
func TestFileAccessInSecureDir(t *testing.T) {
	priv := t.TempDir()
	outside := t.TempDir()
	srv, db := startNodeWith(t, func(c *server.Config) { c.SecureFilePriv = priv })
	mustExec(t, db, "CREATE DATABASE d")
	mustExec(t, db, "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(100))")
	c := soloConn(t, srv, "d")
	ctx := context.Background()

	var got string
	require.NoError(t, c.QueryRowContext(ctx, "SELECT @@secure_file_priv").Scan(&got))
	want, err := filepath.EvalSymlinks(priv)
	require.NoError(t, err)
	require.Equal(t, want+string(filepath.Separator), got)

	data := filepath.Join(priv, "data.txt")
	writeFile(t, data, "1\tone\n2\ttwo\n", 0o644)
	require.NoError(t, os.Mkdir(filepath.Join(priv, "sub"), 0o755))
	nested := filepath.Join(priv, "sub", "n.txt")
	writeFile(t, nested, "nested", 0o644)
	private := filepath.Join(priv, "private.txt")
	writeFile(t, private, secret, 0o600)
	shadow := filepath.Join(outside, "shadow")
	writeFile(t, shadow, secret+"\n", 0o644)
	link := filepath.Join(priv, "link")
	require.NoError(t, os.Symlink(shadow, link))
	// A sibling directory whose name starts with DIR's is not under it.
	sibling := priv + "-x"
	require.NoError(t, os.Mkdir(sibling, 0o755))
	t.Cleanup(func() { os.RemoveAll(sibling) })
	writeFile(t, filepath.Join(sibling, "f"), secret, 0o644)

	require.Equal(t, "1\tone\n2\ttwo\n", string(loadFile(t, c, data)))
	require.Equal(t, "nested", string(loadFile(t, c, nested)))
	for _, p := range []string{
		shadow,
		link, // a symbolic link out of DIR
		filepath.Join(priv, "..", filepath.Base(outside), "shadow"), // .. out of DIR
		filepath.Join(sibling, "f"),
		private, // not readable by all, as MySQL requires
		filepath.Join(priv, "missing"),
		priv, // a directory
	} {
		require.Nil(t, loadFile(t, c, p), "LOAD_FILE(%q)", p)
	}

	// A file over max_allowed_packet is NULL, with warning 1301.
	big := filepath.Join(priv, "big")
	writeFile(t, big, strings.Repeat("x", 2048), 0o644)
	mustExec(t, db, "SET GLOBAL max_allowed_packet = 1024")
	t.Cleanup(func() { mustExec(t, db, "SET GLOBAL max_allowed_packet = 67108864") })
	small := soloConn(t, srv, "d")
	require.Nil(t, loadFile(t, small, big))
	require.Equal(t, []warning{{"Warning", 1301, "Result of load_file() was larger than max_allowed_packet (1024) - truncated"}}, showWarnings(t, small))

	mustExec(t, c, "LOAD DATA INFILE '"+data+"' INTO TABLE t")
	require.Equal(t, []int64{1, 2}, queryInts(t, c, "SELECT id FROM t ORDER BY id"))
	_, err = c.ExecContext(ctx, "LOAD DATA INFILE '"+filepath.Join(priv, "missing")+"' INTO TABLE t")
	me := requireMySQLError(t, err, 13, "HY000")
	require.Equal(t, "Can't get stat of '"+filepath.Join(want, "missing")+"' (OS errno 2 - No such file or directory)", me.Message)
	_, err = c.ExecContext(ctx, "LOAD DATA INFILE '"+filepath.Join(priv, "sub")+"' INTO TABLE t")
	me = requireMySQLError(t, err, 1085, "HY000")
	require.Equal(t, "The file '"+filepath.Join(want, "sub")+"' must be in the database directory or be readable by all", me.Message)

	out := filepath.Join(priv, "out.txt")
	mustExec(t, c, "SELECT id, v INTO OUTFILE '"+out+"' FROM t ORDER BY id")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "1\tone\n2\ttwo\n", string(b))
	_, err = c.ExecContext(ctx, "SELECT id INTO OUTFILE '"+out+"' FROM t")
	me = requireMySQLError(t, err, 1086, "HY000")
	require.Equal(t, "File '"+filepath.Join(want, "out.txt")+"' already exists", me.Message)

	// Written through a link out of DIR, or next to DIR.
	for _, out := range []string{filepath.Join(priv, "link"), filepath.Join(sibling, "out2.txt")} {
		_, err := c.ExecContext(ctx, "SELECT id INTO OUTFILE '"+out+"' FROM t")
		requireMySQLError(t, err, 1290, "HY000", out)
	}
	require.NoError(t, os.Symlink(outside, filepath.Join(priv, "linkdir")))
	_, err = c.ExecContext(ctx, "SELECT id INTO OUTFILE '"+filepath.Join(priv, "linkdir", "out3.txt")+"' FROM t")
	requireMySQLError(t, err, 1290, "HY000")
	_, err = os.Stat(filepath.Join(outside, "out3.txt"))
	require.True(t, os.IsNotExist(err))
	for _, p := range []string{shadow, link, filepath.Join(sibling, "f")} {
		for _, q := range fileStatements(p, filepath.Join(outside, "out2.txt")) {
			_, err := c.ExecContext(ctx, q)
			me := requireMySQLError(t, err, 1290, "HY000", q)
			require.Equal(t, secureFilePrivMsg, me.Message)
			requireNoSecret(t, err)
		}
	}
	_, err = os.Stat(filepath.Join(outside, "out2.txt"))
	require.True(t, os.IsNotExist(err))
	require.EqualValues(t, 2, queryInt(t, c, "SELECT COUNT(*) FROM t"))

	// FILE is needed, and is a global privilege.
	mustExec(t, db, "CREATE USER 'app'@'%' IDENTIFIED BY 's3cret'")
	mustExec(t, db, "GRANT ALL ON d.* TO 'app'@'%'")
	app := openDSN(t, userDSN(srv, "app", "s3cret", "d"))
	require.Nil(t, loadFile(t, app, data))
	for _, q := range fileStatements(data, filepath.Join(priv, "app.txt")) {
		_, err := app.ExecContext(ctx, q)
		me := requireMySQLError(t, err, 1045, "28000", q)
		require.Equal(t, "Access denied for user 'app'@'%' (using password: YES)", me.Message, q)
	}
	mustExec(t, db, "GRANT FILE ON *.* TO 'app'@'%'")
	app2 := openDSN(t, userDSN(srv, "app", "s3cret", "d"))
	require.Equal(t, "nested", string(loadFile(t, app2, nested)))
	mustExec(t, app2, "SELECT id INTO OUTFILE '"+filepath.Join(priv, "app.txt")+"' FROM t")

	// FILE alone does not let an account write a table it may not insert
	// into.
	mustExec(t, db, "CREATE USER 'reader'@'%' IDENTIFIED BY 'r'")
	mustExec(t, db, "GRANT SELECT ON d.* TO 'reader'@'%'")
	mustExec(t, db, "GRANT FILE ON *.* TO 'reader'@'%'")
	reader := openDSN(t, userDSN(srv, "reader", "r", "d"))
	_, err = reader.ExecContext(ctx, "LOAD DATA INFILE '"+data+"' REPLACE INTO TABLE t")
	me = requireMySQLError(t, err, 1142, "42000")
	require.Equal(t, "INSERT command denied to user 'reader'@'%' for table 't'", me.Message)
	require.EqualValues(t, 2, queryInt(t, c, "SELECT COUNT(*) FROM t"))
}
