package replication

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
)

// The leader's side of a Remote (remote.go): reads and snapshots for nodes
// that do not host the group. DESIGN.md, "Groups a node does not host",
// describes the protocol.

// Bounds of one scan answer: a Remote asks for up to scanChunkKeys keys (at
// most maxScanKeys), and the leader stops early once the answer holds
// scanChunkBytes of keys and values, so one answer never grows with the
// range.
const (
	scanChunkKeys  = 128
	maxScanKeys    = 1024
	scanChunkBytes = 1 << 20
)

// snapLeases are the snapshots other nodes' transactions registered at
// this leader. Each holds a kv.Snapshot, so GC keeps what it can see,
// until its node releases it or stops renewing it for Config.LeaseTTL.
// They belong to the leadership, as the lock table does: a node that stops
// leading drops them, and the new leader registers a snapshot again when
// its owner's node renews it or reads at it, if its store can still answer
// exactly there (kv.Engine.SnapshotAt).
type snapLeases struct {
	mu sync.Mutex
	m  map[remoteKey]*snapLease
}

type snapLease struct {
	snap *kv.Snapshot
	eng  *kv.Engine // the store snap was registered in
	seen time.Time
}

func newSnapLeases() *snapLeases { return &snapLeases{m: map[remoteKey]*snapLease{}} }

// put makes snap owner's snapshot, replacing the one it had.
func (s *snapLeases) put(k remoteKey, e *kv.Engine, snap *kv.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[k]; old != nil {
		old.snap.Release()
	}
	s.m[k] = &snapLease{snap: snap, eng: e, seen: time.Now()}
}

// hold renews owner's snapshot at ts in e, registering it there when this
// leader does not hold it yet (it was taken at an earlier leader, or
// before a snapshot replaced the store). A timestamp e can no longer
// answer exactly is not registered; the read that needs it fails.
func (s *snapLeases) hold(k remoteKey, e *kv.Engine, ts kv.Timestamp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.m[k]
	if l != nil && l.eng == e && l.snap.TS() == ts {
		l.seen = time.Now()
		return
	}
	snap, err := e.SnapshotAt(ts)
	if err != nil {
		return
	}
	if l != nil {
		l.snap.Release()
	}
	s.m[k] = &snapLease{snap: snap, eng: e, seen: time.Now()}
}

func (s *snapLeases) release(k remoteKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.m[k]; l != nil {
		l.snap.Release()
		delete(s.m, k)
	}
}

// expire drops the snapshots not renewed for ttl: their node died, or lost
// its way to this leader.
func (s *snapLeases) expire(ttl time.Duration) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, l := range s.m {
		if now.Sub(l.seen) > ttl {
			l.snap.Release()
			delete(s.m, k)
		}
	}
}

func (s *snapLeases) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, l := range s.m {
		l.snap.Release()
		delete(s.m, k)
	}
}

// count is how many snapshots other nodes hold here.
func (s *snapLeases) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// renewSnapshots serves the snapshot part of a keepalive:
// uvarint n ‖ n × (u64 owner ‖ u64 timestamp).
func (g *Group) renewSnapshots(node string, b []byte) error {
	d := decoder{buf: b}
	n := d.count(16)
	e := g.Engine()
	for i := 0; i < n && d.err == nil; i++ {
		owner, ts := lock.TxnID(d.u64()), kv.Timestamp(d.u64())
		if d.err == nil {
			g.rsnaps.hold(remoteKey{node, owner}, e, ts)
		}
	}
	if d.err == nil && len(d.buf) > 0 {
		return fmt.Errorf("replication: %d trailing bytes in a keepalive", len(d.buf))
	}
	return d.err
}

// serveSnapshot registers a snapshot for another node's transaction:
// node ‖ u64 owner → u64 timestamp ‖ u64 applied index. The snapshot is
// taken after a read index, so it holds every commit acknowledged before
// the request arrived, wherever it was made.
func (g *Group) serveSnapshot(ctx context.Context, payload []byte) ([]byte, error) {
	d := decoder{buf: payload}
	node, owner := string(d.bytes()), lock.TxnID(d.u64())
	if d.err != nil || len(d.buf) > 0 {
		return nil, fmt.Errorf("replication: bad snapshot request")
	}
	if _, err := g.leaderReadIndex(ctx); err != nil {
		return nil, err
	}
	e := g.Engine()
	snap := e.Snapshot()
	g.rsnaps.put(remoteKey{node, owner}, e, snap)
	b := binary.BigEndian.AppendUint64(nil, uint64(snap.TS()))
	return binary.BigEndian.AppendUint64(b, g.fsm.Applied()), nil
}

func (g *Group) serveReleaseSnapshot(payload []byte) error {
	d := decoder{buf: payload}
	node, owner := string(d.bytes()), lock.TxnID(d.u64())
	if d.err != nil || len(d.buf) > 0 {
		return fmt.Errorf("replication: bad snapshot release")
	}
	g.rsnaps.release(remoteKey{node, owner})
	return nil
}

// readEngine returns the store to read at ts, pinned, for owner of node
// (0: a read that names no snapshot). A current read (kv.MaxTimestamp)
// first confirms leadership as a read index does, so it is linearizable.
// A read at a snapshot needs no confirmation: every replica whose store
// has applied a commit at or above ts holds every commit at or below it
// (timestamps increase along the log), so only the store's ReadTS is
// checked, after the term's barrier when it is behind. The caller must
// check the store's horizon again after reading (checkHorizon).
func (g *Group) readEngine(ctx context.Context, node string, owner lock.TxnID, ts kv.Timestamp) (*kv.Engine, func(), error) {
	if ts == kv.MaxTimestamp {
		if _, err := g.leaderReadIndex(ctx); err != nil {
			return nil, nil, err
		}
		e, unpin := g.fsm.PinEngine()
		return e, unpin, nil
	}
	e, unpin := g.fsm.PinEngine()
	if e.ReadTS() < ts {
		unpin()
		if err := g.TermBarrier(ctx); err != nil {
			return nil, nil, err
		}
		e, unpin = g.fsm.PinEngine()
		if e.ReadTS() < ts {
			unpin()
			return nil, nil, fmt.Errorf("%w: this replica has applied up to %d, the snapshot is at %d", ErrUnavailable, e.ReadTS(), ts)
		}
	}
	if owner != 0 {
		g.rsnaps.hold(remoteKey{node, owner}, e, ts)
	}
	if err := checkHorizon(e, ts); err != nil {
		unpin()
		return nil, nil, err
	}
	return e, unpin, nil
}

// checkHorizon fails a read at ts that e can no longer answer exactly.
// Called after the read, it covers it: GC raises the horizon before it
// removes anything (kv/DESIGN.md, "ReadTS and snapshots").
func checkHorizon(e *kv.Engine, ts kv.Timestamp) error {
	if ts == kv.MaxTimestamp {
		return nil
	}
	if h := e.Horizon(); ts < h {
		return fmt.Errorf("%w: %w: the leader's store holds versions from %d on, the snapshot is at %d",
			ErrSnapshotLost, ErrUnavailable, h, ts)
	}
	return nil
}

// read request: node ‖ u64 owner (0: none) ‖ u64 timestamp ‖ rest
func decodeReadHeader(d *decoder) (node string, owner lock.TxnID, ts kv.Timestamp) {
	return string(d.bytes()), lock.TxnID(d.u64()), kv.Timestamp(d.u64())
}

// serveGet: read header ‖ key → u64 applied index ‖ u8 exists ‖ u64 version ‖ value
func (g *Group) serveGet(ctx context.Context, payload []byte) ([]byte, error) {
	d := decoder{buf: payload}
	node, owner, ts := decodeReadHeader(&d)
	if d.err != nil {
		return nil, fmt.Errorf("replication: bad get request: %w", d.err)
	}
	key := d.buf
	e, unpin, err := g.readEngine(ctx, node, owner, ts)
	if err != nil {
		return nil, err
	}
	defer unpin()
	v, err := e.Get(key, ts)
	if err != nil {
		return nil, err
	}
	if err := checkHorizon(e, ts); err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 17+len(v.Data)), g.fsm.Applied())
	if !v.Exists {
		return append(b, 0), nil
	}
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(v.Version))
	return append(b, v.Data...), nil
}

// serveScan: read header ‖ u8 reverse ‖ uvarint limit ‖ bytes start ‖ u8 has end ‖ [bytes end]
// → u64 applied index ‖ u8 more ‖ uvarint n ‖ n × (bytes key ‖ bytes value ‖ u64 version)
func (g *Group) serveScan(ctx context.Context, payload []byte) ([]byte, error) {
	d := decoder{buf: payload}
	node, owner, ts := decodeReadHeader(&d)
	reverse := d.byte()
	limit := int(min(d.uvarint(), maxScanKeys))
	start := d.bytes()
	var end []byte
	if d.byte() == 1 {
		end = d.bytes()
		if end == nil {
			end = []byte{}
		}
	}
	if d.err != nil || len(d.buf) > 0 || reverse > 1 || limit == 0 {
		return nil, fmt.Errorf("replication: bad scan request")
	}
	e, unpin, err := g.readEngine(ctx, node, owner, ts)
	if err != nil {
		return nil, err
	}
	defer unpin()
	it := e.NewIterator(start, end, ts, reverse == 1)
	defer it.Close()
	var body []byte
	n, size, more := 0, 0, false
	for it.Next() {
		if n == limit || size >= scanChunkBytes {
			more = true
			break
		}
		body = appendBytes(body, it.Key())
		body = appendBytes(body, it.Value())
		body = binary.BigEndian.AppendUint64(body, uint64(it.Version()))
		n++
		size += len(it.Key()) + len(it.Value())
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if err := checkHorizon(e, ts); err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 20+len(body)), g.fsm.Applied())
	if more {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(n))
	return append(b, body...), nil
}
