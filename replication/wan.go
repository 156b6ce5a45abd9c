package replication

import (
	"context"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Counting round trips between sites. DESIGN.md, "Counting round trips",
// is the reference for what counts as what.

// CallCounts counts what a node does on behalf of a context (see
// WithCallCounts): Calls every request it sends to another node, WAN every
// round trip between sites its caller waits for.
type CallCounts struct {
	// Calls is the number of requests sent to other nodes, as
	// WithCallCounter counts them.
	Calls atomic.Uint64
	// WAN is the number of round trips to another site on the caller's
	// path: requests sent to a node of another site, and the acknowledgements
	// from another site's voters that a leader waits for to commit the
	// caller's batch or to confirm its leadership for the caller's read.
	WAN atomic.Uint64
}

// counterChain is the chain of counters a context carries: a statement's
// inside its transaction's, say. Either field may be nil.
type counterChain struct {
	calls  *atomic.Uint64
	wan    *atomic.Uint64
	parent *counterChain
}

type counterKey struct{}

func chainOf(ctx context.Context) *counterChain {
	cc, _ := ctx.Value(counterKey{}).(*counterChain)
	return cc
}

// WithCallCounter returns a context under which every request this node
// sends to another node adds one to c: forwarded commits, read indexes,
// locks and calls of a Group whose leader is elsewhere, and every request
// of a Remote. One request is one round trip: a request frame sent (or a
// connection tried for it) and its answer awaited. Each attempt counts, so
// a redirect from a node that does not lead, or a retry after a broken
// connection, counts again; work a node does for itself (it leads the
// group) counts nothing. Lock releases after a commit and lease keepalives
// are sent in the background, on behalf of no context, and are not
// counted here. Counters nest: a request adds one to c and to every
// counter of ctx.
func WithCallCounter(ctx context.Context, c *atomic.Uint64) context.Context {
	return context.WithValue(ctx, counterKey{}, &counterChain{calls: c, parent: chainOf(ctx)})
}

// WithCallCounts returns a context under which c.Calls counts as a
// WithCallCounter counter does, and c.WAN counts the round trips to other
// sites on the caller's path: each request counted in Calls whose target
// is at another site than this node, plus, for a commit, one when the
// leader cannot form a majority of the group's voters within its own site
// (its entry waits for another site's acknowledgement), and, for a read
// index, one when the leader's confirmation of its leadership needs
// another site's voters for the same reason. A forwarded commit or read
// index learns the leader's part from its answer. A node with no site
// (NodeConfig.Site empty) counts no WAN round trip. Counters nest as
// WithCallCounter's do.
func WithCallCounts(ctx context.Context, c *CallCounts) context.Context {
	return context.WithValue(ctx, counterKey{}, &counterChain{calls: &c.Calls, wan: &c.WAN, parent: chainOf(ctx)})
}

func countCall(ctx context.Context) {
	for cc := chainOf(ctx); cc != nil; cc = cc.parent {
		if cc.calls != nil {
			cc.calls.Add(1)
		}
	}
}

func countCtxWAN(ctx context.Context, k uint64) {
	for cc := chainOf(ctx); cc != nil; cc = cc.parent {
		if cc.wan != nil {
			cc.wan.Add(k)
		}
	}
}

// Requests made in the background (lock releases, keepalives, version
// polls) carry a mark, so what they cost goes to the node's background
// count and to no caller.
type backgroundKey struct{}

func inBackground(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

func isBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}

// A leader serving another node's commit or read index counts what it
// spends on a context of its own and reports it in the answer; the caller
// counts it, on its own node's total too. Such a context carries this
// mark so the leader's node does not count it a second time. The proposer,
// which spends on behalf of the commits of an entry, does the same.
type spentForKey struct{}

// spending returns a context counting, in c, the WAN round trips spent on
// behalf of someone who counts them on its own node.
func spending(ctx context.Context, c *CallCounts) context.Context {
	return WithCallCounts(context.WithValue(ctx, spentForKey{}, true), c)
}

func isSpending(ctx context.Context) bool {
	b, _ := ctx.Value(spentForKey{}).(bool)
	return b
}

// WANStats are a node's counts of round trips between sites since it
// started.
type WANStats struct {
	// Critical is the sum of what contexts of this node counted as WAN
	// (see WithCallCounts), whether or not they carry counters: round
	// trips some caller waited for.
	Critical uint64
	// Background counts the requests no caller waits for that this node
	// sent to nodes of other sites: every Raft RPC of its groups
	// (appends and heartbeats, votes and pre-votes, snapshots, leadership
	// transfers) and the background requests between nodes (lock
	// releases after a commit, lease keepalives, version polls).
	Background uint64
	// RaftRPCs counts every Raft RPC this node's groups sent, to any site.
	RaftRPCs uint64
}

type wanCounters struct {
	critical   atomic.Uint64
	background atomic.Uint64
	raftRPCs   atomic.Uint64
}

// count adds k round trips to another site made on behalf of ctx: to the
// background count for background work, else to ctx's counters and,
// unless they are reported to another node, to this node's critical count.
func (w *wanCounters) count(ctx context.Context, k uint64) {
	if k == 0 {
		return
	}
	if isBackground(ctx) {
		w.background.Add(k)
		return
	}
	countCtxWAN(ctx, k)
	if !isSpending(ctx) {
		w.critical.Add(k)
	}
}

// WANStats returns the node's counts of round trips between sites.
func (n *Node) WANStats() WANStats {
	return WANStats{
		Critical:   n.wan.critical.Load(),
		Background: n.wan.background.Load(),
		RaftRPCs:   n.wan.raftRPCs.Load(),
	}
}

// countWAN is wanCounters.count for a group that may have no node (it
// then has no sites: nothing but ctx's counters sees k, which is 0).
func (n *Node) countWAN(ctx context.Context, k uint64) {
	if n == nil {
		countCtxWAN(ctx, k)
		return
	}
	n.wan.count(ctx, k)
}

// siteBook places peer addresses in sites, for counting round trips between
// sites. The map is replaced whole, so a lookup never takes a lock.
type siteBook struct {
	self  string
	sites atomic.Pointer[map[string]string]
}

// crossSite reports whether a request to addr leaves this node's site. A
// node with no site knows no sites: nothing crosses. An address the book
// does not know counts as another site: the counts exist to show that
// site-local work stays in its site, and that must not be shown by not
// knowing where a peer is.
func (b *siteBook) crossSite(addr string) bool {
	if b.self == "" {
		return false
	}
	site, ok := b.siteOf(addr)
	return !ok || site != b.self
}

func (b *siteBook) siteOf(addr string) (string, bool) {
	m := b.sites.Load()
	if m == nil {
		return "", false
	}
	site, ok := (*m)[addr]
	return site, ok
}

// quorumCrossSite reports whether the leader of servers (this node when
// leader is self) cannot form a majority of voters within its own site,
// so that committing an entry or confirming its leadership waits for an
// acknowledgement from another site. A voter at an unknown address counts
// as being elsewhere; a leader at an unknown address as having no voter
// of its site but itself.
func (b *siteBook) quorumCrossSite(servers []raft.Server, self, leader raft.ServerID) bool {
	if b.self == "" {
		return false
	}
	siteOf := func(s raft.Server) (string, bool) {
		if s.ID == self {
			return b.self, true
		}
		return b.siteOf(string(s.Address))
	}
	leaderSite, known := b.self, leader == self
	for _, s := range servers {
		if s.ID == leader && !known {
			leaderSite, known = siteOf(s)
		}
	}
	voters, near := 0, 0
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if s.ID == leader {
			near++
		} else if site, ok := siteOf(s); ok && known && site == leaderSite {
			near++
		}
	}
	return voters > 0 && near < voters/2+1
}

// SetPeerSites tells the node the site of each peer address (the server
// feeds it from its registry and again whenever the registry changes). It
// replaces the previous map; this node's own address is always in its own
// site.
func (n *Node) SetPeerSites(sites map[string]string) {
	m := make(map[string]string, len(sites)+1)
	for addr, site := range sites {
		m[addr] = site
	}
	if n.sites.self != "" {
		m[n.Addr()] = n.sites.self
	}
	n.sites.sites.Store(&m)
}

// Site is the node's site; empty when it has none.
func (n *Node) Site() string { return n.sites.self }

// SiteOf returns the site of the peer at addr, as last set by SetPeerSites.
func (n *Node) SiteOf(addr string) (site string, known bool) { return n.sites.siteOf(addr) }

// CrossSite reports whether a request to the peer at addr counts as a WAN
// round trip: the node has a site, and addr is at another site or at an
// unknown one.
func (n *Node) CrossSite(addr string) bool { return n.sites.crossSite(addr) }

// quorumWAN is 1 when this node, as leader, needs another site's voters
// to commit an entry or confirm its leadership, else 0.
func (g *Group) quorumWAN() uint64 {
	if g.node == nil || g.node.sites.self == "" {
		return 0
	}
	cf := g.raft.GetConfiguration()
	if cf.Error() != nil {
		return 1 // cannot tell: count it, as for an unknown address
	}
	if g.node.sites.quorumCrossSite(cf.Configuration().Servers, g.cfg.ID, g.cfg.ID) {
		return 1
	}
	return 0
}

// leaderQuorumWAN is quorumWAN as this member sees the position of the
// leader at addr, for a leader that did not report its own (an older
// build).
func (g *Group) leaderQuorumWAN(addr string) uint64 {
	if g.node == nil || g.node.sites.self == "" {
		return 0
	}
	cf := g.raft.GetConfiguration()
	if cf.Error() != nil {
		return 1
	}
	servers := cf.Configuration().Servers
	for _, s := range servers {
		if string(s.Address) == addr {
			if g.node.sites.quorumCrossSite(servers, g.cfg.ID, s.ID) {
				return 1
			}
			return 0
		}
	}
	return 1
}
