package kv

import "sync/atomic"

// Snapshot is a registered read point. GC keeps every version a read at
// TS() can see until Release. Reads at a timestamp that is not held by a
// Snapshot (other than MaxTimestamp) may find versions already collected.
type Snapshot struct {
	e        *Engine
	ts       Timestamp
	released atomic.Bool
}

// Snapshot registers ReadTS as a read point.
func (e *Engine) Snapshot() *Snapshot {
	// ReadTS is read under snapMu, where GC computes its horizon: a snapshot
	// is either registered before the horizon is taken, or its timestamp is
	// at least the ReadTS the horizon was bounded by.
	e.snapMu.Lock()
	ts := e.ReadTS()
	e.snaps[ts]++
	e.snapMu.Unlock()
	return &Snapshot{e: e, ts: ts}
}

// TS is the snapshot's read timestamp.
func (s *Snapshot) TS() Timestamp { return s.ts }

// Release lets GC collect what only this snapshot could see. It is
// idempotent.
func (s *Snapshot) Release() {
	if s.released.Swap(true) {
		return
	}
	e := s.e
	e.snapMu.Lock()
	if n := e.snaps[s.ts]; n <= 1 {
		delete(e.snaps, s.ts)
	} else {
		e.snaps[s.ts] = n - 1
	}
	e.snapMu.Unlock()
}

// gcHorizon is the oldest timestamp any registered or future snapshot can
// read at.
func (e *Engine) gcHorizon() Timestamp {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	h := e.ReadTS()
	for ts := range e.snaps {
		h = min(h, ts)
	}
	return h
}
