package cluster

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
	"github.com/fogdb/fogdb/wanem"
)

// A local table over three sites: each row lives in the group of the site
// its host column names (a site's name, or a value the placement's map
// gives a site), or, for a value nobody knows, of the site that inserted
// it. Any node reads all of them; a row of another site is read and
// updated through that site's leader, which costs round trips between
// sites, counted; a site's own rows cost none. A scan needs every site, so
// it fails as unavailable while one is cut off, while the cut site goes on
// with its own rows.
func TestLocalTableOverSites(t *testing.T) {
	file := filepath.Join(t.TempDir(), "placement.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`default: global
databases:
  nova:
    tables:
      instances:
        placement: local
        locality: host
        site_unique: [uuid]
      instance_actions:
        placement: local
        locality: host
locality_map:
  compute-p1: paris
  compute-r1: rennes
`), 0o600))
	sites := []string{"paris", "rennes", "nice"}
	c := StartSites(t, sites, func(i int, cfg *server.Config) {
		if i == 0 {
			cfg.PlacementFile = file
		}
		cfg.Cluster.Timeout = 2 * time.Second
	})
	const paris, rennes, nice = 0, 1, 2
	c.Exec(paris, "CREATE DATABASE nova",
		"CREATE TABLE nova.instances (id INT PRIMARY KEY, uuid CHAR(36), host VARCHAR(64), state VARCHAR(16), UNIQUE KEY (uuid), KEY (host))",
		"CREATE TABLE nova.instance_actions (id INT AUTO_INCREMENT PRIMARY KEY, host VARCHAR(64), action VARCHAR(16), KEY (host))")
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()

	// Inserted at rennes: by the map, by a site's name, and unknown
	// (homed at rennes, and registered there).
	c.Exec(rennes,
		"INSERT INTO nova.instances VALUES (1, 'u1', 'compute-p1', 'building')",
		"INSERT INTO nova.instances VALUES (2, 'u2', 'compute-r1', 'building')",
		"INSERT INTO nova.instances VALUES (3, 'u3', 'nice', 'building')",
		"INSERT INTO nova.instances VALUES (4, 'u4', 'compute-new', 'building')")
	// compute-new is now rennes's: a row for it inserted at nice goes there.
	c.Exec(nice, "INSERT INTO nova.instances VALUES (5, 'u5', 'compute-new', 'building')")

	home := map[int]int{}
	for i := range c.Nodes {
		eng := c.Nodes[i].Srv.SiteGroup().Engine()
		before := rowKeys(t, eng)
		home[i] = before
	}
	// Paris holds one row, rennes three, nice one; each with its index
	// entries (uuid, host), and the two tables' definition markers.
	require.Equal(t, 1*3+2, home[paris])
	require.Equal(t, 3*3+2, home[rennes])
	require.Equal(t, 1*3+2, home[nice])

	// Every node sees every row.
	for i := range c.Nodes {
		var n int
		require.NoError(t, c.DB(i, "").QueryRowContext(ctx, "SELECT COUNT(*) FROM nova.instances").Scan(&n))
		require.Equal(t, 5, n, c.Nodes[i].Name)
	}

	// Paris updates its own row by its locality key: no other site.
	require.Zero(t, c.WANRoundTrips(paris, "UPDATE nova.instances SET state = 'active' WHERE host = 'compute-p1' AND id = 1"))
	// Paris updates a row of rennes: it goes to rennes's leader.
	require.NotZero(t, c.WANRoundTrips(paris, "UPDATE nova.instances SET state = 'active' WHERE host = 'compute-r1' AND id = 2"))
	var state string
	require.NoError(t, c.DB(rennes, "").QueryRowContext(ctx, "SELECT state FROM nova.instances WHERE id = 2").Scan(&state))
	require.Equal(t, "active", state)

	// The primary key is checked at every site: id 2 is rennes's, so nice
	// may not insert it for one of its own hosts. uuid is declared
	// site-unique, so only nice's own rows are checked for it.
	_, err := c.DB(nice, "").ExecContext(ctx, "INSERT INTO nova.instances VALUES (2, 'u6', 'nice', 'building')")
	require.Equal(t, uint16(1062), mysqlCode(err), "%v", err)
	_, err = c.DB(nice, "").ExecContext(ctx, "INSERT INTO nova.instances VALUES (7, 'u3', 'nice', 'building')")
	require.Equal(t, uint16(1062), mysqlCode(err), "u3 is nice's already: %v", err)

	// AUTO_INCREMENT of a local table: each site hands out its own stride
	// of values, concurrently, without asking another site.
	var wg sync.WaitGroup
	for i, host := range []string{"paris", "rennes", "nice"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := c.DB(i, "")
			for range 10 {
				_, err := db.ExecContext(ctx, "INSERT INTO nova.instance_actions (host, action) VALUES (?, 'create')", host)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	require.Zero(t, c.WANRoundTrips(nice, "INSERT INTO nova.instance_actions (host, action) VALUES ('nice', 'start')"))
	rows, err := c.DB(paris, "").QueryContext(ctx, "SELECT id, host FROM nova.instance_actions")
	require.NoError(t, err)
	ids := map[int]bool{}
	for rows.Next() {
		var id int
		var host string
		require.NoError(t, rows.Scan(&id, &host))
		require.False(t, ids[id], "id %d handed out twice", id)
		ids[id] = true
		group := c.Nodes[map[string]int{"paris": paris, "rennes": rennes, "nice": nice}[host]].Srv.SiteGroup().Status().Group
		require.Equal(t, int(group-1), (id-1)%64+1, "id %d of %s is in its site's stride", id, host)
	}
	require.NoError(t, rows.Err())
	require.Len(t, ids, 31)

	// Nice is cut off: the others' scans fail as unavailable, never with
	// partial rows; nice goes on with its own rows by locality key.
	for _, s := range sites[:2] {
		c.WAN.Cut("nice", s, wanem.Blackhole)
	}
	defer c.WAN.HealAll()
	var n int
	err = c.DB(paris, "").QueryRowContext(ctx, "SELECT COUNT(*) FROM nova.instances").Scan(&n)
	require.Equal(t, uint16(1047), mysqlCode(err), "a scan needing a cut site: %v", err)
	_, err = c.DB(nice, "").ExecContext(ctx, "UPDATE nova.instances SET state = 'active' WHERE host = 'nice' AND id = 3")
	require.NoError(t, err, "nice updates its own row during the cut")
	_, err = c.DB(nice, "").ExecContext(ctx, "INSERT INTO nova.instance_actions (host, action) VALUES ('nice', 'reboot')")
	require.NoError(t, err, "nice's sequence needs no other site")
	require.NoError(t, c.DB(paris, "").QueryRowContext(ctx, "SELECT COUNT(*) FROM nova.instances WHERE host = 'compute-p1'").Scan(&n))
	require.Equal(t, 1, n, "a read by locality key needs only its home")

	c.WAN.HealAll()
	require.Eventually(t, func() bool {
		return c.DB(paris, "").QueryRowContext(ctx, "SELECT COUNT(*) FROM nova.instances WHERE state = 'active'").Scan(&n) == nil && n == 3
	}, Patience, 20*time.Millisecond)
}
