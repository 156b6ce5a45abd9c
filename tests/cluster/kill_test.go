package cluster

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fogdb/fogdb/internal/freeport"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
)

// binary is a command of the project, built once per test binary on first
// use, in a directory TestMain removes.
type binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

var fogdbBin, fogwanBin binary

func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range []*binary{&fogdbBin, &fogwanBin} {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	}
	os.Exit(code)
}

// build builds cmd/name.
func (b *binary) build(t testing.TB, name string) string {
	t.Helper()
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "fogdb-cluster-bin-")
		if b.err != nil {
			return
		}
		bin := filepath.Join(b.dir, name)
		out, err := exec.Command("go", "build", "-o", bin, "github.com/fogdb/fogdb/cmd/"+name).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build cmd/%s: %w\n%s", name, err, out)
			return
		}
		b.path = bin
	})
	require.NoError(t, b.err)
	return b.path
}

func buildFogdb(t testing.TB) string { return fogdbBin.build(t, "fogdb") }

// proc is one fogdb process of a cluster. Its flags stay the same across
// restarts.
type proc struct {
	name      string
	mysqlAddr string
	adminAddr string
	peerAddr  string
	args      []string
	log       string

	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs the process and waits until it serves MySQL clients and its
// admin API.
func (p *proc) start(t testing.TB, bin string) {
	t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = dieWithParent()
	p.exited = make(chan struct{})
	require.NoError(t, p.cmd.Start())
	exited := p.exited
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(exited)
	}()

	db, err := sql.Open("mysql", p.dsn(""))
	require.NoError(t, err)
	defer db.Close()
	deadline := time.Now().Add(Patience)
	for {
		select {
		case <-exited:
			p.dumpLog(t)
			t.Fatalf("%s exited before serving: %v", p.name, p.cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			_, err = p.status()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.dumpLog(t)
			t.Fatalf("%s not serving within %v: %v", p.name, Patience, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dieWithParent makes the process get SIGKILL when the test binary dies
// (a test timeout panics without running cleanups), where the platform
// offers it (Linux's Pdeathsig).
func dieWithParent() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig"); f.IsValid() && f.CanSet() {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
	return attr
}

func (p *proc) running() bool {
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL (kill -9) and waits until the process is gone.
func (p *proc) kill(t testing.TB) {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(Patience):
		t.Errorf("%s (pid %d) survived SIGKILL for %v", p.name, p.cmd.Process.Pid, Patience)
	}
}

func (p *proc) dumpLog(t testing.TB) {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	t.Logf("%s log (%s), last part:\n%s", p.name, p.log, b)
}

func (p *proc) dsn(db string) string {
	return fmt.Sprintf("root@tcp(%s)/%s?timeout=5s", p.mysqlAddr, db)
}

var statusClient = &http.Client{Timeout: 5 * time.Second}

// status is the node's GET /status.
func (p *proc) status() (server.NodeStatus, error) {
	var st server.NodeStatus
	resp, err := statusClient.Get("http://" + p.adminAddr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, err
	}
	if len(st.Groups) == 0 {
		return st, errors.New("GET /status: no groups")
	}
	return st, nil
}

// newProc makes, without starting it, fogdb process name with its data
// and log in a new temporary directory, its own ports and the flags every
// test cluster uses.
func newProc(t *testing.T, name string, clusterTimeout time.Duration) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{
		name:      name,
		mysqlAddr: freeport.Addr(t),
		adminAddr: freeport.Addr(t),
		peerAddr:  freeport.Addr(t),
		log:       filepath.Join(dir, "fogdb.log"),
	}
	p.args = []string{"serve",
		"--node-id", p.name,
		"--data-dir", filepath.Join(dir, "data"),
		"--mysql-addr", p.mysqlAddr,
		"--admin-addr", p.adminAddr,
		"--peer-addr", p.peerAddr,
		"--cluster-secret", Secret,
		"--cluster-timeout", clusterTimeout.String(),
	}
	return p
}

// startProcs starts the processes in order, each once the one before
// serves, and kills them all when the test ends, passed or failed.
func startProcs(t *testing.T, ps []*proc) {
	t.Helper()
	bin := buildFogdb(t)
	t.Cleanup(func() {
		for _, p := range ps {
			p.kill(t)
		}
		if t.Failed() {
			for _, p := range ps {
				p.dumpLog(t)
			}
		}
	})
	for _, p := range ps {
		p.start(t, bin)
	}
}

// procCluster starts n fogdb processes on loopback: the first bootstraps
// the cluster, the others join it. They are killed when the test ends.
func procCluster(t *testing.T, n int, clusterTimeout time.Duration) []*proc {
	t.Helper()
	var ps []*proc
	for i := 0; i < n; i++ {
		p := newProc(t, fmt.Sprintf("n%d", i+1), clusterTimeout)
		if i > 0 {
			p.args = append(p.args, "--join", ps[0].peerAddr)
		}
		ps = append(ps, p)
	}
	startProcs(t, ps)
	// Every node sees every member and a leader.
	require.Eventually(t, func() bool {
		for _, p := range ps {
			st, err := p.status()
			if err != nil || len(st.Groups[0].Members) != n || st.Groups[0].Leader == "" {
				return false
			}
		}
		return true
	}, Patience, 20*time.Millisecond, "the cluster never formed")
	return ps
}

// procLeader waits until one of the running processes reports leading in a
// term above after, and returns it with its term.
func procLeader(t testing.TB, ps []*proc, after uint64) (int, uint64) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for time.Now().Before(deadline) {
		for i, p := range ps {
			if !p.running() {
				continue
			}
			st, err := p.status()
			if err == nil && st.Groups[0].Role == "Leader" && st.Groups[0].Term > after {
				return i, st.Groups[0].Term
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no process leads in a term above %d", after)
	return -1, 0
}

// kill -9 of the leader process, while 8 clients stream INSERTs to all
// three nodes, loses no acknowledged row: after a new leader is elected and
// more inserts are acknowledged, every acknowledged row is on every
// surviving node, no row refused with 1047 is anywhere, no row exists that
// was not attempted, and the survivors hold the same rows. The killed node,
// restarted with the same flags, converges to the same rows.
func TestKillLeaderProcessLosesNoAcknowledgedRow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs fogdb processes")
	}
	const (
		clients        = 8
		clusterTimeout = 2 * time.Second
		before, after  = 200, 200 // acknowledgments wanted before the kill and after the election
	)
	ps := procCluster(t, 3, clusterTimeout)
	setup, err := sql.Open("mysql", ps[0].dsn(""))
	require.NoError(t, err)
	defer setup.Close()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for _, q := range []string{
		"CREATE DATABASE k",
		"CREATE TABLE k.t (id BIGINT PRIMARY KEY, client INT NOT NULL, node INT NOT NULL, pad VARCHAR(40))",
	} {
		_, err := setup.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}

	// Every node knows the table at once: a statement's read barrier runs
	// before its table names are resolved
	// (TestFollowerCutFromLeaderServesNoStaleCatalog).
	for _, p := range ps {
		db, err := sql.Open("mysql", p.dsn("k"))
		require.NoError(t, err)
		qctx, qcancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, db.QueryRowContext(qctx, "SELECT COUNT(*) FROM t").Scan(new(int)), "%s knows table k.t", p.name)
		qcancel()
		db.Close()
	}

	// Each client starts on node k%3 and moves to the next node after an
	// error, as a client with a list of servers does.
	var (
		out  writeOutcomes
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for k := 0; k < clients; k++ {
		pools := make([]*sql.DB, len(ps))
		for i, p := range ps {
			pools[i], err = sql.Open("mysql", p.dsn("k"))
			require.NoError(t, err)
			pools[i].SetMaxOpenConns(1)
			defer pools[i].Close()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := k % len(ps)
			for seq := int64(0); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				id := int64(k)*10_000_000 + seq
				ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout+10*time.Second)
				_, err := pools[node].ExecContext(ctx, fmt.Sprintf("INSERT INTO t VALUES (%d, %d, %d, 'c%d-%d')", id, k, node, k, seq))
				hung := ctx.Err() != nil
				cancel()
				switch {
				case hung:
					out.record(id, fmt.Errorf("no answer from %s within %v: %w", ps[node].name, clusterTimeout+10*time.Second, err))
				case err != nil && errNo(err) == 0:
					// The connection broke or could not be made: the
					// row may or may not have been written.
					out.mu.Lock()
					out.unknown = append(out.unknown, id)
					out.mu.Unlock()
				default:
					out.record(id, err)
				}
				if err != nil {
					node = (node + 1) % len(ps)
				}
			}
		}()
	}
	stopClients := func() {
		close(stop)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(Patience):
			t.Fatalf("clients still busy %v after being stopped", Patience)
		}
	}
	waitAcked := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(Patience)
		for out.ackedCount() < n {
			if time.Now().After(deadline) {
				stopClients()
				t.Fatalf("%s: only %d of %d inserts acknowledged within %v; errors: %v", what, out.ackedCount(), n, Patience, out.other)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	waitAcked(before, "before the kill")
	l, oldTerm := procLeader(t, ps, 0)
	ps[l].kill(t)
	t.Logf("killed the leader %s (term %d) after %d acknowledged inserts", ps[l].name, oldTerm, out.ackedCount())
	nl, newTerm := procLeader(t, ps, oldTerm)
	atElection := out.ackedCount()
	t.Logf("%s leads in term %d; %d inserts acknowledged", ps[nl].name, newTerm, atElection)
	waitAcked(atElection+after, "after the election")
	stopClients()

	out.mu.Lock()
	defer out.mu.Unlock()
	t.Logf("inserts: %d acknowledged, %d refused with 1047, %d of unknown outcome (1180 or a broken connection)",
		len(out.acked), len(out.unavailable), len(out.unknown))
	require.Empty(t, out.other, "errors other than 1047, 1180 and broken connections, or statements not answered")

	attempted := map[int64]bool{}
	for _, id := range out.acked {
		attempted[id] = true
	}
	for _, id := range out.unknown {
		attempted[id] = true
	}
	var want string
	for i, p := range ps {
		if i == l {
			continue
		}
		sum := settledChecksum(t, p.dsn(""))
		if want == "" {
			want = sum
		}
		require.Equal(t, want, sum, "%s holds other rows than the other survivor", p.name)

		db, err := sql.Open("mysql", p.dsn("k"))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), Patience)
		ids, err := queryIDs(ctx, db, "SELECT id FROM t")
		cancel()
		db.Close()
		require.NoError(t, err)
		has := map[int64]bool{}
		var phantom []int64
		for _, id := range ids {
			has[id] = true
			if !attempted[id] {
				phantom = append(phantom, id)
			}
		}
		var missing, refused []int64
		for _, id := range out.acked {
			if !has[id] {
				missing = append(missing, id)
			}
		}
		for _, id := range out.unavailable {
			if has[id] {
				refused = append(refused, id)
			}
		}
		sort.Slice(missing, func(a, b int) bool { return missing[a] < missing[b] })
		require.Empty(t, missing, "%s: acknowledged rows missing", p.name)
		require.Empty(t, refused, "%s: rows refused with 1047 were written", p.name)
		require.Empty(t, phantom, "%s: rows nobody inserted, or whose INSERT was refused", p.name)
	}

	// The killed node comes back with the same flags (its --join, if any,
	// is ignored: it has state) and converges.
	ps[l].start(t, buildFogdb(t))
	require.Equal(t, want, settledChecksum(t, ps[l].dsn("")), "the restarted %s holds other rows than the survivors", ps[l].name)
	st, err := ps[l].status()
	require.NoError(t, err)
	require.Len(t, st.Groups[0].Members, 3)
}
