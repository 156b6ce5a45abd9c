// Package linearizability checks that a fogdb cluster behaves as one
// linearizable set of registers while a nemesis kills leaders and cuts the
// network, using the porcupine checker.
//
// The workload is a table reg (k INT PRIMARY KEY, v INT NOT NULL) with a
// few rows, each a register. Clients, spread over every node of an
// in-process three-node cluster (tests/cluster) and each with its own
// connection, run autocommit reads (SELECT v FROM reg WHERE k = ?) and
// writes (UPDATE reg SET v = ? WHERE k = ?) of values no other write uses.
// Every operation's call and return are stamped with the monotonic clock;
// the history, split by key, goes to porcupine with a register model.
//
// How a client's outcome enters the history:
//
//   - a read that succeeded: its value; a read that failed changed nothing
//     and is left out;
//   - a write that succeeded: a completed write;
//   - a write that failed with 1047 (unavailable), 1213 (deadlock or lost
//     lock) or 1205 (lock wait timeout) was not applied, by the server's
//     word. It is kept open-ended all the same, so the check does not lean
//     on that word; a separate assertion holds the server to it: no read
//     may ever return the value of such a write;
//   - any other failed write (1180, outcome unknown; a broken connection; a
//     timeout) may or may not have happened: open-ended, with no return.
//
// A client drops its connection after any error and opens a new one for
// its next operation (TestStoppedServerClosesConnections says why).
//
// An open-ended write whose value no read returned is then left out: a
// register history with such a write is linearizable exactly when it is
// without it (linearise the write last, or drop it from a linearisation).
// That keeps the search small; open-ended writes that some read saw stay,
// returning after every other operation.
//
// The nemesis alternates leader kills (stop the leader's server without
// handing leadership over, as a crash looks to the others, and start it
// again later) and network faults (isolate a node, or cut one link), waits
// for the cluster to recover after each (a leader, every node caught up),
// and pauses before the next. While a node is isolated a probe writes a
// dedicated register through the majority and then reads it on the
// isolated node, so every run asks the isolated node a question only a
// stale replica gets wrong.
//
// TestLinearizableUnderFaults runs that and requires porcupine's Ok, at
// least FOGDB_LIN_OPS operations (default 2000) in the checked history and
// at least FOGDB_LIN_FAULTS faults (default 10). TestStaleReadsAreCaught
// runs the same workload with ClusterConfig.UnsafeStaleReads (followers
// skip the read barrier) and only follower isolations, and requires
// porcupine to reject the history: the proof that the check can fail. On a
// rejected or undecided history the porcupine visualisation is written to a
// temporary HTML file whose path the test reports.
//
// tests/linearizability.sh runs the long form (more operations and
// faults). Other knobs: FOGDB_LIN_CLIENTS, FOGDB_LIN_SEED (the nemesis's
// and clients' random choices; the cluster's timing still varies),
// FOGDB_LIN_CHECK_TIMEOUT (seconds), FOGDB_LIN_DEBUG (log the last error
// of each kind at each fault, and operations slower than 2 s).
package linearizability
