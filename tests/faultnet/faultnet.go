package faultnet

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// Network tracks which links are cut and the connections crossing each.
type Network struct {
	mu    sync.Mutex
	names map[string]string // peer address -> node name
	cut   map[link]bool
	conns map[*conn]struct{}
	// Severed counts connections closed by cuts; Refused, dials refused.
	severed, refused int
}

type link struct{ a, b string }

func mkLink(a, b string) link {
	if a > b {
		a, b = b, a
	}
	return link{a, b}
}

// New returns a network with every link up.
func New() *Network {
	return &Network{names: map[string]string{}, cut: map[link]bool{}, conns: map[*conn]struct{}{}}
}

// Name records that the node called name listens at addr.
func (n *Network) Name(addr, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names[addr] = name
}

// Dialer returns the dial function for node from.
func (n *Network) Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return n.DialerVia(from, nil)
}

// DialerVia is Dialer over another dial function (a WAN emulator's, say)
// instead of plain TCP; nil means plain TCP.
func (n *Network) DialerVia(from string, dial func(ctx context.Context, addr string) (net.Conn, error)) func(ctx context.Context, addr string) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		n.mu.Lock()
		to, known := n.names[addr]
		if known && n.cut[mkLink(from, to)] {
			n.refused++
			n.mu.Unlock()
			return nil, fmt.Errorf("faultnet: %s -> %s (%s): link cut", from, to, addr)
		}
		n.mu.Unlock()
		c, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		wc := &conn{Conn: c, l: mkLink(from, to)}
		n.mu.Lock()
		defer n.mu.Unlock()
		if known && n.cut[wc.l] {
			// Cut while dialing.
			c.Close()
			n.refused++
			return nil, fmt.Errorf("faultnet: %s -> %s (%s): link cut", from, to, addr)
		}
		n.conns[wc] = struct{}{}
		wc.net = n
		return wc, nil
	}
}

// Cut breaks the link between nodes a and b in both directions.
func (n *Network) Cut(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := mkLink(a, b)
	n.cut[l] = true
	for c := range n.conns {
		if c.l == l {
			c.Conn.Close()
			delete(n.conns, c)
			n.severed++
		}
	}
}

// Isolate cuts node a from every other named node.
func (n *Network) Isolate(a string) {
	n.mu.Lock()
	var others []string
	seen := map[string]bool{}
	for _, name := range n.names {
		if name != a && !seen[name] {
			seen[name] = true
			others = append(others, name)
		}
	}
	n.mu.Unlock()
	for _, b := range others {
		n.Cut(a, b)
	}
}

// Heal restores every link.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[link]bool{}
}

// Stats reports connections severed by cuts and dials refused.
func (n *Network) Stats() (severed, refused int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.severed, n.refused
}

type conn struct {
	net.Conn
	l   link
	net *Network
}

func (c *conn) Close() error {
	if c.net != nil {
		c.net.mu.Lock()
		delete(c.net.conns, c)
		c.net.mu.Unlock()
	}
	return c.Conn.Close()
}
