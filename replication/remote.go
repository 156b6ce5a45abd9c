package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
)

// KV is one key of a Remote.Scan: its value and the commit timestamp of the
// version read.
type KV struct {
	Key     []byte
	Value   []byte
	Version kv.Timestamp
}

// Remote is a handle on a group this node does not host: the rows of a
// table homed at another site. It reaches the group's leader over the
// node's port and gives the same guarantees as a Group does to a
// follower: linearizable current reads, snapshot reads that stay
// repeatable, row locks at the leader with the same deadlock and timeout
// errors, and commits with preconditions and the outcome-unknown rule.
//
// The leader's address is found among the members' addresses and cached;
// a member that does not lead redirects to the one it knows. Every request
// is bounded: past NodeConfig.Timeout without an answer from a leader it
// fails with ErrUnavailable (nothing was done), or, for a commit already
// sent, ErrOutcomeUnknown.
//
// Locks and snapshots a Remote holds for a transaction live at the
// leader under a lease that the node renews (NodeConfig.KeepaliveInterval)
// until ReleaseAll and ReleaseSnapshot; the leader drops those of a node
// it has not heard from for its Config.LeaseTTL.
type Remote struct {
	n       *Node
	group   uint64
	timeout time.Duration

	calls atomic.Uint64
	// applied is the highest applied index the group's leaders answered
	// with; every request carries it, so a leader never serves it from a
	// state older than one it has seen (its own commits, the commits a
	// lock's earlier holders made).
	applied atomic.Uint64

	mu      sync.Mutex
	members func() []string
	leader  string // cached; empty when unknown
	next    int    // rotation over the members while no leader is known
	// locks holds, per owner, the leaders it locked through, for
	// ReleaseAll; snaps and byTS its snapshot.
	locks          map[lock.TxnID]map[string]bool
	snaps          map[lock.TxnID]kv.Timestamp
	byTS           map[kv.Timestamp]map[lock.TxnID]bool
	pendingRelease map[lock.TxnID]*releaseWait
	stopped        bool // the node is closing: no new releases

	releasing sync.WaitGroup
}

// Remote returns the handle on group, whose members' peer addresses
// members returns (the caller reads them from its registry; it is asked
// again whenever no leader is known). One Remote exists per group and
// node: a later call returns the same one with members replaced. The
// node renews its transactions' locks and snapshots at the group until it
// closes.
func (n *Node) Remote(group uint64, members func() []string) *Remote {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.remotes[group]; r != nil {
		r.mu.Lock()
		r.members = members
		r.mu.Unlock()
		return r
	}
	r := &Remote{
		n:              n,
		group:          group,
		timeout:        n.cfg.timeout(),
		members:        members,
		locks:          map[lock.TxnID]map[string]bool{},
		snaps:          map[lock.TxnID]kv.Timestamp{},
		byTS:           map[kv.Timestamp]map[lock.TxnID]bool{},
		pendingRelease: map[lock.TxnID]*releaseWait{},
	}
	n.remotes[group] = r
	select {
	case <-n.closing:
	default:
		n.bg.Add(1)
		go r.keepalive()
	}
	return r
}

// Group is the ID of the group the handle reaches.
func (r *Remote) Group() uint64 { return r.group }

// Calls is how many requests the handle has sent, each attempt counted
// (see WithCallCounter), background releases and keepalives included.
func (r *Remote) Calls() uint64 { return r.calls.Load() }

// Leader is the cached address of the group's leader; empty when unknown.
func (r *Remote) Leader() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leader
}

func (r *Remote) call(ctx context.Context, addr string, m Method, payload []byte) ([]byte, error) {
	r.calls.Add(1)
	return r.n.rpc.call(ctx, addr, r.group, m, r.applied.Load(), payload)
}

func (r *Remote) noteApplied(index uint64) {
	for {
		cur := r.applied.Load()
		if index <= cur || r.applied.CompareAndSwap(cur, index) {
			return
		}
	}
}

// target is the address to try next: the cached leader, or the next member
// in turn.
func (r *Remote) target() (addr string, members int) {
	r.mu.Lock()
	list := r.members
	r.mu.Unlock()
	// The caller's function may read its registry; not under r.mu.
	ms := list()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leader != "" {
		return r.leader, len(ms)
	}
	if len(ms) == 0 {
		return "", 0
	}
	r.next = (r.next + 1) % len(ms)
	return ms[r.next], len(ms)
}

func (r *Remote) setLeader(addr string) {
	r.mu.Lock()
	r.leader = addr
	r.mu.Unlock()
}

// forget drops addr as the cached leader, if it still is.
func (r *Remote) forget(addr string) {
	r.mu.Lock()
	if r.leader == addr {
		r.leader = ""
	}
	r.mu.Unlock()
}

// do sends a request to the group's leader with send, following redirects
// and trying the members in turn while no leader answers, for at most the
// node's timeout. An attempt of a request that waits at the leader (a lock
// for its timeout, a commit for its confirmation) has the timeout plus
// extra from its start instead. A request whose connection broke after it
// was sent is tried again only when idempotent; otherwise, as when the
// caller gives up after sending it, it fails with ErrOutcomeUnknown.
func (r *Remote) do(ctx context.Context, idempotent bool, extra time.Duration,
	send func(ctx context.Context, addr string) error) error {
	deadline := time.Now().Add(r.timeout)
	var last error
	tries := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-r.n.closing:
			return ErrShutdown
		default:
		}
		addr, members := r.target()
		if addr == "" {
			last = errors.New("no member known")
		} else {
			tries++
			adl := deadline
			if extra > 0 {
				adl = time.Now().Add(r.timeout + extra)
			}
			actx, cancel := context.WithDeadline(ctx, adl)
			err := send(actx, addr)
			// The attempt's own deadline ended it, not an answer that came
			// as it passed.
			attemptEnded := err != nil && ctx.Err() == nil && gaveUp(actx, err)
			cancel()
			sent := err != nil && !errors.Is(err, errNotSent)
			var nl *NotLeaderError
			switch {
			case err == nil:
				r.setLeader(addr)
				return nil
			case !idempotent && sent && (isTransportErr(err) || gaveUp(ctx, err) || attemptEnded):
				r.forget(addr)
				if ctx.Err() != nil {
					return fmt.Errorf("%w: the caller gave up after the request was sent: %w", ErrOutcomeUnknown, err)
				}
				return fmt.Errorf("%w: no answer from the leader at %s: %w", ErrOutcomeUnknown, addr, err)
			case ctx.Err() != nil:
				return err
			case attemptEnded:
				r.forget(addr)
				return fmt.Errorf("%w: group %d: no answer from %s within %s", ErrUnavailable, r.group, addr, r.timeout)
			case asNotLeader(err, &nl):
				r.forget(addr)
				if a := string(nl.LeaderAddr); a != "" && a != addr {
					r.setLeader(a)
				}
				last = err
			case errors.Is(err, errNotSent), isTransportErr(err):
				r.forget(addr)
				last = err
			default:
				return err
			}
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: group %d: no leader reachable within %s: %v", ErrUnavailable, r.group, r.timeout, last)
		}
		// Go round the members once without pausing, then wait a little
		// for an election before the next round.
		if addr != "" && tries <= members {
			continue
		}
		tries = 0
		t := time.NewTimer(min(retryPause, time.Until(deadline)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-r.n.closing:
			t.Stop()
			return ErrShutdown
		}
	}
}

// request runs method m at the leader with payload and returns its answer.
func (r *Remote) request(ctx context.Context, idempotent bool, extra time.Duration, m Method, payload []byte) ([]byte, error) {
	var resp []byte
	err := r.do(ctx, idempotent, extra, func(ctx context.Context, addr string) error {
		var err error
		resp, err = r.call(ctx, addr, m, payload)
		return err
	})
	return resp, err
}

func (r *Remote) owner(owner lock.TxnID) []byte {
	return binary.BigEndian.AppendUint64(appendBytes(nil, []byte(r.n.cfg.ID)), uint64(owner))
}

// Snapshot registers a snapshot for owner at the group's leader and
// returns its timestamp: reads at it (Get, Scan) see every commit
// acknowledged before the call, and go on seeing exactly that while others
// commit and GC runs, until ReleaseSnapshot. A new snapshot of the same
// owner replaces the one it had. The leader keeps it while this node
// renews it; a leader elected since keeps it if its own store can still
// answer at the timestamp, and a read it cannot answer fails with
// ErrSnapshotLost, never with other data.
func (r *Remote) Snapshot(ctx context.Context, owner lock.TxnID) (kv.Timestamp, error) {
	resp, err := r.request(ctx, true, 0, methodSnapshot, r.owner(owner))
	if err != nil {
		return 0, err
	}
	if len(resp) != 16 {
		return 0, fmt.Errorf("replication: bad snapshot response of %d bytes", len(resp))
	}
	ts := kv.Timestamp(binary.BigEndian.Uint64(resp))
	r.noteApplied(binary.BigEndian.Uint64(resp[8:]))
	r.mu.Lock()
	r.dropSnapLocked(owner)
	r.snaps[owner] = ts
	if r.byTS[ts] == nil {
		r.byTS[ts] = map[lock.TxnID]bool{}
	}
	r.byTS[ts][owner] = true
	r.mu.Unlock()
	return ts, nil
}

func (r *Remote) dropSnapLocked(owner lock.TxnID) bool {
	ts, ok := r.snaps[owner]
	if !ok {
		return false
	}
	delete(r.snaps, owner)
	if set := r.byTS[ts]; set != nil {
		delete(set, owner)
		if len(set) == 0 {
			delete(r.byTS, ts)
		}
	}
	return true
}

// ReleaseSnapshot lets the leader's GC collect what owner's snapshot
// holds. The node stops renewing it at once; should the request fail, the
// leader drops it once its lease runs out.
func (r *Remote) ReleaseSnapshot(ctx context.Context, owner lock.TxnID) error {
	r.mu.Lock()
	had := r.dropSnapLocked(owner)
	r.mu.Unlock()
	if !had {
		return nil
	}
	_, err := r.request(ctx, true, 0, methodReleaseSnapshot, r.owner(owner))
	return err
}

// readHeader names a snapshot of this node holding ts, so a leader that
// does not hold it yet registers it on first use.
func (r *Remote) readHeader(ts kv.Timestamp) []byte {
	var owner lock.TxnID
	if ts != kv.MaxTimestamp {
		r.mu.Lock()
		for o := range r.byTS[ts] {
			owner = o
			break
		}
		r.mu.Unlock()
	}
	b := r.owner(owner)
	return binary.BigEndian.AppendUint64(b, uint64(ts))
}

// Get reads key at ts: a snapshot's timestamp, or kv.MaxTimestamp for a
// current read, which the leader serves after confirming its leadership,
// so it sees every commit acknowledged before the call (after a Lock, the
// newest version). Errors: ErrUnavailable, ErrSnapshotLost.
func (r *Remote) Get(ctx context.Context, key []byte, ts kv.Timestamp) (kv.Value, error) {
	resp, err := r.request(ctx, true, 0, methodGet, append(r.readHeader(ts), key...))
	if err != nil {
		return kv.Value{}, err
	}
	d := decoder{buf: resp}
	r.noteApplied(d.u64())
	var v kv.Value
	if d.byte() == 1 {
		v = kv.Value{Exists: true, Version: kv.Timestamp(d.u64())}
		if d.err == nil {
			v.Data = append(make([]byte, 0, len(d.buf)), d.buf...)
		}
	} else if len(d.buf) > 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return kv.Value{}, fmt.Errorf("replication: bad get response: %w", d.err)
	}
	return v, nil
}

// Scan reads one chunk of the live keys in [start, end) at ts (end nil:
// unbounded), ascending, or descending when reverse is set: at most limit
// keys (128 when limit <= 0, never more than 1024), fewer once the chunk
// holds 1 MiB of keys and values, and at least one key when any is left.
// more reports that keys may remain past the last one returned; the next
// chunk starts after it (ascending: start = last key ‖ 0x00; descending:
// end = last key). Chunks at a snapshot's timestamp form one consistent
// view; chunks of a current read each see the newest versions when they
// are read.
func (r *Remote) Scan(ctx context.Context, start, end []byte, ts kv.Timestamp, reverse bool, limit int) ([]KV, bool, error) {
	if limit <= 0 {
		limit = scanChunkKeys
	}
	req := r.readHeader(ts)
	if reverse {
		req = append(req, 1)
	} else {
		req = append(req, 0)
	}
	req = binary.AppendUvarint(req, uint64(min(limit, maxScanKeys)))
	req = appendBytes(req, start)
	if end == nil {
		req = append(req, 0)
	} else {
		req = appendBytes(append(req, 1), end)
	}
	resp, err := r.request(ctx, true, 0, methodScan, req)
	if err != nil {
		return nil, false, err
	}
	d := decoder{buf: resp}
	r.noteApplied(d.u64())
	more := d.byte()
	n := d.count(10)
	out := make([]KV, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		k, v, ver := d.bytes(), d.bytes(), d.u64()
		out = append(out, KV{Key: k, Value: v, Version: kv.Timestamp(ver)})
	}
	if d.err == nil && (len(d.buf) > 0 || more > 1) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, false, fmt.Errorf("replication: bad scan response: %w", d.err)
	}
	return out, more == 1, nil
}

// Lock acquires key for owner in mode at the group's leader, waiting up to
// timeout for a conflicting holder, as Group.Lock does from a follower:
// the same errors (lock.ErrTimeout, lock.ErrDeadlock, lock.ErrAborted,
// ErrUnavailable), and deadlocks are found across this node's and the
// members' transactions. A current read (Get at kv.MaxTimestamp) that
// follows sees every commit made before the grant.
func (r *Remote) Lock(ctx context.Context, owner lock.TxnID, key []byte, mode lock.Mode, timeout time.Duration) error {
	if err := r.waitReleased(ctx, owner); err != nil {
		return err
	}
	req := encodeLock(string(r.n.cfg.ID), owner, mode, timeout, key)
	probe := emptyKeepalive(string(r.n.cfg.ID))
	return r.do(ctx, true, timeout, func(ctx context.Context, addr string) error {
		// The request may wait at the leader up to timeout; a leader gone
		// silent ends it sooner (Group.watchLeader).
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		silent := watchSilence(wctx, cancel, r.timeout/2, func(pctx context.Context) error {
			_, err := r.n.rpc.call(pctx, addr, r.group, methodKeepalive, 0, probe)
			return err
		})
		resp, err := r.call(wctx, addr, methodLock, req)
		if err != nil && silent() && ctx.Err() == nil {
			r.mu.Lock()
			if r.locks[owner] == nil {
				r.locks[owner] = map[string]bool{}
			}
			r.locks[owner][addr] = true
			r.mu.Unlock()
			r.forget(addr)
			return fmt.Errorf("%w: group %d: the leader at %s stopped answering", ErrUnavailable, r.group, addr)
		}
		// Any outcome but a refusal before the lock table may have
		// registered the owner there (a grant whose answer was lost, say):
		// ReleaseAll tells that leader too.
		var nl *NotLeaderError
		if !errors.Is(err, errNotSent) && !asNotLeader(err, &nl) {
			r.mu.Lock()
			if r.locks[owner] == nil {
				r.locks[owner] = map[string]bool{}
			}
			r.locks[owner][addr] = true
			r.mu.Unlock()
		}
		if err != nil {
			return err
		}
		if len(resp) != 8 {
			return fmt.Errorf("replication: bad lock response of %d bytes", len(resp))
		}
		r.noteApplied(binary.BigEndian.Uint64(resp))
		return nil
	})
}

// ReleaseAll drops every lock owner holds at the group, in the background
// as Group.ReleaseAll does: call it once the owner's commit is
// acknowledged. A later Lock of the same owner waits for these releases.
func (r *Remote) ReleaseAll(owner lock.TxnID) {
	r.mu.Lock()
	addrs := r.locks[owner]
	delete(r.locks, owner)
	if len(addrs) == 0 || r.stopped {
		r.mu.Unlock()
		return
	}
	w := r.pendingRelease[owner]
	if w == nil {
		w = &releaseWait{done: make(chan struct{})}
		r.pendingRelease[owner] = w
	}
	w.n += len(addrs)
	r.releasing.Add(len(addrs))
	r.mu.Unlock()
	for addr := range addrs {
		go func() {
			defer r.releasing.Done()
			defer func() {
				r.mu.Lock()
				if w.n--; w.n == 0 {
					delete(r.pendingRelease, owner)
					close(w.done)
				}
				r.mu.Unlock()
			}()
			ctx, cancel := context.WithTimeout(r.n.bgCtx, r.timeout)
			defer cancel()
			// A leader that is not told drops the locks itself: when it
			// stops leading, or once the lease runs out.
			_, err := r.call(ctx, addr, methodRelease, encodeOwner(string(r.n.cfg.ID), owner))
			if err != nil && !errors.Is(err, ErrNotLeader) && r.n.bgCtx.Err() == nil {
				r.n.logger.Debug("remote lock release failed", "group", r.group, "leader", addr, "error", err)
			}
		}()
	}
}

func (r *Remote) waitReleased(ctx context.Context, owner lock.TxnID) error {
	r.mu.Lock()
	w := r.pendingRelease[owner]
	r.mu.Unlock()
	if w == nil {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.n.closing:
		return ErrShutdown
	}
}

// Commit writes b through the group's leader, as a follower's commit is
// forwarded: on success the batch is on a quorum's log and applied on the
// leader, and every later request of this Remote is served from a state
// that holds it. Errors are Group.Commit's: a *kv.ConflictError,
// kv.ErrInvalidBatch, ErrUnavailable (nothing proposed), ErrOutcomeUnknown
// (sent, or proposed, and not confirmed), ErrRejected.
func (r *Remote) Commit(ctx context.Context, b *kv.Batch) (uint64, error) {
	if err := kv.ValidateBatch(b); err != nil {
		return 0, err
	}
	req := binary.BigEndian.AppendUint64(nil, remoteCommitter(r.n.cfg.ID, committerOf(ctx)))
	req = append(req, encodeBatch(b)...)
	var index uint64
	err := r.do(ctx, false, time.Second, func(ctx context.Context, addr string) error {
		resp, err := r.call(ctx, addr, methodCommit, req)
		if err != nil {
			return err
		}
		// A leader of an older build reports nothing of its quorum; the
		// handle does not know the group's voters to work it out.
		var wan uint64
		index, wan, _, err = decodeCommitResponse(resp)
		r.n.countWAN(ctx, wan)
		return err
	})
	if err != nil {
		return 0, err
	}
	r.noteApplied(index)
	return index, nil
}

// keepalive renews, at the group's leader, the locks and snapshots this
// node's transactions hold there, every NodeConfig.KeepaliveInterval.
func (r *Remote) keepalive() {
	defer r.n.bg.Done()
	every := r.n.cfg.keepaliveInterval()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.n.closing:
			return
		}
		req, ok := r.keepaliveRequest()
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(r.n.bgCtx, every)
		_, err := r.request(ctx, true, 0, methodKeepalive, req)
		cancel()
		if err != nil && r.n.bgCtx.Err() == nil {
			r.n.logger.Debug("remote keepalive failed", "group", r.group, "error", err)
		}
	}
}

// keepaliveRequest: node ‖ uvarint n ‖ n × owner ‖ uvarint m ‖ m × (owner ‖ ts)
func (r *Remote) keepaliveRequest() ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.locks) == 0 && len(r.snaps) == 0 {
		return nil, false
	}
	b := appendBytes(nil, []byte(r.n.cfg.ID))
	b = binary.AppendUvarint(b, uint64(len(r.locks)))
	for owner := range r.locks {
		b = binary.BigEndian.AppendUint64(b, uint64(owner))
	}
	b = binary.AppendUvarint(b, uint64(len(r.snaps)))
	for owner, ts := range r.snaps {
		b = binary.BigEndian.AppendUint64(b, uint64(owner))
		b = binary.BigEndian.AppendUint64(b, uint64(ts))
	}
	return b, true
}

// Call runs a handler registered with Group.Handle on the group's leader
// (method FirstUserMethod and up), as Group.Call does for a member: the
// SQL layer's sequences of a table placed at another site are kept there.
// It is not retried once sent: a handler that changes state may have run.
func (r *Remote) Call(ctx context.Context, m Method, req []byte) ([]byte, error) {
	if m < FirstUserMethod {
		return nil, fmt.Errorf("%w %d: not a method a remote caller may run", errNoMethod, m)
	}
	return r.request(ctx, false, 0, m, req)
}
