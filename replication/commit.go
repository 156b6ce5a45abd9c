package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/kv"
)

// maxProposalBatches caps how many commits share one log entry.
const maxProposalBatches = 1024

type proposal struct {
	b   *kv.Batch
	who uint64              // the committer (see WithCommitter); 0 when unknown
	res chan proposalResult // buffered: the proposer never blocks on it
}

type committerKey struct{}

// WithCommitter tags the commits made with ctx as coming from one client
// (a session), so the group commit knows how many clients are committing
// and can wait for them (see linger). who must not be 0.
func WithCommitter(ctx context.Context, who uint64) context.Context {
	return context.WithValue(ctx, committerKey{}, who)
}

func committerOf(ctx context.Context) uint64 {
	who, _ := ctx.Value(committerKey{}).(uint64)
	return who
}

// activeWindow is how long a committer counts as active after its last
// commit.
const activeWindow = 100 * time.Millisecond

type proposalResult struct {
	index uint64
	err   error
	// wan is the round trips to other sites the commit waited for at the
	// leader: its entry's quorum, and a term's barrier that ran before it.
	wan uint64
}

// groupStats count the group-commit effect, for tests and metrics.
type groupStats struct {
	commits atomic.Uint64 // batches acknowledged as written
	entries atomic.Uint64 // log entries the proposer wrote
}

// countingLogStore counts the writes that reach raft's log file; each is one
// bbolt transaction and so one fsync.
type countingLogStore struct {
	raft.LogStore
	writes atomic.Uint64
}

func (s *countingLogStore) StoreLog(l *raft.Log) error {
	s.writes.Add(1)
	return s.LogStore.StoreLog(l)
}

func (s *countingLogStore) StoreLogs(ls []*raft.Log) error {
	s.writes.Add(1)
	return s.LogStore.StoreLogs(ls)
}

func (s *countingLogStore) DeleteRange(min, max uint64) error {
	s.writes.Add(1)
	return s.LogStore.DeleteRange(min, max)
}

// runProposer turns queued commits into log entries. While MaxInflight
// entries are on their way, new commits queue; the next entry takes all of
// them, so under load many commits share one entry, one log fsync and one
// state-file fsync on every replica.
func (g *Group) runProposer() {
	defer g.bg.Done()
	// active holds, for each client that committed lately, when it last
	// committed and how often it does: which commits an entry can wait for.
	active := map[uint64]*committer{}
	for {
		var first *proposal
		select {
		case first = <-g.propCh:
		case <-g.stop:
			return
		}
		select {
		case g.inflight <- struct{}{}:
		case <-g.stop:
			first.res <- proposalResult{err: ErrShutdown}
			return
		}
		ps := []*proposal{first}
	drain:
		for len(ps) < maxProposalBatches {
			select {
			case p := <-g.propCh:
				ps = append(ps, p)
			default:
				break drain
			}
		}
		ps = g.linger(ps, active)
		batches := make([]*kv.Batch, len(ps))
		for i, p := range ps {
			batches[i] = p.b
		}
		// What the entry costs in round trips between sites is each
		// commit's: spent collects it (a term's barrier), for finish to
		// hand to every commit of the entry.
		var spent CallCounts
		ctx, cancel := context.WithTimeout(spending(context.Background(), &spent), g.cfg.Timeout)
		fut, err := g.enqueue(ctx, batches)
		cancel()
		if err != nil {
			<-g.inflight
			if !errors.Is(err, ErrNotLeader) {
				err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			for _, p := range ps {
				p.res <- proposalResult{err: err, wan: spent.WAN.Load()}
			}
			continue
		}
		g.stats.entries.Add(1)
		go g.finish(fut, ps, spent.WAN.Load()+g.quorumWAN())
	}
}

// committer is what the proposer knows of one client's commits.
type committer struct {
	last time.Time     // its latest commit's arrival
	gap  time.Duration // smoothed time between its commits
}

// due reports whether the client's next commit is expected by t.
func (c *committer) due(t time.Time) bool {
	return c.gap > 0 && !c.last.Add(c.gap).After(t)
}

// linger lets an entry wait for the commits of other clients that are due
// soon. Under load, the clients whose commits were in the last entry come
// back a little apart; without waiting, the first one back goes alone while
// the others queue behind it, and the clients settle into cohorts that
// alternate, each paying its own fsyncs. The proposer remembers, for each
// client that committed within activeWindow, when it last committed and how
// often it commits, and waits only for those whose next commit is due within
// CommitLinger: never for a lone client, nor for clients busy with long
// transactions. An entry waits a quarter of CommitLinger while it holds one
// client's commits and up to CommitLinger once it holds several, extended by
// a quarter of it at each arrival, never beyond twice CommitLinger.
func (g *Group) linger(ps []*proposal, active map[uint64]*committer) []*proposal {
	start := time.Now()
	in := map[uint64]bool{}
	note := func(p *proposal) {
		if p.who == 0 || in[p.who] {
			return
		}
		in[p.who] = true
		now := time.Now()
		c := active[p.who]
		if c == nil {
			active[p.who] = &committer{last: now}
			return
		}
		if d := now.Sub(c.last); c.gap == 0 {
			c.gap = d
		} else {
			c.gap = (c.gap + d) / 2
		}
		c.last = now
	}
	for _, p := range ps {
		note(p)
	}
	for who, c := range active {
		if start.Sub(c.last) > activeWindow {
			delete(active, who)
		}
	}
	linger := g.cfg.CommitLinger
	if linger <= 0 {
		return ps
	}
	horizon := start.Add(linger)
	missing := func() int {
		n := 0
		for who, c := range active {
			if !in[who] && c.due(horizon) {
				n++
			}
		}
		return n
	}
	if missing() == 0 {
		return ps
	}
	deadline := start.Add(linger / 4)
	if len(in) >= 2 {
		deadline = start.Add(linger)
	}
	limit := start.Add(2 * linger)
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for missing() > 0 && len(ps) < maxProposalBatches {
		select {
		case p := <-g.propCh:
			ps = append(ps, p)
			note(p)
			next := time.Now().Add(linger / 4)
			if len(in) >= 2 && start.Add(linger).After(next) {
				next = start.Add(linger)
			}
			if next.After(limit) {
				next = limit
			}
			if next.After(deadline) {
				deadline = next
				if !t.Stop() {
					<-t.C
				}
				t.Reset(time.Until(deadline))
			}
		case <-t.C:
			return ps
		case <-g.stop:
			return ps
		}
	}
	return ps
}

// finish hands each commit of an entry its outcome, and the round trips
// between sites the entry waited for.
func (g *Group) finish(fut raft.ApplyFuture, ps []*proposal, wan uint64) {
	err := fut.Error()
	<-g.inflight
	if err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			// The leader loop refused the entry before writing it.
			err = g.notLeader()
		default:
			err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		for _, p := range ps {
			p.res <- proposalResult{err: err, wan: wan}
		}
		return
	}
	res, ok := fut.Response().(*ApplyResult)
	switch {
	case !ok:
		err = fmt.Errorf("replication: unexpected apply response %T", fut.Response())
	case res.Err != nil:
		err = res.Err
	case len(res.Errs) != len(ps):
		// A replayed entry has no per-batch results; a fresh proposal is
		// never one.
		err = fmt.Errorf("%w: entry %d returned %d results for %d commits", ErrOutcomeUnknown, res.Index, len(res.Errs), len(ps))
	}
	if err != nil {
		for _, p := range ps {
			p.res <- proposalResult{err: err, wan: wan}
		}
		return
	}
	for i, p := range ps {
		if res.Errs[i] == nil {
			g.stats.commits.Add(1)
		}
		p.res <- proposalResult{index: res.Index, err: res.Errs[i], wan: wan}
	}
}

// leaderCommit proposes b through the local proposer and waits, at most
// Timeout, for its outcome. The round trips between sites its entry waited
// for count on ctx.
func (g *Group) leaderCommit(ctx context.Context, b *kv.Batch) (uint64, error) {
	// A batch that can never be written is refused here, before it shares
	// an entry: the FSM would fail it alone anyway, but only after a round
	// through the log.
	if err := kv.ValidateBatch(b); err != nil {
		return 0, err
	}
	p := &proposal{b: b, who: committerOf(ctx), res: make(chan proposalResult, 1)}
	select {
	case g.propCh <- p:
	case <-g.stop:
		return 0, ErrShutdown
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	t := time.NewTimer(g.cfg.Timeout)
	defer t.Stop()
	select {
	case r := <-p.res:
		g.node.countWAN(ctx, r.wan)
		return r.index, r.err
	case <-t.C:
		return 0, fmt.Errorf("%w: not confirmed within %s", ErrOutcomeUnknown, g.cfg.Timeout)
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	}
}

// Commit writes b through the group: on the leader directly, from a
// follower by forwarding it. On success the batch is on a quorum's log and
// applied on this node, so this node's next read sees it.
//
// Errors: a *kv.ConflictError (a precondition failed; nothing written),
// kv.ErrInvalidBatch (the batch can never be written, an oversized key say;
// nothing proposed), ErrUnavailable (nothing proposed), ErrOutcomeUnknown
// (proposed, not confirmed within Timeout), ErrRejected, ErrShutdown.
func (g *Group) Commit(ctx context.Context, b *kv.Batch) (uint64, error) {
	if err := kv.ValidateBatch(b); err != nil {
		return 0, err
	}
	var index uint64
	err := g.toLeader(ctx, false, func(ctx context.Context) error {
		var err error
		index, err = g.leaderCommit(ctx, b)
		return err
	}, func(ctx context.Context, addr string) error {
		cctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout+time.Second)
		defer cancel()
		req := binary.BigEndian.AppendUint64(nil, remoteCommitter(g.cfg.ID, committerOf(ctx)))
		resp, err := g.node.rpc.call(cctx, addr, g.id, methodCommit, g.fsm.Applied(), append(req, encodeBatch(b)...))
		if err != nil {
			switch {
			case errors.Is(err, errNotSent), !gaveUp(cctx, err):
				return err
			case ctx.Err() == nil:
				return fmt.Errorf("%w: no answer from the leader within %s", ErrOutcomeUnknown, g.cfg.Timeout)
			default:
				// The leader may have proposed it already: its outcome
				// no longer depends on this caller.
				return fmt.Errorf("%w: the caller gave up after the commit was sent: %w", ErrOutcomeUnknown, err)
			}
		}
		var wan uint64
		var reported bool
		index, wan, reported, err = decodeCommitResponse(resp)
		if !reported {
			wan = g.leaderQuorumWAN(addr)
		}
		g.node.countWAN(ctx, wan)
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := g.waitApplied(ctx, index); err != nil {
		// Committed, but this node cannot show it yet: the client must not
		// be told it failed, nor that it may read it here.
		return 0, fmt.Errorf("%w: committed at %d but not applied here: %w", ErrOutcomeUnknown, index, err)
	}
	return index, nil
}

// gaveUp reports whether an RPC made with ctx failed because ctx ended
// (the caller cancelled, or the deadline passed), not with an answer.
func gaveUp(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, context.Cause(ctx))
}

// waitApplied waits, at most Timeout, until this node has applied index.
func (g *Group) waitApplied(ctx context.Context, index uint64) error {
	if g.fsm.Applied() >= index {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	if err := g.fsm.WaitApplied(wctx, index); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: this node did not catch up to index %d within %s", ErrUnavailable, index, g.cfg.Timeout)
	}
	return nil
}

func encodeBatch(b *kv.Batch) []byte {
	data, err := EncodeCommit(Commit{Batches: []*kv.Batch{b}, TS: []kv.Timestamp{0}})
	if err != nil {
		// EncodeCommit fails only on mismatched slices, impossible here.
		panic(err)
	}
	return data
}

func decodeBatch(data []byte) (*kv.Batch, error) {
	t, payload, err := DecodeCommand(data)
	if err != nil {
		return nil, err
	}
	if t != CommandCommit {
		return nil, fmt.Errorf("%w: forwarded command of type %d", ErrBadCommand, t)
	}
	c, err := DecodeCommit(payload)
	if err != nil {
		return nil, err
	}
	if len(c.Batches) != 1 {
		return nil, fmt.Errorf("%w: forwarded commit holds %d batches", ErrBadCommand, len(c.Batches))
	}
	return c.Batches[0], nil
}

// commit response: u64 index ‖ u8 conflict ‖ (conflict: uvarint
// precondition index ‖ key) ‖ uvarint WAN round trips. The last field is
// the round trips to other sites the leader waited for; builds before it
// stop short, and their decoder ignores what follows.
func encodeCommitResponse(index uint64, wan uint64, err error) ([]byte, error) {
	var ce *kv.ConflictError
	if err != nil && !errors.As(err, &ce) {
		return nil, err
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 32), index)
	if ce == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(ce.Index))
		b = appendBytes(b, ce.Key)
	}
	return binary.AppendUvarint(b, wan), nil
}

// decodeCommitResponse returns the commit's index or its conflict, and the
// leader's round trips to other sites when it reported them.
func decodeCommitResponse(b []byte) (index, wan uint64, reported bool, err error) {
	d := decoder{buf: b}
	index = d.u64()
	conflict := d.byte()
	var ce *kv.ConflictError
	if d.err == nil && conflict == 1 {
		ce = &kv.ConflictError{Index: int(d.uvarint()), Key: d.bytes()}
	}
	if d.err == nil && len(d.buf) > 0 {
		wan, reported = d.uvarint(), true
	}
	if d.err != nil {
		return 0, 0, false, fmt.Errorf("replication: bad commit response: %w", d.err)
	}
	if ce != nil {
		return 0, wan, reported, ce
	}
	return index, wan, reported, nil
}

// remoteCommitter names a committer of another node uniquely enough for
// counting clients: the node's ID mixed into the session's.
func remoteCommitter(node raft.ServerID, who uint64) uint64 {
	if who == 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(node))
	return h.Sum64() ^ who | 1
}
