package wire

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// uRow is a row of the table the unique-key locking tests use:
// u (id INT PRIMARY KEY, k INT NULL UNIQUE, v INT).
type uRow struct {
	id, k, v int
	kNull    bool
}

func (r uRow) String() string {
	k := fmt.Sprint(r.k)
	if r.kNull {
		k = "NULL"
	}
	return fmt.Sprintf("%d/%s/%d", r.id, k, r.v)
}

func uRows(t *testing.T, db querier) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(),
		"SELECT CONCAT(id, '/', COALESCE(k, 'NULL'), '/', v) FROM u ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func uStrings(rows []uRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.String())
	}
	return out
}

// uInsert is how a second transaction writes a row, and what InnoDB does
// with it given the rows it finds: the expected rows after it, its affected
// row count, and the duplicate-key error it fails with ("" for none).
type uInsert struct {
	name   string
	stmt   string
	expect func(rows []uRow, n uRow) (after []uRow, affected int64, dupKey string)
}

// uConflicts returns the indexes of the rows that share n's primary key,
// then those that share its (non-NULL) unique value.
func uConflicts(rows []uRow, n uRow) []int {
	var out []int
	for i, r := range rows {
		if r.id == n.id {
			out = append(out, i)
		}
	}
	for i, r := range rows {
		if r.id != n.id && !r.kNull && !n.kNull && r.k == n.k {
			out = append(out, i)
		}
	}
	return out
}

func uConflictKey(rows []uRow, n uRow, i int) string {
	if rows[i].id == n.id {
		return "PRIMARY"
	}
	return "k"
}

func sortedRows(rows []uRow) []uRow {
	out := append([]uRow(nil), rows...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].id < out[i].id {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

var uInserts = []uInsert{
	{"INSERT", "INSERT INTO u VALUES (%d, %d, 0)", func(rows []uRow, n uRow) ([]uRow, int64, string) {
		if c := uConflicts(rows, n); len(c) > 0 {
			return rows, 0, uConflictKey(rows, n, c[0])
		}
		return sortedRows(append(rows, n)), 1, ""
	}},
	{"INSERT IGNORE", "INSERT IGNORE INTO u VALUES (%d, %d, 0)", func(rows []uRow, n uRow) ([]uRow, int64, string) {
		if len(uConflicts(rows, n)) > 0 {
			return rows, 0, ""
		}
		return sortedRows(append(rows, n)), 1, ""
	}},
	{"REPLACE", "REPLACE INTO u VALUES (%d, %d, 0)", func(rows []uRow, n uRow) ([]uRow, int64, string) {
		c := uConflicts(rows, n)
		drop := map[int]bool{}
		for _, i := range c {
			drop[i] = true
		}
		var after []uRow
		for i, r := range rows {
			if !drop[i] {
				after = append(after, r)
			}
		}
		return sortedRows(append(after, n)), int64(1 + len(c)), ""
	}},
	{"ON DUPLICATE KEY UPDATE", "INSERT INTO u VALUES (%d, %d, 0) ON DUPLICATE KEY UPDATE v = v + 1", func(rows []uRow, n uRow) ([]uRow, int64, string) {
		if c := uConflicts(rows, n); len(c) > 0 {
			after := append([]uRow(nil), rows...)
			after[c[0]].v++
			return after, 2, ""
		}
		return sortedRows(append(rows, n)), 1, ""
	}},
}

// A unique value (or primary key) that an uncommitted UPDATE, DELETE,
// REPLACE or upsert frees stays locked until its transaction ends, as in
// InnoDB: a second transaction writing that value waits, then finds it free
// if the first committed, or taken (1062, ignored, replaced or upserted) if
// it rolled back.
func TestFreedUniqueValueIsLocked(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE u (id INT PRIMARY KEY, k INT NULL, v INT NOT NULL, UNIQUE KEY k (k))")
	a, b := clientConn(t, db), clientConn(t, db)

	start := []uRow{{id: 1, k: 10}}
	frees := []struct {
		name, stmt string
		after      []uRow // the rows once it commits
	}{
		{"UPDATE of the unique column", "UPDATE u SET k = 20 WHERE id = 1", []uRow{{id: 1, k: 20}}},
		{"UPDATE of the unique column to NULL", "UPDATE u SET k = NULL WHERE id = 1", []uRow{{id: 1, kNull: true}}},
		{"DELETE", "DELETE FROM u WHERE id = 1", nil},
		{"UPDATE of the primary key", "UPDATE u SET id = 3 WHERE id = 1", []uRow{{id: 3, k: 10}}},
		{"REPLACE", "REPLACE INTO u VALUES (1, 20, 0)", []uRow{{id: 1, k: 20}}},
		{"upsert", "INSERT INTO u VALUES (1, 0, 0) ON DUPLICATE KEY UPDATE k = 20", []uRow{{id: 1, k: 20}}},
	}
	// Each writer takes the first row's unique value or its primary key.
	wants := []uRow{{id: 2, k: 10}, {id: 1, k: 30}}

	for _, f := range frees {
		for _, w := range wants {
			for _, ins := range uInserts {
				for _, commit := range []bool{true, false} {
					end := "ROLLBACK"
					if commit {
						end = "COMMIT"
					}
					name := fmt.Sprintf("%s then %s of %s, %s", f.name, ins.name, w, end)
					t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
						mustExec(t, db, "DELETE FROM u")
						mustExec(t, db, "INSERT INTO u VALUES (1, 10, 0)")

						mustExec(t, a, "BEGIN")
						mustExec(t, a, f.stmt)
						waits := lockWaits(srv)
						var res sql.Result
						done := background(func() error {
							var err error
							res, err = b.ExecContext(context.Background(), fmt.Sprintf(ins.stmt, w.id, w.k))
							return err
						})
						awaitLockWaits(t, srv, waits+1)
						requirePending(t, done, ins.name)
						mustExec(t, a, end)
						err := outcome(t, done, ins.name)

						before := start
						if commit {
							before = f.after
						}
						after, affected, dupKey := ins.expect(before, w)
						if dupKey != "" {
							me := requireMySQLError(t, err, 1062, "23000")
							val := fmt.Sprint(w.k)
							if dupKey == "PRIMARY" {
								val = fmt.Sprint(w.id)
							}
							require.Equal(t, fmt.Sprintf("Duplicate entry '%s' for key 'u.%s'", val, dupKey), me.Message)
						} else {
							require.NoError(t, err)
							n, err := res.RowsAffected()
							require.NoError(t, err)
							require.Equal(t, affected, n, "affected rows")
						}
						require.Equal(t, uStrings(after), uRows(t, db))
					})
				}
			}
		}
	}
}

// An INSERT judges a duplicate by the unique entry it locks, as InnoDB
// does: a committed entry is a duplicate at once, even while another
// transaction holds the row (SELECT ... FOR UPDATE) and may yet change its
// value. The INSERT does not wait for that row, so the other transaction
// then changes the value without a deadlock. The INSERT's transaction keeps
// the entry locked until it ends, and the change waits for it.
func TestDuplicateOfLockedRow(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE u (id INT PRIMARY KEY, k INT NULL, v INT NOT NULL, UNIQUE KEY k (k))")
	a, b := clientConn(t, db), clientConn(t, db)
	// A regression waits for a lock: fail it in seconds, not minutes.
	mustExec(t, b, "SET innodb_lock_wait_timeout = 5")
	mustExec(t, db, "INSERT INTO u VALUES (1, 10, 0)")

	mustExec(t, a, "BEGIN")
	require.Equal(t, []int64{1}, queryInts(t, a, "SELECT id FROM u WHERE id = 1 FOR UPDATE"))
	waits := lockWaits(srv)
	_, err := b.ExecContext(context.Background(), "INSERT INTO u VALUES (2, 10, 0)")
	me := requireMySQLError(t, err, 1062, "23000")
	require.Equal(t, "Duplicate entry '10' for key 'u.k'", me.Message)
	require.Equal(t, waits, lockWaits(srv), "the INSERT waited")
	mustExec(t, a, "UPDATE u SET k = 20 WHERE id = 1")
	mustExec(t, a, "COMMIT")
	require.Equal(t, []string{"1/20/0"}, uRows(t, db))

	// Inside a transaction, the failed INSERT holds the entry until the
	// transaction ends.
	mustExec(t, b, "BEGIN")
	_, err = b.ExecContext(context.Background(), "INSERT INTO u VALUES (2, 20, 0)")
	requireMySQLError(t, err, 1062, "23000")
	waits = lockWaits(srv)
	done := execAsync(a, "UPDATE u SET k = 30 WHERE id = 1")
	awaitLockWaits(t, srv, waits+1)
	requirePending(t, done, "UPDATE of a value another transaction found taken")
	mustExec(t, b, "ROLLBACK")
	require.NoError(t, outcome(t, done, "waiting UPDATE"))
	require.Equal(t, []string{"1/30/0"}, uRows(t, db))
}

// Concurrent upserts of one unique value queue on its entry and each
// changes the row as the previous one left it: no deadlock, no lost update.
func TestConcurrentUpsertsOfOneValue(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE c (id INT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(8) NOT NULL, n INT NOT NULL, UNIQUE KEY k (k))")
	const n = 8
	conns := make([]*sql.Conn, n)
	for i := range conns {
		conns[i] = clientConn(t, db)
	}
	runClients(t, n, func(id int) error {
		for i := 0; i < 20; i++ {
			if _, err := conns[id].ExecContext(context.Background(),
				"INSERT INTO c (k, n) VALUES ('x', 1) ON DUPLICATE KEY UPDATE n = n + 1"); err != nil {
				return err
			}
		}
		return nil
	})
	require.EqualValues(t, n*20, queryInt(t, db, "SELECT n FROM c WHERE k = 'x'"))
	require.EqualValues(t, 1, queryInt(t, db, "SELECT COUNT(*) FROM c"))
}

// ON DUPLICATE KEY UPDATE changes the duplicate's row as the transaction
// holding it leaves it: it waits for that row's lock and reads it under the
// lock (InnoDB's upsert locks the duplicate exclusively), so the other
// transaction's change is not lost.
func TestUpsertWaitsForDuplicateRow(t *testing.T) {
	srv, db := startWithDB(t, "d",
		"CREATE TABLE u (id INT PRIMARY KEY, k INT NULL, v INT NOT NULL, UNIQUE KEY k (k))")
	a, b := clientConn(t, db), clientConn(t, db)
	mustExec(t, db, "INSERT INTO u VALUES (1, 10, 0)")

	// Text and prepared (binary protocol) statements.
	for i, args := range [][]any{nil, {2, 10}} {
		q := "INSERT INTO u VALUES (2, 10, 0) ON DUPLICATE KEY UPDATE v = v + 1"
		if args != nil {
			q = "INSERT INTO u VALUES (?, ?, 0) ON DUPLICATE KEY UPDATE v = v + 1"
		}
		mustExec(t, a, "BEGIN")
		mustExec(t, a, "UPDATE u SET v = v + 5 WHERE id = 1")
		waits := lockWaits(srv)
		done := execAsync(b, q, args...)
		awaitLockWaits(t, srv, waits+1)
		requirePending(t, done, "upsert of a row another transaction holds")
		mustExec(t, a, "COMMIT")
		require.NoError(t, outcome(t, done, "waiting upsert"))
		require.Equal(t, []string{fmt.Sprintf("1/10/%d", 6*(i+1))}, uRows(t, db), q)
	}
}
