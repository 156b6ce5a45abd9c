package server

import (
	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/sharding/placement"
	"github.com/fogdb/fogdb/sqlfront"
)

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
