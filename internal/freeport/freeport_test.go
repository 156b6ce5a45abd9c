package freeport

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAddrIsBindableAndOutsideEphemeralRange(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		addr := Addr(t)
		require.False(t, seen[addr], "handed out twice: %s", addr)
		seen[addr] = true
		_, p, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		port, err := strconv.Atoi(p)
		require.NoError(t, err)
		require.GreaterOrEqual(t, port, low)
		require.Less(t, port, high)
		ln, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		ln.Close()
	}
}

// A port something already listens on is skipped.
func TestAddrSkipsBusyPort(t *testing.T) {
	first := Addr(t)
	// Rewind so the next probe starts at the port a listener now holds.
	ln, err := net.Listen("tcp", first)
	require.NoError(t, err)
	defer ln.Close()
	mu.Lock()
	_, p, _ := net.SplitHostPort(first)
	next, _ = strconv.Atoi(p)
	mu.Unlock()
	require.NotEqual(t, first, Addr(t))
}
