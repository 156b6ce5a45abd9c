package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/replication"
)

// adminPatience bounds every HTTP and SQL call, so a hang fails with a
// message; it is generous for the race detector.
const adminPatience = 30 * time.Second

func startAdminNode(t *testing.T) (*Server, *sql.DB) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.Cluster.PeerAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	srv, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/", srv.MySQLAddr()))
	require.NoError(t, err)
	t.Cleanup(func() {
		db.Close()
		srv.Close()
	})
	return srv, db
}

func httpGet(t *testing.T, srv *Server, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: adminPatience}
	resp, err := client.Get("http://" + srv.AdminAddr() + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// metricValue finds an unlabelled sample in Prometheus text output.
func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, line)
			return v
		}
	}
	t.Fatalf("metric %s not found in:\n%s", name, text)
	return 0
}

func TestAdminHealthAndReady(t *testing.T) {
	srv, _ := startAdminNode(t)
	require.NotEqual(t, "127.0.0.1:0", srv.AdminAddr(), "the bound port is reported")

	code, body := httpGet(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)

	code, _ = httpGet(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code)

	code, _ = httpGet(t, srv, "/nope")
	require.Equal(t, http.StatusNotFound, code)
}

func TestAdminNotReadyOnceCloseBegins(t *testing.T) {
	srv, _ := startAdminNode(t)
	h := srv.adminHandler()
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	require.Equal(t, http.StatusOK, get("/readyz").Code)

	// The first step of Close, taken alone so the listeners are still up.
	srv.markNotReady()
	require.Equal(t, http.StatusServiceUnavailable, get("/readyz").Code)
	code, _ := httpGet(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "over the network too")
	code, _ = httpGet(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code, "still alive while shutting down")

	require.NoError(t, srv.Close())
	require.Equal(t, http.StatusServiceUnavailable, get("/readyz").Code)
	require.Equal(t, http.StatusServiceUnavailable, get("/status").Code, "the store is closed")
	_, err := (&http.Client{Timeout: adminPatience}).Get("http://" + srv.AdminAddr() + "/healthz")
	require.Error(t, err, "the admin listener is closed")
}

func TestAdminStatusAndMetricsFollowWrites(t *testing.T) {
	srv, db := startAdminNode(t)

	code, body := httpGet(t, srv, "/metrics")
	require.Equal(t, http.StatusOK, code)
	before := metricValue(t, body, "fogdb_kv_batches_total")
	for _, name := range []string{
		"fogdb_kv_batches_total", "fogdb_kv_fsyncs_total", "fogdb_kv_conflicts_total",
		"fogdb_kv_keys_read_total", "fogdb_kv_gc_removed_total",
		"fogdb_lock_acquired_total", "fogdb_lock_waits_total",
		"fogdb_lock_timeouts_total", "fogdb_lock_deadlocks_total",
		"go_goroutines",
	} {
		metricValue(t, body, name)
	}
	require.Contains(t, body, "# TYPE fogdb_kv_commits_total counter")

	ctx, cancel := context.WithTimeout(context.Background(), adminPatience)
	defer cancel()
	for _, q := range []string{
		"CREATE DATABASE adm",
		"CREATE TABLE adm.t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO adm.t VALUES (1, 1), (2, 2)",
		"UPDATE adm.t SET v = v + 1 WHERE id = 1",
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}

	code, body = httpGet(t, srv, "/metrics")
	require.Equal(t, http.StatusOK, code)
	after := metricValue(t, body, "fogdb_kv_batches_total")
	require.GreaterOrEqual(t, after-before, 4.0, "each statement above commits")
	require.GreaterOrEqual(t, metricValue(t, body, "fogdb_lock_acquired_total"), 1.0, "the UPDATE locks its row")
	// The two writing statements commit transactions; each is timed.
	require.GreaterOrEqual(t, metricValue(t, body, `fogdb_commit_duration_seconds_count{result="ok"}`), 2.0)
	// A lone node has nowhere to cross to: both paths exist and stay at 0.
	require.Contains(t, body, "# TYPE fogdb_wan_round_trips_total counter")
	require.Zero(t, metricValue(t, body, `fogdb_wan_round_trips_total{path="critical"}`))
	require.Zero(t, metricValue(t, body, `fogdb_wan_round_trips_total{path="background"}`))

	code, body = httpGet(t, srv, "/status")
	require.Equal(t, http.StatusOK, code)
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &raw))
	for _, k := range []string{"version", "node", "peer_addr", "mysql_addr", "data_dir", "ready", "uptime_seconds", "groups"} {
		require.Contains(t, raw, k)
	}
	groups := raw["groups"].([]any)
	require.Len(t, groups, 2, "the global group and the site's group")
	require.Equal(t, "default", raw["site"])
	g := groups[0].(map[string]any)
	require.Equal(t, 1.0, g["group"], "the global group comes first")
	require.Equal(t, 2.0, groups[1].(map[string]any)["group"], "the first site's group")
	for _, k := range []string{"group", "role", "leader", "leader_addr", "term", "commit_index", "applied_index", "members"} {
		require.Contains(t, g, k)
	}

	var st NodeStatus
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, srv.MySQLAddr(), st.MySQLAddr)
	require.Equal(t, srv.cfg.DataDir, st.DataDir)
	require.True(t, st.Ready)
	require.GreaterOrEqual(t, st.UptimeSeconds, 0.0)
	g0 := st.Groups[0]
	require.Equal(t, "Leader", g0.Role, "a lone node leads its own cluster")
	require.Equal(t, st.Node, g0.Leader)
	require.Equal(t, srv.PeerAddr(), g0.LeaderAddr)
	require.Len(t, g0.Members, 1)
	mv := g0.Members[0].Version
	g0.Members[0].Version = nil
	require.Equal(t, []replication.Member{{ID: st.Node, Address: srv.PeerAddr(), Voter: true}}, g0.Members)
	// The lone node named its cluster, which needs the members' versions.
	require.Equal(t, &replication.MemberVersion{Version: replication.BuildVersion, Build: Version, Known: true}, mv)
	require.Equal(t, replication.BuildVersion, g0.Version)
	require.Equal(t, &replication.BuildVersion, g0.ActiveVersion)
	require.NotZero(t, g0.Term)
	require.NotZero(t, g0.CommitIndex, "commits have happened")
	require.GreaterOrEqual(t, g0.CommitIndex, g0.AppliedIndex)
	require.NotZero(t, g0.LogWrites)
	require.NotZero(t, g0.Commits)
}

func TestAdminServersAreIndependent(t *testing.T) {
	// Two nodes in one process: each registry is its own, so registering
	// the same collectors twice neither panics nor mixes their counters.
	a, dbA := startAdminNode(t)
	b, _ := startAdminNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), adminPatience)
	defer cancel()
	_, err := dbA.ExecContext(ctx, "CREATE DATABASE only_a")
	require.NoError(t, err)
	_, bodyA := httpGet(t, a, "/metrics")
	_, bodyB := httpGet(t, b, "/metrics")
	require.Equal(t, float64(a.KV().Stats().Batches), metricValue(t, bodyA, "fogdb_kv_batches_total"))
	require.Equal(t, float64(b.KV().Stats().Batches), metricValue(t, bodyB, "fogdb_kv_batches_total"))
	require.Equal(t, float64(a.Group().Status().Commits), metricValue(t, bodyA, `fogdb_raft_commits_total{group="1"}`))
}

func TestAdminDisabled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.DataDir = t.TempDir()
	srv, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	require.Equal(t, "", srv.AdminAddr())
	require.NoError(t, srv.Close())
}

func TestAdminAddressInUseFailsStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cfg := DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.AdminAddr = busy.Addr().String()
	cfg.DataDir = t.TempDir()
	srv, err := New(cfg)
	require.NoError(t, err)
	require.ErrorContains(t, srv.Start(), "admin listener")
	require.NoError(t, srv.Close(), "a failed Start leaves nothing Close cannot undo")
}

func TestValidateRefusesOpenAdminListenerWithoutPassword(t *testing.T) {
	cfg := DefaultConfig()
	require.Equal(t, "127.0.0.1:7070", cfg.AdminAddr)
	require.NoError(t, cfg.Validate())
	for _, addr := range []string{"0.0.0.0:7070", ":7070", "10.1.2.3:7070", "[::]:7070"} {
		cfg.AdminAddr = addr
		err := cfg.Validate()
		require.True(t, errors.Is(err, ErrInsecureListener), "%s: %v", addr, err)
		cfg.RootPassword = "secret"
		require.NoError(t, cfg.Validate(), addr)
		cfg.RootPassword = ""
	}
	cfg.AdminAddr = ""
	require.NoError(t, cfg.Validate(), "a disabled admin API needs nothing")
	cfg.AdminAddr = "no-port"
	require.Error(t, cfg.Validate())
}

func startAdminNodeIn(t *testing.T, dir, rootPassword string) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.Cluster.PeerAddr = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.RootPassword = rootPassword
	srv, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })
	return srv
}

// adminDo sends an admin request, with basic authentication when user is
// not empty, and returns the status code.
func adminDo(t *testing.T, srv *Server, method, path, user, pass string) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+srv.AdminAddr()+path, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := (&http.Client{Timeout: adminPatience}).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// removeNobody asks to remove a member that does not exist: 404 once
// authenticated, so the code tells whether the credentials were accepted.
func removeNobody(t *testing.T, srv *Server, pass string) int {
	return adminDo(t, srv, http.MethodPost, "/cluster/remove?id=nobody", "root", pass)
}

func rootExec(t *testing.T, srv *Server, pass string, queries ...string) {
	t.Helper()
	db, err := sql.Open("mysql", fmt.Sprintf("root:%s@tcp(%s)/", pass, srv.MySQLAddr()))
	require.NoError(t, err)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), adminPatience)
	defer cancel()
	for _, q := range queries {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
}

// The admin API checks root's password as stored, the one MySQL clients
// log in with: not the --root-password of this start, which matters only on
// the first.
func TestAdminChecksRootsStoredPassword(t *testing.T) {
	dir := t.TempDir()
	srv := startAdminNodeIn(t, dir, "first")
	require.Equal(t, http.StatusNotFound, removeNobody(t, srv, "first"))
	require.Equal(t, http.StatusUnauthorized, removeNobody(t, srv, ""))

	rootExec(t, srv, "first",
		"ALTER USER 'root'@'localhost' IDENTIFIED BY 'second'",
		"ALTER USER 'root'@'%' IDENTIFIED BY 'second'")
	require.Equal(t, http.StatusUnauthorized, removeNobody(t, srv, "first"), "the old password")
	require.Equal(t, http.StatusNotFound, removeNobody(t, srv, "second"), "the new password")

	// caching_sha2_password hashes too.
	rootExec(t, srv, "second",
		"ALTER USER 'root'@'localhost' IDENTIFIED WITH caching_sha2_password BY 'third'")
	require.Equal(t, http.StatusUnauthorized, removeNobody(t, srv, "second"))
	require.Equal(t, http.StatusNotFound, removeNobody(t, srv, "third"))

	// Restarted without --root-password: root still has one.
	require.NoError(t, srv.Close())
	srv = startAdminNodeIn(t, dir, "")
	require.Equal(t, http.StatusUnauthorized, removeNobody(t, srv, ""))
	require.Equal(t, http.StatusUnauthorized, adminDo(t, srv, http.MethodPost, "/cluster/remove?id=nobody", "", ""))
	require.Equal(t, http.StatusUnauthorized, adminDo(t, srv, http.MethodPost, "/cluster/remove?id=nobody", "app", "third"))
	require.Equal(t, http.StatusNotFound, removeNobody(t, srv, "third"))
}

// On an admin address other hosts can reach, /status needs root too, and
// cluster changes are refused while root has no password.
func TestAdminOffLoopbackNeedsRootsPassword(t *testing.T) {
	srv := startAdminNodeIn(t, t.TempDir(), "pw")
	require.Equal(t, http.StatusOK, adminDo(t, srv, http.MethodGet, "/status", "", ""), "loopback: open")

	// Tests listen on loopback only; the listener is treated as reachable
	// from elsewhere, as one on 0.0.0.0 would be.
	srv.admin.loopback = false
	require.Equal(t, http.StatusUnauthorized, adminDo(t, srv, http.MethodGet, "/status", "", ""))
	require.Equal(t, http.StatusUnauthorized, adminDo(t, srv, http.MethodGet, "/status", "root", "wrong"))
	require.Equal(t, http.StatusOK, adminDo(t, srv, http.MethodGet, "/status", "root", "pw"))
	require.Equal(t, http.StatusOK, adminDo(t, srv, http.MethodGet, "/healthz", "", ""), "liveness stays open")
	require.Equal(t, http.StatusNotFound, removeNobody(t, srv, "pw"))

	rootExec(t, srv, "pw", "ALTER USER 'root'@'localhost' IDENTIFIED BY ''")
	require.Equal(t, http.StatusForbidden, removeNobody(t, srv, ""), "root has no password")
	require.Equal(t, http.StatusForbidden, adminDo(t, srv, http.MethodGet, "/status", "root", ""))

	srv.admin.loopback = true
	require.Equal(t, http.StatusNotFound, removeNobody(t, srv, ""), "on loopback, root without a password may")
	require.Equal(t, http.StatusUnauthorized, removeNobody(t, srv, "pw"))
}
