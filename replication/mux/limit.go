package mux

import (
	"net"
	"sync"
	"time"
)

// maxSources bounds the sources the failure limiter remembers; past it,
// sources back at a full budget are forgotten first.
const maxSources = 4096

// failureLimiter keeps a token bucket of failed handshakes per source.
// Only failures spend tokens, so a well-behaved peer never notices it.
type failureLimiter struct {
	burst  float64
	refill time.Duration
	now    func() time.Time

	mu      sync.Mutex
	sources map[string]*bucket
	// inflight counts the admitted handshakes of each source not yet
	// finished (at most MaxHandshakes in all).
	inflight map[string]int
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newFailureLimiter(burst int, refill time.Duration) *failureLimiter {
	return &failureLimiter{burst: float64(burst), refill: refill, now: time.Now, sources: map[string]*bucket{},
		inflight: map[string]int{}}
}

// sourceOf names the source of conn: its IPv4 address, or the /64 of an
// IPv6 one (a single host often holds a whole /64).
func sourceOf(addr net.Addr) string {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return addr.String()
		}
		ip = net.ParseIP(host)
		if ip == nil {
			return host
		}
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// fill brings b up to date at now.
func (l *failureLimiter) fill(b *bucket, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(l.burst, b.tokens+float64(el)/float64(l.refill))
	}
	b.at = now
}

// admit reports whether src may start a handshake, and if so counts it in
// flight until done. A source that never failed is not limited here. One
// that did may have no more handshakes in flight than tokens left: each of
// them may fail, and all are admitted before the first does, so counting
// tokens alone would let it hold every slot whenever its budget refilled
// to one.
func (l *failureLimiter) admit(src string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.sources[src]; b != nil {
		l.fill(b, l.now())
		if b.tokens-float64(l.inflight[src]) < 1 {
			return false
		}
	}
	l.inflight[src]++
	return true
}

// done ends a handshake admit let in; failed tells whether it spends a
// token.
func (l *failureLimiter) done(src string, failed bool) {
	l.mu.Lock()
	if n := l.inflight[src] - 1; n > 0 {
		l.inflight[src] = n
	} else {
		delete(l.inflight, src)
	}
	l.mu.Unlock()
	if failed {
		l.failed(src)
	}
}

// failed spends one token of src.
func (l *failureLimiter) failed(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.sources[src]
	if b == nil {
		if len(l.sources) >= maxSources {
			l.pruneLocked(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.sources[src] = b
	}
	l.fill(b, now)
	b.tokens = max(0, b.tokens-1)
}

// pruneLocked forgets sources back at a full budget; if none is, it
// forgets one at random, so the table stays bounded whatever the flood.
func (l *failureLimiter) pruneLocked(now time.Time) {
	for src, b := range l.sources {
		l.fill(b, now)
		if b.tokens >= l.burst {
			delete(l.sources, src)
		}
	}
	for src := range l.sources {
		if len(l.sources) < maxSources {
			break
		}
		delete(l.sources, src)
	}
}
