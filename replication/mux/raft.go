package mux

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

var _ raft.StreamLayer = (*raftLayer)(nil)

// raftLayer is one group's view of the Mux: the connections routed to that
// group, and dials that ask the peer's Mux for the same group.
type raftLayer struct {
	m     *Mux
	group uint64

	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

// RaftLayer returns the stream layer of group groupID, for
// raft.NewNetworkTransport. Connections for the group are refused as an
// unknown route until this is called. Calling it again returns the same
// layer until that layer is closed (the transport closes it on shutdown);
// after that a new call registers a fresh layer, so a group can restart on
// a running Mux. Once the Mux is closed the layer returned is closed too.
func (m *Mux) RaftLayer(groupID uint64) raft.StreamLayer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.layers[groupID]; ok {
		return l
	}
	l := &raftLayer{
		m:      m,
		group:  groupID,
		conns:  make(chan net.Conn),
		closed: make(chan struct{}),
	}
	if m.closed {
		close(l.closed)
		return l
	}
	m.layers[groupID] = l
	return l
}

// Accept waits for the next authenticated connection routed to the group.
func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, ErrClosed
	case <-l.m.ctx.Done():
		return nil, ErrClosed
	}
}

// Close unregisters the group from the Mux, so new connections for it are
// refused, and unblocks Accept. The Mux keeps running.
func (l *raftLayer) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.m.mu.Lock()
		if l.m.layers[l.group] == l {
			delete(l.m.layers, l.group)
		}
		l.m.mu.Unlock()
	})
	return nil
}

// Addr is the Mux's advertised address: every group of a node is reached
// at the same one.
func (l *raftLayer) Addr() net.Addr { return l.m.addr }

// Dial connects to the Mux at address for this group.
func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, ErrClosed
	default:
	}
	ctx, cancel := context.WithTimeout(l.m.ctx, timeout)
	defer cancel()
	return l.m.dial(ctx, string(address), route{kind: KindRaft, group: l.group})
}
