package server

import (
	"context"
	"fmt"

	"github.com/dolthub/go-mysql-server/sql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/sharding"
	"github.com/fogdb/fogdb/sharding/placement"
	"github.com/fogdb/fogdb/sqlfront"
)

// placeTable chooses the group of a table being created, from the
// cluster's placement as this node's replica of the global group has it
// (DDL has just passed a barrier on that group):
//
//   - global: the global group;
//   - site:S: S's group, whose record is created (with a new group ID)
//     when S has no node yet, so the table is ready when S's first node
//     founds the group;
//   - local: the global group for now. Homing each row at its own site
//     needs rows of one table in several groups, which sqlfront does not
//     do yet; fogdb.placements shows the group a table's rows are in.
func (s *Server) placeTable(ctx *sql.Context, db, table string) (uint64, error) {
	spec, err := s.currentPlacement()
	if err != nil {
		return 0, err
	}
	p := spec.Effective(db, table)
	switch p.Kind {
	case placement.Global, placement.Local:
		return sharding.GlobalGroup, nil
	case placement.Site:
		site, ok, err := sharding.LookupSite(s.group.Engine(), p.Site)
		if err != nil {
			return 0, err
		}
		if ok {
			return site.Group, nil
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.Cluster.Timeout)
		defer cancel()
		site, _, err = sharding.EnsureSite(cctx, s.group, p.Site)
		if err != nil {
			return 0, err
		}
		return site.Group, nil
	}
	return 0, fmt.Errorf("server: placement of %s.%s: unknown kind %v", db, table, p.Kind)
}

// cachedSpec is the placement as last read, with the catalog version it
// was read at, so reads do not parse it again until it changes.
type cachedSpec struct {
	version kv.Timestamp
	exists  bool
	spec    *placement.Spec
}

// currentPlacement is Placement, parsed once per stored version.
func (s *Server) currentPlacement() (*placement.Spec, error) {
	v, err := s.group.Engine().Get(placementKey, kv.MaxTimestamp)
	if err != nil {
		return nil, err
	}
	if c := s.specCache.Load(); c != nil && c.exists == v.Exists && c.version == v.Version {
		return c.spec, nil
	}
	spec, _, err := s.Placement()
	if err != nil {
		return nil, err
	}
	s.specCache.Store(&cachedSpec{version: v.Version, exists: v.Exists, spec: spec})
	return spec, nil
}

// readPolicy gives sqlfront a global table's staleness bound and
// strictness; tables of other placements are read through their group's
// barrier.
func (s *Server) readPolicy(db, table string) sqlfront.ReadPolicy {
	spec, err := s.currentPlacement()
	if err != nil {
		return sqlfront.ReadPolicy{}
	}
	p := spec.Effective(db, table)
	if p.Kind != placement.Global {
		return sqlfront.ReadPolicy{}
	}
	return sqlfront.ReadPolicy{Staleness: p.Staleness, Strict: p.Strict}
}
