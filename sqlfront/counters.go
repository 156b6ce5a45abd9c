package sqlfront

import (
	"sync"
	"sync/atomic"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
)

// Per-table counters kept in memory: the AUTO_INCREMENT sequence, the hidden
// row IDs of keyless tables, and the row-count estimate. Each is loaded from
// the stored rows the first time it is needed.

type autoIncState struct {
	mu     sync.Mutex
	loaded bool
	next   uint64
}

type rowCountState struct {
	once sync.Once
	n    atomic.Int64
	err  error
}

func (p *Provider) forgetCounters(id uint64) {
	p.seqMu.Lock()
	defer p.seqMu.Unlock()
	delete(p.autoInc, id)
	delete(p.rowIDs, id)
	delete(p.rowCounts, id)
}

func (p *Provider) autoIncFor(id uint64) *autoIncState {
	p.seqMu.Lock()
	defer p.seqMu.Unlock()
	st := p.autoInc[id]
	if st == nil {
		st = &autoIncState{}
		p.autoInc[id] = st
	}
	return st
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

func (p *Provider) rowCount(m *tableMeta) (int64, error) {
	st := p.rowCountFor(m.def.ID)
	st.once.Do(func() {
		rp := m.rowPrefix()
		it := p.eng.NewIterator(rp, keys.PrefixEnd(rp), kv.MaxTimestamp, false)
		defer it.Close()
		var n int64
		for it.Next() {
			n++
		}
		st.n.Add(n)
		st.err = it.Err()
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
		o, seen := t.seen[it.key]
		var d int64
		switch {
		case it.del && (!seen || o.exists):
			d = -1
		case !it.del && (!seen || !o.exists):
			d = 1
		}
		if d != 0 {
			p.rowCountFor(id).n.Add(d)
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
