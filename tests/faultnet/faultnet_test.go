package faultnet

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestCutRefusesAndSevers(t *testing.T) {
	n := New()
	addrB := echoServer(t)
	n.Name(addrB, "b")
	dial := n.Dialer("a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := dial(ctx, addrB)
	require.NoError(t, err)
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	buf := make([]byte, 1)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)

	n.Cut("b", "a")
	_, err = io.ReadFull(c, buf)
	require.Error(t, err, "the live connection is severed")
	_, err = dial(ctx, addrB)
	require.Error(t, err, "new dials are refused")
	severed, refused := n.Stats()
	require.Equal(t, 1, severed)
	require.Equal(t, 1, refused)

	// Other links are unaffected, and Heal restores this one.
	require.NoError(t, func() error {
		c, err := n.Dialer("c")(ctx, addrB)
		if err == nil {
			c.Close()
		}
		return err
	}())
	n.Heal()
	c, err = dial(ctx, addrB)
	require.NoError(t, err)
	c.Close()
}

func TestIsolate(t *testing.T) {
	n := New()
	addrA, addrB := echoServer(t), echoServer(t)
	n.Name(addrA, "a")
	n.Name(addrB, "b")
	n.Name(echoServer(t), "c")
	n.Isolate("c")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.Dialer("c")(ctx, addrA)
	require.Error(t, err)
	_, err = n.Dialer("b")(ctx, addrA)
	require.NoError(t, err, "a and b still talk")
}

func TestDialerVia(t *testing.T) {
	n := New()
	addrB := echoServer(t)
	n.Name(addrB, "b")
	var dialed []string
	via := func(ctx context.Context, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.DialerVia("a", via)(ctx, addrB)
	require.NoError(t, err)
	c.Close()
	require.Equal(t, []string{addrB}, dialed, "dials go through the given function")
	n.Cut("a", "b")
	_, err = n.DialerVia("a", via)(ctx, addrB)
	require.Error(t, err)
	require.Len(t, dialed, 1, "a cut link refuses before dialing")
}
