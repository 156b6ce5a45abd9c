package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/replication"
	"github.com/fogdb/fogdb/sharding"
	"github.com/fogdb/fogdb/sqlfront"
)

// siteFile records which site and group this data directory's site group
// belongs to, so that a node restarted while its site is cut off from the
// global group's voters opens its site group without asking them.
type siteFile struct {
	Site  string `json:"site"`
	Group uint64 `json:"group"`
}

func (c *Config) siteFilePath() string { return filepath.Join(c.DataDir, "site.json") }

// siteGroupDir holds a site group's state file and Raft log.
func (c *Config) siteGroupDir(id uint64) string {
	return filepath.Join(c.DataDir, "groups", strconv.FormatUint(id, 10))
}

func (c *Config) readSiteFile() (siteFile, bool, error) {
	b, err := os.ReadFile(c.siteFilePath())
	if errors.Is(err, os.ErrNotExist) {
		return siteFile{}, false, nil
	}
	if err != nil {
		return siteFile{}, false, fmt.Errorf("server: site file: %w", err)
	}
	var f siteFile
	if err := json.Unmarshal(b, &f); err != nil || f.Group == 0 {
		return siteFile{}, false, fmt.Errorf("server: site file %s is damaged", c.siteFilePath())
	}
	return f, true, nil
}

func (c *Config) writeSiteFile(f siteFile) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := c.siteFilePath() + ".tmp"
	if err := writeFileSync(tmp, append(b, '\n')); err != nil {
		return fmt.Errorf("server: site file: %w", err)
	}
	if err := os.Rename(tmp, c.siteFilePath()); err != nil {
		return fmt.Errorf("server: site file: %w", err)
	}
	return syncDir(c.DataDir)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// startSite opens this node's member of its site's group. A node that
// knows its site group from an earlier start opens it without the global
// group. A new one registers itself in the global group's registry, then
// founds the group when its site is new or joins it through another node
// of the site. A node that has global state but no site group yet (its
// data directory predates sites) serves at once and sets its site group
// up in the background once the global group answers.
func (s *Server) startSite(kopts kv.Options) error {
	cc := s.cfg.Cluster
	rec, known, err := s.cfg.readSiteFile()
	if err != nil {
		return err
	}
	if known {
		if rec.Site != cc.Site {
			return fmt.Errorf("server: --site %q differs from %q, the site this data directory belongs to", cc.Site, rec.Site)
		}
		ctx, cancel := s.groupsContext()
		defer cancel()
		if err := s.openSite(ctx, kopts, rec); err != nil {
			return err
		}
		// A peer address that changed is recorded when the global group
		// can be reached; the site group does not wait for it.
		go func() {
			ctx, cancel := s.groupsContext()
			defer cancel()
			_ = s.untilDone(ctx, "registering this node", func(ctx context.Context) error {
				return sharding.RegisterNode(ctx, s.group, s.selfRecord())
			})
		}()
		return nil
	}
	if s.group.HasState() {
		go func() {
			ctx, cancel := s.groupsContext()
			defer cancel()
			if err := s.setUpSite(ctx, kopts); err != nil && ctx.Err() == nil {
				s.log.Error("setting up this node's site group", "site", cc.Site, "err", err)
			}
		}()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.setUpSite(ctx, kopts)
}

func (s *Server) selfRecord() sharding.Node {
	cc := s.cfg.Cluster
	return sharding.Node{ID: string(s.node.ID()), Site: cc.Site, PeerAddr: s.node.Addr(), NonVoter: cc.NonVoter}
}

// setUpSite registers the node, finds or creates its site's record, notes
// the site group in site.json and opens it.
func (s *Server) setUpSite(ctx context.Context, kopts kv.Options) error {
	cc := s.cfg.Cluster
	if err := s.untilDone(ctx, "registering this node", func(ctx context.Context) error {
		return sharding.RegisterNode(ctx, s.group, s.selfRecord())
	}); err != nil {
		return err
	}
	var site sharding.Site
	if err := s.untilDone(ctx, "finding this node's site", func(ctx context.Context) (err error) {
		site, _, err = sharding.EnsureSite(ctx, s.group, cc.Site)
		return err
	}); err != nil {
		return err
	}
	rec := siteFile{Site: cc.Site, Group: site.Group}
	if err := s.cfg.writeSiteFile(rec); err != nil {
		return err
	}
	return s.openSite(ctx, kopts, rec)
}

// openSite opens the site group's state and Raft log, gives a group
// without Raft state its members, and starts placing voters.
func (s *Server) openSite(ctx context.Context, kopts kv.Options, rec siteFile) error {
	s.siteMu.Lock()
	defer s.siteMu.Unlock()
	select {
	case <-s.groupsStop:
		return replication.ErrShutdown
	default:
	}
	cc := s.cfg.Cluster
	dir := s.cfg.siteGroupDir(rec.Group)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("server: site group directory: %w", err)
	}
	sopts := kopts
	sopts.Path = filepath.Join(dir, "state.db")
	eng, err := kv.Open(sopts)
	if err != nil {
		return err
	}
	rc := s.raftConfig(string(s.node.ID()), filepath.Join(dir, "raft"), sopts)
	rc.Admit = s.topo.AdmitSite(cc.Site)
	g, err := s.node.NewGroup(rec.Group, rc, eng)
	if err != nil {
		eng.Close()
		return err
	}
	if !g.HasState() {
		if err := s.foundOrJoinSite(ctx, g, rec); err != nil {
			return err
		}
	}
	s.siteGroup.Store(g)
	s.parts.Set(rec.Group, sqlfront.GroupStore{G: g})
	if err := s.prov.ServeSequences(rec.Group); err != nil {
		return err
	}
	s.homes.Load().refresh()
	kctx, kcancel := s.groupsContext()
	go func() { defer kcancel(); s.topo.Keep(kctx, s.group, cc.GlobalVoters, time.Second) }()
	kctx2, kcancel2 := s.groupsContext()
	go func() { defer kcancel2(); s.topo.Keep(kctx2, g, sharding.MaxSiteVoters, time.Second) }()
	return nil
}

// foundOrJoinSite gives a site group without Raft state its members. The
// site's record says who founds its group: the first node of the site to
// claim it (sharding.ClaimFounding) bootstraps the group and marks it
// founded; every other node joins through a node of the site once it is
// founded. A founder restarted from an empty directory, alone in its site,
// founds it again (its group's data went with the directory).
func (s *Server) foundOrJoinSite(ctx context.Context, g *replication.Group, rec siteFile) error {
	id := s.node.ID()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	found := func() error {
		s.log.Info("founding the group of this site", "site", rec.Site, "group", rec.Group)
		if err := g.Bootstrap([]raft.Server{{ID: id, Address: raft.ServerAddress(s.node.Addr()), Suffrage: raft.Voter}}); err != nil {
			return err
		}
		return s.untilDone(ctx, "recording that this site's group is founded", func(ctx context.Context) error {
			return sharding.MarkFounded(ctx, s.group, rec.Site)
		})
	}
	req := replication.JoinRequest{ID: id, Addr: s.node.Addr(), Site: rec.Site, Voter: !s.cfg.Cluster.NonVoter}
	return s.untilDone(ctx, "founding or joining the group of this site", func(ctx context.Context) error {
		site, won, err := sharding.ClaimFounding(ctx, s.group, rec.Site, string(id))
		if err != nil {
			return err
		}
		if won {
			return found()
		}
		all, err := sharding.SiteNodes(s.group.Engine(), rec.Site)
		if err != nil {
			return err
		}
		var peers []sharding.Node
		for _, n := range all {
			if n.ID != string(id) {
				peers = append(peers, n)
			}
		}
		if site.Founded && site.Founder == string(id) && len(peers) == 0 {
			return found()
		}
		if !site.Founded {
			return fmt.Errorf("server: waiting for %s to found the group of site %s", site.Founder, rec.Site)
		}
		var last error = fmt.Errorf("server: no other node of site %s is registered", rec.Site)
		for _, p := range peers {
			jctx, jcancel := context.WithTimeout(ctx, 5*time.Second)
			err := s.node.JoinWith(jctx, rec.Group, p.PeerAddr, req)
			jcancel()
			if err == nil {
				s.log.Info("joined the group of this site", "site", rec.Site, "group", rec.Group, "via", p.ID)
				return nil
			}
			last = err
		}
		return last
	})
}

// untilDone retries f until it succeeds or ctx ends: at start a group may
// still be electing its first leader.
func (s *Server) untilDone(ctx context.Context, what string, f func(ctx context.Context) error) error {
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("server: %s: %w", what, err)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("server: %s: %w", what, err)
		}
	}
}

// groupsContext is a context that ends when the node closes.
func (s *Server) groupsContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.groupsStop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// SiteGroup exposes the node's site group (tests and tools).
// Nil until the group is open: a node whose data directory predates
// sites opens it in the background.
func (s *Server) SiteGroup() *replication.Group { return s.siteGroup.Load() }

// topology gathers what the fogdb system database shows, from this node's
// replica of the registry and its groups' Raft state: a view, read without
// a barrier.
func (s *Server) topology(*sql.Context) (sqlfront.Topology, error) {
	eng := s.group.Engine()
	sites, err := sharding.Sites(eng)
	if err != nil {
		return sqlfront.Topology{}, err
	}
	nodes, err := sharding.Nodes(eng)
	if err != nil {
		return sqlfront.Topology{}, err
	}
	var t sqlfront.Topology
	perSite := map[string]int{}
	for _, n := range nodes {
		perSite[n.Site]++
		t.Nodes = append(t.Nodes, sqlfront.NodeRow{Node: n.ID, Site: n.Site, PeerAddr: n.PeerAddr, NonVoter: n.NonVoter})
	}
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Node < t.Nodes[j].Node })
	hosted := func(g *replication.Group, kind, site string) sqlfront.GroupRow {
		st := g.Status()
		r := sqlfront.GroupRow{Group: st.Group, Kind: kind, Site: site, Hosted: true, Role: st.Role,
			Leader: st.Leader, Term: st.Term, Members: len(st.Members), AppliedIndex: st.AppliedIndex,
			Version: versionText(&st.Version), ActiveVersion: versionText(st.ActiveVersion)}
		for _, m := range st.Members {
			if m.Voter {
				r.Voters++
			}
		}
		return r
	}
	t.Groups = append(t.Groups, hosted(s.group, "global", ""))
	own := s.SiteGroup()
	for _, site := range sites {
		t.Sites = append(t.Sites, sqlfront.SiteRow{Site: site.Name, Group: site.Group, Nodes: perSite[site.Name]})
		if own != nil && own.Status().Group == site.Group {
			t.Groups = append(t.Groups, hosted(own, "site", site.Name))
			continue
		}
		t.Groups = append(t.Groups, sqlfront.GroupRow{Group: site.Group, Kind: "site", Site: site.Name})
	}
	spec, _, err := s.Placement()
	if err != nil {
		return sqlfront.Topology{}, err
	}
	for _, ref := range s.prov.Tables() {
		p := spec.Effective(ref.DB, ref.Table)
		row := sqlfront.PlacementRow{DB: ref.DB, Table: ref.Table, Placement: p.Placement(), Site: p.Site,
			Locality: p.Locality, SiteUnique: strings.Join(p.SiteUnique, ";"), Strict: p.Strict,
			StalenessMillis: p.Staleness.Milliseconds(), Group: s.prov.TableGroup(ref.DB, ref.Table)}
		if p.Parent != nil {
			row.Parent = p.Parent.String()
		}
		t.Placements = append(t.Placements, row)
	}
	return t, nil
}

// versionText is a version as fogdb.groups shows it, COMMANDS.SNAPSHOT
// (the form --advertise-version takes), "" when unknown.
func versionText(v *replication.Version) string {
	if v == nil || *v == (replication.Version{}) {
		return ""
	}
	return fmt.Sprintf("%d.%d", v.Commands, v.Snapshot)
}
