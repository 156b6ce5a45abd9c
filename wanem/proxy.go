package wanem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Mode is how a cut link treats its traffic.
type Mode int

// Cut modes.
const (
	// Blackhole holds every byte crossing the link, and holds new
	// connections before they reach their target, until the link heals:
	// what a partition looks like to TCP, which retransmits rather than
	// loses. Peers see silence, and time out on their own deadlines.
	Blackhole Mode = iota + 1
	// Reset resets every connection crossing the link, and every new one as
	// soon as it is accepted: a peer that answers RST.
	Reset
)

func (m Mode) String() string {
	switch m {
	case Blackhole:
		return "blackhole"
	case Reset:
		return "reset"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads "blackhole" or "reset".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "blackhole":
		return Blackhole, nil
	case "reset":
		return Reset, nil
	}
	return 0, fmt.Errorf("%w: cut mode %q (blackhole or reset)", ErrInvalid, s)
}

// Sentinel errors of the wanem package.
var (
	// ErrClosed: the proxy is closed.
	ErrClosed = errors.New("wanem: proxy closed")
	// ErrInvalid: a malformed link, address, mode or site.
	ErrInvalid = errors.New("wanem: invalid argument")
	// ErrUnknownLink: no link has that name.
	ErrUnknownLink = errors.New("wanem: unknown link")
)

// Config configures a Proxy.
type Config struct {
	// Seed makes jitter reproducible: the delays drawn for the n-th
	// connection of a link, in each direction, depend only on the seed, the
	// link's name, n and the direction.
	Seed uint64
	// MaxInFlight bounds the bytes a direction of one connection holds
	// (delayed, or stalled by a blackhole) before the proxy stops reading
	// from its sender, so that a held link pushes back as TCP would.
	MaxInFlight int
	// ClassifyWait bounds how long an accepted connection on a link without
	// a fixed source site waits for a Dialer to name its site.
	ClassifyWait time.Duration
}

// DefaultConfig is 4 MiB in flight per direction, seed 1.
func DefaultConfig() Config {
	return Config{Seed: 1, MaxInFlight: 4 << 20, ClassifyWait: 2 * time.Second}
}

// Proxy forwards the connections of its links, each with the delay, jitter
// and bandwidth of the pair of sites it crosses, and cuts and heals pairs of
// sites or single links. Its methods are safe for concurrent use.
type Proxy struct {
	cfg Config

	mu      sync.Mutex
	closed  bool
	links   map[string]*Link
	paths   map[pair]*path // one-way: from -> to
	def     path           // the path of distinct sites with no entry
	cuts    map[pair]Mode  // unordered pairs of sites
	changed chan struct{}  // closed and replaced on every cut or heal
	conns   map[*proxConn]struct{}

	// Classification of connections by their source.
	sources  []source          // IP prefixes, longest first
	dialed   map[string]string // a Dialer's local address -> its site
	pending  int               // Dialer connects not yet registered
	regEvent chan struct{}     // closed and replaced when dialed or pending change

	done   chan struct{}
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type pair struct{ from, to string }

func unordered(a, b string) pair {
	if a > b {
		a, b = b, a
	}
	return pair{a, b}
}

// path is the emulated network one way between two sites.
type path struct {
	delay, jitter time.Duration
	// bandwidth in bytes per second; 0 is unlimited. txFree is when the
	// path finishes sending what it was given so far, shared by every
	// connection crossing it.
	bandwidth int64
	txFree    time.Time
}

type source struct {
	prefix netip.Prefix
	site   string
}

// New returns a proxy with no links.
func New(cfg Config) *Proxy {
	d := DefaultConfig()
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = d.MaxInFlight
	}
	if cfg.ClassifyWait <= 0 {
		cfg.ClassifyWait = d.ClassifyWait
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		cfg:      cfg,
		ctx:      ctx,
		cancel:   cancel,
		links:    map[string]*Link{},
		paths:    map[pair]*path{},
		cuts:     map[pair]Mode{},
		changed:  make(chan struct{}),
		conns:    map[*proxConn]struct{}{},
		dialed:   map[string]string{},
		regEvent: make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// pathLocked returns the one-way path from -> to, creating it from the
// defaults on first use (inside one site: no delay).
func (p *Proxy) pathLocked(from, to string) *path {
	k := pair{from, to}
	if pt, ok := p.paths[k]; ok {
		return pt
	}
	pt := &path{}
	if from != to {
		*pt = path{delay: p.def.delay, jitter: p.def.jitter, bandwidth: p.def.bandwidth}
	}
	p.paths[k] = pt
	return pt
}

// SetDefault sets the delay and jitter one way between any two distinct
// sites that have no delay of their own, as their paths are first used.
// Call it before the traffic starts.
func (p *Proxy) SetDefault(delay, jitter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.def.delay, p.def.jitter = max(delay, 0), max(jitter, 0)
}

// SetDelay sets the one-way delay between sites a and b, both ways. Bytes
// that arrive from now on are delayed by it; bytes already in flight keep
// theirs, and a stream's order never changes.
func (p *Proxy) SetDelay(a, b string, delay time.Duration) {
	p.SetOneWayDelay(a, b, delay)
	p.SetOneWayDelay(b, a, delay)
}

// SetOneWayDelay sets the delay from site from to site to only.
func (p *Proxy) SetOneWayDelay(from, to string, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pathLocked(from, to).delay = max(delay, 0)
}

// SetJitter sets the jitter between sites a and b, both ways: each chunk's
// delay is drawn uniformly in [delay-jitter, delay+jitter] (never below
// zero, never before the chunk sent ahead of it on its stream).
func (p *Proxy) SetJitter(a, b string, jitter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pathLocked(a, b).jitter = max(jitter, 0)
	p.pathLocked(b, a).jitter = max(jitter, 0)
}

// SetBandwidth limits each way between sites a and b to bytesPerSec,
// shared by every connection crossing it; 0 lifts the limit.
func (p *Proxy) SetBandwidth(a, b string, bytesPerSec int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pathLocked(a, b).bandwidth = max(bytesPerSec, 0)
	p.pathLocked(b, a).bandwidth = max(bytesPerSec, 0)
}

// Delay is the current one-way delay from site from to site to.
func (p *Proxy) Delay(from, to string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pathLocked(from, to).delay
}

// Cut cuts sites a and b apart, both ways, in mode m: every connection of
// every link crossing the pair, and every new one.
func (p *Proxy) Cut(a, b string, m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts[unordered(a, b)] = m
	p.applyCutLocked()
}

// Heal restores the pair of sites a and b (links cut by name stay cut).
func (p *Proxy) Heal(a, b string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cuts, unordered(a, b))
	p.applyCutLocked()
}

// HealAll restores every pair of sites and every link.
func (p *Proxy) HealAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts = map[pair]Mode{}
	for _, l := range p.links {
		l.cut = 0
	}
	p.applyCutLocked()
}

// applyCutLocked wakes everything that waits on the cut state, and resets
// the connections now cut in Reset mode.
func (p *Proxy) applyCutLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
	for c := range p.conns {
		if p.cutModeLocked(c.link, c.from, c.to) == Reset {
			c.resetLocked(true)
		}
	}
}

// cutModeLocked is how the traffic of a connection of l between from and
// to is cut, 0 when it is not. Reset wins over Blackhole.
func (p *Proxy) cutModeLocked(l *Link, from, to string) Mode {
	m := l.cut
	if pm := p.cuts[unordered(from, to)]; pm > m {
		m = pm
	}
	return m
}

// SetSource classifies connections from an IP address or prefix
// ("10.0.1.0/24", "10.0.1.7") as coming from site, on links without a
// fixed source site. The longest matching prefix wins.
func (p *Proxy) SetSource(prefix, site string) error {
	var pf netip.Prefix
	var err error
	if addr, aerr := netip.ParseAddr(prefix); aerr == nil {
		pf = netip.PrefixFrom(addr, addr.BitLen())
	} else if pf, err = netip.ParsePrefix(prefix); err != nil {
		return fmt.Errorf("%w: source %q: %v", ErrInvalid, prefix, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sources = append(p.sources, source{pf.Masked(), site})
	sort.SliceStable(p.sources, func(i, j int) bool { return p.sources[i].prefix.Bits() > p.sources[j].prefix.Bits() })
	return nil
}

// Links lists the links, by name.
func (p *Proxy) Links() []*Link {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Link, 0, len(p.links))
	for _, l := range p.links {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Name < out[j].cfg.Name })
	return out
}

// Link returns the link called name, nil if there is none.
func (p *Proxy) Link(name string) *Link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.links[name]
}

// Close stops every link, resets every connection and waits for all of the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	p.cancel()
	for _, l := range p.links {
		l.ln.Close()
	}
	for c := range p.conns {
		c.resetLocked(false)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// schedule returns when a chunk of n bytes that arrived at t on the path
// from -> to is due at the far end: after the path has sent what it was
// given before (bandwidth), plus the delay and a draw of jitter.
func (p *Proxy) schedule(from, to string, n int, t time.Time, draw func(time.Duration) time.Duration) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	pt := p.pathLocked(from, to)
	sent := t
	if pt.bandwidth > 0 {
		start := t
		if pt.txFree.After(start) {
			start = pt.txFree
		}
		sent = start.Add(time.Duration(float64(n) / float64(pt.bandwidth) * float64(time.Second)))
		pt.txFree = sent
	}
	d := pt.delay
	if pt.jitter > 0 {
		d += draw(pt.jitter)
	}
	return sent.Add(max(d, 0))
}

// classify names the site a connection accepted on l comes from.
func (p *Proxy) classify(l *Link, remote net.Addr) string {
	if l.cfg.From != "" {
		return l.cfg.From
	}
	key := remote.String()
	deadline := time.NewTimer(p.cfg.ClassifyWait)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		if site, ok := p.dialed[key]; ok {
			delete(p.dialed, key)
			p.mu.Unlock()
			return site
		}
		if p.pending == 0 {
			site := p.sourceSiteLocked(remote)
			p.mu.Unlock()
			return site
		}
		// A Dialer has connected somewhere and not yet said from where:
		// this may be its connection.
		ev := p.regEvent
		p.mu.Unlock()
		select {
		case <-ev:
		case <-p.done:
			return ""
		case <-deadline.C:
			p.mu.Lock()
			site := p.sourceSiteLocked(remote)
			p.mu.Unlock()
			return site
		}
	}
}

func (p *Proxy) sourceSiteLocked(remote net.Addr) string {
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return ""
	}
	ip := ap.Addr().Unmap()
	for _, s := range p.sources {
		if s.prefix.Contains(ip) {
			return s.site
		}
	}
	return ""
}

func (p *Proxy) regChangedLocked() {
	close(p.regEvent)
	p.regEvent = make(chan struct{})
}
