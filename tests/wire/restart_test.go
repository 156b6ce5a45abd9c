package wire

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fogdb/fogdb/internal/freeport"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
)

// dumpQuery renders a query's rows as text, to compare a database's content
// before and after a restart.
func dumpQuery(t *testing.T, db querier, query string) string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query)
	require.NoError(t, err, query)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var b strings.Builder
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('|')
			}
			if v.Valid {
				b.WriteString(v.String)
			} else {
				b.WriteString("NULL")
			}
		}
		b.WriteByte('\n')
	}
	require.NoError(t, rows.Err())
	return b.String()
}

// restartQueries read what TestCleanRestart compares across restarts.
var restartQueries = []string{
	"SELECT id, name, price, created, HEX(data), note FROM d.items ORDER BY id",
	"SELECT id, name FROM d.items WHERE name = 'c'",
	"SELECT id, price FROM d.items WHERE price BETWEEN 2 AND 4 ORDER BY price",
	"SELECT name FROM d.cheap ORDER BY name",
	"SELECT id, v FROM d.seq ORDER BY id",
	"SELECT id, item_id FROM d.orders ORDER BY id",
	"SELECT k, v FROM d2.kv ORDER BY k",
}

func dumpAll(t *testing.T, db querier) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, q := range restartQueries {
		out[q] = dumpQuery(t, db, q)
	}
	return out
}

func userDSN(srv *server.Server, user, password, dbname string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?parseTime=true", user, password, srv.MySQLAddr(), dbname)
}

// Everything committed survives a clean shutdown: rows, indexes, schema
// changes, views, users with their passwords and grants, and the
// auto-increment counters; what was not committed does not.
func TestCleanRestart(t *testing.T) {
	dir := t.TempDir()
	srv, db := startNodeIn(t, dir)
	for _, q := range []string{
		"CREATE DATABASE d",
		"CREATE DATABASE d2",
		`CREATE TABLE d.items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL,
			price DECIMAL(8,2), created DATETIME, data BLOB, UNIQUE KEY name (name), KEY price (price))`,
		"INSERT INTO d.items (name, price, created, data) VALUES ('a', 1.50, '2024-01-01 10:00:00', x'01'), ('b', 2.50, NULL, NULL), ('c', 3.50, '2024-03-01 00:00:00', x'0203'), ('d', 30, NULL, ''), ('e', 5, NULL, NULL)",
		"UPDATE d.items SET price = 4.25 WHERE name = 'e'",
		"DELETE FROM d.items WHERE name = 'b'",
		"ALTER TABLE d.items ADD COLUMN note VARCHAR(10) DEFAULT 'n'",
		"UPDATE d.items SET note = 'first' WHERE id = 1",
		"CREATE VIEW d.cheap AS SELECT name FROM d.items WHERE price < 10",
		"CREATE TABLE d.seq (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)",
		"INSERT INTO d.seq VALUES (100, 1)",
		"CREATE TABLE d.orders (id INT PRIMARY KEY, item_id INT, CONSTRAINT fk_item FOREIGN KEY (item_id) REFERENCES d.items (id))",
		"INSERT INTO d.orders VALUES (1, 1), (2, 3)",
		"CREATE TABLE d2.kv (k VARCHAR(10) PRIMARY KEY, v TEXT)",
		"INSERT INTO d2.kv VALUES ('x', 'hello'), ('y', REPEAT('z', 5000))",
		"CREATE USER 'app'@'%' IDENTIFIED BY 's3cret'",
		"GRANT SELECT, INSERT, UPDATE ON d.* TO 'app'@'%'",
		"CREATE USER 'reader'@'%' IDENTIFIED BY 'r34d'",
		"GRANT SELECT ON d2.* TO 'reader'@'%'",
	} {
		mustExec(t, db, q)
	}
	// go-mysql-server resolves a view's body in the session's current
	// database even when the view is named with its database, so the
	// comparisons run with d selected.
	dd := openDB(t, srv, "d")
	before := dumpAll(t, dd)

	// A transaction still open at shutdown is lost, as a rolled back one.
	open := clientConn(t, db)
	mustExec(t, open, "BEGIN")
	mustExec(t, open, "INSERT INTO d.items (name) VALUES ('uncommitted')")
	mustExec(t, open, "UPDATE d2.kv SET v = 'changed' WHERE k = 'x'")

	require.NoError(t, dd.Close())
	require.NoError(t, db.Close())
	require.NoError(t, srv.Close())

	for round := 1; round <= 2; round++ {
		srv, db = startNodeIn(t, dir)
		dd = openDB(t, srv, "d")
		require.Equal(t, before, dumpAll(t, dd), "after restart %d", round)
		require.EqualValues(t, 0, queryInt(t, db, "SELECT COUNT(*) FROM d.items WHERE name = 'uncommitted'"))

		var create string
		require.NoError(t, db.QueryRow("SHOW CREATE TABLE d.items").Scan(new(string), &create))
		require.Contains(t, create, "`note` varchar(10)")
		require.Contains(t, create, "UNIQUE KEY `name` (`name`)")

		// Constraints are still enforced.
		_, err := db.Exec("INSERT INTO d.items (name) VALUES ('a')")
		requireMySQLError(t, err, 1062, "23000")
		_, err = db.Exec("INSERT INTO d.orders VALUES (99, 12345)")
		requireMySQLError(t, err, 1452, "23000")

		// The users log in with their passwords and keep their grants.
		app := openDSN(t, userDSN(srv, "app", "s3cret", "d"))
		require.EqualValues(t, 3+round, queryInt(t, app, "SELECT COUNT(*) FROM items"))
		mustExec(t, app, "UPDATE items SET note = ? WHERE name = 'c'", fmt.Sprintf("r%d", round))
		// What was not granted stays refused (the error codes themselves
		// are TestAccessDenied's business).
		_, err = app.Exec("CREATE TABLE nope (id INT PRIMARY KEY)")
		require.Error(t, err, "app created a table")
		_, err = app.Exec("DELETE FROM items WHERE name = 'a'")
		require.Error(t, err, "app deleted a row")
		err = app.QueryRow("SELECT COUNT(*) FROM d2.kv").Scan(new(int))
		require.Error(t, err, "app read d2")

		reader := openDSN(t, userDSN(srv, "reader", "r34d", "d2"))
		require.EqualValues(t, 2, queryInt(t, reader, "SELECT COUNT(*) FROM kv"))
		_, err = reader.Exec("INSERT INTO kv VALUES ('w', 'no')")
		require.Error(t, err, "reader wrote")

		bad := openDSN(t, userDSN(srv, "app", "wrong", "d"))
		require.Error(t, bad.Ping(), "login with a wrong password")

		// The auto-increment counters continue past the rows present; round
		// 2 also sees round 1's inserts. (Failed and rolled back inserts
		// may have used up values, so d.items' next id is only bounded.)
		res := mustExec(t, db, "INSERT INTO d.seq (v) VALUES (?)", round)
		id, err := res.LastInsertId()
		require.NoError(t, err)
		require.EqualValues(t, 100+round, id, "d.seq's next id")
		maxID := queryInt(t, db, "SELECT MAX(id) FROM d.items")
		res = mustExec(t, db, "INSERT INTO d.items (name) VALUES (?)", fmt.Sprintf("new%d", round))
		id, err = res.LastInsertId()
		require.NoError(t, err)
		require.Greater(t, id, maxID, "d.items' next id")
		require.EqualValues(t, 1, queryInt(t, db, "SELECT COUNT(*) FROM d.items WHERE id = ?", id))

		before = dumpAll(t, dd)
		require.NoError(t, dd.Close())
		require.NoError(t, db.Close())
		require.NoError(t, srv.Close())
	}
}

// MySQL 8 persists the auto-increment counter, so the id of a deleted row
// with the highest id is not handed out again after a restart (5.7 did
// reuse it, which broke applications that keep ids elsewhere).
func TestAutoIncrementNotReusedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	srv, db := startNodeIn(t, dir)
	mustExec(t, db, "CREATE DATABASE d")
	mustExec(t, db, "CREATE TABLE d.a (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	mustExec(t, db, "INSERT INTO d.a (v) VALUES (1), (2), (3)")
	mustExec(t, db, "DELETE FROM d.a WHERE id = 3")
	require.NoError(t, db.Close())
	require.NoError(t, srv.Close())

	_, db = startNodeIn(t, dir)
	res := mustExec(t, db, "INSERT INTO d.a (v) VALUES (4)")
	id, err := res.LastInsertId()
	require.NoError(t, err)
	require.EqualValues(t, 4, id)
}

func openDSN(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// fogdbBinary builds cmd/fogdb once per test binary.
var fogdbBinary = struct {
	once sync.Once
	path string
	err  error
}{}

func buildFogdb(t *testing.T) string {
	t.Helper()
	fogdbBinary.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			fogdbBinary.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "fogdb-bin-")
		if err != nil {
			fogdbBinary.err = err
			return
		}
		bin := filepath.Join(dir, "fogdb")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/fogdb")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fogdbBinary.err = fmt.Errorf("go build ./cmd/fogdb: %w\n%s", err, out)
			return
		}
		fogdbBinary.path = bin
	})
	require.NoError(t, fogdbBinary.err)
	return fogdbBinary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fogdbBinary.path != "" {
		os.RemoveAll(filepath.Dir(fogdbBinary.path))
	}
	os.Exit(code)
}

// fogProc is a fogdb process.
type fogProc struct {
	cmd    *exec.Cmd
	addr   string
	log    string
	exited chan struct{}
}

// startFogdb runs the binary on dir and waits until it accepts MySQL
// connections. extra flags follow the defaults.
func startFogdb(t *testing.T, bin, dir string, n int, extra ...string) *fogProc {
	t.Helper()
	return startFogdbWith(t, nil, bin, dir, n, append([]string{"--admin-addr", "127.0.0.1:0"}, extra...)...)
}

// startFogdbWith is startFogdb with the command run under wrap (a shell
// that sets limits first, say) and with extra flags.
func startFogdbWith(t *testing.T, wrap []string, bin, dir string, n int, extra ...string) *fogProc {
	t.Helper()
	p := &fogProc{addr: freeport.Addr(t), log: filepath.Join(t.TempDir(), fmt.Sprintf("fogdb-%d.log", n)), exited: make(chan struct{})}
	logf, err := os.Create(p.log)
	require.NoError(t, err)
	argv := append(append(append([]string{}, wrap...), bin, "--mysql-addr", p.addr, "--data-dir", dir), extra...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			p.dumpLog(t)
		}
	})

	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/", p.addr))
	require.NoError(t, err)
	defer db.Close()
	deadline := time.Now().Add(patience)
	for {
		select {
		case <-p.exited:
			p.dumpLog(t)
			t.Fatalf("fogdb exited before accepting connections: %v", p.cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			p.dumpLog(t)
			t.Fatalf("fogdb did not accept connections within %v: %v", patience, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *fogProc) kill(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(patience):
		t.Errorf("fogdb pid %d survived SIGKILL for %v", p.cmd.Process.Pid, patience)
	}
}

func (p *fogProc) dumpLog(t *testing.T) {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	t.Logf("fogdb log (%s), last part:\n%s", p.log, b)
}

func (p *fogProc) dsn(dbname string) string {
	return fmt.Sprintf("root@tcp(%s)/%s", p.addr, dbname)
}

type ackedTxn struct {
	id     int64
	autoID int64
}

// kill -9 at an arbitrary point under concurrent load loses no
// acknowledged commit and tears no transaction in half.
func TestKill9KeepsAcknowledgedCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the fogdb binary")
	}
	const (
		writers      = 8
		maxPerWriter = 2000 // bounds a round whose kill never comes
		killAfter    = 150  // acknowledgments per round before SIGKILL
		rounds       = 3
	)
	bin := buildFogdb(t)
	dir := t.TempDir()
	ctx := context.Background()

	p := startFogdb(t, bin, dir, 0)
	setup := openDSN(t, p.dsn(""))
	mustExec(t, setup, "CREATE DATABASE d")
	mustExec(t, setup, "CREATE TABLE d.a (id BIGINT PRIMARY KEY, writer INT NOT NULL, payload VARCHAR(100) NOT NULL)")
	mustExec(t, setup, "CREATE TABLE d.b (id BIGINT PRIMARY KEY, a_id BIGINT NOT NULL, UNIQUE KEY a_id (a_id))")
	mustExec(t, setup, "CREATE TABLE d.auto (id BIGINT AUTO_INCREMENT PRIMARY KEY, a_id BIGINT NOT NULL)")
	setup.Close()

	var acked []ackedTxn
	for round := 0; round < rounds; round++ {
		db := openDSN(t, p.dsn("d"))
		conns := make([]*sql.Conn, writers)
		for i := range conns {
			conns[i] = clientConn(t, db)
		}
		var (
			mu        sync.Mutex
			count     atomic.Int64
			killed    atomic.Bool
			killOnce  sync.Once
			killNow   = make(chan struct{})
			wg        sync.WaitGroup
			preKill   []error
			roundAcks []ackedTxn
		)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				c := conns[w]
				for i := 0; i < maxPerWriter; i++ {
					id := int64(round)*1_000_000 + int64(w)*10_000 + int64(i)
					autoID, err := func() (int64, error) {
						if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
							return 0, err
						}
						if _, err := c.ExecContext(ctx, fmt.Sprintf("INSERT INTO a VALUES (%d, %d, REPEAT('p', %d))", id, w, 1+i%100)); err != nil {
							return 0, err
						}
						if _, err := c.ExecContext(ctx, fmt.Sprintf("INSERT INTO b VALUES (%d, %d)", id, id)); err != nil {
							return 0, err
						}
						res, err := c.ExecContext(ctx, fmt.Sprintf("INSERT INTO auto (a_id) VALUES (%d)", id))
						if err != nil {
							return 0, err
						}
						autoID, err := res.LastInsertId()
						if err != nil {
							return 0, err
						}
						_, err = c.ExecContext(ctx, "COMMIT")
						return autoID, err
					}()
					if err != nil {
						if !killed.Load() {
							mu.Lock()
							preKill = append(preKill, fmt.Errorf("writer %d txn %d before the kill: %w", w, id, err))
							mu.Unlock()
						}
						return
					}
					mu.Lock()
					roundAcks = append(roundAcks, ackedTxn{id: id, autoID: autoID})
					mu.Unlock()
					if count.Add(1) >= killAfter {
						killOnce.Do(func() { close(killNow) })
					}
				}
			}(w)
		}
		select {
		case <-killNow:
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: only %d commits acknowledged in 2 minutes", round, count.Load())
		}
		killed.Store(true)
		p.kill(t)
		writersDone := make(chan struct{})
		go func() { wg.Wait(); close(writersDone) }()
		select {
		case <-writersDone:
		case <-time.After(patience):
			t.Fatalf("round %d: writers still blocked %v after the kill", round, patience)
		}
		require.Empty(t, preKill, "round %d", round)
		t.Logf("round %d: %d commits acknowledged before SIGKILL", round, len(roundAcks))
		acked = append(acked, roundAcks...)

		p = startFogdb(t, bin, dir, round+1)
		check := openDSN(t, p.dsn("d"))
		aIDs := queryInts(t, check, "SELECT id FROM a ORDER BY id")
		bIDs := queryInts(t, check, "SELECT a_id FROM b ORDER BY a_id")
		autoAIDs := queryInts(t, check, "SELECT a_id FROM auto ORDER BY a_id")
		require.Equal(t, aIDs, bIDs, "a transaction survived in part")
		require.Equal(t, aIDs, autoAIDs, "a transaction survived in part")
		present := map[int64]bool{}
		for _, id := range aIDs {
			present[id] = true
		}
		var missing []int64
		for _, a := range acked {
			if !present[a.id] {
				missing = append(missing, a.id)
			}
		}
		sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
		require.Empty(t, missing, "acknowledged commits lost by kill -9 (%d acknowledged so far)", len(acked))
		for _, a := range acked {
			require.EqualValues(t, a.id, queryInt(t, check, "SELECT a_id FROM auto WHERE id = ?", a.autoID), "auto row %d", a.autoID)
		}
		require.LessOrEqual(t, len(aIDs)-len(acked), writers*(round+1), "more rows than acknowledged plus in-flight commits")
	}

	// The node is fully usable after its last crash.
	db := openDSN(t, p.dsn("d"))
	maxAuto := queryInt(t, db, "SELECT MAX(id) FROM auto")
	res := mustExec(t, db, "INSERT INTO auto (a_id) VALUES (-1)")
	id, err := res.LastInsertId()
	require.NoError(t, err)
	require.Greater(t, id, maxAuto, "auto-increment went backwards after a crash")
	mustExec(t, db, "INSERT INTO a VALUES (-1, -1, 'after')")
}
