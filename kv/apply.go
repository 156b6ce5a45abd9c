package kv

import "fmt"

// Apply is the deterministic primitive under Commit, for a replicated state
// machine: it applies batches in one bbolt write transaction, batch i at
// commit timestamp ts[i], and stores appliedIndex in the same transaction
// when it is above zero. Given the same file and the same arguments, every
// replica writes the same versions.
//
// Replay is idempotent: when appliedIndex is above zero and at or below the
// stored applied index, Apply writes nothing and returns (nil, nil).
//
// The result holds one error per batch: nil when it was written, or the
// *ConflictError of its first failing precondition (nothing of it
// written). Later batches see earlier ones. The second result reports why
// nothing at all was applied: ErrInvalidBatch (batches and ts do not line
// up, or a batch ValidateBatch refuses), ErrTimestampOrder (ts must be strictly increasing and above every earlier
// commit), ErrClosed, ErrCorrupt or an I/O error.
//
// Once durable, ReadTS moves to the largest ts and the Clock is moved past
// it, so a node that becomes leader stamps above what it applied.
func (e *Engine) Apply(appliedIndex uint64, batches []*Batch, ts []Timestamp) ([]error, error) {
	return e.ApplyAt(LogPosition{Index: appliedIndex}, batches, ts)
}

// LogPosition names the log entry an ApplyAt carries, so the store can say
// which log it was built from: the entry's index and term, and the ID of the
// cluster whose log it is.
type LogPosition struct {
	// Index is stored as the applied index (0: not from a log).
	Index uint64
	// Term is the entry's term, stored with Index; 0 leaves it unknown.
	Term uint64
	// ClusterID, when not nil, is stored as the store's cluster ID.
	ClusterID []byte
}

// ApplyAt is Apply that also stores pos.Term and pos.ClusterID with the
// applied index, in the same transaction, whenever the index moves.
func (e *Engine) ApplyAt(pos LogPosition, batches []*Batch, ts []Timestamp) ([]error, error) {
	appliedIndex := pos.Index
	if len(pos.ClusterID) > MaxClusterIDSize {
		return nil, fmt.Errorf("%w: cluster ID of %d bytes", ErrInvalidBatch, len(pos.ClusterID))
	}
	if len(batches) != len(ts) {
		return nil, fmt.Errorf("%w: %d batches but %d timestamps", ErrInvalidBatch, len(batches), len(ts))
	}
	for i, b := range batches {
		// An entry with a batch that can never be written is refused
		// whole, as it always was: entries already in logs were decided
		// that way, and a replica replaying one must decide it alike.
		// Proposers validate each batch before it joins an entry
		// (ValidateBatch), so one client's bad batch never shares one.
		if err := validateBatch(b); err != nil {
			return nil, fmt.Errorf("batch %d: %w", i, err)
		}
		if ts[i] == 0 || ts[i] == MaxTimestamp || (i > 0 && ts[i] <= ts[i-1]) {
			return nil, fmt.Errorf("%w: batch %d at %s", ErrTimestampOrder, i, ts[i])
		}
	}
	if len(batches) == 0 && appliedIndex == 0 {
		return nil, nil
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.closed.Load() {
		return nil, ErrClosed
	}
	return e.applyLocked(pos, batches, ts)
}

func (e *Engine) applyLocked(pos LogPosition, batches []*Batch, ts []Timestamp) (_ []error, err error) {
	appliedIndex := pos.Index
	tx, err := e.db.Begin(true)
	if err != nil {
		return nil, boltErr(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
		e.arena.reset()
	}()
	w, err := newTxWriter(tx, &e.arena)
	if err != nil {
		return nil, err
	}
	if appliedIndex > 0 {
		stored, err := appliedIndexTx(tx)
		if err != nil {
			return nil, err
		}
		if appliedIndex <= stored {
			_ = tx.Rollback()
			return nil, nil
		}
		if err := w.meta.Put(metaAppliedIndex, encodeUint64(appliedIndex)); err != nil {
			return nil, err
		}
		// The term always describes the stored index: unknown (absent)
		// when the caller did not give it.
		if pos.Term > 0 {
			err = w.meta.Put(metaAppliedTerm, encodeUint64(pos.Term))
		} else {
			err = w.meta.Delete(metaAppliedTerm)
		}
		if err != nil {
			return nil, err
		}
		if pos.ClusterID != nil {
			if err := w.meta.Put(metaClusterID, pos.ClusterID); err != nil {
				return nil, err
			}
		}
	}
	errs := make([]error, len(batches))
	var last Timestamp
	written, conflicts := 0, 0
	if len(ts) > 0 {
		// The stored value, not the clock, decides, so every replica decides
		// the same.
		stored, err := lastCommitTSTx(tx)
		if err != nil {
			return nil, err
		}
		if ts[0] <= stored {
			return nil, fmt.Errorf("%w: batch 0 at %s, last commit at %s", ErrTimestampOrder, ts[0], stored)
		}
		last = ts[len(ts)-1]
		if err := w.setLastCommitTS(last); err != nil {
			return nil, err
		}
	}
	for i, b := range batches {
		c, err := w.check(b)
		if err != nil {
			return nil, err
		}
		if c != nil {
			errs[i] = c
			conflicts++
			continue
		}
		if err := w.apply(b, ts[i]); err != nil {
			return nil, err
		}
		written++
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("kv: apply: %w", err)
	}
	e.stats.fsyncs.Add(1)
	e.stats.batches.Add(uint64(written))
	e.stats.conflicts.Add(uint64(conflicts))
	if last > 0 {
		e.clock.Update(last)
		e.publishLocked(last)
	}
	return errs, nil
}
