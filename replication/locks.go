package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/kv/lock"
)

// Row locks live at the group's leader, in a lock table that belongs to the
// leader's term: when leadership moves, the table is closed (waiters get
// lock.ErrAborted) and the new leader starts with an empty one. A
// transaction that held a lock of the old table learns of it at commit,
// where the versions it read under the lock are preconditions.
//
// Transactions of other nodes hold locks under IDs the leader assigns
// (remote IDs have the top bit set, so they never meet a local one). Their
// nodes send a keepalive for them; the leader releases the locks of a
// remote transaction it has not heard of for Config.LeaseTTL, so a node
// that dies holding locks blocks others only that long.
const remoteIDBit = 1 << 63

type remoteKey struct {
	node  string
	owner lock.TxnID
}

type remoteOwner struct {
	id   lock.TxnID
	seen time.Time
}

// ownerState is what this node knows of one of its transactions' locks.
type ownerState struct {
	local  *lock.Manager   // the table it locked in while this node led
	remote map[string]bool // leaders it locked through
	n      int
}

type releaseWait struct {
	n    int
	done chan struct{}
}

type lockService struct {
	g *Group

	mu         sync.Mutex
	term       uint64
	table      *lock.Manager // nil unless leading
	remote     map[remoteKey]*remoteOwner
	nextRemote uint64
	owners     map[lock.TxnID]*ownerState

	// closed tables' counters, so Stats stays cumulative.
	past lock.Stats

	// Releases at other nodes run in the background (sendReleases);
	// stopping cancels them and waits.
	releaseCtx    context.Context
	releaseCancel context.CancelFunc
	releasing     sync.WaitGroup
	stopped       bool
	// pendingRelease holds, per owner with releases still in flight, a
	// channel closed once they are all done. An owner that locks again
	// (a transaction rolled back in place keeps its ID) waits for it, or
	// a late release would drop the new grant at the leader.
	pendingRelease map[lock.TxnID]*releaseWait
	// releaseHook, when set (tests), runs in each release goroutine
	// before its request is sent.
	releaseHook func()
}

func newLockService(g *Group) *lockService {
	// Releases are background work: no caller waits for them.
	ctx, cancel := context.WithCancel(inBackground(context.Background()))
	return &lockService{g: g, remote: map[remoteKey]*remoteOwner{}, owners: map[lock.TxnID]*ownerState{},
		releaseCtx: ctx, releaseCancel: cancel, pendingRelease: map[lock.TxnID]*releaseWait{}}
}

// leaderTable returns the lock table of the current term, starting one when
// this node has just become leader. It first waits for the term's barrier:
// until every entry of earlier terms is applied here, a commit an earlier
// leader acknowledged may be missing, and the current read that follows a
// grant would not see it.
func (l *lockService) leaderTable(ctx context.Context) (*lock.Manager, error) {
	if l.g.raft.State() != raft.Leader {
		return nil, l.g.notLeader()
	}
	if err := l.g.TermBarrier(ctx); err != nil {
		return nil, err
	}
	term := l.g.raft.CurrentTerm()
	if l.g.readyTerm.Load() != term {
		// A new term began after the barrier; this node may no longer
		// lead, or leads again without a barrier of its own yet.
		return nil, l.g.notLeader()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.table == nil || l.term != term {
		l.dropTableLocked()
		l.table = lock.NewManager()
		l.term = term
	}
	return l.table, nil
}

func (l *lockService) dropTableLocked() {
	if l.table == nil {
		return
	}
	l.table.Close()
	s := l.table.Stats()
	l.past.Acquired += s.Acquired
	l.past.Waits += s.Waits
	l.past.Timeouts += s.Timeouts
	l.past.Deadlocks += s.Deadlocks
	l.table = nil
	l.term = 0
	l.remote = map[remoteKey]*remoteOwner{}
}

// watchLeadership closes the lock table as soon as this node stops leading.
func (l *lockService) watchLeadership() {
	defer l.g.bg.Done()
	ch := l.g.raft.LeaderCh()
	for {
		select {
		case leading := <-ch:
			if !leading {
				l.mu.Lock()
				l.dropTableLocked()
				l.mu.Unlock()
				l.g.rsnaps.dropAll()
			} else if l.g.fsm.ClusterID() == nil {
				l.g.bg.Add(1)
				go l.g.nameCluster()
			}
		case <-l.g.stop:
			return
		}
	}
}

func (l *lockService) close() {
	l.mu.Lock()
	l.dropTableLocked()
	l.stopped = true
	l.mu.Unlock()
	l.releaseCancel()
	l.releasing.Wait()
}

// Stats sums the counters of every lock table this node has led with.
func (l *lockService) Stats() lock.Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.past
	if l.table != nil {
		c := l.table.Stats()
		s.Acquired += c.Acquired
		s.Waits += c.Waits
		s.Timeouts += c.Timeouts
		s.Deadlocks += c.Deadlocks
	}
	return s
}

func (l *lockService) owner(id lock.TxnID) *ownerState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.owners[id]
	if st == nil {
		st = &ownerState{}
		l.owners[id] = st
	}
	return st
}

// Lock acquires key for owner in mode at the leader, waiting up to timeout
// for a conflicting holder, and returns once this node has applied every
// commit the leader had applied when it granted the lock, so a read of key
// here that follows is a current read. Errors: lock.ErrTimeout,
// lock.ErrDeadlock, lock.ErrAborted (the lock table was dropped by a leader
// change, or the transaction released meanwhile), ErrUnavailable.
func (g *Group) Lock(ctx context.Context, owner lock.TxnID, key []byte, mode lock.Mode, timeout time.Duration) error {
	l := g.locks
	if err := l.waitReleased(ctx, owner); err != nil {
		return err
	}
	st := l.owner(owner)
	var index uint64
	err := g.toLeader(ctx, true, func(ctx context.Context) error {
		// On the leader, every commit of an earlier term was applied here
		// before the table was handed out, and every commit of an earlier
		// holder in this term before the holder released.
		return l.acquireLocal(ctx, st, owner, []LockRequest{{Key: key, Mode: mode}}, timeout)
	}, func(ctx context.Context, addr string) error {
		l.noteRemote(st, addr)
		cctx, cancel := context.WithTimeout(ctx, timeout+g.cfg.Timeout)
		defer cancel()
		silent := g.watchLeader(cctx, cancel, addr)
		resp, err := g.node.rpc.call(cctx, addr, g.id, methodLock, g.fsm.Applied(), encodeLock(string(g.cfg.ID), owner, mode, timeout, key))
		if err != nil {
			if silent() && ctx.Err() == nil {
				return fmt.Errorf("%w: the leader at %s stopped answering", ErrUnavailable, addr)
			}
			if cctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("%w: lock request unanswered", ErrUnavailable)
			}
			return err
		}
		if len(resp) != 8 {
			return fmt.Errorf("replication: bad lock response of %d bytes", len(resp))
		}
		index = binary.BigEndian.Uint64(resp)
		l.granted(st, 1)
		return nil
	})
	if err != nil {
		return err
	}
	return g.waitApplied(ctx, index)
}

// watchLeader guards a lock request to the leader at addr. The request may
// wait there up to the lock wait timeout, for a holder to finish; but a
// leader that stopped answering (a WAN link gone silent keeps a pooled
// connection open, and nothing comes back on it) must not hold the caller
// that long. So while the request waits, the leader is asked for a cheap
// answer (an empty keepalive) every half cluster timeout, and one that does
// not come within half a cluster timeout ends the request: cancel is
// called, and silent reports it. A lock the leader grants after that
// expires there, since this node sends no keepalive for it.
func (g *Group) watchLeader(ctx context.Context, cancel context.CancelFunc, addr string) (silent func() bool) {
	if g.node == nil {
		return func() bool { return false }
	}
	probe := emptyKeepalive(string(g.cfg.ID))
	return watchSilence(ctx, cancel, g.cfg.Timeout/2, func(pctx context.Context) error {
		_, err := g.node.rpc.call(pctx, addr, g.id, methodKeepalive, 0, probe)
		return err
	})
}

// emptyKeepalive is a keepalive naming no owner: the cheapest request a
// leader answers.
func emptyKeepalive(node string) []byte {
	return binary.AppendUvarint(appendBytes(nil, []byte(node)), 0)
}

// watchSilence calls probe every interval until ctx ends; the first probe
// that fails within interval (other than with ErrNotLeader, an answer)
// calls cancel and makes silent report true. Probes are background
// requests: no caller's round trips count them.
func watchSilence(ctx context.Context, cancel context.CancelFunc, every time.Duration, probe func(context.Context) error) (silent func() bool) {
	var gone atomic.Bool
	if every <= 0 {
		return gone.Load
	}
	go func() {
		t := time.NewTimer(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(inBackground(context.Background()), every)
			err := probe(pctx)
			pcancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil && !errors.Is(err, ErrNotLeader) {
				gone.Store(true)
				cancel()
				return
			}
			t.Reset(every)
		}
	}()
	return gone.Load
}

// ReleaseAll drops every lock owner holds, wherever it took them. Locks at
// other nodes are released in the background, so a COMMIT does not wait a
// round trip per leader it locked through (nor Timeout for a leader that is
// gone). Call it only once the transaction's commit is acknowledged, which
// means applied on the leader: a release sent after that cannot reach the
// leader before the commit, so the next holder's current read sees it.
// The owner may lock again afterwards: Lock waits for these releases first.
func (g *Group) ReleaseAll(owner lock.TxnID) {
	l := g.locks
	l.mu.Lock()
	st := l.owners[owner]
	delete(l.owners, owner)
	l.mu.Unlock()
	if st == nil {
		return
	}
	if st.local != nil {
		st.local.ReleaseAll(owner)
	}
	for addr := range st.remote {
		l.sendRelease(addr, owner)
	}
}

// sendRelease tells the leader at addr that owner is done, in the
// background, one request per leader so a dead one delays no other.
func (l *lockService) sendRelease(addr string, owner lock.TxnID) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.releasing.Add(1)
	w := l.pendingRelease[owner]
	if w == nil {
		w = &releaseWait{done: make(chan struct{})}
		l.pendingRelease[owner] = w
	}
	w.n++
	l.mu.Unlock()
	go func() {
		defer l.releasing.Done()
		defer func() {
			l.mu.Lock()
			if w.n--; w.n == 0 {
				delete(l.pendingRelease, owner)
				close(w.done)
			}
			l.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(l.releaseCtx, l.g.cfg.Timeout)
		defer cancel()
		if l.releaseHook != nil {
			l.releaseHook()
		}
		// A leader that cannot be told drops the locks itself: on losing
		// leadership, or remoteLockTTL after the last keepalive.
		_, err := l.g.node.rpc.call(ctx, addr, l.g.id, methodRelease, 0, encodeOwner(string(l.g.cfg.ID), owner))
		if err != nil && !errors.Is(err, ErrNotLeader) && l.releaseCtx.Err() == nil {
			l.g.logger.Debug("lock release failed", "leader", addr, "error", err)
		}
	}()
}

// waitReleased returns once no release of owner is in flight.
func (l *lockService) waitReleased(ctx context.Context, owner lock.TxnID) error {
	l.mu.Lock()
	w := l.pendingRelease[owner]
	l.mu.Unlock()
	if w == nil {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.g.stop:
		return ErrShutdown
	}
}

// HeldBy reports how many lock grants owner received (re-grants included);
// zero means it holds none.
func (g *Group) HeldBy(owner lock.TxnID) int {
	l := g.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.owners[owner]; st != nil {
		return st.n
	}
	return 0
}

// LockStats sums this node's lock tables' counters.
func (g *Group) LockStats() lock.Stats { return g.locks.Stats() }

// lock request: uvarint len ‖ node ‖ u64 owner ‖ u8 mode ‖ u64 timeout (ns) ‖ key
func encodeLock(node string, owner lock.TxnID, mode lock.Mode, timeout time.Duration, key []byte) []byte {
	b := appendBytes(nil, []byte(node))
	b = binary.BigEndian.AppendUint64(b, uint64(owner))
	b = append(b, byte(mode))
	b = binary.BigEndian.AppendUint64(b, uint64(timeout))
	return append(b, key...)
}

func encodeOwner(node string, owner lock.TxnID) []byte {
	return binary.BigEndian.AppendUint64(appendBytes(nil, []byte(node)), uint64(owner))
}

// remoteOwnerOf maps another node's transaction to its entry, and so its
// ID, in the current table.
func (l *lockService) remoteOwnerOf(node string, owner lock.TxnID) *remoteOwner {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := remoteKey{node, owner}
	ro := l.remote[k]
	if ro == nil {
		l.nextRemote++
		ro = &remoteOwner{id: lock.TxnID(remoteIDBit | l.nextRemote)}
		l.remote[k] = ro
	}
	ro.seen = time.Now()
	return ro
}

// stillRemote reports whether ro is still the entry of another node's
// transaction: a release or an expiry removes it.
func (l *lockService) stillRemote(node string, owner lock.TxnID, ro *remoteOwner) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remote[remoteKey{node, owner}] == ro
}

func (l *lockService) serveLock(ctx context.Context, payload []byte) ([]byte, error) {
	d := decoder{buf: payload}
	node := string(d.bytes())
	owner := lock.TxnID(d.u64())
	mode := lock.Mode(d.byte())
	timeout := time.Duration(d.u64())
	if d.err != nil {
		return nil, fmt.Errorf("replication: bad lock request: %w", d.err)
	}
	key := d.buf
	if err := l.acquireRemote(ctx, node, owner, timeout, []LockRequest{{Key: key, Mode: mode}}); err != nil {
		return nil, err
	}
	// Read only now: the applied index after the term's barrier and after
	// the previous holder's commit.
	return binary.BigEndian.AppendUint64(nil, l.g.fsm.Applied()), nil
}

func (l *lockService) serveRelease(payload []byte) error {
	d := decoder{buf: payload}
	node := string(d.bytes())
	owner := lock.TxnID(d.u64())
	if d.err != nil {
		return fmt.Errorf("replication: bad release request: %w", d.err)
	}
	l.mu.Lock()
	k := remoteKey{node, owner}
	ro, t := l.remote[k], l.table
	delete(l.remote, k)
	l.mu.Unlock()
	if ro != nil && t != nil {
		t.ReleaseAll(ro.id)
	}
	return nil
}

// keepalive request: uvarint len ‖ node ‖ uvarint count ‖ u64 owner…
// [‖ snapshots: uvarint count ‖ (u64 owner ‖ u64 timestamp)…]. Builds
// before remote snapshots stop after the owners.
func (l *lockService) serveKeepalive(payload []byte) error {
	d := decoder{buf: payload}
	node := string(d.bytes())
	n := d.count(8)
	now := time.Now()
	l.mu.Lock()
	for i := 0; i < n && d.err == nil; i++ {
		if ro := l.remote[remoteKey{node, lock.TxnID(d.u64())}]; ro != nil {
			ro.seen = now
		}
	}
	l.mu.Unlock()
	if d.err != nil || len(d.buf) == 0 {
		return d.err
	}
	return l.g.renewSnapshots(node, d.buf)
}

// keepalive tells leaders which of this node's transactions still hold
// locks there, and, on the leader, expires those of silent nodes.
func (l *lockService) keepalive() {
	defer l.g.bg.Done()
	every := defaultKeepalive
	if l.g.node != nil {
		every = l.g.node.cfg.keepaliveInterval()
	}
	ttl := l.g.cfg.leaseTTL()
	// Expiry runs often enough to honour a short TTL; keepalives go out
	// every interval.
	t := time.NewTicker(min(every, ttl/4))
	defer t.Stop()
	var sent time.Time
	for {
		select {
		case <-t.C:
		case <-l.g.stop:
			return
		}
		l.expire(ttl)
		l.g.rsnaps.expire(ttl)
		if l.g.node == nil || time.Since(sent) < every {
			continue
		}
		sent = time.Now()
		byAddr := map[string][]lock.TxnID{}
		l.mu.Lock()
		for id, st := range l.owners {
			for addr := range st.remote {
				byAddr[addr] = append(byAddr[addr], id)
			}
		}
		l.mu.Unlock()
		for addr, ids := range byAddr {
			b := appendBytes(nil, []byte(l.g.cfg.ID))
			b = binary.AppendUvarint(b, uint64(len(ids)))
			for _, id := range ids {
				b = binary.BigEndian.AppendUint64(b, uint64(id))
			}
			ctx, cancel := context.WithTimeout(inBackground(context.Background()), every)
			_, err := l.g.node.rpc.call(ctx, addr, l.g.id, methodKeepalive, 0, b)
			cancel()
			if err != nil && !errors.Is(err, ErrNotLeader) {
				l.g.logger.Debug("lock keepalive failed", "leader", addr, "error", err)
			}
		}
	}
}

func (l *lockService) expire(ttl time.Duration) {
	now := time.Now()
	var stale []lock.TxnID
	l.mu.Lock()
	t := l.table
	for k, ro := range l.remote {
		if now.Sub(ro.seen) > ttl {
			stale = append(stale, ro.id)
			delete(l.remote, k)
		}
	}
	l.mu.Unlock()
	if t == nil {
		return
	}
	for _, id := range stale {
		t.ReleaseAll(id)
	}
}
