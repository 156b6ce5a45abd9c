package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/sharding"
	"github.com/fogdb/fogdb/sharding/placement"
	"github.com/fogdb/fogdb/sqlfront"
)

// catLocality is the catalog kind of locality values registered to a site
// on first use: 0x10 "locality" <value> → the site's name. The placement's
// locality map, which the operator writes, is consulted first.
var catLocality = []byte("locality")

func localityKey(value string) []byte { return keys.CatalogKey(catLocality, []byte(value)) }

// homes tells sqlfront where the rows of local tables live
// (sqlfront.Homes), from this node's replica of the registry and the
// placement. Values are compared exactly as stored.
type homes struct {
	s *Server

	mu     sync.Mutex
	groups []uint64 // every site's group, sorted; rebuilt when the registry changes
}

var _ sqlfront.Homes = (*homes)(nil)

func (h *homes) LocalGroup() uint64 {
	if g := h.s.SiteGroup(); g != nil {
		return g.Status().Group
	}
	return 0
}

func (h *homes) AllGroups(context.Context) []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]uint64(nil), h.groups...)
}

// refresh rebuilds the site list and gives sqlfront a part for every
// site's group: this node's own as the local replica, the others through
// replication.Remote.
func (h *homes) refresh() {
	sites, err := sharding.Sites(h.s.group.Engine())
	if err != nil {
		h.s.log.Debug("reading the sites", "err", err)
		return
	}
	nodes, err := sharding.Nodes(h.s.group.Engine())
	if err != nil {
		return
	}
	own := h.LocalGroup()
	var groups []uint64
	for _, site := range sites {
		groups = append(groups, site.Group)
		if site.Group == own {
			continue
		}
		var members []string
		for _, n := range nodes {
			if n.Site == site.Name {
				members = append(members, n.PeerAddr)
			}
		}
		sort.Strings(members)
		r := h.s.node.Remote(site.Group, func() []string { return members })
		h.s.parts.Set(site.Group, sqlfront.NewRemotePart(r))
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i] < groups[j] })
	h.mu.Lock()
	h.groups = groups
	h.mu.Unlock()
}

func (h *homes) siteOfGroup(group uint64) (string, error) {
	sites, err := sharding.Sites(h.s.group.Engine())
	if err != nil {
		return "", err
	}
	for _, site := range sites {
		if site.Group == group {
			return site.Name, nil
		}
	}
	return "", fmt.Errorf("server: no site has group %d", group)
}

// known is where the registry and the placement home value, if anywhere.
func (h *homes) known(value string) (site string, ok bool, err error) {
	eng := h.s.group.Engine()
	if _, isSite, err := sharding.LookupSite(eng, value); err != nil || isSite {
		return value, isSite, err
	}
	spec, err := h.s.currentPlacement()
	if err != nil {
		return "", false, err
	}
	if s, ok := spec.LocalityMap[value]; ok {
		return s, true, nil
	}
	v, err := eng.Get(localityKey(value), kv.MaxTimestamp)
	if err != nil || !v.Exists {
		return "", false, err
	}
	var reg string
	if err := json.Unmarshal(v.Data, &reg); err != nil {
		return "", false, fmt.Errorf("server: registered locality %q: %w", value, err)
	}
	return reg, true, nil
}

func (h *homes) groupOf(site string) (uint64, error) {
	rec, ok, err := sharding.LookupSite(h.s.group.Engine(), site)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("server: site %q has no group yet", site)
	}
	return rec.Group, nil
}

func (h *homes) Lookup(_ context.Context, value string) (uint64, bool, error) {
	site, ok, err := h.known(value)
	if err != nil || !ok {
		return 0, false, err
	}
	g, err := h.groupOf(site)
	return g, err == nil, err
}

// Home applies placement.HomeSite: a site's name, the locality map, an
// earlier registration; otherwise fallback's site, where a new value is
// registered through the global group (the one WAN round trip the first
// use of a value costs).
func (h *homes) Home(ctx context.Context, value *string, fallback uint64) (uint64, error) {
	if value == nil {
		return fallback, nil
	}
	site, ok, err := h.known(*value)
	if err != nil {
		return 0, err
	}
	if ok {
		return h.groupOf(site)
	}
	fsite, err := h.siteOfGroup(fallback)
	if err != nil {
		return 0, err
	}
	data, _ := json.Marshal(fsite)
	key := localityKey(*value)
	_, err = h.s.group.Commit(ctx, &kv.Batch{
		Mutations:     []kv.Mutation{{Key: key, Value: data}},
		Preconditions: []kv.Precondition{{Key: key, Exists: false}},
	})
	var ce *kv.ConflictError
	switch {
	case err == nil:
		return fallback, nil
	case errors.As(err, &ce):
		// Another node registered it first: its choice holds.
		if err := h.s.group.ReadBarrier(ctx); err != nil {
			return 0, err
		}
		if site, ok, err := h.known(*value); err != nil || !ok {
			return 0, fmt.Errorf("server: locality %q: registered elsewhere but not found: %v", *value, err)
		} else {
			return h.groupOf(site)
		}
	}
	return 0, err
}

// placeTable chooses where a table being created keeps its rows, from the
// cluster's placement as this node's replica of the global group has it:
// global tables in the global group; site:S in S's group (whose record is
// created when S has no node yet, so the table is ready when S's first
// node founds the group); local tables in every site's group, each row at
// its home.
func (s *Server) placeTable(ctx context.Context, db, table string) (sqlfront.TablePlacement, error) {
	spec, err := s.currentPlacement()
	if err != nil {
		return sqlfront.TablePlacement{}, err
	}
	p := spec.Effective(db, table)
	switch p.Kind {
	case placement.Global:
		return sqlfront.TablePlacement{Group: sharding.GlobalGroup}, nil
	case placement.Local:
		tp := sqlfront.TablePlacement{Local: true, Locality: p.Locality, SiteUnique: p.SiteUnique}
		if p.Parent != nil {
			tp.Parent = &sqlfront.ParentRef{Table: p.Parent.Table, Column: p.Parent.Column, Via: p.Parent.Via}
		}
		return tp, nil
	case placement.Site:
		site, ok, err := sharding.LookupSite(s.group.Engine(), p.Site)
		if err != nil {
			return sqlfront.TablePlacement{}, err
		}
		if !ok {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.Cluster.Timeout)
			defer cancel()
			if site, _, err = sharding.EnsureSite(cctx, s.group, p.Site); err != nil {
				return sqlfront.TablePlacement{}, err
			}
			s.homes.Load().refresh()
		}
		return sqlfront.TablePlacement{Group: site.Group}, nil
	}
	return sqlfront.TablePlacement{}, fmt.Errorf("server: placement of %s.%s: unknown kind %v", db, table, p.Kind)
}
