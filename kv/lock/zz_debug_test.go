package lock

import (
	"fmt"
	"strings"
)

func (m *Manager) dump() string {
	var b strings.Builder
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, e := range sh.entries {
			fmt.Fprintf(&b, "%s holders=%v queue=[", k, e.holders)
			for _, w := range e.queue {
				fmt.Fprintf(&b, "{%d %v st=%d} ", w.txn, w.mode, w.state)
			}
			b.WriteString("]\n")
		}
		sh.mu.Unlock()
	}
	for i := range m.txns {
		ts := &m.txns[i]
		ts.mu.Lock()
		for id, st := range ts.txns {
			fmt.Fprintf(&b, "txn %d keys=%v wait=%v\n", id, st.keys, st.wait != nil)
			if st.wait != nil {
				fmt.Fprintf(&b, "   waits %s %v\n", st.wait.key, st.wait.mode)
			}
		}
		ts.mu.Unlock()
	}
	return b.String()
}
