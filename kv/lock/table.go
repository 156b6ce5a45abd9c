package lock

import (
	"hash/maphash"
	"sync"
)

// shard is one slice of the lock table. The padding keeps neighbouring
// shards' mutexes off the same cache line.
type shard struct {
	mu      sync.Mutex
	entries map[string]*entry
	_       [48]byte
}

// entry is the lock state of one key. It exists only while the key has a
// holder or a waiter.
type entry struct {
	key     string
	holders []holder
	// inline backs holders for the common case of few holders, saving an
	// allocation per locked key.
	inline [2]holder
	// queue is FIFO, except that waiters already holding the key (upgrades)
	// sit ahead of those that do not.
	queue []*waiter
}

type holder struct {
	txn  TxnID
	mode Mode
}

type waitState uint8

const (
	waiting waitState = iota
	granted
	aborted // removed by ReleaseAll of its own transaction
	gaveUp  // timeout or context done
)

// waiter is a queued request. Its state changes only under sh.mu, and ready
// is closed exactly once, when the state leaves waiting for granted or aborted.
type waiter struct {
	txn   TxnID
	mode  Mode
	key   string
	sh    *shard
	ready chan struct{}
	state waitState
}

// txnShard holds the per-transaction bookkeeping for a slice of transaction
// IDs, so that ReleaseAll and HeldBy need not scan the lock table.
type txnShard struct {
	mu   sync.Mutex
	txns map[TxnID]*txnState
	_    [48]byte
}

type txnState struct {
	// keys has no duplicates: a key is recorded only when txn becomes one of
	// its holders, and forgotten only when it stops being one.
	keys []string
	// wait is the transaction's queued request, if any; the deadlock
	// detector follows it to find what the transaction waits for.
	wait *waiter
}

// Lock order: detect, then shard mutexes (several only while holding
// detect), then a txnShard mutex. Nothing blocks while holding a txnShard
// mutex, and a goroutine not holding detect holds at most one shard mutex, so
// the detector can lock further shards without risking a deadlock of its own.

func conflicts(a, b Mode) bool { return a == Exclusive || b == Exclusive }

func (m *Manager) shardOf(h uint64) *shard { return &m.shards[h%lockShardCount] }

func (m *Manager) shardOfKey(key string) *shard { return m.shardOf(maphash.String(m.seed, key)) }

func (m *Manager) txnShardOf(txn TxnID) *txnShard {
	// Transaction IDs are usually sequential; the multiplication spreads
	// them over the shards through the high bits.
	return &m.txns[(uint64(txn)*0x9e3779b97f4a7c15)>>(64-txnShardBits)]
}

func (e *entry) holderIndex(txn TxnID) int {
	for i := range e.holders {
		if e.holders[i].txn == txn {
			return i
		}
	}
	return -1
}

// conflictsWithHolders reports whether mode conflicts with a holder other
// than txn itself.
func (e *entry) conflictsWithHolders(txn TxnID, mode Mode) bool {
	for _, h := range e.holders {
		if h.txn != txn && conflicts(h.mode, mode) {
			return true
		}
	}
	return false
}

// firstNonHolderWaiter is where an upgrade request is queued.
func (e *entry) firstNonHolderWaiter() int {
	for i, w := range e.queue {
		if e.holderIndex(w.txn) < 0 {
			return i
		}
	}
	return len(e.queue)
}

// appendBlockers appends the transactions a request of txn in mode, queued at
// position pos, waits for: conflicting holders and conflicting requests
// queued ahead of it.
func (e *entry) appendBlockers(dst []TxnID, txn TxnID, mode Mode, pos int) []TxnID {
	for _, h := range e.holders {
		if h.txn != txn && conflicts(h.mode, mode) {
			dst = append(dst, h.txn)
		}
	}
	for _, w := range e.queue[:pos] {
		if w.txn != txn && conflicts(w.mode, mode) {
			dst = append(dst, w.txn)
		}
	}
	return dst
}

// tryGrant grants the request at once if it can, creating the entry if the
// key is free. Called with sh.mu held. Outside the detector an upgrade is
// granted only on a key nobody waits for: an upgrade can give waiters a new
// wait-for edge, and edges may only appear under detect.
func (m *Manager) tryGrant(sh *shard, e *entry, txn TxnID, key []byte, mode Mode, underDetect bool) bool {
	if e == nil {
		k := string(key)
		e := &entry{key: k}
		e.inline[0] = holder{txn: txn, mode: mode}
		e.holders = e.inline[:1]
		sh.entries[k] = e
		m.recordHeld(txn, k)
		return true
	}
	if i := e.holderIndex(txn); i >= 0 {
		if e.holders[i].mode >= mode {
			return true
		}
		if (underDetect || len(e.queue) == 0) && !e.conflictsWithHolders(txn, mode) {
			e.holders[i].mode = mode
			return true
		}
		return false
	}
	if len(e.queue) == 0 && !e.conflictsWithHolders(txn, mode) {
		e.holders = append(e.holders, holder{txn: txn, mode: mode})
		m.recordHeld(txn, e.key)
		return true
	}
	return false
}

// grantWaiters grants queued requests from the head for as long as they are
// compatible with the holders; stopping at the first one that is not keeps
// the order fair. Called with the entry's shard mutex held.
func (m *Manager) grantWaiters(e *entry) {
	for len(e.queue) > 0 {
		w := e.queue[0]
		if e.conflictsWithHolders(w.txn, w.mode) {
			return
		}
		e.queue[0] = nil
		e.queue = e.queue[1:]
		if i := e.holderIndex(w.txn); i >= 0 {
			e.holders[i].mode = w.mode
			m.endWait(w, false)
		} else {
			e.holders = append(e.holders, holder{txn: w.txn, mode: w.mode})
			m.endWait(w, true)
		}
		w.state = granted
		close(w.ready)
	}
}

// dropWaiter removes a request that is still queued, lets the requests behind
// it proceed if they now can, and forgets the entry if it became empty. The
// caller closes w.ready if the new state calls for it. Called with sh.mu held.
func (m *Manager) dropWaiter(sh *shard, w *waiter, state waitState) {
	e := sh.entries[w.key]
	for i, q := range e.queue {
		if q == w {
			copy(e.queue[i:], e.queue[i+1:])
			e.queue[len(e.queue)-1] = nil
			e.queue = e.queue[:len(e.queue)-1]
			break
		}
	}
	w.state = state
	m.endWait(w, false)
	m.grantWaiters(e)
	forgetIfIdle(sh, e)
}

// release drops txn's lock on key and grants whoever can now proceed.
func (m *Manager) release(txn TxnID, key string) {
	sh := m.shardOfKey(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.entries[key]
	if e == nil {
		return
	}
	i := e.holderIndex(txn)
	if i < 0 {
		return
	}
	last := len(e.holders) - 1
	e.holders[i] = e.holders[last]
	e.holders = e.holders[:last]
	m.grantWaiters(e)
	forgetIfIdle(sh, e)
}

func forgetIfIdle(sh *shard, e *entry) {
	if len(e.holders) == 0 && len(e.queue) == 0 {
		delete(sh.entries, e.key)
	}
}

func (ts *txnShard) state(txn TxnID) *txnState {
	st := ts.txns[txn]
	if st == nil {
		st = &txnState{}
		ts.txns[txn] = st
	}
	return st
}

func (m *Manager) recordHeld(txn TxnID, key string) {
	ts := m.txnShardOf(txn)
	ts.mu.Lock()
	st := ts.state(txn)
	st.keys = append(st.keys, key)
	ts.mu.Unlock()
}

func (m *Manager) setWait(txn TxnID, w *waiter) {
	ts := m.txnShardOf(txn)
	ts.mu.Lock()
	ts.state(txn).wait = w
	ts.mu.Unlock()
}

// endWait clears w as its transaction's pending wait and, if newHolder, records
// w's key as held, in one step so that ReleaseAll never sees the wait gone
// without the lock it turned into.
func (m *Manager) endWait(w *waiter, newHolder bool) {
	ts := m.txnShardOf(w.txn)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	st := ts.state(w.txn)
	if st.wait == w {
		st.wait = nil
	}
	if newHolder {
		st.keys = append(st.keys, w.key)
	} else if st.wait == nil && len(st.keys) == 0 {
		// A transaction whose only request timed out may never call
		// ReleaseAll.
		delete(ts.txns, w.txn)
	}
}

// waitOf returns txn's queued request, or nil. The caller must still check
// the waiter's state under its shard mutex.
func (m *Manager) waitOf(txn TxnID) *waiter {
	ts := m.txnShardOf(txn)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st := ts.txns[txn]; st != nil {
		return st.wait
	}
	return nil
}
