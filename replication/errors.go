package replication

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

var (
	// ErrNotLeader is wrapped by the *NotLeaderError returned when a write
	// reaches a node that is not the group's leader. Nothing was proposed.
	ErrNotLeader = errors.New("replication: not the leader")

	// ErrOutcomeUnknown is returned when a proposal entered the leader's log
	// but its commit was not confirmed: leadership was lost, the node shut
	// down or the caller gave up waiting. The batches may or may not be
	// applied; a caller must read before retrying.
	ErrOutcomeUnknown = errors.New("replication: outcome unknown")

	// ErrUnavailable is returned when the group could not be reached in
	// time: no leader known, the leader unreachable, or this node unable to
	// catch up with it. Nothing was proposed.
	ErrUnavailable = errors.New("replication: unavailable")

	// ErrSnapshotLost is returned by a Remote's read at a snapshot the
	// group's leader can no longer answer exactly: the snapshot was taken
	// at an earlier leader, or its lease expired, and GC has since removed
	// versions it could see. The error also wraps ErrUnavailable. Nothing
	// was read; a new snapshot (a new transaction) reads again.
	ErrSnapshotLost = errors.New("replication: snapshot lost")

	// ErrRejected is returned by Propose when every replica refused the whole
	// entry (an invalid batch, or timestamps not above the last commit).
	// Nothing of it was written anywhere.
	ErrRejected = errors.New("replication: proposal rejected")

	// ErrShutdown is returned by operations on a Group after Shutdown.
	ErrShutdown = errors.New("replication: group shut down")

	// ErrInvalidConfig is wrapped by the errors of Config.Validate.
	ErrInvalidConfig = errors.New("replication: invalid config")

	// ErrBadCommand is wrapped by the errors of DecodeCommand: the bytes are
	// not a command this build knows.
	ErrBadCommand = errors.New("replication: undecodable command")

	// ErrBadSnapshot is returned when a snapshot stream is truncated, corrupt
	// or of an unknown format. Nothing of the local state was replaced.
	ErrBadSnapshot = errors.New("replication: bad snapshot")
)

// NotLeaderError says which node to ask instead. LeaderAddr and LeaderID are
// empty while no leader is known (an election is in progress).
type NotLeaderError struct {
	LeaderAddr raft.ServerAddress
	LeaderID   raft.ServerID
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return fmt.Sprintf("%s: no leader known", ErrNotLeader)
	}
	return fmt.Sprintf("%s: leader is %s at %s", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

// Unwrap makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

func raftAddr(b []byte) raft.ServerAddress { return raft.ServerAddress(b) }
func raftID(b []byte) raft.ServerID        { return raft.ServerID(b) }

// ErrNoSuchMember is returned when removing a server the group does not have.
var ErrNoSuchMember = errors.New("replication: no such member")

func asNotLeader(err error, target **NotLeaderError) bool { return errors.As(err, target) }
