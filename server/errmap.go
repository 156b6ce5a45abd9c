package server

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/dolthub/vitess/go/mysql"

	"github.com/fogdb/fogdb/sqlfront"
)

// go-mysql-server reports many client errors as ER_UNKNOWN_ERROR (1105)
// with its own wording; by the time an error reaches the handler only the
// text is left. These rules turn each known text into MySQL 8's code,
// SQLSTATE and message, which clients and ORMs branch on. The rules match
// the engine's fixed message formats (go-mysql-server's sql/errors.go).
type errRule struct {
	re    *regexp.Regexp
	num   int
	state string
	// msg builds MySQL's message from the submatches.
	msg func(m []string, env errEnv) string
}

// errEnv is what a rule may need beyond the message.
type errEnv struct {
	db    string // the session's current database
	query string // the statement, when known
	prov  *sqlfront.Provider
}

// isDrop reports whether the statement is a DROP, where MySQL calls a
// missing table ER_BAD_TABLE_ERROR rather than ER_NO_SUCH_TABLE.
func (e errEnv) isDrop() bool {
	q := strings.TrimSpace(e.query)
	return len(q) >= 4 && strings.EqualFold(q[:4], "drop")
}

var errRules = []errRule{
	{regexp.MustCompile(`^command denied to user '(.*)'@'(.*)'$`), erTableAccessDenied, "42000",
		func(m []string, env errEnv) string { return denied(env, m[1], m[2], "") }},
	{regexp.MustCompile(`^Access denied for user '(.*)'@'(.*)' to table '(.*)'$`), erTableAccessDenied, "42000",
		func(m []string, env errEnv) string { return denied(env, m[1], m[2], m[3]) }},
	{regexp.MustCompile(`^Duplicate key name '(.+)'$`), mysql.ERDupKeyName, "42000",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Duplicate key name '%s'", m[1]) }},
	{regexp.MustCompile("^(?:Column \"(.+)\" already exists|duplicate column name: `(.+)`)$"), mysql.ERDupFieldName, "42S21",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Duplicate column name '%s'", m[1]+m[2]) }},
	{regexp.MustCompile(`^Check constraint "(.+)" violated$`), 3819, "HY000",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Check constraint '%s' is violated.", m[1]) }},
	{regexp.MustCompile(`^error: can't drop '(.+)'; check that column/key exists$`), mysql.ERCantDropFieldOrKey, "42000",
		func(m []string, _ errEnv) string {
			return fmt.Sprintf("Can't DROP '%s'; check that column/key exists", m[1])
		}},
	{regexp.MustCompile(`^SAVEPOINT (.+) does not exist$`), 1305, "42000",
		func(m []string, _ errEnv) string { return fmt.Sprintf("SAVEPOINT %s does not exist", m[1]) }},
	{regexp.MustCompile(`(?i)^cannot execute statement in a READ ONLY transaction`), 1792, "25006",
		func([]string, errEnv) string { return "Cannot execute statement in a READ ONLY transaction." }},
	{regexp.MustCompile(`syntax error at position \d+(?: near '(.*)')?`), mysql.ERParseError, "42000",
		func(m []string, _ errEnv) string {
			return fmt.Sprintf("You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '%s' at line 1", m[1])
		}},
	{regexp.MustCompile(`^table not found: (.+)$`), mysql.ERNoSuchTable, "42S02",
		func(m []string, env errEnv) string {
			name := m[1]
			if !strings.Contains(name, ".") && env.db != "" {
				name = env.db + "." + name
			}
			return fmt.Sprintf("Table '%s' doesn't exist", name)
		}},
	{regexp.MustCompile(`^database not found: (.+)$`), mysql.ERBadDb, "42000",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Unknown database '%s'", m[1]) }},
	{regexp.MustCompile(`^column "(.+)" could not be found in any table in scope$`), mysql.ERBadFieldError, "42S22",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Unknown column '%s' in 'field list'", m[1]) }},
	{regexp.MustCompile(`^ambiguous column name "(.+)", it's present in all these tables`), 1052, "23000",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Column '%s' in field list is ambiguous", m[1]) }},
	{regexp.MustCompile(`^function: '(.+)' not found$`), 1305, "42000",
		func(m []string, env errEnv) string {
			if env.db != "" {
				return fmt.Sprintf("FUNCTION %s.%s does not exist", env.db, m[1])
			}
			return fmt.Sprintf("FUNCTION %s does not exist", m[1])
		}},
	{regexp.MustCompile(`^the subquery returned more than 1 row$`), mysql.ERSubqueryNo1Row, "21000",
		func([]string, errEnv) string { return "Subquery returns more than 1 row" }},
	{regexp.MustCompile(`^Field '(.+)' doesn't have a default value$`), mysql.ERNoDefaultForField, "HY000",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Field '%s' doesn't have a default value", m[1]) }},
	{regexp.MustCompile(`^string '(?s:.*)' is too large for column '(.+)'$`), mysql.ERDataTooLong, "22001",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Data too long for column '%s' at row 1", m[1]) }},
	{regexp.MustCompile(`^Incorrect (\w+) value: '(.*)'`), mysql.ERTruncatedWrongValue, "22007",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Incorrect %s value: '%s'", m[1], m[2]) }},
	{regexp.MustCompile(`^(.+) out of range for (\w+)`), mysql.ERWarnDataOutOfRange, "22003",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Out of range value %s for %s", m[1], m[2]) }},
	{regexp.MustCompile(`^specified key was too long; max key length is (\d+) bytes$`), mysql.ERTooLongKey, "42000",
		func(m []string, _ errEnv) string {
			return fmt.Sprintf("Specified key was too long; max key length is %s bytes", m[1])
		}},
	{regexp.MustCompile(`^table with name (.+) already exists$`), mysql.ERTableExists, "42S01",
		func(m []string, _ errEnv) string { return fmt.Sprintf("Table '%s' already exists", m[1]) }},
	{regexp.MustCompile(`^number of values does not match number of columns provided$`), mysql.ERWrongValueCountOnRow, "21S01",
		func([]string, errEnv) string { return "Column count doesn't match value count at row 1" }},
	{regexp.MustCompile("^cannot add or update a child row - Foreign key violation on fk: `(.+)`, table: `(.+)`, referenced table: `(.+)`, key: `.*`$"), mysql.ErNoReferencedRow2, "23000",
		func(m []string, env errEnv) string {
			return "Cannot add or update a child row: a foreign key constraint fails (" + fkText(env, m[1], m[2], m[3]) + ")"
		}},
	{regexp.MustCompile("^cannot delete or update a parent row - Foreign key violation on fk: `(.+)`, table: `(.+)`, referenced table: `(.+)`, key: `.*`$"), mysql.ERRowIsReferenced2, "23000",
		func(m []string, env errEnv) string {
			return "Cannot delete or update a parent row: a foreign key constraint fails (" + fkText(env, m[1], m[2], m[3]) + ")"
		}},
}

// denied builds MySQL's privilege error text. The engine does not say which
// command or table was refused, so the statement's first words tell.
func denied(env errEnv, user, host, table string) string {
	words := strings.Fields(strings.ToUpper(env.query))
	cmd := "SELECT"
	if len(words) > 0 {
		cmd = words[0]
	}
	if table != "" {
		return fmt.Sprintf("%s command denied to user '%s'@'%s' for table '%s'", cmd, user, host, table)
	}
	return fmt.Sprintf("%s command denied to user '%s'@'%s'", cmd, user, host)
}

// fkText is MySQL's description of a foreign key in its constraint errors.
func fkText(env errEnv, name, child, parent string) string {
	db := env.db
	cols, pcols := "", ""
	if fk, ok := env.prov.ForeignKey(db, child, name); ok {
		db = fk.Database
		cols = "`" + strings.Join(fk.Columns, "`, `") + "`"
		pcols = "`" + strings.Join(fk.ParentColumns, "`, `") + "`"
		parent = fk.ParentTable
	}
	return fmt.Sprintf("`%s`.`%s`, CONSTRAINT `%s` FOREIGN KEY (%s) REFERENCES `%s` (%s)", db, child, name, cols, parent, pcols)
}

// translate rewrites an engine error text into MySQL's, when a rule knows it.
func translate(se *mysql.SQLError, env errEnv) {
	msg := strings.TrimPrefix(se.Message, "unknown error: Code: INVALID_ARGUMENT\n")
	msg = strings.TrimSpace(msg)
	for _, r := range errRules {
		m := r.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		if se.Num != mysql.ERUnknownError && se.Num != r.num {
			continue // the engine already chose a code; keep it
		}
		se.Num, se.State, se.Message = r.num, r.state, r.msg(m, env)
		if se.Num == erTableAccessDenied {
			accountDenied(se, env)
		}
		if se.Num == mysql.ERNoSuchTable && env.isDrop() {
			se.Num, se.State = mysql.ERBadTable, "42S02"
			se.Message = strings.Replace(strings.TrimSuffix(se.Message, " doesn't exist"), "Table ", "Unknown table ", 1)
		}
		return
	}
}

// accountDenied refines a privilege error for statements on databases and
// accounts, which MySQL reports with codes of their own.
func accountDenied(se *mysql.SQLError, env errEnv) {
	words := strings.Fields(strings.ToUpper(env.query))
	if len(words) < 2 {
		return
	}
	switch {
	case (words[0] == "CREATE" || words[0] == "DROP") && (words[1] == "DATABASE" || words[1] == "SCHEMA"):
		orig := strings.Fields(env.query)
		name := strings.Trim(orig[len(orig)-1], "`;")
		user := strings.TrimSuffix(strings.SplitN(se.Message, "command denied to user ", 2)[1], "")
		se.Num, se.State = mysql.ERDBAccessDenied, "42000"
		se.Message = fmt.Sprintf("Access denied for user %s to database '%s'", strings.SplitN(user, " for table", 2)[0], name)
	case (words[0] == "CREATE" || words[0] == "DROP" || words[0] == "ALTER" || words[0] == "RENAME") && words[1] == "USER":
		se.Num, se.State = mysql.ERSpecifiedAccessDenied, "42000"
		se.Message = "Access denied; you need (at least one of) the CREATE USER privilege(s) for this operation"
	}
}

// erTableAccessDenied is ER_TABLEACCESS_DENIED_ERROR.
const erTableAccessDenied = 1142
