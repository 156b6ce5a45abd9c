package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// config is what the flags ask for.
type config struct {
	fogdb        string
	fogdbVersion string
	maria        mariaServer
	sites        []int
	latencies    []time.Duration
	systems      map[string]bool
	vms          int
	clients      int
	hosts        int
	out, chart   string
	work         string
	placement    string
	keep         bool
	idle         time.Duration
	pointTimeout time.Duration
	rngSeed      uint64
}

const (
	sysFog     = "fogdb"
	sysCentral = "central"
	sysLocal   = "local"
)

func parseFlags(args []string) (*config, error) {
	c := &config{systems: map[string]bool{}}
	fs := flag.NewFlagSet("seedexp", flag.ContinueOnError)
	fs.StringVar(&c.fogdb, "fogdb", "", "fogdb binary (go build ./cmd/fogdb)")
	fs.StringVar(&c.fogdbVersion, "fogdb-version", "", "what the fogdb binary was built from, for the report")
	fs.StringVar(&c.maria.addr, "mariadb", "", "address of the MariaDB at site 0 (root, no password, over TCP)")
	fs.IntVar(&c.maria.pid, "mariadb-pid", 0, "its process ID, for its CPU time (0: not measured)")
	sites := fs.String("sites", "2,4,6,8", "site counts, comma-separated")
	lats := fs.String("latencies", "10ms,50ms", "one-way delays between distinct sites, comma-separated")
	systems := fs.String("systems", "fogdb,central,local", "systems to measure: fogdb, central (MariaDB at site 0 across the WAN), local (MariaDB, no delay)")
	fs.IntVar(&c.vms, "vms", 500, "VMs booted per point, spread evenly over the sites")
	fs.IntVar(&c.clients, "clients", 2, "concurrent clients per site")
	fs.IntVar(&c.hosts, "hosts-per-site", 4, "compute hosts per site")
	fs.StringVar(&c.out, "out", "", "write the results as markdown to this file")
	fs.StringVar(&c.chart, "chart", "", "write a PNG chart to this file")
	fs.StringVar(&c.work, "work", "", "work directory for fogdb's data and logs (required with fogdb)")
	fs.StringVar(&c.placement, "placement", "", "placement file to pass as --placement when fogdb has that flag")
	fs.BoolVar(&c.keep, "keep", false, "keep fogdb's data directories")
	fs.DurationVar(&c.idle, "idle", 2*time.Second, "quiet window before each fogdb run, to estimate background WAN turns (0: skip)")
	fs.DurationVar(&c.pointTimeout, "point-timeout", 30*time.Minute, "longest time for one system at one point, start-up included")
	fs.Uint64Var(&c.rngSeed, "seed", 1, "seed of the clients' random choices (UUIDs, ties between hosts)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, f := range strings.Split(*sites, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("--sites: %q is not a site count", f)
		}
		c.sites = append(c.sites, n)
	}
	for _, f := range strings.Split(*lats, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--latencies: %q is not a positive duration", f)
		}
		c.latencies = append(c.latencies, d)
	}
	for _, f := range strings.Split(*systems, ",") {
		f = strings.TrimSpace(f)
		if f != sysFog && f != sysCentral && f != sysLocal {
			return nil, fmt.Errorf("--systems: unknown system %q", f)
		}
		c.systems[f] = true
	}
	if c.vms < 1 || c.clients < 1 || c.hosts < 1 {
		return nil, errors.New("--vms, --clients and --hosts-per-site must be positive")
	}
	for _, n := range c.sites {
		if c.vms < n*c.clients {
			return nil, fmt.Errorf("--vms %d leaves some of the %d clients of %d sites without a VM", c.vms, n*c.clients, n)
		}
	}
	if (c.systems[sysCentral] || c.systems[sysLocal]) && c.maria.addr == "" {
		return nil, errors.New("--mariadb is required for the MariaDB systems")
	}
	if c.systems[sysFog] && (c.fogdb == "" || c.work == "") {
		return nil, errors.New("--fogdb and --work are required for fogdb")
	}
	return c, nil
}

func run(args []string) int {
	c, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "seedexp: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	rep, err := experiment(ctx, c)
	if rep != nil && len(rep.results) > 0 {
		fmt.Print(rep.text())
		if c.out != "" {
			if werr := os.WriteFile(c.out, []byte(rep.markdown()), 0o644); werr != nil {
				fmt.Fprintf(os.Stderr, "seedexp: %v\n", werr)
				return 1
			}
		}
		if c.chart != "" && err == nil {
			if cerr := rep.chart(c.chart); cerr != nil {
				fmt.Fprintf(os.Stderr, "seedexp: chart: %v\n", cerr)
				return 1
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "seedexp: interrupted by a signal (%v)\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "seedexp: FAILED: %v\n", err)
		}
		return 1
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[seedexp %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// experiment measures every point: per site count the local MariaDB
// once (it has no delay to vary), then per latency the central MariaDB
// and fogdb.
func experiment(ctx context.Context, c *config) (*report, error) {
	rep := newReport(c)
	if c.systems[sysFog] {
		has, err := placementFlag(c.fogdb)
		if err != nil {
			return rep, err
		}
		switch {
		case c.placement == "":
			rep.placementNote = "default placement (no placement file given)"
		case !has:
			rep.placementNote = "default placement: this fogdb has no --placement flag"
			c.placement = ""
		default:
			if _, err := os.Stat(c.placement); err != nil {
				rep.placementNote = fmt.Sprintf("default placement: %s does not exist", c.placement)
				c.placement = ""
			} else {
				rep.placementNote = "--placement " + c.placement
			}
		}
		logf("fogdb: %s", rep.placementNote)
	}
	if c.maria.addr != "" {
		v, err := serverVersion(ctx, c.maria.addr)
		if err != nil {
			return rep, fmt.Errorf("MariaDB at %s: %w", c.maria.addr, err)
		}
		rep.mariaVersion = v
	}
	rep.loadBefore = loadAvg()
	defer func() { rep.loadAfter = loadAvg() }()
	for _, n := range c.sites {
		l := layout{Sites: n, HostsPerSite: c.hosts, ClientsPerSite: c.clients, VMs: c.vms}
		if c.systems[sysLocal] {
			r, err := point(ctx, c, func(ctx context.Context) (result, error) {
				return runWorkload(ctx, localSystem(c.maria, n), l, c.rngSeed, logf)
			})
			if err != nil {
				return rep, fmt.Errorf("local MariaDB, %d sites: %w", n, err)
			}
			rep.add(r)
		}
		for _, d := range c.latencies {
			if c.systems[sysCentral] {
				r, err := point(ctx, c, func(ctx context.Context) (result, error) {
					cw, err := startCentralWAN(c.maria, n, d)
					if err != nil {
						return result{}, err
					}
					defer cw.close()
					return runWorkload(ctx, cw.system(c.maria, d), l, c.rngSeed, logf)
				})
				if err != nil {
					return rep, fmt.Errorf("central MariaDB, %d sites, %s: %w", n, d, err)
				}
				rep.add(r)
			}
			if c.systems[sysFog] {
				r, err := point(ctx, c, func(ctx context.Context) (result, error) {
					dir := filepath.Join(c.work, fmt.Sprintf("fogdb-%dsites-%s", n, d))
					logf("fogdb, %d sites, %s: starting %d nodes in %s", n, d, n, dir)
					fc, err := startFogCluster(ctx, c.fogdb, dir, n, d, c.placement)
					if err != nil {
						return result{}, err
					}
					defer func() {
						fc.stop()
						if !c.keep {
							os.RemoveAll(dir)
						}
					}()
					return runWorkload(ctx, fc.system(d, c.idle), l, c.rngSeed, logf)
				})
				if err != nil {
					return rep, fmt.Errorf("fogdb, %d sites, %s: %w", n, d, err)
				}
				rep.add(r)
			}
		}
	}
	return rep, nil
}

// point runs one measurement under the per-point timeout.
func point(ctx context.Context, c *config, fn func(context.Context) (result, error)) (result, error) {
	pctx, cancel := context.WithTimeout(ctx, c.pointTimeout)
	defer cancel()
	r, err := fn(pctx)
	if err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("over the %s point timeout: %w", c.pointTimeout, err)
	}
	return r, err
}

func serverVersion(ctx context.Context, addr string) (string, error) {
	db, err := openDB(addr)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v string
	err = db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v)
	return v, err
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
