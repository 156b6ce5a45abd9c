package sqlfront

import (
	"context"
	"testing"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"
)

// count runs SELECT COUNT(*) FROM t in session s.
func (db *testDB) count(t *testing.T, s *Session) (int64, error) {
	t.Helper()
	if err := s.CommandBegin(); err != nil {
		return 0, err
	}
	defer s.CommandEnd()
	q := "SELECT COUNT(*) FROM t"
	ctx := sql.NewContext(context.Background(), sql.WithSession(s)).WithQuery(q)
	_, it, _, err := db.e.Query(ctx, q)
	if err != nil {
		return 0, err
	}
	rows, err := sql.RowIterToRows(ctx, it)
	if err != nil {
		return 0, err
	}
	return rows[0][0].(int64), nil
}

// TestSnapshotOlderThanTableDefinition: a consistent read whose snapshot
// predates a TRUNCATE or a rebuild of the table by another session never
// answers from the new table ID's range as of that snapshot (which holds
// nothing yet): it fails with 1412, as InnoDB does for a table whose
// definition is newer than the read view.
func TestSnapshotOlderThanTableDefinition(t *testing.T) {
	for _, ddl := range []string{"TRUNCATE TABLE t", "ALTER TABLE t ADD COLUMN extra INT"} {
		t.Run(ddl, func(t *testing.T) {
			db := newTestDB(t)
			db.query("CREATE DATABASE d")
			db.sess.SetCurrentDatabase("d")
			db.query("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
			db.query("CREATE TABLE u (id INT PRIMARY KEY)")
			db.query("INSERT INTO t VALUES (1, 1), (2, 1), (3, 1)")
			r := db.prov.NewSession(sql.NewBaseSession())
			r.SetCurrentDatabase("d")
			require.NoError(t, db.exec(r, "START TRANSACTION"))
			require.NoError(t, db.exec(r, "SELECT * FROM u"))
			require.NoError(t, db.exec(db.sess, ddl))
			n, err := db.count(t, r)
			if err == nil {
				require.EqualValues(t, 3, n, "a snapshot read of t after %s", ddl)
			} else {
				require.Contains(t, err.Error(), "1412")
			}
			require.NoError(t, db.exec(r, "COMMIT"))
			n, err = db.count(t, r)
			require.NoError(t, err)
			if ddl == "TRUNCATE TABLE t" {
				require.EqualValues(t, 0, n)
			} else {
				require.EqualValues(t, 3, n)
			}
		})
	}
}

// TestSnapshotOlderThanIndex: a consistent read through an index built
// after its snapshot would find no entries; it fails with 1412 instead.
// A plain scan of the table is unaffected by the new index.
func TestSnapshotOlderThanIndex(t *testing.T) {
	db := newTestDB(t)
	db.query("CREATE DATABASE d")
	db.sess.SetCurrentDatabase("d")
	db.query("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	db.query("CREATE TABLE u (id INT PRIMARY KEY)")
	db.query("INSERT INTO t VALUES (1, 7), (2, 7), (3, 7)")
	r := db.prov.NewSession(sql.NewBaseSession())
	r.SetCurrentDatabase("d")
	require.NoError(t, db.exec(r, "START TRANSACTION"))
	require.NoError(t, db.exec(r, "SELECT * FROM u"))
	db.query("CREATE INDEX iv ON t (v)")
	require.Contains(t, db.plan("SELECT id FROM t WHERE v = 7"), "index: [t.v]")

	n, err := db.count(t, r)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	err = db.exec(r, "SELECT id FROM t WHERE v = 7")
	if err != nil {
		require.Contains(t, err.Error(), "1412")
	} else {
		q := "SELECT COUNT(id) FROM t WHERE v = 7"
		require.NoError(t, r.CommandBegin())
		ctx := sql.NewContext(context.Background(), sql.WithSession(r)).WithQuery(q)
		_, it, _, err := db.e.Query(ctx, q)
		require.NoError(t, err)
		rows, err := sql.RowIterToRows(ctx, it)
		r.CommandEnd()
		require.NoError(t, err)
		require.EqualValues(t, 3, rows[0][0])
	}
	require.NoError(t, db.exec(r, "COMMIT"))
}
