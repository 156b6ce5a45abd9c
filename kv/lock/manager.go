package lock

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is the strength of a lock.
type Mode uint8

const (
	// Shared may be held by several transactions at once.
	Shared Mode = iota + 1
	// Exclusive is held by one transaction and excludes all other holders.
	Exclusive
)

func (m Mode) String() string {
	switch m {
	case Shared:
		return "Shared"
	case Exclusive:
		return "Exclusive"
	default:
		return fmt.Sprintf("Mode(%d)", uint8(m))
	}
}

// TxnID identifies the transaction that owns a lock.
type TxnID uint64

var (
	// ErrDeadlock is returned by Acquire when waiting would close a cycle in
	// the wait-for graph; the requester is the victim and did not wait.
	ErrDeadlock = errors.New("lock: deadlock")
	// ErrTimeout is returned by Acquire when the lock could not be granted
	// within the timeout (at once, for a timeout <= 0).
	ErrTimeout = errors.New("lock: wait timeout")
	// ErrAborted is returned by a pending Acquire whose wait was removed by a
	// concurrent ReleaseAll of the same transaction.
	ErrAborted = errors.New("lock: wait aborted by release")
)

// Stats are cumulative counters of a Manager.
type Stats struct {
	// Acquired counts successful Acquire calls, re-entrant ones included.
	Acquired uint64
	// Waits counts requests that had to queue.
	Waits uint64
	// Timeouts counts requests that failed with ErrTimeout.
	Timeouts uint64
	// Deadlocks counts requests that failed with ErrDeadlock.
	Deadlocks uint64
}

// Sharding keeps uncontended acquires on different keys (and bookkeeping of
// different transactions) from serialising on one mutex.
const (
	lockShardCount = 64
	txnShardBits   = 6
	txnShardCount  = 1 << txnShardBits
)

// Manager is a lock table. The zero value is not usable; call NewManager.
type Manager struct {
	seed   maphash.Seed
	shards [lockShardCount]shard
	txns   [txnShardCount]txnShard

	// detect serialises each deadlock check with the enqueue it allows, so
	// that no wait-for edge can appear between the check and the wait. Only
	// requests that are about to wait take it.
	detect sync.Mutex

	// closed makes every later Acquire fail with ErrAborted (see Close).
	closed atomic.Bool

	acquired  atomic.Uint64
	waits     atomic.Uint64
	timeouts  atomic.Uint64
	deadlocks atomic.Uint64
}

// NewManager returns an empty lock table.
func NewManager() *Manager {
	m := &Manager{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].entries = make(map[string]*entry)
	}
	for i := range m.txns {
		m.txns[i].txns = make(map[TxnID]*txnState)
	}
	return m
}

// Acquire blocks until txn holds key in at least mode. It fails with
// ErrTimeout when the lock is not granted within timeout (immediately if
// timeout <= 0), with ErrDeadlock, without waiting, when waiting would close a
// wait-for cycle, with ctx.Err() when ctx is done first, and with ErrAborted
// when ReleaseAll(txn) removes the wait. A holder of Exclusive already
// satisfies Shared; a holder of Shared asking for Exclusive upgrades once the
// other sharers leave. Whatever the outcome, locks txn already held stay held.
func (m *Manager) Acquire(ctx context.Context, txn TxnID, key []byte, mode Mode, timeout time.Duration) error {
	if mode != Shared && mode != Exclusive {
		return fmt.Errorf("lock: invalid mode %v", mode)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.closed.Load() {
		return ErrAborted
	}
	sh := m.shardOf(maphash.Bytes(m.seed, key))

	sh.mu.Lock()
	ok := m.tryGrant(sh, sh.entries[string(key)], txn, key, mode, false)
	sh.mu.Unlock()
	if ok {
		m.acquired.Add(1)
		return nil
	}
	if timeout <= 0 {
		m.timeouts.Add(1)
		return ErrTimeout
	}

	w, err := m.enqueue(sh, txn, key, mode)
	if err != nil {
		return err
	}
	if w == nil {
		m.acquired.Add(1)
		return nil
	}
	return m.wait(ctx, w, timeout)
}

// enqueue is the slow path of Acquire: under the detector mutex it retries
// the grant, checks for a deadlock and queues the request. It returns a nil
// waiter when the lock was granted after all.
func (m *Manager) enqueue(sh *shard, txn TxnID, key []byte, mode Mode) (*waiter, error) {
	m.detect.Lock()
	defer m.detect.Unlock()
	sh.mu.Lock()
	defer sh.mu.Unlock()

	e := sh.entries[string(key)]
	if m.tryGrant(sh, e, txn, key, mode, true) {
		return nil, nil
	}
	// tryGrant only fails on an existing entry.
	pos := len(e.queue)
	if e.holderIndex(txn) >= 0 {
		pos = e.firstNonHolderWaiter()
	}
	if m.closesCycle(txn, e.appendBlockers(nil, txn, mode, pos), sh) {
		m.deadlocks.Add(1)
		return nil, ErrDeadlock
	}
	w := &waiter{txn: txn, mode: mode, key: e.key, sh: sh, ready: make(chan struct{})}
	e.queue = append(e.queue, nil)
	copy(e.queue[pos+1:], e.queue[pos:])
	e.queue[pos] = w
	m.setWait(txn, w)
	m.waits.Add(1)
	return w, nil
}

// wait blocks on a queued request until it is granted or given up.
func (m *Manager) wait(ctx context.Context, w *waiter, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	var cause error
	select {
	case <-w.ready:
	case <-timer.C:
		cause = ErrTimeout
	case <-ctx.Done():
		cause = ctx.Err()
	}

	sh := w.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	switch w.state {
	case granted:
		// A grant that races with the timeout or cancellation wins: the lock is
		// already recorded as held, and giving it back would only redo the work.
		m.acquired.Add(1)
		return nil
	case aborted:
		return ErrAborted
	}
	m.dropWaiter(sh, w, gaveUp)
	if cause == ErrTimeout {
		m.timeouts.Add(1)
	}
	return cause
}

// ReleaseAll drops every lock txn holds, grants the waiters that can now
// proceed and removes any pending wait of txn (whose Acquire then returns
// ErrAborted). It is a no-op for a transaction that holds nothing.
func (m *Manager) ReleaseAll(txn TxnID) {
	ts := m.txnShardOf(txn)
	// Loop because a wait of txn may be granted while we release: the grant
	// records its key after we took the key set.
	for {
		ts.mu.Lock()
		st := ts.txns[txn]
		if st == nil {
			ts.mu.Unlock()
			return
		}
		w, keys := st.wait, st.keys
		if w == nil && len(keys) == 0 {
			delete(ts.txns, txn)
			ts.mu.Unlock()
			return
		}
		st.keys = nil
		ts.mu.Unlock()

		if w != nil {
			w.sh.mu.Lock()
			if w.state == waiting {
				m.dropWaiter(w.sh, w, aborted)
				close(w.ready)
			}
			w.sh.mu.Unlock()
		}
		for _, k := range keys {
			m.release(txn, k)
		}
	}
}

// Close drops every lock of every transaction: pending Acquires return
// ErrAborted, and so does every later one. A lock table that lives at a
// Raft leader is closed when the node stops being leader, since the locks it
// holds protect nothing once another node grants them.
func (m *Manager) Close() {
	m.closed.Store(true)
	for i := range m.txns {
		ts := &m.txns[i]
		ts.mu.Lock()
		ids := make([]TxnID, 0, len(ts.txns))
		for id := range ts.txns {
			ids = append(ids, id)
		}
		ts.mu.Unlock()
		for _, id := range ids {
			m.ReleaseAll(id)
		}
	}
}

// HeldBy reports how many keys txn holds.
func (m *Manager) HeldBy(txn TxnID) int {
	ts := m.txnShardOf(txn)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st := ts.txns[txn]; st != nil {
		return len(st.keys)
	}
	return 0
}

// Stats returns a snapshot of the counters.
func (m *Manager) Stats() Stats {
	return Stats{
		Acquired:  m.acquired.Load(),
		Waits:     m.waits.Load(),
		Timeouts:  m.timeouts.Load(),
		Deadlocks: m.deadlocks.Load(),
	}
}
