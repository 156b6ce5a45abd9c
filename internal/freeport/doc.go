// Package freeport hands tests loopback addresses to give to a server that
// binds them later.
//
// A port taken by listening on port 0 comes from the kernel's ephemeral
// range, the same range outgoing connections draw their source ports from:
// between the probe closing it and the server binding it, any test's client
// (or a Raft peer dialing out) may be given that port, and the server fails
// with "address already in use". Ports here are drawn below the ephemeral
// range, where the kernel never hands out source ports, so the only
// competitors are other test processes doing the same, which a random
// starting point per process keeps apart.
package freeport
