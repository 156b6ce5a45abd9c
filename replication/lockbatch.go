package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
)

// LockRequest is one lock of a batch: key in mode.
type LockRequest struct {
	Key  []byte
	Mode lock.Mode
}

// LockAll is Lock of several keys, taken in the order given, in one
// request to the leader: a statement that locks a table's metadata and a
// row through a leader at another site waits one round trip, not two. On
// an error the locks granted before it stay held, as if taken one by one;
// the owner's ReleaseAll drops them.
func (g *Group) LockAll(ctx context.Context, owner lock.TxnID, reqs []LockRequest, timeout time.Duration) error {
	switch len(reqs) {
	case 0:
		return nil
	case 1:
		return g.Lock(ctx, owner, reqs[0].Key, reqs[0].Mode, timeout)
	}
	l := g.locks
	if err := l.waitReleased(ctx, owner); err != nil {
		return err
	}
	st := l.owner(owner)
	var index uint64
	err := g.toLeader(ctx, true, func(ctx context.Context) error {
		return l.acquireLocal(ctx, st, owner, reqs, timeout)
	}, func(ctx context.Context, addr string) error {
		l.noteRemote(st, addr)
		cctx, cancel := context.WithTimeout(ctx, batchWait(len(reqs), timeout)+g.cfg.Timeout)
		defer cancel()
		silent := g.watchLeader(cctx, cancel, addr)
		resp, err := g.node.rpc.call(cctx, addr, g.id, methodLockAll, g.fsm.Applied(), encodeLockAll(string(g.cfg.ID), owner, timeout, reqs))
		if err != nil && silent() && ctx.Err() == nil {
			return fmt.Errorf("%w: the leader at %s stopped answering", ErrUnavailable, addr)
		}
		if errors.Is(err, errNoMethod) {
			// A leader of an older build: one request per lock.
			for _, r := range reqs {
				if err := g.Lock(ctx, owner, r.Key, r.Mode, timeout); err != nil {
					return err
				}
			}
			return nil
		}
		if err != nil {
			if cctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("%w: lock request unanswered", ErrUnavailable)
			}
			return err
		}
		if len(resp) != 8 {
			return fmt.Errorf("replication: bad lock response of %d bytes", len(resp))
		}
		index = binary.BigEndian.Uint64(resp)
		l.granted(st, len(reqs))
		return nil
	})
	if err != nil {
		return err
	}
	return g.waitApplied(ctx, index)
}

// CommitLocked takes owner's locks reqs at the leader, in order, and then
// commits b, in one request: an autocommit statement whose locks need not
// be held before its commit (nothing it returns depends on what they
// guard, which b's preconditions check) waits for one round trip to a
// leader at another site instead of one per lock request and one for the
// commit. A lock that cannot be granted fails the call as Lock does, with
// nothing proposed; otherwise it fails as Commit does. The locks stay held
// until the owner's ReleaseAll, whatever the outcome.
func (g *Group) CommitLocked(ctx context.Context, owner lock.TxnID, reqs []LockRequest, timeout time.Duration, b *kv.Batch) (uint64, error) {
	if len(reqs) == 0 {
		return g.Commit(ctx, b)
	}
	if err := kv.ValidateBatch(b); err != nil {
		return 0, err
	}
	l := g.locks
	if err := l.waitReleased(ctx, owner); err != nil {
		return 0, err
	}
	st := l.owner(owner)
	var index uint64
	old := false
	err := g.toLeader(ctx, false, func(ctx context.Context) error {
		if err := l.acquireLocal(ctx, st, owner, reqs, timeout); err != nil {
			return err
		}
		var err error
		index, err = g.leaderCommit(ctx, b)
		return err
	}, func(ctx context.Context, addr string) error {
		l.noteRemote(st, addr)
		cctx, cancel := context.WithTimeout(ctx, batchWait(len(reqs), timeout)+g.cfg.Timeout+time.Second)
		defer cancel()
		silent := g.watchLeader(cctx, cancel, addr)
		req := encodeLockAll(string(g.cfg.ID), owner, timeout, reqs)
		req = binary.BigEndian.AppendUint64(req, remoteCommitter(g.cfg.ID, committerOf(ctx)))
		resp, err := g.node.rpc.call(cctx, addr, g.id, methodLockCommit, g.fsm.Applied(), append(req, encodeBatch(b)...))
		if err != nil {
			switch {
			case silent() && ctx.Err() == nil && !errors.Is(err, errNotSent):
				// The request may have reached the leader before it fell
				// silent: its commit may be proposed.
				return fmt.Errorf("%w: the leader at %s stopped answering after the commit was sent", ErrOutcomeUnknown, addr)
			case silent() && ctx.Err() == nil:
				return fmt.Errorf("%w: the leader at %s stopped answering", ErrUnavailable, addr)
			case errors.Is(err, errNoMethod):
				old = true
				return nil
			case errors.Is(err, errNotSent), !gaveUp(cctx, err):
				return err
			case ctx.Err() == nil:
				return fmt.Errorf("%w: no answer from the leader within %s", ErrOutcomeUnknown, batchWait(len(reqs), timeout)+g.cfg.Timeout)
			default:
				return fmt.Errorf("%w: the caller gave up after the commit was sent: %w", ErrOutcomeUnknown, err)
			}
		}
		l.granted(st, len(reqs))
		var wan uint64
		var reported bool
		index, wan, reported, err = decodeCommitResponse(resp)
		if !reported {
			wan = g.leaderQuorumWAN(addr)
		}
		g.node.countWAN(ctx, wan)
		return err
	})
	if old {
		// A leader of an older build: the locks, then the commit.
		if err := g.LockAll(ctx, owner, reqs, timeout); err != nil {
			return 0, err
		}
		return g.Commit(ctx, b)
	}
	if err != nil {
		return 0, err
	}
	if err := g.waitApplied(ctx, index); err != nil {
		return 0, fmt.Errorf("%w: committed at %d but not applied here: %w", ErrOutcomeUnknown, index, err)
	}
	return index, nil
}

// batchWait is how long the leader may keep a batch of n locks waiting:
// each lock waits up to timeout on its own, as it would requested alone
// (InnoDB bounds each wait, not a statement's sum of them).
func batchWait(n int, timeout time.Duration) time.Duration {
	return time.Duration(max(n, 1)) * timeout
}

// acquireLocal takes reqs in this node's lock table, as leader.
func (l *lockService) acquireLocal(ctx context.Context, st *ownerState, owner lock.TxnID, reqs []LockRequest, timeout time.Duration) error {
	t, err := l.leaderTable(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if st.local != nil && st.local != t {
		// This node led before with another table: those locks are gone
		// already; forget them.
		st.local.ReleaseAll(owner)
	}
	st.local = t
	l.mu.Unlock()
	for _, r := range reqs {
		if err := t.Acquire(ctx, owner, r.Key, r.Mode, timeout); err != nil {
			return err
		}
		l.granted(st, 1)
	}
	return nil
}

// noteRemote records that owner may hold locks at the leader at addr
// before a request there is sent, so that ReleaseAll tells it even when
// the answer is lost.
func (l *lockService) noteRemote(st *ownerState, addr string) {
	l.mu.Lock()
	if st.remote == nil {
		st.remote = map[string]bool{}
	}
	st.remote[addr] = true
	l.mu.Unlock()
}

func (l *lockService) granted(st *ownerState, n int) {
	l.mu.Lock()
	st.n += n
	l.mu.Unlock()
}

// lock-all request: uvarint len ‖ node ‖ u64 owner ‖ u64 timeout (ns) ‖
// uvarint count ‖ (u8 mode ‖ uvarint len ‖ key)…; a lock-and-commit request
// follows it with u64 committer ‖ batch.
func encodeLockAll(node string, owner lock.TxnID, timeout time.Duration, reqs []LockRequest) []byte {
	b := appendBytes(nil, []byte(node))
	b = binary.BigEndian.AppendUint64(b, uint64(owner))
	b = binary.BigEndian.AppendUint64(b, uint64(timeout))
	b = binary.AppendUvarint(b, uint64(len(reqs)))
	for _, r := range reqs {
		b = append(b, byte(r.Mode))
		b = appendBytes(b, r.Key)
	}
	return b
}

func decodeLockAll(d *decoder) (node string, owner lock.TxnID, timeout time.Duration, reqs []LockRequest) {
	node = string(d.bytes())
	owner = lock.TxnID(d.u64())
	timeout = time.Duration(d.u64())
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		mode := lock.Mode(d.byte())
		reqs = append(reqs, LockRequest{Key: d.bytes(), Mode: mode})
	}
	return node, owner, timeout, reqs
}

// serveLockAll grants a batch of another node's locks, in order.
func (l *lockService) serveLockAll(ctx context.Context, payload []byte) ([]byte, error) {
	d := decoder{buf: payload}
	node, owner, timeout, reqs := decodeLockAll(&d)
	if d.err == nil && len(d.buf) > 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("replication: bad lock request: %w", d.err)
	}
	if err := l.acquireRemote(ctx, node, owner, timeout, reqs); err != nil {
		return nil, err
	}
	// Read only now: the applied index after the term's barrier and after
	// the previous holders' commits.
	return binary.BigEndian.AppendUint64(nil, l.g.fsm.Applied()), nil
}

// serveLockCommit grants a batch of another node's locks and then commits
// its batch.
func (l *lockService) serveLockCommit(ctx context.Context, payload []byte) ([]byte, error) {
	d := decoder{buf: payload}
	node, owner, timeout, reqs := decodeLockAll(&d)
	who := d.u64()
	if d.err != nil {
		return nil, fmt.Errorf("%w: bad lock-and-commit request: %v", ErrBadCommand, d.err)
	}
	b, err := decodeBatch(d.buf)
	if err != nil {
		return nil, err
	}
	if err := l.acquireRemote(ctx, node, owner, timeout, reqs); err != nil {
		return nil, err
	}
	if who != 0 {
		ctx = WithCommitter(ctx, who)
	}
	var spent CallCounts
	index, err := l.g.leaderCommit(spending(ctx, &spent), b)
	return encodeCommitResponse(index, spent.WAN.Load(), err)
}

func (l *lockService) acquireRemote(ctx context.Context, node string, owner lock.TxnID, timeout time.Duration, reqs []LockRequest) error {
	t, err := l.leaderTable(ctx)
	if err != nil {
		return err
	}
	ro := l.remoteOwnerOf(node, owner)
	for _, r := range reqs {
		if err := t.Acquire(ctx, ro.id, r.Key, r.Mode, timeout); err != nil {
			return err
		}
		if !l.stillRemote(node, owner, ro) {
			// The owner's release arrived while this batch waited (its
			// node gave up on the request): what was granted since would
			// belong to an ID nobody releases or expires.
			t.ReleaseAll(ro.id)
			return lock.ErrAborted
		}
	}
	return nil
}
