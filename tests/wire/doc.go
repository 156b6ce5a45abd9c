// Package wire drives fogdb through real MySQL clients (go-sql-driver and
// the vitess client) over the wire protocol: transactions and locking
// between sessions, error codes and messages, sql_mode, limits on
// connections and statements, restarts and bad input. Tests that build and
// start the fogdb binary are skipped in -short mode.
package wire
