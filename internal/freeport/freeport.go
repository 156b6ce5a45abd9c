package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// The range sits under Linux's default ephemeral range (32768-60999) and
// above the ports services commonly register.
const (
	low  = 20000
	high = 32000
)

var (
	mu   sync.Mutex
	next = low + rand.IntN(high-low)
)

// Addr returns "127.0.0.1:PORT" for a port nothing listens on now.
func Addr(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range high - low {
		port := next
		next++
		if next == high {
			next = low
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatalf("freeport: no free port in %d-%d", low, high)
	return ""
}
