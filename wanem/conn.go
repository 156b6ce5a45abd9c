package wanem

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// readSize is the largest chunk one read takes from a sender.
const readSize = 32 << 10

// proxConn is one accepted connection and, once the link lets it through,
// its connection to the target.
type proxConn struct {
	link   *Link
	client net.Conn
	seq    uint64

	// Guarded by link.p.mu.
	target   net.Conn
	from, to string
	reset    bool
	done     chan struct{} // closed when the connection is torn down
	up       *flow         // client -> target, once connected (tests)

	lastDir atomic.Int32 // direction of the last chunk forwarded, for Turns
}

// resetLocked tears the connection down with resets on both sides; counted
// says whether a cut did it (rather than the proxy closing or a failure).
func (c *proxConn) resetLocked(counted bool) {
	if c.reset {
		return
	}
	c.reset = true
	close(c.done)
	abort(c.client)
	if c.target != nil {
		abort(c.target)
	}
	if counted {
		c.link.stats.resets.Add(1)
	}
}

func (c *proxConn) fail() {
	p := c.link.p
	p.mu.Lock()
	defer p.mu.Unlock()
	c.resetLocked(false)
}

func (c *proxConn) run() {
	p := c.link.p
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		if !c.reset {
			c.reset = true
			close(c.done)
			c.client.Close()
			if c.target != nil {
				c.target.Close()
			}
		}
		p.mu.Unlock()
	}()

	from := p.classify(c.link, c.client.RemoteAddr())
	if !c.admit(from) {
		return
	}
	target, err := c.link.dialTarget()
	if err != nil {
		// The closest a proxy that already accepted can come to a refused
		// connection.
		c.link.stats.resets.Add(1)
		c.fail()
		return
	}
	p.mu.Lock()
	if c.reset {
		p.mu.Unlock()
		target.Close()
		return
	}
	c.target = target
	p.mu.Unlock()

	up := c.newFlow(c.client, target, c.from, c.to, &c.link.stats.up, 1)
	down := c.newFlow(target, c.client, c.to, c.from, &c.link.stats.down, 2)
	p.mu.Lock()
	c.up = up
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, f := range []*flow{up, down} {
		wg.Add(2)
		go func() { defer wg.Done(); f.read() }()
		go func() { defer wg.Done(); f.write() }()
	}
	wg.Wait()
}

// admit records where the connection comes from and waits while a
// blackhole holds its pair of sites or link. It returns false when the
// connection was reset instead (a Reset cut, or the proxy closing).
func (c *proxConn) admit(from string) bool {
	p := c.link.p
	p.mu.Lock()
	defer p.mu.Unlock()
	c.from, c.to = from, c.link.cfg.To
	held := false
	defer func() {
		if held {
			c.link.stats.pending.Add(-1)
		}
	}()
	for {
		if c.reset || p.closed {
			c.resetLocked(false)
			return false
		}
		switch p.cutModeLocked(c.link, c.from, c.to) {
		case Reset:
			c.resetLocked(true)
			return false
		case Blackhole:
			if !held {
				held = true
				c.link.stats.pending.Add(1)
			}
			changed := p.changed
			p.mu.Unlock()
			select {
			case <-changed:
			case <-c.done:
			}
			p.mu.Lock()
		default:
			return true
		}
	}
}

// flow is one direction of a connection: a reader that stamps each chunk
// with the time it is due at the far end, and a writer that delivers the
// chunks in order once due, so that the delay shifts a stream without
// throttling it.
type flow struct {
	c        *proxConn
	src, dst net.Conn
	from, to string
	ctr      *dirCounters
	dir      int32
	rng      *rand.Rand
	lastDue  time.Time // reader only

	mu     sync.Mutex
	q      []chunk
	qBytes int
	wake   chan struct{} // a chunk was queued
	room   chan struct{} // a chunk was delivered
}

type chunk struct {
	b   []byte
	eof bool
	due time.Time
}

func (c *proxConn) newFlow(src, dst net.Conn, from, to string, ctr *dirCounters, dir int32) *flow {
	seed := c.link.seedFor(c.seq, byte('0'+dir))
	return &flow{
		c: c, src: src, dst: dst, from: from, to: to, ctr: ctr, dir: dir,
		rng:  rand.New(rand.NewPCG(c.link.p.cfg.Seed, seed)),
		wake: make(chan struct{}, 1),
		room: make(chan struct{}, 1),
	}
}

// draw is a uniform jitter in [-j, j].
func (f *flow) draw(j time.Duration) time.Duration {
	return time.Duration(f.rng.Int64N(2*int64(j)+1)) - j
}

func (f *flow) read() {
	buf := make([]byte, readSize)
	for {
		n, err := f.src.Read(buf)
		if n > 0 {
			// Copied to its size: a chunk may wait a while, and a stream of
			// small writes must not hold a read buffer each.
			b := append([]byte(nil), buf[:n]...)
			if !f.push(chunk{b: b, due: f.schedule(n)}) {
				return
			}
		}
		if err == nil {
			continue
		}
		select {
		case <-f.c.done:
			return
		default:
		}
		if errors.Is(err, io.EOF) {
			// The FIN travels as the stream's last chunk.
			f.push(chunk{eof: true, due: f.schedule(0)})
			return
		}
		f.c.fail()
		return
	}
}

func (f *flow) schedule(n int) time.Time {
	due := f.c.link.p.schedule(f.from, f.to, n, time.Now(), f.draw)
	if due.Before(f.lastDue) {
		due = f.lastDue
	}
	f.lastDue = due
	return due
}

// push queues ch, first waiting for room when MaxInFlight bytes are held.
func (f *flow) push(ch chunk) bool {
	limit := f.c.link.p.cfg.MaxInFlight
	for {
		f.mu.Lock()
		if f.qBytes < limit || len(f.q) == 0 {
			f.q = append(f.q, ch)
			f.qBytes += len(ch.b)
			f.mu.Unlock()
			signal(f.wake)
			return true
		}
		f.mu.Unlock()
		select {
		case <-f.room:
		case <-f.c.done:
			return false
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (f *flow) write() {
	p := f.c.link.p
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		f.mu.Lock()
		for len(f.q) == 0 {
			f.mu.Unlock()
			select {
			case <-f.wake:
			case <-f.c.done:
				return
			}
			f.mu.Lock()
		}
		ch := f.q[0]
		f.mu.Unlock()

		if !f.awaitDue(p, ch.due, timer) {
			return
		}

		f.mu.Lock()
		f.q[0] = chunk{}
		f.q = f.q[1:]
		f.qBytes -= len(ch.b)
		f.mu.Unlock()
		signal(f.room)

		if ch.eof {
			f.closeWrite()
			return
		}
		// Counted first, so that a receiver that has the bytes sees them
		// counted.
		f.ctr.bytes.Add(int64(len(ch.b)))
		f.ctr.chunks.Add(1)
		if f.c.lastDir.Swap(f.dir) != f.dir {
			f.ctr.turns.Add(1)
		}
		if _, err := f.dst.Write(ch.b); err != nil {
			f.c.fail()
			return
		}
	}
}

// awaitDue waits until a chunk due at due may be delivered: the time has
// come and no blackhole holds the connection. False: the connection is
// gone.
func (f *flow) awaitDue(p *Proxy, due time.Time, timer *time.Timer) bool {
	for {
		p.mu.Lock()
		gone := f.c.reset
		m := p.cutModeLocked(f.c.link, f.c.from, f.c.to)
		changed := p.changed
		p.mu.Unlock()
		if gone || m == Reset {
			return false
		}
		if m == Blackhole {
			select {
			case <-changed:
				continue
			case <-f.c.done:
				return false
			}
		}
		wait := time.Until(due)
		if wait <= 0 {
			return true
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-changed:
			timer.Stop()
		case <-f.c.done:
			return false
		}
	}
}

// closeWrite passes the sender's FIN on: the other direction may go on.
func (f *flow) closeWrite() {
	if cw, ok := f.dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	f.c.fail()
}
