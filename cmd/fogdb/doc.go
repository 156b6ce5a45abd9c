// Command fogdb runs a fogdb node: a MySQL-protocol sidecar storing tables
// in a local kv store.
//
//	fogdb [serve] [--mysql-addr 127.0.0.1:3306] [--data-dir ./fogdb-data] [--root-password PW]
//
// See README.md for every flag.
package main
