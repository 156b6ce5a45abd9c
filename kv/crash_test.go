package kv

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

const (
	crashPathEnv  = "FOGDB_KV_CRASH_PATH"
	crashRoundEnv = "FOGDB_KV_CRASH_ROUND"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashPathEnv); path != "" {
		crashChild(path, os.Getenv(crashRoundEnv))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild commits from several goroutines until it is killed, printing
// one line per acknowledged commit: "<writer> <seq> <ts>".
func crashChild(path, round string) {
	opts := DefaultOptions(path)
	opts.GCInterval = time.Millisecond // collect while crashing, too
	opts.Logger = slog.New(slog.DiscardHandler)
	e, err := Open(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	// Bounded, in case the parent dies without killing us.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			writer := round + "-" + strconv.Itoa(w)
			for seq := 0; ctx.Err() == nil; seq++ {
				s := strconv.Itoa(seq)
				ts, err := e.Commit(ctx, &Batch{Mutations: []Mutation{
					{Key: []byte("ack/" + writer + "/" + s), Value: []byte(s)},
					{Key: []byte("last/" + writer), Value: []byte(s)},
					{Key: []byte("churn/" + strconv.Itoa(seq%10)), Value: []byte(s)},
					{Key: []byte("churn/" + strconv.Itoa((seq+5)%10)), Delete: true},
				}})
				if err != nil {
					fmt.Fprintln(os.Stderr, "commit:", err)
					os.Exit(3)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "%s %d %d\n", writer, seq, ts)
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

type crashAck struct {
	writer string
	seq    int
	ts     Timestamp
}

// runCrashChild starts a child committing to path, kills it with SIGKILL
// once it has acknowledged at least n commits, and returns every commit it
// acknowledged before dying.
func runCrashChild(t *testing.T, path, round string, n int) []crashAck {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashPathEnv+"="+path, crashRoundEnv+"="+round)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	defer kill()

	var acks []crashAck
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break // a line cut by the kill was never acknowledged
		}
		require.NoError(t, err)
		f := strings.Fields(line)
		require.Len(t, f, 3, "child printed %q", line)
		seq, err := strconv.Atoi(f[1])
		require.NoError(t, err)
		ts, err := strconv.ParseUint(f[2], 10, 64)
		require.NoError(t, err)
		acks = append(acks, crashAck{f[0], seq, Timestamp(ts)})
		if len(acks) == n {
			kill()
		}
	}
	err = cmd.Wait()
	require.True(t, killed, "child exited on its own: %v\n%s", err, stderr.String())
	require.Error(t, err)
	require.GreaterOrEqual(t, len(acks), n)
	return acks
}

// TestCrashKeepsAcknowledgedCommits kills a committing process at an
// arbitrary instant, several times over the same file, and checks that
// every commit it acknowledged survived with its timestamp.
func TestCrashKeepsAcknowledgedCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	opts := testOptions(t)
	var all []crashAck
	for round := range 3 {
		acks := runCrashChild(t, opts.Path, strconv.Itoa(round), 300+round*100)
		all = append(all, acks...)

		opts.Clock = NewClock(nil)
		e, err := Open(opts)
		require.NoError(t, err, "round %d", round)
		var maxTS Timestamp
		last := map[string]int{}
		for _, a := range all {
			v := get(t, e, "ack/"+a.writer+"/"+strconv.Itoa(a.seq), MaxTimestamp)
			require.True(t, v.Exists, "acknowledged commit %+v lost", a)
			require.Equal(t, a.ts, v.Version)
			maxTS = max(maxTS, a.ts)
			last[a.writer] = max(last[a.writer], a.seq)
		}
		for w, seq := range last {
			v := get(t, e, "last/"+w, MaxTimestamp)
			got, err := strconv.Atoi(string(v.Data))
			require.NoError(t, err)
			require.GreaterOrEqual(t, got, seq, "writer %s", w)
		}
		// Batches are atomic: any ack key present, acknowledged or not,
		// came with its last/ update.
		for _, p := range scan(t, e, []byte("ack/"), []byte("ack0"), MaxTimestamp, false) {
			f := strings.Split(p.Key, "/")
			seq, _ := strconv.Atoi(f[2])
			got, _ := strconv.Atoi(string(get(t, e, "last/"+f[1], MaxTimestamp).Data))
			require.GreaterOrEqual(t, got, seq, "%s without its last/ update", p.Key)
		}
		require.NoError(t, e.db.View(func(tx *bolt.Tx) error {
			var first error
			for err := range tx.Check() {
				first = cmp.Or(first, err)
			}
			return first
		}), "bbolt consistency")
		require.GreaterOrEqual(t, e.ReadTS(), maxTS)
		require.Greater(t, opts.Clock.Now(), maxTS)
		t.Logf("round %d: %d acknowledged commits survived", round, len(acks))
		require.NoError(t, e.Close())
	}
}
