package kv

import (
	"fmt"
	"sync/atomic"
)

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

// SnapshotAt registers ts as a read point, as Snapshot does for ReadTS, for
// a reader that chose its timestamp elsewhere (another replica registered
// it first). It fails with ErrSnapshotTooOld when ts is below Horizon, since
// GC may already have removed versions a read at ts needs, and with
// ErrSnapshotAhead when ts is above ReadTS, since commits at or below ts may
// still appear.
func (e *Engine) SnapshotAt(ts Timestamp) (*Snapshot, error) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if ts < e.horizon {
		return nil, fmt.Errorf("%w: %d is below the horizon %d", ErrSnapshotTooOld, ts, e.horizon)
	}
	if r := e.ReadTS(); ts > r {
		return nil, fmt.Errorf("%w: %d is above ReadTS %d", ErrSnapshotAhead, ts, r)
	}
	e.snaps[ts]++
	return &Snapshot{e: e, ts: ts}, nil
}

// Horizon is the oldest timestamp at which a read is known to be exact. GC
// may have removed versions that a read below it would need; a read at or
// above it sees exactly the versions visible there. It starts at ReadTS when
// the file is opened (an earlier process may have collected up to its own
// ReadTS, and registrations do not survive it) and only rises: to each
// horizon GC collects behind.
//
// A read at a timestamp no Snapshot holds is exact if Horizon is still at or
// below that timestamp after the read: GC raises it before removing anything.
func (e *Engine) Horizon() Timestamp {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	return e.horizon
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
// read at. GC collects behind it, so it becomes the engine's Horizon before
// anything is removed.
func (e *Engine) gcHorizon() Timestamp {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	h := e.ReadTS()
	for ts := range e.snaps {
		h = min(h, ts)
	}
	e.horizon = max(e.horizon, h)
	return h
}
