package sqlfront

import (
	"fmt"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
)

// ReadPolicy is how plain reads of a table of the catalog group may use
// this node's replica (docs/PLACEMENT.md, "Staleness and strict").
type ReadPolicy struct {
	// Staleness bounds how far behind the group's leader the replica may
	// be for a read to skip the read barrier; 0 always passes it.
	Staleness time.Duration
	// Strict: a read the bound does not allow fails as unavailable
	// (1047) instead of going on with the replica's data and a warning.
	Strict bool
}

// ContactReporter is a Part that can tell how long ago its replica last
// heard from the group's leader (0 when it leads); ok is false when it
// cannot tell.
type ContactReporter interface {
	SinceLeaderContact() (d time.Duration, ok bool)
}

// staleRead decides, at a transaction's first plain read of a table of
// the catalog group, whether the read may be served from this node's
// replica without the group's read barrier: the replica heard from the
// leader within the table's bound. Beyond the bound a strict table waits
// for the barrier (and fails with 1047 when the group cannot be reached);
// any other goes on with what the replica has and a warning, without
// waiting for a group it has not heard from for longer than the bound.
// The decision holds for the transaction's snapshot of the group.
func (t *txn) staleRead(ctx *sql.Context, p *Provider, m *tableMeta) {
	if p.cfg.ReadPolicy == nil || m.group() != CatalogGroup {
		return
	}
	tp, err := t.in(p, CatalogGroup)
	if err != nil || tp.snap != nil || tp.noBarrier {
		return
	}
	pol := p.cfg.ReadPolicy(m.db, m.def.Name)
	if pol.Staleness <= 0 {
		return
	}
	cr, ok := tp.part.(ContactReporter)
	if !ok {
		return
	}
	since, ok := cr.SinceLeaderContact()
	switch {
	case ok && since <= pol.Staleness:
		tp.noBarrier = true
	case pol.Strict:
		// The barrier decides.
	default:
		tp.noBarrier = true
		what := "never"
		if ok {
			what = fmt.Sprintf("%s ago", since.Round(time.Millisecond))
		}
		ctx.Session.Warn(&sql.Warning{Level: "Warning", Code: 1105, Message: fmt.Sprintf(
			"fogdb: %s.%s read from this node's replica of the global group, which last heard from its leader %s (staleness bound %s)",
			m.db, m.def.Name, what, pol.Staleness)})
	}
}
