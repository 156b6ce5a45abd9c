package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/fogdb/fogdb/kv"
)

// logCacheSize keeps the newest entries in memory, so replicating to
// followers that are keeping up does not read raft.db.
const logCacheSize = 512

// Group is one Raft group replicating one kv store.
type Group struct {
	cfg    Config
	fsm    *FSM
	raft   *raft.Raft
	store  *raftboltdb.BoltStore
	guard  *guardedStore // store as raft sees it (storeguard.go)
	snaps  *raft.FileSnapshotStore
	logger hclog.Logger

	versions versions // version.go

	// proposeMu makes the order of timestamps the order of the log: stamp
	// and enqueue happen under it.
	proposeMu sync.Mutex
	// readyTerm is the term in which this node, as leader, last saw every
	// earlier entry applied (a barrier), so its clock is past their
	// timestamps. Written under proposeMu; read without it by read
	// barriers, which must not queue behind a proposal being enqueued.
	readyTerm atomic.Uint64

	// node and id are set for a group started through a Node: requests
	// for the leader are then forwarded to it. A group without a node
	// answers them with *NotLeaderError on a follower.
	node     *Node
	id       uint64
	hadState bool

	handlersMu sync.RWMutex
	handlers   map[Method]Handler

	// propCh feeds the proposer (commit.go); inflight bounds the entries it
	// has in the log but not yet applied.
	propCh   chan *proposal
	inflight chan struct{}
	locks    *lockService
	// rsnaps are the snapshots other nodes' transactions hold at this
	// leader (remoteserve.go).
	rsnaps *snapLeases

	// verifyMu guards the shared leadership checks of read barriers
	// (forward.go).
	verifyMu      sync.Mutex
	verifyWaiting []chan error
	verifyRunning bool
	stats         groupStats
	logs          *countingLogStore

	stop         chan struct{}
	bg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// NewGroup starts this node's member of the group over engine, which must
// have been opened with cfg.EngineOptions. The Group owns engine from now on,
// also when NewGroup fails: Shutdown (or the failure) closes it, and
// installing a snapshot replaces it (see Engine).
//
// If raft knows a snapshot newer than the store's applied index (the file was
// lost, replaced by an old copy, or a crash hit a restore before its rename),
// NewGroup restores that snapshot into the store before raft starts, since
// raft resumes after the snapshot's index and would otherwise never replay
// what the file lacks. A snapshot that cannot be read makes NewGroup fail.
func NewGroup(cfg Config, engine *kv.Engine) (*Group, error) {
	return newGroup(cfg, engine, nil, 0)
}

func newGroup(cfg Config, engine *kv.Engine, node *Node, id uint64) (_ *Group, err error) {
	g := &Group{
		cfg:      cfg,
		node:     node,
		id:       id,
		handlers: map[Method]Handler{},
		propCh:   make(chan *proposal, 4096),
		stop:     make(chan struct{}),
	}
	defer func() {
		if err != nil {
			g.closeAll(engine)
		}
	}()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger != nil {
		g.logger = cfg.Logger.Named("raft")
	} else {
		out := cfg.LogOutput
		if out == nil {
			out = os.Stderr
		}
		g.logger = hclog.New(&hclog.LoggerOptions{
			Name:   "raft." + string(cfg.ID),
			Output: out,
			Level:  hclog.LevelFromString(cfg.LogLevel),
		})
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	g.store, err = raftboltdb.NewBoltStore(filepath.Join(cfg.Dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("replication: opening raft log: %w", err)
	}
	g.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotRetain, g.logger)
	if err != nil {
		return nil, fmt.Errorf("replication: opening snapshot store: %w", err)
	}
	g.hadState, err = raft.HasExistingState(g.store, g.store, g.snaps)
	if err != nil {
		return nil, fmt.Errorf("replication: reading raft state: %w", err)
	}
	g.fsm = NewFSM(engine, cfg.EngineOptions, g.logger)
	g.fsm.maxCommand = g.advertised().Commands
	if err := g.checkStateMatchesLog(); err != nil {
		return nil, err
	}
	g.fsm.onClusterID = g.recordClusterID
	if err := g.catchUpWithSnapshot(); err != nil {
		return nil, err
	}
	trans := cfg.Transport
	if trans == nil {
		trans, err = raft.NewTCPTransportWithLogger(cfg.BindAddr, nil, 3, 10*time.Second, g.logger)
		if err != nil {
			return nil, fmt.Errorf("replication: listening on %s: %w", cfg.BindAddr, err)
		}
	}
	g.guard = &guardedStore{s: g.store}
	g.logs = &countingLogStore{LogStore: g.guard}
	logs, err := raft.NewLogCache(logCacheSize, g.logs)
	if err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	rc := cfg.raftConfig()
	rc.Logger = g.logger
	g.raft, err = raft.NewRaft(rc, g.fsm, logs, g.guard, g.snaps, trans)
	if err != nil {
		if c, ok := trans.(io.Closer); ok && cfg.Transport == nil {
			_ = c.Close()
		}
		return nil, fmt.Errorf("replication: starting raft: %w", err)
	}
	g.inflight = make(chan struct{}, cfg.MaxInflight)
	g.locks = newLockService(g)
	g.rsnaps = newSnapLeases()
	g.bg.Add(4)
	go g.pollVersions()
	go g.runProposer()
	go g.locks.watchLeadership()
	go g.locks.keepalive()
	return g, nil
}

// catchUpWithSnapshot enforces the restart rule: the store's applied index
// must be at or above the index recorded in the newest snapshot. Entries
// between that recorded index and the snapshot's raft index carry no
// commands (the FSM records every command entry's index), so comparing with
// the recorded index is exact.
func (g *Group) catchUpWithSnapshot() error {
	metas, err := g.snaps.List()
	if err != nil {
		return fmt.Errorf("replication: listing snapshots: %w", err)
	}
	if len(metas) == 0 {
		return nil
	}
	newest := metas[0]
	applied, err := g.fsm.Engine().AppliedIndex()
	if err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	if applied >= newest.Index {
		return nil
	}
	_, rc, err := g.snaps.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("replication: opening snapshot %s: %w", newest.ID, err)
	}
	recorded, err := snapshotIndexOf(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("replication: snapshot %s: %w", newest.ID, err)
	}
	if applied >= recorded {
		return nil
	}
	g.logger.Warn("store is behind the newest snapshot; restoring it",
		"applied-index", applied, "snapshot", newest.ID, "snapshot-index", recorded)
	_, rc, err = g.snaps.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("replication: opening snapshot %s: %w", newest.ID, err)
	}
	if err := g.fsm.Restore(rc); err != nil {
		return fmt.Errorf("replication: restoring snapshot %s at start: %w", newest.ID, err)
	}
	return nil
}

// Bootstrap makes a brand-new group of servers. Call it on one node of a
// group that has never run; on a node with existing state it fails with
// raft.ErrCantBootstrap.
func (g *Group) Bootstrap(servers []raft.Server) error {
	if err := g.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return fmt.Errorf("replication: bootstrap: %w", err)
	}
	return nil
}

// Engine returns the store as it is now. Installing a snapshot replaces it
// and closes the old one, so call Engine for each operation and expect
// kv.ErrClosed from an engine kept across one.
func (g *Group) Engine() *kv.Engine { return g.fsm.Engine() }

// FSM returns the group's state machine.
func (g *Group) FSM() *FSM { return g.fsm }

// Raft returns the underlying raft node, for membership changes and
// observation.
func (g *Group) Raft() *raft.Raft { return g.raft }

// IsLeader reports whether this node is the leader right now. It may have
// been deposed without knowing yet; a write through Propose finds out.
func (g *Group) IsLeader() bool { return g.raft.State() == raft.Leader }

// Leader returns the known leader's address and ID, empty when none is known.
func (g *Group) Leader() (raft.ServerAddress, raft.ServerID) { return g.raft.LeaderWithID() }

func (g *Group) notLeader() error {
	addr, id := g.raft.LeaderWithID()
	return &NotLeaderError{LeaderAddr: addr, LeaderID: id}
}

func (g *Group) timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return g.cfg.ApplyTimeout
}

// Propose commits batches through the group and returns one result per
// batch: nil when written, or the *kv.ConflictError of its first failing
// precondition, decided alike on every replica. An entry holding a batch
// that can never be written is refused whole (ErrRejected wrapping
// kv.ErrInvalidBatch); Commit keeps such a batch out of shared entries. Only the leader proposes;
// elsewhere it returns a *NotLeaderError naming the leader. The leader stamps
// each batch with a new timestamp from its clock, strictly increasing along
// the log.
//
// Errors: *NotLeaderError and ErrRejected mean nothing was written;
// ErrOutcomeUnknown means the entry may or may not be committed.
func (g *Group) Propose(ctx context.Context, batches []*kv.Batch) ([]error, error) {
	if len(batches) == 0 {
		return nil, nil
	}
	fut, err := g.enqueue(ctx, batches)
	if err != nil {
		return nil, err
	}
	if err := waitFuture(ctx, fut); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return nil, g.notLeader()
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ErrShutdown)
		default:
			return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
	}
	res, ok := fut.Response().(*ApplyResult)
	if !ok {
		return nil, fmt.Errorf("replication: unexpected apply response %T", fut.Response())
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Errs, nil
}

func (g *Group) enqueue(ctx context.Context, batches []*kv.Batch) (raft.ApplyFuture, error) {
	g.proposeMu.Lock()
	defer g.proposeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if g.raft.State() != raft.Leader {
		return nil, g.notLeader()
	}
	if err := g.readyLocked(ctx); err != nil {
		return nil, err
	}
	c := Commit{Batches: batches, TS: make([]kv.Timestamp, len(batches))}
	for i := range c.TS {
		c.TS[i] = g.cfg.EngineOptions.Clock.Now()
	}
	data, err := EncodeCommit(c)
	if err != nil {
		return nil, err
	}
	fut := g.raft.Apply(data, g.timeout(ctx))
	return fut, nil
}

// readyLocked makes sure that, in the current term, every entry before this
// leader's own has been applied here, so the clock is past their timestamps
// and what we stamp next sorts after them in the log too.
func (g *Group) readyLocked(ctx context.Context) error {
	term := g.raft.CurrentTerm()
	if g.readyTerm.Load() == term {
		return nil
	}
	if err := waitFuture(ctx, g.raft.Barrier(g.timeout(ctx))); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return g.notLeader()
		}
		return fmt.Errorf("replication: leader barrier: %w", err)
	}
	// The barrier is an entry of its own, committed by a quorum: whoever
	// waited for it waited for that quorum.
	g.node.countWAN(ctx, g.quorumWAN())
	g.readyTerm.Store(term)
	return nil
}

// untilShutdown returns a context that ends with ctx or when the group
// shuts down, whichever comes first, for background work that must not
// outlive the group.
func (g *Group) untilShutdown(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-g.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// waitFuture waits for f or ctx. Raft offers no way to withdraw an entry, so
// giving up on ctx leaves the entry to its fate.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Barrier returns once every entry committed before the call is applied on
// this node. Only the leader can issue one.
func (g *Group) Barrier(ctx context.Context) error {
	if err := waitFuture(ctx, g.raft.Barrier(g.timeout(ctx))); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return g.notLeader()
		}
		return fmt.Errorf("replication: barrier: %w", err)
	}
	return nil
}

// Snapshot takes a snapshot now and compacts the log behind it, keeping
// TrailingLogs entries.
func (g *Group) Snapshot() error {
	if err := g.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("replication: snapshot: %w", err)
	}
	return nil
}

// AppliedIndex is the Raft index of the last command stored in the store.
func (g *Group) AppliedIndex() (uint64, error) { return g.fsm.Engine().AppliedIndex() }

// Shutdown stops raft, then closes the log and the store. Later calls return
// the first call's result.
func (g *Group) Shutdown() error {
	g.shutdownOnce.Do(func() {
		close(g.stop)
		g.bg.Wait()
		g.locks.close()
		if err := g.raft.Shutdown().Error(); err != nil {
			g.shutdownErr = fmt.Errorf("replication: shutdown: %w", err)
		}
		g.closeAll(nil)
	})
	return g.shutdownErr
}

// closeAll closes what NewGroup opened, and engine when the FSM does not hold
// it yet.
func (g *Group) closeAll(engine *kv.Engine) {
	keep := func(err error) {
		if err != nil && g.shutdownErr == nil {
			g.shutdownErr = fmt.Errorf("replication: shutdown: %w", err)
		}
	}
	switch {
	case g.guard != nil:
		keep(g.guard.Close())
	case g.store != nil:
		keep(g.store.Close())
	}
	if g.fsm != nil {
		keep(g.fsm.close())
	} else if engine != nil {
		keep(engine.Close())
	}
}

// LeaderTerm reports whether this node leads, and in which term.
func (g *Group) LeaderTerm() (uint64, bool) {
	if g.raft.State() != raft.Leader {
		return 0, false
	}
	return g.raft.CurrentTerm(), true
}

// SinceLeaderContact tells how long ago this replica last heard from the
// group's leader: 0 on the leader itself; ok is false before any contact.
// A leader that lost its quorum steps down after its lease, so its own
// answer is never older than that.
func (g *Group) SinceLeaderContact() (time.Duration, bool) {
	if g.raft.State() == raft.Leader {
		return 0, true
	}
	last := g.raft.LastContact()
	if last.IsZero() {
		return 0, false
	}
	return time.Since(last), true
}
