package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/kv"
)

var _ raft.FSM = (*FSM)(nil)

// ApplyResult is what FSM.Apply returns for a CommandCommit entry, and what
// the proposer reads from raft's ApplyFuture.
type ApplyResult struct {
	// Errs holds one entry per batch: nil when written, or the
	// *kv.ConflictError of its first failing precondition. Nil
	// when the entry had already been applied before a restart (a replay).
	Errs []error
	// Err is set when every replica refused the whole entry (its
	// timestamps out of order, or a batch that can never be written); it
	// wraps ErrRejected and the kv error that
	// decided it.
	Err error
	// Index is the entry's log index.
	Index uint64
}

// commandHandlers is the one dispatch table from command type to its
// applier. A type missing here makes DecodeCommand fail and Apply panic.
var commandHandlers = map[CommandType]func(f *FSM, l *raft.Log, payload []byte) any{
	CommandCommit:    (*FSM).applyCommit,
	CommandClusterID: (*FSM).applyClusterID,
}

// FSMStats are counters since the FSM was created, for tests and metrics.
type FSMStats struct {
	// Entries counts commit entries written by Apply.
	Entries uint64
	// Replayed counts entries at or below the stored applied index, skipped.
	Replayed uint64
	// Rejected counts entries refused as a whole (ErrRejected).
	Rejected uint64
	// Batches counts batches written; Conflicts those refused by a
	// precondition; Invalid the entries refused whole for a batch that
	// could never be written (proposers refuse such a batch before it
	// reaches an entry, so only an older build's entries count here).
	Batches   uint64
	Conflicts uint64
	Invalid   uint64
	// Restores counts snapshots installed by Restore.
	Restores uint64
}

// FSM is the Raft state machine over one kv store. It only decodes entries
// and hands them to kv.Engine.Apply, which stores the Raft index in the same
// transaction as the data, so replaying the log after a crash is harmless.
//
// Restore replaces the store's file, so the *kv.Engine changes; callers read
// through Engine() each time rather than keeping the pointer.
type FSM struct {
	opts   kv.Options
	clock  *kv.Clock
	logger hclog.Logger

	// engineMu guards cur, the engine readers get, and the pin counts. It
	// is held only for a pointer swap or a count, never across I/O, so a
	// snapshot being written delays neither a restore nor a reader.
	engineMu sync.Mutex
	cur      *pinnedEngine
	// broken is set when a restore replaced the file but could not open
	// it: the next Apply panics rather than write into the old store.
	broken error

	// applied is the store's applied index as readers may rely on it: it
	// moves after the entry's hooks have run.
	applied *appliedWatch
	// clusterID is the store's cluster ID (nil until known); onClusterID
	// is told, on the FSM goroutine, when the store learns or changes it.
	clusterIDMu sync.Mutex
	clusterID   []byte
	onClusterID func(id []byte)

	// hooks run on the FSM goroutine after each written entry and after a
	// restore; see OnApply.
	hookMu sync.RWMutex
	hooks  []ApplyHook

	// maxCommand is the highest command type this node applies (its
	// advertised version's); 0 means every type this build knows.
	maxCommand CommandType

	entries, replayed, rejected atomic.Uint64
	batches, conflicts, invalid atomic.Uint64
	restores                    atomic.Uint64
}

// NewFSM returns the state machine over engine, which must have been opened
// with opts: Restore reopens the file at opts.Path with them. opts.Clock
// must be the clock the leader stamps commits with.
func NewFSM(engine *kv.Engine, opts kv.Options, logger hclog.Logger) *FSM {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	f := &FSM{opts: opts, clock: opts.Clock, logger: logger, cur: &pinnedEngine{e: engine, refs: 1}}
	var pos kv.LogPosition
	var err error
	if engine != nil {
		pos, err = engine.AppliedPosition()
	}
	if err != nil {
		// A store that cannot say where it stands fails its first Apply;
		// start waiters from zero until then.
		logger.Error("reading applied index", "error", err)
	}
	f.applied = newAppliedWatch(pos.Index)
	f.clusterID = pos.ClusterID
	return f
}

// ClusterID returns the ID of the cluster whose log the store was built
// from, nil while unknown.
func (f *FSM) ClusterID() []byte {
	f.clusterIDMu.Lock()
	defer f.clusterIDMu.Unlock()
	return f.clusterID
}

func (f *FSM) setClusterID(id []byte) {
	f.clusterIDMu.Lock()
	changed := !bytes.Equal(f.clusterID, id)
	f.clusterID = id
	cb := f.onClusterID
	f.clusterIDMu.Unlock()
	if changed && cb != nil && id != nil {
		cb(id)
	}
}

// ApplyHook is told of every batch written by an entry (restored is false),
// or that the whole state was replaced by a snapshot (batches is nil,
// restored is true). It runs on the FSM goroutine before readers waiting for
// that index are released, so a reader that waited sees what the hook did
// (a reloaded catalog, say). It must not block on anything that waits for the
// group.
type ApplyHook func(batches []*kv.Batch, restored bool)

// OnApply adds a hook.
func (f *FSM) OnApply(h ApplyHook) {
	f.hookMu.Lock()
	defer f.hookMu.Unlock()
	f.hooks = append(f.hooks, h)
}

func (f *FSM) runHooks(batches []*kv.Batch, restored bool) {
	f.hookMu.RLock()
	defer f.hookMu.RUnlock()
	for _, h := range f.hooks {
		h(batches, restored)
	}
}

// Applied returns the index of the last command entry in the store, as
// published to readers.
func (f *FSM) Applied() uint64 { return f.applied.get() }

// WaitApplied returns once the store holds every command up to index.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	return f.applied.wait(ctx, index)
}

// pinnedEngine counts the users of one engine: one reference while it is
// the current engine, one per pin. The last one to let go closes it.
type pinnedEngine struct {
	e    *kv.Engine
	refs int
}

// Engine returns the current store. It changes when a snapshot is
// installed; an engine returned before that fails with kv.ErrClosed once
// its last pinned user is done. It never waits for a snapshot being
// written.
func (f *FSM) Engine() *kv.Engine {
	f.engineMu.Lock()
	defer f.engineMu.Unlock()
	return f.cur.e
}

// PinEngine returns the current store and keeps it open until unpin is
// called, even if a snapshot is installed meanwhile (it then goes on
// describing the state before the snapshot).
func (f *FSM) PinEngine() (e *kv.Engine, unpin func()) {
	f.engineMu.Lock()
	p := f.cur
	p.refs++
	f.engineMu.Unlock()
	var once sync.Once
	return p.e, func() { once.Do(func() { f.unref(p) }) }
}

// unref drops one reference to p and closes its engine after the last.
func (f *FSM) unref(p *pinnedEngine) error {
	f.engineMu.Lock()
	p.refs--
	last := p.refs == 0
	f.engineMu.Unlock()
	if !last {
		return nil
	}
	if err := p.e.Close(); err != nil {
		f.logger.Error("closing a replaced store", "error", err)
		return err
	}
	return nil
}

// current is the engine on the FSM goroutine, where only Restore changes it.
func (f *FSM) current() *kv.Engine {
	f.engineMu.Lock()
	defer f.engineMu.Unlock()
	return f.cur.e
}

// Stats returns the FSM's counters.
func (f *FSM) Stats() FSMStats {
	return FSMStats{
		Entries:   f.entries.Load(),
		Replayed:  f.replayed.Load(),
		Rejected:  f.rejected.Load(),
		Batches:   f.batches.Load(),
		Conflicts: f.conflicts.Load(),
		Invalid:   f.invalid.Load(),
		Restores:  f.restores.Load(),
	}
}

// Apply applies one committed entry. An entry it cannot decode, or a store
// that fails to write, panics: going on would let this replica diverge from
// the others, and stopping lets an operator repair it from a snapshot.
func (f *FSM) Apply(l *raft.Log) any {
	t, payload, err := DecodeCommand(l.Data)
	if err == nil && f.maxCommand != 0 && t > f.maxCommand {
		err = fmt.Errorf("%w: unknown command type %d", ErrBadCommand, t)
	}
	if err != nil {
		panic(fmt.Sprintf("replication: entry %d: %v", l.Index, err))
	}
	return commandHandlers[t](f, l, payload)
}

// applyClusterID stores the cluster ID the entry carries, unless the store
// already has one: the first one applied names the cluster for good, on
// every replica alike. Like every command entry it moves the applied index.
func (f *FSM) applyClusterID(l *raft.Log, payload []byte) any {
	id, err := DecodeClusterID(payload)
	if err != nil {
		panic(fmt.Sprintf("replication: entry %d: %v", l.Index, err))
	}
	if f.broken != nil {
		panic(fmt.Sprintf("replication: entry %d: %v", l.Index, f.broken))
	}
	pos := kv.LogPosition{Index: l.Index, Term: l.Term}
	have := f.ClusterID()
	switch {
	case have == nil:
		pos.ClusterID = append([]byte(nil), id...)
	case !bytes.Equal(have, id):
		f.logger.Warn("ignoring a second cluster ID", "index", l.Index, "cluster", fmt.Sprintf("%x", have), "ignored", fmt.Sprintf("%x", id))
	}
	errs, err := f.current().ApplyAt(pos, nil, nil)
	if err != nil {
		panic(fmt.Sprintf("replication: entry %d: %v", l.Index, err))
	}
	if errs == nil {
		f.replayed.Add(1)
		return &ApplyResult{Index: l.Index}
	}
	if pos.ClusterID != nil {
		f.setClusterID(pos.ClusterID)
		f.logger.Info("cluster ID stored", "cluster", fmt.Sprintf("%x", pos.ClusterID), "index", l.Index)
	}
	f.applied.set(l.Index)
	return &ApplyResult{Errs: errs, Index: l.Index}
}

func (f *FSM) applyCommit(l *raft.Log, payload []byte) any {
	index := l.Index
	c, err := DecodeCommit(payload)
	if err != nil {
		panic(fmt.Sprintf("replication: entry %d: %v", index, err))
	}
	if f.broken != nil {
		panic(fmt.Sprintf("replication: entry %d: %v", index, f.broken))
	}
	// Apply runs on raft's FSM goroutine, as does Restore, the only one to
	// replace the engine.
	e := f.current()
	pos := kv.LogPosition{Index: index, Term: l.Term}
	errs, err := e.ApplyAt(pos, c.Batches, c.TS)
	switch {
	case err == nil && errs == nil:
		f.replayed.Add(1)
		return &ApplyResult{Index: index}
	case err == nil:
		f.entries.Add(1)
		for _, be := range errs {
			switch {
			case be == nil:
				f.batches.Add(1)
			default:
				f.conflicts.Add(1)
			}
		}
		if n := len(c.TS); n > 0 {
			f.clock.Update(c.TS[n-1])
		}
		written := make([]*kv.Batch, 0, len(errs))
		for i, be := range errs {
			if be == nil {
				written = append(written, c.Batches[i])
			}
		}
		if len(written) > 0 {
			f.runHooks(written, false)
		}
		f.applied.set(index)
		return &ApplyResult{Errs: errs, Index: index}
	case errors.Is(err, kv.ErrInvalidBatch) || errors.Is(err, kv.ErrTimestampOrder):
		// Decided from the entry and the replicated state alone, so every
		// replica refuses it alike. Record the index anyway so the stored
		// applied index always names the last command entry.
		if _, ierr := e.ApplyAt(pos, nil, nil); ierr != nil {
			panic(fmt.Sprintf("replication: entry %d: storing applied index: %v", index, ierr))
		}
		f.rejected.Add(1)
		if errors.Is(err, kv.ErrInvalidBatch) {
			f.invalid.Add(1)
		}
		f.applied.set(index)
		return &ApplyResult{Err: fmt.Errorf("%w: %w", ErrRejected, err)}
	default:
		panic(fmt.Sprintf("replication: entry %d: %v", index, err))
	}
}

// Snapshot registers a kv snapshot at the store's ReadTS, which, because raft
// never runs Snapshot concurrently with Apply, is exactly the state at the
// stored applied index. It opens no bbolt transaction and copies nothing;
// Persist reads at that timestamp in short transactions while GC keeps the
// versions it needs.
//
// The snapshot pins the engine until Release, so a Restore meanwhile swaps
// in the new store without waiting for Persist and the old one is closed
// when Persist is done with it.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	e, unpin := f.PinEngine()
	pos, err := e.AppliedPosition()
	if err != nil {
		unpin()
		return nil, fmt.Errorf("replication: snapshot: %w", err)
	}
	return &fsmSnapshot{engine: e, unpin: unpin, snap: e.Snapshot(), pos: pos}, nil
}

// Restore discards all state and loads the snapshot in rc. The snapshot is
// first written into a fresh file beside the store's and renamed over it
// only when complete, so a crash mid-way leaves the old file, whose older
// applied index makes the next start restore again.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.restore(rc)
}

func (f *FSM) restore(r io.Reader) error {
	// A snapshot that names no cluster (an older format, or taken before
	// the cluster had an ID) leaves the store's own.
	hdr, err := buildFromSnapshot(r, f.opts, f.ClusterID(), f.logger)
	if err != nil {
		return err
	}
	// The old engine stays open under pins (a snapshot being written) and
	// readers: on its unlinked file until its last user is done.
	if err := replaceFile(restorePath(f.opts.Path), f.opts.Path); err != nil {
		return fmt.Errorf("replication: restore: %w", err)
	}
	e, err := kv.Open(f.opts)
	f.engineMu.Lock()
	old := f.cur
	if err == nil {
		f.cur = &pinnedEngine{e: e, refs: 1}
	}
	f.engineMu.Unlock()
	if err != nil {
		// The old store no longer matches the file; the next Apply panics,
		// which is right for a replica that lost its store.
		if f.broken == nil {
			_ = f.unref(old)
		}
		f.broken = fmt.Errorf("replication: restore: reopening store: %w", err)
		return f.broken
	}
	// After a failed reopen the old store's reference is gone already;
	// this restore makes the FSM whole again.
	if f.broken == nil {
		_ = f.unref(old)
	}
	f.broken = nil
	if hdr.clusterID != nil {
		f.setClusterID(hdr.clusterID)
	}
	f.clock.Update(hdr.readTS)
	f.restores.Add(1)
	f.runHooks(nil, true)
	f.applied.set(hdr.index)
	f.logger.Info("restored snapshot", "applied-index", hdr.index, "read-ts", hdr.readTS.String())
	return nil
}

// close drops the current engine; the Group calls it once raft has stopped,
// so no snapshot pins it any more and it closes now.
func (f *FSM) close() error {
	f.engineMu.Lock()
	p := f.cur
	f.engineMu.Unlock()
	if f.broken != nil {
		return nil
	}
	return f.unref(p)
}
