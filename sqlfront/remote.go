package sqlfront

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
	"github.com/fogdb/fogdb/replication"
)

// RemoteGroup is what a RemotePart needs of a group this node does not
// host: the methods of *replication.Remote, whose documentation gives
// their guarantees. Tests give a fake.
type RemoteGroup interface {
	Snapshot(ctx context.Context, owner lock.TxnID) (kv.Timestamp, error)
	ReleaseSnapshot(ctx context.Context, owner lock.TxnID) error
	Get(ctx context.Context, key []byte, ts kv.Timestamp) (kv.Value, error)
	Scan(ctx context.Context, start, end []byte, ts kv.Timestamp, reverse bool, limit int) ([]replication.KV, bool, error)
	Lock(ctx context.Context, owner lock.TxnID, key []byte, mode lock.Mode, timeout time.Duration) error
	ReleaseAll(owner lock.TxnID)
	Commit(ctx context.Context, b *kv.Batch) (uint64, error)
	Call(ctx context.Context, m replication.Method, req []byte) ([]byte, error)
}

var (
	_ RemoteGroup = (*replication.Remote)(nil)
	_ Part        = (*RemotePart)(nil)
)

// ErrNotHosted: the part is a group this node does not host, so what only
// a member can do (run a request where its sequences are kept, follow its
// applies) is not available through it.
var ErrNotHosted = errors.New("sqlfront: group not hosted on this node")

// remoteChunk is how many keys an iterator of a RemotePart asks for per
// request: as many as a local iterator reads per bbolt transaction.
const remoteChunk = 128

// remoteRelease bounds the background request that releases a snapshot;
// the leader drops a snapshot nobody renews once its lease runs out anyway.
const remoteRelease = 10 * time.Second

// snapOwners numbers the snapshots RemoteParts register. A snapshot is
// registered under an owner of its own, not under its transaction's: its
// release goes in the background, and must not drop a snapshot the same
// transaction registered since (READ COMMITTED takes one per statement).
var snapOwners atomic.Uint64

// RemotePart is the Part of a group this node does not host, reached
// through its leader (a replication.Remote in the server). Its reads are
// current reads at the leader, or reads at a snapshot registered there,
// so they need no read barrier; a commit it acknowledged is seen by its
// next read. It keeps no sequences and sees no applies: sequences and the
// catalog stay in groups the node hosts.
type RemotePart struct {
	r RemoteGroup

	mu   sync.Mutex
	held map[lock.TxnID]map[string]struct{} // keys each owner locked through this part

	acquired, timeouts, deadlocks atomic.Uint64
}

// NewRemotePart returns the part of the group r reaches.
func NewRemotePart(r RemoteGroup) *RemotePart {
	return &RemotePart{r: r, held: map[lock.TxnID]map[string]struct{}{}}
}

// Get implements Part.
func (p *RemotePart) Get(ctx context.Context, key []byte, ts kv.Timestamp) (kv.Value, error) {
	return p.r.Get(counted(ctx), key, ts)
}

// NewIterator implements Part: chunked scans at the leader, the first one
// sent at once and each next one as soon as the previous arrives, so
// iterators of several groups opened together wait for their sites in
// parallel, and a reader going through a chunk does not wait for the
// next.
func (p *RemotePart) NewIterator(ctx context.Context, start, end []byte, ts kv.Timestamp, reverse bool) Iterator {
	ctx, cancel := context.WithCancel(counted(ctx))
	it := &remoteIter{
		r:       p.r,
		ctx:     ctx,
		cancel:  cancel,
		start:   append([]byte(nil), start...),
		ts:      ts,
		reverse: reverse,
		pos:     -1,
	}
	if end != nil {
		it.end = append([]byte(nil), end...)
	}
	it.fetch()
	return it
}

// Snapshot implements Part: a snapshot registered at the leader under a
// lease this node renews until Release.
func (p *RemotePart) Snapshot(ctx context.Context, _ lock.TxnID) (Snapshot, error) {
	owner := lock.TxnID(snapOwners.Add(1))
	ts, err := p.r.Snapshot(counted(ctx), owner)
	if err != nil {
		return nil, err
	}
	return &remoteSnap{r: p.r, owner: owner, ts: ts}, nil
}

// Commit implements Part: nil once the leader applied b.
func (p *RemotePart) Commit(ctx context.Context, b *kv.Batch) error {
	_, err := p.r.Commit(counted(ctx), b)
	return err
}

// ReadBarrier implements Part: nothing to wait for, since every read goes
// to the leader, which serves it linearizably.
func (p *RemotePart) ReadBarrier(context.Context) error { return nil }

// Lock implements Part.
func (p *RemotePart) Lock(ctx context.Context, owner lock.TxnID, key []byte, mode lock.Mode, timeout time.Duration) error {
	err := p.r.Lock(counted(ctx), owner, key, mode, timeout)
	switch {
	case err == nil:
		p.acquired.Add(1)
		p.mu.Lock()
		keys := p.held[owner]
		if keys == nil {
			keys = map[string]struct{}{}
			p.held[owner] = keys
		}
		keys[string(key)] = struct{}{}
		p.mu.Unlock()
	case errors.Is(err, lock.ErrTimeout):
		p.timeouts.Add(1)
	case errors.Is(err, lock.ErrDeadlock):
		p.deadlocks.Add(1)
	}
	return err
}

// ReleaseAll implements Part.
func (p *RemotePart) ReleaseAll(owner lock.TxnID) {
	p.mu.Lock()
	delete(p.held, owner)
	p.mu.Unlock()
	// Even without a lock counted here: a lock whose answer was lost may
	// be held all the same. The handle knows, and sends nothing when it
	// holds nothing for owner.
	p.r.ReleaseAll(owner)
}

// HeldBy implements Part: the keys owner locked through this part and has
// not released.
func (p *RemotePart) HeldBy(owner lock.TxnID) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held[owner])
}

// LockStats implements Part with what this node saw of its own requests;
// waits happen at the leader, which does not report them.
func (p *RemotePart) LockStats() lock.Stats {
	return lock.Stats{Acquired: p.acquired.Load(), Timeouts: p.timeouts.Load(), Deadlocks: p.deadlocks.Load()}
}

// Leading implements Part: sequences are never kept in a remote part.
func (p *RemotePart) Leading() (uint64, bool) { return 0, false }

// TermBarrier implements Part; it is only asked of a leading part.
func (p *RemotePart) TermBarrier(context.Context) error { return ErrNotHosted }

// Call implements Part: the handler runs at the group's leader (a placed
// table's sequences are kept there).
func (p *RemotePart) Call(ctx context.Context, m uint8, req []byte) ([]byte, error) {
	return p.r.Call(counted(ctx), replication.FirstUserMethod+replication.Method(m), req)
}

// Handle implements Part: a handler registered here would never run.
func (p *RemotePart) Handle(uint8, func(context.Context, []byte) ([]byte, error)) {}

// OnApply implements Part: this node applies nothing of the group.
func (p *RemotePart) OnApply(func([]*kv.Batch, bool)) {}

// remoteSnap is a snapshot registered at a remote group's leader.
type remoteSnap struct {
	r     RemoteGroup
	owner lock.TxnID
	ts    kv.Timestamp
	once  sync.Once
}

func (s *remoteSnap) TS() kv.Timestamp { return s.ts }

// Release lets the leader collect what the snapshot holds, in the
// background: a transaction's end does not wait for another site. Should
// the request fail, the lease runs out.
func (s *remoteSnap) Release() {
	s.once.Do(func() {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), remoteRelease)
			defer cancel()
			_ = s.r.ReleaseSnapshot(ctx, s.owner)
		}()
	})
}

// remoteIter is an Iterator over chunks of Remote.Scan.
type remoteIter struct {
	r          RemoteGroup
	ctx        context.Context
	cancel     context.CancelFunc
	start, end []byte // what remains to read
	ts         kv.Timestamp
	reverse    bool

	chunk   []replication.KV
	pos     int
	pending chan remoteChunkResult // the next chunk, requested
	done    bool                   // no chunk after those received
	err     error
	closed  bool
}

type remoteChunkResult struct {
	kvs  []replication.KV
	more bool
	err  error
}

// fetch requests the chunk after what was asked so far.
func (it *remoteIter) fetch() {
	ch := make(chan remoteChunkResult, 1)
	it.pending = ch
	start, end := it.start, it.end
	go func() {
		kvs, more, err := it.r.Scan(it.ctx, start, end, it.ts, it.reverse, remoteChunk)
		ch <- remoteChunkResult{kvs: kvs, more: more, err: err}
	}()
}

// Next implements Iterator.
func (it *remoteIter) Next() bool {
	if it.err != nil || it.closed {
		return false
	}
	it.pos++
	for it.pos >= len(it.chunk) {
		if it.done || it.pending == nil {
			return false
		}
		res := <-it.pending
		it.pending = nil
		if res.err != nil {
			it.err = res.err
			return false
		}
		it.chunk, it.pos = res.kvs, 0
		if !res.more || len(res.kvs) == 0 {
			it.done = true
			continue
		}
		last := res.kvs[len(res.kvs)-1].Key
		if it.reverse {
			it.end = append([]byte(nil), last...)
		} else {
			it.start = append(append([]byte(nil), last...), 0)
		}
		it.fetch()
	}
	return true
}

func (it *remoteIter) Key() []byte           { return it.chunk[it.pos].Key }
func (it *remoteIter) Value() []byte         { return it.chunk[it.pos].Value }
func (it *remoteIter) Version() kv.Timestamp { return it.chunk[it.pos].Version }
func (it *remoteIter) Err() error            { return it.err }

// Close implements Iterator: a chunk still on its way is abandoned.
func (it *remoteIter) Close() {
	if it.closed {
		return
	}
	it.closed = true
	it.cancel()
	it.chunk = nil
}
