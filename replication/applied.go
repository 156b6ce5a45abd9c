package replication

import (
	"context"
	"sync"
)

// appliedWatch publishes the index of the last command the store holds and
// lets readers wait for it to reach a point: a read barrier, or a follower
// that must see its own forwarded commit before acknowledging it.
type appliedWatch struct {
	mu    sync.Mutex
	index uint64
	moved chan struct{} // closed and replaced each time index grows
}

func newAppliedWatch(index uint64) *appliedWatch {
	return &appliedWatch{index: index, moved: make(chan struct{})}
}

func (w *appliedWatch) get() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.index
}

// set moves the index forward; it never goes back.
func (w *appliedWatch) set(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index <= w.index {
		return
	}
	w.index = index
	close(w.moved)
	w.moved = make(chan struct{})
}

// wait returns once the index is at least index, or with ctx's error.
func (w *appliedWatch) wait(ctx context.Context, index uint64) error {
	for {
		w.mu.Lock()
		cur, moved := w.index, w.moved
		w.mu.Unlock()
		if cur >= index {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
