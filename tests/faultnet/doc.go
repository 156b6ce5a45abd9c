// Package faultnet is a network between in-process nodes that tests can
// break: each node dials its peers through Network.Dialer, and Cut, Isolate
// and Heal refuse new connections across a link and sever the live ones,
// as a partition would. It sits in the dial hook of replication's mux, so
// every byte between nodes (Raft and forwarded requests) crosses it.
package faultnet
