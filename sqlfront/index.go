package sqlfront

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/expression"

	"github.com/fogdb/fogdb/kv/keys"
)

// Index is the engine's view of the primary key or a secondary index.
// Lookups become key ranges of the index (see rangeSpans), so a lookup
// reads only the keys in its ranges.
type Index struct {
	t       *Table
	name    string
	ords    []int
	prefix  []uint16
	unique  bool
	comment string
	im      *indexMeta // nil for PRIMARY
}

var (
	_ sql.Index         = (*Index)(nil)
	_ sql.OrderedIndex  = (*Index)(nil)
	_ sql.ExtendedIndex = (*Index)(nil)
)

// GetIndexes implements sql.IndexAddressable.
func (t *Table) GetIndexes(*sql.Context) ([]sql.Index, error) {
	out := make([]sql.Index, 0, len(t.m.indexes)+1)
	if len(t.m.pkOrds) > 0 {
		out = append(out, &Index{t: t, name: "PRIMARY", ords: t.m.pkOrds, unique: true})
	}
	secondary := make([]sql.Index, 0, len(t.m.indexes))
	for _, im := range t.m.indexes {
		secondary = append(secondary, &Index{t: t, name: im.def.Name, ords: im.ords, prefix: im.prefix, unique: im.def.Unique, comment: im.def.Comment, im: im})
	}
	// SHOW CREATE TABLE and SHOW INDEX list keys in this order, which is
	// InnoDB's (sql_table.cc's sort_keys): unique keys first, those over
	// NOT NULL columns only before the others and those without a prefix
	// part before those with one, then the rest, each in the order it was
	// made.
	if t.p.cfg.KeysByName {
		sort.Slice(secondary, func(i, j int) bool { return secondary[i].ID() < secondary[j].ID() })
	} else {
		sort.SliceStable(secondary, func(i, j int) bool {
			return t.keyRank(secondary[i].(*Index).im) < t.keyRank(secondary[j].(*Index).im)
		})
	}
	return append(out, secondary...), nil
}

// keyRank is a secondary key's class in InnoDB's order of keys.
func (t *Table) keyRank(im *indexMeta) int {
	if !im.def.Unique {
		return 4
	}
	rank := 0
	for j, o := range im.ords {
		if t.m.schema[o].Nullable {
			rank |= 2
		}
		if im.prefix[j] > 0 {
			rank |= 1
		}
	}
	return rank
}

// PreciseMatch implements sql.IndexAddressable: every row a lookup returns
// is checked against the lookup's ranges (see spanPartition.filter), so the
// engine may drop filters the lookup covers. The check matters: a span is
// wider than its ranges past the first non-equality column, a prefix
// column matches more than its range, and a row re-read after a lock wait
// may no longer be in range. Foreign key checks rely on it too.
func (t *Table) PreciseMatch() bool { return true }

// IndexedAccess implements sql.IndexAddressable.
func (t *Table) IndexedAccess(_ *sql.Context, lookup sql.IndexLookup) sql.IndexedTable {
	return &IndexedTable{Table: t, lookup: lookup}
}

// ID implements sql.Index.
func (i *Index) ID() string { return i.name }

// Database implements sql.Index.
func (i *Index) Database() string { return i.t.m.db }

// Table implements sql.Index.
func (i *Index) Table() string { return i.t.m.def.Name }

// Expressions implements sql.Index.
func (i *Index) Expressions() []string {
	out := make([]string, len(i.ords))
	for j, o := range i.ords {
		out[j] = i.t.m.def.Name + "." + i.t.m.schema[o].Name
	}
	return out
}

func (i *Index) extendedOrds() []int {
	ords := append([]int(nil), i.ords...)
	if i.im == nil {
		return ords
	}
	for _, pk := range i.t.m.pkOrds {
		found := false
		for _, o := range i.ords {
			found = found || o == pk
		}
		if !found {
			ords = append(ords, pk)
		}
	}
	return ords
}

// ExtendedExpressions implements sql.ExtendedIndex: a secondary index's key
// ends with the primary key columns it does not already hold, as InnoDB's.
func (i *Index) ExtendedExpressions() []string {
	ords := i.extendedOrds()
	out := make([]string, len(ords))
	for j, o := range ords {
		out[j] = i.t.m.def.Name + "." + i.t.m.schema[o].Name
	}
	return out
}

// ExtendedColumnExpressionTypes implements sql.ExtendedIndex.
func (i *Index) ExtendedColumnExpressionTypes() []sql.ColumnExpressionType {
	ords := i.extendedOrds()
	out := make([]sql.ColumnExpressionType, len(ords))
	for j, o := range ords {
		out[j] = sql.ColumnExpressionType{Expression: i.t.m.def.Name + "." + i.t.m.schema[o].Name, Type: i.t.m.schema[o].Type}
	}
	return out
}

// ColumnExpressionTypes implements sql.Index.
func (i *Index) ColumnExpressionTypes() []sql.ColumnExpressionType {
	out := make([]sql.ColumnExpressionType, len(i.ords))
	for j, o := range i.ords {
		out[j] = sql.ColumnExpressionType{Expression: i.t.m.def.Name + "." + i.t.m.schema[o].Name, Type: i.t.m.schema[o].Type}
	}
	return out
}

// IsUnique implements sql.Index.
func (i *Index) IsUnique() bool { return i.unique }

// IsSpatial implements sql.Index.
func (i *Index) IsSpatial() bool { return false }

// IsFullText implements sql.Index.
func (i *Index) IsFullText() bool { return false }

// IsVector implements sql.Index.
func (i *Index) IsVector() bool { return false }

// Comment implements sql.Index.
func (i *Index) Comment() string { return i.comment }

// IndexType implements sql.Index.
func (i *Index) IndexType() string { return "BTREE" }

// IsGenerated implements sql.Index.
func (i *Index) IsGenerated() bool { return false }

// CanSupport implements sql.Index.
func (i *Index) CanSupport(*sql.Context, ...sql.Range) bool { return true }

// CanSupportOrderBy implements sql.Index (vector orderings only).
func (i *Index) CanSupportOrderBy(sql.Expression) bool { return false }

// PrefixLengths implements sql.Index.
func (i *Index) PrefixLengths() []uint16 {
	for _, p := range i.prefix {
		if p > 0 {
			return i.prefix
		}
	}
	return nil // the engine reads any non-empty slice as "has prefixes"
}

// Order implements sql.OrderedIndex. Keys are stored in collation order, but
// a prefix-length column orders only by its prefix.
func (i *Index) Order() sql.IndexOrder {
	for _, p := range i.prefix {
		if p > 0 {
			return sql.IndexOrderNone
		}
	}
	return sql.IndexOrderAsc
}

// Reversible implements sql.OrderedIndex.
func (i *Index) Reversible() bool { return i.Order() == sql.IndexOrderAsc }

func (i *Index) keyPrefix() []byte {
	if i.im == nil {
		return i.t.m.rowPrefix()
	}
	return keys.IndexPrefix(i.t.m.def.ID, i.im.def.ID)
}

// IndexedTable is a table restricted to an index lookup.
type IndexedTable struct {
	*Table
	lookup sql.IndexLookup
}

// LookupPartitions implements sql.IndexedTable: one partition per range.
func (t *IndexedTable) LookupPartitions(ctx *sql.Context, lookup sql.IndexLookup) (sql.PartitionIter, error) {
	idx, ok := lookup.Index.(*Index)
	if !ok {
		return nil, fmt.Errorf("sqlfront: lookup on foreign index %T", lookup.Index)
	}
	ranges, ok := lookup.Ranges.(sql.MySQLRangeCollection)
	if !ok {
		return nil, fmt.Errorf("sqlfront: unsupported range collection %T", lookup.Ranges)
	}
	if lookup.IsEmptyRange {
		return &partitionIter{}, nil
	}
	var spans []*spanPartition
	exact := true
	for _, r := range ranges {
		start, end, ok, err := idx.rangeSpan(ctx, r)
		if err != nil {
			return nil, err
		}
		exact = exact && ok
		if end != nil && bytes.Compare(start, end) >= 0 {
			continue
		}
		sp := &spanPartition{start: start, end: end, index: idx.im, reverse: lookup.IsReverse}
		if idx.t.m.local() {
			sp.locality, sp.uniquePoint = idx.routing(ctx, r)
		}
		spans = append(spans, sp)
	}
	// Every row read is checked against all the lookup's ranges, over the
	// index's columns and the primary key columns it extends to.
	ords := idx.extendedOrds()
	exprs := make([]sql.Expression, len(ords))
	for j, o := range ords {
		c := idx.t.m.schema[o]
		exprs[j] = expression.NewGetFieldWithTable(o, 0, c.Type, idx.t.m.db, idx.t.m.def.Name, c.Name, c.Nullable)
	}
	filter, err := expression.NewRangeFilterExpr(exprs, ranges)
	if err != nil {
		return nil, err
	}
	for _, sp := range spans {
		sp.filter = filter
		sp.exact = exact
	}
	// Ranges that differ only after their first non-point column map to
	// the same or overlapping spans: merge them so no row is read twice.
	sort.Slice(spans, func(i, j int) bool { return bytes.Compare(spans[i].start, spans[j].start) < 0 })
	var parts []sql.Partition
	var last *spanPartition
	for _, sp := range spans {
		if last != nil && (last.end == nil || bytes.Compare(sp.start, last.end) <= 0) {
			if last.end != nil && (sp.end == nil || bytes.Compare(sp.end, last.end) > 0) {
				last.end = sp.end
			}
			if len(last.locality) > 0 && len(sp.locality) > 0 {
				last.locality = append(last.locality, sp.locality...)
			} else {
				last.locality = nil
			}
			last.uniquePoint = false
			continue
		}
		parts = append(parts, sp)
		last = sp
	}
	if lookup.IsReverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	return &partitionIter{parts: parts}, nil
}

// Partitions implements sql.Table for the indexed view.
func (t *IndexedTable) Partitions(ctx *sql.Context) (sql.PartitionIter, error) {
	return t.LookupPartitions(ctx, t.lookup)
}

// routing tells how a range of a local table's index can be read: the
// locality value all its rows hold, when the index leads with the
// locality column and the range is a point on it; and whether it is a
// point on every column of a unique key (no NULL, no prefix), which at
// most one row matches.
func (i *Index) routing(ctx *sql.Context, r sql.MySQLRange) (locality []string, uniquePoint bool) {
	m := i.t.m
	if len(r) == 0 || len(i.ords) == 0 {
		return nil, false
	}
	exactPoint := func(j int) (interface{}, bool) {
		if j >= len(r) || j < len(i.prefix) && i.prefix[j] > 0 {
			return nil, false
		}
		v, isNull, ok := pointOf(r[j])
		if !ok || isNull {
			return nil, false
		}
		typ := m.schema[i.ords[j]].Type
		cv, inRange, err := typ.Convert(ctx, v)
		if err != nil || inRange != sql.InRange {
			return nil, false
		}
		if c, err := typ.Compare(ctx, cv, v); err != nil || c != 0 {
			return nil, false
		}
		return cv, true
	}
	if m.localityOrd >= 0 && i.ords[0] == m.localityOrd {
		if v, ok := exactPoint(0); ok {
			locality = []string{*localityValue(ctx, m.schema[m.localityOrd].Type, v)}
		}
	}
	if i.unique {
		uniquePoint = true
		for j := range i.ords {
			if _, ok := exactPoint(j); !ok {
				uniquePoint = false
				break
			}
		}
	}
	return locality, uniquePoint
}

// rangeSpan turns one range into the smallest key span holding it: leading
// point columns extend a common prefix; the first non-point column bounds
// the span; later columns are left to the row filter. exact reports that
// the span holds the range's rows and no others, so the filter can be
// skipped.
func (i *Index) rangeSpan(ctx *sql.Context, r sql.MySQLRange) (start, end []byte, exact bool, err error) {
	prefix := i.keyPrefix()
	for j, ce := range r {
		if j >= len(i.ords) {
			return prefix, keys.PrefixEnd(prefix), unconstrained(r[j:]), nil
		}
		col := i.t.m.schema[i.ords[j]]
		var pl uint16
		if j < len(i.prefix) {
			pl = i.prefix[j]
		}
		if pt, isNull, ok := pointOf(ce); ok {
			if isNull {
				prefix = keys.AppendNull(prefix)
				continue
			}
			k, ok, err := keyFor(ctx, col.Type, pt, pl)
			if err != nil {
				return nil, nil, false, err
			}
			if !ok {
				// The value has no exact representation in the column's
				// type (2.5 for an INT column): nothing equals it.
				return prefix, prefix, true, nil
			}
			prefix = append(prefix, k...)
			if pl > 0 {
				// A prefix column matches more than its value, and cannot
				// narrow the columns after it.
				return prefix, keys.PrefixEnd(prefix), false, nil
			}
			continue
		}
		var loExact, hiExact bool
		start, loExact, err = lowerKey(ctx, prefix, col.Type, ce.LowerBound, pl)
		if err != nil {
			return nil, nil, false, err
		}
		end, hiExact, err = upperKey(ctx, prefix, col.Type, ce.UpperBound, pl)
		return start, end, loExact && hiExact && pl == 0 && unconstrained(r[j+1:]), err
	}
	return prefix, keys.PrefixEnd(prefix), true, nil
}

// unconstrained reports whether column ranges admit every value, NULL
// included.
func unconstrained(r []sql.MySQLRangeColumnExpr) bool {
	for _, ce := range r {
		if _, ok := ce.LowerBound.(sql.BelowNull); !ok {
			return false
		}
		if _, ok := ce.UpperBound.(sql.AboveAll); !ok {
			return false
		}
	}
	return true
}

// pointOf reports whether a column range is a single value ([v, v] or the
// NULL point).
func pointOf(ce sql.MySQLRangeColumnExpr) (v interface{}, isNull, ok bool) {
	switch lo := ce.LowerBound.(type) {
	case sql.BelowNull:
		if _, ok := ce.UpperBound.(sql.AboveNull); ok {
			return nil, true, true
		}
	case sql.Below:
		if hi, ok := ce.UpperBound.(sql.Above); ok {
			if c, err := ce.Typ.Compare(nil, lo.Key, hi.Key); err == nil && c == 0 {
				return lo.Key, false, true
			}
		}
	}
	return nil, false, false
}

// keyFor converts a range value to the column's type and encodes it;
// exact is false when the conversion changed the value.
func keyFor(ctx *sql.Context, typ sql.Type, v interface{}, prefixLen uint16) ([]byte, bool, error) {
	cv, inRange, err := typ.Convert(ctx, v)
	if err != nil || inRange != sql.InRange {
		return nil, false, nil
	}
	if c, err := typ.Compare(ctx, cv, v); err != nil || c != 0 {
		return nil, false, nil
	}
	k, err := appendKeyValue(nil, typ, cv, prefixLen)
	if err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// lowerKey is the first key of a lower bound. When a bound value has no
// exact key, the bound is dropped (widened) and exact is false: the row
// filter decides.
func lowerKey(ctx *sql.Context, prefix []byte, typ sql.Type, cut sql.MySQLRangeCut, pl uint16) ([]byte, bool, error) {
	afterNull := func() []byte { return keys.PrefixEnd(keys.AppendNull(append([]byte(nil), prefix...))) }
	switch c := cut.(type) {
	case sql.BelowNull:
		return prefix, true, nil
	case sql.AboveNull:
		return afterNull(), true, nil
	case sql.Below:
		k, ok, err := keyFor(ctx, typ, c.Key, pl)
		if err != nil || !ok {
			return afterNull(), false, err
		}
		return append(append([]byte(nil), prefix...), k...), true, nil
	case sql.Above:
		k, ok, err := keyFor(ctx, typ, c.Key, pl)
		if err != nil || !ok {
			return afterNull(), false, err
		}
		if pl > 0 {
			return append(append([]byte(nil), prefix...), k...), false, nil
		}
		return keys.PrefixEnd(append(append([]byte(nil), prefix...), k...)), true, nil
	}
	return prefix, false, nil
}

func upperKey(ctx *sql.Context, prefix []byte, typ sql.Type, cut sql.MySQLRangeCut, pl uint16) ([]byte, bool, error) {
	switch c := cut.(type) {
	case sql.AboveAll:
		return keys.PrefixEnd(prefix), true, nil
	case sql.AboveNull:
		return keys.PrefixEnd(keys.AppendNull(append([]byte(nil), prefix...))), true, nil
	case sql.Above:
		k, ok, err := keyFor(ctx, typ, c.Key, pl)
		if err != nil || !ok {
			return keys.PrefixEnd(prefix), false, err
		}
		return keys.PrefixEnd(append(append([]byte(nil), prefix...), k...)), true, nil
	case sql.Below:
		k, ok, err := keyFor(ctx, typ, c.Key, pl)
		if err != nil || !ok {
			return keys.PrefixEnd(prefix), false, err
		}
		if pl > 0 {
			return keys.PrefixEnd(append(append([]byte(nil), prefix...), k...)), false, nil
		}
		return append(append([]byte(nil), prefix...), k...), true, nil
	}
	return keys.PrefixEnd(prefix), false, nil
}
