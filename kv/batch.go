package kv

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Mutation writes Value at Key, or deletes Key when Delete is set (Value is
// then ignored). Deleting a key with no live version is a no-op.
type Mutation struct {
	Key, Value []byte
	Delete     bool
}

// Precondition is what a batch expects of a key's newest committed version
// when it is applied. With Exists false, the key must have no live newest
// version; with Exists true, its newest version must be live and stamped
// exactly Version. Preconditions carry the versions a transaction's locks
// were based on, so a lost lock becomes a conflict, not a lost update.
type Precondition struct {
	Key     []byte
	Exists  bool
	Version Timestamp
}

// Batch is the unit of atomicity: either every mutation is written, at one
// commit timestamp, or none is. Preconditions are all checked before the
// first mutation. Mutations apply in order, so a later one of the same key
// wins.
type Batch struct {
	Mutations     []Mutation
	Preconditions []Precondition
}

// ValidateBatch reports whether b can be written at all: not nil, keys
// neither empty nor longer than MaxKeySize, values at most MaxValueSize.
// What it refuses, bbolt would refuse halfway through a transaction. The
// error wraps ErrInvalidBatch, and ErrKeyTooLarge for an oversized key.
// It depends on b alone, so every replica decides alike.
func ValidateBatch(b *Batch) error { return validateBatch(b) }

func validateBatch(b *Batch) error {
	if b == nil {
		return fmt.Errorf("%w: nil batch", ErrInvalidBatch)
	}
	for i, m := range b.Mutations {
		if err := validateKey(m.Key); err != nil {
			return fmt.Errorf("%w: mutation %d: %w", ErrInvalidBatch, i, err)
		}
		if !m.Delete && len(m.Value) > MaxValueSize {
			return fmt.Errorf("%w: mutation %d: value of %d bytes exceeds %d", ErrInvalidBatch, i, len(m.Value), MaxValueSize)
		}
	}
	for i, p := range b.Preconditions {
		if err := validateKey(p.Key); err != nil {
			return fmt.Errorf("%w: precondition %d: %w", ErrInvalidBatch, i, err)
		}
	}
	return nil
}

func validateKey(k []byte) error {
	switch {
	case len(k) == 0:
		return errors.New("empty key")
	case len(k) > MaxKeySize:
		return fmt.Errorf("%w: key of %d bytes exceeds %d", ErrKeyTooLarge, len(k), MaxKeySize)
	}
	return nil
}

// txWriter applies batches inside one bbolt write transaction.
type txWriter struct {
	meta, latest, history, gc *bolt.Bucket
	arena                     *arena
	scratch                   []byte // history keys; bbolt copies keys on Put
	gcScratch                 []byte
}

func newTxWriter(tx *bolt.Tx, a *arena) (*txWriter, error) {
	w := &txWriter{
		meta:    tx.Bucket(bucketMeta),
		latest:  tx.Bucket(bucketLatest),
		history: tx.Bucket(bucketHistory),
		gc:      tx.Bucket(bucketGC),
		arena:   a,
	}
	if w.meta == nil || w.latest == nil || w.history == nil || w.gc == nil {
		return nil, fmt.Errorf("%w: buckets missing", ErrCorrupt)
	}
	return w, nil
}

// check returns a *ConflictError for the first precondition of b that
// does not hold against the transaction's current state (which includes the
// batches applied before b in it), or an error when the state is unreadable.
func (w *txWriter) check(b *Batch) (*ConflictError, error) {
	for i, p := range b.Preconditions {
		live, version := false, Timestamp(0)
		if cur := w.latest.Get(p.Key); cur != nil {
			ts, flag, _, err := decodeLatest(cur)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", p.Key, err)
			}
			live, version = flag == flagLive, ts
		}
		if live != p.Exists || (live && version != p.Version) {
			return &ConflictError{Index: i, Key: append([]byte(nil), p.Key...)}, nil
		}
	}
	return nil, nil
}

// apply writes b's mutations at ts. Callers have checked b's preconditions.
func (w *txWriter) apply(b *Batch, ts Timestamp) error {
	for _, m := range b.Mutations {
		if err := w.write(m.Key, m.Value, m.Delete, ts); err != nil {
			return err
		}
	}
	return nil
}

// write makes (value or deletion, ts) key's newest version, moving the
// version it supersedes to history with a gc entry dated ts.
func (w *txWriter) write(key, value []byte, del bool, ts Timestamp) error {
	if cur := w.latest.Get(key); cur != nil {
		curTS, flag, val, err := decodeLatest(cur)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		switch {
		case del && flag == flagTombstone:
			return nil
		case curTS > ts:
			return fmt.Errorf("%w: key %q has version %s above commit %s", ErrCorrupt, key, curTS, ts)
		case curTS == ts:
			// An earlier mutation of this batch wrote it; no snapshot can
			// see it, so it is overwritten in place.
		default:
			w.scratch = appendHistoryKey(w.scratch[:0], key, curTS)
			hv := w.arena.alloc(1 + len(val))
			hv[0] = flag
			copy(hv[1:], val)
			if err := w.history.Put(w.scratch, hv); err != nil {
				return err
			}
			w.gcScratch = appendGCHistoryKey(w.gcScratch[:0], ts, w.scratch)
			if err := w.gc.Put(w.gcScratch, []byte{}); err != nil {
				return err
			}
		}
	} else if del {
		return nil
	}
	flag := flagLive
	if del {
		flag, value = flagTombstone, nil
	}
	lv := w.arena.alloc(latestHeaderLen + len(value))
	encodeLatest(lv, ts, flag, value)
	if err := w.latest.Put(key, lv); err != nil {
		return err
	}
	if del {
		w.gcScratch = appendGCTombstoneKey(w.gcScratch[:0], ts, key)
		return w.gc.Put(w.gcScratch, []byte{})
	}
	return nil
}

func (w *txWriter) setLastCommitTS(ts Timestamp) error {
	return w.meta.Put(metaLastCommitTS, encodeUint64(uint64(ts)))
}

// arena hands out value buffers for one write transaction: bbolt keeps
// references to put values until the transaction ends, so they cannot be
// reused before then, but they can after.
type arena struct {
	blocks [][]byte
	cur    int
}

const (
	arenaBlockSize = 64 << 10
	arenaKeep      = 16 // blocks retained across transactions
)

func (a *arena) alloc(n int) []byte {
	if n > arenaBlockSize/4 {
		return make([]byte, n)
	}
	for ; a.cur < len(a.blocks); a.cur++ {
		b := a.blocks[a.cur]
		if l := len(b); cap(b)-l >= n {
			a.blocks[a.cur] = b[:l+n]
			return b[l : l+n : l+n]
		}
	}
	b := make([]byte, n, arenaBlockSize)
	a.blocks = append(a.blocks, b)
	return b[:n:n]
}

// reset makes the buffers reusable; call it only once the transaction that
// used them has ended.
func (a *arena) reset() {
	if len(a.blocks) > arenaKeep {
		clear(a.blocks[arenaKeep:])
		a.blocks = a.blocks[:arenaKeep]
	}
	for i := range a.blocks {
		a.blocks[i] = a.blocks[i][:0]
	}
	a.cur = 0
}
