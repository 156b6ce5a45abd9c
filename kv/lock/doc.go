// Package lock is the row lock table: it decides which transaction may lock
// a key, makes conflicting transactions wait their turn, and breaks deadlocks
// among them. It owns only the locks and the waits for them; what a key means
// (a row, an index entry) is the caller's business, and keys are compared as
// opaque byte strings. The table lives in memory and is not replicated: a
// Manager is the single authority for the keys it is handed (today one per
// node), and its locks die with the process, as do the transactions holding
// them.
//
// # Modes
//
// There are two modes. Shared is for locking reads: any number of
// transactions may hold a key Shared at once. Exclusive is for writes: it is
// held by a single transaction and excludes every other holder, Shared or
// Exclusive. A transaction that holds Exclusive already satisfies a Shared
// request; a transaction that holds Shared and asks for Exclusive upgrades in
// place once the other sharers have left.
//
// # Fairness
//
// Requests on one key are granted in arrival order. A Shared request that
// finds an Exclusive request already waiting queues behind it even when it is
// compatible with the current holders, so a steady stream of readers cannot
// starve a writer. The one exception is a transaction that already holds the
// key and asks for more (an upgrade): it is placed ahead of transactions that
// do not hold the key, because those are waiting for its lock and queueing it
// behind them would deadlock it at once.
//
// # Timeouts and deadlocks
//
// Every wait is bounded by the timeout the caller passes (the equivalent of
// innodb_lock_wait_timeout); when it elapses Acquire returns ErrTimeout.
// Deadlocks are detected eagerly, when a request is about to wait: if the new
// wait would close a cycle in the wait-for graph (a waiter waits for every
// holder and every earlier waiter on the key whose mode conflicts with its
// own), the requester is the victim and gets ErrDeadlock without waiting.
// Choosing the requester keeps the policy deterministic and leaves every
// transaction that was already waiting untouched, so exactly one transaction
// per cycle is aborted.
//
// After ErrTimeout or ErrDeadlock the transaction keeps every lock it already
// held, as InnoDB does; rolling back (and calling ReleaseAll, which lets the
// others proceed) is the caller's decision.
//
// # No gap locks
//
// Locks cover exact keys only. There are no gap, next-key or
// insert-intention locks, so this package does not by itself stop phantoms:
// a locking range read protects the keys it found, not the space between
// them.
//
// # Concurrency
//
// All methods are safe for concurrent use. A transaction issues at most one
// Acquire at a time; ReleaseAll may come from another goroutine, in which
// case a pending Acquire of that transaction returns ErrAborted. Close drops
// the whole table (a Raft leader's, when the node stops leading): every
// pending and later Acquire returns ErrAborted.
package lock
