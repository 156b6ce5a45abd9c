//go:build race

package cluster

// raceEnabled: the race detector slows every goroutine several times over,
// which changes the load that timing-sensitive counts (group commit) are
// about.
const raceEnabled = true
