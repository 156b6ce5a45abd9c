package sqlfront

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
)

// Per-table counters kept in memory: the AUTO_INCREMENT sequence, the hidden
// row IDs of keyless tables, and the row-count estimate. Each is loaded from
// the stored rows the first time it is needed.

type autoIncState struct {
	mu        sync.Mutex
	loaded    bool
	next      uint64
	persisted uint64   // largest watermark committed
	stale     []uint64 // committed watermarks below persisted, to delete
}

// autoIncWatermarks adds to a commit batch the watermark of every table the
// transaction wrote whose sequence moved, and the deletion of watermarks
// already superseded. done is called once the batch is durable.
func (p *Provider) autoIncWatermarks(t *txn, b *kv.Batch) (done func()) {
	type mark struct {
		st   *autoIncState
		next uint64
		del  []uint64
	}
	var marks []mark
	for id, m := range t.tables {
		if m.autoCol < 0 {
			continue
		}
		st := p.autoIncFor(id)
		st.mu.Lock()
		if st.loaded && st.next > st.persisted {
			mk := mark{st: st, next: st.next, del: append([]uint64(nil), st.stale...)}
			b.Mutations = append(b.Mutations, kv.Mutation{Key: autoIncKey(id, mk.next)})
			for _, v := range mk.del {
				b.Mutations = append(b.Mutations, kv.Mutation{Key: autoIncKey(id, v), Delete: true})
			}
			marks = append(marks, mk)
		}
		st.mu.Unlock()
	}
	return func() {
		for _, mk := range marks {
			mk.st.committed(mk.next, mk.del)
		}
	}
}

// committed records a durable watermark and the stale ones its batch
// deleted. Concurrent commits may have listed the same stale watermarks;
// deleting one twice is harmless, so they are removed by value.
func (st *autoIncState) committed(next uint64, deleted []uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	gone := make(map[uint64]bool, len(deleted))
	for _, v := range deleted {
		gone[v] = true
	}
	kept := st.stale[:0]
	for _, v := range st.stale {
		if !gone[v] {
			kept = append(kept, v)
		}
	}
	st.stale = kept
	switch {
	case next > st.persisted:
		if st.persisted > 0 {
			st.stale = append(st.stale, st.persisted)
		}
		st.persisted = next
	case next < st.persisted:
		st.stale = append(st.stale, next)
	}
}

// storedAutoInc returns the largest committed watermark of a table.
func (p *Provider) storedAutoInc(id uint64) (uint64, error) {
	pre := autoIncPrefix(id)
	it := p.store.Engine().NewIterator(pre, keys.PrefixEnd(pre), kv.MaxTimestamp, true)
	defer it.Close()
	if it.Next() {
		rest := it.Key()[len(pre):]
		v, _, err := keys.DecodeBytes(rest)
		if err != nil || len(v) != 8 {
			return 0, errCorruptRow
		}
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, it.Err()
}

type rowCountState struct {
	once  sync.Once
	n     atomic.Int64
	ready atomic.Bool // counted once; commits adjust from then on
	err   error
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
		it := p.store.Engine().NewIterator(rp, keys.PrefixEnd(rp), kv.MaxTimestamp, false)
		defer it.Close()
		var n int64
		for it.Next() {
			n++
		}
		st.n.Store(n)
		st.err = it.Err()
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
		o, seen := t.seen[it.key]
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
