package docker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
)

const (
	// project is the compose project the tests run the example under.
	project = "fogdbtest"
	// imageTag is the tag docker/build.sh gives the images the tests build.
	imageTag = "dockertest"
	// rootPassword and secret are the example's, for the tests only.
	rootPassword = "dockertest-root"
	secret       = "dockertest-cluster-secret-of-at-least-32-bytes"
	// patience bounds every wait for the cluster.
	patience = 90 * time.Second
)

// sites of the example, with the address of each site's controller and
// sidecar on the site's network and on the WAN.
var sites = []site{
	{name: "a", lan: "10.213.1.10", wan: "10.213.0.11"},
	{name: "b", lan: "10.213.2.10", wan: "10.213.0.12"},
	{name: "c", lan: "10.213.3.10", wan: "10.213.0.13"},
}

type site struct{ name, lan, wan string }

func siteByName(t *testing.T, name string) site {
	for _, s := range sites {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no site %q", name)
	return site{}
}

// repoRoot is the repository's top directory (this package is two below).
func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// engineReachable tells whether a Docker engine answers, and why not.
func engineReachable() (bool, string) {
	if _, err := exec.LookPath("docker"); err != nil {
		return false, "no docker command"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return false, fmt.Sprintf("docker info: %v: %s", err, bytes.TrimSpace(out))
	}
	return true, ""
}

// composeCommand is how this machine runs Compose: the docker CLI's plugin
// or the standalone docker-compose.
func composeCommand() ([]string, error) {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, nil
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}, nil
	}
	return nil, errors.New("neither docker compose nor docker-compose is installed")
}

// run runs a command and returns its standard output; a failure fails
// the test with what it printed.
func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	out, err := tryRun(env, name, args...)
	require.NoError(t, err, "%s %s", name, strings.Join(args, " "))
	return out
}

func tryRun(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// example is the compose example under the tests' project name.
type example struct {
	t       *testing.T
	compose []string
	env     []string
	file    string
	caPool  *x509.CertPool
	// tlsVersions counts the client TLS handshakes by version.
	tls13, tlsOther atomic.Int64
}

func (e *example) run(args ...string) string {
	e.t.Helper()
	full := append(append(append([]string{}, e.compose[1:]...), "-p", project, "-f", e.file), args...)
	return run(e.t, e.env, e.compose[0], full...)
}

func (e *example) tryRun(args ...string) (string, error) {
	full := append(append(append([]string{}, e.compose[1:]...), "-p", project, "-f", e.file), args...)
	return tryRun(e.env, e.compose[0], full...)
}

// container is the ID of a service's container.
func (e *example) container(service string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.run("ps", "-q", service))
	require.NotEmpty(e.t, id, "no container for %s", service)
	return id
}

func (e *example) health(service string) string {
	out, err := tryRun(nil, "docker", "inspect", "-f", "{{.State.Health.Status}}", e.container(service))
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(out)
}

func (e *example) waitHealthy(t testing.TB, services ...string) {
	t.Helper()
	for _, s := range services {
		eventually(t, patience, func() error {
			if h := e.health(s); h != "healthy" {
				return fmt.Errorf("%s is %s", s, h)
			}
			return nil
		})
	}
}

// trustCA reads the cluster CA from a sidecar's certificate volume.
func (e *example) trustCA() {
	e.t.Helper()
	dir := e.t.TempDir()
	run(e.t, nil, "docker", "cp", e.container("fogdb-a")+":/certs/ca.crt", dir)
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	require.NoError(e.t, err)
	e.caPool = x509.NewCertPool()
	require.True(e.t, e.caPool.AppendCertsFromPEM(pem))
	// The driver fills in ServerName (the address dialled) on its copy.
	err = mysql.RegisterTLSConfig("fogdbtest", &tls.Config{
		RootCAs:    e.caPool,
		MinVersion: tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.Version == tls.VersionTLS13 {
				e.tls13.Add(1)
			} else {
				e.tlsOther.Add(1)
			}
			return nil
		},
	})
	require.NoError(e.t, err)
}

// dsn is a DSN for the sidecar of site s, from the host through the
// site's network, in TLS verified against the cluster CA.
func (e *example) dsn(s site) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = "root", rootPassword
	cfg.Net, cfg.Addr = "tcp", s.lan+":3306"
	cfg.TLSConfig = "fogdbtest"
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout, cfg.WriteTimeout = 30*time.Second, 30*time.Second
	return cfg.FormatDSN()
}

func (e *example) db(s site) *sql.DB {
	e.t.Helper()
	db, err := sql.Open("mysql", e.dsn(s))
	require.NoError(e.t, err)
	db.SetMaxIdleConns(0) // a killed node's connections are not reused
	e.t.Cleanup(func() { db.Close() })
	return db
}

// globalLeader is the site whose node leads the global group, as site
// s's node sees it.
func (e *example) globalLeader(s site) (string, error) {
	db, err := sql.Open("mysql", e.dsn(s))
	if err != nil {
		return "", err
	}
	defer db.Close()
	var leader sql.NullString
	err = db.QueryRow("SELECT leader FROM fogdb.groups WHERE group_id = 1").Scan(&leader)
	if err != nil {
		return "", err
	}
	if !leader.Valid || leader.String == "" {
		return "", errors.New("no leader known")
	}
	return leader.String, nil
}

// controllerReports are the JSON lines a controller printed.
type controllerReport struct {
	Site      string           `json:"site"`
	Seq       int64            `json:"seq"`
	TLS       string           `json:"tls"`
	Local     string           `json:"local"`
	Global    string           `json:"global"`
	Seen      map[string]int64 `json:"seen"`
	SeenError string           `json:"seen_error"`
}

func (e *example) controllerReports(s site) []controllerReport {
	e.t.Helper()
	out, err := exec.Command("docker", "logs", e.container("ctl-"+s.name)).CombinedOutput()
	require.NoError(e.t, err)
	var rs []controllerReport
	for _, line := range strings.Split(string(out), "\n") {
		var r controllerReport
		if json.Unmarshal([]byte(line), &r) == nil && r.Site != "" {
			rs = append(rs, r)
		}
	}
	return rs
}

// digest digests the rows of a query: equal digests, equal rows.
func digest(db *sql.DB, query string) (string, int, error) {
	rows, err := db.Query(query)
	if err != nil {
		return "", 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n := 0
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return "", 0, err
		}
		for _, v := range vals {
			fmt.Fprintf(h, "%d:%s|", len(v), v)
		}
		h.Write([]byte{'\n'})
		n++
	}
	return hex.EncodeToString(h.Sum(nil)), n, rows.Err()
}

// eventually retries f until it returns nil or the deadline passes.
func eventually(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mysqlCode is the MySQL error number of err, 0 for another error.
func mysqlCode(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// dumpIfHung arms a timer: if the returned func is not called within d,
// the service's node is sent SIGQUIT and its goroutines (which the Go
// runtime prints on its way out) are logged, to show where a statement
// that should have been answered waits.
func (e *example) dumpIfHung(service string, d time.Duration) func() {
	id := e.container(service)
	tm := time.AfterFunc(d, func() {
		since := time.Now().Add(-time.Second).Format(time.RFC3339)
		tryRun(nil, "docker", "kill", "-s", "QUIT", id)
		time.Sleep(2 * time.Second) // the dump is written as the process exits
		out, _ := exec.Command("docker", "logs", "--since", since, id).CombinedOutput()
		e.t.Logf("%s did not answer within %v; its goroutines:\n%s", service, d, out)
	})
	return func() { tm.Stop() }
}

// waitServing waits until the sidecar of s answers a query over TLS.
func (e *example) waitServing(t testing.TB, s site) {
	t.Helper()
	eventually(t, patience, func() error {
		db, err := sql.Open("mysql", e.dsn(s))
		if err != nil {
			return err
		}
		defer db.Close()
		return db.Ping()
	})
}
