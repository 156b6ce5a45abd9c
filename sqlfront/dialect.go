package sqlfront

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/analyzer"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/transform"
	vtrpcpb "github.com/dolthub/vitess/go/vt/proto/vtrpc"
	ast "github.com/dolthub/vitess/go/vt/sqlparser"
	"github.com/dolthub/vitess/go/vt/vterrors"
)

// MySQL lets every keyword it does not reserve serve as an identifier
// unquoted (CREATE TABLE t (shared BOOL, status INT, comment TEXT)). The
// engine's parser (vitess' grammar) reads several hundred such words as
// keywords and takes only some of them, in some positions, as names: a
// table, column, index, constraint, database or alias so named fails with
// 1064. And it reads words MySQL does not know at all (SHARED, ENCRYPTED,
// VECTOR) as keywords too.
//
// Rather than patch the grammar, sqlfront parses through dialectParser:
// the engine's parser first, unchanged, so a statement it takes costs
// nothing more than a scan of its text for four words (below). When it fails
// with a syntax error, the nearest word among the token the parser stopped
// at and the few before it (a keyword that begins a clause, NEXT, FULL,
// STDDEV, is rejected only a token or two later) that is a keyword to the
// parser and a word MySQL does not reserve is quoted, and the statement is
// parsed again, for as long as each attempt gets at least as far. A word
// right after a period qualifying a name is a name to MySQL even when
// reserved (t.select), and is quoted likewise. A reserved word is never
// quoted elsewhere: it fails with 1064 unquoted, as in MySQL.
//
// The parser reports its positions, and the AST holds offsets, in the text
// it was given; those are mapped back onto the client's text, so result
// column names, view and routine bodies and error positions all refer to
// what the client sent. A statement that still fails reports where the
// parser got furthest.
//
// The mirror cases: the grammar takes a reserved word unquoted in an INSERT
// column list, where MySQL does not (reservedInsertColumn refuses it); and
// it reads FULL JOIN and the SQL_CACHE option, which MySQL 8 does not have,
// where MySQL reads names (alienKeywords), which the text is scanned for.
//
// mysqlReserved is MySQL 8.0.31's list of reserved words (testdata/
// mysql80_keywords.txt holds the whole keyword table, with its source;
// TestReservedWordsMatchMySQL keeps the two equal).
var mysqlReserved = wordSet(`
accessible add all alter analyze and as asc asensitive before between
bigint binary blob both by call cascade case change char character
check collate column condition constraint continue convert create
cross cube cume_dist current_date current_time current_timestamp
current_user cursor database databases day_hour day_microsecond
day_minute day_second dec decimal declare default delayed delete
dense_rank desc describe deterministic distinct distinctrow div
double drop dual each else elseif empty enclosed escaped except
exists exit explain false fetch first_value float float4 float8 for
force foreign from fulltext function generated get grant group
grouping groups having high_priority hour_microsecond hour_minute
hour_second if ignore in index infile inner inout insensitive insert
int int1 int2 int3 int4 int8 integer intersect interval into
io_after_gtids io_before_gtids is iterate join json_table key keys
kill lag last_value lateral lead leading leave left like limit linear
lines load localtime localtimestamp lock long longblob longtext loop
low_priority master_bind master_ssl_verify_server_cert match maxvalue
mediumblob mediumint mediumtext middleint minute_microsecond
minute_second mod modifies natural no_write_to_binlog not nth_value
ntile null numeric of on optimize optimizer_costs option optionally
or order out outer outfile over partition percent_rank precision
primary procedure purge range rank read read_write reads real
recursive references regexp release rename repeat replace require
resignal restrict return revoke right rlike row row_number rows
schema schemas second_microsecond select sensitive separator set show
signal smallint spatial specific sql sql_big_result
sql_calc_found_rows sql_small_result sqlexception sqlstate sqlwarning
ssl starting stored straight_join system table terminated then
tinyblob tinyint tinytext to trailing trigger true undo union unique
unlock unsigned update usage use using utc_date utc_time
utc_timestamp values varbinary varchar varcharacter varying virtual
when where while window with write xor year_month zerofill
`)

func wordSet(words string) map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// parserKeywords is every word the engine's tokenizer reads as a keyword,
// lower-cased. The tokenizer's table is not exported, but its reverse,
// from token number to word, is; token numbers are goyacc's, from
// yyPrivate up.
var parserKeywords = func() map[string]bool {
	m := make(map[string]bool)
	for id := 57344; id < 57344+4096; id++ {
		if w := ast.KeywordString(id); w != "" {
			m[strings.ToLower(w)] = true
		}
	}
	return m
}()

// ParserKeywords lists the words the engine's parser reads as keywords.
func ParserKeywords() []string {
	out := make([]string, 0, len(parserKeywords))
	for w := range parserKeywords {
		out = append(out, w)
	}
	sort.Strings(out)
	return out
}

// IsReservedWord reports whether MySQL 8.0 reserves word.
func IsReservedWord(word string) bool { return mysqlReserved[strings.ToLower(word)] }

// quotable reports whether a bare word may be quoted to make it a name:
// a keyword to the parser that MySQL does not reserve. A word starting
// with an underscore is a character set introducer (_utf8mb4) to MySQL's
// lexer as to the engine's, never a name.
func quotable(w string) bool {
	w = strings.ToLower(w)
	return w != "" && w[0] != '_' && parserKeywords[w] && !mysqlReserved[w]
}

func init() {
	// The engine, its analyzer, and the code that reloads stored views,
	// triggers, routines, checks and defaults all parse through
	// sql.GlobalParser (the engine copies it when it is made).
	sql.GlobalParser = dialectParser{}
	// The engine refuses ON DELETE / ON UPDATE SET DEFAULT, which InnoDB
	// does not implement, only when its parser is its own MySQL parser
	// type; the same refusal, for any parser.
	analyzer.OnceBeforeDefault = append([]analyzer.Rule{{Id: setDefaultRuleID, Apply: refuseSetDefault}}, analyzer.OnceBeforeDefault...)
}

const setDefaultRuleID analyzer.RuleId = 1<<20 + 2

func refuseSetDefault(ctx *sql.Context, _ *analyzer.Analyzer, n sql.Node, _ *plan.Scope, _ analyzer.RuleSelector, _ *sql.QueryFlags) (sql.Node, transform.TreeIdentity, error) {
	var err error
	check := func(fk *sql.ForeignKeyConstraint) {
		if fk != nil && (fk.OnUpdate == sql.ForeignKeyReferentialAction_SetDefault || fk.OnDelete == sql.ForeignKeyReferentialAction_SetDefault) {
			err = sql.ErrForeignKeySetDefault.New()
		}
	}
	transform.Inspect(n, func(n sql.Node) bool {
		switch n := n.(type) {
		case *plan.CreateTable:
			for _, fk := range n.ForeignKeys() {
				check(fk)
			}
		case *plan.CreateForeignKey:
			check(n.FkDef)
		}
		return err == nil
	})
	return n, transform.SameTree, err
}

// Parser returns the parser fogdb's engine uses.
func Parser() sql.Parser { return dialectParser{} }

// dialectParser is the engine's MySQL parser with MySQL's rule for
// non-reserved keywords (see above).
type dialectParser struct{ base sql.MysqlParser }

var _ sql.Parser = dialectParser{}

func (p dialectParser) ParseSimple(query string) (ast.Statement, error) {
	stmt, _, err := parseDialect(query, ast.ParserOptions{}, false)
	return stmt, err
}

func (p dialectParser) Parse(ctx *sql.Context, query string, multi bool) (ast.Statement, string, string, error) {
	return p.ParseWithOptions(ctx, query, ';', multi, sql.LoadSqlMode(ctx).ParserOptions())
}

// ParseWithOptions is the engine's, but for the parse itself.
func (p dialectParser) ParseWithOptions(ctx context.Context, query string, delimiter rune, multi bool, options ast.ParserOptions) (ast.Statement, string, string, error) {
	s := sql.RemoveSpaceAndDelimiter(query, delimiter)
	if !multi {
		stmt, _, err := parseDialect(s, options, false)
		return stmt, s, "", err
	}
	stmt, ri, err := parseDialect(s, options, true)
	parsed, remainder := s, ""
	if ri != 0 && ri < len(s) {
		parsed = sql.RemoveSpaceAndDelimiter(s[:ri], delimiter)
		remainder = s[ri:]
	}
	return stmt, parsed, remainder, err
}

func (p dialectParser) ParseOneWithOptions(ctx context.Context, query string, options ast.ParserOptions) (ast.Statement, int, error) {
	return parseDialect(query, options, true)
}

// maxRequotes bounds the attempts at one statement.
const maxRequotes = 256

// parseDialect parses s (its first statement only when one is set, then
// returning where the next starts, as ast.ParseOneWithOptions does).
func parseDialect(s string, opts ast.ParserOptions, one bool) (ast.Statement, int, error) {
	stmt, next, _, err := parseDialectText(s, opts, one)
	return stmt, next, err
}

// DialectText returns the text of the statement q that the engine's
// parser takes as MySQL takes q (q itself, or q with names quoted), or
// the syntax error MySQL would report. The server rewrites prepared
// statements with it: the protocol code parses those itself.
func DialectText(q string, opts ast.ParserOptions) (string, error) {
	_, _, text, err := parseDialectText(q, opts, false)
	if err != nil {
		return q, err
	}
	return text, nil
}

// parseDialectText is parseDialect, also returning the text parsed.
func parseDialectText(s string, opts ast.ParserOptions, one bool) (ast.Statement, int, string, error) {
	parse := func(q string) (ast.Statement, int, error) {
		if one {
			return ast.ParseOneWithOptions(context.Background(), q, opts)
		}
		stmt, err := ast.ParseWithOptions(context.Background(), q, opts)
		return stmt, len(q), err
	}
	stmt, next, err := parse(s)
	var alien map[string]bool
	if err == nil && (containsFold(s, "full") || containsFold(s, "sql_cache")) {
		alien = alienKeywords(stmt)
	}
	if err == nil && alien == nil {
		if pos, w, bad := reservedInsertColumn(s, stmt, opts); bad {
			return nil, 0, s, syntaxError(fmt.Sprintf("syntax error at position %d near '%s'", pos, w), pos, s)
		}
		return stmt, next, s, nil
	}
	if err == nil {
		// Words the parser took as keywords MySQL 8 does not have are
		// names: quote them all and parse again. FULL OUTER JOIN, which
		// MySQL refuses, stays the engine's full join.
		q, qm := s, quoteMap{}
		toks := tokens(s, opts, -1)
		for i, t := range toks {
			w, ok := bareWord(s, t.start, t.end)
			if !ok || !alien[strings.ToLower(w)] {
				continue
			}
			if i+1 < len(toks) && strings.EqualFold(w, "full") {
				if next, ok := bareWord(s, toks[i+1].start, toks[i+1].end); ok && strings.EqualFold(next, "outer") {
					continue
				}
			}
			start, end := qm.cur(t.start), qm.cur(t.start)+len(w)
			q = q[:start] + "`" + w + "`" + q[end:]
			qm.insert(start, end)
		}
		if q == s {
			if pos, w, bad := reservedInsertColumn(s, stmt, opts); bad {
				return nil, 0, s, syntaxError(fmt.Sprintf("syntax error at position %d near '%s'", pos, w), pos, s)
			}
			return stmt, next, s, nil
		}
		return requote(s, q, qm, opts, parse)
	}
	if _, ok := vterrors.AsSyntaxError(err); !ok {
		return nil, 0, s, err
	}
	return requote(s, s, quoteMap{}, opts, parse)
}

// requote parses q, the client's statement s with the names qm lists
// quoted, quoting more while the parser stops at a word it could take as
// a name.
func requote(s, q string, qm quoteMap, opts ast.ParserOptions, parse func(string) (ast.Statement, int, error)) (ast.Statement, int, string, error) {
	stmt, next, err := parse(q)
	var best vterrors.SyntaxError // the furthest the parser got
	for range maxRequotes {
		if err == nil {
			if pos, w, bad := reservedInsertColumn(q, stmt, opts); bad {
				pos = qm.orig(pos)
				return nil, 0, s, syntaxError(fmt.Sprintf("syntax error at position %d near '%s'", pos, w), pos, s)
			}
			qm.restore(s, stmt)
			return stmt, qm.orig(next), q, nil
		}
		se, ok := vterrors.AsSyntaxError(err)
		if !ok {
			return nil, 0, s, err
		}
		at := se.Position - 1
		se.Position = qm.orig(se.Position)
		if best.Message == "" || se.Position > best.Position {
			best = se
		}
		// The nearest word whose quoting gets the parser at least as far:
		// a statement may name two such words that only parse quoted
		// together (SELECT sql_cache FROM sql_cache). Each step quotes one
		// more word, so this ends.
		progressed := false
		for _, c := range requoteCandidates(q, at, opts) {
			q2 := q[:c.start] + "`" + q[c.start:c.end] + "`" + q[c.end:]
			qm2 := qm.clone()
			qm2.insert(c.start, c.end)
			stmt2, next2, err2 := parse(q2)
			if se2, ok := vterrors.AsSyntaxError(err2); err2 != nil && ok && qm2.orig(se2.Position) < se.Position {
				continue
			}
			q, qm, stmt, next, err = q2, qm2, stmt2, next2, err2
			progressed = true
			break
		}
		if !progressed {
			break
		}
	}
	if best.Message == "" {
		return nil, 0, s, err
	}
	// Report where the parser got furthest: where MySQL would have stopped.
	return nil, 0, s, syntaxError(positionRe.ReplaceAllString(best.Message, fmt.Sprintf("at position %d", best.Position)), best.Position, s)
}

var positionRe = regexp.MustCompile(`at position \d+`)

// alienKeywords returns the words the parser read in stmt as keywords of
// a syntax MySQL 8 does not have, where MySQL reads them as names: FULL
// JOIN (t FULL JOIN u joins t, named full, with u), and the SQL_CACHE
// option, gone since MySQL 8.0.3 (SELECT sql_cache + 1 FROM t).
func alienKeywords(stmt ast.Statement) map[string]bool {
	var out map[string]bool
	add := func(w string) {
		if out == nil {
			out = map[string]bool{}
		}
		out[w] = true
	}
	_ = ast.Walk(func(node ast.SQLNode) (bool, error) {
		switch n := node.(type) {
		case *ast.JoinTableExpr:
			if n.Join == ast.FullOuterJoinStr {
				add("full")
			}
		case *ast.Select:
			if n.QueryOpts.SQLCache {
				add("sql_cache")
			}
		}
		return true, nil
	}, stmt)
	return out
}

func syntaxError(msg string, pos int, stmt string) error {
	return vterrors.NewWithCause(vtrpcpb.Code_INVALID_ARGUMENT, msg, vterrors.SyntaxError{Message: msg, Position: pos, Statement: stmt})
}

// token is a token of a statement: its kind (the tokenizer's) and its
// bounds; start is -1 where the token's text is not its value (a quoted
// name, a string) or the tokenizer's position is not in q (inside a /*! */
// comment).
type token struct {
	typ        int
	start, end int
}

// tokens reads q as the parser's tokenizer does, up to and including the
// first token that ends at or after limit (or all of them, for a limit
// below 0).
func tokens(q string, opts ast.ParserOptions, limit int) []token {
	tkn := ast.NewStringTokenizer(q)
	if opts.AnsiQuotes {
		tkn = ast.NewStringTokenizerForAnsiQuotes(q)
	}
	var out []token
	prev := 0
	for len(out) <= len(q) {
		typ, val := tkn.Scan()
		if typ == 0 {
			break
		}
		// The tokenizer has read one character past the token, or past
		// the next one when it looked ahead (FOR, NOT): the token starts
		// at the first character after the previous one that is neither
		// blank nor a comment, and spans its text.
		start := skipBlank(q, prev)
		end := tkn.Position - 1
		switch {
		case val != nil && start+len(val) <= len(q) && strings.EqualFold(q[start:start+len(val)], string(val)):
			end = start + len(val)
		case val == nil && end > start && end <= len(q):
		default:
			start = -1
		}
		if end > len(q) {
			end = len(q)
		}
		out = append(out, token{typ: typ, start: start, end: end})
		prev = end
		if limit >= 0 && end >= limit {
			break
		}
	}
	return out
}

// skipBlank skips spaces and comments, but for a /*! comment, whose text
// the tokenizer reads as tokens.
func skipBlank(q string, i int) int {
	for i < len(q) {
		if strings.HasPrefix(q[i:], "/*!") {
			return i
		}
		j := skipSpaceAndComments(q, i)
		if j == i {
			return i
		}
		i = j
	}
	return i
}

// bareWord returns the word q holds between start and end when it is a
// whole, unquoted word there.
func bareWord(q string, start, end int) (string, bool) {
	if start < 0 || end > len(q) || start >= end {
		return "", false
	}
	if start > 0 && (isWordByte(q[start-1]) || q[start-1] == '`' || q[start-1] == '"' || q[start-1] == '@' || q[start-1] == '$' || q[start-1] >= 0x80) {
		return "", false
	}
	if end < len(q) && (isWordByte(q[end]) || q[end] == '`' || q[end] == '$' || q[end] >= 0x80) {
		return "", false
	}
	for i := start; i < end; i++ {
		if !isWordByte(q[i]) {
			return "", false
		}
	}
	return q[start:end], true
}

// requoteWindow is how many tokens before the one the parser stopped at
// may hold the word it could not take as a name. The parser notices a
// keyword that begins a clause only at the token after it (NEXT FROM);
// one that qualifies a name, where the name or period after it does not
// fit (FULL.FULL.FULL), later still.
const requoteWindow = 4

// requoteCandidates lists the words that may be quoted for a syntax error
// whose failing token ends at at, nearest first: that token and the few
// before it that are keywords to the parser and names to MySQL. Any word
// right after a period qualifying a name is a name to MySQL, reserved or
// not (t.select).
func requoteCandidates(q string, at int, opts ast.ParserOptions) []token {
	toks := tokens(q, opts, at)
	var out []token
	i := len(toks) - 1
	for j := i; j >= 0 && j >= i-requoteWindow; j-- {
		t := toks[j]
		// The parser stopped at this token, or at the end of the text
		// after it.
		if j == i && t.end != at && at < len(q) {
			continue
		}
		w, ok := bareWord(q, t.start, t.end)
		if !ok {
			continue
		}
		afterPeriod := j > 0 && toks[j-1].typ == '.' && toks[j-1].end == t.start
		if quotable(w) || afterPeriod && parserKeywords[strings.ToLower(w)] {
			out = append(out, t)
		}
	}
	return out
}

// quoteMap maps offsets in a statement with inserted backquotes back to
// the statement as sent: at holds the offsets of the inserted characters
// in the current text.
type quoteMap struct{ at []int }

// insert records a pair of backquotes put around q[start:end].
func (m *quoteMap) insert(start, end int) {
	for i, p := range m.at {
		switch {
		case p >= end:
			m.at[i] = p + 2
		case p >= start:
			m.at[i] = p + 1
		}
	}
	m.at = append(m.at, start, end+1)
}

func (m quoteMap) clone() quoteMap { return quoteMap{at: append([]int(nil), m.at...)} }

// cur maps an offset of the original text onto the current one.
func (m *quoteMap) cur(p int) int {
	at := slices.Clone(m.at)
	slices.Sort(at)
	for _, a := range at {
		if a <= p {
			p++
		}
	}
	return p
}

// orig maps an offset of the current text onto the original.
func (m *quoteMap) orig(p int) int {
	n := 0
	for _, a := range m.at {
		if a < p {
			n++
		}
	}
	return p - n
}

// restore moves the offsets the parser left in stmt back onto the
// original text s, and takes each expression's text from there (the
// engine names a result column after it).
func (m *quoteMap) restore(s string, stmt ast.Statement) {
	_ = ast.Walk(func(node ast.SQLNode) (bool, error) {
		switch n := node.(type) {
		case *ast.AliasedExpr:
			if n.EndParsePos > n.StartParsePos {
				start, end := m.orig(n.StartParsePos), m.orig(n.EndParsePos)
				quoted := m.count(n.EndParsePos) > m.count(n.StartParsePos)
				if _, col := n.Expr.(*ast.ColName); !col && quoted && end <= len(s) {
					n.InputExpression = strings.Trim(s[start:end], " \n\t")
				}
				n.StartParsePos, n.EndParsePos = start, end
			}
		case *ast.DDL:
			if n.SubStatementPositionEnd > n.SubStatementPositionStart {
				n.SubStatementPositionStart, n.SubStatementPositionEnd = m.orig(n.SubStatementPositionStart), m.orig(n.SubStatementPositionEnd)
			}
		}
		return true, nil
	}, stmt)
}

// count is the number of inserted characters before p.
func (m *quoteMap) count(p int) int { return p - m.orig(p) }

// reservedInsertColumn finds a reserved word written unquoted in an
// INSERT or REPLACE column list, which the engine's grammar takes and
// MySQL does not, and returns the parser's position for it (one past its
// end). The statement's text is read only when a column so named is
// there at all.
func reservedInsertColumn(q string, stmt ast.Statement, opts ast.ParserOptions) (int, string, bool) {
	if !containsFold(q, "insert") && !containsFold(q, "replace") {
		return 0, "", false
	}
	found := false
	_ = ast.Walk(func(node ast.SQLNode) (bool, error) {
		if ins, ok := node.(*ast.Insert); ok {
			for _, c := range ins.Columns {
				if mysqlReserved[c.Lowered()] {
					found = true
				}
			}
		}
		return !found, nil
	}, stmt)
	if !found {
		return 0, "", false
	}
	toks := tokens(q, opts, -1)
	word := func(t token) string {
		if t.end > len(q) || t.start < 0 {
			return ""
		}
		return strings.ToLower(q[t.start:t.end])
	}
	for i := 0; i < len(toks); i++ {
		if w := word(toks[i]); w != "insert" && w != "replace" || toks[i].typ == ast.ID {
			continue
		}
		// INSERT [LOW_PRIORITY | DELAYED | HIGH_PRIORITY] [IGNORE] [INTO]
		// name [PARTITION (...)] (columns)
		j := i + 1
		for j < len(toks) && strings.Contains(" low_priority delayed high_priority ignore into ", " "+word(toks[j])+" ") {
			j++
		}
		j++ // the table
		if j+1 < len(toks) && toks[j].typ == '.' {
			j += 2
		}
		if j < len(toks) && word(toks[j]) == "partition" {
			for j < len(toks) && toks[j].typ != ')' {
				j++
			}
			j++
		}
		if j >= len(toks) || toks[j].typ != '(' {
			continue
		}
		// A column list, not a query in parentheses (INSERT INTO t
		// (SELECT a, NULL)): its first item is a name and a comma, a
		// period or the closing parenthesis follows.
		item := func(k int) bool {
			return k+1 < len(toks) && (toks[k+1].typ == ',' || toks[k+1].typ == ')' || toks[k+1].typ == '.')
		}
		if !item(j + 1) {
			continue
		}
		for k := j + 1; k < len(toks) && toks[k].typ != ')'; k++ {
			t := toks[k]
			if toks[k-1].typ == '.' || !item(k) || t.typ == ast.ID {
				continue
			}
			if w, ok := bareWord(q, t.start, t.end); ok && mysqlReserved[strings.ToLower(w)] {
				return t.end + 1, w, true
			}
		}
	}
	return 0, "", false
}

// containsFold reports whether s holds word (lower-case ASCII) in any
// case: a test cheaper than walking a statement's AST.
func containsFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		j := 0
		for ; j < len(word); j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != word[j] {
				break
			}
		}
		if j == len(word) {
			return true
		}
	}
	return false
}
