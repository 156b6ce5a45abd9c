package server

import (
	"context"
	"errors"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
)

// The fogdb database shows a lone node's topology and refuses changes as
// MySQL refuses them for its own schemas; it is not listed among the
// databases, so a dump of all of them does not carry it.
func TestSystemDatabase(t *testing.T) {
	srv, db := startAdminNode(t)
	ctx := context.Background()
	var site string
	var group uint64
	var nodes int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT site, group_id, nodes FROM fogdb.sites").Scan(&site, &group, &nodes))
	require.Equal(t, "default", site)
	require.Equal(t, uint64(2), group)
	require.Equal(t, 1, nodes)
	var node string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT node_id FROM fogdb.nodes").Scan(&node))
	require.Equal(t, string(srv.node.ID()), node)
	var kinds string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT GROUP_CONCAT(kind ORDER BY group_id) FROM fogdb.`groups` WHERE hosted").Scan(&kinds))
	require.Equal(t, "global,site", kinds)

	code := func(err error) uint16 {
		var me *mysql.MySQLError
		require.True(t, errors.As(err, &me), "%v", err)
		return me.Number
	}
	_, err := db.ExecContext(ctx, "DROP DATABASE fogdb")
	require.Equal(t, uint16(1044), code(err))
	_, err = db.ExecContext(ctx, "CREATE DATABASE fogdb")
	require.Equal(t, uint16(1007), code(err))
	for _, q := range []string{
		"CREATE TABLE fogdb.x (id INT)",
		"CREATE VIEW fogdb.v AS SELECT 1",
		"INSERT INTO fogdb.sites VALUES ('a', 1, 1)",
		"UPDATE fogdb.sites SET nodes = 0",
		"DROP TABLE fogdb.sites",
	} {
		_, err = db.ExecContext(ctx, q)
		require.Equal(t, uint16(1044), code(err), q)
	}

	rows, err := db.QueryContext(ctx, "SHOW DATABASES")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		require.NotEqual(t, "fogdb", name)
	}
	require.NoError(t, rows.Err())
}
