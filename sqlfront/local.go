package sqlfront

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/dolthub/go-mysql-server/sql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
)

// Local tables (placement local, docs/PLACEMENT.md): each row lives in the
// group of its home site, so the same table ID has keys in every site's
// group: its rows and their index entries where the row is homed, its
// definition marker and metadata lock in every group. DESIGN.md, "Local
// tables", tells how rows are homed, read and checked.

// groupsOf lists the groups that may hold rows of m: its group, or for a
// local table every site's.
func (p *Provider) groupsOf(ctx context.Context, m *tableMeta) ([]uint64, error) {
	if !m.local() {
		return []uint64{m.group()}, nil
	}
	return p.siteGroups(ctx)
}

// localGroup is the group of this node's site.
func (p *Provider) localGroup() (uint64, error) {
	if p.cfg.Homes == nil {
		return 0, storeErr(fmt.Errorf("%w: this node homes no rows of local tables", ErrPartUnavailable))
	}
	return p.cfg.Homes.LocalGroup(), nil
}

// siteGroups lists every site's group in ascending order, the order in
// which a statement takes locks in several of them. A node that cannot
// tell them (no Homes, no site known) reaches no local table's rows: were
// it to read none, it would answer as if the table were empty.
func (p *Provider) siteGroups(ctx context.Context) ([]uint64, error) {
	if p.cfg.Homes == nil {
		return nil, fmt.Errorf("%w: this node homes no rows of local tables", ErrPartUnavailable)
	}
	gs := append([]uint64(nil), p.cfg.Homes.AllGroups(ctx)...)
	if len(gs) == 0 {
		return nil, fmt.Errorf("%w: no site group is known", ErrPartUnavailable)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i] < gs[j] })
	return gs, nil
}

// routes decides which groups a read of span of local table m goes to: a
// lookup of locality values to their homes only; a point lookup of a
// unique key to this site's group first (localFirst), the others only on
// a miss; anything else to every group.
func (p *Provider) routes(ctx context.Context, m *tableMeta, span *spanPartition) (groups []uint64, localFirst bool, err error) {
	all, err := p.siteGroups(ctx)
	if err != nil {
		return nil, false, storeErr(err)
	}
	if len(span.locality) > 0 {
		set := map[uint64]bool{}
		for _, v := range span.locality {
			g, ok, err := p.cfg.Homes.Lookup(ctx, v)
			if err != nil {
				return nil, false, storeErr(err)
			}
			if !ok {
				// No row can hold a value never homed; but this node's
				// registry may lag behind the site that homed it.
				return all, false, nil
			}
			set[g] = true
		}
		groups = make([]uint64, 0, len(set))
		for g := range set {
			groups = append(groups, g)
		}
		sort.Slice(groups, func(i, j int) bool { return groups[i] < groups[j] })
		return groups, false, nil
	}
	if span.uniquePoint && len(all) > 1 {
		local := p.cfg.Homes.LocalGroup()
		for _, g := range all {
			if g == local {
				return all, true, nil
			}
		}
	}
	return all, false, nil
}

// groupIter walks keys of one or several groups' parts in key order,
// saying which group each came from.
type groupIter interface {
	next() (key, val []byte, fromBuf bool, group uint64, ok bool)
	err() error
	close()
}

// groupHead is one group's merged iterator (a groupIter of its own), and
// its current key when merged with others.
type groupHead struct {
	g            uint64
	m            *mergeIter
	key, val     []byte
	fromBuf, ok  bool
	started, end bool
}

func (h *groupHead) next() ([]byte, []byte, bool, uint64, bool) {
	k, v, b, ok := h.m.next()
	return k, v, b, h.g, ok
}

func (h *groupHead) err() error { return h.m.err() }
func (h *groupHead) close()     { h.m.close() }

// advance moves the head to its next key.
func (h *groupHead) advance() {
	h.started = true
	h.key, h.val, h.fromBuf, h.ok = h.m.next()
	h.end = !h.ok
}

// multiGroupIter merges the heads of several groups by key (descending
// when reverse). Equal keys in two groups (a key declared site-unique that
// was not) come out one after the other, in the order of the heads. Keys
// and values are valid until the next call.
type multiGroupIter struct {
	heads   []*groupHead
	reverse bool
	last    *groupHead // returned last: to advance before the next pick
	e       error
}

func (it *multiGroupIter) next() ([]byte, []byte, bool, uint64, bool) {
	if it.e != nil {
		return nil, nil, false, 0, false
	}
	if it.last != nil {
		it.last.advance()
		it.last = nil
	}
	var best *groupHead
	for _, h := range it.heads {
		if !h.started {
			h.advance()
		}
		if h.end {
			if err := h.err(); err != nil {
				it.e = err
				return nil, nil, false, 0, false
			}
			continue
		}
		if best == nil {
			best = h
			continue
		}
		c := bytes.Compare(h.key, best.key)
		if it.reverse {
			c = -c
		}
		if c < 0 {
			best = h
		}
	}
	if best == nil {
		return nil, nil, false, 0, false
	}
	it.last = best
	return best.key, best.val, best.fromBuf, best.g, true
}

func (it *multiGroupIter) err() error { return it.e }

func (it *multiGroupIter) close() {
	for _, h := range it.heads {
		h.close()
	}
}

// stagedIter reads one iterator (this site's group) and, only when it
// held nothing, the one rest opens (the other groups).
type stagedIter struct {
	cur     groupIter
	rest    func() (groupIter, error)
	yielded bool
	e       error
}

func (s *stagedIter) next() ([]byte, []byte, bool, uint64, bool) {
	if s.e != nil || s.cur == nil {
		return nil, nil, false, 0, false
	}
	k, v, b, g, ok := s.cur.next()
	if ok {
		s.yielded = true
		return k, v, b, g, true
	}
	if s.cur.err() != nil || s.yielded || s.rest == nil {
		return nil, nil, false, 0, false
	}
	rest := s.rest
	s.rest = nil
	nit, err := rest()
	if err != nil {
		s.e = err
		return nil, nil, false, 0, false
	}
	if nit == nil {
		return nil, nil, false, 0, false
	}
	s.cur.close()
	s.cur = nit
	return s.cur.next()
}

func (s *stagedIter) err() error {
	if s.e != nil {
		return s.e
	}
	if s.cur != nil {
		return s.cur.err()
	}
	return nil
}

func (s *stagedIter) close() {
	if s.cur != nil {
		s.cur.close()
	}
}

// scanAll walks the keys of m in [start, end) in every group that may
// hold them, as current reads merged with the transaction's writes.
func (p *Provider) scanAll(ctx context.Context, t *txn, m *tableMeta, start, end []byte) (groupIter, error) {
	groups, err := p.groupsOf(ctx, m)
	if err != nil {
		return nil, storeErr(err)
	}
	heads := make([]*groupHead, len(groups))
	for i, g := range groups {
		tp, err := t.in(p, g)
		if err != nil {
			return nil, err
		}
		heads[i] = &groupHead{g: g, m: newMergeIter(tp.part.NewIterator(ctx, start, end, kv.MaxTimestamp, false), t.buf, g, start, end, false)}
	}
	if len(heads) == 1 {
		return heads[0], nil
	}
	return &multiGroupIter{heads: heads}, nil
}

// localityValue is the text of a locality value as Homes sees it: the
// column's SQL spelling of the value; nil for NULL.
func localityValue(ctx *sql.Context, typ sql.Type, v interface{}) *string {
	if v == nil {
		return nil
	}
	s := formatValue(ctx, typ, v)
	return &s
}

// findResult is where a key was found among groups.
type findResult struct {
	group uint64
	data  []byte
	found bool
}

// findKey looks for key in groups, this site's group first, then in the
// others at once: as the transaction's writes leave it, else its newest
// committed version, without a lock. The first group holding it, in that
// order, wins.
func (s *Session) findKey(ctx context.Context, t *txn, groups []uint64, key []byte) (findResult, error) {
	return s.findIn(ctx, t, groups, func(ctx context.Context, g uint64) (findResult, error) {
		data, ok, err := s.peek(ctx, t, g, key)
		return findResult{group: g, data: data, found: ok}, err
	})
}

// findPrefix is findKey for the first key under prefix (an index entry by
// its leading columns): the entry's value, the row's key suffix.
func (s *Session) findPrefix(ctx context.Context, t *txn, groups []uint64, prefix []byte) (findResult, error) {
	end := keys.PrefixEnd(prefix)
	return s.findIn(ctx, t, groups, func(ctx context.Context, g uint64) (findResult, error) {
		pt, err := s.p.part(g)
		if err != nil {
			return findResult{}, storeErr(err)
		}
		it := newMergeIter(pt.NewIterator(ctx, prefix, end, kv.MaxTimestamp, false), t.buf, g, prefix, end, false)
		defer it.close()
		_, v, _, ok := it.next()
		if !ok {
			return findResult{}, it.err()
		}
		return findResult{group: g, data: append([]byte(nil), v...), found: true}, nil
	})
}

// findIn runs look in this site's group, then, on a miss, in the other
// groups at once. look must not change the transaction (peek, reads).
func (s *Session) findIn(ctx context.Context, t *txn, groups []uint64, look func(context.Context, uint64) (findResult, error)) (findResult, error) {
	// The parts are made known to the transaction first: look runs in
	// parallel and must not.
	for _, g := range groups {
		if _, err := t.in(s.p, g); err != nil {
			return findResult{}, err
		}
	}
	var local uint64
	if s.p.cfg.Homes != nil {
		local = s.p.cfg.Homes.LocalGroup()
	}
	var others []uint64
	for _, g := range groups {
		if g == local {
			r, err := look(ctx, g)
			if err != nil || r.found {
				return r, err
			}
			continue
		}
		others = append(others, g)
	}
	res := make([]findResult, len(others))
	if err := parallel(len(others), func(i int) error {
		var err error
		res[i], err = look(ctx, others[i])
		return err
	}); err != nil {
		return findResult{}, err
	}
	for _, r := range res {
		if r.found {
			return r, nil
		}
	}
	return findResult{}, nil
}
