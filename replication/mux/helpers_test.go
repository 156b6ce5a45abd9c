package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitFor bounds every wait in these tests; nothing here should take more
// than a fraction of it.
const waitFor = 10 * time.Second

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func testConfig(secret []byte) Config {
	cfg := DefaultConfig()
	cfg.Secret = secret
	return cfg
}

// startMux listens on a loopback port, serves in the background, and on
// cleanup closes the Mux and checks Serve came back with ErrClosed.
func startMux(t *testing.T, cfg Config) *Mux {
	t.Helper()
	m, err := Listen("127.0.0.1:0", cfg)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	t.Cleanup(func() {
		require.NoError(t, m.Close())
		select {
		case err := <-served:
			require.ErrorIs(t, err, ErrClosed)
		case <-time.After(waitFor):
			t.Error("Serve did not return after Close")
		}
	})
	return m
}

type acceptResult struct {
	conn net.Conn
	err  error
}

// acceptAsync runs one Accept in the background so a test can wait on it
// with a deadline.
func acceptAsync(l net.Listener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := l.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

func recvAccept(t *testing.T, ch <-chan acceptResult) acceptResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitFor):
		t.Fatal("Accept did not return")
		return acceptResult{}
	}
}

// readClosed waits, with a deadline, for the peer to close conn, and
// returns what it sent before closing. A reset counts as a close: the
// listener may hang up with unread garbage in its buffer.
func readClosed(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(waitFor)))
	b, err := io.ReadAll(conn)
	if err != nil {
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the listener left the connection open")
	}
	return b
}
