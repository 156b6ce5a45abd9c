package sqlfront

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"
)

// laggingNode is a second provider over db's parts whose catalog cache
// follows the catalog group only at its read barriers, as a follower's
// does when it has not yet applied the newest entries. As on a server,
// its engine answers for the mysql database itself (users and grants),
// so a statement asks the provider only for the databases it names.
func laggingNode(t *testing.T, db *partsDB) *testDB {
	cat := &barrierPart{LocalStore: db.parts[1]}
	other, err := NewProviderOn(NewPartSet(cat, map[uint64]Part{2: db.parts[2], 3: db.parts[3]}), db.config())
	require.NoError(t, err)
	t.Cleanup(other.Close)
	cat.onBarrier = func() {
		if err := other.reloadDB("d"); err != nil {
			t.Errorf("reloading the catalog: %v", err)
		}
	}
	e := newEngine(other)
	mdb := e.Analyzer.Catalog.MySQLDb
	ed := mdb.Editor()
	mdb.AddSuperUser(ed, "root", "localhost", "")
	ed.Close()
	mdb.SetEnabled(true)
	s := other.NewSession(sql.NewBaseSessionWithClientServer("", sql.Client{User: "root", Address: "localhost"}, 1))
	s.SetCurrentDatabase("d")
	return &testDB{t: t, eng: db.engs[1], prov: other, e: e, sess: s}
}

// TestStatementAfterDDLElsewhere: a statement on a node whose catalog has
// not yet applied a DDL acknowledged on another node (TRUNCATE, a
// rebuild, DROP and CREATE under the same name), followed there by an
// acknowledged insert of row 2, sees row 2 or fails: it never reads or
// locks the rows of the table ID the DDL orphaned, and so never answers
// without row 2, nor updates nothing in its place.
func TestStatementAfterDDLElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name  string
		place map[string]uint64
	}{{"catalog group", nil}, {"placed", map[string]uint64{"t": 2}}} {
		for _, c := range []struct{ ddl, ids string }{
			{"TRUNCATE TABLE t", "[[2]]"},
			{"ALTER TABLE t MODIFY v BIGINT", "[[1] [2]]"},
			{"DROP TABLE t; CREATE TABLE t (id INT PRIMARY KEY, v INT)", "[[2]]"},
		} {
			for _, probe := range []string{"select", "for update", "update"} {
				t.Run(tc.name+"/"+strings.Fields(c.ddl)[0]+"/"+probe, func(t *testing.T) {
					db := newPartsDB(t, tc.place)
					db.query("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
					db.query("INSERT INTO t VALUES (1, 1)")
					b := laggingNode(t, db)
					require.Len(t, b.query("SELECT * FROM t"), 1)

					for _, q := range strings.Split(c.ddl, "; ") {
						require.NoError(t, db.exec(db.sess, q))
					}
					require.NoError(t, db.exec(db.sess, "INSERT INTO t VALUES (2, 2)"))

					var err error
					defer func() {
						if err != nil {
							requireSQLError(t, err, 1412, mysql1412State, "Table definition has changed")
						}
					}()
					var rows []sql.Row
					switch probe {
					case "select":
						rows, err = queryIn(b, b.sess, "SELECT id FROM t ORDER BY id")
						if err == nil {
							require.Equal(t, c.ids, fmt.Sprint(rows), "read on the lagging node after %q", c.ddl)
						}
					case "for update":
						rows, err = queryIn(b, b.sess, "SELECT id FROM t WHERE id = 2 FOR UPDATE")
						if err == nil {
							require.Equal(t, "[[2]]", fmt.Sprint(rows), "locking read on the lagging node after %q", c.ddl)
						}
					case "update":
						rows, err = queryIn(b, b.sess, "UPDATE t SET v = 9 WHERE id = 2")
						if err == nil {
							require.Equal(t, "[[{1 1 0 0}]]", fmt.Sprint(rows), "update on the lagging node after %q", c.ddl)
							require.Equal(t, "[[9]]", fmt.Sprint(db.query("SELECT v FROM t WHERE id = 2")))
						}
					}
				})
			}
		}
	}
}

// TestFirstReadOfTransactionPassesItsOwnBarrier: the snapshot a
// transaction takes of the catalog part at its first read follows a read
// barrier run by that statement (or one begun after it), not one an
// earlier statement of the transaction ran without reading (SHOW, a
// name that missed): a commit acknowledged between the two would
// otherwise be missing from the snapshot on a follower.
func TestFirstReadOfTransactionPassesItsOwnBarrier(t *testing.T) {
	for _, first := range []string{"SHOW TABLES", "SELECT * FROM nosuch", "SELECT * FROM p"} {
		t.Run(first, func(t *testing.T) {
			db := newPartsDB(t, map[string]uint64{"p": 2})
			db.query("CREATE TABLE g (id INT PRIMARY KEY)")
			db.query("CREATE TABLE p (id INT PRIMARY KEY)")
			b := laggingNode(t, db)
			cat := b.prov.cat().(*barrierPart)
			var barriers int
			reload := cat.onBarrier
			cat.onBarrier = func() { barriers++; reload() }

			require.NoError(t, b.exec(b.sess, "START TRANSACTION"))
			_ = b.exec(b.sess, first)
			require.NoError(t, db.exec(db.sess, "INSERT INTO g VALUES (1)")) // acknowledged
			before := barriers
			rows, err := queryIn(b, b.sess, "SELECT * FROM g")
			require.NoError(t, err)
			require.Greater(t, barriers, before, "the transaction's first read of g took its snapshot without a barrier after the insert was acknowledged (rows %v)", rows)
			require.NoError(t, b.exec(b.sess, "COMMIT"))
		})
	}
}

// TestForeignKeyAddedElsewhere: a node whose catalog has not yet applied
// a foreign key added on another node (acknowledged) must not delete a
// parent row the key protects: the delete fails (1451, or 1412 to be
// retried), and the child row keeps its parent.
func TestForeignKeyAddedElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name  string
		place map[string]uint64
	}{{"catalog group", nil}, {"placed", map[string]uint64{"parent": 2, "child": 2}}} {
		t.Run(tc.name, func(t *testing.T) {
			db := newPartsDB(t, tc.place)
			db.query("CREATE TABLE parent (id INT PRIMARY KEY)")
			db.query("CREATE TABLE child (id INT PRIMARY KEY, pid INT)")
			db.query("INSERT INTO parent VALUES (1)")
			db.query("INSERT INTO child VALUES (1, 1)")
			b := laggingNode(t, db)
			require.Len(t, b.query("SELECT * FROM parent"), 1)

			require.NoError(t, db.exec(db.sess, "ALTER TABLE child ADD CONSTRAINT fk FOREIGN KEY (pid) REFERENCES parent (id)"))

			err := b.exec(b.sess, "DELETE FROM parent WHERE id = 1")
			require.Error(t, err, "the parent row of child 1 was deleted on the lagging node")
			require.Equal(t, "[[1]]", fmt.Sprint(db.query("SELECT id FROM parent")))
		})
	}
}

// TestCheckAddedElsewhere: a node whose catalog has not yet applied a
// CHECK constraint added on another node (acknowledged) must not commit
// a row that violates it: the insert fails (3819, or 1412 to be retried).
// For a placed table the writer meets the newer marker; for a table of
// the catalog group, the statement's read of another table passed the
// catalog's barrier before the write.
func TestCheckAddedElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name   string
		place  map[string]uint64
		insert string
	}{
		{"placed", map[string]uint64{"a": 2}, "INSERT INTO a VALUES (5, -1)"},
		{"catalog group", nil, "INSERT INTO a SELECT 5, -1 FROM src"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newPartsDB(t, tc.place)
			db.query("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
			db.query("CREATE TABLE src (id INT PRIMARY KEY)")
			db.query("INSERT INTO src VALUES (1)")
			b := laggingNode(t, db)
			require.Len(t, b.query("SELECT * FROM a"), 0)

			require.NoError(t, db.exec(db.sess, "ALTER TABLE a ADD CONSTRAINT positive CHECK (v > 0)"))

			err := b.exec(b.sess, tc.insert)
			require.Error(t, err, "a row violating CHECK positive was committed on the lagging node")
			require.Empty(t, db.query("SELECT * FROM a WHERE v <= 0"))
		})
	}
}
