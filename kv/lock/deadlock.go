package lock

// closesCycle reports whether a request of req that would wait for the
// transactions in blockers closes a cycle, that is whether req is reachable
// from one of them in the wait-for graph. Called with detect and own.mu held.
//
// The graph is not stored: a waiting transaction's edges are recomputed from
// the entry it is queued on, and every shard visited stays locked until the
// walk ends, so the edges it follows are all still there when it answers.
// New edges only appear under detect: a new wait, or an upgrade granted over
// queued requests. Grants made elsewhere either find nobody waiting on the key
// or turn a waiter into a holder that those behind it already waited for, and
// departures only remove edges, so no cycle can form behind the walk's back.
func (m *Manager) closesCycle(req TxnID, blockers []TxnID, own *shard) bool {
	locked := []*shard{own}
	defer func() {
		for _, sh := range locked[1:] {
			sh.mu.Unlock()
		}
	}()

	seen := make(map[TxnID]struct{})
	stack := blockers
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if t == req {
			return true
		}
		if _, ok := seen[t]; ok {
			continue
		}
		seen[t] = struct{}{}

		w := m.waitOf(t)
		if w == nil {
			continue
		}
		if !containsShard(locked, w.sh) {
			// Holding detect makes it safe to hold several shard mutexes.
			w.sh.mu.Lock()
			locked = append(locked, w.sh)
		}
		if w.state != waiting {
			continue
		}
		e := w.sh.entries[w.key]
		for i, q := range e.queue {
			if q == w {
				stack = e.appendBlockers(stack, w.txn, w.mode, i)
				break
			}
		}
	}
	return false
}

func containsShard(list []*shard, sh *shard) bool {
	for _, s := range list {
		if s == sh {
			return true
		}
	}
	return false
}
