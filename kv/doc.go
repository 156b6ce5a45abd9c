// Package kv is fogdb's storage engine: a multi-version key/value store in
// one bbolt file.
//
// kv owns the on-disk format of that file (see DESIGN.md beside this file),
// commit timestamps (a hybrid logical clock), snapshots and the garbage
// collection of versions no snapshot can see, and the commit path: batches of
// puts and deletes guarded by preconditions, applied atomically and durably,
// many batches per fsync.
//
// kv is SQL-agnostic. Keys are opaque byte strings whose byte order is the
// order callers want to scan in; building them (order-preserving encodings,
// the keyspace prefix map) belongs to kv/keys, and rows, columns and types
// stay above it in sqlfront. kv imports no other package of this module.
//
// Layering, from the bottom up:
//
//	bbolt file     buckets meta, latest, history, gc (DESIGN.md)
//	Apply          deterministic: batches at given timestamps plus the Raft
//	               applied index, in one write transaction
//	Commit         single-node path: a committer goroutine gathers concurrent
//	               batches, stamps them from the Clock and applies them as one
//	               group
//	Get, Iterator  short read transactions "as of" a timestamp
//
// A Raft group's state machine drives Apply; nothing above the replication
// layer should call Apply directly. Readers that need a stable view take a
// Snapshot and read at its timestamp, so GC keeps what they need until they
// release it.
package kv
