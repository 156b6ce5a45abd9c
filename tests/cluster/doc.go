// Package cluster starts in-process fogdb clusters on loopback for tests:
// N server.Server nodes whose peer traffic crosses a faultnet.Network, with
// helpers to find the leader, stop, restart and compare nodes. StartSites
// also puts the nodes at sites behind a WAN emulator (wanem), each node
// advertising its link of it as its peer address, so that tests can delay
// and cut the traffic between sites. The process-level tests build
// cmd/fogdb (and cmd/fogwan) once and run the nodes, and the WAN emulator
// between their sites, as processes, which they kill when the test ends.
package cluster
