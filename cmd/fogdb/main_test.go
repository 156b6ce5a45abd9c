package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fogdb/fogdb/internal/freeport"
	_ "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/replication"
	"github.com/fogdb/fogdb/server"
)

// patience bounds every wait for the child process.
const patience = 60 * time.Second

// TestMain lets the test binary act as the fogdb command when the tests
// start it as a child process.
func TestMain(m *testing.M) {
	if os.Getenv("FOGDBTEST_AS_COMMAND") == "1" {
		os.Exit(run(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

// command is the fogdb command run as a child process with env added to a
// minimal environment (no FOGDB_* of the caller's leaks in).
func command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{"FOGDBTEST_AS_COMMAND=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, env...)
	return cmd
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func healthcheckExit(t *testing.T, adminAddr string) int {
	t.Helper()
	cmd := command([]string{"FOGDB_ADMIN_ADDR=" + adminAddr}, "healthcheck", "--timeout", "2s")
	var out bytes.Buffer
	cmd.Stderr = &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	require.NoError(t, err, out.String())
	return 0
}

// TestServeFromEnvironmentJSONLogsWithoutSecrets runs a node configured by
// FOGDB_* variables only, with a root password and a cluster secret, logging
// JSON at debug: the health check follows its readiness, every line it
// writes is one JSON record (raft's lines included, with their fields), and
// no password or secret appears anywhere in its output.
func TestServeFromEnvironmentJSONLogsWithoutSecrets(t *testing.T) {
	const (
		rootPW   = "rootpw-Vq3r8xKd"
		secret   = "clustersecret-Lm2n5b7C9d1f3g5h7j9k1m3n5p"
		appPW    = "apppw-T6y8u0i2"
		newPW    = "newpw-Ee4r6t8y"
		wrongPW  = "wrongpw-Zx1c3v5b"
		failedPW = "failedpw-Qa2s4d6f"
	)
	mysqlAddr, adminAddr, peerAddr := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
	require.Equal(t, 1, healthcheckExit(t, adminAddr), "nothing listens yet")

	cmd := command([]string{
		"FOGDB_MYSQL_ADDR=" + mysqlAddr,
		"FOGDB_ADMIN_ADDR=" + adminAddr,
		"FOGDB_PEER_ADDR=" + peerAddr,
		"FOGDB_DATA_DIR=" + t.TempDir(),
		"FOGDB_NODE_ID=envnode",
		"FOGDB_LOG_FORMAT=json",
		"FOGDB_LOG_LEVEL=debug",
		"FOGDB_ROOT_PASSWORD=" + rootPW,
		"FOGDB_CLUSTER_SECRET=" + secret,
	}, "serve")
	var logs syncBuffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	deadline := time.Now().Add(patience)
	for healthcheckExit(t, adminAddr) != 0 {
		select {
		case <-exited:
			t.Fatalf("fogdb exited: %v\n%s", waitErr, logs.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "never ready:\n%s", logs.String())
		time.Sleep(50 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	db, err := sql.Open("mysql", fmt.Sprintf("root:%s@tcp(%s)/", rootPW, mysqlAddr))
	require.NoError(t, err)
	defer db.Close()
	for _, q := range []string{
		"CREATE USER 'app'@'%' IDENTIFIED BY '" + appPW + "'",
		"ALTER USER 'app'@'%' IDENTIFIED BY '" + newPW + "'",
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	// Statements that fail while holding a password: the failure is logged.
	_, err = db.ExecContext(ctx, "CREATE USER 'app'@'%' IDENTIFIED BY '"+failedPW+"'")
	require.Error(t, err)
	_, err = db.ExecContext(ctx, "CREATE USER 'x'@'%' IDENTIFIED BY '"+failedPW+"' WHERE ?", 1)
	require.Error(t, err)
	// A login with a wrong password.
	bad, err := sql.Open("mysql", fmt.Sprintf("app:%s@tcp(%s)/", wrongPW, mysqlAddr))
	require.NoError(t, err)
	require.Error(t, bad.PingContext(ctx))
	bad.Close()
	good, err := sql.Open("mysql", fmt.Sprintf("app:%s@tcp(%s)/", newPW, mysqlAddr))
	require.NoError(t, err)
	require.NoError(t, good.PingContext(ctx))
	good.Close()

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, waitErr, logs.String())
	case <-time.After(patience):
		t.Fatalf("fogdb did not stop on SIGTERM:\n%s", logs.String())
	}

	out := logs.String()
	for _, s := range []string{rootPW, secret, appPW, newPW, wrongPW, failedPW} {
		require.NotContains(t, out, s, "a password or secret was logged")
	}
	var raftRecords, withFields int
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not one JSON record: %s", line)
		require.Contains(t, rec, "level", line)
		msg, _ := rec["msg"].(string)
		for _, lv := range []string{"[INFO]", "[DEBUG]", "[WARN]", "[ERROR]", "[TRACE]"} {
			require.NotContains(t, msg, lv, "a line formatted by hclog inside a record: %s", line)
		}
		if name, _ := rec["logger"].(string); strings.HasPrefix(name, "raft") {
			raftRecords++
			if len(rec) > 4 { // time, level, msg, logger, and raft's own fields
				withFields++
			}
		}
	}
	require.NoError(t, sc.Err())
	require.Positive(t, raftRecords, "no record from raft:\n%s", out)
	require.Positive(t, withFields, "raft's records carry no fields of their own:\n%s", out)
}

// TestHealthcheckUnready: the check passes on a serving node and fails once
// it is gone; a bad address is a usage error.
func TestHealthcheckUnready(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.MySQLAddr, cfg.AdminAddr, cfg.Cluster.PeerAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	srv, err := server.New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	addr := srv.AdminAddr()
	var stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"healthcheck", "--admin-addr", addr}, &stderr), stderr.String())

	require.NoError(t, srv.Close())
	require.Equal(t, 1, run([]string{"healthcheck", "--admin-addr", addr}, &stderr))
	require.Equal(t, 2, run([]string{"healthcheck", "--admin-addr", "nonsense"}, &stderr))
	require.Equal(t, 2, run([]string{"healthcheck", "--admin-addr", ""}, &stderr))
}

func TestDialableAdmin(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:7070":   "127.0.0.1:7070",
		":7070":          "127.0.0.1:7070",
		"[::]:7070":      "[::1]:7070",
		"10.1.2.3:7070":  "10.1.2.3:7070",
		"fogdb-a:7070":   "fogdb-a:7070",
		"127.0.0.1:7070": "127.0.0.1:7070",
	} {
		got, err := dialableAdmin(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
}

// TestEveryFlagReadsItsVariable: every flag of serve takes its value from
// FOGDB_<NAME> when the command line does not give it, the command line
// wins, and README lists every flag.
func TestEveryFlagReadsItsVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	cfg := server.DefaultConfig()
	fs, _ := serveFlags(&cfg, io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		require.True(t, strings.Contains(string(readme), "`--"+f.Name+"`"), "README does not list --%s", f.Name)
		var val string
		switch f.Value.(flag.Getter).Get().(type) {
		case bool:
			val = "true"
		case int, int64, uint, uint64:
			val = "7"
		case time.Duration:
			val = "30s"
		case replication.Version:
			val = "1.1"
		default:
			val = "from-env"
		}
		t.Setenv(envName(f.Name), val)
	})
	cfg = server.DefaultConfig()
	fs, _ = serveFlags(&cfg, io.Discard)
	require.NoError(t, parseFlags(fs, []string{"--node-id", "from-flag"}))
	fs.VisitAll(func(f *flag.Flag) {
		want := os.Getenv(envName(f.Name))
		if f.Name == "node-id" {
			want = "from-flag"
		}
		require.Equal(t, want, f.Value.String(), "--%s", f.Name)
	})
	require.Equal(t, "from-env", cfg.Cluster.PeerCA)
	require.Equal(t, "from-env", cfg.MySQLAddr)
	require.Equal(t, "from-flag", cfg.Cluster.NodeID)

	t.Setenv("FOGDB_CLUSTER_TIMEOUT", "not-a-duration-"+"s3cr3t")
	cfg = server.DefaultConfig()
	var stderr bytes.Buffer
	fs, _ = serveFlags(&cfg, &stderr)
	require.Error(t, parseFlags(fs, nil))
	require.Contains(t, stderr.String(), "FOGDB_CLUSTER_TIMEOUT")
	require.NotContains(t, stderr.String(), "s3cr3t", "a bad value may be a secret: never echo it")
}

// --advertise-version takes COMMANDS.SNAPSHOT up to this build's own.
func TestAdvertiseVersionFlag(t *testing.T) {
	var v replication.Version
	f := versionFlag{&v}
	require.NoError(t, f.Set("1.1"))
	require.Equal(t, replication.Version{Commands: replication.CommandCommit, Snapshot: 1}, v)
	require.Equal(t, "1.1", f.String())
	b := replication.BuildVersion
	require.NoError(t, f.Set(fmt.Sprintf("%d.%d", b.Commands, b.Snapshot)))
	for _, bad := range []string{"0.1", "1.0", fmt.Sprintf("%d.1", b.Commands+1), "1", "1.1.1", "a.b", " 1.1"} {
		require.Error(t, f.Set(bad), bad)
	}
	require.NoError(t, f.Set(""))
	require.Equal(t, replication.Version{}, v)
}
