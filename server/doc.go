// Package server assembles a fogdb node: it validates the configuration,
// opens the kv store in the data directory, builds the SQL engine over the
// sqlfront backend, restores users and grants, and serves the MySQL
// protocol. Errors leave for clients through errors.go, which gives them
// MySQL's SQLSTATEs and texts.
package server
