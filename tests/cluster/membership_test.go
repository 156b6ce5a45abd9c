package cluster

import (
	"context"
	"database/sql"
	"net/http"
	"testing"
	"time"

	"github.com/fogdb/fogdb/server"
	"github.com/stretchr/testify/require"
)

// A node joins as a non-voter and receives the data; the admin API removes
// a member only for root, and the cluster goes on without it.
func TestNonVoterJoinAndRemoval(t *testing.T) {
	c := Start(t, 4, func(i int, cfg *server.Config) {
		if i == 1 || i == 3 {
			cfg.AdminAddr = "127.0.0.1:0"
		}
		cfg.Cluster.NonVoter = i == 3
	})
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE m", "CREATE TABLE m.t (id INT PRIMARY KEY)", "INSERT INTO m.t VALUES (1), (2)")
	require.Equal(t, c.Checksum(l), c.Checksum(3), "the non-voter holds the data")

	members := func(i int) map[string]bool {
		out := map[string]bool{}
		for _, m := range c.Nodes[i].Srv.Group().Status().Members {
			out[m.ID] = m.Voter
		}
		return out
	}
	require.Equal(t, map[string]bool{"n1": true, "n2": true, "n3": true, "n4": false}, members(l))

	// Removal needs root's password as stored in the cluster, set here on
	// the leader; the joined nodes were started without one.
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	c.Exec(l, "ALTER USER 'root'@'localhost' IDENTIFIED BY 'rootpw'")
	rootDB := func(i int) *sql.DB {
		db, err := sql.Open("mysql", "root:rootpw@tcp("+c.Nodes[i].MySQLAddr+")/m")
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		return db
	}
	_, err := rootDB(l).ExecContext(ctx, "ALTER USER 'root'@'%' IDENTIFIED BY 'rootpw'")
	require.NoError(t, err)
	post := func(user, pass string) int { return postRemove(t, c.Nodes[3].Srv.AdminAddr(), user, pass) }
	require.Equal(t, http.StatusUnauthorized, post("", ""))
	require.Equal(t, http.StatusUnauthorized, post("root", "wrong"))
	require.Equal(t, http.StatusUnauthorized, post("root", ""))
	require.Equal(t, members(l)["n4"], false, "a refused request removes nothing")
	require.Equal(t, http.StatusOK, post("root", "rootpw"))
	require.Eventually(t, func() bool { _, ok := members(c.Leader())["n4"]; return !ok }, Patience, 10*time.Millisecond)
	require.Equal(t, http.StatusNotFound, postRemove(t, c.Nodes[1].Srv.AdminAddr(), "root", "rootpw"), "no longer a member")

	// The voters go on.
	_, err = rootDB(c.Leader()).ExecContext(ctx, "INSERT INTO m.t VALUES (3)")
	require.NoError(t, err)
	var n int
	require.NoError(t, rootDB(c.Follower()).QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n))
	require.Equal(t, 3, n)
}

func postRemove(t *testing.T, adminAddr, user, pass string) int {
	req, err := http.NewRequest(http.MethodPost, "http://"+adminAddr+"/cluster/remove?id=n4", nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := (&http.Client{Timeout: Patience}).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}
