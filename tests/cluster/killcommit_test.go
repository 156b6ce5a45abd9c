package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// KILL QUERY of a COMMIT already proposed does not turn it into a failure:
// the leader, cut off from its followers, cannot confirm it, and the
// client gets 1180 (outcome unknown) or, had the majority confirmed it,
// success; never 1317, which would tell it nothing was written. A COMMIT
// acknowledged is on every node once the network heals.
func TestKillDuringProposedCommit(t *testing.T) {
	c := Start(t, 3, shortClusterTimeout)
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE k", "CREATE TABLE k.t (id INT PRIMARY KEY)")

	for attempt := 1; ; attempt++ {
		require.LessOrEqual(t, attempt, 5, "no COMMIT reached the leader's log before it stepped down")
		c.Net.Heal()
		l = c.Leader()
		c.WaitMember(l)
		conn := dedicatedConn(t, c, l, "k")
		killer := dedicatedConn(t, c, l, "k")
		id, err := boundedQueryInt(t, conn, "SELECT CONNECTION_ID()")
		require.NoError(t, err)
		require.NoError(t, boundedExec(t, conn, "BEGIN"))
		require.NoError(t, boundedExec(t, conn, fmt.Sprintf("INSERT INTO t VALUES (%d)", attempt)))

		r := c.Nodes[l].Srv.Group().Raft()
		before := r.LastIndex()
		c.Net.Isolate(c.Nodes[l].Name)
		done := make(chan error, 1)
		go func() { done <- boundedExec(t, conn, "COMMIT") }()
		proposed := false
		deadline := time.Now().Add(answerBound)
		for !proposed && time.Now().Before(deadline) {
			select {
			case err := <-done:
				// The leader stepped down before the COMMIT reached its
				// log: nothing was proposed, so no outcome to check.
				requireErrNo(t, err, []uint16{erUnavailable}, "a COMMIT on a leader that stepped down")
				deadline = time.Time{}
			case <-time.After(time.Millisecond):
				proposed = r.LastIndex() > before
			}
		}
		if !proposed {
			continue
		}
		_, err = killer.ExecContext(context.Background(), fmt.Sprintf("KILL QUERY %d", id))
		require.NoError(t, err)
		var commitErr error
		select {
		case commitErr = <-done:
		case <-time.After(2 * answerBound):
			t.Fatal("COMMIT not answered")
		}
		t.Logf("attempt %d: the killed COMMIT answered %v", attempt, commitErr)
		if commitErr != nil {
			requireErrNo(t, commitErr, []uint16{erOutcomeUnknown}, "a killed COMMIT that was proposed")
			// The group's own answer, not the stop passed on.
			require.NotContains(t, commitErr.Error(), "context canceled")
		}
		c.Net.Heal()
		requireConverged(t, c)
		if commitErr == nil {
			for i := range c.Nodes {
				require.EqualValues(t, 1, queryIntOn(t, c, i, fmt.Sprintf("SELECT COUNT(*) FROM k.t WHERE id = %d", attempt)),
					"an acknowledged COMMIT is missing on %s", c.Nodes[i].Name)
			}
		}
		return
	}
}
