package replication

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
)

// Once closed, the guarded store answers reads with an error instead of
// touching the closed bolt file, and closing twice is harmless.
func TestGuardedStoreAfterClose(t *testing.T) {
	bs, err := raftboltdb.NewBoltStore(filepath.Join(t.TempDir(), "raft.db"))
	require.NoError(t, err)
	g := &guardedStore{s: bs}
	require.NoError(t, g.SetUint64([]byte("CurrentTerm"), 7))
	require.NoError(t, g.StoreLog(&raft.Log{Index: 1, Term: 7, Data: []byte("x")}))
	v, err := g.GetUint64([]byte("CurrentTerm"))
	require.NoError(t, err)
	require.Equal(t, uint64(7), v)
	require.NoError(t, g.Close())
	require.NoError(t, g.Close())
	_, err = g.GetUint64([]byte("CurrentTerm"))
	require.ErrorIs(t, err, errStoreClosed)
	var l raft.Log
	require.ErrorIs(t, g.GetLog(1, &l), errStoreClosed)
	_, err = g.LastIndex()
	require.ErrorIs(t, err, errStoreClosed)

	// A write after the close does not return (a stray heartbeat handler
	// must not acknowledge a term it could not persist); while it waits it
	// holds nothing that would stop the rest of the process.
	done := make(chan struct{})
	go func() {
		_ = g.SetUint64([]byte("CurrentTerm"), 8)
		close(done)
	}()
	_, err = g.FirstIndex()
	require.ErrorIs(t, err, errStoreClosed, "reads still answer while a late write waits")
	select {
	case <-done:
		t.Fatal("a write after close returned")
	default:
	}
}
