package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fogdb/fogdb/wanem"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	st, err := parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "fogwan: %v\n", err)
		return 2
	}
	p, ctl, err := st.start(log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Info("shutting down", "signal", s.String())
	if ctl != nil {
		ctl.Close()
	}
	p.Close()
	return 0
}

// pairSetting is one site pair's delay, jitter or bandwidth.
type pairSetting struct {
	a, b  string
	delay *time.Duration
	jit   *time.Duration
	bw    *int64
}

// setup is what the flags ask for.
type setup struct {
	seed          uint64
	controlAddr   string
	defaultDelay  time.Duration
	defaultJitter time.Duration
	links         []wanem.LinkConfig
	pairs         []pairSetting
	sources       [][2]string
	// controlBound is the control endpoint's address once started.
	controlBound string
}

func parse(args []string) (*setup, error) {
	st := &setup{}
	fs := flag.NewFlagSet("fogwan", flag.ContinueOnError)
	fs.Uint64Var(&st.seed, "seed", 1, "seed of the jitter draws")
	fs.StringVar(&st.controlAddr, "control-addr", "127.0.0.1:7079", "HTTP control endpoint (cut, heal, delay, links); empty disables it")
	fs.DurationVar(&st.defaultDelay, "default-delay", 0, "one-way delay between two distinct sites with no delay of their own")
	fs.DurationVar(&st.defaultJitter, "default-jitter", 0, "jitter between two distinct sites with no jitter of their own")
	fs.Func("link", "NAME=FROM:TO,listen=ADDR,target=ADDR[,delay=D][,jitter=D][,bandwidth=BPS]; FROM * classifies connections by --source (repeatable)", func(v string) error {
		lc, ps, err := parseLink(v)
		if err != nil {
			return err
		}
		st.links = append(st.links, lc)
		st.pairs = append(st.pairs, ps...)
		return nil
	})
	fs.Func("delay", "A:B=D, one-way delay between sites A and B, both ways (repeatable)", func(v string) error {
		a, b, d, err := pairDuration(v)
		if err != nil {
			return err
		}
		st.pairs = append(st.pairs, pairSetting{a: a, b: b, delay: &d})
		return nil
	})
	fs.Func("jitter", "A:B=D, jitter between sites A and B (repeatable)", func(v string) error {
		a, b, d, err := pairDuration(v)
		if err != nil {
			return err
		}
		st.pairs = append(st.pairs, pairSetting{a: a, b: b, jit: &d})
		return nil
	})
	fs.Func("source", "PREFIX=SITE: connections from this address or prefix come from SITE, on links whose FROM is * (repeatable)", func(v string) error {
		prefix, site, ok := strings.Cut(v, "=")
		if !ok || prefix == "" || site == "" {
			return fmt.Errorf("--source %q: want PREFIX=SITE", v)
		}
		st.sources = append(st.sources, [2]string{prefix, site})
		return nil
	})
	fs.Func("config", "file of flags, one a line without the leading dashes", func(path string) error {
		more, err := readConfig(path)
		if err != nil {
			return err
		}
		return fs.Parse(more)
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(st.links) == 0 {
		return nil, errors.New("no --link given")
	}
	return st, nil
}

// readConfig turns a config file into flags.
func readConfig(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var args []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		args = append(args, "--"+name+"="+strings.TrimSpace(value))
	}
	return args, sc.Err()
}

func parseLink(v string) (wanem.LinkConfig, []pairSetting, error) {
	var lc wanem.LinkConfig
	parts := strings.Split(v, ",")
	name, fromTo, ok := strings.Cut(parts[0], "=")
	from, to, ok2 := strings.Cut(fromTo, ":")
	if !ok || !ok2 || name == "" || from == "" || to == "" {
		return lc, nil, fmt.Errorf("--link %q: want NAME=FROM:TO,listen=ADDR,target=ADDR", v)
	}
	lc.Name, lc.To = name, to
	if from != "*" {
		lc.From = from
	}
	ps := pairSetting{a: from, b: to}
	for _, opt := range parts[1:] {
		k, val, ok := strings.Cut(opt, "=")
		if !ok {
			return lc, nil, fmt.Errorf("--link %s: option %q: want KEY=VALUE", name, opt)
		}
		switch k {
		case "listen":
			lc.Listen = val
		case "target":
			lc.Target = val
		case "delay", "jitter":
			d, err := parseDuration(val)
			if err != nil {
				return lc, nil, fmt.Errorf("--link %s: %w", name, err)
			}
			if k == "delay" {
				ps.delay = &d
			} else {
				ps.jit = &d
			}
		case "bandwidth":
			bw, err := strconv.ParseInt(val, 10, 64)
			if err != nil || bw < 0 {
				return lc, nil, fmt.Errorf("--link %s: bandwidth %q: want bytes per second", name, val)
			}
			ps.bw = &bw
		default:
			return lc, nil, fmt.Errorf("--link %s: unknown option %q", name, k)
		}
	}
	if lc.Listen == "" || lc.Target == "" {
		return lc, nil, fmt.Errorf("--link %s: listen= and target= are required", name)
	}
	if ps.delay == nil && ps.jit == nil && ps.bw == nil {
		return lc, nil, nil
	}
	if lc.From == "" {
		return lc, nil, fmt.Errorf("--link %s: delay, jitter and bandwidth belong to a pair of sites; with FROM *, set them with --delay and --jitter", name)
	}
	return lc, []pairSetting{ps}, nil
}

// pairDuration parses A:B=D.
func pairDuration(v string) (a, b string, d time.Duration, err error) {
	a, b, val, err := pairValue(v)
	if err != nil {
		return "", "", 0, err
	}
	d, err = parseDuration(val)
	return a, b, d, err
}

func pairValue(v string) (a, b, val string, err error) {
	pr, val, ok := strings.Cut(v, "=")
	a, b, ok2 := strings.Cut(pr, ":")
	if !ok || !ok2 || a == "" || b == "" || val == "" {
		return "", "", "", fmt.Errorf("%q: want A:B=VALUE", v)
	}
	return a, b, val, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("duration %q: want a non-negative duration such as 25ms", s)
	}
	return d, nil
}

// start builds the proxy, its links and its control endpoint.
func (st *setup) start(log *slog.Logger) (*wanem.Proxy, *http.Server, error) {
	cfg := wanem.DefaultConfig()
	cfg.Seed = st.seed
	p := wanem.New(cfg)
	p.SetDefault(st.defaultDelay, st.defaultJitter)
	for _, s := range st.sources {
		if err := p.SetSource(s[0], s[1]); err != nil {
			p.Close()
			return nil, nil, err
		}
	}
	for _, ps := range st.pairs {
		if ps.delay != nil {
			p.SetDelay(ps.a, ps.b, *ps.delay)
		}
		if ps.jit != nil {
			p.SetJitter(ps.a, ps.b, *ps.jit)
		}
		if ps.bw != nil {
			p.SetBandwidth(ps.a, ps.b, *ps.bw)
		}
	}
	for _, lc := range st.links {
		l, err := p.Listen(lc)
		if err != nil {
			p.Close()
			return nil, nil, err
		}
		from := lc.From
		if from == "" {
			from = "*"
		}
		log.Info("link", "name", lc.Name, "from", from, "to", lc.To, "listen", l.Addr(), "target", lc.Target)
	}
	if st.controlAddr == "" {
		return p, nil, nil
	}
	ln, err := net.Listen("tcp", st.controlAddr)
	if err != nil {
		p.Close()
		return nil, nil, fmt.Errorf("control endpoint: %w", err)
	}
	if host, _, _ := net.SplitHostPort(st.controlAddr); !isLoopback(host) {
		log.Warn("the control endpoint has no authentication and listens beyond loopback", "addr", ln.Addr().String())
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	st.controlBound = ln.Addr().String()
	log.Info("control endpoint", "addr", st.controlBound)
	return p, srv, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
