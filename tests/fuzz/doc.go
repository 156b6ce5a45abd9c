// Package fuzz feeds a fogdb node mutated MySQL packets (before and after
// authentication) and mutated SQL text. Every input must leave the node
// serving: no panic in the protocol code (which would drop the client
// without an answer), no connection left hanging after its client went
// away, and a fresh client still served. tests/fuzz.sh runs the targets
// for minutes each; .ci/run for seconds.
package fuzz
