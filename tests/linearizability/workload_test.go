package linearizability

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/go-sql-driver/mysql"

	"github.com/fogdb/fogdb/server"
	"github.com/fogdb/fogdb/tests/cluster"
)

// keys is how many registers the clients use; register probeKey (= keys)
// is written and read only by the probe.
const (
	keys     = 4
	probeKey = keys
	nodes    = 3
)

// opTimeout bounds one client operation. The server answers within about
// its cluster Timeout (1 s here) plus a forwarded commit's margin; this is
// only the backstop for a connection that hangs.
const opTimeout = 10 * time.Second

// settings are a run's sizes, from the environment.
type settings struct {
	ops, faults, clients int
	seed                 uint64
	checkTimeout         time.Duration
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return n
}

func loadSettings(t *testing.T) settings {
	s := settings{
		ops:          envInt(t, "FOGDB_LIN_OPS", 2000),
		faults:       envInt(t, "FOGDB_LIN_FAULTS", 10),
		clients:      envInt(t, "FOGDB_LIN_CLIENTS", 8),
		seed:         uint64(time.Now().UnixNano()),
		checkTimeout: time.Duration(envInt(t, "FOGDB_LIN_CHECK_TIMEOUT", 60)) * time.Second,
	}
	if v := os.Getenv("FOGDB_LIN_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FOGDB_LIN_SEED=%q: %v", v, err)
		}
		s.seed = n
	}
	if s.clients < 1 {
		s.clients = 1
	}
	return s
}

// The register model: state is a register's value (int64), partitioned by
// key.

type regInput struct {
	Key   int
	Write bool
	Value int64 // the value written
	Open  bool  // an open-ended write (for the visualisation only)
}

var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(regInput).Key
			byKey[k] = append(byKey[k], op)
		}
		ks := make([]int, 0, len(byKey))
		for k := range byKey {
			ks = append(ks, k)
		}
		sort.Ints(ks)
		out := make([][]porcupine.Operation, 0, len(ks))
		for _, k := range ks {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.Write {
			return true, in.Value
		}
		return output.(int64) == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		switch {
		case !in.Write && output.(int64) == noRow:
			return fmt.Sprintf("read(k%d) -> no row", in.Key)
		case !in.Write:
			return fmt.Sprintf("read(k%d) -> %d", in.Key, output.(int64))
		case in.Open:
			return fmt.Sprintf("write(k%d, %d) ?", in.Key, in.Value)
		default:
			return fmt.Sprintf("write(k%d, %d)", in.Key, in.Value)
		}
	},
	DescribeState: func(state any) string { return strconv.FormatInt(state.(int64), 10) },
}

// noRow stands for a read that found no row; no write writes it.
const noRow int64 = -1

// outcome is what a client learnt of an operation.
type outcome uint8

const (
	done    outcome = iota // completed; for a read, its value is known
	refused                // not applied, by the server's word (1047, 1205, 1213)
	unknown                // may or may not have taken effect
)

// record is one operation as a client saw it.
type record struct {
	client, node int
	in           regInput
	read         int64 // a completed read's value
	outcome      outcome
	call, ret    int64 // nanoseconds since the run started, monotonic
	class        string
	err          string
}

// classify sorts a client error. Anything the server did not state as
// "not applied" is unknown.
func classify(err error) (outcome, string) {
	if err == nil {
		return done, ""
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1047, 1205, 1213:
			return refused, strconv.Itoa(int(me.Number))
		}
		return unknown, strconv.Itoa(int(me.Number))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return unknown, "timeout"
	}
	return unknown, "connection"
}

// fault is one injected fault.
type fault struct {
	kind       string // kill, isolate, cut
	what       string
	start, end int64
}

// workload is one run: a cluster, its clients and the nemesis.
type workload struct {
	t     *testing.T
	c     *cluster.Cluster
	s     settings
	stale bool // UnsafeStaleReads on, and the nemesis only isolates followers
	start time.Time

	nextValue atomic.Int64
	completed atomic.Int64 // records with outcome done

	mu      sync.Mutex
	records []record

	faults       []fault
	probeDBs     []*sql.DB
	probeWrites  int // probe writes acknowledged
	probeReads   int // probe reads on an isolated node that returned a value
	probeStale   int // ... a value other than the acknowledged probe write's
	probeRefused int // probe reads on an isolated node that failed
}

func newWorkload(t *testing.T, s settings, stale bool) *workload {
	// A node that joins with UnsafeStaleReads does not wait to catch up
	// (the start-up wait is a read barrier), finds no users and refuses to
	// start; so the cluster forms without it and each node then restarts
	// with it.
	staleNow := false
	c := cluster.Start(t, nodes, func(_ int, cfg *server.Config) {
		cfg.Cluster.Timeout = time.Second
		cfg.Cluster.UnsafeStaleReads = staleNow
	})
	if stale {
		staleNow = true
		for i := range c.Nodes {
			c.StopNode(i)
			c.StartNode(i)
			c.Leader()
		}
	}
	c.Exec(c.Leader(), "CREATE DATABASE lin", "CREATE TABLE lin.reg (k INT PRIMARY KEY, v INT NOT NULL)")
	for k := 0; k <= probeKey; k++ {
		c.Exec(c.Leader(), fmt.Sprintf("INSERT INTO lin.reg VALUES (%d, 0)", k))
	}
	w := &workload{t: t, c: c, s: s, stale: stale}
	w.settle()
	for i := range c.Nodes {
		w.probeDBs = append(w.probeDBs, w.open(i))
	}
	return w
}

func (w *workload) now() int64 { return int64(time.Since(w.start)) }

// open is a client's own connection to node i (a pool of one).
func (w *workload) open(i int) *sql.DB {
	dsn := fmt.Sprintf("root@tcp(%s)/lin?interpolateParams=true&timeout=2s&readTimeout=%s&writeTimeout=%s",
		w.c.Nodes[i].MySQLAddr, opTimeout, opTimeout)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		w.t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	w.t.Cleanup(func() { db.Close() })
	return db
}

// op runs one operation on a connection of db and records it. After any
// error the connection is dropped and the next operation opens a new one:
// not only after a broken connection, since a server stopped in-process
// keeps serving the connections it had, answering 1047 to everything, so
// a client that kept one would never reach the restarted node (see
// TestStoppedServerClosesConnections).
func (w *workload) op(db *sql.DB, client, node int, in regInput) record {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	r := record{client: client, node: node, in: in}
	var changed int64 = 1
	r.call = w.now()
	conn, err := db.Conn(ctx)
	if err == nil {
		if in.Write {
			var res sql.Result
			res, err = conn.ExecContext(ctx, "UPDATE reg SET v = ? WHERE k = ?", in.Value, in.Key)
			if err == nil {
				changed, _ = res.RowsAffected()
			}
		} else {
			err = conn.QueryRowContext(ctx, "SELECT v FROM reg WHERE k = ?", in.Key).Scan(&r.read)
			if errors.Is(err, sql.ErrNoRows) {
				// Every register's row exists from the start: an answer
				// without it is a read like any other, and a wrong one.
				r.read, err = noRow, nil
			}
		}
	}
	r.ret = w.now()
	if conn != nil {
		if err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}
	r.outcome, r.class = classify(err)
	if err != nil {
		r.err = err.Error()
	} else if changed != 1 {
		// The row exists and the value is new: anything but one changed
		// row is wrong, and what was written is unclear.
		r.outcome, r.class = unknown, "rows-affected"
		r.err = fmt.Sprintf("UPDATE of an existing row to a new value changed %d rows", changed)
	}
	w.mu.Lock()
	w.records = append(w.records, r)
	w.mu.Unlock()
	if r.outcome == done {
		w.completed.Add(1)
	}
	return r
}

// client runs random reads and writes against node until stop closes.
func (w *workload) client(id, node int, stop <-chan struct{}) {
	db := w.open(node)
	rng := rand.New(rand.NewPCG(w.s.seed, uint64(id)+1))
	for {
		select {
		case <-stop:
			return
		default:
		}
		in := regInput{Key: rng.IntN(keys)}
		if rng.IntN(2) == 0 {
			in.Write = true
			in.Value = w.nextValue.Add(1)
		}
		if r := w.op(db, id, node, in); r.outcome != done {
			// A stopped node refuses at once: do not spin on it.
			pause(stop, time.Duration(20+rng.IntN(30))*time.Millisecond)
		}
	}
}

// pause waits d, or less if stop closes.
func pause(stop <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
}

// run starts the clients, injects faults until both the operation and the
// fault targets are met, then stops the clients, heals everything and has
// every node read every register once more.
func (w *workload) run() {
	t, c := w.t, w.c
	rng := rand.New(rand.NewPCG(w.s.seed, 0))
	w.start = time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := 0; id < w.s.clients; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(id, id%nodes, stop)
		}()
	}
	stopped := false
	stopClients := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopClients()

	deadline := time.Now().Add(2*time.Minute + time.Duration(w.s.faults)*20*time.Second + time.Duration(w.s.ops)*5*time.Millisecond)
	pause(nil, 500*time.Millisecond)
	for i := 0; len(w.faults) < w.s.faults || w.completed.Load() < int64(w.s.ops); i++ {
		if time.Now().After(deadline) {
			t.Errorf("after %d faults, only %d operations completed (want %d)", len(w.faults), w.completed.Load(), w.s.ops)
			break
		}
		w.inject(i, rng)
		w.settle()
		pause(nil, time.Duration(200+rng.IntN(400))*time.Millisecond)
	}
	stopClients()
	c.Net.Heal()
	w.settle()
	// Every node's final word on every register: once the cluster is whole
	// again, each node must answer.
	for i := range c.Nodes {
		for k := 0; k <= probeKey; k++ {
			deadline := time.Now().Add(20 * time.Second)
			r := w.op(w.probeDBs[i], w.s.clients, i, regInput{Key: k})
			for r.outcome != done && time.Now().Before(deadline) {
				pause(nil, 100*time.Millisecond)
				r = w.op(w.probeDBs[i], w.s.clients, i, regInput{Key: k})
			}
			if r.outcome != done {
				t.Errorf("%s cannot serve a read of k%d after the cluster healed: %s", c.Nodes[i].Name, k, r.err)
			}
		}
	}
}

// inject runs fault i: leader kills and network faults alternate; in the
// stale-read run every fault isolates a follower.
func (w *workload) inject(i int, rng *rand.Rand) {
	t, c := w.t, w.c
	hold := time.Duration(800+rng.IntN(800)) * time.Millisecond
	f := fault{start: w.now()}
	switch {
	case w.stale || i%4 == 1:
		var n int
		if w.stale {
			n = c.Follower()
		} else {
			n = rng.IntN(nodes)
		}
		f.kind, f.what = "isolate", c.Nodes[n].Name
		if c.Nodes[n].Srv.Group().IsLeader() {
			f.what += " (leader)"
		}
		until := time.Now().Add(hold)
		c.Net.Isolate(c.Nodes[n].Name)
		w.probe(n, until)
		pause(nil, time.Until(until))
		c.Net.Heal()
	case i%4 == 3:
		a := rng.IntN(nodes)
		b := (a + 1 + rng.IntN(nodes-1)) % nodes
		f.kind, f.what = "cut", c.Nodes[a].Name+"-"+c.Nodes[b].Name
		c.Net.Cut(c.Nodes[a].Name, c.Nodes[b].Name)
		pause(nil, hold)
		c.Net.Heal()
	default:
		l := c.Leader()
		f.kind, f.what = "kill", c.Nodes[l].Name
		// As a crash: no hand-over of leadership, the others elect.
		c.CrashNode(l)
		pause(nil, hold)
		c.StartNode(l)
	}
	f.end = w.now()
	var prevEnd int64
	if len(w.faults) > 0 {
		prevEnd = w.faults[len(w.faults)-1].end
	}
	w.faults = append(w.faults, f)
	t.Logf("fault %d: %s %s for %s (operations completed so far: %d; errors since the last fault: %s)", len(w.faults), f.kind, f.what,
		time.Duration(f.end-f.start).Round(time.Millisecond), w.completed.Load(), w.errorsSince(prevEnd))
}

// errorsSince counts the errors of operations called at or after from, by
// class.
func (w *workload) errorsSince(from int64) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := map[string]int{}
	last := map[string]string{}
	for _, r := range slices.Backward(w.records) {
		if r.call < from {
			break
		}
		if r.class != "" {
			n[r.class]++
			if _, ok := last[r.class]; !ok {
				last[r.class] = r.err
			}
		}
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		out = append(out, fmt.Sprintf("%s: %d", k, n[k]))
		if testing.Verbose() && os.Getenv("FOGDB_LIN_DEBUG") != "" {
			out = append(out, fmt.Sprintf("(last: %s)", last[k]))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// probe, while node n is cut off: write the probe register through the
// other nodes until a write is acknowledged, then read it on n until
// until. A node that serves that read must return the acknowledged value.
func (w *workload) probe(n int, until time.Time) {
	client := w.s.clients
	var want int64
	const patience = 15 * time.Second
	deadline := time.Now().Add(patience)
	for attempt := 0; ; attempt++ {
		if time.Now().After(deadline) {
			w.t.Logf("probe: no write acknowledged by the majority within %s", patience)
			return
		}
		m := (n + 1 + attempt%(nodes-1)) % nodes
		v := w.nextValue.Add(1)
		r := w.op(w.probeDBs[m], client, m, regInput{Key: probeKey, Write: true, Value: v})
		if r.outcome == done {
			want = v
			w.probeWrites++
			break
		}
		pause(nil, 50*time.Millisecond)
	}
	for first := true; first || time.Now().Before(until); first = false {
		r := w.op(w.probeDBs[n], client, n, regInput{Key: probeKey})
		switch {
		case r.outcome != done:
			w.probeRefused++
		case r.read != want:
			w.probeReads++
			w.probeStale++
		default:
			w.probeReads++
		}
		pause(nil, 20*time.Millisecond)
	}
}

// settle waits until a leader is elected and every node has applied what
// it had applied, and, with read barriers on, until every node passes one.
func (w *workload) settle() {
	c := w.c
	l := c.Leader()
	idx := c.Nodes[l].Srv.Group().FSM().Applied()
	ctx, cancel := context.WithTimeout(context.Background(), cluster.Patience)
	defer cancel()
	for i, nd := range c.Nodes {
		if err := nd.Srv.Group().FSM().WaitApplied(ctx, idx); err != nil {
			w.t.Fatalf("%s did not catch up to index %d: %v", nd.Name, idx, err)
		}
		if !w.stale {
			c.WaitMember(i)
		}
	}
}

// histStats describe how the records became a history.
type histStats struct {
	records, readsOK, readsFailed, writesOK, writesRefused, writesUnknown int
	openKept, openDropped                                                 int
	classes                                                               map[string]int
	example                                                               map[string]string // an error message of each class
	// refusedSeen are writes the server called not applied whose value a
	// read returned.
	refusedSeen []record
}

// history turns the records into porcupine operations (see the package
// comment for the rules).
func (w *workload) history() ([]porcupine.Operation, histStats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := histStats{records: len(w.records), classes: map[string]int{}, example: map[string]string{}}
	seen := map[int64]bool{}
	var end int64
	for _, r := range w.records {
		if !r.in.Write && r.outcome == done {
			seen[r.read] = true
		}
		end = max(end, r.ret)
	}
	end++
	var ops []porcupine.Operation
	for _, r := range w.records {
		if r.class != "" {
			c := fmt.Sprintf("%s %s", map[bool]string{true: "write", false: "read"}[r.in.Write], r.class)
			st.classes[c]++
			if _, ok := st.example[c]; !ok {
				st.example[c] = r.err
			}
		}
		meta := fmt.Sprintf("client %d on %s", r.client, w.c.Nodes[r.node].Name)
		if r.err != "" {
			meta += ": " + r.err
		}
		op := porcupine.Operation{ClientId: r.client, Input: r.in, Call: r.call, Return: r.ret, Metadata: meta}
		switch {
		case !r.in.Write && r.outcome == done:
			st.readsOK++
			op.Output = r.read
		case !r.in.Write:
			st.readsFailed++
			continue
		case r.outcome == done:
			st.writesOK++
		default:
			if r.outcome == refused {
				st.writesRefused++
			} else {
				st.writesUnknown++
			}
			if !seen[r.in.Value] {
				st.openDropped++
				continue
			}
			if r.outcome == refused {
				st.refusedSeen = append(st.refusedSeen, r)
			}
			st.openKept++
			op.Input = regInput{Key: r.in.Key, Write: true, Value: r.in.Value, Open: true}
			op.Return = end
		}
		ops = append(ops, op)
	}
	return ops, st
}

// logStats reports a run.
func (w *workload) logStats(ops []porcupine.Operation, st histStats) {
	t := w.t
	kinds := map[string]int{}
	for _, f := range w.faults {
		kinds[f.kind]++
	}
	t.Logf("run: seed %d, %d clients, %s; %d faults %v", w.s.seed, w.s.clients,
		time.Duration(w.now()).Round(time.Millisecond), len(w.faults), kinds)
	t.Logf("operations: %d recorded, %d checked: reads %d ok / %d failed; writes %d ok / %d refused / %d outcome unknown",
		st.records, len(ops), st.readsOK, st.readsFailed, st.writesOK, st.writesRefused, st.writesUnknown)
	t.Logf("open-ended writes: %d kept (a read saw the value), %d left out (no read saw it)", st.openKept, st.openDropped)
	classes := make([]string, 0, len(st.classes))
	for k, n := range st.classes {
		classes = append(classes, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(classes)
	t.Logf("errors: %s", strings.Join(classes, ", "))
	for _, k := range slices.Sorted(maps.Keys(st.example)) {
		t.Logf("  e.g. %s: %s", k, st.example[k])
	}
	if os.Getenv("FOGDB_LIN_DEBUG") != "" {
		for _, r := range w.records {
			if d := time.Duration(r.ret - r.call); d > 2*time.Second {
				t.Logf("slow: %s at %s on %s: %+v %s", d, time.Duration(r.call), w.c.Nodes[r.node].Name, r.in, r.err)
			}
		}
	}
	t.Logf("probe on isolated nodes: %d writes acknowledged by the majority; reads there: %d answered (%d stale), %d failed",
		w.probeWrites, w.probeReads, w.probeStale, w.probeRefused)
}

// check runs porcupine. On anything but Ok it writes the visualisation to
// a new file in dir (the system's temporary directory when empty) and
// returns its path.
func (w *workload) check(ops []porcupine.Operation, dir string) (porcupine.CheckResult, string) {
	t := w.t
	began := time.Now()
	res := porcupine.CheckOperationsTimeout(registerModel, ops, w.s.checkTimeout)
	t.Logf("check: porcupine says %s for %d operations in %s", res, len(ops), time.Since(began).Round(time.Millisecond))
	if res == porcupine.Ok {
		return res, ""
	}
	_, info := porcupine.CheckOperationsVerbose(registerModel, ops, w.s.checkTimeout)
	var notes []porcupine.Annotation
	for _, f := range w.faults {
		notes = append(notes, porcupine.Annotation{Tag: "nemesis", Start: f.start, End: f.end,
			Description: f.kind + " " + f.what})
	}
	info.AddAnnotations(notes)
	f, err := os.CreateTemp(dir, "fogdb-linearizability-*.html")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := porcupine.Visualize(registerModel, info, f); err != nil {
		t.Fatalf("writing the visualisation: %v", err)
	}
	return res, f.Name()
}

// sameData requires every node to hold the same rows.
func (w *workload) sameData() {
	sums := map[string][]string{}
	for i, nd := range w.c.Nodes {
		s := w.c.Checksum(i)
		sums[s] = append(sums[s], nd.Name)
	}
	if len(sums) != 1 {
		w.t.Errorf("nodes hold different data: %v", sums)
	}
}
