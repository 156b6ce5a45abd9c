package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// occupancy tracks who is inside a key's critical section, independently of
// the lock table, to catch grants that break mutual exclusion.
type occupancy struct {
	readers atomic.Int32
	writers atomic.Int32
}

type step struct {
	key  int
	mode Mode
}

// plan picks one to three keys in random order, each read, written or read
// and later upgraded, so that transactions cross each other's paths and
// deadlock often.
func plan(rng *rand.Rand, keys int) []step {
	var steps, upgrades []step
	for _, k := range rng.Perm(keys)[:1+rng.IntN(3)] {
		switch rng.IntN(5) {
		case 0, 1:
			steps = append(steps, step{k, Shared})
		case 2, 3:
			steps = append(steps, step{k, Exclusive})
		default:
			steps = append(steps, step{k, Shared})
			upgrades = append(upgrades, step{k, Exclusive})
		}
	}
	return append(steps, upgrades...)
}

// runTxn executes steps as txn, retrying from scratch after being chosen as a
// deadlock victim, and reports any breach of mutual exclusion.
func runTxn(m *Manager, txn TxnID, steps []step, occ []occupancy) (deadlocks int, err error) {
	for {
		held := make(map[int]Mode)
		var victim bool
		for _, s := range steps {
			err := m.Acquire(context.Background(), txn, []byte("key"+strconv.Itoa(s.key)), s.mode, long)
			if errors.Is(err, ErrDeadlock) {
				victim = true
				break
			}
			if err != nil {
				leave(held, occ)
				m.ReleaseAll(txn)
				return deadlocks, fmt.Errorf("txn %d: %v on key %d: %w", txn, s.mode, s.key, err)
			}
			if err := enter(held, occ, s); err != nil {
				leave(held, occ)
				m.ReleaseAll(txn)
				return deadlocks, fmt.Errorf("txn %d: %w", txn, err)
			}
			runtime.Gosched()
		}
		leave(held, occ)
		m.ReleaseAll(txn)
		if n := m.HeldBy(txn); n != 0 {
			return deadlocks, fmt.Errorf("txn %d still holds %d keys after ReleaseAll", txn, n)
		}
		if !victim {
			return deadlocks, nil
		}
		deadlocks++
	}
}

func enter(held map[int]Mode, occ []occupancy, s step) error {
	prev := held[s.key]
	if prev >= s.mode {
		return nil
	}
	o := &occ[s.key]
	if prev == Shared {
		o.readers.Add(-1)
	}
	held[s.key] = s.mode
	if s.mode == Exclusive {
		w := o.writers.Add(1)
		if r := o.readers.Load(); w != 1 || r != 0 {
			return fmt.Errorf("key %d granted Exclusive with %d writers and %d readers inside", s.key, w-1, r)
		}
		return nil
	}
	o.readers.Add(1)
	if w := o.writers.Load(); w != 0 {
		return fmt.Errorf("key %d granted Shared with %d writers inside", s.key, w)
	}
	return nil
}

func leave(held map[int]Mode, occ []occupancy) {
	for k, mode := range held {
		if mode == Exclusive {
			occ[k].writers.Add(-1)
		} else {
			occ[k].readers.Add(-1)
		}
	}
	clear(held)
}

func TestStress(t *testing.T) {
	const (
		workers = 16
		keys    = 6
	)
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	m := NewManager()
	occ := make([]occupancy, keys)
	var nextTxn atomic.Uint64
	var victims atomic.Int64

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 0x5eed))
			for range rounds {
				txn := TxnID(nextTxn.Add(1))
				n, err := runTxn(m, txn, plan(rng, keys), occ)
				victims.Add(int64(n))
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	st := m.Stats()
	t.Logf("%+v", st)

	// Every cycle is broken at once, so no wait ever lasts until the timeout.
	require.Zero(t, st.Timeouts)
	require.NotZero(t, st.Waits)
	require.NotZero(t, st.Deadlocks)
	require.Equal(t, uint64(victims.Load()), st.Deadlocks)
	requireEmpty(t, m)
}

func BenchmarkAcquireUncontended(b *testing.B) {
	m := NewManager()
	var nextTxn atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			txn := TxnID(nextTxn.Add(1))
			key := []byte("row" + strconv.FormatUint(uint64(txn), 10))
			if err := m.Acquire(ctx, txn, key, Exclusive, long); err != nil {
				b.Fatal(err)
			}
			m.ReleaseAll(txn)
		}
	})
}
