package server

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fogdb/fogdb/kv"
)

// newMetricsRegistry builds a registry of this node alone: the global one
// would mix the metrics of every Server in a process (tests run several).
func (s *Server) newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		&statsCollector{s: s},
		s.commitSeconds,
		collectors.NewGoCollector(),
	)
	if runtime.GOOS == "linux" {
		// The process collector reads /proc; elsewhere it only reports errors.
		reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return reg
}

// statsCollector reads the store's and the lock table's counters when
// scraped. They are already cumulative atomics, so copying them on demand
// costs nothing between scrapes and needs no goroutine of its own.
type statsCollector struct{ s *Server }

var _ prometheus.Collector = (*statsCollector)(nil)

func counterDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, nil, nil)
}

var (
	descKVCommits   = counterDesc("fogdb_kv_commits_total", "Transactions committed by the kv store (Commit calls that returned a timestamp).")
	descKVBatches   = counterDesc("fogdb_kv_batches_total", "Batches written to the kv store, by commit or replicated apply.")
	descKVFsyncs    = counterDesc("fogdb_kv_fsyncs_total", "Durable write transactions of the kv store; concurrent commits share one.")
	descKVConflicts = counterDesc("fogdb_kv_conflicts_total", "Batches rejected because a precondition failed.")
	descKVKeysRead  = counterDesc("fogdb_kv_keys_read_total", "Stored entries examined by reads, visible or not.")
	descKVGCRemoved = counterDesc("fogdb_kv_gc_removed_total", "Old versions and tombstones removed by garbage collection.")
	descLockAcq     = counterDesc("fogdb_lock_acquired_total", "Row locks granted, re-entrant requests included.")
	descLockWaits   = counterDesc("fogdb_lock_waits_total", "Row lock requests that had to wait.")
	descLockTimeout = counterDesc("fogdb_lock_timeouts_total", "Row lock requests that failed after innodb_lock_wait_timeout.")
	descLockDead    = counterDesc("fogdb_lock_deadlocks_total", "Row lock requests refused to break a deadlock.")

	descRaftState   = prometheus.NewDesc("fogdb_raft_state", "1 for this node's Raft role in the group, 0 for the others.", []string{"group", "state"}, nil)
	descRaftTerm    = prometheus.NewDesc("fogdb_raft_term", "Current Raft term.", []string{"group"}, nil)
	descRaftCommit  = prometheus.NewDesc("fogdb_raft_commit_index", "Highest log index known committed.", []string{"group"}, nil)
	descRaftApplied = prometheus.NewDesc("fogdb_raft_applied_index", "Highest log index applied to the state file.", []string{"group"}, nil)
	descRaftLag     = prometheus.NewDesc("fogdb_raft_apply_lag", "Committed entries not yet applied here (commit index minus applied index).", []string{"group"}, nil)
	descRaftLogW    = prometheus.NewDesc("fogdb_raft_log_writes_total", "Writes (each an fsync) to the Raft log.", []string{"group"}, nil)
	descRaftCommits = prometheus.NewDesc("fogdb_raft_commits_total", "Commits acknowledged by this node as leader.", []string{"group"}, nil)
	descRaftEntries = prometheus.NewDesc("fogdb_raft_commit_entries_total", "Log entries carrying those commits (group commit shares one among many).", []string{"group"}, nil)
	descRaftMembers = prometheus.NewDesc("fogdb_raft_members", "Servers in the group's configuration, by suffrage.", []string{"group", "suffrage"}, nil)

	descWAN = prometheus.NewDesc("fogdb_wan_round_trips_total",
		"Round trips to other sites: path=\"critical\" those callers on this node waited for (requests to another site's nodes, and a leader's wait for another site's voters to commit or to confirm a read), path=\"background\" the Raft RPCs and background requests this node sent to other sites.",
		[]string{"path"}, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descKVCommits, descKVBatches, descKVFsyncs, descKVConflicts, descKVKeysRead, descKVGCRemoved,
		descLockAcq, descLockWaits, descLockTimeout, descLockDead,
		descRaftState, descRaftTerm, descRaftCommit, descRaftApplied, descRaftLag, descRaftLogW,
		descRaftCommits, descRaftEntries, descRaftMembers, descWAN,
	} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	ks := c.s.KV().Stats()
	counter(descKVCommits, ks.Commits)
	counter(descKVBatches, ks.Batches)
	counter(descKVFsyncs, ks.Fsyncs)
	counter(descKVConflicts, ks.Conflicts)
	counter(descKVKeysRead, ks.KeysRead)
	counter(descKVGCRemoved, ks.GCRemoved)
	ls := c.s.prov.LockStats()
	counter(descLockAcq, ls.Acquired)
	counter(descLockWaits, ls.Waits)
	counter(descLockTimeout, ls.Timeouts)
	counter(descLockDead, ls.Deadlocks)

	gs := c.s.group.Status()
	g := strconv.FormatUint(gs.Group, 10)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{g}, labels...)...)
	}
	for _, state := range []string{"Follower", "Candidate", "Leader", "Shutdown"} {
		v := 0.0
		if gs.Role == state {
			v = 1
		}
		gauge(descRaftState, v, strings.ToLower(state))
	}
	gauge(descRaftTerm, float64(gs.Term))
	gauge(descRaftCommit, float64(gs.CommitIndex))
	gauge(descRaftApplied, float64(gs.AppliedIndex))
	lag := 0.0
	if gs.CommitIndex > gs.AppliedIndex {
		lag = float64(gs.CommitIndex - gs.AppliedIndex)
	}
	gauge(descRaftLag, lag)
	ch <- prometheus.MustNewConstMetric(descRaftLogW, prometheus.CounterValue, float64(gs.LogWrites), g)
	ch <- prometheus.MustNewConstMetric(descRaftCommits, prometheus.CounterValue, float64(gs.Commits), g)
	ch <- prometheus.MustNewConstMetric(descRaftEntries, prometheus.CounterValue, float64(gs.Entries), g)
	voters, nonvoters := 0, 0
	for _, m := range gs.Members {
		if m.Voter {
			voters++
		} else {
			nonvoters++
		}
	}
	gauge(descRaftMembers, float64(voters), "voter")
	gauge(descRaftMembers, float64(nonvoters), "nonvoter")

	if c.s.node != nil {
		ws := c.s.node.WANStats()
		ch <- prometheus.MustNewConstMetric(descWAN, prometheus.CounterValue, float64(ws.Critical), "critical")
		ch <- prometheus.MustNewConstMetric(descWAN, prometheus.CounterValue, float64(ws.Background), "background")
	}
}

// slogPromLogger sends the metrics handler's errors (a failed collector, a
// broken connection) to the node's log.
type slogPromLogger struct{ s *Server }

func (l slogPromLogger) Println(v ...any) {
	l.s.log.Error("metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// newCommitHistogram times transaction commits (the durable kv commit, its
// fsync included), by outcome: "ok", "conflict" (a precondition failed:
// the client got 1213, 1062 or 1412) or "error".
func newCommitHistogram() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fogdb_commit_duration_seconds",
		Help:    "Time to commit a transaction durably, by outcome.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100 µs to 3.3 s
	}, []string{"result"})
}

func (s *Server) observeCommit(elapsed time.Duration, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, kv.ErrConflict):
		result = "conflict"
	default:
		result = "error"
	}
	s.commitSeconds.WithLabelValues(result).Observe(elapsed.Seconds())
}
