package kv

import (
	"errors"
	"fmt"
)

var (
	// ErrConflict is wrapped by the *ConflictError returned when a batch's
	// precondition does not hold. Nothing of that batch was written.
	ErrConflict = errors.New("kv: conflict")

	// ErrClosed is returned by operations on an Engine after Close. A Commit
	// that fails with ErrClosed wrote nothing.
	ErrClosed = errors.New("kv: engine closed")

	// ErrStorageVersion is returned by Open when the file was not written by
	// this package, or by a version of it whose on-disk format this build does
	// not know.
	ErrStorageVersion = errors.New("kv: unsupported storage version")

	// ErrCorrupt is returned when a stored entry cannot be decoded or breaks
	// an invariant of the on-disk format.
	ErrCorrupt = errors.New("kv: corrupt data")

	// ErrLocked is returned by Open when another process holds the data file
	// open past Options.OpenTimeout.
	ErrLocked = errors.New("kv: data file locked by another process")

	// ErrInvalidBatch is returned for a batch that can never be applied: a
	// nil batch, an empty or oversized key, an oversized value, or Apply
	// arguments that do not line up.
	ErrInvalidBatch = errors.New("kv: invalid batch")

	// ErrKeyTooLarge is wrapped, beside ErrInvalidBatch, by the error for a
	// batch with a key longer than MaxKeySize.
	ErrKeyTooLarge = errors.New("kv: key too large")

	// ErrTimestampOrder is returned by Apply when the commit timestamps are
	// not strictly increasing and newer than the last applied commit:
	// accepting them would let a snapshot see history change under it.
	ErrTimestampOrder = errors.New("kv: commit timestamp out of order")

	// ErrSnapshotTooOld is returned by SnapshotAt for a timestamp below the
	// engine's Horizon: GC may have removed versions a read there needs.
	ErrSnapshotTooOld = errors.New("kv: snapshot older than the GC horizon")

	// ErrSnapshotAhead is returned by SnapshotAt for a timestamp above
	// ReadTS: commits at or below it may still appear.
	ErrSnapshotAhead = errors.New("kv: snapshot ahead of the newest commit")

	// ErrInvalidOptions is returned by Options.Validate and Open.
	ErrInvalidOptions = errors.New("kv: invalid options")
)

// ConflictError reports the first precondition of a batch that did not hold.
// errors.Is(err, ErrConflict) is true for it.
type ConflictError struct {
	// Index is the position of the failing precondition in
	// Batch.Preconditions.
	Index int
	// Key is a copy of that precondition's key.
	Key []byte
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("kv: conflict: precondition %d on key %q does not hold", e.Index, e.Key)
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }
