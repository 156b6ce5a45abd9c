package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Handler serves a request of a package above at the leader. It runs only
// on the leader, after the leader has applied everything the caller had.
type Handler func(ctx context.Context, req []byte) ([]byte, error)

// Handle registers h for method m (FirstUserMethod or above).
func (g *Group) Handle(m Method, h Handler) {
	if m < FirstUserMethod {
		panic(fmt.Sprintf("replication: method %d is reserved", m))
	}
	g.handlersMu.Lock()
	defer g.handlersMu.Unlock()
	g.handlers[m] = h
}

func (g *Group) handler(m Method) Handler {
	g.handlersMu.RLock()
	defer g.handlersMu.RUnlock()
	return g.handlers[m]
}

// Call runs method m at the leader with req: here if this node leads,
// otherwise forwarded. The request may run more than once (a retry after a
// lost connection), so handlers must tolerate that.
func (g *Group) Call(ctx context.Context, m Method, req []byte) ([]byte, error) {
	var resp []byte
	err := g.toLeader(ctx, true, func(ctx context.Context) error {
		h := g.handler(m)
		if h == nil {
			return fmt.Errorf("%w %d", errNoMethod, m)
		}
		var err error
		resp, err = h(ctx, req)
		return err
	}, func(ctx context.Context, addr string) error {
		var err error
		resp, err = g.node.rpc.call(ctx, addr, g.id, m, g.fsm.Applied(), req)
		return err
	})
	return resp, err
}

// retryPause is how long toLeader waits before asking again for a leader.
const retryPause = 20 * time.Millisecond

// toLeader runs local when this node leads and remote(addr) otherwise,
// following leader changes. It gives up with ErrUnavailable once Timeout has
// passed without reaching a leader. A request whose connection broke after
// it was sent is retried only when idempotent.
func (g *Group) toLeader(ctx context.Context, idempotent bool,
	local func(context.Context) error, remote func(context.Context, string) error) error {
	deadline := time.Now().Add(g.cfg.Timeout)
	var last error
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-g.stop:
			return ErrShutdown
		default:
		}
		var err error
		if g.raft.State() == raft.Leader {
			err = local(ctx)
		} else if addr, _ := g.raft.LeaderWithID(); addr != "" && g.node != nil {
			err = remote(ctx, string(addr))
			if err != nil && !idempotent && isTransportErr(err) && !errors.Is(err, errNotSent) && ctx.Err() == nil {
				return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
			}
		} else if g.node == nil {
			return g.notLeader()
		} else {
			err = g.notLeader()
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrNotLeader), errors.Is(err, errNotSent), idempotent && isTransportErr(err):
			last = err
		default:
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: no leader reachable within %s: %v", ErrUnavailable, g.cfg.Timeout, last)
		}
		t := time.NewTimer(retryPause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-g.stop:
			t.Stop()
			return ErrShutdown
		}
	}
}

// isTransportErr tells a broken conversation from an answer.
func isTransportErr(err error) bool { return errors.Is(err, errTransport) }

// ReadIndex returns an index such that every commit acknowledged to anyone
// before the call is at or below it. Only the leader can say; a follower
// asks it.
func (g *Group) ReadIndex(ctx context.Context) (uint64, error) {
	var index uint64
	err := g.toLeader(ctx, true, func(ctx context.Context) error {
		var err error
		index, err = g.leaderReadIndex(ctx)
		return err
	}, func(ctx context.Context, addr string) error {
		cctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
		defer cancel()
		resp, err := g.node.rpc.call(cctx, addr, g.id, methodReadIndex, g.fsm.Applied(), []byte{readIndexReportWAN})
		if err != nil {
			if cctx.Err() != nil && ctx.Err() == nil {
				// A leader gone silent: the caller hears "unavailable",
				// not the bare deadline (which reached clients as 1105).
				return fmt.Errorf("%w: no answer from the leader at %s within %s", ErrUnavailable, addr, g.cfg.Timeout)
			}
			return err
		}
		var wan uint64
		index, wan, err = decodeReadIndex(resp)
		if err != nil {
			return err
		}
		if len(resp) == 8 {
			// A leader of an older build does not report its part.
			wan = g.leaderQuorumWAN(addr)
		}
		g.node.countWAN(ctx, wan)
		return nil
	})
	return index, err
}

// readIndexReportWAN, the first byte of a read index request, asks the
// leader to append the round trips to other sites it waited for (a
// uvarint after the index). Builds before it send an empty request and
// read an answer of exactly 8 bytes; older leaders ignore the byte.
const readIndexReportWAN = 1

func decodeReadIndex(resp []byte) (index, wan uint64, err error) {
	if len(resp) < 8 {
		return 0, 0, fmt.Errorf("replication: bad read-index response of %d bytes", len(resp))
	}
	index = binary.BigEndian.Uint64(resp)
	if len(resp) == 8 {
		return index, 0, nil
	}
	d := decoder{buf: resp[8:]}
	wan = d.uvarint()
	if d.err == nil && len(d.buf) > 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return 0, 0, fmt.Errorf("replication: bad read-index response: %w", d.err)
	}
	return index, wan, nil
}

// TermBarrier returns once this node, as leader, has applied every entry of
// earlier terms. Until then its state may lack commits an earlier leader
// acknowledged, so nothing a leader hands out from its state (locks,
// sequence values, read indexes) may be served before it. On a node that
// is not the leader it fails with the leader's address.
func (g *Group) TermBarrier(ctx context.Context) error {
	if g.readyTerm.Load() == g.raft.CurrentTerm() {
		return nil
	}
	g.proposeMu.Lock()
	err := g.readyLocked(ctx)
	g.proposeMu.Unlock()
	if err != nil {
		return g.leaderErr(err)
	}
	return nil
}

// leaderReadIndex: every entry of earlier terms is applied here (the term's
// barrier), so everything acknowledged so far is at or below the applied
// index read now; confirming leadership afterwards proves no other leader
// could have acknowledged more meanwhile. The confirmation counts on ctx as
// a round trip between sites when the leader's site holds no majority of
// the voters.
func (g *Group) leaderReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	if err := g.TermBarrier(ctx); err != nil {
		return 0, err
	}
	index := g.fsm.Applied()
	if g.soleVoter() {
		// No other node can lead without this one's vote, and this one
		// leads: nothing can have been acknowledged elsewhere.
		return index, nil
	}
	err := g.verifyLeader(ctx)
	if ctx.Err() == nil {
		// The round ran, whatever it found: the caller waited for it.
		g.node.countWAN(ctx, g.quorumWAN())
	}
	if err != nil {
		return 0, g.leaderErr(err)
	}
	return index, nil
}

// soleVoter reports whether this node is the configuration's only voter
// and leads (a single-node cluster, possibly with non-voters).
func (g *Group) soleVoter() bool {
	cf := g.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	voters := 0
	self := false
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
			self = self || s.ID == g.cfg.ID
		}
	}
	return voters == 1 && self && g.raft.State() == raft.Leader
}

// verifyLeader confirms leadership with a round of heartbeats that starts
// after the call. Concurrent callers share rounds: each round answers every
// caller registered before it began, so under load a read barrier costs a
// fraction of a round trip to the followers, not one each.
func (g *Group) verifyLeader(ctx context.Context) error {
	ch := make(chan error, 1)
	g.verifyMu.Lock()
	g.verifyWaiting = append(g.verifyWaiting, ch)
	if !g.verifyRunning {
		g.verifyRunning = true
		go g.runVerify()
	}
	g.verifyMu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Group) runVerify() {
	for {
		g.verifyMu.Lock()
		batch := g.verifyWaiting
		g.verifyWaiting = nil
		if len(batch) == 0 {
			g.verifyRunning = false
			g.verifyMu.Unlock()
			return
		}
		g.verifyMu.Unlock()
		// A leader cut off from its followers steps down within the lease
		// timeout, which fails the round; callers give up earlier on their
		// own deadlines.
		err := g.raft.VerifyLeader().Error()
		for _, ch := range batch {
			ch <- err
		}
	}
}

// leaderErr maps raft's failures of a leader-only operation.
func (g *Group) leaderErr(err error) error {
	switch {
	case errors.Is(err, ErrNotLeader), errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return g.notLeader()
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	default:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}

// ReadBarrier returns once this node has applied every commit acknowledged
// before the call, so reads that follow are linearizable.
func (g *Group) ReadBarrier(ctx context.Context) error {
	if g.cfg.UnsafeStaleReads {
		return nil
	}
	return g.CatchUp(ctx)
}

// CatchUp is ReadBarrier without the testing knob: a node starting up uses
// it to have the cluster's catalog and users before it serves.
func (g *Group) CatchUp(ctx context.Context) error {
	index, err := g.ReadIndex(ctx)
	if err != nil {
		return err
	}
	return g.waitApplied(ctx, index)
}

// serveRPC answers a request from another node.
func (g *Group) serveRPC(ctx context.Context, m Method, callerApplied uint64, payload []byte) ([]byte, error) {
	if m == methodVersion {
		return encodeVersion(g.advertised(), g.cfg.Build), nil
	}
	if g.raft.State() != raft.Leader {
		return nil, g.notLeader()
	}
	// The caller may have applied entries this leader has committed but not
	// yet applied; serving it from an older state would take it back in
	// time.
	if err := g.waitApplied(ctx, callerApplied); err != nil {
		return nil, err
	}
	switch m {
	case methodCommit:
		if len(payload) < 8 {
			return nil, fmt.Errorf("%w: short commit request", ErrBadCommand)
		}
		b, err := decodeBatch(payload[8:])
		if err != nil {
			return nil, err
		}
		if who := binary.BigEndian.Uint64(payload); who != 0 {
			ctx = WithCommitter(ctx, who)
		}
		// The caller counts what the commit waited for here, from the
		// answer.
		var spent CallCounts
		index, err := g.leaderCommit(spending(ctx, &spent), b)
		return encodeCommitResponse(index, spent.WAN.Load(), err)
	case methodReadIndex:
		var spent CallCounts
		index, err := g.leaderReadIndex(spending(ctx, &spent))
		if err != nil {
			return nil, err
		}
		resp := binary.BigEndian.AppendUint64(nil, index)
		if len(payload) > 0 && payload[0]&readIndexReportWAN != 0 {
			resp = binary.AppendUvarint(resp, spent.WAN.Load())
		}
		return resp, nil
	case methodLock:
		return g.locks.serveLock(ctx, payload)
	case methodLockAll:
		return g.locks.serveLockAll(ctx, payload)
	case methodLockCommit:
		return g.locks.serveLockCommit(ctx, payload)
	case methodRelease:
		return nil, g.locks.serveRelease(payload)
	case methodKeepalive:
		return nil, g.locks.serveKeepalive(payload)
	case methodJoin:
		return nil, g.serveJoin(ctx, payload)
	case methodRemove:
		return nil, g.serveRemove(ctx, payload)
	case methodSnapshot:
		return g.serveSnapshot(ctx, payload)
	case methodReleaseSnapshot:
		return nil, g.serveReleaseSnapshot(payload)
	case methodGet:
		return g.serveGet(ctx, payload)
	case methodScan:
		return g.serveScan(ctx, payload)
	}
	h := g.handler(m)
	if h == nil {
		return nil, fmt.Errorf("%w %d", errNoMethod, m)
	}
	return h(ctx, payload)
}
