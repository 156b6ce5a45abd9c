package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/server"
	"github.com/fogdb/fogdb/wanem"
)

// rowKeys counts the row and index keys a store holds.
func rowKeys(t *testing.T, eng *kv.Engine) int {
	t.Helper()
	it := eng.NewIterator([]byte{keys.PrefixTable}, []byte{keys.PrefixTable + 1}, kv.MaxTimestamp, false)
	defer it.Close()
	n := 0
	for it.Next() {
		n++
	}
	require.NoError(t, it.Err())
	return n
}

func mysqlCode(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// A database placed at a site keeps its rows in that site's group: they
// never enter the global group, and the site goes on writing them while
// it is cut off from every other site, when writes to shared tables fail
// with 1047 within the cluster timeout.
func TestSiteTablesStayAtTheirSite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "placement.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`default: global
databases:
  cell_paris:
    placement: site:paris
  common:
    placement: global
    staleness: 1s
    tables:
      prices:
        placement: global
        staleness: 1s
        strict: true
`), 0o600))
	sites := []string{"paris", "rennes", "nice"}
	c := StartSites(t, sites, func(i int, cfg *server.Config) {
		if i == 0 {
			cfg.PlacementFile = file
		}
		cfg.Cluster.Timeout = 2 * time.Second
	})
	const paris = 0
	c.Exec(paris, "CREATE DATABASE common", "CREATE TABLE common.flavors (id INT PRIMARY KEY, name VARCHAR(32))",
		"INSERT INTO common.flavors VALUES (1, 'small')",
		"CREATE TABLE common.prices (id INT PRIMARY KEY, eur INT)", "INSERT INTO common.prices VALUES (1, 10)",
		"CREATE DATABASE cell_paris", "CREATE TABLE cell_paris.instances (id INT PRIMARY KEY, host VARCHAR(32), state VARCHAR(16), KEY (host))",
		"CREATE TABLE cell_paris.actions (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(16))")
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	var group uint64
	require.NoError(t, c.DB(paris, "").QueryRowContext(ctx,
		"SELECT group_id FROM fogdb.placements WHERE table_schema = 'cell_paris' AND table_name = 'instances'").Scan(&group))
	siteGroup := c.Nodes[paris].Srv.SiteGroup()
	require.Equal(t, siteGroup.Status().Group, group, "the table is in paris's group")

	global := c.Nodes[paris].Srv.Group().Engine()
	before := rowKeys(t, global)
	c.Exec(paris, "INSERT INTO cell_paris.instances VALUES (1, 'compute-1', 'building'), (2, 'compute-2', 'building')",
		"UPDATE cell_paris.instances SET state = 'active' WHERE id = 1")
	require.Equal(t, before, rowKeys(t, global), "no row or index key of a paris table enters the global group")
	require.Equal(t, 6, rowKeys(t, siteGroup.Engine()), "two rows, their two index entries and the two tables' definition markers")

	// Counted, not timed: a transaction on paris's rows at paris waits for
	// no other site; a write to a shared table at paris waits for one (the
	// global leader is at paris and needs another site's acknowledgement).
	// From rennes an autocommit INSERT waits for two: one request to the
	// leader at paris that takes its locks and commits, and the commit's
	// quorum. In an explicit transaction the statement takes its locks
	// itself, in one request (the table's metadata lock and the row's),
	// and COMMIT then costs two.
	require.Eventually(t, func() bool { return c.Nodes[paris].Srv.Group().IsLeader() }, Patience, 10*time.Millisecond)
	require.Zero(t, c.WANRoundTrips(paris, "BEGIN",
		"INSERT INTO cell_paris.instances VALUES (3, 'compute-3', 'building')",
		"UPDATE cell_paris.instances SET state = 'active' WHERE id = 3",
		"SELECT COUNT(*) FROM cell_paris.instances WHERE host = 'compute-3'",
		"COMMIT"))
	require.Zero(t, c.WANRoundTrips(paris, "UPDATE cell_paris.instances SET state = 'error' WHERE id = 2"))
	// AUTO_INCREMENT values of a paris table are kept by paris's group.
	require.Zero(t, c.WANRoundTrips(paris, "INSERT INTO cell_paris.actions (what) VALUES ('create'), ('start')"))
	require.Equal(t, uint64(1), c.WANRoundTrips(paris, "INSERT INTO common.flavors VALUES (4, 'tiny')"))
	c.Exec(1, "SHOW TABLES FROM common") // rennes has the tables' definitions
	require.Equal(t, uint64(2), c.WANRoundTrips(1, "INSERT INTO common.flavors VALUES (5, 'huge')"))
	require.Equal(t, uint64(3), c.WANRoundTrips(1, "BEGIN", "INSERT INTO common.flavors VALUES (6, 'large')", "COMMIT"))
	c.Exec(paris, "DELETE FROM common.flavors WHERE id IN (4, 5, 6)", "DELETE FROM cell_paris.instances WHERE id = 3")
	// Shared data is read from the node's own replica within the table's
	// staleness bound: no barrier at the global leader in paris.
	require.Eventually(t, func() bool {
		d, ok := c.Nodes[1].Srv.Group().SinceLeaderContact()
		return ok && d < 500*time.Millisecond
	}, Patience, 10*time.Millisecond)
	require.Zero(t, c.WANRoundTrips(1, "BEGIN", "SELECT COUNT(*) FROM common.flavors", "SELECT eur FROM common.prices WHERE id = 1", "COMMIT"))

	// Paris is cut off from every other site.
	for _, s := range sites[1:] {
		c.WAN.Cut("paris", s, wanem.Blackhole)
	}
	defer c.WAN.HealAll()
	db := c.DB(paris, "")
	for i := range 5 {
		_, err := db.ExecContext(ctx, "INSERT INTO cell_paris.instances VALUES (?, 'compute-1', 'building')", 10+i)
		require.NoError(t, err, "paris writes its own rows during the cut")
	}
	_, err := db.ExecContext(ctx, "UPDATE cell_paris.instances SET state = 'active' WHERE host = 'compute-1'")
	require.NoError(t, err)
	for range 3 {
		_, err := db.ExecContext(ctx, "INSERT INTO cell_paris.actions (what) VALUES ('cut')")
		require.NoError(t, err, "AUTO_INCREMENT of a paris table during the cut")
	}
	var actions, distinct int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT id) FROM cell_paris.actions").Scan(&actions, &distinct))
	require.Equal(t, 5, actions)
	require.Equal(t, 5, distinct)
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM cell_paris.instances WHERE state = 'active'").Scan(&n))
	require.Equal(t, 6, n)
	// Once paris's node no longer leads the global group (it led it
	// before the cut, and steps down without a quorum), a shared write is
	// refused as unavailable: nothing was written.
	require.Eventually(t, func() bool { return !c.Nodes[paris].Srv.Group().IsLeader() }, Patience, 10*time.Millisecond)
	start := time.Now()
	_, err = db.ExecContext(ctx, "INSERT INTO common.flavors VALUES (2, 'large')")
	require.Equal(t, uint16(1047), mysqlCode(err), "a shared write needs the global group: %v", err)
	require.Less(t, time.Since(start), Patience, "it fails, it does not hang")

	// Paris reads its last shared data with a warning once its replica is
	// older than the bound; a strict table refuses.
	require.Eventually(t, func() bool {
		d, ok := c.Nodes[paris].Srv.Group().SinceLeaderContact()
		return !ok || d > 1500*time.Millisecond
	}, Patience, 10*time.Millisecond)
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	var flavors int
	require.NoError(t, conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM common.flavors").Scan(&flavors))
	require.Equal(t, 1, flavors)
	var level, msg string
	var code int
	require.NoError(t, conn.QueryRowContext(ctx, "SHOW WARNINGS").Scan(&level, &code, &msg))
	require.Contains(t, msg, "common.flavors read from this node's replica")
	var eur int
	err = conn.QueryRowContext(ctx, "SELECT eur FROM common.prices WHERE id = 1").Scan(&eur)
	require.Equal(t, uint16(1047), mysqlCode(err), "a strict table is not read stale: %v", err)
	conn.Close()

	// The other sites go on with shared data meanwhile.
	c.Exec(1, "INSERT INTO common.flavors VALUES (3, 'medium')")

	c.WAN.HealAll()
	require.Eventually(t, func() bool {
		var k int
		return c.DB(paris, "").QueryRowContext(ctx, "SELECT COUNT(*) FROM common.flavors").Scan(&k) == nil && k == 2
	}, Patience, 20*time.Millisecond, "paris catches up with shared data after the heal")
}
