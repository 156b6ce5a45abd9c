package lock

// closesCycle reports whether a request of req that would wait for the
// transactions in blockers closes a cycle, that is whether req is reachable
// from one of them in the wait-for graph. Called with detect and own.mu held.
//
// The graph is not stored: a waiting transaction's edges are recomputed from
// the entry it is queued on. Edges only appear while detect is held (a new
// wait, or a grant made under detect), and grants and departures made
// concurrently only remove edges, so the walk can miss no cycle; at worst it
// sees an edge that has just gone.
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
