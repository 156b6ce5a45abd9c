package replication

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
)

// stallSink stalls its first Write until released.
type stallSink struct {
	memSink
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (s *stallSink) Write(p []byte) (int, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return s.memSink.Write(p)
}

func openTestFSM(t *testing.T, name string) *FSM {
	opts := kv.DefaultOptions(filepath.Join(t.TempDir(), name))
	opts.Clock = kv.NewClock(nil)
	opts.GCInterval = 0
	e, err := kv.Open(opts)
	require.NoError(t, err)
	return NewFSM(e, opts, nil)
}

// within runs fn and fails the test if it does not return in time.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("%s did not return while a snapshot was being written", what)
	}
}

// A snapshot written to a slow sink must not hold up a restore, nor the
// readers that would queue behind the restore.
func TestSlowPersistBlocksNeitherRestoreNorReaders(t *testing.T) {
	f := openTestFSM(t, "s.db")
	// More than the writer's buffer, so the sink is written while the
	// iterator is still walking the store.
	var many []*kv.Batch
	for i := range 200 {
		many = append(many, put(fmt.Sprintf("k%04d", i), strings.Repeat("v", 1024)))
	}
	f.Apply(&raft.Log{Index: 3, Data: mustEncode(t, many...)})
	early, err := f.Snapshot()
	require.NoError(t, err)
	earlySink := &memSink{}
	require.NoError(t, early.Persist(earlySink))
	early.Release()

	res := f.Apply(&raft.Log{Index: 4, Data: mustEncodeAfter(t, f, put("late", "x"))}).(*ApplyResult)
	require.Equal(t, []error{nil}, res.Errs)
	old := f.Engine()

	snap, err := f.Snapshot()
	require.NoError(t, err)
	slow := &stallSink{entered: make(chan struct{}), release: make(chan struct{})}
	persisted := make(chan error, 1)
	go func() { persisted <- snap.Persist(slow) }()
	select {
	case <-slow.entered:
	case <-time.After(waitLimit):
		t.Fatal("Persist never wrote")
	}

	within(t, "Restore", func() {
		require.NoError(t, f.Restore(io.NopCloser(bytesReader(earlySink.buf))))
	})
	var e *kv.Engine
	within(t, "Engine", func() { e = f.Engine() })
	require.NotSame(t, old, e)
	v, err := e.Get([]byte("late"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.False(t, v.Exists, "the restored store must not have what came after the snapshot")

	// The snapshot still reads the store it was taken from.
	close(slow.release)
	require.NoError(t, <-persisted)
	v, err = old.Get([]byte("late"), kv.MaxTimestamp)
	require.NoError(t, err, "the old store was closed under the snapshot")
	require.True(t, v.Exists)
	snap.Release()
	_, err = old.Get([]byte("late"), kv.MaxTimestamp)
	require.ErrorIs(t, err, kv.ErrClosed, "the replaced store must be closed once its last user is done")

	g := openTestFSM(t, "copy.db")
	require.NoError(t, g.Restore(io.NopCloser(bytesReader(slow.buf))))
	v, err = g.Engine().Get([]byte("late"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.Equal(t, "x", string(v.Data))
	require.NoError(t, g.close())
	require.NoError(t, f.close())
}

// mustEncodeAfter stamps batches above everything f has applied.
func mustEncodeAfter(t *testing.T, f *FSM, batches ...*kv.Batch) []byte {
	ts := make([]kv.Timestamp, len(batches))
	for i := range ts {
		ts[i] = f.clock.Now()
	}
	data, err := EncodeCommit(Commit{Batches: batches, TS: ts})
	require.NoError(t, err)
	return data
}

// A restore that could not reopen the store leaves the FSM refusing to
// apply; a later restore that succeeds (raft sends the snapshot again)
// must make it usable again.
func TestRestoreAfterFailedRestoreApplies(t *testing.T) {
	f := openTestFSM(t, "s.db")
	f.Apply(&raft.Log{Index: 3, Data: mustEncode(t, put("a", "1"))})
	snap, err := f.Snapshot()
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))
	snap.Release()

	// What the failed reopen leaves behind.
	f.broken = fmt.Errorf("replication: restore: reopening store: %w", kv.ErrCorrupt)
	require.NoError(t, f.Restore(io.NopCloser(bytesReader(sink.buf))))
	var res *ApplyResult
	require.NotPanics(t, func() {
		res = f.Apply(&raft.Log{Index: 4, Data: mustEncodeAfter(t, f, put("b", "2"))}).(*ApplyResult)
	})
	require.Equal(t, []error{nil}, res.Errs)
	require.NoError(t, f.close())
}
