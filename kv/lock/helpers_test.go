package lock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// long bounds waits that are expected to end by a grant, so a bug shows up as
// a failure instead of a hung test.
const long = 10 * time.Second

// waiting counts queued requests across the table.
func (m *Manager) waiting() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, e := range sh.entries {
			n += len(e.queue)
		}
		sh.mu.Unlock()
	}
	return n
}

// entryCount counts keys with a holder or a waiter.
func (m *Manager) entryCount() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}

// txnCount counts transactions with bookkeeping left.
func (m *Manager) txnCount() int {
	n := 0
	for i := range m.txns {
		ts := &m.txns[i]
		ts.mu.Lock()
		n += len(ts.txns)
		ts.mu.Unlock()
	}
	return n
}

func acquire(t *testing.T, m *Manager, txn TxnID, key string, mode Mode) {
	t.Helper()
	require.NoError(t, m.Acquire(context.Background(), txn, []byte(key), mode, long))
}

// acquireAsync starts an Acquire in the background and returns its result.
func acquireAsync(ctx context.Context, m *Manager, txn TxnID, key string, mode Mode, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, txn, []byte(key), mode, timeout) }()
	return done
}

// awaitWaiting blocks until exactly n requests are queued.
func awaitWaiting(t *testing.T, m *Manager, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return m.waiting() == n }, 5*time.Second, time.Millisecond,
		"expected %d queued requests", n)
}

func requirePending(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Acquire returned %v while it should still wait", err)
	default:
	}
}

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire did not return")
		return nil
	}
}

// requireEmpty checks that nothing is left behind once every transaction
// has released.
func requireEmpty(t *testing.T, m *Manager) {
	t.Helper()
	require.Zero(t, m.entryCount(), "lock entries left")
	require.Zero(t, m.waiting(), "waiters left")
	require.Zero(t, m.txnCount(), "transaction state left")
}
