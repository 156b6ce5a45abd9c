package sqlfront

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// Rows of a table ID that no catalog entry names any more (a dropped or
// truncated table, the old copy of a rebuilt one, the unfinished copy of a
// failed rebuild) are removed in the background, so DDL never has to put a
// whole table in one batch. The DDL that orphans a table ID writes a
// cleanup record ("drop", table ID) in the same batch as its catalog
// change; the node that keeps the group's sequences (the leader) consumes
// the records in bounded batches through the ordinary commit path, and a
// record is deleted only once its ranges are empty, so a crash or a leader
// change merely restarts the removal. Table IDs are never reused, so
// nothing ever reads a range that waits for removal.
//
// A rebuild writes the record of its new table ID before it copies a row,
// and holds the record's key exclusively (a metadata lock) while it fills
// the range. The cleaner takes the same lock without waiting, so it skips
// a copy in progress; a copy whose statement failed, or whose node died,
// loses the lock and is removed like a dropped table. Before deleting
// anything the cleaner claims the record (rewrites it), and every batch of
// the copy carries the record's version as a precondition: a copy whose
// lock was lost to a leader change then fails instead of writing into a
// range being removed.

// cleanupRecord is the value of a cleanup record.
type cleanupRecord struct {
	// Table names what the ID held, for logs.
	Table string `json:"table,omitempty"`
	// Claimed: the removal has begun; the ID's copy, if any, is dead.
	Claimed bool `json:"claimed,omitempty"`
	// Group holds the ID's rows and index entries; 0 (what a record
	// written before placement says) is CatalogGroup.
	Group uint64 `json:"group,omitempty"`
	// Local: the ID's keys are in every site's group (a local table), as
	// many as there are when the cleaner runs.
	Local bool `json:"local,omitempty"`
}

var catDrop = []byte("drop")

// dropKey is the key of the cleanup record of table ID id, or with index
// non-zero of that index of the table alone (a dropped or unfinished
// secondary index; index IDs are never reused within a table ID either).
func dropKey(id, index uint64) []byte {
	t := binary.BigEndian.AppendUint64(nil, id)
	if index == 0 {
		return keys.CatalogKey(catDrop, t)
	}
	return keys.CatalogKey(catDrop, t, binary.BigEndian.AppendUint64(nil, index))
}

// parseDropKey is dropKey's inverse.
func parseDropKey(k []byte) (id, index uint64, err error) {
	pre := keys.CatalogKey(catDrop)
	if !bytes.HasPrefix(k, pre) {
		return 0, 0, errCorruptRow
	}
	field, rest, err := keys.DecodeBytes(k[len(pre):])
	if err != nil || len(field) != 8 {
		return 0, 0, errCorruptRow
	}
	id = binary.BigEndian.Uint64(field)
	if len(rest) > 0 {
		if field, _, err = keys.DecodeBytes(rest); err != nil || len(field) != 8 {
			return 0, 0, errCorruptRow
		}
		index = binary.BigEndian.Uint64(field)
	}
	return id, index, nil
}

// cleanupRange is a key range a record stands for, in one group's part.
type cleanupRange struct {
	group      uint64
	start, end []byte
}

// cleanupRanges are the key ranges a record stands for: a table ID's rows,
// index entries and definition marker (in the part of each of groups) and
// AUTO_INCREMENT watermarks (catalog keys), or one index's entries.
func cleanupRanges(id, index uint64, groups []uint64) []cleanupRange {
	var out []cleanupRange
	if index != 0 {
		ip := keys.IndexPrefix(id, index)
		for _, g := range groups {
			out = append(out, cleanupRange{g, ip, keys.PrefixEnd(ip)})
		}
		return out
	}
	tp, ap := keys.TablePrefix(id), autoIncPrefix(id)
	for _, g := range groups {
		out = append(out, cleanupRange{g, tp, keys.PrefixEnd(tp)})
	}
	return append(out, cleanupRange{CatalogGroup, ap, keys.PrefixEnd(ap)})
}

// placeRecord fills in where the keys of table m are.
func (p *Provider) placeRecord(rec *cleanupRecord, m *tableMeta) {
	switch {
	case m.local():
		rec.Local = true
	case m.group() != CatalogGroup:
		rec.Group = m.group()
	}
}

// recordGroups are the groups holding the record's ranges.
func (p *Provider) recordGroups(ctx context.Context, rec cleanupRecord) ([]uint64, error) {
	if rec.Local {
		return p.siteGroups(ctx)
	}
	return []uint64{rec.group()}, nil
}

// orphan adds to the batch the cleanup record of table ID id (index 0) or
// of one of its indexes, whose keys are where table m's are. An orphaned
// table ID of a placed table loses its definition marker once the batch
// has committed, so a writer still holding it fails (1412).
func (b *ddlBatch) orphan(id, index uint64, m *tableMeta, what string) error {
	b.cleanup = true
	rec := cleanupRecord{Table: what}
	b.p.placeRecord(&rec, m)
	if m.placed() && index == 0 {
		groups, err := b.p.groupsOf(b.ctx, m)
		if err != nil {
			return storeErr(err)
		}
		for _, g := range groups {
			b.markers = append(b.markers, markerChange{group: g, id: id, drop: true})
		}
	}
	return b.putJSON(dropKey(id, index), rec)
}

// group is the group holding the record's ranges.
func (r cleanupRecord) group() uint64 {
	if r.Group == 0 {
		return CatalogGroup
	}
	return r.Group
}

// cleanupInterval is how often the cleaner looks for records when nothing
// told it of one (records written on another node before this one led).
const cleanupInterval = 5 * time.Second

// kickCleanup wakes the cleaner.
func (p *Provider) kickCleanup() {
	select {
	case p.cleanupKick <- struct{}{}:
	default:
	}
}

// runCleanup is the cleaner's loop.
func (p *Provider) runCleanup() {
	defer close(p.cleanupStopped)
	t := time.NewTicker(cleanupInterval)
	defer t.Stop()
	for {
		if err := p.cleanupPass(); err != nil && !p.stopping() {
			p.log.Warn("removing the rows of dropped tables", "error", err)
		}
		select {
		case <-p.stop:
			return
		case <-p.cleanupKick:
		case <-t.C:
		}
	}
}

func (p *Provider) stopping() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// errCleanupStopped ends a pass early (the provider is closing, or a
// test's batch budget ran out).
var errCleanupStopped = errors.New("sqlfront: cleanup stopped")

// cleanupPass removes every table ID with a cleanup record it can claim
// and whose ranges this node is the one to delete (cleansHere). A record
// that fails does not hold up the others; the pass reports the first
// failure.
func (p *Provider) cleanupPass() error {
	_, leadsCatalog := p.cat().Leading()
	type rec struct {
		id, index uint64
		version   kv.Timestamp
		rec       cleanupRecord
	}
	var recs []rec
	pre := keys.CatalogKey(catDrop)
	it := p.cat().NewIterator(context.Background(), pre, keys.PrefixEnd(pre), kv.MaxTimestamp, false)
	for it.Next() {
		id, index, err := parseDropKey(it.Key())
		if err != nil {
			it.Close()
			return err
		}
		r := rec{id: id, index: index, version: it.Version()}
		if err := json.Unmarshal(it.Value(), &r.rec); err != nil {
			it.Close()
			return err
		}
		recs = append(recs, r)
	}
	err := it.Err()
	it.Close()
	if err != nil {
		return err
	}
	var first error
	for _, r := range recs {
		if !p.cleansHere(r.rec.group(), leadsCatalog) {
			continue
		}
		if err := p.cleanTable(r.id, r.index, r.version, r.rec); err != nil {
			if errors.Is(err, errCleanupStopped) {
				return nil
			}
			if errors.Is(err, kv.ErrConflict) {
				continue // claimed or finished elsewhere meanwhile
			}
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// cleansHere reports whether this node deletes the ranges of records
// whose keys are in group: the catalog group's leader those of the
// catalog group, and the leader of a placed table's group, which holds
// its part, those of that group (the catalog group's leader need not hold
// it: the global group's leader holds only its own site's group). The
// record's claim and removal go to the catalog group from either.
func (p *Provider) cleansHere(group uint64, leadsCatalog bool) bool {
	if group == CatalogGroup {
		return leadsCatalog
	}
	pt, err := p.part(group)
	if err != nil {
		return false
	}
	if _, ok := pt.Leading(); ok {
		return true
	}
	// A group this node reaches only through its leader (RemotePart):
	// the catalog group's leader removes its ranges there too, so a group
	// whose own leader runs no cleaner (a node of an older build) does not
	// keep them for ever. Claims go through the catalog group, so one of
	// the two does each record.
	_, remote := pt.(*RemotePart)
	return remote && leadsCatalog
}

// ddlChunkBytes bounds one batch of background deletions or of a DDL
// copy: well inside the transaction limit, and small enough that a Raft
// entry stays small.
func (p *Provider) ddlChunkBytes() int64 {
	n := int64(1 << 20)
	if lim := p.cfg.MaxTxnBytes / 4; lim > 0 && lim < n {
		n = lim
	}
	return n
}

// cleanTable claims a cleanup record and removes its ranges.
func (p *Provider) cleanTable(id, index uint64, version kv.Timestamp, rec cleanupRecord) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	key := dropKey(id, index)
	owner := lock.TxnID(p.nextTxn.Add(1))
	defer p.cat().ReleaseAll(owner)
	if err := p.cat().Lock(ctx, owner, key, lock.Exclusive, 0); err != nil {
		if errors.Is(err, lock.ErrTimeout) {
			return nil // a rebuild is filling the range
		}
		return err
	}
	if !rec.Claimed {
		rec.Claimed = true
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		b := &kv.Batch{
			Mutations:     []kv.Mutation{{Key: key, Value: data}},
			Preconditions: []kv.Precondition{{Key: key, Exists: true, Version: version}},
		}
		if err := p.cat().Commit(ctx, b); err != nil {
			return err
		}
		v, err := p.cat().Get(ctx, key, kv.MaxTimestamp)
		if err != nil {
			return err
		}
		if !v.Exists {
			return nil
		}
		version = v.Version
	}
	held := kv.Precondition{Key: key, Exists: true, Version: version}
	limit := p.ddlChunkBytes()
	groups, err := p.recordGroups(ctx, rec)
	if err != nil {
		return err
	}
	for _, r := range cleanupRanges(id, index, groups) {
		pt, err := p.part(r.group)
		if err != nil {
			return err
		}
		start := r.start
		for {
			if p.stopping() {
				return errCleanupStopped
			}
			b := &kv.Batch{}
			if r.group == CatalogGroup {
				// The record is in the same part: a deletion after the
				// record went (removed elsewhere meanwhile) fails. A
				// placed table's range is deleted without it; deleting
				// keys of an ID no definition names is harmless anyway.
				b.Preconditions = []kv.Precondition{held}
			}
			var size int64
			it := pt.NewIterator(ctx, start, r.end, kv.MaxTimestamp, false)
			for size < limit && it.Next() {
				k := bytes.Clone(it.Key())
				b.Mutations = append(b.Mutations, kv.Mutation{Key: k, Delete: true})
				size += int64(len(k) + 32)
			}
			err := it.Err()
			it.Close()
			if err != nil {
				return err
			}
			if len(b.Mutations) == 0 {
				break
			}
			if lim := p.cfg.cleanupBatches; lim > 0 && p.cleanupDone.Load() >= int64(lim) {
				return errCleanupStopped
			}
			if err := pt.Commit(ctx, b); err != nil {
				return err
			}
			p.cleanupDone.Add(1)
			// Resume after the last key deleted, not from the start of the
			// range, which would step over every tombstone again.
			last := b.Mutations[len(b.Mutations)-1].Key
			start = append(bytes.Clone(last), 0)
		}
	}
	b := &kv.Batch{
		Mutations:     []kv.Mutation{{Key: key, Delete: true}},
		Preconditions: []kv.Precondition{held},
	}
	if err := p.cat().Commit(ctx, b); err != nil {
		return err
	}
	p.log.Debug("removed the rows of a dropped table", "table", rec.Table, "id", id, "index", index)
	return nil
}

// filler writes the keys of a range no catalog entry names yet (a rebuilt
// table's new ID, a new index) in bounded batches, in the part of each
// group the table's keys are in. It holds the range's cleanup record,
// written and locked before the first key, so whatever ends the statement
// early, the range is removed; the batch that makes the range visible
// deletes the record (finish).
type filler struct {
	p      *Provider
	key    []byte // the cleanup record
	held   kv.Precondition
	groups []uint64 // ascending
	parts  map[uint64]*fillPart
}

// fillPart is what a filler writes in one group's part.
type fillPart struct {
	group   uint64
	part    Part
	batch   kv.Batch
	size    int64
	pending map[string]bool // keys of the unflushed batch
}

// newFiller writes and locks (for owner) the cleanup record of id/index,
// whose keys are where table m's are. The key is new, so the lock is free
// unless something is badly wrong.
func (p *Provider) newFiller(ctx context.Context, owner lock.TxnID, id, index uint64, m *tableMeta, what string) (*filler, error) {
	groups, err := p.groupsOf(ctx, m)
	if err != nil {
		return nil, storeErr(err)
	}
	f := &filler{p: p, groups: groups, parts: map[uint64]*fillPart{}}
	for _, g := range f.groups {
		pt, err := p.part(g)
		if err != nil {
			return nil, storeErr(err)
		}
		f.parts[g] = &fillPart{group: g, part: pt, pending: map[string]bool{}}
	}
	key := dropKey(id, index)
	if err := p.cat().Lock(ctx, owner, key, lock.Exclusive, time.Second); err != nil {
		if errors.Is(err, lock.ErrTimeout) || errors.Is(err, lock.ErrDeadlock) {
			return nil, errDDLConflict
		}
		return nil, storeErr(err)
	}
	rec := cleanupRecord{Table: what}
	p.placeRecord(&rec, m)
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	b := &kv.Batch{
		Mutations:     []kv.Mutation{{Key: key, Value: data}},
		Preconditions: []kv.Precondition{{Key: key}},
	}
	if err := p.cat().Commit(ctx, b); err != nil {
		if errors.Is(err, kv.ErrConflict) {
			return nil, errDDLConflict
		}
		return nil, storeErr(err)
	}
	v, err := p.cat().Get(ctx, key, kv.MaxTimestamp)
	if err != nil {
		return nil, err
	}
	if !v.Exists {
		return nil, errDDLConflict
	}
	f.key, f.held = key, kv.Precondition{Key: key, Exists: true, Version: v.Version}
	return f, nil
}

// exists reports whether key was written already in group's part.
func (f *filler) exists(ctx context.Context, group uint64, key []byte) (bool, error) {
	fp := f.parts[group]
	if fp.pending[string(key)] {
		return true, nil
	}
	v, err := fp.part.Get(ctx, key, kv.MaxTimestamp)
	return v.Exists, storeErr(err)
}

// existsIn reports in which group key was written already, of the groups
// given (this copy's; 0 when none), looking in all of them at once.
func (f *filler) existsIn(ctx context.Context, groups []uint64, key []byte) (uint64, error) {
	for _, g := range groups {
		if f.parts[g].pending[string(key)] {
			return g, nil
		}
	}
	found := make([]bool, len(groups))
	if err := parallel(len(groups), func(i int) error {
		v, err := f.parts[groups[i]].part.Get(ctx, key, kv.MaxTimestamp)
		found[i] = v.Exists
		return err
	}); err != nil {
		return 0, storeErr(err)
	}
	for i, ok := range found {
		if ok {
			return groups[i], nil
		}
	}
	return 0, nil
}

// taken reports whether a unique key a copy is about to write in group
// is written already: in group, or when cross in any group of the copy.
func (f *filler) taken(ctx context.Context, group uint64, key []byte, cross bool) (bool, error) {
	if !cross {
		return f.exists(ctx, group, key)
	}
	g, err := f.existsIn(ctx, f.groups, key)
	return g != 0, err
}

func (f *filler) put(ctx context.Context, group uint64, key, value []byte) error {
	fp := f.parts[group]
	fp.batch.Mutations = append(fp.batch.Mutations, kv.Mutation{Key: key, Value: value})
	fp.pending[string(key)] = true
	fp.size += int64(len(key) + len(value) + 32)
	if fp.size >= f.p.ddlChunkBytes() {
		return f.flushPart(ctx, fp)
	}
	return nil
}

// flush commits the buffered keys of every group.
func (f *filler) flush(ctx context.Context) error {
	for _, g := range f.groups {
		if err := f.flushPart(ctx, f.parts[g]); err != nil {
			return err
		}
	}
	return nil
}

// flushPart commits the buffered keys of one group, provided the record
// was not claimed by the cleaner (the lock on it lost with a leader
// change). The record is a catalog key: a range in another group's part
// is written without that proviso, and its publication alone (finish)
// fails after a claim.
func (f *filler) flushPart(ctx context.Context, fp *fillPart) error {
	if len(fp.batch.Mutations) == 0 {
		return nil
	}
	if fp.group == CatalogGroup {
		fp.batch.Preconditions = []kv.Precondition{f.held}
	}
	err := fp.part.Commit(ctx, &fp.batch)
	fp.batch = kv.Batch{}
	fp.size = 0
	fp.pending = map[string]bool{}
	if errors.Is(err, kv.ErrConflict) {
		return errDDLConflict
	}
	return storeErr(err)
}

// complete flushes what is left and, for a placed table (nm, not yet
// published), writes in every group the definition marker of the copy:
// version 0, the indexes it has. A group's marker so says that its part of
// the range is whole (placedVisibleAt); publication writes the real one.
func (f *filler) complete(ctx context.Context, nm *tableMeta) error {
	for _, g := range f.groups {
		fp := f.parts[g]
		if nm.placed() {
			fp.batch.Mutations = append(fp.batch.Mutations, kv.Mutation{Key: markerKey(nm.def.ID), Value: encodeMarker(nm)})
		}
		if err := f.flushPart(ctx, fp); err != nil {
			return err
		}
	}
	return nil
}

// finish adds to the DDL batch that publishes the range the removal of its
// cleanup record, on condition that nobody claimed it.
func (f *filler) finish(b *ddlBatch) {
	b.batch.Preconditions = append(b.batch.Preconditions, f.held)
	b.del(f.key)
}
