package sqlfront

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/analyzer"
	"github.com/dolthub/go-mysql-server/sql/expression"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/transform"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/vt/proto/query"
	"github.com/shopspring/decimal"
)

// MySQL80SQLMode is MySQL 8.0's default sql_mode.
const MySQL80SQLMode = "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"

// MySQL's codes for values that do not fit their column.
const (
	erWarnDataTruncated    = 1265 // WARN_DATA_TRUNCATED, SQLSTATE 01000
	erWarnDataOutOfRange   = 1264 // ER_WARN_DATA_OUT_OF_RANGE, 22003
	erTruncatedWrongValue  = 1292 // ER_TRUNCATED_WRONG_VALUE, 22007
	erTruncatedWrongForFld = 1366 // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD, HY000
	erDataTooLong          = 1406 // ER_DATA_TOO_LONG, 22001
	erDivisionByZero       = 1365 // ER_DIVISION_BY_ZERO, 22012
)

// sqlMode is what fogdb reads from the session's sql_mode. fogdb's tables
// are all transactional, so STRICT_TRANS_TABLES and STRICT_ALL_TABLES mean
// the same here.
type sqlMode struct {
	strict, divZero, noZeroDate, noZeroInDate bool
}

func loadSQLMode(ctx *sql.Context) sqlMode {
	var m sqlMode
	v, err := ctx.GetSessionVariable(ctx, "sql_mode")
	if err != nil {
		return m
	}
	s, _ := v.(string)
	for _, w := range strings.Split(strings.ToUpper(s), ",") {
		switch strings.TrimSpace(w) {
		case "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES":
			m.strict = true
		case "ERROR_FOR_DIVISION_BY_ZERO":
			m.divZero = true
		case "NO_ZERO_DATE":
			m.noZeroDate = true
		case "NO_ZERO_IN_DATE":
			m.noZeroInDate = true
		case "TRADITIONAL":
			// MySQL expands TRADITIONAL when it is set; the engine keeps
			// the word, so it is expanded here.
			m = sqlMode{strict: true, divZero: true, noZeroDate: true, noZeroInDate: true}
		}
	}
	return m
}

// valueError fails a statement over a value its column refuses: the
// engine's own error (code that matches the engine's error kinds still
// recognises it), with MySQL's code, SQLSTATE and text kept on the session
// for the wire edge (TakeValueError).
func valueError(ctx *sql.Context, engine error, num int, state, format string, args ...any) error {
	if s, ok := ctx.Session.(*Session); ok {
		s.valueErr.Store(&valueErrorText{engine: engine.Error(), num: num, state: state, msg: fmt.Sprintf(format, args...)})
	}
	return engine
}

var errDivisionByZero = fmt.Errorf("Division by 0")

const storeRuleID analyzer.RuleId = 1 << 20

func init() {
	// The rule goes into the engine's last batch, right after the insert's
	// source is given its projection onto the table's columns (and before
	// triggers, which see the stored values, as in MySQL). That batch is
	// also the one the engine runs for single-table INSERT and UPDATE, which
	// skip the rest of the analyzer.
	rules := make([]analyzer.Rule, 0, len(analyzer.OnceAfterAll)+1)
	placed := false
	for _, r := range analyzer.OnceAfterAll {
		rules = append(rules, r)
		if !placed && r.Id.String() == "resolveInsertRows" {
			rules = append(rules, analyzer.Rule{Id: storeRuleID, Apply: applySQLMode})
			placed = true
		}
	}
	if !placed {
		rules = append(rules, analyzer.Rule{Id: storeRuleID, Apply: applySQLMode})
	}
	analyzer.OnceAfterAll = rules
}

// applySQLMode makes the values an INSERT, REPLACE or UPDATE stores in
// fogdb's tables fit their columns as MySQL does under the session's
// sql_mode: the engine fails every value that does not fit, whatever the
// mode.
func applySQLMode(ctx *sql.Context, _ *analyzer.Analyzer, n sql.Node, _ *plan.Scope, _ analyzer.RuleSelector, _ *sql.QueryFlags) (sql.Node, transform.TreeIdentity, error) {
	return transform.Node(n, func(n sql.Node) (sql.Node, transform.TreeIdentity, error) {
		switch n := n.(type) {
		case *plan.InsertInto:
			return fitInsert(n)
		case *plan.Update:
			if !hasFogTable(n) {
				return n, transform.SameTree, nil
			}
			return fitUpdate(n)
		}
		return n, transform.SameTree, nil
	})
}

func isFogTable(t sql.Table) bool {
	switch sql.GetUnderlyingTable(t).(type) {
	case *Table, *IndexedTable:
		return true
	}
	return false
}

func hasFogTable(n sql.Node) bool {
	found := false
	transform.Inspect(n, func(n sql.Node) bool {
		if tn, ok := n.(sql.TableNode); ok && isFogTable(tn.UnderlyingTable()) {
			found = true
		}
		return !found
	})
	return found
}

func fitInsert(ii *plan.InsertInto) (sql.Node, transform.TreeIdentity, error) {
	insertable, err := plan.GetInsertable(ii.Destination)
	if err != nil || !isFogTable(insertable) {
		return ii, transform.SameTree, nil
	}
	proj, ok := ii.Source.(*plan.Project)
	if !ok {
		return ii, transform.SameTree, nil
	}
	for _, e := range proj.Projections {
		if _, done := e.(*storeValue); done {
			return ii, transform.SameTree, nil
		}
	}
	schema := ii.Destination.Schema()
	if len(schema) != len(proj.Projections) {
		return ii, transform.SameTree, nil
	}
	rows := &rowCounter{}
	exprs := make([]sql.Expression, len(proj.Projections))
	for i, e := range proj.Projections {
		exprs[i] = e
		switch e.(type) {
		case *expression.AutoIncrement, *sql.ColumnDefaultValue:
			// The engine finds these by type; their values are the column's
			// own.
			continue
		}
		exprs[i] = &storeValue{child: e, name: schema[i].Name, typ: schema[i].Type, rows: rows, ord: i, ignore: ii.Ignore, notNull: !schema[i].Nullable}
	}
	src, err := proj.WithExpressions(exprs...)
	if err != nil {
		return nil, transform.SameTree, err
	}
	src, _, err = guardDivisions(src, ii.Ignore)
	if err != nil {
		return nil, transform.SameTree, err
	}
	out := ii.WithSource(src)
	if len(out.OnDupExprs) > 0 {
		dup := make([]sql.Expression, len(out.OnDupExprs))
		for i, e := range out.OnDupExprs {
			dup[i] = fitSetField(e, rows, -1, ii.Ignore)
		}
		out.OnDupExprs = dup
	}
	return out, transform.NewTree, nil
}

func fitUpdate(u *plan.Update) (sql.Node, transform.TreeIdentity, error) {
	return transform.Node(u, func(n sql.Node) (sql.Node, transform.TreeIdentity, error) {
		us, ok := n.(*plan.UpdateSource)
		if !ok {
			return n, transform.SameTree, nil
		}
		rows := &rowCounter{}
		exprs := make([]sql.Expression, len(us.UpdateExprs))
		changed := false
		for i, e := range us.UpdateExprs {
			exprs[i] = fitSetField(e, rows, i, us.Ignore || u.Ignore)
			changed = changed || exprs[i] != e
		}
		if !changed {
			return n, transform.SameTree, nil
		}
		return plan.NewUpdateSource(us.Child, us.Ignore, exprs), transform.NewTree, nil
	})
}

// fitSetField wraps the value of SET col = value.
func fitSetField(e sql.Expression, rows *rowCounter, ord int, ignore bool) sql.Expression {
	sf, ok := e.(*expression.SetField)
	if !ok {
		return e
	}
	gf, ok := sf.LeftChild.(*expression.GetField)
	if !ok {
		return e
	}
	if _, done := sf.RightChild.(*storeValue); done {
		return e
	}
	right, _, err := transform.Expr(sf.RightChild, divGuard(ignore))
	if err != nil {
		return e
	}
	return expression.NewSetField(gf, &storeValue{child: right, name: gf.Name(), typ: gf.Type(), rows: rows, ord: ord, ignore: ignore})
}

// guardDivisions wraps every division of the node's expressions, so that a
// division by zero fails the statement where MySQL's mode says it does.
func guardDivisions(n sql.Node, ignore bool) (sql.Node, transform.TreeIdentity, error) {
	return transform.NodeExprs(n, divGuard(ignore))
}

func divGuard(ignore bool) transform.ExprFunc {
	return func(e sql.Expression) (sql.Expression, transform.TreeIdentity, error) {
		switch e.(type) {
		case *expression.Div, *expression.IntDiv, *expression.Mod:
			return &divCheck{child: e, ignore: ignore}, transform.NewTree, nil
		}
		return e, transform.SameTree, nil
	}
}

// divCheck fails a division by zero in a data change when the mode is
// strict and has ERROR_FOR_DIVISION_BY_ZERO; otherwise the engine's NULL
// and its warning 1365 stand, as in MySQL.
type divCheck struct {
	child  sql.Expression
	ignore bool
}

var _ sql.Expression = (*divCheck)(nil)

func (d *divCheck) Resolved() bool             { return d.child.Resolved() }
func (d *divCheck) String() string             { return d.child.String() }
func (d *divCheck) Type() sql.Type             { return d.child.Type() }
func (d *divCheck) IsNullable() bool           { return d.child.IsNullable() }
func (d *divCheck) Children() []sql.Expression { return []sql.Expression{d.child} }
func (d *divCheck) CollationCoercibility(ctx *sql.Context) (sql.CollationID, byte) {
	return sql.GetCoercibility(ctx, d.child)
}

func (d *divCheck) WithChildren(children ...sql.Expression) (sql.Expression, error) {
	if len(children) != 1 {
		return nil, sql.ErrInvalidChildrenNumber.New(d, len(children), 1)
	}
	return &divCheck{child: children[0], ignore: d.ignore}, nil
}

func (d *divCheck) Eval(ctx *sql.Context, row sql.Row) (interface{}, error) {
	before := ctx.Session.WarningCount()
	v, err := d.child.Eval(ctx, row)
	if err != nil || v != nil || ctx.Session.WarningCount() <= before {
		return v, err
	}
	w := ctx.Session.Warnings()
	if len(w) == 0 || w[0].Code != erDivisionByZero {
		return v, nil
	}
	m := loadSQLMode(ctx)
	switch {
	case m.strict && m.divZero && !d.ignore:
		return nil, valueError(ctx, errDivisionByZero, erDivisionByZero, "22012", "Division by 0")
	case !m.divZero:
		// Without ERROR_FOR_DIVISION_BY_ZERO MySQL stores NULL silently;
		// the engine has warned, so its warning is taken back.
		ctx.Session.ClearWarnings()
		for i := len(w) - 1; i > 0; i-- {
			ctx.Session.Warn(w[i])
		}
	}
	return v, nil
}

// rowCounter numbers the rows of one statement for MySQL's "at row N":
// the values of a row are fitted in column order, so a column at or before
// the last one fitted starts the next row.
type rowCounter struct {
	row, last int
	query     time.Time
	pid       uint64
	// nullCol is the first NOT NULL column of the current row given NULL:
	// MySQL reports it before a later column's value that does not fit.
	nullCol string
	// mode is the session's sql_mode, read once per run.
	mode sqlMode
}

func (c *rowCounter) next(ctx *sql.Context, ord int) int {
	// A plan may run more than once (prepared statements); each run
	// numbers its rows from 1.
	if qt := ctx.QueryTime(); !qt.Equal(c.query) || ctx.Pid() != c.pid {
		c.row, c.last, c.query, c.pid = 0, -1, qt, ctx.Pid()
		c.mode = loadSQLMode(ctx)
	}
	if ord < 0 { // ON DUPLICATE KEY UPDATE: the row being inserted
		if c.row == 0 {
			return 1
		}
		return c.row
	}
	if c.row == 0 || ord <= c.last {
		c.row++
		c.nullCol = ""
	}
	c.last = ord
	return c.row
}

// storeValue makes a value fit the column it is stored in.
type storeValue struct {
	child   sql.Expression
	name    string
	typ     sql.Type
	rows    *rowCounter
	ord     int
	ignore  bool
	notNull bool
}

var _ sql.Expression = (*storeValue)(nil)

func (s *storeValue) Resolved() bool             { return s.child.Resolved() }
func (s *storeValue) String() string             { return s.child.String() }
func (s *storeValue) Type() sql.Type             { return s.child.Type() }
func (s *storeValue) IsNullable() bool           { return s.child.IsNullable() }
func (s *storeValue) Children() []sql.Expression { return []sql.Expression{s.child} }
func (s *storeValue) CollationCoercibility(ctx *sql.Context) (sql.CollationID, byte) {
	return sql.GetCoercibility(ctx, s.child)
}

func (s *storeValue) WithChildren(children ...sql.Expression) (sql.Expression, error) {
	if len(children) != 1 {
		return nil, sql.ErrInvalidChildrenNumber.New(s, len(children), 1)
	}
	c := *s
	c.child = children[0]
	return &c, nil
}

func (s *storeValue) Eval(ctx *sql.Context, row sql.Row) (interface{}, error) {
	v, err := s.child.Eval(ctx, row)
	n := s.rows.next(ctx, s.ord)
	if err != nil {
		return v, err
	}
	if v == nil {
		if s.notNull && s.rows.nullCol == "" {
			s.rows.nullCol = s.name
		}
		return nil, nil
	}
	m := s.rows.mode
	f := fitter{ctx: ctx, col: s.name, row: n, strict: m.strict && !s.ignore, mode: m}
	out, err := f.fit(s.typ, v)
	if err != nil && s.rows.nullCol != "" {
		return nil, sql.ErrInsertIntoNonNullableProvidedNull.New(s.rows.nullCol)
	}
	return out, err
}

// fitter fits one value into one column of one row.
type fitter struct {
	ctx    *sql.Context
	col    string
	row    int
	strict bool
	mode   sqlMode
}

// problem reports a value MySQL refuses in strict mode and accepts, as
// changed, with a warning otherwise.
func (f fitter) problem(engine error, code int, state, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if f.strict {
		return valueError(f.ctx, engine, code, state, "%s", msg)
	}
	f.warn("Warning", code, msg)
	return nil
}

func (f fitter) warn(level string, code int, msg string) {
	f.ctx.Session.Warn(&sql.Warning{Level: level, Code: code, Message: msg})
}

func (f fitter) truncated() string {
	return fmt.Sprintf("Data truncated for column '%s' at row %d", f.col, f.row)
}

func (f fitter) outOfRange() string {
	return fmt.Sprintf("Out of range value for column '%s' at row %d", f.col, f.row)
}

func (f fitter) fit(t sql.Type, v interface{}) (interface{}, error) {
	switch t.Type() {
	case query.Type_BIT:
		return f.fitBit(t, v)
	case query.Type_YEAR:
		return f.fitYear(t, v)
	case query.Type_TIME:
		return f.fitTime(t, v)
	case query.Type_ENUM:
		return f.fitEnum(t, v)
	case query.Type_SET:
		return f.fitSet(t, v)
	}
	switch {
	case types.IsInteger(t) || types.IsFloat(t) || types.IsDecimal(t):
		return f.fitNumber(t, v)
	case types.IsText(t) || types.IsBinaryType(t):
		return f.fitString(t, v)
	}
	if _, ok := t.(sql.DatetimeType); ok {
		return f.fitDatetime(t, v)
	}
	return v, nil
}

var numericPrefix = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?`)

func (f fitter) fitNumber(t sql.Type, v interface{}) (interface{}, error) {
	var d decimal.Decimal
	switch x := v.(type) {
	case string:
		var err error
		if d, err = f.parseNumber(t, x); err != nil {
			return nil, err
		}
	case []byte:
		// A binary string (a hex literal, a BINARY column) is a number
		// in the engine's and MySQL's numeric context.
		return v, nil
	case int:
		d = decimal.NewFromInt(int64(x))
	case int8:
		d = decimal.NewFromInt(int64(x))
	case int16:
		d = decimal.NewFromInt(int64(x))
	case int32:
		d = decimal.NewFromInt(int64(x))
	case int64:
		d = decimal.NewFromInt(x)
	case uint:
		d = decUint(uint64(x))
	case uint8:
		d = decUint(uint64(x))
	case uint16:
		d = decUint(uint64(x))
	case uint32:
		d = decUint(uint64(x))
	case uint64:
		d = decUint(x)
	case float32:
		return f.fitFloat(t, float64(x))
	case float64:
		return f.fitFloat(t, x)
	case decimal.Decimal:
		d = x
	case decimal.NullDecimal:
		if !x.Valid {
			return nil, nil
		}
		d = x.Decimal
	case bool:
		if x {
			d = decimal.NewFromInt(1)
		}
	default:
		return v, nil
	}
	return f.fitDecimal(t, d)
}

// parseNumber reads a string as MySQL does when storing it in a numeric
// column: its longest numeric prefix, with a warning for what is left.
func (f fitter) parseNumber(t sql.Type, s string) (decimal.Decimal, error) {
	trimmed := strings.TrimSpace(s)
	p := numericPrefix.FindString(trimmed)
	if p == "" {
		if types.IsFloat(t) {
			return decimal.Zero, f.problem(sql.ErrInvalidValue.New(s, t.String()), erWarnDataTruncated, "01000", "%s", f.truncated())
		}
		kind := "integer"
		if types.IsDecimal(t) {
			kind = "decimal"
		}
		return decimal.Zero, f.problem(sql.ErrInvalidValue.New(s, t.String()), erTruncatedWrongForFld, "HY000",
			"Incorrect %s value: '%s' for column '%s' at row %d", kind, s, f.col, f.row)
	}
	d, err := decimal.NewFromString(p)
	if err != nil {
		// An exponent beyond any column's range.
		d = decimal.New(1, 400)
		if strings.HasPrefix(p, "-") {
			d = d.Neg()
		}
	}
	if types.IsDecimal(t) {
		// MySQL reads the string as a decimal of up to 81 digits first:
		// in strict mode any trouble there (trailing text, a number too
		// large for a decimal) is 1366; otherwise trailing text is a note,
		// and a number too large is clipped by the column's own check.
		tooLarge := d.Abs().Cmp(maxDecimalString) >= 0
		if (len(p) < len(trimmed) || tooLarge) && f.strict {
			return d, valueError(f.ctx, sql.ErrInvalidValue.New(s, t.String()), erTruncatedWrongForFld, "HY000",
				"Incorrect decimal value: '%s' for column '%s' at row %d", s, f.col, f.row)
		}
		if len(p) < len(trimmed) {
			f.warn("Note", erWarnDataTruncated, f.truncated())
		}
		return d, nil
	}
	if len(p) < len(trimmed) {
		if err := f.problem(sql.ErrInvalidValue.New(s, t.String()), erWarnDataTruncated, "01000", "%s", f.truncated()); err != nil {
			return d, err
		}
	}
	return d, nil
}

// maxDecimalString bounds what MySQL can read as a decimal (81 digits).
var maxDecimalString = decimal.New(1, 81)

func (f fitter) fitFloat(t sql.Type, x float64) (interface{}, error) {
	if math.IsNaN(x) {
		// Only a parameter of the binary protocol can be NaN.
		if err := f.problem(sql.ErrValueOutOfRange.New(x, t), erWarnDataOutOfRange, "22003", "%s", f.outOfRange()); err != nil {
			return nil, err
		}
		x = 0
	}
	if types.IsFloat(t) {
		limit := math.MaxFloat64
		if t.Type() == query.Type_FLOAT32 {
			limit = math.MaxFloat32
		}
		if math.Abs(x) > limit || math.IsInf(x, 0) {
			if err := f.problem(sql.ErrValueOutOfRange.New(x, t), erWarnDataOutOfRange, "22003", "%s", f.outOfRange()); err != nil {
				return nil, err
			}
			x = math.Copysign(limit, x)
		}
		out, _, err := t.Convert(f.ctx, x)
		return out, err
	}
	if math.IsInf(x, 0) {
		return f.fitDecimal(t, decimal.New(int64(math.Copysign(1, x)), 400))
	}
	return f.fitDecimal(t, decimal.NewFromFloat(x))
}

func (f fitter) fitDecimal(t sql.Type, d decimal.Decimal) (interface{}, error) {
	var lo, hi decimal.Decimal
	switch {
	case types.IsFloat(t):
		x, _ := d.Float64()
		return f.fitFloat(t, x)
	case types.IsDecimal(t):
		dt := t.(sql.DecimalType)
		scale := int32(dt.Scale())
		r := d.Round(scale)
		hi = dt.ExclusiveUpperBound().Sub(decimal.New(1, -scale))
		lo = hi.Neg()
		if types.IsUnsigned(t) {
			lo = decimal.Zero
		}
		if !r.Equal(d) && !r.LessThan(lo) && !r.GreaterThan(hi) {
			// MySQL rounds extra fraction digits with a note, in every mode.
			f.warn("Note", erWarnDataTruncated, f.truncated())
		}
		d = r
	default:
		d = d.Round(0)
		lo, hi = intBounds(t)
	}
	if d.LessThan(lo) || d.GreaterThan(hi) {
		engine := sql.ErrValueOutOfRange.New(d.String(), t)
		if types.IsDecimal(t) {
			engine = types.ErrConvertToDecimalLimit.New()
		}
		if err := f.problem(engine, erWarnDataOutOfRange, "22003", "%s", f.outOfRange()); err != nil {
			return nil, err
		}
		if d.LessThan(lo) {
			d = lo
		} else {
			d = hi
		}
	}
	var v interface{} = d
	if types.IsInteger(t) {
		if d.Sign() < 0 {
			v = d.IntPart()
		} else {
			v = d.BigInt().Uint64()
		}
	}
	out, _, err := t.Convert(f.ctx, v)
	return out, err
}

func intBounds(t sql.Type) (lo, hi decimal.Decimal) {
	i := func(v int64) decimal.Decimal { return decimal.NewFromInt(v) }
	switch t.Type() {
	case query.Type_INT8:
		return i(math.MinInt8), i(math.MaxInt8)
	case query.Type_UINT8:
		return i(0), i(math.MaxUint8)
	case query.Type_INT16:
		return i(math.MinInt16), i(math.MaxInt16)
	case query.Type_UINT16:
		return i(0), i(math.MaxUint16)
	case query.Type_INT24:
		return i(-1 << 23), i(1<<23 - 1)
	case query.Type_UINT24:
		return i(0), i(1<<24 - 1)
	case query.Type_INT32:
		return i(math.MinInt32), i(math.MaxInt32)
	case query.Type_UINT32:
		return i(0), i(math.MaxUint32)
	case query.Type_UINT64:
		return i(0), decUint(math.MaxUint64)
	}
	return i(math.MinInt64), i(math.MaxInt64)
}

func (f fitter) fitString(t sql.Type, v interface{}) (interface{}, error) {
	out, _, err := t.Convert(f.ctx, v)
	if err == nil || !types.ErrLengthBeyondLimit.Is(err) {
		return out, err
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		str, _, cerr := types.LongText.Convert(f.ctx, v)
		if cerr != nil {
			return nil, err
		}
		s, _ = str.(string)
	}
	binary := types.IsBinaryType(t)
	st := t.(sql.StringType)
	max := int(st.MaxCharacterLength())
	kept := s
	switch {
	case binary:
		if len(kept) > max {
			kept = kept[:max]
		}
	case types.IsTextBlob(t):
		// A TEXT type's limit is in bytes, whatever the characters.
		if n := int(st.MaxByteLength()); len(kept) > n {
			for n > 0 && !utf8.RuneStart(kept[n]) {
				n--
			}
			kept = kept[:n]
		}
	default:
		if utf8.RuneCountInString(kept) > max {
			kept = string([]rune(kept)[:max])
		}
	}
	for {
		// TEXT limits count bytes of the column's character set: drop
		// characters until the engine takes the value.
		out, _, err = t.Convert(f.ctx, kept)
		if err == nil || !types.ErrLengthBeyondLimit.Is(err) || kept == "" {
			break
		}
		_, size := utf8.DecodeLastRuneInString(kept)
		kept = kept[:len(kept)-size]
	}
	if err != nil {
		return nil, err
	}
	if !binary && strings.Trim(s[len(kept):], " ") == "" {
		// Only trailing spaces lost: MySQL notes it and stores the value.
		f.warn("Note", erWarnDataTruncated, f.truncated())
		return out, nil
	}
	if f.strict {
		return nil, valueError(f.ctx, types.ErrLengthBeyondLimit.New(v, f.col), erDataTooLong, "22001", "Data too long for column '%s' at row %d", f.col, f.row)
	}
	f.warn("Warning", erWarnDataTruncated, f.truncated())
	return out, nil
}

// zeroTime is how the engine holds MySQL's zero date.
var zeroTime = time.Unix(-62167219200, 0).UTC()

func decUint(v uint64) decimal.Decimal { return decimal.NewFromBigInt(new(big.Int).SetUint64(v), 0) }

var zeroDate = regexp.MustCompile(`^0{1,4}-0{1,2}-0{1,2}(?:[ T]0{1,2}:0{1,2}:0{1,2}(?:\.0*)?)?$`)

func (f fitter) fitDatetime(t sql.Type, v interface{}) (interface{}, error) {
	kind := "datetime"
	if t.Type() == query.Type_DATE {
		kind = "date"
	}
	shown := fmt.Sprint(v)
	zero := false
	switch x := v.(type) {
	case string:
		zero = zeroDate.MatchString(strings.TrimSpace(x))
	case time.Time:
		zero = x.Equal(zeroTime)
		shown = x.Format("2006-01-02 15:04:05")
		if kind == "date" {
			shown = x.Format("2006-01-02")
		}
	}
	if zero && f.mode.noZeroDate {
		if f.strict {
			return nil, valueError(f.ctx, types.ErrConvertingToTime.New(v), erTruncatedWrongValue, "22007", "Incorrect %s value: '%s' for column '%s' at row %d", kind, shown, f.col, f.row)
		}
		f.warn("Warning", erWarnDataOutOfRange, f.outOfRange())
	}
	out, _, err := t.Convert(f.ctx, v)
	if err == nil {
		return out, nil
	}
	if f.strict {
		return nil, valueError(f.ctx, err, erTruncatedWrongValue, "22007", "Incorrect %s value: '%s' for column '%s' at row %d", kind, shown, f.col, f.row)
	}
	// A date that reads as one but does not exist (February 30) or is
	// outside TIMESTAMP's range is out of range to MySQL; anything else
	// is a truncation.
	if s, ok := v.(string); ok && wellFormedDate(s) {
		f.warn("Warning", erWarnDataOutOfRange, f.outOfRange())
	} else {
		f.warn("Warning", erWarnDataTruncated, f.truncated())
	}
	return t.Zero(), nil
}

var dateParts = regexp.MustCompile(`^\s*(\d{1,4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d*)?)?)?\s*$`)

// wellFormedDate reports whether s is a date (and time) whose fields are
// each within their range, whether or not the date exists.
func wellFormedDate(s string) bool {
	m := dateParts.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	limits := []int{9999, 12, 31, 23, 59, 59}
	for i, lim := range limits {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.Atoi(m[i+1])
		if err != nil || n > lim || (i == 1 || i == 2) && n == 0 {
			return false
		}
	}
	return true
}
