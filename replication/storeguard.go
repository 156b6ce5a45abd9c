package replication

import (
	"errors"
	"sync"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// errStoreClosed answers a read of the Raft log after its group shut down.
var errStoreClosed = errors.New("replication: raft log closed")

// guardedStore is the Raft log and stable store as raft sees it. Raft's
// shutdown waits for its own goroutines but not for the transport's
// handlers, which run heartbeats on the caller's goroutine: one still
// running when the store closes would write the term into a closed bolt
// file, and raft panics on that write. Closing waits for the calls in
// flight; a write that arrives after it never returns, so the handler never
// acknowledges something it could not persist (it ends with the process),
// and a read fails.
type guardedStore struct {
	s      *raftboltdb.BoltStore
	mu     sync.RWMutex
	closed bool
}

var (
	_ raft.LogStore    = (*guardedStore)(nil)
	_ raft.StableStore = (*guardedStore)(nil)
)

// Close closes the store once every call in flight has returned.
func (g *guardedStore) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.s.Close()
}

func (g *guardedStore) read() bool {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return false
	}
	return true
}

func (g *guardedStore) write() {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		select {} // see guardedStore: never acknowledge after shutdown
	}
}

func (g *guardedStore) FirstIndex() (uint64, error) {
	if !g.read() {
		return 0, errStoreClosed
	}
	defer g.mu.RUnlock()
	return g.s.FirstIndex()
}

func (g *guardedStore) LastIndex() (uint64, error) {
	if !g.read() {
		return 0, errStoreClosed
	}
	defer g.mu.RUnlock()
	return g.s.LastIndex()
}

func (g *guardedStore) GetLog(index uint64, log *raft.Log) error {
	if !g.read() {
		return errStoreClosed
	}
	defer g.mu.RUnlock()
	return g.s.GetLog(index, log)
}

func (g *guardedStore) StoreLog(log *raft.Log) error {
	g.write()
	defer g.mu.RUnlock()
	return g.s.StoreLog(log)
}

func (g *guardedStore) StoreLogs(logs []*raft.Log) error {
	g.write()
	defer g.mu.RUnlock()
	return g.s.StoreLogs(logs)
}

func (g *guardedStore) DeleteRange(min, max uint64) error {
	g.write()
	defer g.mu.RUnlock()
	return g.s.DeleteRange(min, max)
}

func (g *guardedStore) Set(key, val []byte) error {
	g.write()
	defer g.mu.RUnlock()
	return g.s.Set(key, val)
}

func (g *guardedStore) Get(key []byte) ([]byte, error) {
	if !g.read() {
		return nil, errStoreClosed
	}
	defer g.mu.RUnlock()
	return g.s.Get(key)
}

func (g *guardedStore) SetUint64(key []byte, val uint64) error {
	g.write()
	defer g.mu.RUnlock()
	return g.s.SetUint64(key, val)
}

func (g *guardedStore) GetUint64(key []byte) (uint64, error) {
	if !g.read() {
		return 0, errStoreClosed
	}
	defer g.mu.RUnlock()
	return g.s.GetUint64(key)
}
