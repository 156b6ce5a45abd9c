package replication

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// ErrStateMismatch is returned by NewGroup when the state file was not built
// from this node's Raft log: the log was lost, or the file comes from another
// node or cluster. Starting anyway would skip the log's entries up to the
// file's applied index.
var ErrStateMismatch = errors.New("replication: the state file does not belong to this Raft log")

// stableClusterID is the key under which raft.db keeps the cluster ID of the
// log it holds.
var stableClusterID = []byte("fogdb-cluster-id")

// raftClusterID reads the cluster ID recorded in raft.db, nil when none.
func (g *Group) raftClusterID() ([]byte, error) {
	id, err := g.store.Get(stableClusterID)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) || (err == nil && len(id) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replication: reading the cluster ID from raft.db: %w", err)
	}
	return id, nil
}

// recordClusterID writes the cluster ID the store just learned into raft.db,
// so the log and the state file name the same cluster.
func (g *Group) recordClusterID(id []byte) {
	var stable raft.StableStore = g.store
	if g.guard != nil {
		// Called on the apply path, which may outlive a shutdown.
		stable = g.guard
	}
	if err := stable.Set(stableClusterID, id); err != nil {
		g.logger.Error("recording the cluster ID in raft.db", "error", err)
	}
}

// checkStateMatchesLog refuses a state file that was not built from this
// node's Raft log, and lets a state file or a log written before cluster
// IDs were kept adopt the other's. It runs before raft starts.
func (g *Group) checkStateMatchesLog() error {
	pos, err := g.fsm.current().AppliedPosition()
	if err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	raftID, err := g.raftClusterID()
	if err != nil {
		return err
	}
	statePath := g.cfg.EngineOptions.Path
	raftDir := g.cfg.Dir
	moveAway := fmt.Sprintf("To rebuild this node from its cluster, stop it, move %s away and start it again "+
		"(on an empty %s it joins with --join, or bootstraps a new cluster without); "+
		"to keep this state, put back the Raft directory it was written with", statePath, filepath.Base(raftDir))
	if !g.hadState {
		if pos.Index > 0 {
			return fmt.Errorf("%w: %s holds the log applied up to index %d%s, but %s holds no Raft state "+
				"(the Raft log was lost, or the file comes from another node or cluster). %s",
				ErrStateMismatch, statePath, pos.Index, clusterSuffix(pos.ClusterID), raftDir, moveAway)
		}
		return nil
	}
	if raftID != nil && pos.ClusterID != nil && !bytes.Equal(raftID, pos.ClusterID) {
		return fmt.Errorf("%w: %s belongs to cluster %x but the Raft log in %s to cluster %x. %s",
			ErrStateMismatch, statePath, pos.ClusterID, raftDir, raftID, moveAway)
	}
	if pos.Index > 0 {
		last, err := g.store.LastIndex()
		if err != nil {
			return fmt.Errorf("replication: reading raft log: %w", err)
		}
		first, err := g.store.FirstIndex()
		if err != nil {
			return fmt.Errorf("replication: reading raft log: %w", err)
		}
		var snapIndex uint64
		metas, err := g.snaps.List()
		if err != nil {
			return fmt.Errorf("replication: listing snapshots: %w", err)
		}
		if len(metas) > 0 {
			snapIndex = metas[0].Index
		}
		if pos.Index > max(last, snapIndex) {
			return fmt.Errorf("%w: %s holds the log applied up to index %d%s, but the Raft log in %s ends at %d. %s",
				ErrStateMismatch, statePath, pos.Index, clusterSuffix(pos.ClusterID), raftDir, max(last, snapIndex), moveAway)
		}
		if pos.Term > 0 && first > 0 && pos.Index >= first && pos.Index <= last {
			var l raft.Log
			if err := g.store.GetLog(pos.Index, &l); err != nil {
				return fmt.Errorf("replication: reading raft log entry %d: %w", pos.Index, err)
			}
			if l.Term != pos.Term {
				return fmt.Errorf("%w: %s applied entry %d of term %d, but the Raft log in %s holds that entry from term %d. %s",
					ErrStateMismatch, statePath, pos.Index, pos.Term, raftDir, l.Term, moveAway)
			}
		}
	}
	switch {
	case raftID == nil && pos.ClusterID != nil:
		g.recordClusterID(pos.ClusterID)
	case raftID != nil && pos.ClusterID == nil:
		g.logger.Info("state file adopts the cluster ID of its Raft log", "cluster", fmt.Sprintf("%x", raftID))
		if err := g.fsm.current().SetClusterID(raftID); err != nil {
			return fmt.Errorf("replication: %w", err)
		}
		g.fsm.setClusterID(raftID)
	}
	return nil
}

func clusterSuffix(id []byte) string {
	if id == nil {
		return ""
	}
	return fmt.Sprintf(" of cluster %x", id)
}

// ClusterID returns the ID of the cluster this group's log belongs to, nil
// until the first leader has named it.
func (g *Group) ClusterID() []byte { return g.fsm.ClusterID() }

// nameCluster runs on a leader: once every entry of earlier terms is
// applied, a store that still has no cluster ID (a new cluster, or one
// whose nodes predate cluster IDs) gets one through the log, so every
// replica stores the same. It retries while this node leads.
func (g *Group) nameCluster() {
	defer g.bg.Done()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(time.Second)
			select {
			case <-t.C:
			case <-g.stop:
				t.Stop()
				return
			}
		}
		if g.raft.State() != raft.Leader || g.fsm.ClusterID() != nil {
			return
		}
		err := g.proposeClusterID()
		if err == nil || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrShutdown) {
			return
		}
		if errors.Is(err, errVersionGated) {
			// Expected while a rolling upgrade is under way: say it once.
			if attempt == 0 {
				g.logger.Info("not naming the cluster until every member's build can apply it", "error", err)
			}
			continue
		}
		g.logger.Warn("naming the cluster failed; retrying", "error", err)
	}
}

func (g *Group) proposeClusterID() error {
	// Once per cluster, on behalf of no caller.
	ctx, cancel := context.WithTimeout(inBackground(context.Background()), g.cfg.Timeout)
	defer cancel()
	ctx, stop := g.untilShutdown(ctx)
	defer stop()
	if err := g.TermBarrier(ctx); err != nil {
		return err
	}
	if g.fsm.ClusterID() != nil {
		return nil
	}
	// A member on an older build would panic applying the entry.
	if err := g.requireCommands(ctx, CommandClusterID); err != nil {
		return err
	}
	id := make([]byte, clusterIDSize)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("replication: cluster ID: %w", err)
	}
	data, err := EncodeClusterID(id)
	if err != nil {
		return err
	}
	g.proposeMu.Lock()
	fut := g.raft.Apply(data, g.timeout(ctx))
	g.proposeMu.Unlock()
	if err := waitFuture(ctx, fut); err != nil {
		return g.leaderErr(err)
	}
	return nil
}
