package cluster

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
	"github.com/fogdb/fogdb/wanem"
)

// remoteWriteCluster is three sites whose global group is led at paris
// (node 0), with a shared table t (a primary key and a unique key) and a
// table without a primary key.
func remoteWriteCluster(t *testing.T) *Cluster {
	c := StartSites(t, []string{"paris", "rennes", "nice"}, func(i int, cfg *server.Config) {
		cfg.Cluster.Timeout = 2 * time.Second
	})
	c.Exec(0, "CREATE DATABASE common",
		"CREATE TABLE common.t (id INT PRIMARY KEY, u VARCHAR(10), v INT, UNIQUE KEY u (u))",
		"CREATE TABLE common.k (a INT)")
	require.Eventually(t, func() bool { return c.Nodes[0].Srv.Group().IsLeader() }, Patience, 10*time.Millisecond)
	// Every node has the tables' definitions before the statements counted
	// (a listing of the catalog passes its barrier): a statement resolved
	// from a replica a DDL has not reached yet is run again, at the price
	// of its round trips.
	for i := range c.Nodes {
		c.Exec(i, "SHOW TABLES FROM common")
	}
	return c
}

func sqlErr(err error) (uint16, string) {
	if me, ok := err.(*mysql.MySQLError); ok {
		return me.Number, me.Message
	}
	return 0, ""
}

// An autocommit INSERT of a shared row at a site without the global
// leader sends its locks with its commit. It answers as an INSERT that
// locked first: a duplicate is 1062 with the message the leader's own
// site gives, whether the row was committed long before or by a
// transaction it waited for; INSERT IGNORE and ON DUPLICATE KEY UPDATE
// keep their meaning; and a transaction holding the key makes it wait.
func TestRemoteInsertLocksWithCommit(t *testing.T) {
	c := remoteWriteCluster(t)
	const paris, rennes = 0, 1
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	require.Equal(t, uint64(2), c.WANRoundTrips(rennes, "INSERT INTO common.t VALUES (1, 'a', 0)"))

	// Duplicates: the same error at both sites.
	for _, q := range []string{
		"INSERT INTO common.t VALUES (1, 'b', 0)",
		"INSERT INTO common.t VALUES (2, 'a', 0)",
	} {
		_, errLeader := c.DB(paris, "").ExecContext(ctx, q)
		_, errRemote := c.DB(rennes, "").ExecContext(ctx, q)
		code, msg := sqlErr(errRemote)
		require.Equal(t, uint16(1062), code, "%s at rennes: %v", q, errRemote)
		_, leaderMsg := sqlErr(errLeader)
		require.Equal(t, leaderMsg, msg, q)
	}
	res, err := c.DB(rennes, "").ExecContext(ctx, "INSERT IGNORE INTO common.t VALUES (1, 'c', 0)")
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.Zero(t, n, "INSERT IGNORE of a duplicate inserts nothing")
	_, err = c.DB(rennes, "").ExecContext(ctx, "INSERT INTO common.t VALUES (1, 'a', 0) ON DUPLICATE KEY UPDATE v = v + 1")
	require.NoError(t, err)
	var v int
	require.NoError(t, c.DB(rennes, "").QueryRowContext(ctx, "SELECT v FROM common.t WHERE id = 1").Scan(&v))
	require.Equal(t, 1, v)

	// A transaction at paris holds key 7: rennes's INSERT waits at the
	// leader, then finds the duplicate once it commits, or inserts once
	// it rolls back.
	for _, outcome := range []string{"COMMIT", "ROLLBACK"} {
		c.Exec(paris, "DELETE FROM common.t WHERE id = 7")
		holder := dedicatedConn(t, c, paris, "common")
		_, err := holder.ExecContext(ctx, "BEGIN")
		require.NoError(t, err)
		_, err = holder.ExecContext(ctx, "INSERT INTO t VALUES (7, 'x', 0)")
		require.NoError(t, err)
		waits := c.Nodes[paris].Srv.Group().LockStats().Waits
		done := make(chan error, 1)
		go func() {
			_, err := c.DB(rennes, "").ExecContext(ctx, "INSERT INTO common.t VALUES (7, 'y', 0)")
			done <- err
		}()
		require.Eventually(t, func() bool { return c.Nodes[paris].Srv.Group().LockStats().Waits > waits }, Patience, time.Millisecond,
			"rennes's INSERT does not wait for the key paris holds")
		select {
		case err := <-done:
			t.Fatalf("rennes's INSERT returned while the key was held: %v", err)
		default:
		}
		_, err = holder.ExecContext(ctx, outcome)
		require.NoError(t, err)
		err = <-done
		var u string
		require.NoError(t, c.DB(paris, "").QueryRowContext(ctx, "SELECT u FROM common.t WHERE id = 7").Scan(&u))
		if outcome == "COMMIT" {
			code, msg := sqlErr(err)
			require.Equal(t, uint16(1062), code, "%v", err)
			require.Equal(t, "Duplicate entry '7' for key 't.PRIMARY'", msg)
			require.Equal(t, "x", u)
		} else {
			require.NoError(t, err)
			require.Equal(t, "y", u)
		}
	}

	// In an explicit transaction the duplicate is the INSERT's, not the
	// COMMIT's.
	tx := dedicatedConn(t, c, rennes, "common")
	_, err = tx.ExecContext(ctx, "BEGIN")
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO t VALUES (1, 'z', 0)")
	code, _ := sqlErr(err)
	require.Equal(t, uint16(1062), code, "%v", err)
	_, err = tx.ExecContext(ctx, "COMMIT")
	require.NoError(t, err)
}

// A transaction at a site without the global leader that wrote a shared
// table holds the table's metadata lock from its write to its end, even
// when the write took no row lock (a table without a primary key): a
// DDL at the leader waits for it, and the transaction commits.
func TestRemoteWriteHoldsMetadataLock(t *testing.T) {
	c := remoteWriteCluster(t)
	const paris, rennes = 0, 1
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	tx := dedicatedConn(t, c, rennes, "common")
	_, err := tx.ExecContext(ctx, "BEGIN")
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO k VALUES (1)")
	require.NoError(t, err)

	waits := c.Nodes[paris].Srv.Group().LockStats().Waits
	ddl := make(chan error, 1)
	go func() {
		_, err := c.DB(paris, "").ExecContext(ctx, "ALTER TABLE common.k ADD COLUMN b INT")
		ddl <- err
	}()
	require.Eventually(t, func() bool { return c.Nodes[paris].Srv.Group().LockStats().Waits > waits }, Patience, time.Millisecond,
		"the ALTER does not wait for the transaction's metadata lock")
	_, err = tx.ExecContext(ctx, "COMMIT")
	require.NoError(t, err, "the transaction lost its table to the ALTER")
	require.NoError(t, <-ddl)
	var a int
	var b sql.NullInt64
	// Read at rennes at once: the new column is found there too.
	require.NoError(t, c.DB(rennes, "").QueryRowContext(ctx, "SELECT a, b FROM common.k").Scan(&a, &b))
	require.Equal(t, 1, a)
	require.False(t, b.Valid)
}

// A statement resolved from a replica of the catalog that a DDL made
// elsewhere has not reached yet: a column just added is found (the
// statement, refused while it was planned, runs again after the catalog's
// barrier, as a single server would have run it under the new
// definition); a write planned under the old definition fails with 1412
// and writes nothing (it ran by then, and running it again would repeat
// what it did to the session, such as a trigger's variables). Rennes is
// cut off while paris changes the table, so its replica is behind for
// sure; the cut holds rennes's requests until the heal, which comes once
// rennes has sent one.
func TestStaleDefinitions(t *testing.T) {
	c := remoteWriteCluster(t)
	const paris, rennes = 0, 1
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	c.Exec(paris, "INSERT INTO common.k VALUES (1)")
	c.Exec(rennes, "SELECT COUNT(*) FROM common.k")

	behind := func(ddl string, stmt func() error) error {
		for _, s := range []string{"paris", "nice"} {
			c.WAN.Cut("rennes", s, wanem.Blackhole)
		}
		c.Exec(paris, ddl)
		sent := c.Nodes[rennes].Srv.Node().WANStats().Critical
		done := make(chan error, 1)
		go func() { done <- stmt() }()
		require.Eventually(t, func() bool { return c.Nodes[rennes].Srv.Node().WANStats().Critical > sent }, Patience, time.Millisecond,
			"rennes sent nothing to another site")
		c.WAN.HealAll()
		return <-done
	}

	var b sql.NullInt64
	err := behind("ALTER TABLE common.k ADD COLUMN b INT DEFAULT 7", func() error {
		return c.DB(rennes, "").QueryRowContext(ctx, "SELECT b FROM common.k WHERE a = 1").Scan(&b)
	})
	require.NoError(t, err, "a column added elsewhere is unknown")
	require.Equal(t, int64(7), b.Int64)

	c.Exec(paris, "CREATE TRIGGER common.k_sum BEFORE INSERT ON common.k FOR EACH ROW SET @sum = @sum + NEW.a")
	c.Exec(rennes, "SHOW TRIGGERS FROM common")
	conn := dedicatedConn(t, c, rennes, "common")
	_, err = conn.ExecContext(ctx, "SET @sum = 0")
	require.NoError(t, err)
	err = behind("ALTER TABLE common.k ADD COLUMN c INT DEFAULT 8", func() error {
		_, err := conn.ExecContext(ctx, "INSERT INTO k (a) VALUES (5)")
		return err
	})
	code, _ := sqlErr(err)
	require.Equal(t, uint16(1412), code, "an INSERT under the old definition: %v", err)
	var sum, n int
	require.NoError(t, conn.QueryRowContext(ctx, "SELECT @sum").Scan(&sum))
	require.Equal(t, 5, sum, "the trigger ran once")
	require.NoError(t, c.DB(paris, "").QueryRowContext(ctx, "SELECT COUNT(*) FROM common.k WHERE a = 5").Scan(&n))
	require.Zero(t, n, "the refused INSERT wrote its row")
	_, err = conn.ExecContext(ctx, "INSERT INTO k (a) VALUES (5)")
	require.NoError(t, err, "run again by the client")
	var cc int
	require.NoError(t, c.DB(paris, "").QueryRowContext(ctx, "SELECT b, c FROM common.k WHERE a = 5").Scan(&b, &cc))
	require.Equal(t, int64(7), b.Int64)
	require.Equal(t, 8, cc)
}
