package sqlfront

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/dolthub/go-mysql-server/sql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// A table placed outside the catalog group (Config.PlaceTable) must not
// cost its writers a round trip to the catalog group's leader, which may
// be in another site. So its writers neither lock its catalog key nor put
// the catalog entry's version in their batch, as the writers of a catalog
// table do. Instead, the table's own part holds:
//
//   - the table's metadata lock: the same key as in the catalog part,
//     shared by writers, exclusive for DDL (which also takes it in the
//     catalog part, first);
//   - a definition marker, the key (table ID, index 0) of the table's own
//     range (no index has ID 0, so no scan of rows or entries meets it,
//     and removing the table ID's range removes it): the catalog version
//     of the table's current definition and the IDs of its indexes.
//
// DDL commits the catalog change under both locks, then writes the marker
// of the new definition (and deletes the marker of a table ID it
// orphaned) in the table's part before it lets the locks go. A writer
// reads the marker under its shared lock as a current read, and keeps the
// version it read as a precondition of its commit, so a DDL that got in
// after a lock lost to a leader change fails the commit (1412) instead of
// being written over. A snapshot read checks the marker as of its
// snapshot: the table ID's marker must be there (the rows of a new table
// ID are complete before its marker is written), and list the index read.

// markerIndexID is the index ID of the definition marker in its table's
// range.
const markerIndexID = 0

// markerFormat is the first byte of a marker's value.
const markerFormat = 1

func markerKey(table uint64) []byte { return keys.IndexPrefix(table, markerIndexID) }

// isMarkerKey reports whether k is a definition marker.
func isMarkerKey(k []byte) bool {
	id, idx, ok := splitTableKey(k)
	return ok && idx == markerIndexID && len(k) == len(markerKey(id))
}

// defMarker is a marker's value: the catalog version of a definition and
// the IDs of its secondary indexes.
type defMarker struct {
	version uint64
	indexes []uint64
}

func encodeMarker(m *tableMeta) []byte {
	b := make([]byte, 0, 1+8*(1+len(m.indexes)))
	b = append(b, markerFormat)
	b = binary.BigEndian.AppendUint64(b, m.version)
	for _, im := range m.indexes {
		b = binary.BigEndian.AppendUint64(b, im.def.ID)
	}
	return b
}

func decodeMarker(b []byte) (defMarker, error) {
	if len(b) < 9 || b[0] != markerFormat || (len(b)-9)%8 != 0 {
		return defMarker{}, fmt.Errorf("sqlfront: corrupt definition marker of %d bytes", len(b))
	}
	mk := defMarker{version: binary.BigEndian.Uint64(b[1:])}
	for i := 9; i < len(b); i += 8 {
		mk.indexes = append(mk.indexes, binary.BigEndian.Uint64(b[i:]))
	}
	return mk, nil
}

func (mk defMarker) hasIndex(id uint64) bool {
	for _, x := range mk.indexes {
		if x == id {
			return true
		}
	}
	return false
}

// placedVisibleAt is visibleAt for a table outside the catalog group: the
// snapshot ts of the table's part must hold its table ID's marker (so the
// ID's rows were complete at ts) and, for a read through index im, a
// marker that lists im (so were its entries).
//
// A local table's marker may be missing from a group that was never told
// of the table: a site's group made after the table, or one that could
// not be reached when a DDL statement ended. Such a group holds nothing of
// the table ID: a writer writes the marker with its first row (checkMarker)
// and a copy into the group writes it once complete (filler.finishGroup),
// and markers are deleted only with their table ID. So a marker missing at
// ts and missing now means an empty range, visible at ts; one written
// since ts may have come with rows ts cannot see whole, so the read fails
// as for a placed table.
func (m *tableMeta) placedVisibleAt(ctx context.Context, pt Part, ts kv.Timestamp, im *indexMeta) error {
	v, err := pt.Get(ctx, markerKey(m.def.ID), ts)
	if err != nil {
		return err
	}
	if !v.Exists && m.local() {
		now, err := pt.Get(ctx, markerKey(m.def.ID), kv.MaxTimestamp)
		if err != nil {
			return err
		}
		if !now.Exists {
			return nil
		}
	}
	if !v.Exists {
		return errTableDefChanged
	}
	mk, err := decodeMarker(v.Data)
	if err != nil {
		return err
	}
	if im != nil && !mk.hasIndex(im.def.ID) {
		return errTableDefChanged
	}
	return nil
}

// checkMarker is a writer's first look at a placed table in group's part,
// under its shared metadata lock there: the marker's version becomes a
// precondition of the commit, and must name the definition the editor
// writes with.
func (e *editor) checkMarker(ctx *sql.Context, t *txn, group uint64) error {
	key := markerKey(e.m.def.ID)
	data, exists, err := e.sess.currentRead(ctx, t, group, key)
	if err != nil {
		return err
	}
	var mk defMarker
	if exists {
		if mk, err = decodeMarker(data); err != nil {
			return err
		}
		if mk.version == e.m.version {
			return nil
		}
	}
	// The part and this node's catalog disagree. A newer marker means
	// this node has not applied the definition yet; an older or missing
	// one, that the statement which made the definition stopped between
	// its catalog commit and the marker (a crash, a lost lock, its group
	// unreachable), or that this node's catalog is behind a change that
	// moved the table elsewhere. Either way the catalog decides, read
	// after a barrier: rare, and the only time a writer of a placed table
	// waits for the catalog group.
	if err := e.p.cat().ReadBarrier(ctx); err != nil {
		return storeErr(err)
	}
	cur := e.p.table(e.m.db, e.m.def.Name)
	if cur == nil || cur.def.ID != e.m.def.ID || !sameIndexes(cur, e.m) ||
		!sameRules(cur, e.m) && rowStatement(e.sess.stmtText(ctx)) {
		return errTableDefChanged
	}
	e.m = cur
	switch {
	case exists && mk.version == cur.version:
		return nil
	case exists && mk.version > cur.version:
		// Even the catalog after its barrier is older: corrupt or a
		// clock this node cannot follow; refuse rather than guess.
		return errTableDefChanged
	}
	// The catalog's definition is the current one and the part was never
	// told: this transaction tells it, on condition that the marker is
	// still what was read.
	return t.write(e.p, group, string(key), encodeMarker(cur), false)
}

// markerChange is a marker a DDL batch makes stale: of table db.name
// (written again from the reloaded catalog), or of a table ID it orphaned
// (deleted).
type markerChange struct {
	group    uint64
	id       uint64
	db, name string
	drop     bool
}

// publishMarkers writes the markers of a committed DDL batch in the parts
// of its tables, one batch per part. The catalog change is durable by
// now, so a part that cannot be told is not an error of the statement:
// the statement succeeds with a warning, and the next writer of the table
// writes the marker (checkMarker).
func (p *Provider) publishMarkers(ctx context.Context, changes []markerChange) {
	if len(changes) == 0 {
		return
	}
	batches := map[uint64]*kv.Batch{}
	for _, c := range changes {
		b := batches[c.group]
		if b == nil {
			b = &kv.Batch{}
			batches[c.group] = b
		}
		if c.drop {
			b.Mutations = append(b.Mutations, kv.Mutation{Key: markerKey(c.id), Delete: true})
			continue
		}
		cur := p.table(c.db, c.name)
		if cur == nil || cur.def.ID != c.id {
			continue // changed again, or dropped, by a later batch
		}
		b.Mutations = append(b.Mutations, kv.Mutation{Key: markerKey(c.id), Value: encodeMarker(cur)})
	}
	groups := make([]uint64, 0, len(batches))
	for g := range batches {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i] < groups[j] })
	for _, g := range groups {
		b := batches[g]
		if len(b.Mutations) == 0 {
			continue
		}
		// A key written twice (a table changed twice in one batch) keeps
		// its last value.
		b.Mutations = lastWrites(b.Mutations)
		pt, err := p.part(g)
		if err == nil {
			err = pt.Commit(ctx, b)
		}
		if err != nil {
			p.log.Warn("a table definition changed in the catalog, but its group could not be told", "group", g, "error", err)
			if sc, ok := ctx.(*sql.Context); ok && sc.Session != nil {
				sc.Session.Warn(&sql.Warning{Level: "Warning", Code: 1105, Message: fmt.Sprintf(
					"fogdb: the definition changed, but group %d could not be told (%v); its next writer will tell it", g, err)})
			}
		}
	}
}

// lastWrites keeps the last mutation of each key, in first-seen order.
func lastWrites(ms []kv.Mutation) []kv.Mutation {
	last := map[string]int{}
	for i, m := range ms {
		last[string(m.Key)] = i
	}
	out := ms[:0:0]
	for i, m := range ms {
		if last[string(m.Key)] == i {
			out = append(out, m)
		}
	}
	return out
}

// mdlKey is a metadata lock: a table's lock key in one group's part.
type mdlKey struct {
	group uint64
	key   []byte
}

// tableMDL are the metadata locks a DDL statement takes on table m: its
// catalog key in the catalog part and, for a placed table, in the table's
// part, where its writers take it (for a local table, in every site's
// group: DDL of a local table needs every site).
func (p *Provider) tableMDL(ctx context.Context, m *tableMeta) ([]mdlKey, error) {
	out := []mdlKey{{CatalogGroup, tableLockKey(m)}}
	if m.placed() {
		groups, err := p.groupsOf(ctx, m)
		if err != nil {
			return nil, storeErr(err)
		}
		for _, g := range groups {
			out = append(out, mdlKey{g, tableLockKey(m)})
		}
	}
	return out, nil
}

// ddlOwner is the lock owner of one DDL statement and the groups it took
// locks in.
type ddlOwner struct {
	id     lock.TxnID
	groups []uint64 // besides CatalogGroup, whose locks always go
}

// releaseOwner drops every lock of a DDL owner: in the catalog part and
// in groups.
func (p *Provider) releaseOwner(o *ddlOwner, groups []uint64) {
	p.cat().ReleaseAll(o.id)
	for _, g := range groups {
		if pt, err := p.part(g); err == nil {
			pt.ReleaseAll(o.id)
		} else if !errors.Is(err, ErrPartUnavailable) {
			p.log.Warn("releasing metadata locks", "group", g, "error", err)
		}
	}
}

// sameRules reports whether two definitions of one table differ only in
// what no statement's plan depends on: the comment, the AUTO_INCREMENT
// floor, the next index number, and whether a foreign key is resolved (the
// engine resolves one during the statement that first uses it). A writer
// may then go on under the newer definition; any other difference (a
// foreign key or CHECK added, a default changed) means the statement was
// planned under rules that are no longer the table's, and it fails with
// 1412 rather than enforce the old ones.
func sameRules(a, b *tableMeta) bool {
	norm := func(d tableDef) ([]byte, error) {
		d.Comment, d.AutoInc, d.NextIndexID = "", 0, 0
		fks := make([]sql.ForeignKeyConstraint, len(d.FKs))
		for i, fk := range d.FKs {
			fk.IsResolved = false
			fks[i] = fk
		}
		d.FKs = fks
		return json.Marshal(d)
	}
	x, err1 := norm(a.def)
	y, err2 := norm(b.def)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
