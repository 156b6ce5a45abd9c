package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	gosql "github.com/dolthub/go-mysql-server/sql"
	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/pki"
)

const tlsRootPW = "tls-root-pw-41b7"

// tlsNode starts a node whose MySQL listener has a certificate for
// 127.0.0.1 from a fresh CA; it returns the node and the CA's directory.
func tlsNode(t *testing.T, tweak func(*Config)) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, 0))
	require.NoError(t, pki.Issue(dir, "mysql", []string{"127.0.0.1", "localhost"}, 0))
	cfg := DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.Cluster.PeerAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.RootPassword = tlsRootPW
	cfg.TLSCert = filepath.Join(dir, "mysql.crt")
	cfg.TLSKey = filepath.Join(dir, "mysql.key")
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		srv.Close()
		// The variable is the process's: leave it as other tests expect.
		require.NoError(t, gosql.SystemVariables.SetGlobal(gosql.NewEmptyContext(), "require_secure_transport", int8(0)))
	})
	return srv, dir
}

// tlsClient registers a go-sql-driver TLS configuration trusting the CA in
// dir, and counts the handshakes made with it and the serial numbers of the
// certificates the server showed.
type tlsClient struct {
	name       string
	handshakes atomic.Int64
	mu         sync.Mutex
	serials    []string
}

var tlsClients atomic.Int64

func newTLSClient(t *testing.T, dir string) *tlsClient {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(b))
	c := &tlsClient{name: fmt.Sprintf("fogdb-test-%d", tlsClients.Add(1))}
	require.NoError(t, mysql.RegisterTLSConfig(c.name, &tls.Config{
		RootCAs:    pool,
		ServerName: "127.0.0.1",
		VerifyConnection: func(cs tls.ConnectionState) error {
			c.handshakes.Add(1)
			c.mu.Lock()
			c.serials = append(c.serials, cs.PeerCertificates[0].SerialNumber.String())
			c.mu.Unlock()
			return nil
		},
	}))
	t.Cleanup(func() { mysql.DeregisterTLSConfig(c.name) })
	return c
}

func (c *tlsClient) lastSerial() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serials[len(c.serials)-1]
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	db.SetMaxIdleConns(0)
	t.Cleanup(func() { db.Close() })
	return db
}

func mysqlErrNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// Clients log in over TLS with mysql_native_password and
// caching_sha2_password accounts (the latter's full authentication sends
// the password itself, which only TLS makes acceptable).
func TestMySQLOverTLS(t *testing.T) {
	srv, dir := tlsNode(t, nil)
	cli := newTLSClient(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), adminPatience)
	defer cancel()

	root := openDB(t, fmt.Sprintf("root:%s@tcp(%s)/?tls=%s", tlsRootPW, srv.MySQLAddr(), cli.name))
	for _, q := range []string{
		"CREATE USER 'native'@'%' IDENTIFIED WITH mysql_native_password BY 'native-pw'",
		"CREATE USER 'sha2'@'%' IDENTIFIED WITH caching_sha2_password BY 'sha2-pw'",
	} {
		_, err := root.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.Positive(t, cli.handshakes.Load())

	for _, acct := range []struct{ user, pw, plugin string }{
		{"native", "native-pw", "mysql_native_password"},
		{"sha2", "sha2-pw", "caching_sha2_password"},
	} {
		before := cli.handshakes.Load()
		db := openDB(t, fmt.Sprintf("%s:%s@tcp(%s)/?tls=%s", acct.user, acct.pw, srv.MySQLAddr(), cli.name))
		var user string
		require.NoError(t, db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&user), acct.user)
		require.Equal(t, acct.user+"@%", user)
		require.Equal(t, before+1, cli.handshakes.Load(), "%s logged in over TLS", acct.user)

		var plugin string
		require.NoError(t, root.QueryRowContext(ctx, "SELECT plugin FROM mysql.user WHERE user = ?", acct.user).Scan(&plugin))
		require.Equal(t, acct.plugin, plugin)

		wrong := openDB(t, fmt.Sprintf("%s:bad@tcp(%s)/?tls=%s", acct.user, srv.MySQLAddr(), cli.name))
		require.Equal(t, uint16(1045), mysqlErrNumber(wrong.PingContext(ctx)), acct.user)
	}

	// Without TLS asked for, the same server still serves clients in clear.
	plain := openDB(t, fmt.Sprintf("native:native-pw@tcp(%s)/", srv.MySQLAddr()))
	require.NoError(t, plain.PingContext(ctx))
}

// require_secure_transport refuses clients without TLS with MySQL's 3159,
// and SET GLOBAL turns it on and off at run time.
func TestRequireSecureTransport(t *testing.T) {
	srv, dir := tlsNode(t, func(c *Config) { c.RequireSecureTransport = true })
	cli := newTLSClient(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), adminPatience)
	defer cancel()

	plain := openDB(t, fmt.Sprintf("root:%s@tcp(%s)/", tlsRootPW, srv.MySQLAddr()))
	err := plain.PingContext(ctx)
	require.Equal(t, uint16(ErSecureTransportRequired), mysqlErrNumber(err), "%v", err)
	require.ErrorContains(t, err, "Connections using insecure transport are prohibited while --require_secure_transport=ON.")
	var me *mysql.MySQLError
	require.ErrorAs(t, err, &me)
	require.Equal(t, [5]byte{'H', 'Y', '0', '0', '0'}, me.SQLState)

	secure := openDB(t, fmt.Sprintf("root:%s@tcp(%s)/?tls=%s", tlsRootPW, srv.MySQLAddr(), cli.name))
	var on int
	require.NoError(t, secure.QueryRowContext(ctx, "SELECT @@GLOBAL.require_secure_transport").Scan(&on))
	require.Equal(t, 1, on)

	_, err = secure.ExecContext(ctx, "SET GLOBAL require_secure_transport = OFF")
	require.NoError(t, err)
	require.NoError(t, plain.PingContext(ctx), "off: clients in clear are served again")

	_, err = secure.ExecContext(ctx, "SET GLOBAL require_secure_transport = ON")
	require.NoError(t, err)
	require.Equal(t, uint16(ErSecureTransportRequired), mysqlErrNumber(plain.PingContext(ctx)))
}

func TestRequireSecureTransportNeedsACertificate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.RequireSecureTransport = true
	require.ErrorContains(t, cfg.Validate(), "require_secure_transport needs --tls-cert")
	cfg.RequireSecureTransport = false
	cfg.TLSCert = "x.crt"
	require.ErrorContains(t, cfg.Validate(), "go together")
	cfg.TLSCert, cfg.Cluster.PeerCA = "", "ca.crt"
	require.ErrorContains(t, cfg.Validate(), "go together")
}

// ReloadTLS serves the certificate now in the files to the next client; a
// pair that does not load leaves the one in use.
func TestReloadTLS(t *testing.T) {
	srv, dir := tlsNode(t, nil)
	cli := newTLSClient(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), adminPatience)
	defer cancel()
	dsn := fmt.Sprintf("root:%s@tcp(%s)/?tls=%s", tlsRootPW, srv.MySQLAddr(), cli.name)

	require.NoError(t, openDB(t, dsn).PingContext(ctx))
	first := cli.lastSerial()

	require.NoError(t, pki.Issue(dir, "mysql", []string{"127.0.0.1"}, 0))
	require.NoError(t, openDB(t, dsn).PingContext(ctx))
	require.Equal(t, first, cli.lastSerial(), "nothing reread before the reload")

	require.NoError(t, srv.ReloadTLS())
	require.NoError(t, openDB(t, dsn).PingContext(ctx))
	second := cli.lastSerial()
	require.NotEqual(t, first, second, "the new certificate is served after the reload")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "mysql.key"), []byte("garbage"), 0o600))
	require.Error(t, srv.ReloadTLS())
	require.NoError(t, openDB(t, dsn).PingContext(ctx))
	require.Equal(t, second, cli.lastSerial(), "a broken pair leaves the one in use")
}

// PyMySQL (as OpenStack uses it) and the mysql command-line client log in
// over TLS while the server refuses clients in clear, so a login that
// succeeds used TLS.
func TestMySQLClientsOverTLS(t *testing.T) {
	srv, dir := tlsNode(t, func(c *Config) { c.RequireSecureTransport = true })
	cli := newTLSClient(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), adminPatience)
	defer cancel()
	root := openDB(t, fmt.Sprintf("root:%s@tcp(%s)/?tls=%s", tlsRootPW, srv.MySQLAddr(), cli.name))
	for _, q := range []string{
		"CREATE USER 'native'@'%' IDENTIFIED WITH mysql_native_password BY 'native-pw'",
		"CREATE USER 'sha2'@'%' IDENTIFIED WITH caching_sha2_password BY 'sha2-pw'",
	} {
		_, err := root.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	host, port, _ := strings.Cut(srv.MySQLAddr(), ":")
	ca := filepath.Join(dir, "ca.crt")

	t.Run("PyMySQL", func(t *testing.T) {
		py := "/usr/bin/python3"
		if err := exec.Command(py, "-c", "import pymysql").Run(); err != nil {
			t.Skipf("PyMySQL is not installed for %s (apt-get install python3-pymysql): %v", py, err)
		}
		script := `
import sys, pymysql
host, port, user, pw, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
kw = dict(host=host, port=port, user=user, password=pw)
if ca:
    kw["ssl"] = {"ca": ca}
try:
    c = pymysql.connect(**kw)
except pymysql.err.OperationalError as e:
    print("error", e.args[0], e.args[1])
    sys.exit(0)
cur = c.cursor()
cur.execute("SELECT CURRENT_USER()")
print("user", cur.fetchone()[0])
`
		for _, acct := range [][2]string{{"native", "native-pw"}, {"sha2", "sha2-pw"}} {
			out, err := exec.CommandContext(ctx, py, "-c", script, host, port, acct[0], acct[1], ca).CombinedOutput()
			require.NoError(t, err, string(out))
			require.Equal(t, "user "+acct[0]+"@%\n", string(out))
			out, err = exec.CommandContext(ctx, py, "-c", script, host, port, acct[0], acct[1], "").CombinedOutput()
			require.NoError(t, err, string(out))
			require.Equal(t, "error 3159 Connections using insecure transport are prohibited while --require_secure_transport=ON.\n", string(out), "PyMySQL without TLS as %s", acct[0])
		}
	})

	t.Run("mysql", func(t *testing.T) {
		bin, err := exec.LookPath("mysql")
		if err != nil {
			t.Skip("no mysql command-line client installed")
		}
		for _, acct := range [][2]string{{"native", "native-pw"}, {"sha2", "sha2-pw"}} {
			out, err := exec.CommandContext(ctx, bin, "--ssl", "--ssl-ca="+ca, "-h", host, "-P", port,
				"-u", acct[0], "-p"+acct[1], "-e", `\s`).CombinedOutput()
			if acct[0] == "sha2" && err != nil && strings.Contains(string(out), "caching_sha2_password") &&
				strings.Contains(string(out), "cannot be loaded") {
				t.Logf("this mysql client has no caching_sha2_password plugin: %s", out)
				continue
			}
			require.NoError(t, err, string(out))
			require.Regexp(t, `SSL:\s+Cipher in use is \S+`, string(out), acct[0])
			require.Contains(t, string(out), acct[0]+"@")
		}
		out, err := exec.CommandContext(ctx, bin, "--skip-ssl", "-h", host, "-P", port,
			"-u", "native", "-pnative-pw", "-e", "SELECT 1").CombinedOutput()
		require.Error(t, err)
		require.Contains(t, string(out), "3159")
	})
}

// A node whose peer certificate its own --peer-ca did not sign refuses to
// start: every peer would refuse it anyway, one handshake at a time.
func TestPeerCertificateMustChainToTheCA(t *testing.T) {
	ca, other := t.TempDir(), t.TempDir()
	require.NoError(t, pki.InitCA(ca, 0))
	require.NoError(t, pki.InitCA(other, 0))
	require.NoError(t, pki.Issue(other, "n1", []string{"127.0.0.1"}, 0))
	cfg := DefaultConfig()
	cfg.MySQLAddr, cfg.AdminAddr, cfg.Cluster.PeerAddr = "127.0.0.1:0", "", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Cluster.PeerCA = filepath.Join(ca, "ca.crt")
	cfg.Cluster.PeerCert = filepath.Join(other, "n1.crt")
	cfg.Cluster.PeerKey = filepath.Join(other, "n1.key")
	srv, err := New(cfg)
	if err == nil {
		srv.Close()
	}
	require.ErrorContains(t, err, "does not verify against --peer-ca")
}

// An account created with REQUIRE SSL logs in over TLS only: in clear it
// is denied with 1045 as in MySQL, whatever the password; other accounts
// still may. The requirement goes with DROP USER.
func TestRequireSSLAccount(t *testing.T) {
	srv, dir := tlsNode(t, nil)
	cli := newTLSClient(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), adminPatience)
	defer cancel()
	root := openDB(t, fmt.Sprintf("root:%s@tcp(%s)/?tls=%s", tlsRootPW, srv.MySQLAddr(), cli.name))
	exec := func(q string) {
		t.Helper()
		_, err := root.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	inClear := func(user string) error {
		return openDB(t, fmt.Sprintf("%s:pw@tcp(%s)/", user, srv.MySQLAddr())).PingContext(ctx)
	}
	overTLS := func(user string) error {
		return openDB(t, fmt.Sprintf("%s:pw@tcp(%s)/?tls=%s", user, srv.MySQLAddr(), cli.name)).PingContext(ctx)
	}
	exec("CREATE USER 'sec'@'%' IDENTIFIED WITH mysql_native_password BY 'pw' REQUIRE SSL")
	exec("CREATE USER 'sha'@'%' IDENTIFIED WITH caching_sha2_password BY 'pw' REQUIRE SSL")
	exec("CREATE USER 'x509'@'%' IDENTIFIED WITH mysql_native_password BY 'pw' REQUIRE X509")
	exec("CREATE USER 'plain'@'%' IDENTIFIED WITH mysql_native_password BY 'pw'")

	require.NoError(t, overTLS("sec"))
	require.NoError(t, overTLS("sha"))
	require.NoError(t, inClear("plain"))
	for _, u := range []string{"sec", "x509"} {
		err := inClear(u)
		require.Equal(t, uint16(1045), mysqlErrNumber(err), "%s in clear: %v", u, err)
		require.ErrorContains(t, err, fmt.Sprintf("Access denied for user '%s'@'127.0.0.1' (using password: YES)", u))
	}

	exec("DROP USER 'sec'@'%'")
	exec("CREATE USER 'sec'@'%' IDENTIFIED WITH mysql_native_password BY 'pw'")
	require.NoError(t, inClear("sec"), "a new account of the same name has no requirement")
	exec("DROP USER 'x509'@'%'")
	exec("CREATE USER IF NOT EXISTS 'plain'@'%' IDENTIFIED BY 'other' REQUIRE SSL")
	require.NoError(t, inClear("plain"), "CREATE USER IF NOT EXISTS leaves an existing account as it was")
}

// Ssl_version and Ssl_cipher show the session's TLS, as MySQL's do (the
// mysql client's status command prints them), and are empty in clear.
func TestTLSStatusVariables(t *testing.T) {
	srv, dir := tlsNode(t, nil)
	cli := newTLSClient(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), adminPatience)
	defer cancel()
	status := func(db *sql.DB, name string) string {
		t.Helper()
		var n, v string
		require.NoError(t, db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE '"+name+"'").Scan(&n, &v))
		return v
	}
	secure := openDB(t, fmt.Sprintf("root:%s@tcp(%s)/?tls=%s", tlsRootPW, srv.MySQLAddr(), cli.name))
	require.Equal(t, "TLSv1.3", status(secure, "Ssl_version"))
	// Which TLS 1.3 suite depends on the hardware (AES or ChaCha20).
	require.Regexp(t, `^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$`, status(secure, "Ssl_cipher"))
	plain := openDB(t, fmt.Sprintf("root:%s@tcp(%s)/", tlsRootPW, srv.MySQLAddr()))
	require.Equal(t, "", status(plain, "Ssl_version"))
	require.Equal(t, "", status(plain, "Ssl_cipher"))
}
