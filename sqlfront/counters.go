package sqlfront

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
)

// Per-table counters kept in memory: the row-count estimate, loaded from the
// stored rows the first time it is needed; and the sequences
// (sequences.go).

// storedAutoInc returns the largest AUTO_INCREMENT watermark of the older
// format (sequences.go), 0 if none.
func (p *Provider) storedAutoInc(id uint64) (uint64, error) {
	var top uint64
	err := p.eachLegacyAutoInc(id, func(_ []byte, next uint64) { top = max(top, next) })
	return top, err
}

// legacyAutoIncKeys lists the watermarks of the older format.
func (p *Provider) legacyAutoIncKeys(id uint64) ([][]byte, error) {
	var out [][]byte
	err := p.eachLegacyAutoInc(id, func(k []byte, _ uint64) { out = append(out, k) })
	return out, err
}

// eachLegacyAutoInc visits the watermarks of the older format: the keys
// under the table's prefix whose last field is a u64 (a mark's is a kind).
func (p *Provider) eachLegacyAutoInc(id uint64, fn func(key []byte, next uint64)) error {
	pre := autoIncPrefix(id)
	it := p.cat().NewIterator(context.Background(), pre, keys.PrefixEnd(pre), kv.MaxTimestamp, false)
	defer it.Close()
	for it.Next() {
		rest := it.Key()[len(pre):]
		if len(rest) == 0 {
			continue
		}
		v, _, err := keys.DecodeBytes(rest)
		if err != nil {
			return errCorruptRow
		}
		if len(v) == 8 {
			fn(append([]byte(nil), it.Key()...), binary.BigEndian.Uint64(v))
		}
	}
	return it.Err()
}

type rowCountState struct {
	once  sync.Once
	n     atomic.Int64
	ready atomic.Bool // counted once; commits adjust from then on
	err   error
}

// forgetCounters drops what this node knows of a table's counters after a
// change of its definition. A sequence is only checked again against its
// mark: a DDL statement that moves or resets it rewrites or deletes the
// mark, one that does not leaves the leader its place in its block.
func (p *Provider) forgetCounters(id uint64) {
	p.seqMu.Lock()
	delete(p.rowCounts, id)
	var sts []*seqState
	for _, kind := range []seqKind{seqAutoInc, seqRowID} {
		if st := p.seqs[seqID{id, kind}]; st != nil {
			sts = append(sts, st)
		}
	}
	p.seqMu.Unlock()
	for _, st := range sts {
		st.forget()
	}
}

// forgetGroupCounters drops the row-count estimates of the tables placed
// in group id (its part installed a snapshot).
func (p *Provider) forgetGroupCounters(id uint64) {
	p.catMu.RLock()
	var ids []uint64
	for _, st := range p.dbs {
		for _, m := range st.tables {
			if m.local() || m.group() == id {
				ids = append(ids, m.def.ID)
			}
		}
	}
	p.catMu.RUnlock()
	p.seqMu.Lock()
	for _, t := range ids {
		delete(p.rowCounts, t)
	}
	p.seqMu.Unlock()
}

func (p *Provider) rowCountFor(id uint64) *rowCountState {
	p.seqMu.Lock()
	defer p.seqMu.Unlock()
	st := p.rowCounts[id]
	if st == nil {
		st = &rowCountState{}
		p.rowCounts[id] = st
	}
	return st
}

// rowCount is the estimate of table m's rows. A table whose group this
// node cannot reach, or hosts no replica of, counts 0: an estimate must
// not fail the statements that list tables, nor cost a request to
// another site (the planner asks for it).
//
// A local table counts the rows of the groups this node hosts (its
// site's): another site's rows are not counted.
func (p *Provider) rowCount(m *tableMeta) (int64, error) {
	var engs []*kv.Engine
	groups, _ := p.groupsOf(context.Background(), m)
	for _, g := range groups {
		pt, err := p.part(g)
		if err != nil {
			continue
		}
		if r, ok := pt.(replica); ok {
			engs = append(engs, r.Engine())
		}
	}
	if len(engs) == 0 {
		return 0, nil
	}
	st := p.rowCountFor(m.def.ID)
	st.once.Do(func() {
		rp := m.rowPrefix()
		var n int64
		for _, eng := range engs {
			it := eng.NewIterator(rp, keys.PrefixEnd(rp), kv.MaxTimestamp, false)
			for it.Next() {
				n++
			}
			st.err = it.Err()
			it.Close()
			if st.err != nil {
				break
			}
		}
		st.n.Store(n)
		st.ready.Store(true)
	})
	return st.n.Load(), st.err
}

// noteCommitted adjusts row-count estimates after a commit: a row key
// written that was seen absent is an insert, a deleted one seen present a
// delete.
func (p *Provider) noteCommitted(t *txn) {
	t.buf.Ascend(func(it bufItem) bool {
		id, idx, ok := splitTableKey([]byte(it.key))
		if !ok || idx != primaryIndexID {
			return true
		}
		o, seen := t.seen[gkey{it.group, it.key}]
		var d int64
		switch {
		case it.del && (!seen || o.exists):
			d = -1
		case !it.del && (!seen || !o.exists):
			d = 1
		}
		if st := p.rowCountFor(id); d != 0 && st.ready.Load() {
			st.n.Add(d)
		}
		return true
	})
}

// splitTableKey returns the table and index IDs of a table-data key.
func splitTableKey(k []byte) (table, index uint64, ok bool) {
	if len(k) == 0 || k[0] != keys.PrefixTable {
		return 0, 0, false
	}
	table, rest, err := keys.DecodeUint(k[1:])
	if err != nil {
		return 0, 0, false
	}
	index, _, err = keys.DecodeUint(rest)
	return table, index, err == nil
}
