package linearizability

import (
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Registers read and written from every node stay linearizable while
// leaders are killed and the network is cut: porcupine finds a
// linearisation of the whole history, every node answers once the cluster
// is whole again and ends with the same data, and no write the server
// refused is ever read.
func TestLinearizableUnderFaults(t *testing.T) {
	s := loadSettings(t)
	w := newWorkload(t, s, false)
	w.run()
	ops, st := w.history()
	w.logStats(ops, st)

	if len(ops) < s.ops {
		t.Errorf("checked %d operations, want at least %d", len(ops), s.ops)
	}
	if len(w.faults) < s.faults {
		t.Errorf("injected %d faults, want at least %d", len(w.faults), s.faults)
	}
	if n := st.classes["write rows-affected"]; n > 0 {
		t.Errorf("%d UPDATEs of an existing row to a new value did not report one changed row", n)
	}
	for _, r := range st.refusedSeen {
		t.Errorf("write of %d to k%d on %s failed with %q (not applied), yet a read returned %d",
			r.in.Value, r.in.Key, w.c.Nodes[r.node].Name, r.err, r.in.Value)
	}
	res, path := w.check(ops, "")
	if res != porcupine.Ok {
		t.Errorf("porcupine: history of %d operations is %s (want %s); visualisation: %s", len(ops), res, porcupine.Ok, path)
	}
	w.sameData()
}

// The check can fail: with the read barrier off (UnsafeStaleReads), an
// isolated follower answers reads from its old state after the majority
// has acknowledged newer writes, and porcupine must reject the history.
func TestStaleReadsAreCaught(t *testing.T) {
	s := loadSettings(t)
	// Fewer faults and operations than the main test: one stale answer is
	// enough, and each isolation is probed.
	s.faults = max(3, s.faults/3)
	s.ops = max(300, s.ops/4)
	w := newWorkload(t, s, true)
	w.run()
	ops, st := w.history()
	w.logStats(ops, st)

	if w.probeStale == 0 {
		t.Fatalf("no read on an isolated follower returned a stale value (%d answered, %d failed): the knob did not make reads stale",
			w.probeReads, w.probeRefused)
	}
	// The expected violation's visualisation is kept only when asked for.
	dir := t.TempDir()
	if os.Getenv("FOGDB_LIN_DEBUG") != "" {
		dir = ""
	}
	began := time.Now()
	res, path := w.check(ops, dir)
	if res != porcupine.Illegal {
		t.Fatalf("porcupine: history with %d stale reads is %s, want %s (visualisation: %s)", w.probeStale, res, porcupine.Illegal, path)
	}
	t.Logf("as expected, not linearizable (visualisation written in %s: %s)", time.Since(began).Round(time.Millisecond), path)
}
