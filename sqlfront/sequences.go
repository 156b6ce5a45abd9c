package sqlfront

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dolthub/vitess/go/mysql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/replication"
)

// AUTO_INCREMENT values and the hidden row IDs of keyless tables are handed
// out where the group's leader is, so that two nodes never give out the
// same value; a follower asks the leader (Store.Call). The leader hands
// them out from memory, within a block it reserved through the log first:
// a mark ("autoinc", table, kind) holding the block's end, committed with a
// precondition on the mark's version. Every value ever handed out is below
// the newest mark, so a new leader (which reads the mark only after its
// term's barrier) resumes above every value a transaction of an earlier
// term may still hold.
const (
	methodAutoIncNext uint8 = 0 // u64 table ‖ u8 given? ‖ u64 given → u64 value
	methodAutoIncPeek uint8 = 1 // u64 table → u64 next value
	methodRowID       uint8 = 2 // u64 table → u64 row ID
)

// Block sizes of reservations: a block used up within seqBlockGrowAfter
// of its reservation makes the next one twice as large. What a leader
// change or a crash skips is at most one block; a clean shutdown gives the
// unused part back (ReleaseSequences).
const (
	seqBlockMin       = 32
	seqBlockMax       = 4096
	seqBlockGrowAfter = time.Second
)

// seqKind tells the two sequences of a table apart.
type seqKind uint8

const (
	seqAutoInc seqKind = iota
	seqRowID
)

type seqID struct {
	table uint64
	kind  seqKind
}

// seqState is one sequence as this node knows it. At the leader, values
// in [next, hi) are reserved by the mark of version ver and not yet handed
// out. Any node also remembers floor: every value below it has been handed
// out or moved past, so an explicit value below it needs no request.
type seqState struct {
	mu sync.Mutex
	// term is the leadership term in which next and hi were checked
	// against the stored mark, as of forget generation gen; 0 means check
	// again before use.
	term     uint64
	gen      uint64
	next, hi uint64
	ver      kv.Timestamp // version of the mark that reserved hi; 0: none
	block    uint64
	reserved time.Time

	// forgets and floor are atomic: the apply hook forgets a sequence
	// while a reservation may hold mu, waiting for its own entry to be
	// applied behind the hook's.
	forgets atomic.Uint64
	floor   atomic.Uint64
}

// forget makes the next use check the sequence against its mark again.
func (st *seqState) forget() {
	st.forgets.Add(1)
	st.floor.Store(0)
}

// passed records that every value below v was handed out or moved past.
func (st *seqState) passed(v uint64) {
	for {
		f := st.floor.Load()
		if v <= f || st.floor.CompareAndSwap(f, v) {
			return
		}
	}
}

// errMarkMoved: the mark changed under a reservation (another leader, a
// DDL statement); the sequence is read again.
var errMarkMoved = errors.New("sqlfront: sequence mark moved")

func (p *Provider) registerSequences() { p.serveSequences(p.cat()) }

// ServeSequences makes this node answer the sequence requests of the
// tables placed in group when it leads group: a table's sequences are kept
// by its own group's leader, so an insert at a site asks no other site.
// The server calls it for each group it adds to the store.
func (p *Provider) ServeSequences(group uint64) error {
	pt, err := p.part(group)
	if err != nil {
		return storeErr(err)
	}
	if pt != p.cat() {
		p.serveSequences(pt)
	}
	return nil
}

func (p *Provider) serveSequences(pt Part) {
	p.handleSeq(pt, methodAutoIncNext, func(ctx context.Context, m *tableMeta, given *uint64) (uint64, error) {
		return p.seqNextLocal(ctx, pt, m, seqAutoInc, given)
	})
	p.handleSeq(pt, methodAutoIncPeek, func(ctx context.Context, m *tableMeta, _ *uint64) (uint64, error) {
		return p.seqPeekLocal(ctx, pt, m, seqAutoInc)
	})
	p.handleSeq(pt, methodRowID, func(ctx context.Context, m *tableMeta, _ *uint64) (uint64, error) {
		return p.seqNextLocal(ctx, pt, m, seqRowID, nil)
	})
}

// handleSeq serves a sequence method at pt's leader: decode the table and
// the given value, find the table, answer one value.
func (p *Provider) handleSeq(pt Part, method uint8, fn func(ctx context.Context, m *tableMeta, given *uint64) (uint64, error)) {
	pt.Handle(method, func(ctx context.Context, req []byte) ([]byte, error) {
		id, given, hasGiven, err := decodeSeqReq(req)
		if err != nil {
			return nil, err
		}
		m, err := p.leaderTable(pt, id)
		if errors.Is(err, errNoTableID) {
			// This node's catalog may be behind the caller's (it leads
			// pt, not necessarily the catalog group): once it has caught
			// up, a table still missing is one the caller's definition
			// predates, dropped or rebuilt since. An empty answer, which
			// the caller reports as its table changed (1412).
			if err := p.cat().ReadBarrier(ctx); err != nil {
				return nil, err
			}
			if m, err = p.leaderTable(pt, id); errors.Is(err, errNoTableID) {
				return []byte{}, nil
			}
		}
		if err != nil {
			return nil, err
		}
		var g *uint64
		if hasGiven {
			g = &given
		}
		v, err := fn(ctx, m, g)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.AppendUint64(nil, v), nil
	})
}

// callSeq asks the leader for one sequence value.
func (p *Provider) callSeq(ctx context.Context, pt Part, method uint8, id uint64, given *uint64) (uint64, error) {
	resp, err := pt.Call(ctx, method, encodeSeqReq(id, given))
	if err != nil {
		return 0, storeErr(err)
	}
	switch len(resp) {
	case 8:
		return binary.BigEndian.Uint64(resp), nil
	case 0:
		return 0, errTableDefChanged
	}
	return 0, fmt.Errorf("sqlfront: bad sequence response of %d bytes", len(resp))
}

func encodeSeqReq(id uint64, given *uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, id)
	if given == nil {
		return append(b, 0)
	}
	return binary.BigEndian.AppendUint64(append(b, 1), *given)
}

func decodeSeqReq(b []byte) (id, given uint64, hasGiven bool, err error) {
	switch {
	case len(b) == 9 && b[8] == 0:
		return binary.BigEndian.Uint64(b), 0, false, nil
	case len(b) == 17 && b[8] == 1:
		return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[9:]), true, nil
	}
	return 0, 0, false, fmt.Errorf("sqlfront: bad sequence request of %d bytes", len(b))
}

// leaderTable finds a table by ID for a sequence request.
func (p *Provider) leaderTable(pt Part, id uint64) (*tableMeta, error) {
	if _, ok := pt.Leading(); !ok {
		return nil, fmt.Errorf("%w: sequences are not kept on this node", replication.ErrNotLeader)
	}
	if m := p.tableByID(id); m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("%w %d", errNoTableID, id)
}

// errNoTableID: a sequence request names a table this leader does not
// have (any more).
var errNoTableID = errors.New("sqlfront: no table with ID")

func (p *Provider) seqFor(id uint64, kind seqKind) *seqState {
	p.seqMu.Lock()
	defer p.seqMu.Unlock()
	k := seqID{id, kind}
	st := p.seqs[k]
	if st == nil {
		st = &seqState{}
		p.seqs[k] = st
	}
	return st
}

// autoIncNext hands out the next AUTO_INCREMENT value (given == nil) or
// moves the sequence past a given one, here or at the leader.
func (p *Provider) autoIncNext(ctx context.Context, m *tableMeta, given *uint64) (uint64, error) {
	return p.seqNext(ctx, m, seqAutoInc, methodAutoIncNext, given)
}

// nextRowID hands out a hidden row ID of a keyless table.
func (p *Provider) nextRowID(ctx context.Context, m *tableMeta) (uint64, error) {
	return p.seqNext(ctx, m, seqRowID, methodRowID, nil)
}

func (p *Provider) seqNext(ctx context.Context, m *tableMeta, kind seqKind, method uint8, given *uint64) (uint64, error) {
	pt, err := p.seqPart(m)
	if err != nil {
		return 0, storeErr(err)
	}
	if _, ok := pt.Leading(); ok {
		v, err := p.seqNextLocal(ctx, pt, m, kind, given)
		if !errors.Is(err, replication.ErrNotLeader) {
			return v, storeErr(err)
		}
		// Leadership went away meanwhile: ask whoever has it now.
	}
	v, err := p.callSeq(ctx, pt, method, m.def.ID, given)
	if err != nil {
		return 0, err
	}
	p.seqFor(m.def.ID, kind).passed(satInc(v))
	return v, nil
}

// seqNextLocal hands out a value at the leader, reserving a new block
// through the log first when the value is past the reserved one.
func (p *Provider) seqNextLocal(ctx context.Context, pt Part, m *tableMeta, kind seqKind, given *uint64) (uint64, error) {
	term, ok := pt.Leading()
	if !ok {
		return 0, replication.ErrNotLeader
	}
	st := p.seqFor(m.def.ID, kind)
	st.mu.Lock()
	defer st.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := p.seqReady(ctx, pt, st, m, kind, term); err != nil {
			return 0, err
		}
		sd, err := p.strideOf(m)
		if err != nil {
			return 0, err
		}
		v, after := sd.value(st.next), st.next+1
		if given != nil {
			v, after = *given, max(st.next, sd.after(*given))
		}
		if after > st.hi {
			err := p.reserve(ctx, pt, st, m, kind, after)
			if errors.Is(err, errMarkMoved) && attempt < 5 {
				continue
			}
			if err != nil {
				return 0, err
			}
		}
		st.next = after
		// floor is kept in values: an explicit value below it needs no
		// request.
		st.passed(sd.value(after))
		return v, nil
	}
}

// autoIncPeek returns the value the next insert would get: 0 for a table
// without an AUTO_INCREMENT column, which SHOW CREATE TABLE and
// information_schema.tables then show no value for (a local table's
// sequence would otherwise give its site's first value, which is above 1
// at every site but the first).
func (p *Provider) autoIncPeek(ctx context.Context, m *tableMeta) (uint64, error) {
	if m.autoCol < 0 {
		return 0, nil
	}
	pt, err := p.seqPart(m)
	if err != nil {
		return 0, storeErr(err)
	}
	if _, ok := pt.Leading(); ok {
		v, err := p.seqPeekLocal(ctx, pt, m, seqAutoInc)
		if !errors.Is(err, replication.ErrNotLeader) {
			return v, storeErr(err)
		}
	}
	return p.callSeq(ctx, pt, methodAutoIncPeek, m.def.ID, nil)
}

func (p *Provider) seqPeekLocal(ctx context.Context, pt Part, m *tableMeta, kind seqKind) (uint64, error) {
	term, ok := pt.Leading()
	if !ok {
		return 0, replication.ErrNotLeader
	}
	st := p.seqFor(m.def.ID, kind)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := p.seqReady(ctx, pt, st, m, kind, term); err != nil {
		return 0, err
	}
	sd, err := p.strideOf(m)
	if err != nil {
		return 0, err
	}
	return sd.value(st.next), nil
}

// seqReady makes st fit to hand out values in this term (st.mu held). The
// first use in a term waits for the term's barrier, so that the mark and
// the rows read are those every earlier leader left. A state whose mark
// is still the one it reserved keeps its place (leadership came back with
// no reservation by anyone else meanwhile); otherwise the sequence
// resumes above the mark and above every value stored.
func (p *Provider) seqReady(ctx context.Context, pt Part, st *seqState, m *tableMeta, kind seqKind, term uint64) error {
	gen := st.forgets.Load()
	if st.term == term && st.gen == gen {
		return nil
	}
	if err := pt.TermBarrier(ctx); err != nil {
		return err
	}
	mk, err := p.readSeqMark(pt, m, kind)
	if err != nil {
		return err
	}
	if st.ver != 0 && mk.ver == st.ver && mk.hi == st.hi && st.next <= st.hi {
		st.term, st.gen = term, gen
		return nil
	}
	next := max(mk.hi, mk.legacy, 1)
	sd, err := p.strideOf(m)
	if err != nil {
		return err
	}
	switch kind {
	case seqAutoInc:
		var top uint64
		if m.local() {
			// This site's stride: only its own rows can hold its values.
			top, err = maxAutoIn(ctx, pt, m)
		} else {
			top, err = p.maxAutoValue(ctx, m)
		}
		if err != nil {
			return err
		}
		next = max(next, sd.after(top))
		if m.def.AutoInc > 1 {
			next = max(next, sd.after(m.def.AutoInc-1))
		}
	case seqRowID:
		var top uint64
		if m.local() {
			top, err = maxRowIDIn(ctx, pt, m)
		} else {
			top, err = p.maxRowID(ctx, m)
		}
		if err != nil {
			return err
		}
		next = max(next, sd.after(top))
	}
	st.next, st.hi, st.ver = next, mk.hi, mk.ver
	st.block = 0
	st.term, st.gen = term, gen
	return nil
}

// reserve commits a mark that reserves every value below need and a block
// beyond it (st.mu held). Superseded watermarks of the older format go in
// the same batch.
func (p *Provider) reserve(ctx context.Context, pt Part, st *seqState, m *tableMeta, kind seqKind, need uint64) error {
	id := m.def.ID
	switch {
	case st.block == 0:
		st.block = seqBlockMin
	case time.Since(st.reserved) < seqBlockGrowAfter:
		st.block = min(2*st.block, seqBlockMax)
	default:
		st.block = seqBlockMin
	}
	hi := need + st.block
	if hi < need {
		hi = math.MaxUint64
	}
	key := p.seqKey(m, kind)
	b := &kv.Batch{
		Mutations:     []kv.Mutation{{Key: key, Value: binary.BigEndian.AppendUint64(nil, hi)}},
		Preconditions: []kv.Precondition{{Key: key, Exists: st.ver != 0, Version: st.ver}},
	}
	if kind == seqAutoInc && p.seqGroup(m) == CatalogGroup {
		old, err := p.legacyAutoIncKeys(id)
		if err != nil {
			return err
		}
		for _, k := range old {
			b.Mutations = append(b.Mutations, kv.Mutation{Key: k, Delete: true})
		}
	}
	err := pt.Commit(ctx, b)
	if err != nil {
		// Whatever became of the batch, the mark is read again.
		st.term = 0
		var ce *kv.ConflictError
		if errors.As(err, &ce) {
			return errMarkMoved
		}
		return err
	}
	v, err := pt.Get(ctx, key, kv.MaxTimestamp)
	if err != nil {
		st.term = 0
		return err
	}
	if !v.Exists || len(v.Data) != 8 || binary.BigEndian.Uint64(v.Data) != hi {
		st.term = 0
		return errMarkMoved
	}
	st.hi, st.ver, st.reserved = hi, v.Version, time.Now()
	return nil
}

// ReleaseSequences gives back the unused part of every block this node
// reserved, so that a clean shutdown (or a leadership handover after it)
// skips no values: the marks come down to the next value of each
// sequence. Values at or above it were never handed out.
func (p *Provider) ReleaseSequences(ctx context.Context) error {
	p.seqMu.Lock()
	ids := make([]seqID, 0, len(p.seqs))
	for k := range p.seqs {
		ids = append(ids, k)
	}
	states := make([]*seqState, len(ids))
	sort.Slice(ids, func(i, j int) bool {
		return ids[i].table < ids[j].table || ids[i].table == ids[j].table && ids[i].kind < ids[j].kind
	})
	for i, k := range ids {
		states[i] = p.seqs[k]
	}
	p.seqMu.Unlock()

	// One batch per group, committed where the sequences are kept.
	type release struct {
		pt   Part
		b    *kv.Batch
		held []*seqState
	}
	byGroup := map[uint64]*release{}
	var order []uint64
	for i, st := range states {
		m := p.tableByID(ids[i].table)
		if m == nil {
			continue
		}
		pt, err := p.seqPart(m)
		if err != nil {
			continue
		}
		term, ok := pt.Leading()
		if !ok {
			continue
		}
		st.mu.Lock()
		if st.term != term || st.gen != st.forgets.Load() || st.ver == 0 || st.next >= st.hi {
			st.mu.Unlock()
			continue
		}
		r := byGroup[p.seqGroup(m)]
		if r == nil {
			r = &release{pt: pt, b: &kv.Batch{}}
			byGroup[p.seqGroup(m)] = r
			order = append(order, p.seqGroup(m))
		}
		key := p.seqKey(m, ids[i].kind)
		r.b.Mutations = append(r.b.Mutations, kv.Mutation{Key: key, Value: binary.BigEndian.AppendUint64(nil, st.next)})
		r.b.Preconditions = append(r.b.Preconditions, kv.Precondition{Key: key, Exists: true, Version: st.ver})
		r.held = append(r.held, st)
	}
	var first error
	for _, g := range order {
		r := byGroup[g]
		err := r.pt.Commit(ctx, r.b)
		for _, st := range r.held {
			// The next use reads the lowered mark (or, had the batch
			// failed, the mark as it is).
			st.term = 0
			st.mu.Unlock()
		}
		if err != nil && first == nil {
			first = storeErr(err)
		}
	}
	return first
}

// seqKey is where a table's sequence mark is kept: in the catalog for a
// table of the catalog group; for a table placed in another group, in that
// group, under the table's own key range (an index number no index uses),
// so its leader reserves values without the catalog group and a DROP's
// range removal takes the mark with the rows.
func (p *Provider) seqKey(m *tableMeta, kind seqKind) []byte {
	if p.seqGroup(m) == CatalogGroup {
		return seqMarkKey(m.def.ID, kind)
	}
	return keys.AppendBytes(keys.IndexPrefix(m.def.ID, seqMarkIndexID), seqMarkKinds[kind])
}

// seqGroup is the group whose leader keeps a table's sequences: its own
// group for a table placed in one; for a local table, this node's site's
// group, each site handing out its own stride of values (seqStride); the
// catalog group for the others.
func (p *Provider) seqGroup(m *tableMeta) uint64 {
	if m.local() {
		if p.cfg.Homes == nil {
			return 0
		}
		return p.cfg.Homes.LocalGroup()
	}
	return m.group()
}

// seqPart is the part of m's seqGroup.
func (p *Provider) seqPart(m *tableMeta) (Part, error) {
	g := p.seqGroup(m)
	if g == 0 {
		return nil, fmt.Errorf("%w: this node's site has no group yet", ErrPartUnavailable)
	}
	return p.part(g)
}

// LocalStride is the stride of the sequences of local tables (as MySQL's
// auto_increment_increment): the site whose group is g hands out the
// values congruent to g-1 modulo LocalStride, so two sites never hand out
// the same value and neither asks the other. A site whose group is beyond
// LocalStride+1 cannot insert into a local table with a sequence.
const LocalStride = 64

// seqStride maps a sequence's counter to its values: value(c) =
// (c-1)*stride + offset, and after(v) is the first counter whose value is
// above v. A table that is not local has stride 1 and offset 1: values are
// the counter.
type seqStride struct{ stride, offset uint64 }

func (p *Provider) strideOf(m *tableMeta) (seqStride, error) {
	if !m.local() {
		return seqStride{1, 1}, nil
	}
	g := p.seqGroup(m)
	if g < 2 || g-1 > LocalStride {
		return seqStride{}, mysql.NewSQLError(1467, "HY000",
			"Failed to read auto-increment value from storage engine (fogdb: site group %d is beyond the %d sites local tables' sequences serve)", g, LocalStride)
	}
	return seqStride{LocalStride, g - 1}, nil
}

func (s seqStride) value(c uint64) uint64 {
	if s.stride == 1 {
		return c
	}
	return (c-1)*s.stride + s.offset
}

func (s seqStride) after(v uint64) uint64 {
	if s.stride == 1 {
		return satInc(v)
	}
	if v < s.offset {
		return 1
	}
	return (v-s.offset)/s.stride + 2
}

// seqMarkIndexID is the index number of placed tables' sequence marks.
const seqMarkIndexID = math.MaxUint64

// tableByID finds a table of this node's catalog by ID (nil when none).
func (p *Provider) tableByID(id uint64) *tableMeta {
	p.catMu.RLock()
	defer p.catMu.RUnlock()
	for _, st := range p.dbs {
		if st == nil {
			continue
		}
		for _, m := range st.tables {
			if m.def.ID == id {
				return m
			}
		}
	}
	return nil
}

// seqMark is what is stored of a sequence: the newest mark, and for
// AUTO_INCREMENT the largest watermark of the older format.
type seqMark struct {
	hi     uint64
	ver    kv.Timestamp
	legacy uint64
}

func (p *Provider) readSeqMark(pt Part, m *tableMeta, kind seqKind) (seqMark, error) {
	var mk seqMark
	id := m.def.ID
	v, err := pt.Get(context.Background(), p.seqKey(m, kind), kv.MaxTimestamp)
	if err != nil {
		return mk, err
	}
	if v.Exists {
		if len(v.Data) != 8 {
			return mk, errCorruptRow
		}
		mk.hi, mk.ver = binary.BigEndian.Uint64(v.Data), v.Version
	}
	if kind == seqAutoInc && p.seqGroup(m) == CatalogGroup {
		mk.legacy, err = p.storedAutoInc(id)
	}
	return mk, err
}

// maxRowID is the largest hidden row ID stored in a keyless table.
func (p *Provider) maxRowID(ctx context.Context, m *tableMeta) (uint64, error) {
	return p.maxOverGroups(ctx, m, maxRowIDIn)
}

// maxRowIDIn is maxRowID in one part.
func maxRowIDIn(ctx context.Context, pt Part, m *tableMeta) (uint64, error) {
	rp := m.rowPrefix()
	it := pt.NewIterator(ctx, rp, keys.PrefixEnd(rp), kv.MaxTimestamp, true)
	defer it.Close()
	if it.Next() {
		id, _, err := keys.DecodeUint(it.Key()[len(rp):])
		return id, err
	}
	return 0, it.Err()
}

// satInc is v+1, saturating: a column's largest value moves the sequence
// no further.
func satInc(v uint64) uint64 {
	if v == math.MaxUint64 {
		return v
	}
	return v + 1
}
