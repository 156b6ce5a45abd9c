package replication

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/replication/mux"
)

// NodeConfig configures a Node: this process's identity and its one port
// towards the other nodes.
type NodeConfig struct {
	// ID is this node's identity in every group it belongs to.
	ID raft.ServerID
	// PeerAddr is the host:port the node listens on for other nodes.
	PeerAddr string
	// AdvertiseAddr is the address the other nodes dial; PeerAddr when
	// empty (it must then name a host).
	AdvertiseAddr string
	// Secret is the cluster secret (see replication/mux).
	Secret []byte
	// Dial replaces the TCP dialer towards other nodes (fault injection).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// ServerTLS and ClientTLS put the port in mutual TLS (see mux.Config
	// and mux.MutualTLS); nil for both leaves it in clear.
	ServerTLS, ClientTLS *tls.Config
	// Logger receives the port's and raft's log lines.
	Logger hclog.Logger
	// Timeout bounds a Remote's request: finding the group's leader and
	// hearing from it (a lock also waits its own timeout). Zero means 5 s,
	// DefaultConfig's Timeout; set it as the groups' Config.Timeout.
	Timeout time.Duration
	// KeepaliveInterval is how often this node renews, at the leaders of
	// other nodes, the locks and snapshots its transactions hold there.
	// Zero means 2 s; keep it well below the leaders' Config.LeaseTTL.
	KeepaliveInterval time.Duration
	// Site is this node's site, against which round trips to other sites
	// are counted (WithCallCounts, WANStats); SetPeerSites gives the site
	// of each peer. Empty: the node knows no sites and counts no round
	// trip as crossing one.
	Site string
}

// Defaults of the NodeConfig and Config fields that may be left zero.
const (
	defaultNodeTimeout = 5 * time.Second
	defaultKeepalive   = 2 * time.Second
	defaultLeaseTTL    = 15 * time.Second
)

func (c NodeConfig) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return defaultNodeTimeout
}

func (c NodeConfig) keepaliveInterval() time.Duration {
	if c.KeepaliveInterval > 0 {
		return c.KeepaliveInterval
	}
	return defaultKeepalive
}

// Node is one fogdb process's membership in the cluster: the mux port that
// carries the Raft traffic of its groups and requests between nodes, and its
// groups.
type Node struct {
	cfg    NodeConfig
	mux    *mux.Mux
	rpc    *rpcClient
	logger hclog.Logger
	// sites places peers for counting round trips between sites, which
	// wan counts (wan.go).
	sites *siteBook
	wan   *wanCounters

	mu      sync.Mutex
	groups  map[uint64]*Group
	remotes map[uint64]*Remote // remote.go

	// closing is closed by Close; bgCtx ends with it. bg counts the
	// background goroutines of the node's Remotes.
	closing  chan struct{}
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// NewNode listens on cfg.PeerAddr and starts serving the other nodes.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.ID == "" {
		return nil, fmt.Errorf("%w: node ID is empty", ErrInvalidConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	mc := mux.DefaultConfig()
	mc.Secret = cfg.Secret
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.Dial = cfg.Dial
	mc.ServerTLS, mc.ClientTLS = cfg.ServerTLS, cfg.ClientTLS
	mc.Logger = cfg.Logger.Named("mux")
	m, err := mux.Listen(cfg.PeerAddr, mc)
	if err != nil {
		return nil, err
	}
	sites, wan := &siteBook{self: cfg.Site}, &wanCounters{}
	n := &Node{cfg: cfg, mux: m, rpc: newRPCClient(m, sites, wan), logger: cfg.Logger, sites: sites, wan: wan,
		groups: map[uint64]*Group{}, remotes: map[uint64]*Remote{}, closing: make(chan struct{})}
	n.SetPeerSites(nil)
	// Everything sent with bgCtx (a Remote's releases and keepalives) is
	// background work.
	n.bgCtx, n.bgCancel = context.WithCancel(inBackground(context.Background()))
	srv := &rpcServer{logger: cfg.Logger.Named("rpc"), lookup: n.group}
	m.Handle(mux.KindRPC, srv.serve)
	go func() { _ = m.Serve() }()
	return n, nil
}

// ID is the node's identity.
func (n *Node) ID() raft.ServerID { return n.cfg.ID }

// Addr is the address other nodes reach this one at.
func (n *Node) Addr() string { return n.mux.Addr().String() }

func (n *Node) group(id uint64) *Group {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.groups[id]
}

// NewGroup starts this node's member of group id over engine, with Raft
// traffic on the node's port, counted (WANStats). cfg.Transport and
// cfg.BindAddr are ignored.
func (n *Node) NewGroup(id uint64, cfg Config, engine *kv.Engine) (*Group, error) {
	cfg.ID = n.cfg.ID
	cfg.Transport = countRaftRPCs(
		raft.NewNetworkTransportWithLogger(n.mux.RaftLayer(id), 3, 10*time.Second, n.logger.Named("raft-net")),
		n.sites.crossSite, n.wan)
	g, err := newGroup(cfg, engine, n, id)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.groups[id] = g
	n.mu.Unlock()
	return g, nil
}

// Close stops the node's Remotes, shuts every group down, then the port.
// It is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	select {
	case <-n.closing:
	default:
		close(n.closing)
	}
	groups := n.groups
	n.groups = map[uint64]*Group{}
	remotes := n.remotes
	n.mu.Unlock()
	n.bgCancel()
	n.bg.Wait()
	for _, r := range remotes {
		r.mu.Lock()
		r.stopped = true // no release starts after this
		r.mu.Unlock()
		r.releasing.Wait()
	}
	var first error
	for _, g := range groups {
		if err := g.Shutdown(); err != nil && first == nil {
			first = err
		}
	}
	n.rpc.closeIdle()
	if err := n.mux.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
