package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// txnOutcomes records what the clients were told about each transaction.
type txnOutcomes struct {
	mu      sync.Mutex
	acked   []int // committed: all its rows everywhere
	unknown []int // 1180 or a broken connection at COMMIT: all rows or none
	other   []error
}

func (o *txnOutcomes) add(list *[]int, txn int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	*list = append(*list, txn)
}

func (o *txnOutcomes) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.other = append(o.other, err)
}

// seqTable is the table a client writes: half the clients write the
// keyless table k, half the AUTO_INCREMENT table a (a transaction
// rejected for one table's sake would hide what became of the other's
// rows).
func seqTable(client int) string { return [...]string{"k", "a"}[client%2] }

// seqInsert is the statement of one client transaction: three rows
// tagged with the transaction.
func seqInsert(client, txn int) string {
	var rows []string
	for i := 0; i < 3; i++ {
		rows = append(rows, fmt.Sprintf("(%d, %d, %d)", client, txn, i))
	}
	return fmt.Sprintf("INSERT INTO %s (client, txn, i) VALUES %s", seqTable(client), strings.Join(rows, ", "))
}

// Keyless and AUTO_INCREMENT tables keep every acknowledged row across
// leader crashes, and no insert fails with 1062. 8 clients write
// multi-row transactions on 3 nodes, half of them to each table. In each round, every client opens a
// transaction on a follower and inserts (taking hidden row IDs and
// AUTO_INCREMENT values from the leader), the leader crashes, every client
// commits another transaction through a survivor (values handed out by the
// new leader), and only then commits the first one. The crashed node
// restarts before the next round, so leadership moves three times.
func TestSequencesKeepEveryRowAcrossLeaderCrashes(t *testing.T) {
	const (
		clients = 8
		rounds  = 3
	)
	c := Start(t, 3, shortClusterTimeout)
	c.Exec(c.Leader(),
		"CREATE DATABASE s",
		"CREATE TABLE s.k (client INT NOT NULL, txn INT NOT NULL, i INT NOT NULL)",
		"CREATE TABLE s.a (id BIGINT AUTO_INCREMENT PRIMARY KEY, client INT NOT NULL, txn INT NOT NULL, i INT NOT NULL)",
	)
	for i := range c.Nodes {
		c.WaitMember(i)
	}
	var out txnOutcomes

	// open runs stmts in a new transaction on a new session of node i,
	// retrying while the node answers 1047 (nothing written), and returns
	// the session with the transaction still open.
	open := func(i, client, txn int) (*sql.Conn, error) {
		deadline := time.Now().Add(Patience)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), answerBound)
			conn, err := c.DB(i, "s").Conn(ctx)
			cancel()
			if err != nil {
				return nil, err
			}
			err = boundedExec(t, conn, "BEGIN")
			if err == nil {
				err = boundedExec(t, conn, seqInsert(client, txn))
			}
			if err == nil {
				return conn, nil
			}
			conn.Close()
			if errNo(err) != erUnavailable || time.Now().After(deadline) {
				return nil, fmt.Errorf("client %d, txn %d on %s: %w", client, txn, c.Nodes[i].Name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	commit := func(conn *sql.Conn, client, txn int) {
		defer conn.Close()
		err := boundedExec(t, conn, "COMMIT")
		switch {
		case err == nil:
			out.add(&out.acked, txn)
		case errNo(err) == erOutcomeUnknown, errNo(err) == 0:
			out.add(&out.unknown, txn)
		default:
			out.fail(fmt.Errorf("client %d, COMMIT of txn %d: %w", client, txn, err))
		}
	}
	parallel := func(fn func(client int)) {
		var wg sync.WaitGroup
		for k := 0; k < clients; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fn(k)
			}()
		}
		wg.Wait()
	}

	for round := 0; round < rounds; round++ {
		l := c.Leader()
		var nodes []int
		for i := range c.Nodes {
			if i != l {
				nodes = append(nodes, i)
			}
		}
		held := make([]*sql.Conn, clients)
		openErrs := make([]error, clients)
		parallel(func(k int) {
			held[k], openErrs[k] = open(nodes[k/2%2], k, 1000*round+10*k)
		})
		for _, err := range openErrs {
			require.NoError(t, err, "before the crash")
		}

		oldTerm := term(c, l)
		c.CrashNode(l)
		nl := waitNewLeader(t, c, l, oldTerm)
		t.Logf("round %d: %s crashed (term %d), %s leads", round, c.Nodes[l].Name, oldTerm, c.Nodes[nl].Name)

		parallel(func(k int) {
			txn := 1000*round + 10*k + 1
			conn, err := open(nodes[(k/2+1)%2], k, txn)
			if err != nil {
				out.fail(err)
				return
			}
			commit(conn, k, txn)
		})
		parallel(func(k int) {
			if held[k] != nil {
				commit(held[k], k, 1000*round+10*k)
			}
		})
		c.StartNode(l)
		c.WaitMember(l)
	}

	out.mu.Lock()
	defer out.mu.Unlock()
	t.Logf("transactions: %d acknowledged, %d of unknown outcome", len(out.acked), len(out.unknown))
	requireConverged(t, c)

	unknown := map[int]bool{}
	for _, txn := range out.unknown {
		unknown[txn] = true
	}
	var lost []string
	for i := range c.Nodes {
		for _, table := range []string{"k", "a"} {
			counts := map[int]int{}
			ctx, cancel := context.WithTimeout(context.Background(), Patience)
			rows, err := c.DB(i, "s").QueryContext(ctx, "SELECT txn, COUNT(*) FROM "+table+" GROUP BY txn")
			require.NoError(t, err)
			for rows.Next() {
				var txn, n int
				require.NoError(t, rows.Scan(&txn, &n))
				counts[txn] = n
			}
			require.NoError(t, rows.Err())
			rows.Close()
			cancel()
			for _, txn := range out.acked {
				if seqTable(txn/10%10) != table {
					continue
				}
				if counts[txn] != 3 {
					lost = append(lost, fmt.Sprintf("%s: %d of 3 rows of acknowledged transaction %d in %s", c.Nodes[i].Name, counts[txn], txn, table))
				}
				delete(counts, txn)
			}
			for txn, n := range counts {
				require.True(t, unknown[txn] && n == 3, "%s: %d rows of transaction %d in %s, which was not acknowledged", c.Nodes[i].Name, n, txn, table)
			}
		}
	}
	require.Empty(t, lost, "acknowledged rows lost")
	require.Empty(t, out.other, "transactions failed (1062 or 1213 from a value handed out twice, or another error)")
}

// kill -9 of the leader process, twice, while 8 clients on 3 nodes commit
// three-row transactions into a keyless and an AUTO_INCREMENT table (with
// a pause inside each, so that transactions hold handed-out values while
// the next leader hands out more): every acknowledged transaction's rows are on every
// node, a transaction not acknowledged left all its rows or none, and no
// statement failed with 1062.
func TestKillLeaderProcessKeepsSequencedRows(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs fogdb processes")
	}
	const (
		clients        = 8
		clusterTimeout = 2 * time.Second
		per            = 20 // acknowledged transactions wanted between kills
	)
	ps := procCluster(t, 3, clusterTimeout)
	setup, err := sql.Open("mysql", ps[0].dsn(""))
	require.NoError(t, err)
	defer setup.Close()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for _, q := range []string{
		"CREATE DATABASE s",
		"CREATE TABLE s.k (client INT NOT NULL, txn INT NOT NULL, i INT NOT NULL)",
		"CREATE TABLE s.a (id BIGINT AUTO_INCREMENT PRIMARY KEY, client INT NOT NULL, txn INT NOT NULL, i INT NOT NULL)",
	} {
		_, err := setup.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}

	var (
		out  txnOutcomes
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for k := 0; k < clients; k++ {
		pools := make([]*sql.DB, len(ps))
		for i, p := range ps {
			pools[i], err = sql.Open("mysql", p.dsn("s"))
			require.NoError(t, err)
			pools[i].SetMaxOpenConns(1)
			defer pools[i].Close()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := k % len(ps)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				txn := 10_000*k + n
				err := func() error {
					ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout+10*time.Second)
					defer cancel()
					conn, err := pools[node].Conn(ctx)
					if err != nil {
						return err
					}
					defer conn.Close()
					if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
						return err
					}
					if _, err := conn.ExecContext(ctx, seqInsert(k, txn)); err != nil {
						_, _ = conn.ExecContext(ctx, "ROLLBACK")
						return err
					}
					// The values are held a while, up to longer than an
					// election, so that some are still held when the next
					// leader hands out more.
					time.Sleep(rand.N(3 * clusterTimeout))
					_, err = conn.ExecContext(ctx, "COMMIT")
					if err != nil && errNo(err) != erUnavailable {
						// Outcome unknown (1180, a broken connection):
						// either way, never 1062.
						return fmt.Errorf("COMMIT: %w", err)
					}
					return err
				}()
				switch {
				case err == nil:
					out.add(&out.acked, txn)
				case errNo(err) == erUnavailable:
					// Nothing written.
				case errNo(err) == erOutcomeUnknown || errNo(err) == 0:
					out.add(&out.unknown, txn)
				default:
					out.fail(fmt.Errorf("client %d, transaction %d: %w", k, txn, err))
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
	acked := func() int {
		out.mu.Lock()
		defer out.mu.Unlock()
		return len(out.acked)
	}
	waitAcked := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(Patience)
		for acked() < n {
			if time.Now().After(deadline) {
				stopClients()
				out.mu.Lock()
				defer out.mu.Unlock()
				t.Fatalf("%s: only %d of %d transactions acknowledged within %v; errors: %v", what, len(out.acked), n, Patience, out.other)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	var term uint64
	for kill := 0; kill < 2; kill++ {
		waitAcked(acked()+per, "before a kill")
		l, lt := procLeader(t, ps, max(term, 1)-1)
		ps[l].kill(t)
		var nl int
		nl, term = procLeader(t, ps, lt)
		t.Logf("killed the leader %s (term %d); %s leads in term %d", ps[l].name, lt, ps[nl].name, term)
		waitAcked(acked()+per, "after the election")
		ps[l].start(t, buildFogdb(t))
	}
	stopClients()

	out.mu.Lock()
	defer out.mu.Unlock()
	t.Logf("transactions: %d acknowledged, %d of unknown outcome", len(out.acked), len(out.unknown))
	require.Empty(t, out.other, "errors other than 1047, 1180 and broken connections (1062 above all)")
	unknown := map[int]bool{}
	for _, txn := range out.unknown {
		unknown[txn] = true
	}
	var want string
	for _, p := range ps {
		sum := settledChecksum(t, p.dsn(""))
		if want == "" {
			want = sum
		}
		require.Equal(t, want, sum, "%s holds other rows than the others", p.name)
	}
	db, err := sql.Open("mysql", ps[0].dsn("s"))
	require.NoError(t, err)
	defer db.Close()
	var lost []string
	for _, table := range []string{"k", "a"} {
		counts := map[int]int{}
		rows, err := db.QueryContext(ctx, "SELECT txn, COUNT(*) FROM "+table+" GROUP BY txn")
		require.NoError(t, err)
		for rows.Next() {
			var txn, n int
			require.NoError(t, rows.Scan(&txn, &n))
			counts[txn] = n
		}
		require.NoError(t, rows.Err())
		rows.Close()
		for _, txn := range out.acked {
			if seqTable(txn/10_000) != table {
				continue
			}
			if counts[txn] != 3 {
				lost = append(lost, fmt.Sprintf("%d of 3 rows of acknowledged transaction %d in %s", counts[txn], txn, table))
			}
			delete(counts, txn)
		}
		for txn, n := range counts {
			require.True(t, unknown[txn] && n == 3, "%d rows of transaction %d in %s, which was not acknowledged", n, txn, table)
		}
	}
	require.Empty(t, lost, "acknowledged rows lost")
}
