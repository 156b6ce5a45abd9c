package mux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Mux serves one TCP listener for every conversation of a node: the Raft
// traffic of each of its groups and node-to-node RPC. It is also the
// dialing side towards the other nodes' muxes, since both ends share the
// secret and the handshake.
type Mux struct {
	ln     net.Listener
	cfg    Config
	secret []byte
	addr   net.Addr
	logger hclog.Logger

	// ctx is cancelled by Close; dials made for raft layers derive from it
	// so that they end with the Mux.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	layers   map[uint64]*raftLayer
	handlers map[byte]func(net.Conn)
	// conns are the connections this Mux still owns: in handshake, waiting
	// for a raft layer's Accept, or inside a handler.
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	stats counters
	// slots holds a token per connection in handshake (MaxHandshakes).
	slots   chan struct{}
	limiter *failureLimiter
}

// Listen listens on addr (host:port) and returns a Mux over it. Call Serve
// to start accepting.
func Listen(addr string, cfg Config) (*Mux, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mux: listen %s: %w", addr, err)
	}
	m, err := New(ln, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return m, nil
}

// New returns a Mux over ln, which it owns from now on: Close closes it.
// Call Serve to start accepting.
func New(ln net.Listener, cfg Config) (*Mux, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var addr net.Addr = ln.Addr()
	if cfg.AdvertiseAddr != "" {
		addr = advertised(cfg.AdvertiseAddr)
	} else if err := CheckDialable(addr.String()); err != nil {
		return nil, fmt.Errorf("%w: listener address cannot be dialled by peers, set AdvertiseAddr: %v", ErrInvalidConfig, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Mux{
		ln:       ln,
		cfg:      cfg,
		secret:   append([]byte(nil), cfg.Secret...),
		addr:     addr,
		logger:   logger,
		ctx:      ctx,
		cancel:   cancel,
		layers:   make(map[uint64]*raftLayer),
		handlers: make(map[byte]func(net.Conn)),
		conns:    make(map[net.Conn]struct{}),
		slots:    make(chan struct{}, cfg.MaxHandshakes),
		limiter:  newFailureLimiter(cfg.FailureBurst, cfg.FailureRefill),
	}, nil
}

// Addr is the address peers dial to reach this Mux.
func (m *Mux) Addr() net.Addr { return m.addr }

// Stats returns the connection counters.
func (m *Mux) Stats() Stats {
	s := m.stats.snapshot()
	s.InHandshake = len(m.slots)
	return s
}

// Handle routes connections of kind to h, each in its own goroutine. The
// connection is closed when h returns, and Close closes it under h and
// waits for h to return. Handle panics on KindRaft (use RaftLayer), on kind
// 0, on a nil h and on a kind already handled: each is a wiring mistake.
func (m *Mux) Handle(kind byte, h func(net.Conn)) {
	if kind == 0 || kind == KindRaft {
		panic(fmt.Sprintf("mux: kind %d cannot have a handler", kind))
	}
	if h == nil {
		panic("mux: nil handler")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.handlers[kind]; ok {
		panic(fmt.Sprintf("mux: kind %d already has a handler", kind))
	}
	m.handlers[kind] = h
}

// Serve accepts connections until Close, then returns ErrClosed. Each
// connection's handshake runs in its own goroutine under the handshake
// deadline, so a slow peer delays nobody else. A connection is closed at
// once, before any handshake, when MaxHandshakes are in progress or its
// source has spent its budget of failed handshakes.
func (m *Mux) Serve() error {
	var backoff time.Duration
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			if m.isClosed() {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("%w: listener closed: %v", ErrClosed, err)
			}
			// Out of file descriptors and the like: wait rather than spin,
			// as the condition usually passes.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			m.logger.Warn("accept failed", "error", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-m.ctx.Done():
				t.Stop()
				return ErrClosed
			}
			continue
		}
		backoff = 0
		src := sourceOf(conn.RemoteAddr())
		if !m.limiter.admit(src) {
			m.stats.throttled.Add(1)
			m.logger.Debug("connection refused: too many failed handshakes", "remote", conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		select {
		case m.slots <- struct{}{}:
		default:
			m.limiter.done(src, false)
			m.stats.shed.Add(1)
			m.logger.Debug("connection refused: too many handshakes in progress", "remote", conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		if !m.own(conn) {
			<-m.slots
			m.limiter.done(src, false)
			conn.Close()
			return ErrClosed
		}
		go m.serveConn(conn, src)
	}
}

// Close stops Serve, fails pending handshakes, makes every raft layer's
// Accept return ErrClosed, closes connections inside handlers and waits for
// the handlers to return. Connections already handed to a raft layer belong
// to its transport. Close is idempotent.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.cancel()
	conns := make([]net.Conn, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	layers := make([]*raftLayer, 0, len(m.layers))
	for _, l := range m.layers {
		layers = append(layers, l)
	}
	m.mu.Unlock()

	err := m.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	for _, l := range layers {
		l.Close()
	}
	m.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (m *Mux) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// own registers conn and its goroutine under the lock Close takes, so that
// Close either sees the connection or the caller sees the Mux closed.
func (m *Mux) own(conn net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.conns[conn] = struct{}{}
	m.wg.Add(1)
	return true
}

func (m *Mux) disown(conn net.Conn) {
	m.mu.Lock()
	delete(m.conns, conn)
	m.mu.Unlock()
}

func (m *Mux) routable(r route) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.kind == KindRaft {
		_, ok := m.layers[r.group]
		return ok
	}
	_, ok := m.handlers[r.kind]
	return ok
}

func (m *Mux) serveConn(conn net.Conn, src string) {
	defer m.wg.Done()
	handedOff := false
	defer func() {
		if !handedOff {
			m.disown(conn)
			conn.Close()
		}
	}()

	r, peer, err := m.handshake(conn)
	<-m.slots
	m.limiter.done(src, err != nil && spendsBudget(err) && !m.isClosed())
	if err != nil {
		m.reject(conn, err)
		return
	}
	// conn stays the one registered (Close closes the socket under TLS);
	// the route gets peer, which speaks TLS when the port does.

	if r.kind == KindRaft {
		m.mu.Lock()
		l := m.layers[r.group]
		m.mu.Unlock()
		if l == nil {
			// The layer closed after the handshake looked it up.
			m.reject(conn, fmt.Errorf("%w: %s closed", ErrUnknownRoute, r))
			return
		}
		select {
		case l.conns <- peer:
			m.disown(conn)
			handedOff = true
			m.stats.accepted.Add(1)
		case <-l.closed:
			m.reject(conn, fmt.Errorf("%w: %s closed", ErrUnknownRoute, r))
		case <-m.ctx.Done():
			m.reject(conn, ErrClosed)
		}
		return
	}

	m.mu.Lock()
	h := m.handlers[r.kind]
	m.mu.Unlock()
	m.stats.accepted.Add(1)
	h(peer)
}

// spendsBudget tells the handshake failures that count against their
// source: every one before the dialer proved the secret, a hang-up
// included. A peer that hangs up unproven could otherwise hold a slot for
// nearly HandshakeTimeout, again and again, and fill MaxHandshakes without
// ever being throttled; a member whose caller gave up mid-handshake spends
// a token, which the burst absorbs. A failure after the proof (an unknown
// route, a hang-up before the listener's answer) is a member's and spares
// it.
func spendsBudget(err error) bool {
	return !errors.Is(err, ErrUnknownRoute) && !errors.Is(err, errProven)
}

// handshake authenticates an accepted connection: TLS first when the port
// has it (the peer's certificate must chain to the cluster CA), then the
// secret's proofs inside it. It returns the connection the route speaks
// over.
func (m *Mux) handshake(conn net.Conn) (route, net.Conn, error) {
	if err := conn.SetDeadline(time.Now().Add(m.cfg.HandshakeTimeout)); err != nil {
		return route{}, nil, ioErr("set deadline", err)
	}
	peer := conn
	if m.cfg.ServerTLS != nil {
		tc := tls.Server(conn, m.cfg.ServerTLS)
		if err := tc.HandshakeContext(m.ctx); err != nil {
			return route{}, nil, tlsErr(err)
		}
		peer = tc
	}
	r, err := acceptHandshake(peer, m.secret, m.routable)
	if err != nil {
		return route{}, nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return route{}, nil, fmt.Errorf("%w: %w", errProven, ioErr("clear deadline", err))
	}
	return r, peer, nil
}

// tlsErr classifies a failed TLS handshake: a peer that hung up or timed
// out is an I/O failure like any other; anything else (a certificate the
// cluster CA did not sign, no certificate, an older TLS version, bytes that
// are not TLS) is a peer this port does not admit.
func tlsErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isNetErr(err) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
		return ioErr("TLS handshake", err)
	}
	return fmt.Errorf("%w: TLS handshake: %v", ErrUnauthorized, err)
}

func (m *Mux) reject(conn net.Conn, err error) {
	level := hclog.Debug
	switch {
	case errors.Is(err, ErrBadMagic), errors.Is(err, ErrBadVersion):
		m.stats.badMagic.Add(1)
	case errors.Is(err, ErrUnauthorized):
		m.stats.unauthorized.Add(1)
		level = hclog.Warn
	case errors.Is(err, ErrUnknownRoute):
		m.stats.unknownRoute.Add(1)
		level = hclog.Warn
	default:
		m.stats.failed.Add(1)
	}
	m.logger.Log(level, "connection rejected", "remote", conn.RemoteAddr().String(), "error", err)
}

// Dial connects to the Mux at addr for a conversation of kind (KindRPC, or
// a kind of the caller's) and returns the connection once both sides have
// proved the secret. The handshake ends by ctx's deadline or the handshake
// timeout, whichever comes first. Raft groups dial through RaftLayer.
func (m *Mux) Dial(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	if kind == 0 || kind == KindRaft {
		return nil, fmt.Errorf("%w: kind %d cannot be dialled directly", ErrUnknownRoute, kind)
	}
	return m.dial(ctx, addr, route{kind: kind})
}

func (m *Mux) dial(ctx context.Context, addr string, r route) (net.Conn, error) {
	if m.isClosed() {
		return nil, ErrClosed
	}
	var conn net.Conn
	var err error
	if m.cfg.Dial != nil {
		conn, err = m.cfg.Dial(ctx, addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("mux: dial %s: %w", addr, err)
	}
	deadline := time.Now().Add(m.cfg.HandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, fmt.Errorf("mux: dial %s: %w", addr, ioErr("set deadline", err))
	}
	// Cancelling ctx must interrupt a handshake blocked in a read.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	if m.cfg.ClientTLS != nil {
		tc := tls.Client(conn, m.clientTLSFor(addr))
		if err = tc.Handshake(); err != nil {
			err = tlsErr(err)
		}
		conn = tc
	}
	if err == nil {
		err = dialHandshake(conn, m.secret, r)
	}
	if !stop() {
		conn.Close()
		return nil, fmt.Errorf("mux: dial %s (%s): %w", addr, r, context.Cause(ctx))
	}
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mux: dial %s (%s): %w", addr, r, err)
	}
	return conn, nil
}

// clientTLSFor is ClientTLS checking the listener's certificate against the
// host dialled, unless ClientTLS names the server itself.
func (m *Mux) clientTLSFor(addr string) *tls.Config {
	c := m.cfg.ClientTLS
	if c.ServerName != "" {
		return c
	}
	c = c.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		c.ServerName = host
	}
	return c
}

// advertised is an address given by configuration rather than read from a
// socket.
type advertised string

func (a advertised) Network() string { return "tcp" }
func (a advertised) String() string  { return string(a) }
