package sharding

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/replication"
)

// GlobalGroup is the group that holds the catalog and shared tables; it is
// the group a single-group cluster of earlier versions already ran as.
const GlobalGroup uint64 = 1

// DefaultSite is the site of a node started without --site.
const DefaultSite = "default"

// Catalog kinds of the registry (kv/keys: 0x10 <bytes kind> ...).
var (
	catSite = []byte("site")
	catNode = []byte("node")
	catSeq  = []byte("seq")
)

// Site is the registry record of a site: the group that holds its rows.
type Site struct {
	Name  string `json:"name"`
	Group uint64 `json:"group"`
	// Founder is the node that claimed the founding of the site's group
	// (empty: nobody yet); Founded, that the group exists. A node joins a
	// founded group; one that finds a site unfounded claims it
	// (ClaimFounding), and only the claimant bootstraps, so two nodes of a
	// new site never found two groups, and a site whose record was made
	// before any of its nodes (a table placed there) is still founded.
	Founder string `json:"founder,omitempty"`
	Founded bool   `json:"founded,omitempty"`
}

// Node is the registry record of a node.
type Node struct {
	ID       string `json:"id"`
	Site     string `json:"site"`
	PeerAddr string `json:"peer_addr"`
	// NonVoter: the operator asked for a replica that never votes.
	NonVoter bool `json:"non_voter,omitempty"`
}

func siteKey(name string) []byte { return keys.CatalogKey(catSite, []byte(name)) }
func nodeKey(id string) []byte   { return keys.CatalogKey(catNode, []byte(id)) }
func groupSeqKey() []byte        { return keys.CatalogKey(catSeq, []byte("group")) }

// Sites lists the registered sites, by name.
func Sites(eng *kv.Engine) ([]Site, error) {
	var out []Site
	err := scan(eng, catSite, func(v []byte) error {
		var s Site
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("sharding: site record: %w", err)
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// Nodes returns the registered nodes by ID.
func Nodes(eng *kv.Engine) (map[string]Node, error) {
	out := map[string]Node{}
	err := scan(eng, catNode, func(v []byte) error {
		var n Node
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("sharding: node record: %w", err)
		}
		out[n.ID] = n
		return nil
	})
	return out, err
}

// TouchesNodes reports whether batches write a node's record, so a
// reader of the registry (the sites of peer addresses, say) knows to read
// it again.
func TouchesNodes(batches []*kv.Batch) bool { return touches(batches, catNode) }

// TouchesSites reports whether batches write a site's record (a new site
// and its group).
func TouchesSites(batches []*kv.Batch) bool { return touches(batches, catSite) }

func touches(batches []*kv.Batch, kind []byte) bool {
	pre := keys.CatalogKey(kind)
	for _, b := range batches {
		for _, m := range b.Mutations {
			if bytes.HasPrefix(m.Key, pre) {
				return true
			}
		}
	}
	return false
}

// LookupSite reads one site's record.
func LookupSite(eng *kv.Engine, name string) (Site, bool, error) {
	s, _, ok, err := siteRecord(eng, name)
	return s, ok, err
}

// siteRecord reads a site's record with its version.
func siteRecord(eng *kv.Engine, name string) (Site, kv.Timestamp, bool, error) {
	v, err := eng.Get(siteKey(name), kv.MaxTimestamp)
	if err != nil || !v.Exists {
		return Site{}, 0, false, err
	}
	var s Site
	if err := json.Unmarshal(v.Data, &s); err != nil {
		return Site{}, 0, false, fmt.Errorf("sharding: site record of %s: %w", name, err)
	}
	return s, v.Version, true, nil
}

// putSite is the batch that replaces a site's record read at version.
func putSite(s Site, version kv.Timestamp) (*kv.Batch, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return &kv.Batch{
		Mutations:     []kv.Mutation{{Key: siteKey(s.Name), Value: data}},
		Preconditions: []kv.Precondition{{Key: siteKey(s.Name), Exists: true, Version: version}},
	}, nil
}

// SiteNodes lists the registered nodes of site, by ID.
func SiteNodes(eng *kv.Engine, site string) ([]Node, error) {
	all, err := Nodes(eng)
	if err != nil {
		return nil, err
	}
	var out []Node
	for _, n := range all {
		if n.Site == site {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func scan(eng *kv.Engine, kind []byte, f func(v []byte) error) error {
	pre := keys.CatalogKey(kind)
	it := eng.NewIterator(pre, keys.PrefixEnd(pre), kv.MaxTimestamp, false)
	defer it.Close()
	for it.Next() {
		if err := f(it.Value()); err != nil {
			return err
		}
	}
	return it.Err()
}

// RegisterNode records n in the registry through the global group g,
// unless the record is already what n says.
func RegisterNode(ctx context.Context, g *replication.Group, n Node) error {
	data, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return retryConflicts(ctx, g, func() (*kv.Batch, error) {
		cur, err := g.Engine().Get(nodeKey(n.ID), kv.MaxTimestamp)
		if err != nil {
			return nil, err
		}
		if cur.Exists && string(cur.Data) == string(data) {
			return nil, nil
		}
		return &kv.Batch{
			Mutations:     []kv.Mutation{{Key: nodeKey(n.ID), Value: data}},
			Preconditions: []kv.Precondition{{Key: nodeKey(n.ID), Exists: cur.Exists, Version: cur.Version}},
		}, nil
	})
}

// EnsureSite returns site name's record, creating it with a new group ID
// when the site is new; created reports whether this call created it. Two
// nodes of a new site racing here get one record: the loser reads the
// winner's. Creating the record founds nothing: ClaimFounding decides
// which node bootstraps the group.
func EnsureSite(ctx context.Context, g *replication.Group, name string) (s Site, created bool, err error) {
	err = retryConflicts(ctx, g, func() (*kv.Batch, error) {
		eng := g.Engine()
		cur, ok, err := LookupSite(eng, name)
		if err != nil {
			return nil, err
		}
		if ok {
			s, created = cur, false
			return nil, nil
		}
		seq, err := eng.Get(groupSeqKey(), kv.MaxTimestamp)
		if err != nil {
			return nil, err
		}
		last := GlobalGroup
		if seq.Exists {
			if len(seq.Data) != 8 {
				return nil, fmt.Errorf("sharding: last group ID is %d bytes, not 8", len(seq.Data))
			}
			last = binary.BigEndian.Uint64(seq.Data)
		}
		s, created = Site{Name: name, Group: last + 1}, true
		data, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		return &kv.Batch{
			Mutations: []kv.Mutation{
				{Key: groupSeqKey(), Value: binary.BigEndian.AppendUint64(nil, s.Group)},
				{Key: siteKey(name), Value: data},
			},
			Preconditions: []kv.Precondition{
				{Key: groupSeqKey(), Exists: seq.Exists, Version: seq.Version},
				{Key: siteKey(name), Exists: false},
			},
		}, nil
	})
	return s, created, err
}

// retryConflicts commits the batch build returns (nothing when it returns
// nil) after a read barrier, building it again when another node's commit
// got in between.
func retryConflicts(ctx context.Context, g *replication.Group, build func() (*kv.Batch, error)) error {
	for attempt := 0; ; attempt++ {
		if err := g.ReadBarrier(ctx); err != nil {
			return err
		}
		b, err := build()
		if err != nil || b == nil {
			return err
		}
		_, err = g.Commit(ctx, b)
		var ce *kv.ConflictError
		if !errors.As(err, &ce) {
			return err
		}
		if attempt == 20 {
			return fmt.Errorf("sharding: registry kept changing under this node: %w", err)
		}
		t := time.NewTimer(time.Duration(attempt+1) * 10 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// ClaimFounding makes node the founder of site's group unless another node
// claimed it first. It returns the record as it stands after the claim:
// won tells whether node may bootstrap the group (it claimed it now, or
// had claimed it before and had not founded it yet).
func ClaimFounding(ctx context.Context, g *replication.Group, name, node string) (s Site, won bool, err error) {
	err = retryConflicts(ctx, g, func() (*kv.Batch, error) {
		cur, version, ok, err := siteRecord(g.Engine(), name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("sharding: site %q has no record", name)
		}
		s = cur
		switch {
		case s.Founded:
			won = false
			return nil, nil
		case s.Founder != "":
			won = s.Founder == node
			return nil, nil
		}
		s.Founder, won = node, true
		return putSite(s, version)
	})
	return s, won, err
}

// MarkFounded records that site's group exists, so later nodes join it.
func MarkFounded(ctx context.Context, g *replication.Group, name string) error {
	return retryConflicts(ctx, g, func() (*kv.Batch, error) {
		s, version, ok, err := siteRecord(g.Engine(), name)
		if err != nil || !ok || s.Founded {
			return nil, err
		}
		s.Founded = true
		return putSite(s, version)
	})
}
