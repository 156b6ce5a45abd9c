package wanem

import (
	"context"
	"net"
	"sync"
)

// Dialer returns a dial function for a process at site: connections it
// makes to one of the proxy's links are classified as coming from site
// (on links without a fixed source site), whatever their source address.
// In-process clusters, whose nodes all dial from 127.0.0.1, use it to get
// a delay per pair of sites out of one link per node.
func (p *Proxy) Dialer(site string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		p.mu.Lock()
		if p.closed || !p.isLinkAddrLocked(addr) {
			p.mu.Unlock()
			return d.DialContext(ctx, "tcp", addr)
		}
		// Counted before connecting, so that the link, which may accept
		// before we register, knows to wait for the registration.
		p.pending++
		p.mu.Unlock()
		c, err := d.DialContext(ctx, "tcp", addr)
		p.mu.Lock()
		p.pending--
		if err == nil {
			p.dialed[c.LocalAddr().String()] = site
		}
		p.regChangedLocked()
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return &dialedConn{Conn: c, p: p}, nil
	}
}

func (p *Proxy) isLinkAddrLocked(addr string) bool {
	for _, l := range p.links {
		if l.Addr() == addr {
			return true
		}
	}
	return false
}

// dialedConn forgets its registration on Close, in case the link never
// consumed it (the connection was closed before it was accepted).
type dialedConn struct {
	net.Conn
	p    *Proxy
	once sync.Once
}

func (c *dialedConn) Close() error {
	c.once.Do(func() {
		c.p.mu.Lock()
		delete(c.p.dialed, c.Conn.LocalAddr().String())
		c.p.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite half-closes, as *net.TCPConn does, so callers can still send
// FIN through a dialed connection.
func (c *dialedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
