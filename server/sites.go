package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/replication"
	"github.com/fogdb/fogdb/sharding"
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
// of the site.
func (s *Server) startSite(kopts kv.Options) error {
	cc := s.cfg.Cluster
	id := string(s.node.ID())
	rec, known, err := s.cfg.readSiteFile()
	if err != nil {
		return err
	}
	self := sharding.Node{ID: id, Site: cc.Site, PeerAddr: s.node.Addr(), NonVoter: cc.NonVoter}
	founder := false
	if known {
		if rec.Site != cc.Site {
			return fmt.Errorf("server: --site %q differs from %q, the site this data directory belongs to", cc.Site, rec.Site)
		}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.untilDone(ctx, "registering this node", func(ctx context.Context) error {
			return sharding.RegisterNode(ctx, s.group, self)
		}); err != nil {
			return err
		}
		var site sharding.Site
		if err := s.untilDone(ctx, "finding this node's site", func(ctx context.Context) (err error) {
			site, founder, err = sharding.EnsureSite(ctx, s.group, cc.Site)
			return err
		}); err != nil {
			return err
		}
		rec = siteFile{Site: cc.Site, Group: site.Group}
		if err := s.cfg.writeSiteFile(rec); err != nil {
			return err
		}
	}
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
	rc := s.raftConfig(id, filepath.Join(dir, "raft"), sopts)
	rc.Admit = s.topo.AdmitSite(cc.Site)
	g, err := s.node.NewGroup(rec.Group, rc, eng)
	if err != nil {
		eng.Close()
		return err
	}
	s.siteGroup = g
	if !g.HasState() {
		if err := s.foundOrJoinSite(g, rec, founder); err != nil {
			return err
		}
	}
	if known {
		// A peer address that changed is recorded when the global group
		// can be reached; the site group does not wait for it.
		go func() {
			ctx, cancel := s.groupsContext()
			defer cancel()
			_ = s.untilDone(ctx, "registering this node", func(ctx context.Context) error {
				return sharding.RegisterNode(ctx, s.group, self)
			})
		}()
	}
	ctx, cancel := s.groupsContext()
	go func() { defer cancel(); s.topo.Keep(ctx, s.group, cc.GlobalVoters, time.Second) }()
	ctx2, cancel2 := s.groupsContext()
	go func() { defer cancel2(); s.topo.Keep(ctx2, g, sharding.MaxSiteVoters, time.Second) }()
	return nil
}

// foundOrJoinSite gives a site group without Raft state its members: the
// node that created the site's record bootstraps it, as does the only
// registered node of a site (a founder restarted from an empty directory);
// the others join through any node of the site already in it.
func (s *Server) foundOrJoinSite(g *replication.Group, rec siteFile, founder bool) error {
	id := s.node.ID()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var peers []sharding.Node
	if err := s.untilDone(ctx, "listing the nodes of this site", func(ctx context.Context) error {
		if err := s.group.ReadBarrier(ctx); err != nil {
			return err
		}
		all, err := sharding.SiteNodes(s.group.Engine(), rec.Site)
		peers = peers[:0]
		for _, n := range all {
			if n.ID != string(id) {
				peers = append(peers, n)
			}
		}
		return err
	}); err != nil {
		return err
	}
	if founder || len(peers) == 0 {
		s.log.Info("founding the group of this site", "site", rec.Site, "group", rec.Group)
		return g.Bootstrap([]raft.Server{{ID: id, Address: raft.ServerAddress(s.node.Addr()), Suffrage: raft.Voter}})
	}
	req := replication.JoinRequest{ID: id, Addr: s.node.Addr(), Site: rec.Site, Voter: !s.cfg.Cluster.NonVoter}
	return s.untilDone(ctx, "joining the group of this site", func(ctx context.Context) error {
		var last error
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
func (s *Server) SiteGroup() *replication.Group { return s.siteGroup }
