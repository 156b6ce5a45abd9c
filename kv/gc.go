package kv

import (
	"bytes"
	"fmt"
)

// gcChunkSize is how many gc entries one GC write transaction handles. A
// variable so tests can force chunk boundaries.
var gcChunkSize = 1024

// GC removes the versions no snapshot can see any more and returns how many
// it removed: history versions superseded at or before the horizon (the
// oldest registered snapshot, or ReadTS when none is registered), and
// tombstones written at or before it. It works through the gc bucket in
// chunks of small write transactions, so commits are never stalled for
// long, and only ever reads the part of the bucket it removes.
func (e *Engine) GC() (removed int, err error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	e.gcMu.Lock()
	defer e.gcMu.Unlock()
	// One horizon per call: garbage made while the call runs waits for the
	// next one, so a busy engine cannot keep a call going forever.
	horizon := e.gcHorizon()
	for {
		if e.closed.Load() {
			return removed, ErrClosed
		}
		n, more, err := e.gcChunk(horizon)
		removed += n
		e.stats.gcRemoved.Add(uint64(n))
		if err != nil {
			return removed, err
		}
		if !more {
			break
		}
	}
	if removed > 0 {
		e.log.Debug("kv: gc", "removed", removed, "horizon", horizon)
	}
	return removed, nil
}

// gcChunk handles up to gcChunkSize gc entries dated at or below horizon in
// one write transaction, and reports whether more may remain.
func (e *Engine) gcChunk(horizon Timestamp) (removed int, more bool, err error) {
	tx, err := e.db.Begin(true)
	if err != nil {
		return 0, false, boltErr(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	w, err := newTxWriter(tx, nil)
	if err != nil {
		return 0, false, err
	}
	var keys [][]byte
	c := w.gc.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < gcChunkSize; k, _ = c.Next() {
		if len(k) >= tsLen && getTS(k) > horizon {
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	if len(keys) == 0 {
		_ = tx.Rollback()
		return 0, false, nil
	}
	for _, k := range keys {
		ts, kind, target, err := decodeGCKey(k)
		if err != nil {
			return 0, false, err
		}
		gone, err := w.collect(kind, target, ts)
		if err != nil {
			return 0, false, err
		}
		if gone {
			removed++
		}
		if err := w.gc.Delete(k); err != nil {
			return 0, false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("kv: gc: %w", err)
	}
	e.stats.fsyncs.Add(1)
	return removed, len(keys) == gcChunkSize, nil
}

// collect removes the target of one gc entry dated ts and reports whether
// there was anything to remove.
func (w *txWriter) collect(kind byte, target []byte, ts Timestamp) (bool, error) {
	if kind == gcKindHistory {
		if w.history.Get(target) == nil {
			return false, nil
		}
		return true, w.history.Delete(target)
	}
	// The tombstone may since have been superseded (it then lives in
	// history, with its own gc entry) or overwritten within its batch.
	cur := w.latest.Get(target)
	if cur == nil {
		return false, nil
	}
	curTS, flag, _, err := decodeLatest(cur)
	if err != nil {
		return false, fmt.Errorf("key %q: %w", target, err)
	}
	if flag != flagTombstone || curTS != ts {
		return false, nil
	}
	return true, w.latest.Delete(target)
}
