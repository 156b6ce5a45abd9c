package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Accounts created on two nodes at once are all kept: a node's change to
// users and grants never writes back another node's accounts as it last saw
// them.
func TestConcurrentCreateUserOnTwoNodes(t *testing.T) {
	c := Start(t, 3, nil)
	const perNode = 12
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*perNode)
	for _, i := range []int{0, 1} {
		db := c.DB(i, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < perNode; k++ {
				q := fmt.Sprintf("CREATE USER 'u%d_%d'@'%%' IDENTIFIED BY 'pw'", i, k)
				if _, err := db.ExecContext(ctx, q); err != nil {
					errs <- fmt.Errorf("%s: %w", q, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i := range c.Nodes {
		var n int
		require.NoError(t, c.DB(i, "").QueryRowContext(ctx,
			`SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'u0\_%' OR User LIKE 'u1\_%'`).Scan(&n))
		require.Equal(t, 2*perNode, n, "accounts on node %d", i)
	}
}

// A REVOKE on one node is not undone by a GRANT to another account that
// another node runs at the same moment.
func TestRevokeIsNotUndoneByAConcurrentGrantElsewhere(t *testing.T) {
	c := Start(t, 3, nil)
	c.Exec(0,
		"CREATE USER 'victim'@'%' IDENTIFIED BY 'pw'",
		"CREATE USER 'other'@'%' IDENTIFIED BY 'pw'",
	)
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	a, b := c.DB(0, ""), c.DB(1, "")
	selectPriv := func(db *sql.DB) string {
		var v string
		require.NoError(t, db.QueryRowContext(ctx,
			"SELECT Select_priv FROM mysql.user WHERE User = 'victim' AND Host = '%'").Scan(&v))
		return v
	}
	const rounds = 20
	for r := 0; r < rounds; r++ {
		_, err := a.ExecContext(ctx, "GRANT SELECT ON *.* TO 'victim'@'%'")
		require.NoError(t, err)
		// Node 1 has seen the grant before the race starts.
		require.Equal(t, "Y", selectPriv(b))
		var wg sync.WaitGroup
		var revokeErr, grantErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, revokeErr = a.ExecContext(ctx, "REVOKE SELECT ON *.* FROM 'victim'@'%'")
		}()
		go func() {
			defer wg.Done()
			priv := "INSERT"
			if r%2 == 1 {
				priv = "UPDATE"
			}
			_, grantErr = b.ExecContext(ctx, "GRANT "+priv+" ON *.* TO 'other'@'%'")
		}()
		wg.Wait()
		require.NoError(t, revokeErr)
		require.NoError(t, grantErr)
		for i := range c.Nodes {
			require.Equal(t, "N", selectPriv(c.DB(i, "")), "round %d: victim's SELECT on node %d after the REVOKE", r, i)
		}
	}
}

// A statement decides on the accounts as the cluster has them: an account
// just created on another node exists here for the next statement.
func TestAccountCreatedElsewhereExistsForTheNextStatement(t *testing.T) {
	c := Start(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	a, b := c.DB(0, ""), c.DB(1, "")
	for k := 0; k < 10; k++ {
		q := fmt.Sprintf("CREATE USER 'dup%d'@'%%'", k)
		_, err := a.ExecContext(ctx, q)
		require.NoError(t, err)
		_, err = b.ExecContext(ctx, q)
		require.ErrorContains(t, err, "Operation CREATE USER failed", "round %d", k)
	}
}
