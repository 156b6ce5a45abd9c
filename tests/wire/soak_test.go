package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/internal/freeport"
	"github.com/fogdb/fogdb/pki"
)

// rssBytes is the resident set of process pid.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// runaways are statements that would run for hours or build gigabytes
// without the node's statement limits.
var runaways = []string{
	"SELECT length(space(4294967295))",
	"SELECT length(lpad('', 10000000000, 'x'))",
	"WITH RECURSIVE c(n) AS (SELECT CAST('x' AS CHAR(1000)) UNION ALL SELECT CONCAT(n, n) FROM c) SELECT COUNT(*) FROM c",
	"WITH RECURSIVE c(n, s) AS (SELECT 1, repeat('x', 100) UNION ALL SELECT c.n + 1, c.s FROM c, (SELECT 1 UNION ALL SELECT 2) d WHERE c.n < 60) SELECT COUNT(*) FROM c",
	crossJoin,
	nestedSubqueries(30),
}

// TestSoak drives a fogdb process with ordinary clients next to runaway
// statements that are killed, timed out or abandoned by disconnecting
// clients, half of them over TLS, for SOAK_SECONDS (tests/soak.sh sets it). The node's resident
// memory stays under SOAK_RSS_MB and every ordinary client keeps being
// served.
func TestSoak(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("SOAK_SECONDS"))
	if secs <= 0 {
		t.Skip("a soak run: tests/soak.sh sets SOAK_SECONDS")
	}
	rssLimit := int64(1536) << 20
	if mb, _ := strconv.Atoi(os.Getenv("SOAK_RSS_MB")); mb > 0 {
		rssLimit = int64(mb) << 20
	}
	bin := buildFogdb(t)
	// Half the clients use TLS, which the node's connection guard runs.
	certs := t.TempDir()
	require.NoError(t, pki.InitCA(certs, 0))
	require.NoError(t, pki.Issue(certs, "mysql", []string{"127.0.0.1"}, 0))
	ca, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	require.NoError(t, mysql.RegisterTLSConfig("soak", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}))
	t.Cleanup(func() { mysql.DeregisterTLSConfig("soak") })
	p := startFogdb(t, bin, t.TempDir(), 0, "--peer-addr", freeport.Addr(t),
		"--tls-cert", filepath.Join(certs, "mysql.crt"), "--tls-key", filepath.Join(certs, "mysql.key"))
	dsnFor := func(w int) string {
		if w%2 == 1 {
			return p.dsn("soak") + "?tls=soak"
		}
		return p.dsn("soak")
	}
	pid := p.cmd.Process.Pid
	admin := openDSN(t, p.dsn(""))
	mustExec(t, admin, "CREATE DATABASE soak")
	mustExec(t, admin, "CREATE TABLE soak.t (id INT PRIMARY KEY, v INT)")
	mustExec(t, admin, "SET GLOBAL max_statement_memory = 134217728")

	ctx, stop := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer stop()
	var wg sync.WaitGroup
	var served, runawaysRun atomic.Int64
	errs := make(chan error, 64)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}

	// Ordinary clients: short transactions, each answered within a bound.
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			db := openDSN(t, dsnFor(w))
			for i := 0; ctx.Err() == nil; i++ {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				id := w*1000000 + i%1000
				_, err := db.ExecContext(sctx, "INSERT INTO t VALUES (?, 1) ON DUPLICATE KEY UPDATE v = v + 1", id)
				if err == nil {
					var v int
					err = db.QueryRowContext(sctx, "SELECT v FROM t WHERE id = ?", id).Scan(&v)
				}
				cancel()
				if err != nil {
					fail(fmt.Errorf("ordinary client %d: %w", w, err))
					return
				}
				served.Add(1)
			}
		}(w)
	}

	// Runaway clients: each statement is stopped one of three ways.
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				q := runaways[(w+i)%len(runaways)]
				db, err := sql.Open("mysql", dsnFor(w+i))
				if err != nil {
					fail(err)
					return
				}
				c, err := db.Conn(context.Background())
				if err != nil {
					db.Close()
					fail(err)
					return
				}
				switch i % 3 {
				case 0: // a time limit
					_, _ = c.ExecContext(context.Background(), "SET max_execution_time = 300")
					var s sql.NullString
					_ = c.QueryRowContext(context.Background(), q).Scan(&s)
				case 1: // KILL QUERY from another session
					var id int64
					_ = c.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id)
					done := make(chan struct{})
					go func() {
						var s sql.NullString
						_ = c.QueryRowContext(context.Background(), q).Scan(&s)
						close(done)
					}()
					select {
					case <-done:
					case <-time.After(200 * time.Millisecond):
						_, _ = admin.Exec(fmt.Sprintf("KILL QUERY %d", id))
						select {
						case <-done:
						case <-time.After(30 * time.Second):
							fail(fmt.Errorf("runaway still running 30 s after KILL QUERY: %.60s", q))
						}
					}
				case 2: // the client goes away
					qctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
					var s sql.NullString
					_ = c.QueryRowContext(qctx, q).Scan(&s)
					cancel()
				}
				c.Close()
				db.Close()
				runawaysRun.Add(1)
			}
		}(w)
	}

	var peak int64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case err := <-errs:
			stop()
			wg.Wait()
			t.Fatal(err)
		case <-ctx.Done():
			break loop
		case <-tick.C:
			rss := rssBytes(t, pid)
			peak = max(peak, rss)
			if rss > rssLimit {
				stop()
				wg.Wait()
				t.Fatalf("node RSS %d MiB over the bound of %d MiB", rss>>20, rssLimit>>20)
			}
		}
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("%d ordinary statements served, %d runaway statements stopped, peak RSS %d MiB", served.Load(), runawaysRun.Load(), peak>>20)
	require.Positive(t, served.Load())
	require.Positive(t, runawaysRun.Load())
	// Nothing left running once the clients are gone.
	require.Eventually(t, func() bool {
		var n int64
		err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.processlist WHERE command = 'Query' AND info NOT LIKE '%processlist%'").Scan(&n)
		return err == nil && n == 0
	}, patience, 50*time.Millisecond, "statements still running after the soak")
}
