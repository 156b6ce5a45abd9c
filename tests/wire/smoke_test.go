package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	_, db := startNode(t)
	_, err := db.Exec("CREATE DATABASE d")
	require.NoError(t, err)
	_, err = db.Exec("CREATE TABLE d.t (id INT PRIMARY KEY, name VARCHAR(20), v INT, KEY k (v))")
	require.NoError(t, err)
	_, err = db.Exec("INSERT INTO d.t VALUES (1,'a',10),(2,'b',20),(3,'c',30)")
	require.NoError(t, err)
	var name string
	require.NoError(t, db.QueryRow("SELECT name FROM d.t WHERE id = 2").Scan(&name))
	require.Equal(t, "b", name)
	require.NoError(t, db.QueryRow("SELECT name FROM d.t WHERE v = 30").Scan(&name))
	require.Equal(t, "c", name)
	_, err = db.Exec("UPDATE d.t SET v = v + 1 WHERE id = 1")
	require.NoError(t, err)
	var v int
	require.NoError(t, db.QueryRow("SELECT v FROM d.t WHERE id = 1").Scan(&v))
	require.Equal(t, 11, v)
	_, err = db.Exec("INSERT INTO d.t VALUES (1,'x',1)")
	require.Error(t, err)
	require.Contains(t, err.Error(), "Duplicate entry '1' for key 't.PRIMARY'")
}
