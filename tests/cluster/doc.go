// Package cluster starts in-process fogdb clusters on loopback for tests:
// N server.Server nodes whose peer traffic crosses a faultnet.Network, with
// helpers to find the leader, stop, restart and compare nodes.
package cluster
