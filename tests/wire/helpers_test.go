package wire

import (
	"database/sql"
	"fmt"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
)

// startNode starts a fogdb node on a free loopback port with its data in a
// temporary directory, and returns it with a connection pool to it.
func startNode(t testing.TB) (*server.Server, *sql.DB) {
	t.Helper()
	return startNodeIn(t, t.TempDir())
}

func startNodeIn(t testing.TB, dir string) (*server.Server, *sql.DB) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.DataDir = dir
	srv, err := server.New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	db, err := sql.Open("mysql", dsn(srv, ""))
	require.NoError(t, err)
	t.Cleanup(func() {
		db.Close()
		srv.Close()
	})
	return srv, db
}

func dsn(srv *server.Server, dbname string) string {
	return fmt.Sprintf("root@tcp(%s)/%s?parseTime=true&multiStatements=true", srv.MySQLAddr(), dbname)
}
