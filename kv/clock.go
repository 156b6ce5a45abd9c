package kv

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// Timestamp is a hybrid-logical-clock commit timestamp: physical
// milliseconds since the Unix epoch shifted left by 16 bits, or'ed with a
// logical counter. Plain integer order is causal order, so timestamps are
// stored big-endian and compared as numbers.
type Timestamp uint64

// MaxTimestamp, used as a read timestamp, reads the newest committed version
// (a current read). No commit is ever stamped with it.
const MaxTimestamp Timestamp = math.MaxUint64

// logicalBits leaves room for 65536 commits in one millisecond before the
// counter carries into the physical part, which only makes the clock run
// slightly ahead of the wall.
const logicalBits = 16

// WallTime returns the physical part of t.
func (t Timestamp) WallTime() time.Time {
	return time.UnixMilli(int64(t >> logicalBits))
}

// Logical returns the logical counter of t.
func (t Timestamp) Logical() uint16 { return uint16(t) }

// String formats t as "<unix ms>.<logical>", the form logs and error
// messages use.
func (t Timestamp) String() string {
	if t == MaxTimestamp {
		return "max"
	}
	b := strconv.AppendUint(make([]byte, 0, 24), uint64(t>>logicalBits), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(t.Logical()), 10)
	return string(b)
}

// Clock is a hybrid logical clock. Now is strictly increasing and never goes
// backwards, even when the wall clock does (NTP steps, VM migration); Update
// moves it past a timestamp seen elsewhere, so a node never stamps a commit
// below one it has already applied. A Clock is safe for concurrent use and
// may be shared by several engines of one node.
type Clock struct {
	wall func() time.Time
	last atomic.Uint64
}

// NewClock returns a clock reading physical time from wall (time.Now when
// nil). Tests inject a fake wall to make time go backwards.
func NewClock(wall func() time.Time) *Clock {
	if wall == nil {
		wall = time.Now
	}
	return &Clock{wall: wall}
}

// Now returns a timestamp greater than every timestamp returned by Now or
// passed to Update before.
func (c *Clock) Now() Timestamp {
	wall := c.wall
	if wall == nil {
		wall = time.Now
	}
	ms := wall().UnixMilli()
	if ms < 0 {
		ms = 0
	}
	phys := uint64(ms) << logicalBits
	for {
		last := c.last.Load()
		next := max(phys, last+1)
		if c.last.CompareAndSwap(last, next) {
			return Timestamp(next)
		}
	}
}

// Update makes every later Now return more than ts.
func (c *Clock) Update(ts Timestamp) {
	for {
		last := c.last.Load()
		if uint64(ts) <= last || c.last.CompareAndSwap(last, uint64(ts)) {
			return
		}
	}
}
