package kv

import (
	"context"
	"fmt"
	"sync/atomic"
)

const (
	// maxGroupBatches caps a commit group, bounding how long one write
	// transaction holds bbolt's writer lock.
	maxGroupBatches = 256
	// commitQueueLen is how many batches may wait for the committer before
	// Commit blocks on the queue itself.
	commitQueueLen = 4 * maxGroupBatches
)

// commitReq is one Commit call waiting for the committer.
type commitReq struct {
	batch *Batch
	// state arbitrates between the committer taking the request and the
	// caller giving up on it: whoever moves it out of reqQueued owns it.
	state atomic.Int32
	done  chan struct{}
	ts    Timestamp
	err   error
}

const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

// Commit applies b atomically and durably (fsync before return) at a fresh
// commit timestamp and returns it.
//
// If a precondition fails, nothing of b is written and the error is a
// *ConflictError (errors.Is(err, ErrConflict)) naming the failing
// precondition.
//
// Concurrent Commit calls are gathered by one committer goroutine into a
// single bbolt write transaction, so many batches share one fsync. Inside
// it, each batch is checked and applied in order: a later batch sees the
// earlier ones, and a failed batch is skipped without affecting the others.
// Each batch gets its own strictly increasing commit timestamp, and the
// group becomes visible (ReadTS) only once durable, before Commit returns.
//
// ctx cancels only the wait in the queue: once the committer has taken the
// batch, Commit waits for its outcome. A *ConflictError, ErrInvalidBatch,
// ErrClosed or ctx.Err() means nothing of b was written; any other error
// comes from the write transaction and leaves the outcome unknown.
func (e *Engine) Commit(ctx context.Context, b *Batch) (Timestamp, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	if err := validateBatch(b); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r := &commitReq{batch: b, done: make(chan struct{})}
	select {
	case e.queue <- r:
		e.queued.Add(1)
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-e.closing:
		return 0, ErrClosed
	}
	select {
	case <-r.done:
		return r.ts, r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return 0, ctx.Err()
		}
	case <-e.stopped:
		// Sent after the committer's final drain: nobody will take it.
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return 0, ErrClosed
		}
	}
	<-r.done
	return r.ts, r.err
}

// runCommitter is the single goroutine that stamps and writes Commit
// batches. It starts the next group as soon as the previous one is durable,
// taking everything queued meanwhile.
func (e *Engine) runCommitter() {
	defer close(e.stopped)
	group := make([]*commitReq, 0, maxGroupBatches)
	for {
		group = group[:0]
		select {
		case r := <-e.queue:
			group = take(group, r)
		case <-e.closing:
			e.failQueued()
			return
		}
	gather:
		for len(group) < maxGroupBatches {
			select {
			case r := <-e.queue:
				group = take(group, r)
			default:
				break gather
			}
		}
		if len(group) > 0 {
			e.commitGroup(group)
			clear(group)
		}
	}
}

func take(group []*commitReq, r *commitReq) []*commitReq {
	if r.state.CompareAndSwap(reqQueued, reqTaken) {
		group = append(group, r)
	}
	return group
}

// failQueued answers every batch still queued at Close with ErrClosed.
func (e *Engine) failQueued() {
	for {
		select {
		case r := <-e.queue:
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				r.err = ErrClosed
				close(r.done)
			}
		default:
			return
		}
	}
}

// commitGroup writes a group in one transaction and answers every request.
func (e *Engine) commitGroup(group []*commitReq) {
	e.wmu.Lock()
	written, err := e.commitGroupLocked(group)
	e.wmu.Unlock()
	if err != nil {
		e.log.Error("kv: commit group failed", "batches", len(group), "err", err)
	}
	e.stats.commits.Add(uint64(written))
	for _, r := range group {
		if err != nil && r.err == nil {
			r.ts, r.err = 0, err
		}
		close(r.done)
	}
}

// commitGroupLocked stamps and applies each batch of group, records
// conflicts in the requests, commits and publishes. It returns the number
// of batches written; a non-nil error means none was. Callers hold wmu.
func (e *Engine) commitGroupLocked(group []*commitReq) (written int, err error) {
	tx, err := e.db.Begin(true)
	if err != nil {
		return 0, boltErr(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
		e.arena.reset()
	}()
	w, err := newTxWriter(tx, &e.arena)
	if err != nil {
		return 0, err
	}
	var last Timestamp
	conflicts := 0
	for _, r := range group {
		c, err := w.check(r.batch)
		if err != nil {
			r.err = err
			continue
		}
		if c != nil {
			r.err = c
			conflicts++
			continue
		}
		ts := e.nextTSLocked()
		if err := w.apply(r.batch, ts); err != nil {
			return 0, err
		}
		r.ts, last = ts, ts
		written++
	}
	e.stats.conflicts.Add(uint64(conflicts))
	if written == 0 {
		// Nothing to make durable: skip the fsync.
		_ = tx.Rollback()
		return 0, nil
	}
	if err := w.setLastCommitTS(last); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("kv: commit: %w", err)
	}
	e.stats.fsyncs.Add(1)
	e.stats.batches.Add(uint64(written))
	e.publishLocked(last)
	return written, nil
}

// nextTSLocked stamps the next commit, strictly above every stored one even
// if the clock was replaced or handed a smaller time. Callers hold wmu.
func (e *Engine) nextTSLocked() Timestamp {
	ts := e.clock.Now()
	if ts <= e.lastTS {
		e.clock.Update(e.lastTS)
		ts = e.clock.Now()
	}
	return ts
}
