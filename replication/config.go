package replication

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/kv"
)

// Config configures a Group. Build it with DefaultConfig and override fields;
// NewGroup validates it.
type Config struct {
	// ID is this node's stable identity in the group.
	ID raft.ServerID
	// Dir holds the Raft log (raft.db) and the snapshots (snapshots/).
	Dir string
	// EngineOptions are the options the store was opened with. Restoring a
	// snapshot reopens the file at EngineOptions.Path with them, and the
	// leader stamps commits from EngineOptions.Clock, which must be set.
	EngineOptions kv.Options

	// Transport carries Raft traffic. When nil, NewGroup listens on BindAddr
	// with hashicorp/raft's TCP transport.
	Transport raft.Transport
	// BindAddr is the TCP address to listen on when Transport is nil. It
	// must name a host, not an unspecified address, since it is also the
	// address the other nodes dial.
	BindAddr string

	// TrailingLogs is how many entries stay in the log after a snapshot, so
	// a follower that is only a little behind catches up from the log
	// rather than a whole snapshot.
	TrailingLogs uint64
	// SnapshotThreshold is how many new entries trigger a snapshot, checked
	// every SnapshotInterval.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// SnapshotRetain is how many snapshots stay on disk.
	SnapshotRetain int

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// ApplyTimeout bounds a Propose or Barrier whose context has no
	// deadline.
	ApplyTimeout time.Duration

	// Timeout bounds the wait for the group on behalf of a client: finding
	// and reaching a leader, catching up with it, and confirming a commit.
	// Past it a request fails with ErrUnavailable (nothing was proposed) or
	// ErrOutcomeUnknown (a commit was proposed but not confirmed).
	Timeout time.Duration
	// LeaseTTL is how long this node, as leader, keeps the row locks and
	// snapshots of another node's transactions after it last heard of them
	// (a request, or the keepalive that node sends every
	// NodeConfig.KeepaliveInterval), so a node that dies holding them holds
	// up other transactions, and GC, only that long. Zero means 15 s.
	LeaseTTL time.Duration
	// MaxInflight is how many commit entries the leader keeps in flight at
	// once; commits arriving meanwhile share the next entry, and so its
	// fsyncs.
	MaxInflight int
	// CommitLinger is the longest a commit entry waits for the commits
	// that usually arrive with it under load (see linger); 0 never waits.
	CommitLinger time.Duration

	// Build names this node's build to the others (informative: /status).
	Build string
	// AdvertiseVersion, when not zero, replaces BuildVersion as what this
	// node advertises and applies: an entry type above it makes Apply
	// panic as in a build that does not know it. Rolling-upgrade tests run
	// nodes of one build as older ones with it.
	AdvertiseVersion Version

	// UnsafeStaleReads makes ReadBarrier return at once, so a follower
	// serves whatever it has applied. It breaks linearizability and exists
	// for the test that proves the consistency check can fail.
	UnsafeStaleReads bool

	// Admit, when set, decides on the leader how a joining node enters
	// the group (the caller places voters by site); it adds the node
	// itself, with AddServer. Nil adds it as it asked.
	Admit func(ctx context.Context, g *Group, r JoinRequest) error

	// Logger receives Raft's log lines as structured records. When nil,
	// they are formatted by hclog into LogOutput (os.Stderr when nil) at
	// LogLevel ("INFO" when empty).
	Logger    hclog.Logger
	LogOutput io.Writer
	LogLevel  string
}

// DefaultConfig returns a configuration for node id keeping its Raft state in
// dir over a store opened with engineOpts.
func DefaultConfig(id raft.ServerID, dir string, engineOpts kv.Options) Config {
	rc := raft.DefaultConfig()
	return Config{
		ID:                 id,
		Dir:                dir,
		EngineOptions:      engineOpts,
		TrailingLogs:       rc.TrailingLogs,
		SnapshotThreshold:  rc.SnapshotThreshold,
		SnapshotInterval:   rc.SnapshotInterval,
		SnapshotRetain:     2,
		HeartbeatTimeout:   rc.HeartbeatTimeout,
		ElectionTimeout:    rc.ElectionTimeout,
		LeaderLeaseTimeout: rc.LeaderLeaseTimeout,
		// Followers learn that an entry committed from the leader's next
		// append; when idle, raft sends one only after CommitTimeout, and a
		// forwarded commit (or a follower's read barrier) waits for it.
		CommitTimeout: 2 * time.Millisecond,
		ApplyTimeout:  10 * time.Second,
		Timeout:       5 * time.Second,
		LeaseTTL:      defaultLeaseTTL,
		MaxInflight:   1,
		CommitLinger:  4 * time.Millisecond,
		LogLevel:      "INFO",
	}
}

// Validate reports the first setting that cannot work; the error wraps
// ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.ID == "":
		return bad("ID is empty")
	case c.Dir == "":
		return bad("Dir is empty")
	case c.EngineOptions.Path == "":
		return bad("EngineOptions.Path is empty")
	case c.EngineOptions.Clock == nil:
		return bad("EngineOptions.Clock is nil; the leader stamps commits from it")
	case c.Transport == nil && c.BindAddr == "":
		return bad("neither Transport nor BindAddr is set")
	case c.SnapshotRetain < 1:
		return bad("SnapshotRetain %d is below 1", c.SnapshotRetain)
	case c.ApplyTimeout <= 0:
		return bad("ApplyTimeout must be positive")
	case c.Timeout <= 0:
		return bad("Timeout must be positive")
	case c.LeaseTTL < 0:
		return bad("LeaseTTL is negative")
	case c.MaxInflight < 1:
		return bad("MaxInflight %d is below 1", c.MaxInflight)
	case c.CommitLinger < 0:
		return bad("CommitLinger is negative")
	}
	if err := c.EngineOptions.Validate(); err != nil {
		return bad("EngineOptions: %v", err)
	}
	if err := raft.ValidateConfig(c.raftConfig()); err != nil {
		return bad("%v", err)
	}
	return nil
}

func (c Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = c.ID
	rc.TrailingLogs = c.TrailingLogs
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	// The store keeps its own applied index; NewGroup restores a snapshot
	// only when the file is behind it, instead of on every start.
	rc.NoSnapshotRestoreOnStart = true
	return rc
}

// leaseTTL is LeaseTTL with its default.
func (c Config) leaseTTL() time.Duration {
	if c.LeaseTTL > 0 {
		return c.LeaseTTL
	}
	return defaultLeaseTTL
}
