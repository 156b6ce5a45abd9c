// Package sqlfront is fogdb's go-mysql-server backend: the database
// provider, databases, tables and indexes over the kv store, the row codec,
// the session with its InnoDB-like transactions, and the mapping of fogdb's
// failures to MySQL errors.
//
// Importing it makes the engine parse through dialectParser (dialect.go),
// which takes MySQL's non-reserved keywords as names where the engine's
// parser reads them as keywords.
//
// It owns everything that knows SQL types. Keys are built here from column
// values with the SQL-agnostic encoders of kv/keys (collation weights for
// strings, scaled integers for DECIMAL, and so on), so kv never learns about
// SQL.
//
// Transactions (session.go, table.go, editor.go, commit.go): a plain read
// sees a snapshot taken at the transaction's first read; writes, and reads
// for UPDATE, DELETE, INSERT ... SELECT and SELECT ... FOR UPDATE / FOR
// SHARE, lock rows through the provider's Store (store.go: at the leader of
// the table's replication group) and read the newest committed version (lockmode.go explains how a locking read is detected).
// Writes are buffered in the session and commit as one kv batch whose
// preconditions are the versions read under lock, the unique keys claimed
// and the definitions of the tables written. DDL takes a table metadata lock
// (alter.go) and rewrites rows under a new table ID (rewrite.go) in one
// batch with the catalog change (catalog.go).
//
// Groups (store.go, remote.go, marker.go): the Store hands out one Part
// per replication group, and every read, lock, snapshot and commit goes
// through it: a hosted group's part reads its local replica, a RemotePart
// reads at the leader of a group this node does not host. The catalog
// lives in the catalog group; a table's rows live in the group
// Config.PlaceTable chose when it was created, or for a local table each
// row in its home site's group (local.go; Config.Homes homes them).
// Reads, locks and snapshots go to the part of the table's group; a
// transaction commits to one group, and its writes to several are
// refused. A table outside the catalog group keeps its metadata lock and a
// definition marker in its own part, so its writers never wait for the
// catalog group (DESIGN.md, "Groups").
package sqlfront
