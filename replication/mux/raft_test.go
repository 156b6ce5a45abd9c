package mux

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// listFSM records the commands applied to it.
type listFSM struct {
	mu   sync.Mutex
	cmds []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, string(l.Data))
	return nil
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &listSnapshot{slices.Clone(f.cmds)}, nil
}

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = nil
	f.cmds = strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
	return nil
}

func (f *listFSM) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

type listSnapshot struct{ cmds []string }

func (s *listSnapshot) Persist(sink raft.SnapshotSink) error {
	for _, c := range s.cmds {
		if _, err := io.WriteString(sink, c+"\n"); err != nil {
			sink.Cancel()
			return err
		}
	}
	return sink.Close()
}

func (s *listSnapshot) Release() {}

type raftNode struct {
	raft *raft.Raft
	fsm  *listFSM
}

// Two independent three-node clusters share three ports: one Mux per node,
// one raft.NetworkTransport per group on that Mux's RaftLayer.
func TestTwoRaftClustersOverThreeMuxes(t *testing.T) {
	const nodes = 3
	groups := []uint64{1, 2}

	muxes := make([]*Mux, nodes)
	for i := range muxes {
		muxes[i] = startMux(t, testConfig(testSecret))
	}
	servers := make([]raft.Server, nodes)
	for i, m := range muxes {
		servers[i] = raft.Server{
			ID:      raft.ServerID(fmt.Sprintf("node-%d", i)),
			Address: raft.ServerAddress(m.Addr().String()),
		}
	}

	// Every group is routable on every node before any raft starts, so no
	// early vote request meets an unknown route.
	transports := make(map[uint64][]*raft.NetworkTransport)
	for _, g := range groups {
		for _, m := range muxes {
			transports[g] = append(transports[g], raft.NewNetworkTransport(m.RaftLayer(g), 3, waitFor, io.Discard))
		}
	}

	clusters := make(map[uint64][]raftNode)
	for _, g := range groups {
		for i := range muxes {
			trans := transports[g][i]
			conf := raft.DefaultConfig()
			conf.LocalID = servers[i].ID
			conf.HeartbeatTimeout = 100 * time.Millisecond
			conf.ElectionTimeout = 100 * time.Millisecond
			conf.LeaderLeaseTimeout = 100 * time.Millisecond
			conf.CommitTimeout = 5 * time.Millisecond
			conf.Logger = hclog.NewNullLogger()

			logs, stable, snaps := raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore()
			require.NoError(t, raft.BootstrapCluster(conf, logs, stable, snaps, trans,
				raft.Configuration{Servers: servers}))
			fsm := &listFSM{}
			r, err := raft.NewRaft(conf, fsm, logs, stable, snaps, trans)
			require.NoError(t, err)
			// Registered after the Mux's cleanup, so this runs first: raft
			// stops before the port goes away.
			t.Cleanup(func() {
				require.NoError(t, r.Shutdown().Error())
				require.NoError(t, trans.Close())
			})
			clusters[g] = append(clusters[g], raftNode{raft: r, fsm: fsm})
		}
	}

	for _, g := range groups {
		var leader *raft.Raft
		require.Eventually(t, func() bool {
			for _, n := range clusters[g] {
				if n.raft.State() == raft.Leader {
					leader = n.raft
					return true
				}
			}
			return false
		}, waitFor, 5*time.Millisecond, "group %d elects no leader", g)

		cmd := fmt.Sprintf("hello from group %d", g)
		require.NoError(t, leader.Apply([]byte(cmd), waitFor).Error())
		for i, n := range clusters[g] {
			require.Eventually(t, func() bool {
				return slices.Equal(n.fsm.commands(), []string{cmd})
			}, waitFor, 5*time.Millisecond, "group %d node %d: %v", g, i, n.fsm.commands())
		}
	}

	// A node that leads both groups may only ever dial out, so only the
	// total says connections went through the muxes.
	var accepted uint64
	for _, m := range muxes {
		s := m.Stats()
		accepted += s.Accepted
		require.Zero(t, s.Rejected, "%+v", s)
	}
	require.NotZero(t, accepted)
}
