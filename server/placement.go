package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/sharding"
	"github.com/fogdb/fogdb/sharding/placement"
)

// placementKey holds the cluster's placement in the global group's
// catalog, in placement's versioned JSON form (sharding/placement/DESIGN.md).
// Absent means the default: every table global.
var placementKey = keys.CatalogKey([]byte("placement"))

// maxPlacementBytes bounds a placement sent to PUT /placements.
const maxPlacementBytes = 4 << 20

// defaultSpec is the placement of a cluster that was given none: every
// table global, read linearizably as before sites existed (a service that
// writes on one node and reads on another sees its write), not with the
// placement file's default staleness.
func defaultSpec() *placement.Spec {
	spec, err := placement.Parse([]byte("default:\n  placement: global\n  staleness: 0s\n"))
	if err != nil {
		panic(err) // a constant that parses
	}
	return spec
}

// readPlacementFile parses --placement, so a bad file stops the node
// before it starts.
func (c *Config) readPlacementFile() (*placement.Spec, error) {
	if c.PlacementFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(c.PlacementFile)
	if err != nil {
		return nil, fmt.Errorf("server: --placement: %w", err)
	}
	spec, err := placement.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("server: --placement %s: %w", c.PlacementFile, err)
	}
	return spec, nil
}

// Placement returns the cluster's placement as this node's replica of the
// global group has it, with the catalog version it was read at.
func (s *Server) Placement() (*placement.Spec, kv.Value, error) {
	v, err := s.group.Engine().Get(placementKey, kv.MaxTimestamp)
	if err != nil {
		return nil, v, err
	}
	if !v.Exists {
		return defaultSpec(), v, nil
	}
	spec, err := placement.Unmarshal(v.Data)
	if err != nil {
		return nil, v, fmt.Errorf("server: stored placement: %w", err)
	}
	return spec, v, nil
}

// seedPlacement stores --placement as the cluster's placement when the
// cluster has none yet: the file seeds a new cluster; after that the admin
// API is the source of truth, and a file that differs is reported and
// ignored.
func (s *Server) seedPlacement(ctx context.Context, spec *placement.Spec) error {
	data, err := placement.Marshal(spec)
	if err != nil {
		return err
	}
	return s.untilDone(ctx, "storing --placement", func(ctx context.Context) error {
		if err := s.group.ReadBarrier(ctx); err != nil {
			return err
		}
		cur, v, err := s.Placement()
		if err != nil {
			return err
		}
		if v.Exists {
			if !cur.Equal(spec) {
				s.log.Warn("--placement differs from the cluster's placement and is ignored; change it with PUT /placements", "file", s.cfg.PlacementFile)
			}
			return nil
		}
		_, err = s.group.Commit(ctx, &kv.Batch{
			Mutations:     []kv.Mutation{{Key: placementKey, Value: data}},
			Preconditions: []kv.Precondition{{Key: placementKey, Exists: false}},
		})
		if err == nil {
			s.log.Info("placement stored from --placement", "file", s.cfg.PlacementFile)
		}
		return err
	})
}

// handleGetPlacements answers the cluster's placement as a placement file.
func (s *Server) handleGetPlacements(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Cluster.Timeout)
	defer cancel()
	if err := s.group.ReadBarrier(ctx); err != nil {
		writeText(w, http.StatusServiceUnavailable, "the global group cannot be reached: "+err.Error()+"\n")
		return
	}
	spec, _, err := s.Placement()
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	out, err := spec.YAML()
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// handlePutPlacements replaces the cluster's placement with the file in
// the request body. A change that would move the rows of a table that
// exists is refused (409) until shard moves exist, as is one naming a site
// the cluster does not have (400, so a typo cannot home rows nowhere).
func (s *Server) handlePutPlacements(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxPlacementBytes+1))
	if err != nil {
		writeText(w, http.StatusBadRequest, "reading the placement: "+err.Error()+"\n")
		return
	}
	if len(data) > maxPlacementBytes {
		writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a placement is at most %d bytes\n", maxPlacementBytes))
		return
	}
	spec, err := placement.Parse(data)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error()+"\n")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*s.cfg.Cluster.Timeout)
	defer cancel()
	code, msg := s.putPlacement(ctx, spec)
	writeText(w, code, msg)
}

func (s *Server) putPlacement(ctx context.Context, spec *placement.Spec) (int, string) {
	for attempt := 0; ; attempt++ {
		if err := s.group.ReadBarrier(ctx); err != nil {
			return http.StatusServiceUnavailable, "the global group cannot be reached: " + err.Error() + "\n"
		}
		// The catalog's tables as of the barrier: the provider follows the
		// replica it just caught up with.
		if err := s.prov.ReadBarrier(ctx); err != nil {
			return http.StatusServiceUnavailable, err.Error() + "\n"
		}
		cur, v, err := s.Placement()
		if err != nil {
			return http.StatusInternalServerError, err.Error() + "\n"
		}
		sites, err := sharding.Sites(s.group.Engine())
		if err != nil {
			return http.StatusInternalServerError, err.Error() + "\n"
		}
		known := map[string]bool{}
		for _, st := range sites {
			known[st.Name] = true
		}
		var unknown []string
		for _, name := range spec.Sites() {
			if !known[name] {
				unknown = append(unknown, name)
			}
		}
		if len(unknown) > 0 {
			return http.StatusBadRequest, fmt.Sprintf("the placement names sites the cluster does not have: %s (start a node with --site first)\n", strings.Join(unknown, ", "))
		}
		var moved []string
		for _, t := range s.prov.Tables() {
			if placement.Moves(cur.Effective(t.DB, t.Table), spec.Effective(t.DB, t.Table)) {
				moved = append(moved, t.DB+"."+t.Table)
			}
		}
		if len(moved) > 0 {
			sort.Strings(moved)
			return http.StatusConflict, fmt.Sprintf("the placement would move the rows of existing tables, which needs a shard move (not available yet): %s\n", strings.Join(moved, ", "))
		}
		data, err := placement.Marshal(spec)
		if err != nil {
			return http.StatusInternalServerError, err.Error() + "\n"
		}
		_, err = s.group.Commit(ctx, &kv.Batch{
			Mutations:     []kv.Mutation{{Key: placementKey, Value: data}},
			Preconditions: []kv.Precondition{{Key: placementKey, Exists: v.Exists, Version: v.Version}},
		})
		var ce *kv.ConflictError
		switch {
		case err == nil:
			s.log.Info("placement changed through the admin API")
			return http.StatusOK, "placement stored\n"
		case errors.As(err, &ce) && attempt < 5:
			// Another node changed it meanwhile: judge the request against
			// that placement instead.
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return http.StatusServiceUnavailable, ctx.Err().Error() + "\n"
			}
		default:
			return http.StatusServiceUnavailable, "storing the placement: " + err.Error() + "\n"
		}
	}
}

// applyPlacementFile seeds a cluster this node bootstrapped with
// --placement; on any other start it only reports, in the background, a
// file that differs from the cluster's placement.
func (s *Server) applyPlacementFile(spec *placement.Spec) error {
	if spec == nil {
		return nil
	}
	if s.bootstrapped {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return s.seedPlacement(ctx, spec)
	}
	go func() {
		ctx, cancel := s.groupsContext()
		defer cancel()
		_ = s.untilDone(ctx, "comparing --placement with the cluster's", func(ctx context.Context) error {
			if err := s.group.ReadBarrier(ctx); err != nil {
				return err
			}
			cur, _, err := s.Placement()
			if err == nil && !cur.Equal(spec) {
				s.log.Warn("--placement differs from the cluster's placement and is ignored; change it with PUT /placements", "file", s.cfg.PlacementFile)
			}
			return err
		})
	}()
	return nil
}
