package mux

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Connections that never finish their handshake hold at most MaxHandshakes
// goroutines; the ones beyond are closed at once, and a slot freed serves a
// peer again.
func TestHandshakesInFlightAreCapped(t *testing.T) {
	cfg := testConfig(testSecret)
	cfg.MaxHandshakes = 2
	cfg.HandshakeTimeout = time.Minute // longer than any wait here
	server := startMux(t, cfg)
	server.Handle(KindRPC, func(net.Conn) {})
	addr := server.Addr().String()

	var silent []net.Conn
	for range 2 {
		c, err := net.DialTimeout("tcp", addr, waitFor)
		require.NoError(t, err)
		defer c.Close()
		silent = append(silent, c)
	}
	require.Eventually(t, func() bool { return server.Stats().InHandshake == 2 }, waitFor, time.Millisecond)

	for range 3 {
		extra, err := net.DialTimeout("tcp", addr, waitFor)
		require.NoError(t, err)
		require.Empty(t, readClosed(t, extra), "a connection beyond the cap was kept")
		extra.Close()
	}
	s := server.Stats()
	require.Equal(t, uint64(3), s.Shed)
	require.Equal(t, 2, s.InHandshake)

	for _, c := range silent {
		c.Close()
	}
	require.Eventually(t, func() bool { return server.Stats().InHandshake == 0 }, waitFor, time.Millisecond)
	client := startMux(t, testConfig(testSecret))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, addr, KindRPC)
	require.NoError(t, err)
	c.Close()
	require.Eventually(t, func() bool { return server.Stats().Accepted == 1 }, waitFor, time.Millisecond)
}

// A source that keeps failing the proof is cut off before any handshake
// once its budget is spent, and let back in as the budget refills.
func TestFailedHandshakesAreRateLimited(t *testing.T) {
	cfg := testConfig(testSecret)
	cfg.FailureBurst = 3
	cfg.FailureRefill = time.Hour
	server := startMux(t, cfg)
	server.Handle(KindRPC, func(net.Conn) {})
	var mu sync.Mutex
	now := time.Now()
	server.limiter.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	addr := server.Addr().String()
	intruder := startMux(t, testConfig([]byte("not the cluster secret, though long")))
	member := startMux(t, testConfig(testSecret))
	dial := func(m *Mux) error {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		c, err := m.Dial(ctx, addr, KindRPC)
		if err == nil {
			c.Close()
		}
		return err
	}

	for range 3 {
		require.ErrorIs(t, dial(intruder), ErrUnauthorized)
	}
	require.Eventually(t, func() bool { return server.Stats().Unauthorized == 3 }, waitFor, time.Millisecond)
	// The fourth attempt gets no handshake at all: no nonce, no HMAC.
	err := dial(intruder)
	require.ErrorIs(t, err, ErrHandshake)
	require.NotErrorIs(t, err, ErrUnauthorized)
	// The limit is per source, not per secret: the same address is refused
	// whatever it knows.
	require.ErrorIs(t, dial(member), ErrHandshake)
	s := server.Stats()
	require.Equal(t, uint64(3), s.Unauthorized)
	require.Equal(t, uint64(2), s.Throttled)
	require.Zero(t, s.Accepted)

	mu.Lock()
	now = now.Add(cfg.FailureRefill)
	mu.Unlock()
	require.NoError(t, dial(member))
	// One token back: one more failure, then refused again.
	require.ErrorIs(t, dial(intruder), ErrUnauthorized)
	require.Eventually(t, func() bool {
		s := server.Stats()
		return s.Unauthorized == 4 && s.Accepted == 1
	}, waitFor, time.Millisecond)
	require.ErrorIs(t, dial(intruder), ErrHandshake)
	require.Equal(t, uint64(3), server.Stats().Throttled)
}

func TestSourceOf(t *testing.T) {
	require.Equal(t, "10.1.2.3", sourceOf(&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5}))
	require.Equal(t, "10.1.2.3", sourceOf(&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 5}))
	a := sourceOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 5})
	b := sourceOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 5})
	require.Equal(t, "2001:db8:1:2::/64", a)
	require.Equal(t, a, b)
}

// A source that opens connections and hangs up before proving the secret
// spends its budget like one that fails the proof: otherwise it could hold
// every handshake slot, closing each just before the deadline, and never be
// throttled, shutting members out.
func TestUnprovenHangupsSpendBudget(t *testing.T) {
	cfg := testConfig(testSecret)
	cfg.FailureBurst = 3
	cfg.FailureRefill = time.Hour
	server := startMux(t, cfg)
	server.Handle(KindRPC, func(net.Conn) {})
	addr := server.Addr().String()

	for i := range 3 {
		c, err := net.DialTimeout("tcp", addr, waitFor)
		require.NoError(t, err)
		_, err = c.Write([]byte(magic))
		require.NoError(t, err)
		c.Close()
		require.Eventually(t, func() bool { return server.Stats().Failed == uint64(i+1) }, waitFor, time.Millisecond)
	}
	c, err := net.DialTimeout("tcp", addr, waitFor)
	require.NoError(t, err)
	defer c.Close()
	require.Empty(t, readClosed(t, c))
	require.Equal(t, uint64(1), server.Stats().Throttled, "hang-ups before the proof never spent the budget")
}

// A source that has failed before may not have more handshakes in flight
// than failures left in its budget: otherwise, each time its budget
// refills to one, it could open MaxHandshakes silent connections at once,
// all admitted before the first fails, and keep members out.
func TestFailedSourceInFlightBoundedByBudget(t *testing.T) {
	cfg := testConfig(testSecret)
	cfg.FailureBurst = 2
	cfg.FailureRefill = time.Hour
	cfg.MaxHandshakes = 10
	cfg.HandshakeTimeout = time.Minute
	server := startMux(t, cfg)
	server.Handle(KindRPC, func(net.Conn) {})
	addr := server.Addr().String()

	// One failure: one token left.
	bad, err := net.DialTimeout("tcp", addr, waitFor)
	require.NoError(t, err)
	_, err = bad.Write([]byte("not the magic"))
	require.NoError(t, err)
	readClosed(t, bad)
	bad.Close()
	require.Eventually(t, func() bool { return server.Stats().BadMagic == 1 }, waitFor, time.Millisecond)

	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range 5 {
		c, err := net.DialTimeout("tcp", addr, waitFor)
		require.NoError(t, err)
		silent = append(silent, c)
	}
	require.Eventually(t, func() bool {
		s := server.Stats()
		return uint64(s.InHandshake)+s.Throttled == 5
	}, waitFor, time.Millisecond)
	require.Equal(t, 1, server.Stats().InHandshake, "a source with one failure left held more handshakes")
}
