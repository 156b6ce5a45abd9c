package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fogdb/fogdb/wanem"
)

// wanMetric is the counter fogdb exports for the calls its nodes make to
// other sites, when the build has it.
const wanMetric = "fogdb_wan_round_trips_total"

// fogCluster is one fogdb process per site, every peer connection through
// a WAN emulator link in this process.
type fogCluster struct {
	proxy *wanem.Proxy
	nodes []*fogNode
	http  *http.Client
}

type fogNode struct {
	site              int
	id                string
	mysql, admin, dir string
	link              *wanem.Link
	p                 *proc
}

// placementFlag says whether bin takes --placement, from its help text.
func placementFlag(bin string) (bool, error) {
	out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return false, fmt.Errorf("%s serve --help: %w", bin, err)
	}
	if !strings.Contains(string(out), "-mysql-addr") {
		return false, fmt.Errorf("%s serve --help printed no flags: %s", bin, out)
	}
	return strings.Contains(string(out), "-placement "), nil
}

// startFogCluster starts one node per site in dir: node 1 (site0)
// bootstraps, the others join it, each advertising its WAN link as its
// peer address; every pair of distinct sites is delay apart one way.
// placement, when not empty, is passed as --placement.
func startFogCluster(ctx context.Context, bin, dir string, sites int, delay time.Duration, placement string) (*fogCluster, error) {
	t0 := time.Now()
	fc := &fogCluster{proxy: wanem.New(wanem.DefaultConfig()), http: &http.Client{Timeout: 10 * time.Second}}
	// The nodes all dial from 127.0.0.1: their connections have no source
	// site of their own, and every link, to its node's site, takes the
	// default delay both ways.
	fc.proxy.SetDefault(delay, 0)
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	env := []string{"FOGDB_CLUSTER_SECRET=" + hex.EncodeToString(secret)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			fc.stop()
		}
	}()
	for s := 0; s < sites; s++ {
		n := &fogNode{site: s, id: fmt.Sprintf("n%d", s+1), dir: filepath.Join(dir, fmt.Sprintf("fogdb-%s", siteName(s)))}
		var err error
		var peer string
		for _, a := range []*string{&n.mysql, &n.admin, &peer} {
			if *a, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		n.link, err = fc.proxy.Listen(wanem.LinkConfig{Name: n.id, To: siteName(s), Listen: "127.0.0.1:0", Target: peer})
		if err != nil {
			return nil, err
		}
		if err := os.RemoveAll(n.dir); err != nil {
			return nil, err
		}
		args := []string{"serve", "--mysql-addr", n.mysql, "--admin-addr", n.admin, "--data-dir", n.dir,
			"--peer-addr", peer, "--advertise-peer-addr", n.link.Addr(), "--site", siteName(s), "--node-id", n.id}
		if s > 0 {
			args = append(args, "--join", fc.nodes[0].link.Addr())
		}
		if placement != "" {
			args = append(args, "--placement", placement)
		}
		n.p, err = startProc("fogdb "+n.id, bin, n.dir+".log", env, args...)
		if err != nil {
			return nil, err
		}
		fc.nodes = append(fc.nodes, n)
		if err := waitMySQL(ctx, n.mysql, n.p, 90*time.Second); err != nil {
			return nil, err
		}
	}
	if err := fc.waitFormed(ctx, 120*time.Second); err != nil {
		return nil, err
	}
	logf("fogdb, %d sites, %s: cluster formed in %.1f s", sites, delay, time.Since(t0).Seconds())
	ok = true
	return fc, nil
}

// waitMySQL polls addr until it answers SELECT 1, or p exits.
func waitMySQL(ctx context.Context, addr string, p *proc, limit time.Duration) error {
	db, err := openDB(addr)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(limit)
	for {
		if err := p.exited(); err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := db.ExecContext(pctx, "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer on %s within %s: %v; last lines of %s:\n%s", p.name, addr, limit, err, p.logPath, tail(p.logPath, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodeStatus is the part of GET /status this program reads.
type nodeStatus struct {
	Node   string `json:"node"`
	Site   string `json:"site"`
	Groups []struct {
		Group   uint64 `json:"group"`
		Role    string `json:"role"`
		Leader  string `json:"leader"`
		Members []struct {
			ID    string `json:"id"`
			Voter bool   `json:"voter"`
		} `json:"members"`
	} `json:"groups"`
}

func (fc *fogCluster) status(n *fogNode) (nodeStatus, error) {
	var st nodeStatus
	resp, err := fc.http.Get("http://" + n.admin + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status from %s: %s", n.id, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// globalVoters is how many voters the global group settles on for n
// single-node sites: the largest odd number up to 3 and n
// (sharding/DESIGN.md, "Placing voters").
func globalVoters(n int) int {
	v := min(n, 3)
	if v%2 == 0 {
		v--
	}
	return v
}

// waitFormed waits until every node follows one global leader that lists
// all nodes with its voters placed, and every node's site group has a
// leader.
func (fc *fogCluster) waitFormed(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var why string
	for {
		why = fc.formed()
		if why == "" {
			return nil
		}
		if err := fc.alive(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the fogdb cluster did not form within %s: %s", limit, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (fc *fogCluster) formed() string {
	leader := ""
	for _, n := range fc.nodes {
		st, err := fc.status(n)
		if err != nil {
			return err.Error()
		}
		if len(st.Groups) < 2 {
			return fmt.Sprintf("%s has %d groups, want the global group and its site's", n.id, len(st.Groups))
		}
		g := st.Groups[0]
		if g.Leader == "" || (leader != "" && g.Leader != leader) {
			return fmt.Sprintf("%s sees global leader %q, others %q", n.id, g.Leader, leader)
		}
		leader = g.Leader
		if st.Groups[1].Leader == "" {
			return fmt.Sprintf("%s's site group has no leader", n.id)
		}
		voters := 0
		for _, m := range g.Members {
			if m.Voter {
				voters++
			}
		}
		if len(g.Members) != len(fc.nodes) || voters != globalVoters(len(fc.nodes)) {
			return fmt.Sprintf("%s lists %d members (%d voters) in the global group, want %d (%d voters)",
				n.id, len(g.Members), voters, len(fc.nodes), globalVoters(len(fc.nodes)))
		}
	}
	return ""
}

func (fc *fogCluster) alive() error {
	for _, n := range fc.nodes {
		if err := n.p.exited(); err != nil {
			return err
		}
	}
	return nil
}

// sample reads the nodes' CPU, the links' counters and, when the build
// exports it, the nodes' WAN round-trip counter.
func (fc *fogCluster) sample() (sample, error) {
	s := sample{siteTurns: map[string]int64{}, hasMetric: true}
	for _, n := range fc.nodes {
		cpu, err := procCPU(n.p.pid())
		if err != nil {
			return s, fmt.Errorf("%s: %w", n.id, err)
		}
		s.cpu += cpu
		st := n.link.Stats()
		s.turns += st.Up.Turns
		s.siteTurns[siteName(n.site)] += st.Up.Turns
		s.bytes += st.Up.Bytes + st.Down.Bytes
		v, ok, err := fc.metric(n)
		if err != nil {
			return s, err
		}
		s.metric += v
		s.hasMetric = s.hasMetric && ok
	}
	return s, nil
}

// metric sums wanMetric's series in a node's /metrics.
func (fc *fogCluster) metric(n *fogNode) (float64, bool, error) {
	resp, err := fc.http.Get("http://" + n.admin + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET /metrics from %s: %s", n.id, resp.Status)
	}
	return parseMetric(resp.Body, wanMetric)
}

// parseMetric sums the samples of metric name in Prometheus text format.
func parseMetric(r io.Reader, name string) (float64, bool, error) {
	var sum float64
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // another metric whose name starts with this one
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: bad sample %q", name, line)
		}
		sum += v
		found = true
	}
	return sum, found, sc.Err()
}

func (fc *fogCluster) stop() {
	// Joiners first, the bootstrap node last.
	for i := len(fc.nodes) - 1; i >= 0; i-- {
		if fc.nodes[i].p != nil {
			fc.nodes[i].p.stop()
		}
	}
	fc.proxy.Close()
}

func (fc *fogCluster) system(delay, idle time.Duration) system {
	sys := system{name: "fogdb", latency: delay, sample: fc.sample, alive: fc.alive, idle: idle}
	for _, n := range fc.nodes {
		sys.siteAddrs = append(sys.siteAddrs, n.mysql)
		sys.checkAddrs = append(sys.checkAddrs, n.mysql)
	}
	sys.seedAddr = fc.nodes[0].mysql
	return sys
}
