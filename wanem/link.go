package wanem

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"sync/atomic"
	"time"
)

// LinkConfig describes one link: connections accepted at Listen are
// forwarded to Target, and cross the WAN from site From to site To.
type LinkConfig struct {
	// Name identifies the link (control endpoint, statistics).
	Name string
	// From is the site every connection of the link comes from. Empty:
	// each connection's site is found from the proxy's Dialer or its
	// source address (SetSource), so that one link per target serves every
	// site.
	From string
	// To is the site of Target.
	To string
	// Listen is the address to listen on ("127.0.0.1:0" picks a port).
	Listen string
	// Target is the address connections are forwarded to.
	Target string
}

// Link is one listening address of the proxy and its connections.
type Link struct {
	cfg  LinkConfig
	p    *Proxy
	ln   net.Listener
	addr string

	cut   Mode // guarded by p.mu
	seq   atomic.Uint64
	stats linkCounters
}

type linkCounters struct {
	conns, resets, refused, pending atomic.Int64
	up, down                        dirCounters
}

type dirCounters struct{ bytes, chunks, turns atomic.Int64 }

// DirStats counts what a link forwarded one way.
type DirStats struct {
	// Bytes and Chunks forwarded (a chunk is what one read from the sender
	// returned).
	Bytes  int64 `json:"bytes"`
	Chunks int64 `json:"chunks"`
	// Turns counts the chunks that started this direction speaking after
	// the other had spoken (a connection's first chunk counts too). In a
	// request/response protocol, Up.Turns is the number of requests and
	// Down.Turns the number of responses: the round trips the link
	// carried.
	Turns int64 `json:"turns"`
}

// LinkStats counts a link's traffic since it started.
type LinkStats struct {
	// Conns is the connections accepted; Resets, those reset by a cut or
	// because the target refused them; Pending, those now held by a
	// blackhole before reaching the target.
	Conns   int64 `json:"conns"`
	Resets  int64 `json:"resets"`
	Pending int64 `json:"pending"`
	// Up is client -> target, Down is target -> client.
	Up   DirStats `json:"up"`
	Down DirStats `json:"down"`
}

func (d *dirCounters) snapshot() DirStats {
	return DirStats{Bytes: d.bytes.Load(), Chunks: d.chunks.Load(), Turns: d.turns.Load()}
}

// Listen starts a link.
func (p *Proxy) Listen(cfg LinkConfig) (*Link, error) {
	if cfg.Name == "" || cfg.Target == "" || cfg.To == "" {
		return nil, fmt.Errorf("%w: link needs a name, a target and a target site: %+v", ErrInvalid, cfg)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := p.links[cfg.Name]; ok {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: link %q exists", ErrInvalid, cfg.Name)
	}
	p.mu.Unlock()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("wanem: link %s: %w", cfg.Name, err)
	}
	l := &Link{cfg: cfg, p: p, ln: ln, addr: ln.Addr().String()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		ln.Close()
		return nil, ErrClosed
	}
	if _, ok := p.links[cfg.Name]; ok {
		ln.Close()
		return nil, fmt.Errorf("%w: link %q exists", ErrInvalid, cfg.Name)
	}
	p.links[cfg.Name] = l
	p.wg.Add(1)
	go l.serve()
	return l, nil
}

// Addr is the address the link listens on: what clients dial instead of
// the target.
func (l *Link) Addr() string { return l.addr }

// Config is the link's configuration.
func (l *Link) Config() LinkConfig { return l.cfg }

// Cut cuts this link alone, in mode m.
func (l *Link) Cut(m Mode) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	l.cut = m
	l.p.applyCutLocked()
}

// Heal restores this link (a cut of its pair of sites still holds).
func (l *Link) Heal() {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	l.cut = 0
	l.p.applyCutLocked()
}

// CutMode is how the link itself is cut, 0 when it is not.
func (l *Link) CutMode() Mode {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	return l.cut
}

// Stats returns the link's counters.
func (l *Link) Stats() LinkStats {
	return LinkStats{
		Conns:   l.stats.conns.Load(),
		Resets:  l.stats.resets.Load(),
		Pending: l.stats.pending.Load(),
		Up:      l.stats.up.snapshot(),
		Down:    l.stats.down.snapshot(),
	}
}

func (l *Link) serve() {
	defer l.p.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: back off rather than spin or
			// give the link up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-l.p.done:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		l.stats.conns.Add(1)
		pc := &proxConn{link: l, client: c, seq: l.seq.Add(1) - 1, done: make(chan struct{})}
		l.p.mu.Lock()
		if l.p.closed {
			l.p.mu.Unlock()
			abort(c)
			return
		}
		l.p.conns[pc] = struct{}{}
		l.p.wg.Add(1)
		l.p.mu.Unlock()
		go pc.run()
	}
}

// seedFor derives the jitter stream of one direction of one connection.
func (l *Link) seedFor(seq uint64, dir byte) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d/%c", l.cfg.Name, seq, dir)
	return h.Sum64()
}

// dialTarget connects to the link's target, giving up with the proxy.
func (l *Link) dialTarget() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(l.p.ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", l.cfg.Target)
}

// abort closes c with a reset rather than a FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
