package kv

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Engine is a multi-version key/value store in one bbolt file. All methods
// are safe for concurrent use.
type Engine struct {
	db    *bolt.DB
	clock *Clock
	log   *slog.Logger
	path  string

	// readTS is the commit timestamp of the newest durable commit; every
	// write transaction holding wmu publishes it after fsync.
	readTS atomic.Uint64

	// wmu serialises the writers that stamp or accept commit timestamps
	// (the committer and Apply), so timestamps reach the file and readTS in
	// order. GC does not take it: bbolt serialises its write transactions
	// and GC never touches a version newer than readTS.
	wmu sync.Mutex
	// lastTS mirrors meta/last-commit-ts. Guarded by wmu.
	lastTS Timestamp
	// arena holds the values of the current write transaction (bbolt keeps
	// references to them until commit). Guarded by wmu.
	arena arena

	queue   chan *commitReq
	queued  atomic.Uint64 // batches enqueued so far; tests wait on it
	closing chan struct{} // closed by Close
	stopped chan struct{} // closed when the committer has exited
	gcDone  chan struct{} // closed when the background GC loop has exited
	closed  atomic.Bool
	once    sync.Once

	gcMu sync.Mutex // one GC at a time

	snapMu sync.Mutex
	snaps  map[Timestamp]int // registered snapshot timestamps, reference-counted
	// horizon is the oldest timestamp reads are known to be exact at (see
	// Horizon). Guarded by snapMu.
	horizon Timestamp

	stats engineStats
}

type engineStats struct {
	commits, batches, fsyncs, conflicts, gcRemoved atomic.Uint64
	_                                              [64]byte // keysRead is bumped by every reader; keep it off the writers' line
	keysRead                                       atomic.Uint64
}

// Stats are cumulative counters since Open.
type Stats struct {
	// Commits counts Commit calls that returned a timestamp.
	Commits uint64
	// Batches counts batches written, by Commit or Apply.
	Batches uint64
	// Fsyncs counts write transactions committed to disk (commit groups,
	// Apply calls, GC chunks, initialisation): one durable bbolt commit each,
	// which is what concurrent commits share.
	Fsyncs uint64
	// Conflicts counts batches rejected by a precondition.
	Conflicts uint64
	// KeysRead counts stored entries examined by Get and iterators, visible
	// or not.
	KeysRead uint64
	// GCRemoved counts versions and tombstones removed by GC.
	GCRemoved uint64
}

// Open opens or creates the data file at opts.Path. A new file gets the
// buckets and the storage-version key; an existing one must carry the
// storage version this build writes. The clock is moved past the last
// stored commit so timestamps keep increasing across restarts.
func Open(opts Options) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{
		Timeout: opts.OpenTimeout,
		// The map freelist and skipping its sync make every commit cheaper;
		// the price is a freelist rebuild when the file is opened.
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s still locked after %s (is another fogdb running on this data directory?)",
			ErrLocked, opts.Path, opts.OpenTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", opts.Path, err)
	}
	e := &Engine{
		db:      db,
		clock:   opts.Clock,
		log:     opts.Logger.With("path", opts.Path),
		path:    opts.Path,
		queue:   make(chan *commitReq, commitQueueLen),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
		gcDone:  make(chan struct{}),
		snaps:   make(map[Timestamp]int),
	}
	if err := e.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("kv: open %s: %w", opts.Path, err)
	}
	e.readTS.Store(uint64(e.lastTS))
	e.horizon = e.lastTS
	e.clock.Update(e.lastTS)

	go e.runCommitter()
	if opts.GCInterval > 0 {
		go e.runGC(opts.GCInterval)
	} else {
		close(e.gcDone)
	}
	e.log.Info("kv: opened", "last_commit_ts", e.lastTS)
	return e, nil
}

// load checks the storage version, initialising a new file, and reads the
// last commit timestamp.
func (e *Engine) load() error {
	var fresh bool
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		fresh, err = checkLayoutTx(tx)
		if err != nil || fresh {
			return err
		}
		e.lastTS, err = lastCommitTSTx(tx)
		return err
	})
	if err != nil || !fresh {
		return err
	}
	err = e.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketLatest, bucketHistory, bucketGC} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return meta.Put(metaStorageVersion, encodeUint64(storageVersion))
	})
	if err == nil {
		e.stats.fsyncs.Add(1)
	}
	return err
}

// checkLayoutTx reports whether the file is empty and must be initialised,
// or fails when it is not a file this build can read.
func checkLayoutTx(tx *bolt.Tx) (fresh bool, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		var foreign []byte
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			foreign = name
			return errors.New("stop")
		})
		if foreign != nil {
			return false, fmt.Errorf("%w: no %q bucket but a %q bucket: not a kv data file",
				ErrStorageVersion, bucketMeta, foreign)
		}
		return true, nil
	}
	v := meta.Get(metaStorageVersion)
	if v == nil {
		return false, fmt.Errorf("%w: no storage version", ErrStorageVersion)
	}
	version, err := decodeUint64(metaStorageVersion, v)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrStorageVersion, err)
	}
	if version != storageVersion {
		return false, fmt.Errorf("%w: file has storage version %d, this build reads %d",
			ErrStorageVersion, version, storageVersion)
	}
	for _, name := range [][]byte{bucketLatest, bucketHistory, bucketGC} {
		if tx.Bucket(name) == nil {
			return false, fmt.Errorf("%w: bucket %q missing", ErrCorrupt, name)
		}
	}
	return false, nil
}

func lastCommitTSTx(tx *bolt.Tx) (Timestamp, error) {
	v := tx.Bucket(bucketMeta).Get(metaLastCommitTS)
	if v == nil {
		return 0, nil
	}
	ts, err := decodeUint64(metaLastCommitTS, v)
	return Timestamp(ts), err
}

// Close stops the committer and background GC, fails batches still queued
// with ErrClosed, waits for writes in flight and closes the file. Later
// calls return nil.
func (e *Engine) Close() error {
	var err error
	e.once.Do(func() {
		e.closed.Store(true)
		close(e.closing)
		<-e.stopped
		<-e.gcDone
		// An Apply holding wmu finishes first; later ones see closed.
		e.wmu.Lock()
		err = e.db.Close()
		e.wmu.Unlock()
		e.log.Info("kv: closed")
	})
	return err
}

// ReadTS is the newest timestamp at which every commit is fully visible: a
// snapshot taken at ReadTS never sees a later commit appear with a smaller
// timestamp. It moves only after the write transaction carrying a commit is
// durable.
func (e *Engine) ReadTS() Timestamp { return Timestamp(e.readTS.Load()) }

// publishLocked makes commits up to ts visible to new snapshots. Callers
// hold wmu, so readTS only grows.
func (e *Engine) publishLocked(ts Timestamp) {
	if ts > e.lastTS {
		e.lastTS = ts
	}
	if uint64(ts) > e.readTS.Load() {
		e.readTS.Store(uint64(ts))
	}
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Commits:   e.stats.commits.Load(),
		Batches:   e.stats.batches.Load(),
		Fsyncs:    e.stats.fsyncs.Load(),
		Conflicts: e.stats.conflicts.Load(),
		KeysRead:  e.stats.keysRead.Load(),
		GCRemoved: e.stats.gcRemoved.Load(),
	}
}

// AppliedIndex returns the Raft index last stored by Apply (0 if none).
func (e *Engine) AppliedIndex() (uint64, error) {
	tx, err := e.db.Begin(false)
	if err != nil {
		return 0, boltErr(err)
	}
	defer func() { _ = tx.Rollback() }()
	return appliedIndexTx(tx)
}

// AppliedPosition returns the stored applied index with the term and the
// cluster ID stored with it (0 and nil when unknown: a file written before
// they were stored, or by Apply without them).
func (e *Engine) AppliedPosition() (LogPosition, error) {
	tx, err := e.db.Begin(false)
	if err != nil {
		return LogPosition{}, boltErr(err)
	}
	defer func() { _ = tx.Rollback() }()
	var pos LogPosition
	if pos.Index, err = appliedIndexTx(tx); err != nil {
		return LogPosition{}, err
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(metaAppliedTerm); v != nil {
		if pos.Term, err = decodeUint64(metaAppliedTerm, v); err != nil {
			return LogPosition{}, err
		}
	}
	if v := meta.Get(metaClusterID); v != nil {
		if len(v) == 0 || len(v) > MaxClusterIDSize {
			return LogPosition{}, fmt.Errorf("%w: meta %s has %d bytes", ErrCorrupt, metaClusterID, len(v))
		}
		pos.ClusterID = append([]byte(nil), v...)
	}
	return pos, nil
}

// SetClusterID stores id as the store's cluster ID: a store written before
// cluster IDs were kept adopts its cluster's.
func (e *Engine) SetClusterID(id []byte) error {
	if len(id) == 0 || len(id) > MaxClusterIDSize {
		return fmt.Errorf("kv: cluster ID of %d bytes", len(id))
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	err := e.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaClusterID, id)
	})
	if err != nil {
		return fmt.Errorf("kv: storing cluster ID: %w", boltErr(err))
	}
	return nil
}

func appliedIndexTx(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get(metaAppliedIndex)
	if v == nil {
		return 0, nil
	}
	return decodeUint64(metaAppliedIndex, v)
}

// boltErr maps bbolt's closed-database error to ErrClosed, which callers
// test for.
func boltErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// runGC collects garbage every interval until Close.
func (e *Engine) runGC(interval time.Duration) {
	defer close(e.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.closing:
			return
		case <-t.C:
			if _, err := e.GC(); err != nil && !errors.Is(err, ErrClosed) {
				e.log.Warn("kv: background gc failed", "err", err)
			}
		}
	}
}
