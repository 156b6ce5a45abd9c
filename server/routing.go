package server

import (
	"context"
	"fmt"

	"github.com/dolthub/go-mysql-server/sql"

	"github.com/fogdb/fogdb/sharding"
	"github.com/fogdb/fogdb/sharding/placement"
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
	spec, _, err := s.Placement()
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
