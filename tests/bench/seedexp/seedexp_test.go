package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
)

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (fog db) (x)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	cpu, err := parseStatCPU(line)
	require.NoError(t, err)
	require.InDelta(t, 3.25, cpu, 1e-9)

	_, err = parseStatCPU("4242 (fogdb) S 1 2")
	require.Error(t, err)
}

func TestParseMetric(t *testing.T) {
	text := `# HELP fogdb_wan_round_trips_total Calls to other sites.
# TYPE fogdb_wan_round_trips_total counter
fogdb_wan_round_trips_total{site="site1"} 12
fogdb_wan_round_trips_total{site="site2"} 30
fogdb_wan_round_trips_total_other 1000
fogdb_kv_commits_total 7
`
	v, ok, err := parseMetric(strings.NewReader(text), wanMetric)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 42.0, v)

	_, ok, err = parseMetric(strings.NewReader("fogdb_kv_commits_total 7\n"), wanMetric)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestLayoutSpreadsEveryVM(t *testing.T) {
	for _, l := range []layout{
		{Sites: 2, ClientsPerSite: 2, VMs: 500},
		{Sites: 6, ClientsPerSite: 2, VMs: 500},
		{Sites: 8, ClientsPerSite: 3, VMs: 100},
		{Sites: 3, ClientsPerSite: 2, VMs: 7},
	} {
		total := 0
		for s := 0; s < l.Sites; s++ {
			site := 0
			for c := 0; c < l.ClientsPerSite; c++ {
				site += l.vmsOfClient(s, c)
			}
			require.Equal(t, l.vmsOfSite(s), site, "%+v site %d", l, s)
			require.InDelta(t, float64(l.VMs)/float64(l.Sites), float64(site), 1, "%+v site %d", l, s)
			total += site
		}
		require.Equal(t, l.VMs, total, "%+v", l)
	}
}

func TestGlobalVoters(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 1, 3: 3, 4: 3, 8: 3} {
		require.Equal(t, want, globalVoters(n), "%d sites", n)
	}
}

func TestReportTablesAndChart(t *testing.T) {
	c := &config{sites: []int{2, 4}, latencies: []time.Duration{10 * time.Millisecond, 50 * time.Millisecond}, vms: 100, clients: 2, hosts: 4, idle: time.Second}
	r := newReport(c)
	for _, n := range c.sites {
		r.add(result{system: "local MariaDB", sites: n, vms: 100, seconds: 2, meanBoot: 40 * time.Millisecond, stmts: 4200})
		for _, d := range c.latencies {
			r.add(result{system: "central MariaDB", sites: n, latency: d, vms: 100, seconds: float64(n) * d.Seconds() * 100, stmts: 4250, turns: 2500})
			r.add(result{system: "fogdb", sites: n, latency: d, vms: 100, seconds: 2.5, stmts: 4300, turns: 9000, background: 1000})
		}
	}
	md := r.markdown()
	// fogdb / local at 2 sites: 2.5 / 2.
	require.Contains(t, md, "| 2 | 10ms | 1.25 |")
	require.Contains(t, md, "| 4 | 50ms | fogdb | 2.50 | 0.025 |")
	require.Contains(t, md, "| 209 |", "the study's figure for 2 sites at 10 ms")

	path := filepath.Join(t.TempDir(), "seed.png")
	require.NoError(t, r.chart(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 500)
}

// TestBootsOnFogdb runs the workload against one in-process fogdb node
// (every site's clients on it, as the local system does) and checks what
// it counts and verifies.
func TestBootsOnFogdb(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.DataDir = t.TempDir()
	cfg.Cluster.PeerAddr = "127.0.0.1:0"
	srv, err := server.New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })
	addr := srv.MySQLAddr()

	// One client per site, on distinct hosts: no claim can lose a race,
	// so the statement count is exact.
	l := layout{Sites: 2, HostsPerSite: 2, ClientsPerSite: 1, VMs: 6}
	sys := system{
		name: "fogdb, one node", siteAddrs: []string{addr, addr}, seedAddr: addr, checkAddrs: []string{addr},
		sample: func() (sample, error) { return sample{}, nil },
		alive:  func() error { return nil },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := runWorkload(ctx, sys, l, 1, t.Logf)
	require.NoError(t, err)
	require.Equal(t, int64(0), res.claimRetries)
	require.Equal(t, int64(0), res.retries)
	require.Equal(t, int64(42*l.VMs), res.stmts)
	require.Equal(t, int64(4*l.VMs), res.txns)

	db, err := openDB(addr)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, verify(ctx, db, l))

	// The checks notice a boot too few, and a lost allocation.
	more := l
	more.VMs++
	require.ErrorContains(t, verify(ctx, db, more), "instances: 6, want 7")
	_, err = db.ExecContext(ctx, "DELETE FROM placement.allocations WHERE resource_class_id = ? LIMIT 1", rcDiskGB)
	require.NoError(t, err)
	require.ErrorContains(t, verify(ctx, db, l), "allocations: 17, want 18")

	// Each site's VMs are on its own hosts.
	var other int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM nova.instances i JOIN placement.allocations a
		ON a.consumer_id = i.uuid JOIN placement.resource_providers rp ON rp.id = a.resource_provider_id
		WHERE rp.name <> i.host`).Scan(&other))
	require.Zero(t, other)
}
