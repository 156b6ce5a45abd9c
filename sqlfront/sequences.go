package sqlfront

import (
	"context"
	"encoding/binary"
	"fmt"
)

// AUTO_INCREMENT values and the hidden row IDs of keyless tables are handed
// out where the group's leader is, so that two nodes never give out the
// same value. The leader keeps them in memory (counters.go); a follower asks
// it (Store.Call). When leadership moves, the new leader starts its
// sequences from the stored rows and watermarks again.
const (
	methodAutoIncNext uint8 = 0 // u64 table ‖ u8 given? ‖ u64 given → u64 value
	methodAutoIncPeek uint8 = 1 // u64 table → u64 next value
	methodRowID       uint8 = 2 // u64 table → u64 row ID
)

func (p *Provider) registerSequences() {
	p.handleSeq(methodAutoIncNext, func(m *tableMeta, given *uint64) (uint64, error) {
		return p.autoIncNextLocal(m, given)
	})
	p.handleSeq(methodAutoIncPeek, func(m *tableMeta, _ *uint64) (uint64, error) {
		return p.autoIncPeekLocal(m)
	})
	p.handleSeq(methodRowID, func(m *tableMeta, _ *uint64) (uint64, error) {
		return p.nextRowIDLocal(m)
	})
}

// handleSeq serves a sequence method at the leader: decode the table and
// the given value, find the table, answer one value.
func (p *Provider) handleSeq(method uint8, fn func(m *tableMeta, given *uint64) (uint64, error)) {
	p.store.Handle(method, func(_ context.Context, req []byte) ([]byte, error) {
		id, given, hasGiven, err := decodeSeqReq(req)
		if err != nil {
			return nil, err
		}
		m, err := p.leaderTable(id)
		if err != nil {
			return nil, err
		}
		var g *uint64
		if hasGiven {
			g = &given
		}
		v, err := fn(m, g)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.AppendUint64(nil, v), nil
	})
}

// callSeq asks the leader for one sequence value.
func (p *Provider) callSeq(ctx context.Context, method uint8, id uint64, given *uint64) (uint64, error) {
	resp, err := p.store.Call(ctx, method, encodeSeqReq(id, given))
	if err != nil {
		return 0, storeErr(err)
	}
	if len(resp) != 8 {
		return 0, fmt.Errorf("sqlfront: bad sequence response of %d bytes", len(resp))
	}
	return binary.BigEndian.Uint64(resp), nil
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

// leaderTable finds a table by ID for a sequence request, first making sure
// the sequences are this term's.
func (p *Provider) leaderTable(id uint64) (*tableMeta, error) {
	if !p.seqHere() {
		return nil, fmt.Errorf("sqlfront: sequences are not kept on this node")
	}
	p.catMu.RLock()
	defer p.catMu.RUnlock()
	for _, st := range p.dbs {
		for _, m := range st.tables {
			if m.def.ID == id {
				return m, nil
			}
		}
	}
	return nil, fmt.Errorf("sqlfront: no table with ID %d", id)
}

// seqHere reports whether this node hands out sequence values, resetting
// them when its leadership is of a new term: meanwhile another leader may
// have handed out values this node never saw.
func (p *Provider) seqHere() bool {
	term, ok := p.store.Leading()
	if !ok {
		return false
	}
	p.seqMu.Lock()
	defer p.seqMu.Unlock()
	if p.seqTerm != term {
		p.seqTerm = term
		p.autoInc = map[uint64]*autoIncState{}
		p.rowIDs = map[uint64]*rowIDState{}
	}
	return true
}

// autoIncNext hands out the next AUTO_INCREMENT value (given == nil) or
// moves the sequence past a given one, here or at the leader.
func (p *Provider) autoIncNext(ctx context.Context, m *tableMeta, given *uint64) (uint64, error) {
	if p.seqHere() {
		return p.autoIncNextLocal(m, given)
	}
	v, err := p.callSeq(ctx, methodAutoIncNext, m.def.ID, given)
	if err != nil {
		return 0, err
	}
	// Remember the value so this node's commit writes its watermark.
	st := p.autoIncFor(m.def.ID)
	st.mu.Lock()
	st.loaded = true
	if v+1 > st.next {
		st.next = v + 1
	}
	st.mu.Unlock()
	return v, nil
}

func (p *Provider) autoIncNextLocal(m *tableMeta, given *uint64) (uint64, error) {
	st, err := p.loadAutoInc(m)
	if err != nil {
		return 0, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if given == nil {
		v := st.next
		st.next++
		return v, nil
	}
	if *given >= st.next {
		st.next = *given + 1
	}
	return *given, nil
}

// autoIncPeek returns the value the next insert would get.
func (p *Provider) autoIncPeek(ctx context.Context, m *tableMeta) (uint64, error) {
	if p.seqHere() {
		return p.autoIncPeekLocal(m)
	}
	return p.callSeq(ctx, methodAutoIncPeek, m.def.ID, nil)
}

func (p *Provider) autoIncPeekLocal(m *tableMeta) (uint64, error) {
	st, err := p.loadAutoInc(m)
	if err != nil {
		return 0, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.next, nil
}

// nextRowID hands out a hidden row ID of a keyless table.
func (p *Provider) nextRowID(ctx context.Context, m *tableMeta) (uint64, error) {
	if p.seqHere() {
		return p.nextRowIDLocal(m)
	}
	return p.callSeq(ctx, methodRowID, m.def.ID, nil)
}
