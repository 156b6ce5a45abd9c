// Package server assembles a fogdb node: it validates the configuration,
// opens the kv store in the data directory, starts the node's Raft group on
// its peer port (bootstrapping a cluster of itself, joining one, or
// rejoining with its state: cluster.go), builds the SQL engine over the
// sqlfront backend, restores users and grants (and reloads them when
// another node changes them), and serves the MySQL protocol and the admin
// HTTP API. Errors leave for clients through errors.go, which gives them
// MySQL's SQLSTATEs and texts.
package server
