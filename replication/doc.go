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
// A Group wires raft with raft-boltdb for the log and stable store and a file
// snapshot store, and offers Propose for the leader, Barrier, leadership
// queries and Shutdown. Forwarding writes to the leader, sharing one port
// between groups, membership changes and read barriers on followers belong
// here too but are built on top of this.
package replication
