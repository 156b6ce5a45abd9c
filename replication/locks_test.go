package replication

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
)

// holdApply makes nd's FSM stop after writing the entry that carries key
// gate, until the returned release is called: the entries behind it are in
// nd's log but not in its store.
func holdApply(t *testing.T, nd *testNode, gate string) (held <-chan struct{}, release func()) {
	h, r := make(chan struct{}), make(chan struct{})
	var once, ronce sync.Once
	nd.g.FSM().OnApply(func(batches []*kv.Batch, restored bool) {
		for _, b := range batches {
			for _, m := range b.Mutations {
				if string(m.Key) == gate {
					once.Do(func() { close(h) })
					<-r
				}
			}
		}
	})
	release = func() { ronce.Do(func() { close(r) }) }
	t.Cleanup(release)
	return h, release
}

// A new leader must not grant a row lock before it has applied the entries
// of earlier terms: the current read after the lock would miss a commit the
// old leader acknowledged.
func TestLockWaitsForTermBarrier(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	require.NoError(t, propose(t, lead.g, put("row", "v1"))[0])
	c.settle()

	next := c.nodes[(slices.Index(c.nodes, lead)+1)%len(c.nodes)]
	held, release := holdApply(t, next, "gate")
	require.NoError(t, propose(t, lead.g, put("gate", "x"))[0])
	select {
	case <-held:
	case <-time.After(waitLimit):
		t.Fatal("the follower never applied the gate entry")
	}
	// Acknowledged by the leader and the third node; next has it in its log
	// only.
	require.NoError(t, propose(t, lead.g, put("row", "v2"))[0])
	v, err := next.g.Engine().Get([]byte("row"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.Equal(t, "v1", string(v.Data))

	require.NoError(t, lead.g.Raft().LeadershipTransferToServer(next.id, next.addr).Error())
	require.Eventually(t, next.g.IsLeader, waitLimit, 5*time.Millisecond)

	// While the earlier term's entries are not applied, no lock is granted,
	// neither to a local transaction nor to another node's.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = next.g.Lock(ctx, 1, []byte("row"), lock.Exclusive, time.Second)
	cancel()
	require.Error(t, err, "a lock was granted before the term's barrier")
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = next.g.locks.serveLock(ctx, encodeLock("other", 7, lock.Exclusive, time.Second, []byte("row")))
	cancel()
	require.Error(t, err, "a remote lock was granted before the term's barrier")

	release()
	ctx, cancel = context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, next.g.Lock(ctx, 1, []byte("row"), lock.Exclusive, time.Second))
	v, err = next.g.Engine().Get([]byte("row"), kv.MaxTimestamp)
	require.NoError(t, err)
	require.Equal(t, "v2", string(v.Data), "the current read after the lock missed an acknowledged commit")
	next.g.ReleaseAll(1)

	resp, err := next.g.locks.serveLock(ctx, encodeLock("other", 7, lock.Exclusive, time.Second, []byte("row")))
	require.NoError(t, err)
	rowIndex := next.g.FSM().Applied()
	require.Equal(t, rowIndex, binary.BigEndian.Uint64(resp))
}
