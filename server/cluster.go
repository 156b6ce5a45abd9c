package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/replication"
	"github.com/fogdb/fogdb/sharding"
)

// groupID is the global group: the catalog and shared tables. It is the
// group every node of earlier versions served all data from.
const groupID = sharding.GlobalGroup

// nodeID returns the configured ID, checked against the one stored in the
// data directory, storing it (or a new random one) on first start: a
// node's identity in the group must not change under its data.
func (c *Config) nodeID() (string, error) {
	stored, err := os.ReadFile(c.nodeIDPath())
	switch {
	case err == nil:
		id := strings.TrimSpace(string(stored))
		if c.Cluster.NodeID != "" && c.Cluster.NodeID != id {
			return "", fmt.Errorf("server: --node-id %q differs from %q, the ID this data directory belongs to", c.Cluster.NodeID, id)
		}
		return id, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("server: node ID: %w", err)
	}
	id := c.Cluster.NodeID
	if id == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id = "node-" + hex.EncodeToString(b[:])
	}
	tmp := c.nodeIDPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("server: node ID: %w", err)
	}
	if err := os.Rename(tmp, c.nodeIDPath()); err != nil {
		return "", fmt.Errorf("server: node ID: %w", err)
	}
	return id, nil
}

func (c *Config) secret() ([]byte, error) {
	if c.Cluster.Secret != "" {
		return []byte(c.Cluster.Secret), nil
	}
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

// startCluster opens the peer port and the node's group over eng, then
// bootstraps a new cluster of this node or joins an existing one when the
// node has no Raft state yet.
func (s *Server) startCluster(eng *kv.Engine, kopts kv.Options) error {
	cc := s.cfg.Cluster
	id, err := s.cfg.nodeID()
	if err != nil {
		eng.Close()
		return err
	}
	secret, err := s.cfg.secret()
	if err != nil {
		eng.Close()
		return err
	}
	serverTLS, clientTLS, err := s.peerTLS()
	if err != nil {
		eng.Close()
		return err
	}
	node, err := replication.NewNode(replication.NodeConfig{
		ID:            raft.ServerID(id),
		PeerAddr:      cc.PeerAddr,
		AdvertiseAddr: cc.AdvertisePeerAddr,
		Secret:        secret,
		Dial:          peerDialer(cc),
		ServerTLS:     serverTLS,
		ClientTLS:     clientTLS,
		Logger:        newHclog(s.log, "peer"),
		Timeout:       cc.Timeout,
		Site:          cc.Site,
	})
	if err != nil {
		eng.Close()
		return fmt.Errorf("server: peer port: %w", err)
	}
	s.topo = &sharding.Topology{GlobalVoters: cc.GlobalVoters, Log: s.log}
	rc := s.raftConfig(id, s.cfg.raftDir(), kopts)
	rc.Admit = s.topo.AdmitGlobal
	g, err := node.NewGroup(groupID, rc, eng)
	if err != nil {
		node.Close()
		return err
	}
	s.node, s.group = node, g
	s.topo.Global = g
	s.followPeerSites(g)
	switch {
	case g.HasState():
		if n := len(g.Status().Members); cc.Secret == "" && n > 1 {
			return fmt.Errorf("%w: this node belongs to a cluster of %d", ErrNoClusterSecret, n)
		}
		if cc.Join != "" {
			s.log.Info("node has cluster state; ignoring --join", "join", cc.Join)
		}
	case cc.Join == "":
		s.log.Info("bootstrapping a new cluster of this node", "node", id, "peer-addr", node.Addr())
		if err := g.Bootstrap([]raft.Server{{ID: raft.ServerID(id), Address: raft.ServerAddress(node.Addr()), Suffrage: raft.Voter}}); err != nil {
			return err
		}
		s.bootstrapped = true
	default:
		s.log.Info("joining cluster", "via", cc.Join, "node", id, "site", cc.Site, "voter", !cc.NonVoter)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := node.JoinWith(ctx, groupID, cc.Join, replication.JoinRequest{
			ID: raft.ServerID(id), Addr: node.Addr(), Site: cc.Site, Voter: !cc.NonVoter,
		})
		cancel()
		if err != nil {
			return fmt.Errorf("server: joining through %s: %w", cc.Join, err)
		}
	}
	return nil
}

// raftConfig is the configuration of this node's member of a group keeping
// its Raft state in dir.
func (s *Server) raftConfig(id, dir string, kopts kv.Options) replication.Config {
	cc := s.cfg.Cluster
	rc := replication.DefaultConfig(raft.ServerID(id), dir, kopts)
	rc.Timeout = cc.Timeout
	rc.UnsafeStaleReads = cc.UnsafeStaleReads
	rc.Build = Version
	rc.AdvertiseVersion = cc.AdvertiseVersion
	rc.Logger = newHclog(s.log, "")
	if cc.TrailingLogs > 0 {
		rc.TrailingLogs = cc.TrailingLogs
	}
	if cc.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cc.SnapshotThreshold
	}
	if cc.SnapshotInterval > 0 {
		rc.SnapshotInterval = cc.SnapshotInterval
	}
	if cc.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cc.HeartbeatTimeout
		rc.LeaderLeaseTimeout = min(rc.LeaderLeaseTimeout, cc.HeartbeatTimeout)
	}
	if cc.ElectionTimeout > 0 {
		rc.ElectionTimeout = cc.ElectionTimeout
	}
	return rc
}

// catchUp waits until this node has every commit of the cluster, so that
// what it loads at start (users and grants) is current. A node that cannot
// reach a quorum starts anyway, on what it has.
func (s *Server) catchUp(wait time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		err := s.group.CatchUp(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			s.log.Warn("starting without catching up with the cluster", "err", err)
			return
		}
	}
}

// reloadUsers keeps the users and grants that logins check current. It runs
// on its own goroutine: the hook that triggers it runs on the apply path,
// and loading takes the users table's lock, which a local CREATE USER holds
// while its commit waits for that same apply path. (Statements do not wait
// for it: each reloads them itself before it starts when they changed.)
func (s *Server) reloadUsers() {
	defer close(s.usersDone)
	for {
		select {
		case <-s.usersDirty:
		case <-s.usersStop:
			return
		}
		if err := s.prov.ReloadGrants(sql.NewEmptyContext()); err != nil {
			s.log.Error("reloading users and grants", "err", err)
		}
	}
}

func (s *Server) usersChanged() {
	select {
	case s.usersDirty <- struct{}{}:
	default:
	}
}

// followPeerSites tells the node the site of every peer address, from its
// replica of the registry, and again whenever a node's record changes or
// a snapshot replaces the registry, so round trips to other sites are
// counted as such (replication.WithCallCounts, /metrics). The hook is
// registered before the first read, so no change falls between them.
func (s *Server) followPeerSites(g *replication.Group) {
	load := func() {
		nodes, err := sharding.Nodes(g.Engine())
		if err != nil {
			// A store swapped by a snapshot install: the restore's own
			// hook reads again.
			s.log.Debug("reading the sites of peers", "err", err)
			return
		}
		sites := make(map[string]string, len(nodes))
		for _, n := range nodes {
			sites[n.PeerAddr] = n.Site
		}
		s.node.SetPeerSites(sites)
		if h := s.homes.Load(); h != nil {
			h.refresh()
		}
	}
	g.FSM().OnApply(func(batches []*kv.Batch, restored bool) {
		if restored || sharding.TouchesNodes(batches) || sharding.TouchesSites(batches) {
			load()
		}
	})
	load()
}

// Node exposes the node's port towards the others and its counts of
// round trips between sites (tests and tools).
func (s *Server) Node() *replication.Node { return s.node }

// Group exposes the node's replication group (tests and tools).
func (s *Server) Group() *replication.Group { return s.group }

// PeerAddr is the address other nodes reach this one at: the advertised
// peer address when one is set.
func (s *Server) PeerAddr() string { return s.node.Addr() }

// peerDialer is the dialer towards other nodes: the configured hook, or
// one bound to PeerSourceAddr, or nil (the mux's plain dialer).
func peerDialer(cc ClusterConfig) func(ctx context.Context, addr string) (net.Conn, error) {
	if cc.Dial != nil || cc.PeerSourceAddr == "" {
		return cc.Dial
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(cc.PeerSourceAddr)}}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}
}
