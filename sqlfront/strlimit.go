package sqlfront

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/expression"
	"github.com/dolthub/go-mysql-server/sql/expression/function"
	"github.com/shopspring/decimal"
)

// MySQL answers NULL with warning 1301 when a string function's result
// would be longer than max_allowed_packet. The engine builds whatever it is
// asked for (space(4294967295) is 4 GiB), so fogdb registers its own
// instances of the string-building functions: each evaluates its
// arguments, predicts the result's size from them and refuses before
// building it; the built result is checked too, for the functions whose
// size cannot be told in advance.

const erWarnAllowedPacketOverflowed = 1301

// resultSize predicts the byte length of a function's result from its
// evaluated arguments. Predictions may err high only where MySQL's own do
// (it counts characters at their widest).
type resultSize func(args []any) float64

// boundedFuncs are the string-building functions, with a prediction where
// the result can outgrow its arguments by more than a constant factor.
var boundedFuncs = map[string]resultSize{
	"space":  func(a []any) float64 { return argInt(a, 0) },
	"repeat": func(a []any) float64 { return argLen(a, 0) * argInt(a, 1) },
	"lpad":   padSize,
	"rpad":   padSize,
	"concat": func(a []any) float64 {
		n := 0.0
		for i := range a {
			n += argLen(a, i)
		}
		return n
	},
	"concat_ws": func(a []any) float64 {
		n := 0.0
		for i := 1; i < len(a); i++ {
			if a[i] != nil {
				n += argLen(a, i) + argLen(a, 0)
			}
		}
		return n
	},
	"replace": func(a []any) float64 {
		s, from, to := argStr(a, 0), argStr(a, 1), argStr(a, 2)
		if from == "" || len(to) <= len(from) {
			return float64(len(s))
		}
		return float64(len(s)) + float64(strings.Count(s, from))*float64(len(to)-len(from))
	},
	"to_base64": func(a []any) float64 { n := argLen(a, 0); return math.Ceil(n/3)*4 + n/57 },
	"hex":       func(a []any) float64 { return 2 * argLen(a, 0) },
	"format": func(a []any) float64 {
		return argLen(a, 0)*4/3 + math.Min(math.Max(argInt(a, 1), 0), 30) + 2
	},
	// The rest stay within a small factor of their arguments; their result
	// is checked once built.
	"char": nil, "lower": nil, "upper": nil, "lcase": nil, "ucase": nil,
	"quote": nil, "regexp_replace": nil, "from_base64": nil, "unhex": nil,
	"compress": nil, "uncompress": nil,
}

// padSize predicts lpad and rpad: the result is len characters, each as
// wide as the widest of the string and the padding.
func padSize(a []any) float64 {
	n := argInt(a, 1)
	if n <= 0 {
		return 0
	}
	s, pad := argStr(a, 0), argStr(a, 2)
	w := 1.0
	if !isASCII(s) || !isASCII(pad) {
		w = utf8.UTFMax
	}
	if float64(utf8.RuneCountInString(s)) >= n {
		return float64(len(s))
	}
	return n * w
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func argStr(a []any, i int) string {
	if i >= len(a) || a[i] == nil {
		return ""
	}
	switch v := a[i].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// argLen is the byte length of argument i as a string, without converting
// strings.
func argLen(a []any, i int) float64 {
	if i >= len(a) || a[i] == nil {
		return 0
	}
	switch v := a[i].(type) {
	case string:
		return float64(len(v))
	case []byte:
		return float64(len(v))
	default:
		return float64(len(fmt.Sprint(v)))
	}
}

// argInt reads a count argument as a float, so that counts beyond int64
// compare as the large numbers they are.
func argInt(a []any, i int) float64 {
	if i >= len(a) || a[i] == nil {
		return 0
	}
	switch v := a[i].(type) {
	case int8:
		return float64(v)
	case int16:
		return float64(v)
	case int32:
		return float64(v)
	case int64:
		return float64(v)
	case int:
		return float64(v)
	case uint8:
		return float64(v)
	case uint16:
		return float64(v)
	case uint32:
		return float64(v)
	case uint64:
		return float64(v)
	case float32:
		return float64(v)
	case float64:
		return v
	case decimal.Decimal:
		f, _ := v.Float64()
		return f
	case bool:
		if v {
			return 1
		}
		return 0
	default:
		f, err := strconv.ParseFloat(strings.TrimSpace(argStr(a, i)), 64)
		if err != nil {
			return 0
		}
		return f
	}
}

// maxAllowedPacket is the session's max_allowed_packet.
func maxAllowedPacket(ctx *sql.Context) int64 {
	v, err := ctx.GetSessionVariable(ctx, "max_allowed_packet")
	if err != nil {
		return DefaultMaxAllowedPacket
	}
	switch n := v.(type) {
	case int64:
		return n
	case uint64:
		return int64(n)
	case int:
		return int64(n)
	}
	return DefaultMaxAllowedPacket
}

// Function implements sql.FunctionProvider: fogdb's own instances of the
// string-building functions and of LOAD_FILE (files.go); the engine's
// built-ins otherwise.
func (p *Provider) Function(_ *sql.Context, name string) (sql.Function, bool) {
	name = strings.ToLower(name)
	if name == "load_file" {
		return p.loadFileFunction(), true
	}
	return boundedFunction(name)
}

// boundedFunction returns fogdb's instance of a string-building function.
func boundedFunction(name string) (sql.Function, bool) {
	size, ok := boundedFuncs[name]
	if !ok {
		return nil, false
	}
	var builtin sql.Function
	for _, f := range function.BuiltIns {
		if f.FunctionName() == name {
			builtin = f
			break
		}
	}
	if builtin == nil {
		return nil, false
	}
	return sql.FunctionN{Name: name, Fn: func(args ...sql.Expression) (sql.Expression, error) {
		inner, err := builtin.NewInstance(args)
		if err != nil {
			return nil, err
		}
		return &packetBounded{inner: inner, name: name, size: size}, nil
	}}, true
}

// packetBounded is a string function whose result may not exceed
// max_allowed_packet.
type packetBounded struct {
	inner sql.Expression
	name  string
	size  resultSize
}

var (
	_ sql.FunctionExpression = (*packetBounded)(nil)
	_ sql.CollationCoercible = (*packetBounded)(nil)
)

func (p *packetBounded) Resolved() bool             { return p.inner.Resolved() }
func (p *packetBounded) String() string             { return p.inner.String() }
func (p *packetBounded) Type() sql.Type             { return p.inner.Type() }
func (p *packetBounded) IsNullable() bool           { return true }
func (p *packetBounded) Children() []sql.Expression { return p.inner.Children() }
func (p *packetBounded) FunctionName() string       { return p.name }
func (p *packetBounded) Description() string        { return describe(p.inner) }
func (p *packetBounded) DebugString() string        { return sql.DebugString(p.inner) }
func (p *packetBounded) Unwrap() sql.Expression     { return p.inner }
func (p *packetBounded) CollationCoercibility(ctx *sql.Context) (sql.CollationID, byte) {
	if cc, ok := p.inner.(sql.CollationCoercible); ok {
		return cc.CollationCoercibility(ctx)
	}
	return sql.GetCoercibility(ctx, p.inner)
}

func describe(e sql.Expression) string {
	if f, ok := e.(sql.FunctionExpression); ok {
		return f.Description()
	}
	return ""
}

func (p *packetBounded) WithChildren(children ...sql.Expression) (sql.Expression, error) {
	inner, err := p.inner.WithChildren(children...)
	if err != nil {
		return nil, err
	}
	return &packetBounded{inner: inner, name: p.name, size: p.size}, nil
}

func (p *packetBounded) Eval(ctx *sql.Context, row sql.Row) (any, error) {
	limit := maxAllowedPacket(ctx)
	children := p.inner.Children()
	inner := p.inner
	if p.size != nil && len(children) > 0 {
		// Arguments are evaluated once, here, and handed to the engine's
		// function as literals: a subquery or RAND() among them is not run
		// twice.
		args := make([]any, len(children))
		lits := make([]sql.Expression, len(children))
		for i, c := range children {
			v, err := c.Eval(ctx, row)
			if err != nil {
				return nil, err
			}
			args[i] = v
			lits[i] = expression.NewLiteral(v, c.Type())
		}
		if p.size(args) > float64(limit) {
			return p.overflow(ctx, limit), nil
		}
		var err error
		if inner, err = p.inner.WithChildren(lits...); err != nil {
			return nil, err
		}
		row = nil
	}
	v, err := inner.Eval(ctx, row)
	if err != nil {
		return nil, err
	}
	var n int
	switch s := v.(type) {
	case string:
		n = len(s)
	case []byte:
		n = len(s)
	}
	if int64(n) > limit {
		return p.overflow(ctx, limit), nil
	}
	return v, nil
}

func (p *packetBounded) overflow(ctx *sql.Context, limit int64) any {
	ctx.Warn(erWarnAllowedPacketOverflowed, "Result of %s() was larger than max_allowed_packet (%d) - truncated", p.name, limit)
	return nil
}

var _ sql.FunctionProvider = (*Provider)(nil)
