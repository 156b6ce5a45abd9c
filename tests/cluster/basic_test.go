package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every node serves the same databases: DDL, users and rows written on any
// node are on all of them, and AUTO_INCREMENT values from different nodes
// never collide.
func TestEveryNodeServesTheSameData(t *testing.T) {
	c := Start(t, 3, nil)
	f := c.Follower()
	c.Exec(f,
		"CREATE DATABASE shop",
		"CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, node INT, name VARCHAR(20), UNIQUE KEY (name))",
		"CREATE TABLE shop.log (node INT, k INT)", // no key: hidden row IDs, handed out by the leader
		"CREATE USER 'app'@'%' IDENTIFIED BY 'pw'",
		"GRANT SELECT ON shop.* TO 'app'@'%'",
	)
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	var wg sync.WaitGroup
	for i := range c.Nodes {
		db := c.DB(i, "shop")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				_, err := db.ExecContext(ctx, "INSERT INTO items (node, name) VALUES (?, ?)", i, nil)
				require.NoError(t, err)
				_, err = db.ExecContext(ctx, "INSERT INTO log VALUES (?, ?)", i, k)
				require.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	sums := map[string]bool{}
	for i := range c.Nodes {
		sums[c.Checksum(i)] = true
		var n, distinct int
		require.NoError(t, c.DB(i, "shop").QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT id) FROM items").Scan(&n, &distinct))
		require.Equal(t, 60, n)
		require.Equal(t, 60, distinct)
		require.NoError(t, c.DB(i, "shop").QueryRowContext(ctx, "SELECT COUNT(*) FROM log").Scan(&n))
		require.Equal(t, 60, n, "no keyless row overwrote another")
	}
	require.Len(t, sums, 1, "every node holds the same rows")

	// The user created on a follower logs in everywhere.
	for i := range c.Nodes {
		db, err := sqlOpen("app:pw@tcp(" + c.Nodes[i].MySQLAddr + ")/shop")
		require.NoError(t, err)
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&n))
		db.Close()
	}
}

// Concurrent read-modify-writes of one row from every node wait for each
// other's row lock at the leader and lose no update.
func TestUpdatesFromEveryNodeSerialise(t *testing.T) {
	c := Start(t, 3, nil)
	c.Exec(0, "CREATE DATABASE b", "CREATE TABLE b.c (id INT PRIMARY KEY, v INT)", "INSERT INTO b.c VALUES (1, 0)")
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	var wg sync.WaitGroup
	const perClient = 25
	for i := range c.Nodes {
		db := c.DB(i, "b")
		for k := 0; k < 3; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < perClient; j++ {
					_, err := db.ExecContext(ctx, "UPDATE c SET v = v + 1 WHERE id = 1")
					require.NoError(t, err)
				}
			}()
		}
	}
	wg.Wait()
	for i := range c.Nodes {
		var v int
		require.NoError(t, c.DB(i, "b").QueryRowContext(ctx, "SELECT v FROM c WHERE id = 1").Scan(&v))
		require.Equal(t, 9*perClient, v, "node %d", i)
	}
}

// AUTO_INCREMENT continues past every stored value when leadership moves:
// the new leader resumes above the block the old one reserved.
func TestAutoIncrementAfterLeaderChange(t *testing.T) {
	c := Start(t, 3, nil)
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE a", "CREATE TABLE a.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	insert := func(i int) int64 {
		res, err := c.DB(i, "a").ExecContext(ctx, "INSERT INTO t (v) VALUES (1)")
		require.NoError(t, err)
		id, err := res.LastInsertId()
		require.NoError(t, err)
		return id
	}
	var last int64
	for k := 0; k < 5; k++ {
		id := insert((l + k) % 3)
		require.Greater(t, id, last)
		last = id
	}
	c.CrashNode(l)
	f := c.Leader()
	id := insert(f)
	require.Greater(t, id, last, "the new leader hands out values above every stored one")
	c.StartNode(l)
	c.WaitMember(l)
	require.Greater(t, insert(l), id)
}

// A database created on one node can be named at connect time on any
// other at once (COM_INIT_DB passes the read barrier too).
func TestNewDatabaseIsFoundAtConnectEverywhere(t *testing.T) {
	c := Start(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for round := 0; round < 10; round++ {
		name := fmt.Sprintf("fresh%d", round)
		c.Exec(round%3, "CREATE DATABASE "+name)
		for i := range c.Nodes {
			db := c.DB(i, name)
			require.NoError(t, db.PingContext(ctx), "node %d, database %s", i, name)
			db.Close()
		}
	}
}
