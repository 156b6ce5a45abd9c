// Package replication runs one Raft group (hashicorp/raft) that replicates
// one kv store.
//
// It owns the Raft log entry format (a versioned command envelope), the state
// machine that applies entries to the store through kv.Engine.Apply, the
// snapshot stream format, and the rules for restarting a node without
// applying anything twice or resuming behind a snapshot. DESIGN.md beside
// this file is the reference for those formats and rules.
//
// What is replicated is key/value batches with preconditions, each stamped by
// the leader with a commit timestamp; every replica applies an entry the same
// way, so a failed precondition is decided alike everywhere.
//
// A Node is one process's port towards the others (replication/mux) and its
// groups. A Group wires raft with raft-boltdb for the log and stable store
// and a file snapshot store, and offers, on any member: Commit (group commit
// at the leader, forwarded from followers), ReadBarrier (linearizable reads),
// row locks held at the leader (Lock, ReleaseAll), Call for requests of the
// packages above that must run at the leader, membership (Node.Join,
// Remove) and Status. A Remote (Node.Remote) reaches a group the node does
// not host, through its leader, with the same guarantees: snapshot and
// current reads, chunked scans, locks and commits. WithCallCounter counts
// the requests a node sends to others on behalf of a context, and
// WithCallCounts also the round trips to other sites among them and those
// a leader waits for from another site's voters; Node.WANStats counts
// them per node, with the Raft traffic and background requests sent to
// other sites.
package replication
