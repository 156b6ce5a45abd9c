package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/server"
)

// tableKeys counts node i's stored keys of every table ID, and its cleanup
// records.
func tableKeys(t *testing.T, c *Cluster, i int) (rows, records int) {
	eng := c.Nodes[i].Srv.Provider().Engine()
	count := func(start, end []byte) int {
		it := eng.NewIterator(start, end, kv.MaxTimestamp, false)
		defer it.Close()
		n := 0
		for it.Next() {
			n++
		}
		require.NoError(t, it.Err())
		return n
	}
	tp := []byte{keys.PrefixTable}
	dp := keys.CatalogKey([]byte("drop"))
	return count(tp, keys.PrefixEnd(tp)), count(dp, keys.PrefixEnd(dp))
}

// TestBigDDLOnFollower: DDL issued on a follower on a table larger than the
// transaction limit succeeds, and the leader removes the old rows in the
// background on every node.
func TestBigDDLOnFollower(t *testing.T) {
	c := Start(t, 3, func(_ int, cfg *server.Config) { cfg.SQL.MaxTxnBytes = 64 << 10 })
	f := c.Follower()
	c.Exec(f, "CREATE DATABASE big", "CREATE TABLE big.t (id INT PRIMARY KEY, v VARCHAR(200), KEY kv (v))")
	pad := strings.Repeat("p", 100)
	for i := 0; i < 2000; i += 50 {
		var vals []string
		for j := i; j < i+50; j++ {
			vals = append(vals, fmt.Sprintf("(%d, 'v%05d%s')", j, j, pad))
		}
		c.Exec(f, "INSERT INTO big.t VALUES "+strings.Join(vals, ","))
	}
	c.Exec(f, "ALTER TABLE big.t ADD COLUMN w INT NOT NULL DEFAULT 7", "ALTER TABLE big.t ADD UNIQUE KEY uv (v)")
	var n int
	require.NoError(t, c.DB(f, "big").QueryRow("SELECT COUNT(*) FROM t WHERE w = 7").Scan(&n))
	require.Equal(t, 2000, n)
	c.Exec(f, "TRUNCATE TABLE big.t", "INSERT INTO big.t VALUES (1, 'one', 1)", "DROP DATABASE big")
	for i := range c.Nodes {
		require.Eventually(t, func() bool {
			rows, records := tableKeys(t, c, i)
			return rows == 0 && records == 0
		}, Patience, 10*time.Millisecond, "node %d keeps rows of dropped tables", i)
	}
}
