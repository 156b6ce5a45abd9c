package mux

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	require.ErrorIs(t, DefaultConfig().Validate(), ErrInvalidConfig, "no secret")

	cfg := testConfig([]byte{})
	require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig, "empty secret")

	cfg = testConfig(testSecret[:MinSecretSize-1])
	err := cfg.Validate()
	require.ErrorIs(t, err, ErrInvalidConfig, "short secret")
	require.ErrorContains(t, err, "at least 32")

	cfg = testConfig(testSecret)
	require.NoError(t, cfg.Validate())
	require.Equal(t, 5*time.Second, cfg.HandshakeTimeout)
	for _, tweak := range []func(*Config){
		func(c *Config) { c.MaxHandshakes = 0 },
		func(c *Config) { c.FailureBurst = 0 },
		func(c *Config) { c.FailureRefill = 0 },
	} {
		c := cfg
		tweak(&c)
		require.ErrorIs(t, c.Validate(), ErrInvalidConfig)
	}

	cfg.HandshakeTimeout = 0
	require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig)

	for _, bad := range []string{"nohost", ":7000", "0.0.0.0:7000", "[::]:7000", "10.0.0.1:0"} {
		cfg = testConfig(testSecret)
		cfg.AdvertiseAddr = bad
		require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig, bad)
	}
	cfg.AdvertiseAddr = "node-1.fog:7000"
	require.NoError(t, cfg.Validate())

	_, err = Listen("127.0.0.1:0", DefaultConfig())
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestUnspecifiedListenerNeedsAdvertiseAddr(t *testing.T) {
	_, err := Listen("0.0.0.0:0", testConfig(testSecret))
	require.ErrorIs(t, err, ErrInvalidConfig)

	cfg := testConfig(testSecret)
	cfg.AdvertiseAddr = "127.0.0.1:7000"
	m, err := Listen("127.0.0.1:0", cfg)
	require.NoError(t, err)
	defer m.Close()
	require.Equal(t, "127.0.0.1:7000", m.RaftLayer(1).Addr().String())
}

// Two groups and an RPC handler share one port; each connection reaches
// exactly the route it asked for.
func TestRoutesGroupsAndRPCOverOnePort(t *testing.T) {
	server := startMux(t, testConfig(testSecret))
	client := startMux(t, testConfig(testSecret))

	g1, g2 := server.RaftLayer(1), server.RaftLayer(1<<40)
	require.Same(t, g1, server.RaftLayer(1), "one layer per group")
	require.Equal(t, server.Addr().String(), g1.Addr().String())

	server.Handle(KindRPC, func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "rpc:"+line)
	})

	acc1, acc2 := acceptAsync(g1), acceptAsync(g2)
	addr := raft.ServerAddress(server.Addr().String())

	c1, err := client.RaftLayer(1).Dial(addr, waitFor)
	require.NoError(t, err)
	defer c1.Close()
	c2, err := client.RaftLayer(1<<40).Dial(addr, waitFor)
	require.NoError(t, err)
	defer c2.Close()
	_, err = io.WriteString(c1, "to-g1")
	require.NoError(t, err)
	_, err = io.WriteString(c2, "to-g2")
	require.NoError(t, err)

	for _, tc := range []struct {
		ch   <-chan acceptResult
		want string
	}{{acc1, "to-g1"}, {acc2, "to-g2"}} {
		r := recvAccept(t, tc.ch)
		require.NoError(t, r.err)
		buf := make([]byte, len(tc.want))
		require.NoError(t, r.conn.SetReadDeadline(time.Now().Add(waitFor)))
		_, err := io.ReadFull(r.conn, buf)
		require.NoError(t, err)
		require.Equal(t, tc.want, string(buf))
		r.conn.Close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	rc, err := client.Dial(ctx, server.Addr().String(), KindRPC)
	require.NoError(t, err)
	defer rc.Close()
	_, err = io.WriteString(rc, "hello\n")
	require.NoError(t, err)
	require.NoError(t, rc.SetReadDeadline(time.Now().Add(waitFor)))
	reply, err := bufio.NewReader(rc).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "rpc:hello\n", reply)

	require.Eventually(t, func() bool { return server.Stats().Accepted == 3 }, waitFor, time.Millisecond)
	require.Zero(t, server.Stats().Rejected)
}

func TestUnknownRouteIsClosedAndCounted(t *testing.T) {
	server := startMux(t, testConfig(testSecret))
	client := startMux(t, testConfig(testSecret))
	addr := server.Addr().String()

	_, err := client.RaftLayer(7).Dial(raft.ServerAddress(addr), waitFor)
	require.ErrorIs(t, err, ErrUnknownRoute)

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err = client.Dial(ctx, addr, 9)
	require.ErrorIs(t, err, ErrUnknownRoute)
	_, err = client.Dial(ctx, addr, KindRaft)
	require.ErrorIs(t, err, ErrUnknownRoute, "raft is dialled through RaftLayer")

	// A closed layer gives its group back: it is unknown again.
	l := server.RaftLayer(3)
	require.NoError(t, l.Close())
	_, err = client.RaftLayer(3).Dial(raft.ServerAddress(addr), waitFor)
	require.ErrorIs(t, err, ErrUnknownRoute)
	require.NotSame(t, l, server.RaftLayer(3), "a closed layer is replaced")

	require.Eventually(t, func() bool { return server.Stats().UnknownRoute == 3 }, waitFor, time.Millisecond)
	s := server.Stats()
	require.Zero(t, s.Accepted)
	require.Equal(t, uint64(3), s.Rejected)
}

// A dialer with another secret is refused before any route is reached, and
// learns that it was refused.
func TestWrongSecretIsRejected(t *testing.T) {
	server := startMux(t, testConfig(testSecret))
	intruder := startMux(t, testConfig([]byte("not the cluster secret, though long")))

	var handled atomic.Int32
	server.Handle(KindRPC, func(net.Conn) { handled.Add(1) })
	layer := server.RaftLayer(1)
	acc := acceptAsync(layer)

	addr := server.Addr().String()
	_, err := intruder.RaftLayer(1).Dial(raft.ServerAddress(addr), waitFor)
	require.ErrorIs(t, err, ErrUnauthorized)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err = intruder.Dial(ctx, addr, KindRPC)
	require.ErrorIs(t, err, ErrUnauthorized)
	// Nor does an intruder learn which routes exist.
	_, err = intruder.RaftLayer(99).Dial(raft.ServerAddress(addr), waitFor)
	require.ErrorIs(t, err, ErrUnauthorized)

	require.Eventually(t, func() bool { return server.Stats().Unauthorized == 3 }, waitFor, time.Millisecond)
	s := server.Stats()
	require.Zero(t, s.Accepted)
	require.Zero(t, s.UnknownRoute)
	require.Zero(t, handled.Load())

	// Closing the layer ends the pending Accept: it must not have been
	// handed anything.
	require.NoError(t, layer.Close())
	r := recvAccept(t, acc)
	require.ErrorIs(t, r.err, ErrClosed)
	require.Nil(t, r.conn)
}

// A listener that does not know the secret is refused by the dialer, and
// the secret never appears on the wire.
func TestDialerRejectsListenerWithoutSecret(t *testing.T) {
	client := startMux(t, testConfig(testSecret))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	seen := make(chan []byte, 1)
	go func() {
		// An impostor that follows the protocol but proves with its own key.
		c, err := ln.Accept()
		if err != nil {
			seen <- nil
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(waitFor))
		var got []byte
		hdr := make([]byte, len(magic)+1+2) // magic, version, kind, group 5
		if _, err := io.ReadFull(c, hdr); err != nil {
			seen <- nil
			return
		}
		got = append(got, hdr...)
		nonce := make([]byte, nonceSize)
		_, _ = c.Write(nonce)
		answer := make([]byte, macSize+nonceSize)
		if _, err := io.ReadFull(c, answer); err != nil {
			seen <- nil
			return
		}
		got = append(got, answer...)
		h := hmac.New(sha256.New, []byte("impostor"))
		h.Write(answer[macSize:])
		_, _ = c.Write(append([]byte{statusOK}, h.Sum(nil)...))
		seen <- got
	}()

	_, err = client.RaftLayer(5).Dial(raft.ServerAddress(ln.Addr().String()), waitFor)
	require.ErrorIs(t, err, ErrUnauthorized)
	var got []byte
	select {
	case got = <-seen:
	case <-time.After(waitFor):
		t.Fatal("impostor did not finish")
	}
	require.NotEmpty(t, got)
	require.Equal(t, []byte(magic+"\x01\x01\x05"), got[:len(magic)+3])
	require.NotContains(t, string(got), string(testSecret))
}

// Peers that send garbage or nothing at all are cut off at the handshake
// deadline, and nothing reaches a route.
func TestGarbageAndSilentPeersAreCut(t *testing.T) {
	cfg := testConfig(testSecret)
	cfg.HandshakeTimeout = 100 * time.Millisecond
	server := startMux(t, cfg)
	var handled atomic.Int32
	server.Handle(KindRPC, func(net.Conn) { handled.Add(1) })
	server.RaftLayer(1)
	addr := server.Addr().String()

	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, waitFor)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}

	// Not this protocol at all.
	garbage := dial()
	_, err := io.WriteString(garbage, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	require.Empty(t, readClosed(t, garbage))

	// A later version.
	future := dial()
	_, err = future.Write([]byte(magic + "\x02\x02"))
	require.NoError(t, err)
	require.Empty(t, readClosed(t, future))

	// Connects and says nothing.
	silent := dial()
	require.Empty(t, readClosed(t, silent))

	// Starts the handshake, then stalls before proving anything.
	stalled := dial()
	_, err = stalled.Write([]byte(magic + "\x01\x02"))
	require.NoError(t, err)
	require.Len(t, readClosed(t, stalled), nonceSize)

	// Stops in the middle of the group ID.
	truncated := dial()
	_, err = truncated.Write([]byte(magic + "\x01\x01\x80"))
	require.NoError(t, err)
	require.Empty(t, readClosed(t, truncated))

	// A padded group ID is another encoding of group 1: refused.
	padded := dial()
	_, err = padded.Write([]byte(magic + "\x01\x01\x81\x00"))
	require.NoError(t, err)
	require.Empty(t, readClosed(t, padded))

	require.Eventually(t, func() bool { return server.Stats().Rejected == 6 }, waitFor, time.Millisecond)
	s := server.Stats()
	require.Equal(t, uint64(2), s.BadMagic)
	require.Equal(t, uint64(4), s.Failed)
	require.Zero(t, s.Accepted)
	require.Zero(t, handled.Load())
}

// A dialer facing a listener that never answers gives up at its own
// handshake deadline.
func TestDialerGivesUpOnSilentListener(t *testing.T) {
	cfg := testConfig(testSecret)
	cfg.HandshakeTimeout = 100 * time.Millisecond
	client := startMux(t, cfg)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c
		}
	}()

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_, err := client.Dial(ctx, ln.Addr().String(), KindRPC)
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrHandshake)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(waitFor):
		t.Fatal("Dial hung on a silent listener")
	}
	select {
	case c := <-held:
		c.Close()
	case <-time.After(waitFor):
		t.Fatal("listener never accepted")
	}
}

func TestCloseUnblocksAcceptAndServe(t *testing.T) {
	m, err := Listen("127.0.0.1:0", testConfig(testSecret))
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()

	l1, l2 := m.RaftLayer(1), m.RaftLayer(2)
	acc1, acc2 := acceptAsync(l1), acceptAsync(l2)

	// A handler blocked on its connection is released by Close too.
	inHandler := make(chan struct{})
	m.Handle(KindRPC, func(c net.Conn) {
		close(inHandler)
		_, _ = io.Copy(io.Discard, c)
	})
	client, err := Listen("127.0.0.1:0", testConfig(testSecret))
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	rc, err := client.Dial(ctx, m.Addr().String(), KindRPC)
	require.NoError(t, err)
	defer rc.Close()
	select {
	case <-inHandler:
	case <-time.After(waitFor):
		t.Fatal("handler not reached")
	}

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Close did not return")
	}

	require.ErrorIs(t, recvAccept(t, acc1).err, ErrClosed)
	require.ErrorIs(t, recvAccept(t, acc2).err, ErrClosed)
	select {
	case err := <-served:
		require.ErrorIs(t, err, ErrClosed)
	case <-time.After(waitFor):
		t.Fatal("Serve did not return")
	}

	// Everything after Close fails fast.
	_, err = m.RaftLayer(3).Accept()
	require.ErrorIs(t, err, ErrClosed)
	_, err = m.Dial(ctx, client.Addr().String(), KindRPC)
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, m.Close(), "Close is idempotent")
}

func TestHandleRefusesWiringMistakes(t *testing.T) {
	m, err := Listen("127.0.0.1:0", testConfig(testSecret))
	require.NoError(t, err)
	defer m.Close()
	require.Panics(t, func() { m.Handle(KindRaft, func(net.Conn) {}) })
	require.Panics(t, func() { m.Handle(0, func(net.Conn) {}) })
	require.Panics(t, func() { m.Handle(KindRPC, nil) })
	m.Handle(KindRPC, func(net.Conn) {})
	require.Panics(t, func() { m.Handle(KindRPC, func(net.Conn) {}) })
}
