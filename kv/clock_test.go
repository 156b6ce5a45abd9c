package kv

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type fakeWall struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeWall) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeWall) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

func TestClockFollowsWall(t *testing.T) {
	wall := &fakeWall{now: time.UnixMilli(1_700_000_000_000)}
	c := NewClock(wall.Now)
	a := c.Now()
	require.Equal(t, wall.now.UnixMilli(), a.WallTime().UnixMilli())
	require.Zero(t, a.Logical())

	b := c.Now()
	require.Greater(t, b, a, "same millisecond: the logical counter moves")
	require.Equal(t, uint16(1), b.Logical())

	wall.Set(wall.now.Add(time.Second))
	d := c.Now()
	require.Equal(t, wall.now.UnixMilli(), d.WallTime().UnixMilli())
	require.Zero(t, d.Logical())
}

func TestClockNeverGoesBackwards(t *testing.T) {
	wall := &fakeWall{now: time.UnixMilli(1_700_000_000_000)}
	c := NewClock(wall.Now)
	a := c.Now()
	wall.Set(wall.now.Add(-time.Hour))
	b := c.Now()
	require.Greater(t, b, a)
	wall.Set(time.Unix(-5, 0)) // before the epoch
	require.Greater(t, c.Now(), b)
}

func TestClockUpdate(t *testing.T) {
	wall := &fakeWall{now: time.UnixMilli(1_700_000_000_000)}
	c := NewClock(wall.Now)
	a := c.Now()
	remote := a + 10<<logicalBits + 7
	c.Update(remote)
	require.Greater(t, c.Now(), remote)
	c.Update(a) // older: no effect
	require.Greater(t, c.Now(), remote)
}

func TestClockConcurrentNowIsUnique(t *testing.T) {
	c := NewClock(nil)
	const goroutines, each = 8, 2000
	out := make([][]Timestamp, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			prev := Timestamp(0)
			for range each {
				ts := c.Now()
				require.Greater(t, ts, prev)
				prev = ts
				out[g] = append(out[g], ts)
			}
		})
	}
	wg.Wait()
	seen := make(map[Timestamp]bool)
	for _, tss := range out {
		for _, ts := range tss {
			require.False(t, seen[ts], "duplicate %s", ts)
			seen[ts] = true
		}
	}
}

func TestTimestampString(t *testing.T) {
	require.Equal(t, "1700000000000.3", (Timestamp(1_700_000_000_000)<<logicalBits | 3).String())
	require.Equal(t, "max", MaxTimestamp.String())
}
