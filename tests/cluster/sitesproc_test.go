package cluster

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/internal/freeport"
	"github.com/fogdb/fogdb/wanem"
)

// wanProc is a fogwan process: the WAN emulator between the sites of a
// cluster of processes, driven through its control endpoint.
type wanProc struct {
	ctl string
	log string
}

// startFogwan runs fogwan with args plus a control endpoint of its own,
// waits until that answers, and kills the process when the test ends.
func startFogwan(t *testing.T, args []string) *wanProc {
	t.Helper()
	bin := fogwanBin.build(t, "fogwan")
	w := &wanProc{ctl: freeport.Addr(t), log: filepath.Join(t.TempDir(), "fogwan.log")}
	logf, err := os.Create(w.log)
	require.NoError(t, err)
	cmd := exec.Command(bin, append(args, "--control-addr", w.ctl)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = dieWithParent()
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			if b, err := os.ReadFile(w.log); err == nil {
				t.Logf("fogwan log:\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(Patience)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(w.log)
			t.Fatalf("fogwan exited: %v\n%s", cmd.ProcessState, b)
		default:
		}
		resp, err := statusClient.Get("http://" + w.ctl + "/links")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("fogwan's control endpoint not answering within %v: %v", Patience, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// control posts to the control endpoint: cut, heal.
func (w *wanProc) control(t *testing.T, what string, q url.Values) {
	t.Helper()
	resp, err := statusClient.Post("http://"+w.ctl+"/"+what+"?"+q.Encode(), "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "POST /%s?%s", what, q.Encode())
}

// links is GET /links: each link with its counters.
func (w *wanProc) links(t *testing.T) []wanem.LinkStatus {
	t.Helper()
	resp, err := statusClient.Get("http://" + w.ctl + "/links")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ls []wanem.LinkStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ls))
	return ls
}

// wanMetric is the node's fogdb_wan_round_trips_total{path="critical"}
// from its admin API.
func (p *proc) wanMetric(t *testing.T) uint64 {
	t.Helper()
	resp, err := statusClient.Get("http://" + p.adminAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	const name = `fogdb_wan_round_trips_total{path="critical"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, sc.Text())
			return uint64(f)
		}
	}
	require.NoError(t, sc.Err())
	t.Fatalf("%s: no %s in /metrics", p.name, name)
	return 0
}

// wanCount is what one transaction cost in round trips to other sites,
// as its session tells it and as the node's metric grew meanwhile.
type wanCount struct{ Session, Metric uint64 }

// wanRoundTrips runs stmts on one connection to p and returns their last
// transaction's round trips to other sites (SHOW SESSION STATUS LIKE
// 'fogdb_wan_round_trips'), with the growth of p's critical metric over
// all of them.
func (p *proc) wanRoundTrips(t *testing.T, stmts ...string) wanCount {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	db, err := sql.Open("mysql", p.dsn(""))
	require.NoError(t, err)
	defer db.Close()
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	before := p.wanMetric(t)
	for _, q := range stmts {
		_, err := conn.ExecContext(ctx, q)
		require.NoError(t, err, "%s: %s", p.name, q)
	}
	var name string
	var n uint64
	require.NoError(t, conn.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'fogdb_wan_round_trips'").Scan(&name, &n))
	return wanCount{Session: n, Metric: p.wanMetric(t) - before}
}

// exec runs statements on p, failing the test on error.
func (p *proc) exec(t *testing.T, stmts ...string) {
	t.Helper()
	db, err := sql.Open("mysql", p.dsn(""))
	require.NoError(t, err)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for _, q := range stmts {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, "%s: %s", p.name, q)
	}
}

// Three sites of one fogdb process each, every byte between them through
// a fogwan process that delays it 25 ms each way (50 ms round trips) and
// that tells the sites apart by the nodes' source addresses
// (--peer-source-addr), so that it can cut one site off. Each site has a
// database homed there; the common database is global, read within a
// staleness bound of 1 s, and its prices table is strict. Counted, never
// timed, at each site, from the session and from /metrics:
//
//   - a transaction that reads global tables and reads and writes its own
//     site's rows crosses no site;
//   - an autocommit INSERT into a global table costs 1 round trip at the
//     global leader's site (its entry needs another site's vote), at most
//     2 elsewhere (the request to the leader's site, then its quorum);
//   - a row homed at another site is read and updated, and that costs
//     round trips.
//
// Then the global leader's site is cut off: its own transactions go on,
// a global write and a DDL there fail with 1047 within the cluster
// timeout, a non-strict global read goes on with a warning once the
// replica is older than its bound and a strict one fails; the other sites
// go on writing global rows. After the heal, every node reads the same
// rows of every table, its replica's of global tables and the home site's
// of the others.
func TestThreeSitesAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs fogdb and fogwan processes")
	}
	if runtime.GOOS != "linux" {
		t.Skip("a source address per site needs every 127.0.0.0/8 address to be local, as on Linux")
	}
	const (
		clusterTimeout = 2 * time.Second
		oneWay         = 25 * time.Millisecond
		hangGuard      = 3 * clusterTimeout
	)
	sites := []string{"paris", "rennes", "nice"}
	file := filepath.Join(t.TempDir(), "placement.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`default: global
databases:
  cell_paris:
    placement: site:paris
  cell_rennes:
    placement: site:rennes
  cell_nice:
    placement: site:nice
  common:
    placement: global
    staleness: 1s
    tables:
      prices:
        placement: global
        staleness: 1s
        strict: true
`), 0o600))

	// Node i dials from 127.0.i+1.1, which fogwan places at its site.
	ps := make([]*proc, len(sites))
	links := make([]string, len(sites))
	var wanArgs []string
	for i, site := range sites {
		ps[i] = newProc(t, fmt.Sprintf("n%d", i+1), clusterTimeout)
		links[i] = freeport.Addr(t)
		wanArgs = append(wanArgs,
			"--link", fmt.Sprintf("%s=*:%s,listen=%s,target=%s", ps[i].name, site, links[i], ps[i].peerAddr),
			"--source", fmt.Sprintf("127.0.%d.0/24=%s", i+1, site))
		for _, other := range sites[i+1:] {
			wanArgs = append(wanArgs, "--delay", fmt.Sprintf("%s:%s=%s", site, other, oneWay))
		}
		ps[i].args = append(ps[i].args, "--site", site,
			"--advertise-peer-addr", links[i], "--peer-source-addr", fmt.Sprintf("127.0.%d.1", i+1))
		if i == 0 {
			ps[i].args = append(ps[i].args, "--placement", file)
		} else {
			ps[i].args = append(ps[i].args, "--join", links[0])
		}
	}
	buildFogdb(t)
	wan := startFogwan(t, wanArgs)
	started := time.Now()
	startProcs(t, ps)
	// Every node holds the global group, with a voter at each site, and
	// its site's group, each with a leader.
	require.Eventually(t, func() bool {
		for _, p := range ps {
			st, err := p.status()
			if err != nil || len(st.Groups) != 2 || st.Groups[0].Leader == "" || st.Groups[1].Leader == "" {
				return false
			}
			voters := 0
			for _, m := range st.Groups[0].Members {
				if m.Voter {
					voters++
				}
			}
			if voters != len(sites) {
				return false
			}
		}
		return true
	}, Patience, 20*time.Millisecond, "the cluster never formed")
	t.Logf("3 sites formed in %v", time.Since(started).Round(time.Millisecond))
	// Each node's peers reached it through its link, as they were told to.
	for _, l := range wan.links(t) {
		require.NotZero(t, l.Stats.Conns, "nothing reached %s through its link", l.Name)
		require.NotZero(t, l.Stats.Up.Turns, "no request reached %s through its link", l.Name)
	}

	ps[0].exec(t, "CREATE DATABASE common",
		"CREATE TABLE common.flavors (id INT PRIMARY KEY, name VARCHAR(32))",
		"CREATE TABLE common.prices (id INT PRIMARY KEY, eur INT)",
		"INSERT INTO common.flavors VALUES (1, 'small')",
		"INSERT INTO common.prices VALUES (1, 10)")
	for i, site := range sites {
		ps[i].exec(t, "CREATE DATABASE cell_"+site,
			"CREATE TABLE cell_"+site+".instances (id INT PRIMARY KEY, host VARCHAR(32), state VARCHAR(16), KEY (host))",
			"CREATE TABLE cell_"+site+".actions (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(16))",
			fmt.Sprintf("INSERT INTO cell_%s.instances VALUES (%d, 'compute-%s', 'active')", site, 1000*(i+1), site))
	}
	// Every node has every definition before anything is counted (a
	// listing of the catalog passes its barrier): a statement resolved
	// from a replica a DDL has not reached yet runs again, at the price of
	// its round trips.
	for _, p := range ps {
		for _, db := range []string{"common", "cell_paris", "cell_rennes", "cell_nice"} {
			p.exec(t, "SHOW TABLES FROM "+db)
		}
	}

	// globalLeader waits for a node that leads the global group.
	globalLeader := func() int {
		t.Helper()
		var l int
		require.Eventually(t, func() bool {
			for i, p := range ps {
				if st, err := p.status(); err == nil && st.Groups[0].Role == "Leader" {
					l = i
					return true
				}
			}
			return false
		}, Patience, 20*time.Millisecond, "no global leader")
		return l
	}
	leader := globalLeader()
	t.Logf("the global group is led at %s", sites[leader])

	// (1) Site-local work with global reads within their bound: nothing
	// crosses, at any site.
	siteTxn := func(i, id int) []string {
		site := sites[i]
		return []string{"BEGIN",
			"SELECT name FROM common.flavors WHERE id = 1",
			"SELECT eur FROM common.prices WHERE id = 1",
			fmt.Sprintf("INSERT INTO cell_%s.instances VALUES (%d, 'compute-%s', 'building')", site, id, site),
			fmt.Sprintf("INSERT INTO cell_%s.actions (what) VALUES ('create')", site),
			fmt.Sprintf("UPDATE cell_%s.instances SET state = 'active' WHERE id = %d", site, id),
			fmt.Sprintf("SELECT COUNT(*) FROM cell_%s.instances WHERE host = 'compute-%s'", site, site),
			"COMMIT"}
	}
	for i, p := range ps {
		got := p.wanRoundTrips(t, siteTxn(i, 1000*(i+1)+1)...)
		t.Logf("%s: site-local transaction reading global tables: %+v", sites[i], got)
		require.Equal(t, wanCount{}, got, "%s: a site-local transaction crossed sites", sites[i])
	}

	// (2) An autocommit INSERT into a global table.
	for i, p := range ps {
		got := p.wanRoundTrips(t, fmt.Sprintf("INSERT INTO common.flavors VALUES (%d, 'f%d')", 10+i, i))
		t.Logf("%s: autocommit INSERT into a global table: %+v", sites[i], got)
		if i == leader {
			require.Equal(t, uint64(1), got.Session, "%s leads the global group", sites[i])
		} else {
			require.GreaterOrEqual(t, got.Session, uint64(1), sites[i])
			require.LessOrEqual(t, got.Session, uint64(2), sites[i])
		}
		require.GreaterOrEqual(t, got.Metric, got.Session, "%s: /metrics counts what the session counted", sites[i])
	}

	// (3) Rennes reads and updates a row homed at paris.
	const paris, rennes = 0, 1
	read := ps[rennes].wanRoundTrips(t, "SELECT state FROM cell_paris.instances WHERE id = 1000")
	update := ps[rennes].wanRoundTrips(t, "BEGIN",
		"SELECT state FROM cell_paris.instances WHERE id = 1000 FOR UPDATE",
		"UPDATE cell_paris.instances SET state = 'resized' WHERE id = 1000",
		"COMMIT")
	t.Logf("rennes: read of a paris row %+v, transaction updating it %+v", read, update)
	for _, got := range []wanCount{read, update} {
		require.NotZero(t, got.Session, "a row of another site is reached without crossing")
		require.GreaterOrEqual(t, got.Metric, got.Session)
	}
	var state string
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	parisDB, err := sql.Open("mysql", ps[paris].dsn(""))
	require.NoError(t, err)
	defer parisDB.Close()
	require.NoError(t, parisDB.QueryRowContext(ctx, "SELECT state FROM cell_paris.instances WHERE id = 1000").Scan(&state))
	require.Equal(t, "resized", state, "paris reads rennes's update of its row")

	// (4) The global leader's site is cut off from the others.
	cut := leader
	site := sites[cut]
	for _, other := range sites {
		if other != site {
			wan.control(t, "cut", url.Values{"a": {site}, "b": {other}})
		}
	}
	// Its own work goes on, counting nothing, reading a non-strict
	// global table (with a warning once its replica is older than the
	// bound).
	cutTxns := 0
	localDuringCut := func() {
		t.Helper()
		id := 1000*(cut+1) + 10 + cutTxns
		cutTxns++
		got := ps[cut].wanRoundTrips(t, "BEGIN",
			"SELECT name FROM common.flavors WHERE id = 1",
			fmt.Sprintf("INSERT INTO cell_%s.instances VALUES (%d, 'compute-%s', 'cut')", site, id, site),
			fmt.Sprintf("INSERT INTO cell_%s.actions (what) VALUES ('cut')", site),
			fmt.Sprintf("UPDATE cell_%s.instances SET state = 'active' WHERE id = %d", site, id),
			"COMMIT")
		require.Equal(t, wanCount{}, got, "%s: site-local transaction %d during the cut", site, cutTxns)
	}
	localDuringCut()
	localDuringCut()
	// Once it no longer leads (it steps down without a quorum), a global
	// write and a DDL fail as unavailable, within the cluster timeout;
	// the bound checked is only a guard against a hang.
	require.Eventually(t, func() bool {
		st, err := ps[cut].status()
		return err == nil && st.Groups[0].Role != "Leader"
	}, Patience, 20*time.Millisecond, "%s still leads the global group while cut off", site)
	cutDB, err := sql.Open("mysql", ps[cut].dsn(""))
	require.NoError(t, err)
	defer cutDB.Close()
	unavailable := func(q string) {
		t.Helper()
		start := time.Now()
		_, err := cutDB.ExecContext(ctx, q)
		took := time.Since(start)
		require.Equal(t, uint16(1047), mysqlCode(err), "%s during the cut: %v", q, err)
		require.Less(t, took, hangGuard, "%s during the cut hangs", q)
		t.Logf("%s during the cut: 1047 after %v", q, took.Round(time.Millisecond))
	}
	unavailable("INSERT INTO common.flavors VALUES (20, 'cut')")
	unavailable(fmt.Sprintf("CREATE TABLE cell_%s.extra (id INT PRIMARY KEY)", site))

	// A non-strict global read goes on; once the replica has not heard
	// from a leader for longer than the bound, with a warning.
	conn, err := cutDB.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	var warning string
	for deadline := time.Now().Add(Patience); warning == ""; time.Sleep(50 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "no warning of a stale read within %v", Patience)
		var n int
		require.NoError(t, conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM common.flavors").Scan(&n), "a non-strict global read during the cut")
		require.Equal(t, 4, n, "the flavors %s had before the cut", site)
		warning = staleWarning(t, ctx, conn, "common.flavors")
	}
	t.Logf("%s during the cut: %s", site, warning)
	start := time.Now()
	var eur int
	err = conn.QueryRowContext(ctx, "SELECT eur FROM common.prices WHERE id = 1").Scan(&eur)
	took := time.Since(start)
	require.Equal(t, uint16(1047), mysqlCode(err), "a strict global read during the cut: %v", err)
	require.Less(t, took, hangGuard, "a strict global read during the cut hangs")
	t.Logf("strict global read during the cut: 1047 after %v", took.Round(time.Millisecond))
	localDuringCut()

	// The other sites elect a leader and go on writing global rows (a
	// statement before the election fails with 1047: nothing written).
	other := (cut + 1) % len(ps)
	otherDB, err := sql.Open("mysql", ps[other].dsn(""))
	require.NoError(t, err)
	defer otherDB.Close()
	for deadline := time.Now().Add(Patience); ; time.Sleep(20 * time.Millisecond) {
		_, err := otherDB.ExecContext(ctx, "INSERT INTO common.flavors VALUES (21, 'during the cut')")
		if err == nil {
			break
		}
		require.Equal(t, uint16(1047), mysqlCode(err), "%s: global write during the cut elsewhere: %v", sites[other], err)
		require.True(t, time.Now().Before(deadline), "%s never wrote a global row during the cut: %v", sites[other], err)
	}

	wan.control(t, "heal", nil)
	// The site that was cut off writes global rows again once it has
	// caught up with the new leader.
	for deadline := time.Now().Add(Patience); ; time.Sleep(20 * time.Millisecond) {
		_, err := cutDB.ExecContext(ctx, "INSERT INTO common.flavors VALUES (22, 'after the heal')")
		if err == nil {
			break
		}
		require.Equal(t, uint16(1047), mysqlCode(err), "%s: global write after the heal: %v", site, err)
		require.True(t, time.Now().Before(deadline), "%s never wrote a global row after the heal: %v", site, err)
	}
	// Every node reads the same rows: its replica of the global group
	// caught up, and the rows of each site as their home site has them.
	var dumps []Dump
	for deadline := time.Now().Add(Patience); ; time.Sleep(100 * time.Millisecond) {
		dumps = dumps[:0]
		for _, p := range ps {
			dumps = append(dumps, settledDump(t, p.dsn("")))
		}
		var diverge []string
		for i, d := range dumps[1:] {
			if d.Digest() != dumps[0].Digest() {
				diverge = append(diverge, fmt.Sprintf("only %s has %v; only %s has %v",
					ps[0].name, dumps[0].Only(d), ps[i+1].name, d.Only(dumps[0])))
			}
		}
		if len(diverge) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the nodes never converged after the heal: %v", diverge)
	}
	require.Len(t, dumps[0]["`common`.`flavors`"], 6, "flavors 1, 10-12, 21 and 22: not 20, refused during the cut")
	require.Len(t, dumps[0]["`cell_"+site+"`.`instances`"], 2+cutTxns, "%s's instances: 2 before the cut, %d during", site, cutTxns)
	require.NotContains(t, dumps[0], "`cell_"+site+"`.`extra`", "the DDL refused during the cut")
	t.Logf("the test took %v after the build", time.Since(started).Round(time.Millisecond))
}

// staleWarning returns the warning of the last statement on conn that
// says table was read from a replica older than its bound, or "".
func staleWarning(t *testing.T, ctx context.Context, conn *sql.Conn, table string) string {
	t.Helper()
	rows, err := conn.QueryContext(ctx, "SHOW WARNINGS")
	require.NoError(t, err)
	defer rows.Close()
	found := ""
	for rows.Next() {
		var level, msg string
		var code int
		require.NoError(t, rows.Scan(&level, &code, &msg))
		if strings.Contains(msg, table+" read from this node's replica") {
			found = fmt.Sprintf("%s %d %s", level, code, msg)
		}
	}
	require.NoError(t, rows.Err())
	return found
}
