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
