package wire

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	clients   = 16
	perClient = 50
)

// runClients runs n simulated clients at once and fails the test with every
// error they report. Clients start together to make their statements
// collide as much as possible.
func runClients(t *testing.T, n int, client func(id int) error) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make(chan error, n)
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			<-start
			if err := client(id); err != nil {
				errs <- fmt.Errorf("client %d: %w", id, err)
			}
		}(i)
	}
	close(start)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(5 * time.Minute):
		t.Fatal("clients did not finish within 5 minutes")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// Concurrent autocommit increments of one row must queue behind each other
// and each apply to the newest version: no error, no lost update.
func TestConcurrentAutocommitIncrements(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE c (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO c VALUES (1, 0), (2, 0)")
	db.SetMaxOpenConns(clients)

	runClients(t, clients, func(int) error {
		for i := 0; i < perClient; i++ {
			res, err := db.Exec("UPDATE c SET v = v + 1 WHERE id = 1")
			if err != nil {
				return fmt.Errorf("update %d: %w", i, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("update %d: %d rows affected (%v)", i, n, err)
			}
		}
		return nil
	})
	require.EqualValues(t, clients*perClient, queryInt(t, db, "SELECT v FROM c WHERE id = 1"))
	require.EqualValues(t, 0, queryInt(t, db, "SELECT v FROM c WHERE id = 2"), "a row the updates do not name changed")
}

// A read-modify-write through SELECT ... FOR UPDATE must read the newest
// committed value and hold the row until COMMIT; if the locking read
// returned a stale snapshot or did not lock, increments would be lost.
func TestConcurrentSelectForUpdateIncrements(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE c (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO c VALUES (1, 0)")
	conns := make([]*sql.Conn, clients)
	for i := range conns {
		conns[i] = clientConn(t, db)
	}
	ctx := context.Background()

	runClients(t, clients, func(id int) error {
		c := conns[id]
		for i := 0; i < perClient; i++ {
			if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
				return fmt.Errorf("txn %d BEGIN: %w", i, err)
			}
			var v int
			if err := c.QueryRowContext(ctx, "SELECT v FROM c WHERE id = 1 FOR UPDATE").Scan(&v); err != nil {
				return fmt.Errorf("txn %d SELECT FOR UPDATE: %w", i, err)
			}
			if _, err := c.ExecContext(ctx, fmt.Sprintf("UPDATE c SET v = %d WHERE id = 1", v+1)); err != nil {
				return fmt.Errorf("txn %d UPDATE: %w", i, err)
			}
			if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
				return fmt.Errorf("txn %d COMMIT: %w", i, err)
			}
		}
		return nil
	})
	require.EqualValues(t, clients*perClient, queryInt(t, db, "SELECT v FROM c WHERE id = 1"))
}

type transfer struct {
	src, dst, amt int
	tag           string
}

// Transfers between accounts in multi-statement transactions: deadlocks
// happen (two transfers locking the same accounts in opposite orders), the
// victim retries as a client would, and in the end the ledger and the
// balances agree exactly, with one ledger row per acknowledged commit.
func TestBankTransfers(t *testing.T) {
	const (
		accounts  = 10
		initial   = 1000
		transfers = 25
	)
	srv, db := startWithDB(t, "d",
		"CREATE TABLE acct (id INT PRIMARY KEY, bal BIGINT NOT NULL)",
		`CREATE TABLE ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL,
			amt INT NOT NULL, tag VARCHAR(32) NOT NULL, UNIQUE KEY tag (tag))`)
	for i := 1; i <= accounts; i++ {
		mustExec(t, db, "INSERT INTO acct VALUES (?, ?)", i, initial)
	}
	conns := make([]*sql.Conn, clients)
	for i := range conns {
		conns[i] = clientConn(t, db)
	}
	deadlocksBefore := srv.Provider().LockStats().Deadlocks

	var (
		mu      sync.Mutex
		acked   []transfer
		retries int
	)
	ctx := context.Background()
	attempt := func(c *sql.Conn, tr transfer) error {
		if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, "UPDATE acct SET bal = bal - ? WHERE id = ?", tr.amt, tr.src); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, "UPDATE acct SET bal = bal + ? WHERE id = ?", tr.amt, tr.dst); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, "INSERT INTO ledger (src, dst, amt, tag) VALUES (?, ?, ?, ?)",
			tr.src, tr.dst, tr.amt, tr.tag); err != nil {
			return err
		}
		_, err := c.ExecContext(ctx, "COMMIT")
		return err
	}
	runClients(t, clients, func(id int) error {
		c := conns[id]
		rng := rand.New(rand.NewSource(int64(id)))
		for i := 0; i < transfers; i++ {
			tr := transfer{src: 1 + rng.Intn(accounts), amt: 1 + rng.Intn(50), tag: fmt.Sprintf("c%d-%d", id, i)}
			tr.dst = 1 + (tr.src+rng.Intn(accounts-1))%accounts // never src
			for try := 0; ; try++ {
				err := attempt(c, tr)
				if err == nil {
					mu.Lock()
					acked = append(acked, tr)
					mu.Unlock()
					break
				}
				if !isMySQLError(err, 1213) {
					return fmt.Errorf("transfer %s: %w", tr.tag, err)
				}
				if st := asMySQL(err).SQLState; string(st[:]) != "40001" {
					return fmt.Errorf("transfer %s: deadlock error with SQLSTATE %s, want 40001", tr.tag, st[:])
				}
				if _, err := c.ExecContext(ctx, "ROLLBACK"); err != nil {
					return fmt.Errorf("transfer %s: ROLLBACK after deadlock: %w", tr.tag, err)
				}
				if try == 100 {
					return fmt.Errorf("transfer %s: still a deadlock victim after %d tries", tr.tag, try)
				}
				mu.Lock()
				retries++
				mu.Unlock()
			}
		}
		return nil
	})
	t.Logf("%d transfers committed, %d deadlock retries (lock table counted %d deadlocks)",
		len(acked), retries, srv.Provider().LockStats().Deadlocks-deadlocksBefore)

	// The ledger holds exactly the acknowledged transfers.
	rows, err := db.Query("SELECT src, dst, amt, tag FROM ledger")
	require.NoError(t, err)
	var ledger []transfer
	for rows.Next() {
		var tr transfer
		require.NoError(t, rows.Scan(&tr.src, &tr.dst, &tr.amt, &tr.tag))
		ledger = append(ledger, tr)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	byTag := func(s []transfer) { sort.Slice(s, func(i, j int) bool { return s[i].tag < s[j].tag }) }
	byTag(ledger)
	byTag(acked)
	require.Equal(t, clients*transfers, len(acked))
	require.Equal(t, acked, ledger, "ledger rows differ from the acknowledged commits")

	want := map[int]int64{}
	for i := 1; i <= accounts; i++ {
		want[i] = initial
	}
	for _, tr := range ledger {
		want[tr.src] -= int64(tr.amt)
		want[tr.dst] += int64(tr.amt)
	}
	var total int64
	for i := 1; i <= accounts; i++ {
		bal := queryInt(t, db, "SELECT bal FROM acct WHERE id = ?", i)
		require.Equal(t, want[i], bal, "balance of account %d", i)
		total += bal
	}
	require.EqualValues(t, accounts*initial, total, "money was created or destroyed")
	require.EqualValues(t, accounts*initial, queryInt(t, db, "SELECT SUM(bal) FROM acct"))
}

// Many clients insert the same keys at once: every key is stored once, and
// every loser hears MySQL's duplicate-key error, word for word.
func TestConcurrentDuplicateInserts(t *testing.T) {
	const keysPerRun = 20
	cases := []struct {
		name   string
		schema string
		insert func(k, who int) string
		key    func(k int) any
		msg    func(k int) string
		owner  string
	}{
		{
			name:   "unique key",
			schema: "CREATE TABLE u (id INT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(32) NOT NULL, who INT NOT NULL, UNIQUE KEY k (k))",
			insert: func(k, who int) string { return fmt.Sprintf("INSERT INTO u (k, who) VALUES ('key-%02d', %d)", k, who) },
			key:    func(k int) any { return fmt.Sprintf("key-%02d", k) },
			msg:    func(k int) string { return fmt.Sprintf("Duplicate entry 'key-%02d' for key 'u.k'", k) },
			owner:  "SELECT who FROM u WHERE k = ?",
		},
		{
			name:   "primary key",
			schema: "CREATE TABLE u (id INT PRIMARY KEY, who INT NOT NULL)",
			insert: func(k, who int) string { return fmt.Sprintf("INSERT INTO u (id, who) VALUES (%d, %d)", 1000+k, who) },
			key:    func(k int) any { return 1000 + k },
			msg:    func(k int) string { return fmt.Sprintf("Duplicate entry '%d' for key 'u.PRIMARY'", 1000+k) },
			owner:  "SELECT who FROM u WHERE id = ?",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, db := startWithDB(t, "d", tc.schema)
			conns := make([]*sql.Conn, clients)
			for i := range conns {
				conns[i] = clientConn(t, db)
				// A loser only ever waits for the winner's commit; the
				// bound keeps a failing run short.
				mustExec(t, conns[i], "SET innodb_lock_wait_timeout = 10")
			}
			var (
				mu      sync.Mutex
				winners = map[int][]int{}
				losses  int
			)
			runClients(t, clients, func(id int) error {
				order := rand.New(rand.NewSource(int64(id))).Perm(keysPerRun)
				for _, k := range order {
					_, err := conns[id].ExecContext(context.Background(), tc.insert(k, id))
					if err == nil {
						mu.Lock()
						winners[k] = append(winners[k], id)
						mu.Unlock()
						continue
					}
					me := asMySQL(err)
					if me == nil || me.Number != 1062 {
						return fmt.Errorf("key %v: want error 1062, got %w", tc.key(k), err)
					}
					if string(me.SQLState[:]) != "23000" || me.Message != tc.msg(k) {
						return fmt.Errorf("key %v: got %d (%s) %q, want 1062 (23000) %q",
							tc.key(k), me.Number, me.SQLState[:], me.Message, tc.msg(k))
					}
					mu.Lock()
					losses++
					mu.Unlock()
				}
				return nil
			})
			require.Equal(t, keysPerRun*(clients-1), losses)
			for k := 0; k < keysPerRun; k++ {
				require.Len(t, winners[k], 1, "clients that inserted key %v", tc.key(k))
				require.EqualValues(t, winners[k][0], queryInt(t, db, tc.owner, tc.key(k)), "owner of key %v", tc.key(k))
			}
			require.EqualValues(t, keysPerRun, queryInt(t, db, "SELECT COUNT(*) FROM u"))
		})
	}
}

// An INSERT that meets an uncommitted row with the same key waits for the
// other transaction, as InnoDB does: it succeeds if that transaction rolls
// back and fails with 1062 if it commits.
func TestInsertWaitsForUncommittedDuplicate(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE u (id INT PRIMARY KEY, k VARCHAR(32) NOT NULL, UNIQUE KEY k (k))")
	a, b := clientConn(t, db), clientConn(t, db)

	// The holder rolls back: the waiter's insert goes through.
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "INSERT INTO u VALUES (1, 'x')")
	waits := lockWaits(srv)
	done := execAsync(b, "INSERT INTO u VALUES (2, 'x')")
	awaitLockWaits(t, srv, waits+1)
	requirePending(t, done, "INSERT of a key another transaction inserted")
	mustExec(t, a, "ROLLBACK")
	require.NoError(t, outcome(t, done, "waiting INSERT"))
	require.Equal(t, []int64{2}, queryInts(t, db, "SELECT id FROM u WHERE k = 'x'"))

	// The holder commits: the waiter gets the duplicate-key error.
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "INSERT INTO u VALUES (3, 'y')")
	waits = lockWaits(srv)
	done = execAsync(b, "INSERT INTO u VALUES (4, 'y')")
	awaitLockWaits(t, srv, waits+1)
	requirePending(t, done, "INSERT of a key another transaction inserted")
	mustExec(t, a, "COMMIT")
	me := requireMySQLError(t, outcome(t, done, "waiting INSERT"), 1062, "23000")
	require.Equal(t, "Duplicate entry 'y' for key 'u.k'", me.Message)
	require.Equal(t, []int64{3}, queryInts(t, db, "SELECT id FROM u WHERE k = 'y'"))

	// The same on the primary key.
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "INSERT INTO u VALUES (5, 'z')")
	waits = lockWaits(srv)
	done = execAsync(b, "INSERT INTO u VALUES (5, 'w')")
	awaitLockWaits(t, srv, waits+1)
	mustExec(t, a, "COMMIT")
	me = requireMySQLError(t, outcome(t, done, "waiting INSERT"), 1062, "23000")
	require.Equal(t, "Duplicate entry '5' for key 'u.PRIMARY'", me.Message)
	require.Equal(t, []int64{1}, queryInts(t, db, "SELECT COUNT(*) FROM u WHERE id = 5"))
}

// Two transactions lock two rows in opposite orders: exactly one is chosen
// as the deadlock victim (1213, SQLSTATE 40001, its transaction rolled
// back) and the other goes on and commits.
func TestDeadlockAbortsOneVictim(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 0), (2, 0), (3, 0)")
	a, b := clientConn(t, db), clientConn(t, db)
	deadlocks := srv.Provider().LockStats().Deadlocks

	mustExec(t, a, "BEGIN")
	mustExec(t, b, "BEGIN")
	mustExec(t, a, "UPDATE r SET v = v + 1 WHERE id = 1")
	mustExec(t, b, "UPDATE r SET v = v + 10 WHERE id = 2")
	// Each writes a row nobody else touches, to check that the victim's
	// whole transaction goes, not just its last statement.
	mustExec(t, a, "UPDATE r SET v = v + 1 WHERE id = 3")
	mustExec(t, b, "INSERT INTO r VALUES (4, 10)")

	waits := lockWaits(srv)
	doneA := execAsync(a, "UPDATE r SET v = v + 1 WHERE id = 2")
	awaitLockWaits(t, srv, waits+1)
	doneB := execAsync(b, "UPDATE r SET v = v + 10 WHERE id = 1")

	errA := outcome(t, doneA, "A's second UPDATE")
	errB := outcome(t, doneB, "B's second UPDATE")
	var winner, victim = a, b
	victimErr := errB
	switch {
	case errA == nil && errB != nil:
	case errB == nil && errA != nil:
		winner, victim, victimErr = b, a, errA
	default:
		t.Fatalf("want exactly one deadlock victim; A got %v, B got %v", errA, errB)
	}
	me := requireMySQLError(t, victimErr, 1213, "40001")
	require.Contains(t, me.Message, "Deadlock found when trying to get lock")
	require.Equal(t, deadlocks+1, srv.Provider().LockStats().Deadlocks)

	mustExec(t, winner, "COMMIT")
	// After a deadlock InnoDB has already rolled the victim back; the
	// client's ROLLBACK is harmless and its COMMIT must write nothing.
	mustExec(t, victim, "COMMIT")

	got := map[int64]int64{}
	rows, err := db.Query("SELECT id, v FROM r")
	require.NoError(t, err)
	for rows.Next() {
		var id, v int64
		require.NoError(t, rows.Scan(&id, &v))
		got[id] = v
	}
	require.NoError(t, rows.Err())
	rows.Close()
	if winner == a {
		require.Equal(t, map[int64]int64{1: 1, 2: 1, 3: 1}, got, "A committed, B was rolled back")
	} else {
		require.Equal(t, map[int64]int64{1: 10, 2: 10, 3: 0, 4: 10}, got, "B committed, A was rolled back")
	}
}

// A statement that cannot get its lock within innodb_lock_wait_timeout
// fails with 1205 and leaves nothing behind; the rest of its transaction
// survives (innodb_rollback_on_timeout is off) and the holder is unaffected.
func TestLockWaitTimeout(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 0), (2, 0), (3, 0)")
	holder, waiter := clientConn(t, db), clientConn(t, db)

	mustExec(t, waiter, "SET innodb_lock_wait_timeout = 1")
	require.EqualValues(t, 1, queryInt(t, waiter, "SELECT @@innodb_lock_wait_timeout"))

	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "UPDATE r SET v = 100 WHERE id = 2")

	mustExec(t, waiter, "BEGIN")
	mustExec(t, waiter, "INSERT INTO r VALUES (10, 10)")
	timeouts := srv.Provider().LockStats().Timeouts
	start := time.Now()
	// In key order this updates row 1, then blocks on row 2.
	_, err := waiter.ExecContext(context.Background(), "UPDATE r SET v = v + 1")
	elapsed := time.Since(start)
	me := requireMySQLError(t, err, 1205, "HY000")
	require.Equal(t, "Lock wait timeout exceeded; try restarting transaction", me.Message)
	require.GreaterOrEqual(t, elapsed, 900*time.Millisecond, "gave up before innodb_lock_wait_timeout")
	require.Less(t, elapsed, 10*time.Second, "waited far longer than innodb_lock_wait_timeout")
	require.Equal(t, timeouts+1, srv.Provider().LockStats().Timeouts)

	// The failed statement left nothing behind; the earlier insert stays.
	require.EqualValues(t, 0, queryInt(t, waiter, "SELECT v FROM r WHERE id = 1"))
	require.EqualValues(t, 10, queryInt(t, waiter, "SELECT v FROM r WHERE id = 10"))
	mustExec(t, waiter, "COMMIT")

	mustExec(t, holder, "COMMIT")
	require.Equal(t, []int64{0, 100, 0, 10}, queryInts(t, db, "SELECT v FROM r ORDER BY id"))

	// A locking read times out the same way.
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "SELECT v FROM r WHERE id = 3 FOR UPDATE")
	_, err = waiter.ExecContext(context.Background(), "SELECT v FROM r WHERE id = 3 FOR UPDATE")
	requireMySQLError(t, err, 1205, "HY000")
	mustExec(t, holder, "UPDATE r SET v = 3 WHERE id = 3")
	mustExec(t, holder, "COMMIT")
	require.EqualValues(t, 3, queryInt(t, waiter, "SELECT v FROM r WHERE id = 3 FOR UPDATE"))
}

// With autocommit off every statement runs in an implicit transaction that
// lasts until COMMIT or ROLLBACK (SQLAlchemy's way): its writes stay
// private and locked until then.
func TestAutocommitOff(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 0)")
	a, b := clientConn(t, db), clientConn(t, db)
	mustExec(t, a, "SET autocommit = 0")
	require.EqualValues(t, 0, queryInt(t, a, "SELECT @@autocommit"))

	mustExec(t, a, "UPDATE r SET v = 10 WHERE id = 1")
	mustExec(t, a, "INSERT INTO r VALUES (2, 20)")
	require.EqualValues(t, 10, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "own write")
	require.EqualValues(t, 0, queryInt(t, b, "SELECT v FROM r WHERE id = 1"), "uncommitted write visible")
	require.EqualValues(t, 1, queryInt(t, b, "SELECT COUNT(*) FROM r"), "uncommitted insert visible")
	mustExec(t, a, "COMMIT")
	require.EqualValues(t, 10, queryInt(t, b, "SELECT v FROM r WHERE id = 1"))
	require.EqualValues(t, 2, queryInt(t, b, "SELECT COUNT(*) FROM r"))

	mustExec(t, a, "UPDATE r SET v = 99 WHERE id = 1")
	mustExec(t, a, "DELETE FROM r WHERE id = 2")
	mustExec(t, a, "ROLLBACK")
	require.EqualValues(t, 10, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "ROLLBACK kept an update")
	require.EqualValues(t, 2, queryInt(t, a, "SELECT COUNT(*) FROM r"), "ROLLBACK kept a delete")
	mustExec(t, a, "COMMIT")

	// Another session's UPDATE of a row the implicit transaction wrote
	// waits for its COMMIT and then applies to the committed value.
	mustExec(t, a, "UPDATE r SET v = 30 WHERE id = 1")
	done := execBlocked(t, srv, b, "UPDATE r SET v = v + 1 WHERE id = 1", "B's UPDATE")
	mustExec(t, a, "COMMIT")
	require.NoError(t, outcome(t, done, "B's UPDATE"))
	require.EqualValues(t, 31, queryInt(t, db, "SELECT v FROM r WHERE id = 1"))

	// A read opens the implicit transaction's snapshot, which lasts until
	// COMMIT, after which the next statement sees newer commits.
	require.EqualValues(t, 31, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, b, "UPDATE r SET v = 40 WHERE id = 1")
	require.EqualValues(t, 31, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "snapshot of the implicit transaction")
	mustExec(t, a, "COMMIT")
	require.EqualValues(t, 40, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "a new transaction must see the commit")
	mustExec(t, a, "ROLLBACK")

	// Back to autocommit: SET autocommit = 1 commits the open transaction.
	mustExec(t, a, "UPDATE r SET v = 50 WHERE id = 1")
	mustExec(t, a, "SET autocommit = 1")
	require.EqualValues(t, 50, queryInt(t, b, "SELECT v FROM r WHERE id = 1"))
}

func TestSavepoints(t *testing.T) {
	_, db := startWithDB(t, "d", "CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)")
	c := clientConn(t, db)

	mustExec(t, c, "BEGIN")
	mustExec(t, c, "INSERT INTO r VALUES (1, 1)")
	mustExec(t, c, "SAVEPOINT a")
	mustExec(t, c, "INSERT INTO r VALUES (2, 2)")
	mustExec(t, c, "UPDATE r SET v = 100 WHERE id = 1")
	mustExec(t, c, "SAVEPOINT b")
	mustExec(t, c, "INSERT INTO r VALUES (3, 3)")
	require.Equal(t, []int64{1, 2, 3}, queryInts(t, c, "SELECT id FROM r ORDER BY id"))

	mustExec(t, c, "ROLLBACK TO SAVEPOINT b")
	require.Equal(t, []int64{1, 2}, queryInts(t, c, "SELECT id FROM r ORDER BY id"))
	mustExec(t, c, "ROLLBACK TO SAVEPOINT a")
	require.Equal(t, []int64{1}, queryInts(t, c, "SELECT id FROM r ORDER BY id"))
	require.EqualValues(t, 1, queryInt(t, c, "SELECT v FROM r WHERE id = 1"), "rolled back update")

	// ROLLBACK TO forgets later savepoints but keeps the named one.
	_, err := c.ExecContext(context.Background(), "ROLLBACK TO SAVEPOINT b")
	requireMySQLError(t, err, 1305, "42000")
	mustExec(t, c, "INSERT INTO r VALUES (4, 4)")
	mustExec(t, c, "ROLLBACK TO SAVEPOINT a")
	mustExec(t, c, "INSERT INTO r VALUES (5, 5)")
	mustExec(t, c, "RELEASE SAVEPOINT a")
	_, err = c.ExecContext(context.Background(), "ROLLBACK TO SAVEPOINT a")
	requireMySQLError(t, err, 1305, "42000")
	mustExec(t, c, "COMMIT")
	require.Equal(t, []int64{1, 5}, queryInts(t, db, "SELECT id FROM r ORDER BY id"))
	require.EqualValues(t, 1, queryInt(t, db, "SELECT v FROM r WHERE id = 1"))
}

func TestReadOnlyTransaction(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1)")
	c := clientConn(t, db)

	mustExec(t, c, "START TRANSACTION READ ONLY")
	require.EqualValues(t, 1, queryInt(t, c, "SELECT v FROM r WHERE id = 1"))
	for _, q := range []string{
		"INSERT INTO r VALUES (2, 2)",
		"UPDATE r SET v = 5 WHERE id = 1",
		"DELETE FROM r WHERE id = 1",
	} {
		_, err := c.ExecContext(context.Background(), q)
		requireMySQLError(t, err, 1792, "25006", q)
	}
	require.EqualValues(t, 1, queryInt(t, c, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, c, "COMMIT")

	// The next transaction is read-write again.
	mustExec(t, c, "BEGIN")
	mustExec(t, c, "INSERT INTO r VALUES (2, 2)")
	mustExec(t, c, "COMMIT")
	require.Equal(t, []int64{1, 2}, queryInts(t, db, "SELECT v FROM r ORDER BY id"))
}

// A statement that fails inside a transaction is undone as a whole, and
// only it: the transaction's earlier writes stay and can be committed.
func TestFailedStatementInsideTransaction(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL, k VARCHAR(10), UNIQUE KEY k (k))",
		"INSERT INTO r VALUES (1, 1, 'one')")
	c := clientConn(t, db)

	mustExec(t, c, "BEGIN")
	mustExec(t, c, "INSERT INTO r VALUES (10, 10, 'ten')")
	mustExec(t, c, "UPDATE r SET v = 2 WHERE id = 1")

	// The third row collides with a committed row.
	_, err := c.ExecContext(context.Background(), "INSERT INTO r VALUES (11, 11, 'a'), (12, 12, 'b'), (1, 0, 'c'), (13, 13, 'd')")
	me := requireMySQLError(t, err, 1062, "23000")
	require.Equal(t, "Duplicate entry '1' for key 'r.PRIMARY'", me.Message)
	// The third row collides with the transaction's own earlier row on the
	// unique key.
	_, err = c.ExecContext(context.Background(), "INSERT INTO r VALUES (14, 14, 'e'), (15, 15, 'ten'), (16, 16, 'f')")
	me = requireMySQLError(t, err, 1062, "23000")
	require.Equal(t, "Duplicate entry 'ten' for key 'r.k'", me.Message)
	// A multi-row UPDATE that fails on its second row.
	_, err = c.ExecContext(context.Background(), "UPDATE r SET k = 'same', v = v + 1000 WHERE id IN (1, 10)")
	requireMySQLError(t, err, 1062, "23000")

	require.Equal(t, []int64{1, 10}, queryInts(t, c, "SELECT id FROM r ORDER BY id"))
	require.Equal(t, []int64{2, 10}, queryInts(t, c, "SELECT v FROM r ORDER BY id"))
	mustExec(t, c, "COMMIT")
	require.Equal(t, []int64{1, 10}, queryInts(t, db, "SELECT id FROM r ORDER BY id"))
	require.Equal(t, []int64{2, 10}, queryInts(t, db, "SELECT v FROM r ORDER BY id"))
	var k string
	require.NoError(t, db.QueryRow("SELECT k FROM r WHERE id = 10").Scan(&k))
	require.Equal(t, "ten", k)
	// The unique entries the failed statements claimed are free.
	mustExec(t, db, "INSERT INTO r VALUES (20, 20, 'a'), (21, 21, 'e'), (22, 22, 'same')")
}

// REPEATABLE READ: a plain SELECT in a transaction keeps reading the
// snapshot of its first read, while locking reads and writes see (and
// apply to) the newest committed version.
func TestSnapshotAndCurrentReads(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1), (2, 1)")
	a, b := clientConn(t, db), clientConn(t, db)

	mustExec(t, a, "BEGIN")
	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, b, "UPDATE r SET v = 2 WHERE id = 1")
	mustExec(t, b, "UPDATE r SET v = 2 WHERE id = 2")
	mustExec(t, b, "INSERT INTO r VALUES (3, 3)")

	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "plain SELECT left its snapshot")
	require.EqualValues(t, 2, queryInt(t, a, "SELECT COUNT(*) FROM r"), "phantom in the snapshot")
	require.EqualValues(t, 2, queryInt(t, a, "SELECT v FROM r WHERE id = 1 FOR UPDATE"))
	require.EqualValues(t, 2, queryInt(t, a, "SELECT v FROM r WHERE id = 2 LOCK IN SHARE MODE"))
	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "a locking read moved the snapshot")
	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 2"), "a locking read moved the snapshot")

	// An UPDATE applies to the newest version and the transaction then
	// sees its own write.
	mustExec(t, a, "UPDATE r SET v = v + 10 WHERE id = 2")
	require.EqualValues(t, 12, queryInt(t, a, "SELECT v FROM r WHERE id = 2"))
	mustExec(t, a, "COMMIT")
	require.Equal(t, []int64{2, 12, 3}, queryInts(t, db, "SELECT v FROM r ORDER BY id"))

	// The snapshot is taken at the first read, not at BEGIN.
	mustExec(t, a, "BEGIN")
	mustExec(t, b, "UPDATE r SET v = 5 WHERE id = 1")
	require.EqualValues(t, 5, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, b, "UPDATE r SET v = 6 WHERE id = 1")
	require.EqualValues(t, 5, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, a, "COMMIT")
}

// START TRANSACTION WITH CONSISTENT SNAPSHOT takes the snapshot at once
// rather than at the first read (mysqldump --single-transaction relies on
// it).
func TestConsistentSnapshotAtStart(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1)")
	a, b := clientConn(t, db), clientConn(t, db)

	mustExec(t, a, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
	mustExec(t, b, "UPDATE r SET v = 2 WHERE id = 1")
	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, a, "COMMIT")
	require.EqualValues(t, 2, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
}

// MySQL 8's spelling of a shared locking read, FOR SHARE, behaves as LOCK
// IN SHARE MODE: it reads the newest version and blocks writers.
func TestSelectForShare(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1)")
	a, b := clientConn(t, db), clientConn(t, db)

	mustExec(t, a, "BEGIN")
	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))
	mustExec(t, b, "UPDATE r SET v = 2 WHERE id = 1")
	require.EqualValues(t, 2, queryInt(t, a, "SELECT v FROM r WHERE id = 1 FOR SHARE"))
	require.EqualValues(t, 1, queryInt(t, a, "SELECT v FROM r WHERE id = 1"))

	done := execBlocked(t, srv, b, "UPDATE r SET v = 3 WHERE id = 1", "UPDATE of a row read FOR SHARE")
	mustExec(t, a, "COMMIT")
	require.NoError(t, outcome(t, done, "UPDATE of a row read FOR SHARE"))
	require.EqualValues(t, 3, queryInt(t, db, "SELECT v FROM r WHERE id = 1"))
}

// A statement that fails in autocommit mode is its own transaction: when
// the error reaches the client, the locks it took are gone, as InnoDB rolls
// the statement's transaction back. Otherwise another session would wait on
// a row that no transaction is using.
func TestFailedAutocommitStatementReleasesLocks(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL, k VARCHAR(10), UNIQUE KEY k (k))",
		"INSERT INTO r VALUES (1, 1, 'one'), (2, 2, 'two')")
	a, b := clientConn(t, db), clientConn(t, db)
	mustExec(t, b, "SET innodb_lock_wait_timeout = 1")

	// A duplicate primary key: the failed INSERT locked row 1.
	_, err := a.ExecContext(context.Background(), "INSERT INTO r VALUES (1, 0, 'x')")
	requireMySQLError(t, err, 1062, "23000")
	mustExec(t, b, "UPDATE r SET v = 10 WHERE id = 1")

	// A duplicate unique key: the failed INSERT locked the entry of 'two'.
	_, err = a.ExecContext(context.Background(), "INSERT INTO r VALUES (3, 0, 'two')")
	requireMySQLError(t, err, 1062, "23000")
	mustExec(t, b, "UPDATE r SET k = 'deux' WHERE id = 2")
	mustExec(t, b, "INSERT INTO r VALUES (4, 4, 'two')")

	// An UPDATE that fails half way: it had locked and changed row 1.
	_, err = a.ExecContext(context.Background(), "UPDATE r SET k = 'same'")
	requireMySQLError(t, err, 1062, "23000")
	mustExec(t, b, "UPDATE r SET v = 11 WHERE id = 1")

	require.Equal(t, []int64{11, 2, 4}, queryInts(t, db, "SELECT v FROM r ORDER BY id"))
	// The failed statements' session goes on normally.
	mustExec(t, a, "UPDATE r SET v = v + 1")
	require.Equal(t, []int64{12, 3, 5}, queryInts(t, db, "SELECT v FROM r ORDER BY id"))
}

// In autocommit mode every statement reads the newest commits, including
// the first one after a statement that failed half way through reading.
func TestAutocommitReadAfterFailedStatementIsFresh(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE r (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO r VALUES (1, 1), (2, 1)")
	a, b := clientConn(t, db), clientConn(t, db)

	// Fails while reading r, after its snapshot is taken.
	_, err := a.ExecContext(context.Background(), "SELECT (SELECT v FROM r)")
	require.True(t, isMySQLError(err, 1242), "want error 1242, got %v", err)
	mustExec(t, b, "UPDATE r SET v = 2 WHERE id = 1")
	require.EqualValues(t, 2, queryInt(t, a, "SELECT v FROM r WHERE id = 1"), "autocommit read after a failed statement is stale")

	_, err = a.ExecContext(context.Background(), "INSERT INTO r VALUES (3, 3), (1, 0)")
	requireMySQLError(t, err, 1062, "23000")
	mustExec(t, b, "SET innodb_lock_wait_timeout = 1")
	mustExec(t, b, "UPDATE r SET v = 4 WHERE id = 2")
	require.EqualValues(t, 4, queryInt(t, a, "SELECT v FROM r WHERE id = 2"), "autocommit read after a failed statement is stale")
	require.EqualValues(t, 0, queryInt(t, a, "SELECT COUNT(*) FROM r WHERE id = 3"), "a row of the failed INSERT")
}

// The binary protocol (server-side prepared statements, which database/sql
// uses for a query with arguments unless interpolateParams is set) returns
// and stores the same values as the text protocol.
func TestPreparedStatements(t *testing.T) {
	_, db := startWithDB(t, "d",
		`CREATE TABLE p (id INT PRIMARY KEY, i BIGINT, s VARCHAR(50), d DECIMAL(10,2), f DOUBLE,
			dt DATETIME, b VARBINARY(20), n INT NULL, u BIGINT UNSIGNED, KEY s (s))`,
		"CREATE TABLE a (id BIGINT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(10), UNIQUE KEY s (s))")
	ctx := context.Background()
	c := clientConn(t, db)

	when := time.Date(2024, 2, 29, 13, 14, 15, 0, time.UTC)
	mustExec(t, c, `INSERT INTO p VALUES (1, -9007199254740993, 'héllo ''world''', 12345678.91, 2.5,
		'2024-02-29 13:14:15', x'00ff10', NULL, 18446744073709551615)`)
	res := mustExec(t, c, "INSERT INTO p VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		2, int64(-9007199254740993), "héllo 'world'", "12345678.91", 2.5, when, []byte{0, 0xff, 0x10}, nil, uint64(18446744073709551615))
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	type row struct {
		I  int64
		S  string
		D  string
		F  float64
		DT time.Time
		B  []byte
		N  sql.NullInt64
		U  uint64
	}
	scan := func(r interface{ Scan(...any) error }) row {
		var x row
		require.NoError(t, r.Scan(&x.I, &x.S, &x.D, &x.F, &x.DT, &x.B, &x.N, &x.U))
		return x
	}
	const cols = "SELECT i, s, d, f, dt, b, n, u FROM p WHERE id = "
	want := row{I: -9007199254740993, S: "héllo 'world'", D: "12345678.91", F: 2.5, DT: when, B: []byte{0, 0xff, 0x10}, U: 18446744073709551615}
	for id := 1; id <= 2; id++ {
		text := scan(c.QueryRowContext(ctx, fmt.Sprintf("%s%d", cols, id)))
		bin := scan(c.QueryRowContext(ctx, cols+"?", id))
		require.Equal(t, want, text, "row %d over the text protocol", id)
		require.Equal(t, want, bin, "row %d over the binary protocol", id)
	}

	// Lookups by argument match what literals match.
	require.Equal(t, []int64{1, 2}, queryInts(t, c, "SELECT id FROM p WHERE s = ? ORDER BY id", "héllo 'world'"))
	require.Equal(t, []int64{1, 2}, queryInts(t, c, "SELECT id FROM p WHERE d = ? AND n IS NULL ORDER BY id", "12345678.91"))
	require.Equal(t, []int64{1, 2}, queryInts(t, c, "SELECT id FROM p WHERE dt = ? ORDER BY id", when))
	require.Equal(t, []int64{1, 2}, queryInts(t, c, "SELECT id FROM p WHERE b = ? ORDER BY id", []byte{0, 0xff, 0x10}))
	require.Equal(t, []int64{1, 2}, queryInts(t, c, "SELECT id FROM p WHERE u = ? ORDER BY id", uint64(18446744073709551615)))
	require.Empty(t, queryInts(t, c, "SELECT id FROM p WHERE s = ?", "nothing"))

	// One prepared statement run many times, with rows affected and
	// generated keys reported as over the text protocol.
	stmt, err := c.PrepareContext(ctx, "INSERT INTO a (s) VALUES (?)")
	require.NoError(t, err)
	defer stmt.Close()
	for i := 1; i <= 5; i++ {
		res, err := stmt.ExecContext(ctx, fmt.Sprintf("s%d", i))
		require.NoError(t, err)
		id, err := res.LastInsertId()
		require.NoError(t, err)
		require.EqualValues(t, i, id)
	}
	_, err = stmt.ExecContext(ctx, "s3")
	me := requireMySQLError(t, err, 1062, "23000")
	require.Equal(t, "Duplicate entry 's3' for key 'a.s'", me.Message)
	res, err = c.ExecContext(ctx, "UPDATE a SET s = CONCAT(s, ?) WHERE id > ?", "x", 3)
	require.NoError(t, err)
	n, err = res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 2, n)

	// The locking read-modify-write workload over the binary protocol.
	mustExec(t, db, "CREATE TABLE c (id INT PRIMARY KEY, v INT NOT NULL)")
	mustExec(t, db, "INSERT INTO c VALUES (?, ?)", 1, 0)
	const pclients, ptxns = 8, 25
	conns := make([]*sql.Conn, pclients)
	for i := range conns {
		conns[i] = clientConn(t, db)
	}
	runClients(t, pclients, func(id int) error {
		for i := 0; i < ptxns; i++ {
			tx, err := conns[id].BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			var v int
			if err := tx.QueryRowContext(ctx, "SELECT v FROM c WHERE id = ? FOR UPDATE", 1).Scan(&v); err != nil {
				tx.Rollback()
				return fmt.Errorf("SELECT FOR UPDATE: %w", err)
			}
			if _, err := tx.ExecContext(ctx, "UPDATE c SET v = ? WHERE id = ?", v+1, 1); err != nil {
				tx.Rollback()
				return fmt.Errorf("UPDATE: %w", err)
			}
			if err := tx.Commit(); err != nil {
				return fmt.Errorf("COMMIT: %w", err)
			}
		}
		return nil
	})
	require.EqualValues(t, pclients*ptxns, queryInt(t, db, "SELECT v FROM c WHERE id = ?", 1))
}
