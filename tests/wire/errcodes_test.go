package wire

import (
	"context"
	"testing"
)

// The duplicate-entry text a client reads names the key of the error it
// got, not one an earlier INSERT IGNORE or upsert ran into and swallowed.
func TestDuplicateMessageBelongsToItsError(t *testing.T) {
	_, db := startWithDB(t, "d",
		"CREATE TABLE t (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE u (id INT PRIMARY KEY, v INT)",
		"INSERT INTO t VALUES (1, 1)",
		"INSERT INTO u VALUES (1, 7), (2, 7)")
	c := clientConn(t, db)
	ctx := context.Background()

	mustExec(t, c, "INSERT IGNORE INTO t VALUES (1, 2)")
	_, err := c.ExecContext(ctx, "ALTER TABLE u ADD UNIQUE KEY uv (v)")
	me := requireMySQLError(t, err, 1062, "23000")
	if me.Message != "Duplicate entry '7' for key 'u.uv'" {
		t.Fatalf("after INSERT IGNORE: %q", me.Message)
	}

	mustExec(t, c, "INSERT INTO t VALUES (1, 3) ON DUPLICATE KEY UPDATE v = 3")
	_, err = c.ExecContext(ctx, "ALTER TABLE u ADD UNIQUE KEY uv (v)")
	me = requireMySQLError(t, err, 1062, "23000")
	if me.Message != "Duplicate entry '7' for key 'u.uv'" {
		t.Fatalf("after an upsert: %q", me.Message)
	}

	// The statement's own duplicate still gets MySQL's text.
	_, err = c.ExecContext(ctx, "INSERT INTO t VALUES (1, 4)")
	me = requireMySQLError(t, err, 1062, "23000")
	if me.Message != "Duplicate entry '1' for key 't.PRIMARY'" {
		t.Fatalf("own duplicate: %q", me.Message)
	}
}
