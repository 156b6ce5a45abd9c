package wanem

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// patience bounds every wait for something expected to happen.
const patience = 20 * time.Second

// server is a loopback TCP server that runs handle on each connection and
// closes them all on Close.
type server struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startServer(t *testing.T, handle func(net.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &server{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				handle(c)
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *server) Addr() string { return s.ln.Addr().String() }

func (s *server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

func newProxy(t *testing.T) *Proxy {
	p := New(DefaultConfig())
	t.Cleanup(func() { p.Close() })
	return p
}

func listen(t *testing.T, p *Proxy, cfg LinkConfig) *Link {
	t.Helper()
	l, err := p.Listen(cfg)
	require.NoError(t, err)
	return l
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, patience)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg and reads as many bytes back, returning how long it
// took.
func roundTrip(t *testing.T, c net.Conn, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	require.NoError(t, c.SetDeadline(time.Now().Add(patience)))
	_, err := c.Write([]byte(msg))
	require.NoError(t, err)
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, msg, string(buf))
	return time.Since(start)
}

// eventually waits for cond, failing the test after patience.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", patience, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDelayAppliesBothWays(t *testing.T) {
	p := newProxy(t)
	srv := startServer(t, echo)
	l := listen(t, p, LinkConfig{Name: "ab", From: "a", To: "b", Target: srv.Addr()})
	p.SetDelay("a", "b", 20*time.Millisecond)

	c := dial(t, l.Addr())
	for i := 0; i < 3; i++ {
		took := roundTrip(t, c, "ping")
		require.GreaterOrEqual(t, took, 40*time.Millisecond, "a request and its response each wait the one-way delay")
	}
	st := l.Stats()
	require.Equal(t, int64(1), st.Conns)
	require.Equal(t, DirStats{Bytes: 12, Chunks: 3, Turns: 3}, st.Up)
	require.Equal(t, DirStats{Bytes: 12, Chunks: 3, Turns: 3}, st.Down)

	// A delay changed at runtime applies to what is sent next.
	p.SetDelay("a", "b", 35*time.Millisecond)
	require.Equal(t, 35*time.Millisecond, p.Delay("b", "a"))
	require.GreaterOrEqual(t, roundTrip(t, c, "pong"), 70*time.Millisecond)
}

func TestOneWayDelay(t *testing.T) {
	p := newProxy(t)
	srv := startServer(t, echo)
	l := listen(t, p, LinkConfig{Name: "ab", From: "a", To: "b", Target: srv.Addr()})
	p.SetOneWayDelay("a", "b", 30*time.Millisecond)
	require.Equal(t, time.Duration(0), p.Delay("b", "a"))
	require.GreaterOrEqual(t, roundTrip(t, dial(t, l.Addr()), "x"), 30*time.Millisecond)
}

// A pipelined stream is shifted by the delay, not spaced by it: the proxy
// holds many chunks in flight at once.
func TestPipelinedStreamIsNotThrottledByDelay(t *testing.T) {
	p := newProxy(t)
	srv := startServer(t, echo)
	l := listen(t, p, LinkConfig{Name: "ab", From: "a", To: "b", Target: srv.Addr()})
	const delay, writes = 10 * time.Millisecond, 1000
	p.SetDelay("a", "b", delay)
	c := dial(t, l.Addr())
	require.NoError(t, c.SetDeadline(time.Now().Add(patience)))

	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		var b [8]byte
		for i := 0; i < writes; i++ {
			binary.BigEndian.PutUint64(b[:], uint64(i))
			if _, err := c.Write(b[:]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := make([]byte, 8*writes)
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	took := time.Since(start)
	require.NoError(t, <-errc)
	for i := 0; i < writes; i++ {
		require.Equal(t, uint64(i), binary.BigEndian.Uint64(got[8*i:]), "stream order")
	}
	require.GreaterOrEqual(t, took, 2*delay)
	require.Less(t, took, writes*delay/2, "a serialised delay per write would take %v", writes*delay)
}

// Writers sharing a connection, and several connections at once, with
// jitter: every stream arrives whole and in order.
func TestOrderUnderConcurrentWritersAndJitter(t *testing.T) {
	p := newProxy(t)
	type frame struct{ writer, seq uint32 }
	var mu sync.Mutex
	received := map[net.Addr][]frame{}
	srv := startServer(t, func(c net.Conn) {
		var b [8]byte
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			mu.Lock()
			received[c.RemoteAddr()] = append(received[c.RemoteAddr()], frame{binary.BigEndian.Uint32(b[:]), binary.BigEndian.Uint32(b[4:])})
			mu.Unlock()
		}
	})
	l := listen(t, p, LinkConfig{Name: "ab", From: "a", To: "b", Target: srv.Addr()})
	p.SetDelay("a", "b", 5*time.Millisecond)
	p.SetJitter("a", "b", 5*time.Millisecond)

	const conns, writers, frames = 3, 4, 300
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		c := dial(t, l.Addr())
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s := 0; s < frames; s++ {
					var b [8]byte
					binary.BigEndian.PutUint32(b[:], uint32(w))
					binary.BigEndian.PutUint32(b[4:], uint32(s))
					// One Write per frame: writes on a net.Conn do not
					// interleave.
					if _, err := c.Write(b[:]); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, fs := range received {
			n += len(fs)
		}
		return n == conns*writers*frames
	}, "every frame arrives")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, received, conns)
	for _, fs := range received {
		next := make([]uint32, writers)
		for _, f := range fs {
			require.Less(t, f.writer, uint32(writers), "a frame arrived torn")
			require.Equal(t, next[f.writer], f.seq, "writer %d's frames out of order", f.writer)
			next[f.writer]++
		}
	}
}

func TestJitterIsSeeded(t *testing.T) {
	draws := func(seed uint64, link string, seq uint64) []time.Duration {
		p := New(Config{Seed: seed})
		defer p.Close()
		c := &proxConn{link: &Link{cfg: LinkConfig{Name: link}, p: p}, seq: seq}
		f := c.newFlow(nil, nil, "a", "b", &dirCounters{}, 1)
		var out []time.Duration
		for i := 0; i < 20; i++ {
			d := f.draw(10 * time.Millisecond)
			require.LessOrEqual(t, d, 10*time.Millisecond)
			require.GreaterOrEqual(t, d, -10*time.Millisecond)
			out = append(out, d)
		}
		return out
	}
	require.Equal(t, draws(7, "ab", 3), draws(7, "ab", 3))
	require.NotEqual(t, draws(7, "ab", 3), draws(8, "ab", 3))
	require.NotEqual(t, draws(7, "ab", 3), draws(7, "ab", 4))
	require.NotEqual(t, draws(7, "ab", 3), draws(7, "ac", 3))
}

func TestBandwidthLimit(t *testing.T) {
	p := newProxy(t)
	srv := startServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	l := listen(t, p, LinkConfig{Name: "ab", From: "a", To: "b", Target: srv.Addr()})
	p.SetBandwidth("a", "b", 1<<20)
	c := dial(t, l.Addr())
	start := time.Now()
	_, err := c.Write(make([]byte, 256<<10))
	require.NoError(t, err)
	eventually(t, func() bool { return l.Stats().Up.Bytes == 256<<10 }, "all bytes forwarded")
	// 256 KiB at 1 MiB/s: the last chunk leaves a quarter second after the
	// first arrived, less the time of the first chunk itself.
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
}

func TestBlackholeHoldsAndHeals(t *testing.T) {
	p := newProxy(t)
	srv := startServer(t, echo)
	l := listen(t, p, LinkConfig{Name: "ab", From: "a", To: "b", Target: srv.Addr()})
	c := dial(t, l.Addr())
	roundTrip(t, c, "before")

	p.Cut("b", "a", Blackhole)
	// A live connection stalls: what it sends is held, nothing comes back.
	_, err := c.Write([]byte("held"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "nothing crosses a blackhole, got %v", err)
	// A new connection is held before it reaches the target.
	c2 := dial(t, l.Addr())
	_, err = c2.Write([]byte("new"))
	require.NoError(t, err)
	eventually(t, func() bool { return l.Stats().Pending == 1 }, "the new connection is held")
	require.Equal(t, int64(len("before")), l.Stats().Up.Bytes, "only what was sent before the cut reached the target")

	p.Heal("a", "b")
	require.NoError(t, c.SetDeadline(time.Now().Add(patience)))
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "held", string(buf), "held bytes are delivered once healed")
	require.NoError(t, c2.SetDeadline(time.Now().Add(patience)))
	buf = make([]byte, 3)
	_, err = io.ReadFull(c2, buf)
	require.NoError(t, err)
	require.Equal(t, "new", string(buf))
	require.Equal(t, int64(0), l.Stats().Pending)
	require.Equal(t, int64(0), l.Stats().Resets)
}

func TestResetCutAndHeal(t *testing.T) {
	p := newProxy(t)
	srv := startServer(t, echo)
	l := listen(t, p, LinkConfig{Name: "ab", From: "a", To: "b", Target: srv.Addr()})
	other := listen(t, p, LinkConfig{Name: "cb", From: "c", To: "b", Target: srv.Addr()})
	c := dial(t, l.Addr())
	roundTrip(t, c, "before")
	oc := dial(t, other.Addr())
	roundTrip(t, oc, "before")

	p.Cut("a", "b", Reset)
	requireBroken(t, c)
	requireRefused(t, l.Addr())
	require.Equal(t, int64(2), l.Stats().Resets)
	roundTrip(t, oc, "the pair c-b is not cut")

	p.Heal("a", "b")
	roundTrip(t, dial(t, l.Addr()), "after")
	require.Equal(t, int64(2), l.Stats().Resets)
	require.Equal(t, int64(0), other.Stats().Resets)
}

// requireBroken checks that c fails to carry a round trip.
func requireBroken(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(patience)))
	_, _ = c.Write([]byte("x"))
	_, err := io.ReadFull(c, make([]byte, 1))
	require.Error(t, err)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "a reset connection fails at once, got %v", err)
}

// requireRefused checks that a connection to addr is reset, which may come
// before the client's connect returns.
func requireRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, patience)
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "refused at once, got %v", err)
		return
	}
	defer c.Close()
	requireBroken(t, c)
}

func TestLinkCutAlone(t *testing.T) {
	p := newProxy(t)
	srv := startServer(t, echo)
	l1 := listen(t, p, LinkConfig{Name: "ab1", From: "a", To: "b", Target: srv.Addr()})
	l2 := listen(t, p, LinkConfig{Name: "ab2", From: "a", To: "b", Target: srv.Addr()})
	c1, c2 := dial(t, l1.Addr()), dial(t, l2.Addr())
	roundTrip(t, c1, "x")
	l1.Cut(Reset)
	requireBroken(t, c1)
	roundTrip(t, c2, "the other link of the same sites is up")
	l1.Heal()
	roundTrip(t, dial(t, l1.Addr()), "y")

	// A link cut by name stays cut when its sites heal; HealAll heals all.
	l1.Cut(Blackhole)
	p.Heal("a", "b")
	require.Equal(t, Blackhole, l1.CutMode())
	p.HealAll()
	require.Equal(t, Mode(0), l1.CutMode())
}

// One link per target serves every site: each connection's source site is
// named by the Dialer it came through, or by its source address.
func TestClassifyBySourceSite(t *testing.T) {
	p := newProxy(t)
	srv := startServer(t, echo)
	l := listen(t, p, LinkConfig{Name: "to-b", To: "b", Target: srv.Addr()})
	p.SetDelay("a", "b", 25*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	fromA, err := p.Dialer("a")(ctx, l.Addr())
	require.NoError(t, err)
	defer fromA.Close()
	fromC, err := p.Dialer("c")(ctx, l.Addr())
	require.NoError(t, err)
	defer fromC.Close()
	require.GreaterOrEqual(t, roundTrip(t, fromA, "x"), 50*time.Millisecond)
	roundTrip(t, fromC, "x")

	p.Cut("a", "b", Reset)
	requireBroken(t, fromA)
	roundTrip(t, fromC, "c is not cut from b")
	p.HealAll()

	// A plain dial is classified by its source address.
	require.NoError(t, p.SetSource("127.0.0.0/8", "c"))
	require.NoError(t, p.SetSource("127.0.0.1", "a"))
	plain := dial(t, l.Addr())
	roundTrip(t, plain, "x")
	p.Cut("a", "b", Reset)
	requireBroken(t, plain)

	// Dialing anything else is a plain dial.
	direct, err := p.Dialer("a")(ctx, srv.Addr())
	require.NoError(t, err)
	defer direct.Close()
	roundTrip(t, direct, "not through the proxy")
	require.Error(t, p.SetSource("nonsense", "a"))
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	p := New(DefaultConfig())
	srv := startServer(t, echo)
	var links []*Link
	for _, name := range []string{"ab", "ac"} {
		l, err := p.Listen(LinkConfig{Name: name, From: "a", To: name[1:], Target: srv.Addr()})
		require.NoError(t, err)
		links = append(links, l)
	}
	p.SetDelay("a", "b", 50*time.Millisecond)
	var conns []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", links[i%2].Addr())
		require.NoError(t, err)
		conns = append(conns, c)
		_, err = c.Write([]byte("in flight"))
		require.NoError(t, err)
	}
	require.NoError(t, conns[1].SetDeadline(time.Now().Add(patience)))
	_, err := io.ReadFull(conns[1], make([]byte, len("in flight")))
	require.NoError(t, err)
	p.Cut("a", "c", Blackhole)
	c, err := net.Dial("tcp", links[1].Addr())
	require.NoError(t, err)
	conns = append(conns, c)
	eventually(t, func() bool { return links[1].Stats().Pending >= 1 }, "a connection is held")

	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close twice")
	_, err = p.Listen(LinkConfig{Name: "late", From: "a", To: "b", Target: srv.Addr()})
	require.ErrorIs(t, err, ErrClosed)
	for _, c := range conns {
		c.Close()
	}
	srv.Close()
	eventually(t, func() bool { return runtime.NumGoroutine() <= before }, "goroutines end after Close")
}

func TestListenRefusesBadLinks(t *testing.T) {
	p := newProxy(t)
	_, err := p.Listen(LinkConfig{Name: "x", To: "b"})
	require.ErrorIs(t, err, ErrInvalid)
	listen(t, p, LinkConfig{Name: "x", To: "b", Target: "127.0.0.1:1"})
	_, err = p.Listen(LinkConfig{Name: "x", To: "b", Target: "127.0.0.1:1"})
	require.ErrorIs(t, err, ErrInvalid)
}

func TestUnreachableTargetResetsClient(t *testing.T) {
	p := newProxy(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	ln.Close()
	l := listen(t, p, LinkConfig{Name: "x", From: "a", To: "b", Target: dead})
	requireRefused(t, l.Addr())
	eventually(t, func() bool { return l.Stats().Resets == 1 }, "the connection is reset")
}

func TestHalfCloseIsForwarded(t *testing.T) {
	p := newProxy(t)
	// The server reads until EOF, then answers with what it read.
	srv := startServer(t, func(c net.Conn) {
		b, err := io.ReadAll(c)
		if err == nil {
			_, _ = c.Write(bytes.ToUpper(b))
		}
	})
	l := listen(t, p, LinkConfig{Name: "x", From: "a", To: "b", Target: srv.Addr()})
	p.SetDelay("a", "b", 5*time.Millisecond)
	c := dial(t, l.Addr())
	require.NoError(t, c.SetDeadline(time.Now().Add(patience)))
	_, err := c.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	b, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "HELLO", string(b))
}

// A stream larger than what the proxy holds in flight pushes back on its
// sender during a blackhole, and arrives whole once healed.
func TestBlackholePushesBackAndDeliversWhole(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxInFlight = 16 << 10
	p := New(cfg)
	defer p.Close()
	srv := startServer(t, echo)
	l := listen(t, p, LinkConfig{Name: "ab", From: "a", To: "b", Target: srv.Addr()})
	c := dial(t, l.Addr())
	roundTrip(t, c, "x")
	p.Cut("a", "b", Blackhole)

	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Write(data); errc <- err }()
	// The proxy reads until it holds MaxInFlight, then stops reading; the
	// rest waits in the kernel's buffers and in the blocked Write.
	held := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		for pc := range p.conns {
			if pc.up != nil {
				pc.up.mu.Lock()
				defer pc.up.mu.Unlock()
				return pc.up.qBytes
			}
		}
		return 0
	}
	eventually(t, func() bool { return held() >= cfg.MaxInFlight }, "the proxy holds MaxInFlight bytes")
	require.Less(t, held(), cfg.MaxInFlight+readSize, "and no more than one chunk beyond")
	require.Equal(t, int64(1), l.Stats().Up.Bytes, "nothing crossed the blackhole")
	p.Heal("a", "b")
	require.NoError(t, c.SetDeadline(time.Now().Add(patience)))
	got := make([]byte, len(data))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.NoError(t, <-errc)
	require.True(t, bytes.Equal(data, got), "the stream arrives whole and in order")
}
