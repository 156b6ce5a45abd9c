package server

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func adminBody(t *testing.T, srv *Server, method, path, pass, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+srv.AdminAddr()+path, strings.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth("root", pass)
	resp, err := (&http.Client{Timeout: adminPatience}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(out)
}

const seedPlacement = `default: global
databases:
  nova:
    tables:
      instances:
        placement: local
        locality: host
        site_unique: [uuid]
      flavors:
        placement: global
        staleness: 1s
        strict: true
locality_map:
  compute-1: default
`

// --placement seeds a new cluster; GET /placements answers it as a file,
// fogdb.placements shows every table's effective placement, and PUT
// /placements changes it, refusing a change that would move the rows of an
// existing table or that names a site the cluster does not have.
func TestPlacementSeededThenManagedByAdminAPI(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "placement.yaml")
	require.NoError(t, os.WriteFile(file, []byte(seedPlacement), 0o600))
	cfg := DefaultConfig()
	cfg.MySQLAddr, cfg.AdminAddr, cfg.Cluster.PeerAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.RootPassword = "pw"
	cfg.PlacementFile = file
	srv, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })

	code, got := adminBody(t, srv, http.MethodGet, "/placements", "pw", "")
	require.Equal(t, http.StatusOK, code, got)
	require.Contains(t, got, "locality: host")
	require.Contains(t, got, "compute-1: default")
	code, _ = adminBody(t, srv, http.MethodGet, "/placements", "wrong", "")
	require.Equal(t, http.StatusUnauthorized, code)

	db, err := sql.Open("mysql", fmt.Sprintf("root:pw@tcp(%s)/", srv.MySQLAddr()))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	for _, q := range []string{
		"CREATE DATABASE nova", "CREATE TABLE nova.instances (id INT PRIMARY KEY, host VARCHAR(64), uuid CHAR(36))",
		"CREATE TABLE nova.flavors (id INT PRIMARY KEY)", "CREATE TABLE nova.services (id INT PRIMARY KEY)",
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	rows, err := db.QueryContext(ctx, "SELECT table_name, placement, locality, site_unique, staleness_ms, strict, group_id FROM fogdb.placements WHERE table_schema = 'nova' ORDER BY table_name")
	require.NoError(t, err)
	var lines []string
	for rows.Next() {
		var name, pl, loc, su string
		var stale int64
		var strict bool
		var group uint64
		require.NoError(t, rows.Scan(&name, &pl, &loc, &su, &stale, &strict, &group))
		lines = append(lines, fmt.Sprintf("%s %s %q %q %d %v %d", name, pl, loc, su, stale, strict, group))
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		`flavors global "" "" 1000 true 1`,
		`instances local "host" "uuid" 0 false 0`,
		`services global "" "" 5000 false 1`,
	}, lines)

	// Moving an existing table is refused; so is a site nobody runs.
	code, got = adminBody(t, srv, http.MethodPut, "/placements", "pw", "default: local\n")
	require.Equal(t, http.StatusConflict, code, got)
	require.Contains(t, got, "nova.flavors")
	require.Contains(t, got, "nova.services")
	code, got = adminBody(t, srv, http.MethodPut, "/placements", "pw", strings.Replace(seedPlacement, "compute-1: default", "compute-1: mars", 1))
	require.Equal(t, http.StatusBadRequest, code, got)
	require.Contains(t, got, "mars")
	code, got = adminBody(t, srv, http.MethodPut, "/placements", "pw", "default: [")
	require.Equal(t, http.StatusBadRequest, code, got)
	code, _ = adminBody(t, srv, http.MethodPut, "/placements", "", seedPlacement)
	require.Equal(t, http.StatusUnauthorized, code)

	// A change that moves nothing existing is stored: staleness of a
	// global table, and a table that does not exist yet.
	next := strings.Replace(seedPlacement, "staleness: 1s", "staleness: 2s", 1) + ""
	next = strings.Replace(next, "      flavors:", "      quotas:\n        placement: site:default\n      flavors:", 1)
	code, got = adminBody(t, srv, http.MethodPut, "/placements", "pw", next)
	require.Equal(t, http.StatusOK, code, got)
	var stale int64
	require.NoError(t, db.QueryRowContext(ctx, "SELECT staleness_ms FROM fogdb.placements WHERE table_name = 'flavors'").Scan(&stale))
	require.Equal(t, int64(2000), stale)

	// A restart with a file that differs keeps the cluster's placement.
	require.NoError(t, srv.Close())
	srv2, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv2.Start())
	t.Cleanup(func() { srv2.Close() })
	code, got = adminBody(t, srv2, http.MethodGet, "/placements", "pw", "")
	require.Equal(t, http.StatusOK, code, got)
	require.Contains(t, got, "quotas")
}

// A placement file that does not parse stops the node before it starts.
func TestBadPlacementFileStopsStart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(file, []byte("default: nowhere\n"), 0o600))
	cfg := DefaultConfig()
	cfg.MySQLAddr, cfg.AdminAddr, cfg.Cluster.PeerAddr = "127.0.0.1:0", "", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.PlacementFile = file
	_, err := New(cfg)
	require.ErrorContains(t, err, "--placement")
}
