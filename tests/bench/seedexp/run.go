package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// sample is a reading of a system's counters: the CPU its server processes
// have used, and what crossed the emulated WAN.
type sample struct {
	cpu   float64 // seconds, user + system, over the server processes
	turns int64   // request turns on the WAN links (LinkStats.Up.Turns)
	// siteTurns splits turns by the site that received the requests.
	siteTurns map[string]int64
	bytes     int64   // bytes both ways on the WAN links
	metric    float64 // fogdb_wan_round_trips_total over the nodes
	hasMetric bool
}

// system is one database setup under the workload.
type system struct {
	name    string
	latency time.Duration // one-way, between distinct sites
	// siteAddrs[s] is where site s's clients connect; seedAddr is the
	// server at site 0 reached directly; checkAddrs, where the result is
	// verified (every fogdb node, so each site sees every boot).
	siteAddrs  []string
	seedAddr   string
	checkAddrs []string
	sample     func() (sample, error)
	// alive fails once a server process of the system has died.
	alive func() error
	// idle, when positive, is a quiet window measured before the run to
	// estimate the WAN turns background replication makes by itself.
	idle time.Duration
}

// result is one system at one point.
type result struct {
	system  string
	sites   int
	latency time.Duration
	vms     int

	seconds  float64       // wall time for all VMs
	meanBoot time.Duration // mean time of one boot, per client
	cpu      float64       // server CPU seconds during the run

	turns, bytes int64
	siteTurns    map[string]int64
	background   float64 // estimated idle turns during the run (fogdb)
	metric       float64
	hasMetric    bool

	stmts, txns, retries, claimRetries int64
}

func (r result) perVM(x float64) float64 { return x / float64(r.vms) }

// bySite is the WAN turns per VM by receiving site, "site0 12.0, site1 3.5".
func (r result) bySite() string {
	var parts []string
	for s := 0; s < r.sites; s++ {
		if v, ok := r.siteTurns[siteName(s)]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f", siteName(s), r.perVM(float64(v))))
		}
	}
	return strings.Join(parts, ", ")
}

func dsn(addr string) string {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "tcp"
	c.Addr = addr
	// As PyMySQL does for Nova: parameters are sent inside the statement
	// text, one round trip per statement.
	c.InterpolateParams = true
	c.Timeout = 10 * time.Second
	c.ReadTimeout = 5 * time.Minute
	c.WriteTimeout = 5 * time.Minute
	return c.FormatDSN()
}

func openDB(addr string) (*sql.DB, error) {
	db, err := sql.Open("mysql", dsn(addr))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// runWorkload seeds the databases through sys.seedAddr, connects every
// client, boots l.VMs VMs, and verifies what they left on every check
// address.
func runWorkload(ctx context.Context, sys system, l layout, rngSeed uint64, logf func(string, ...any)) (result, error) {
	res := result{system: sys.name, sites: l.Sites, latency: sys.latency, vms: l.VMs}
	db0, err := openDB(sys.seedAddr)
	if err != nil {
		return res, err
	}
	defer db0.Close()
	t0 := time.Now()
	if err := seed(ctx, db0, l); err != nil {
		return res, fmt.Errorf("seeding: %w", err)
	}
	// Every site must see the shared rows before its clients start.
	for s, addr := range sys.siteAddrs {
		if err := waitCount(ctx, addr, "SELECT COUNT(*) FROM nova.compute_nodes", int64(l.hosts()), 60*time.Second); err != nil {
			return res, fmt.Errorf("%s does not see the seeded compute nodes: %w", siteName(s), err)
		}
	}
	logf("%s, %d sites, %s: schema and shared rows seeded in %.1f s", sys.name, l.Sites, latencyLabel(sys.latency), time.Since(t0).Seconds())

	var clients []*client
	defer func() {
		for _, c := range clients {
			if c.conn != nil {
				c.conn.Close()
			}
		}
	}()
	var dbs []*sql.DB
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	for s := 0; s < l.Sites; s++ {
		for i := 0; i < l.ClientsPerSite; i++ {
			db, err := openDB(sys.siteAddrs[s])
			if err != nil {
				return res, err
			}
			dbs = append(dbs, db)
			conn, err := db.Conn(ctx)
			if err == nil {
				err = conn.PingContext(ctx)
			}
			if err != nil {
				return res, fmt.Errorf("%s client %d: connecting to %s: %w", siteName(s), i, sys.siteAddrs[s], err)
			}
			clients = append(clients, &client{
				site: s, idx: i, l: l, conn: conn,
				rng: rand.New(rand.NewPCG(rngSeed, uint64(s)<<16|uint64(i))),
			})
		}
	}

	var bgRate float64
	if sys.idle > 0 {
		a, err := sys.sample()
		if err != nil {
			return res, err
		}
		t0 := time.Now()
		select {
		case <-time.After(sys.idle):
		case <-ctx.Done():
			return res, ctx.Err()
		}
		b, err := sys.sample()
		if err != nil {
			return res, err
		}
		bgRate = float64(b.turns-a.turns) / time.Since(t0).Seconds()
	}

	before, err := sys.sample()
	if err != nil {
		return res, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < l.vmsOfClient(c.site, c.idx); n++ {
				t := time.Now()
				if err := c.boot(runCtx, n); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				c.latencies = append(c.latencies, time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		if aerr := sys.alive(); aerr != nil {
			return res, fmt.Errorf("%w (%v)", firstErr, aerr)
		}
		return res, firstErr
	}
	after, err := sys.sample()
	if err != nil {
		return res, err
	}

	res.seconds = elapsed.Seconds()
	res.cpu = after.cpu - before.cpu
	res.turns = after.turns - before.turns
	res.siteTurns = map[string]int64{}
	for k, v := range after.siteTurns {
		res.siteTurns[k] = v - before.siteTurns[k]
	}
	res.bytes = after.bytes - before.bytes
	res.background = bgRate * elapsed.Seconds()
	res.hasMetric = before.hasMetric && after.hasMetric
	res.metric = after.metric - before.metric
	var sum time.Duration
	var n int
	for _, c := range clients {
		res.stmts += c.stmts.Load()
		res.txns += c.txns.Load()
		res.retries += c.retries.Load()
		res.claimRetries += c.claims.Load()
		for _, d := range c.latencies {
			sum += d
			n++
		}
	}
	if n != l.VMs {
		return res, fmt.Errorf("%d boots timed, want %d", n, l.VMs)
	}
	res.meanBoot = sum / time.Duration(n)

	for _, addr := range sys.checkAddrs {
		db, err := openDB(addr)
		if err != nil {
			return res, err
		}
		err = verify(ctx, db, l)
		db.Close()
		if err != nil {
			return res, fmt.Errorf("verifying on %s: %w", addr, err)
		}
	}
	if err := sys.alive(); err != nil {
		return res, err
	}
	logf("%s, %d sites, %s: %d VMs in %.2f s (%.3f s/VM, mean boot %.3f s), %.1f statements/VM, %.1f WAN turns/VM (%s), CPU %.1f s",
		sys.name, l.Sites, latencyLabel(sys.latency), l.VMs, res.seconds, res.perVM(res.seconds), res.meanBoot.Seconds(),
		res.perVM(float64(res.stmts)), res.perVM(float64(res.turns)), res.bySite(), res.cpu)
	return res, nil
}

// waitCount polls query on addr until it returns want, for up to limit.
func waitCount(ctx context.Context, addr, query string, want int64, limit time.Duration) error {
	db, err := openDB(addr)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(limit)
	var got int64
	for {
		err = db.QueryRowContext(ctx, query).Scan(&got)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("%s gives %d after %s, want %d", query, got, limit, want)
		}
		if errors.Is(ctx.Err(), context.Canceled) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func latencyLabel(d time.Duration) string {
	if d == 0 {
		return "no delay"
	}
	return d.String()
}
