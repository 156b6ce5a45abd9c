package server

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/dolthub/vitess/go/mysql"
	ast "github.com/dolthub/vitess/go/vt/sqlparser"

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
	// from lists engine codes other than 1105 that the rule corrects: the
	// engine sometimes picks a neighbouring code (1049 where MySQL says
	// 1008).
	from []int
	// refine, when set, finishes the error from the statement's text,
	// where MySQL's code depends on what the statement was doing.
	refine func(m []string, env errEnv, se *mysql.SQLError)
}

// errEnv is what a rule may need beyond the message.
type errEnv struct {
	db    string // the session's current database
	query string // the statement, when known
	prov  *sqlfront.Provider
	// usedPassword: the client logged in with a password.
	usedPassword bool
}

// databases lists the databases the statement's own qualified names
// name (DELETE FROM d.t names d), then the current one: where to look
// for the objects an engine error names without their database.
func (e errEnv) databases() []string {
	var out []string
	add := func(db string) {
		if db != "" && !slices.ContainsFunc(out, func(x string) bool { return strings.EqualFold(x, db) }) {
			out = append(out, db)
		}
	}
	if stmt, err := sqlfront.Parser().ParseSimple(e.query); err == nil && stmt != nil {
		_ = ast.Walk(func(node ast.SQLNode) (bool, error) {
			if tn, ok := node.(ast.TableName); ok {
				add(tn.DbQualifier.String())
			}
			return true, nil
		}, stmt)
	}
	add(e.db)
	return out
}

// words is the statement's words, upper-cased.
func (e errEnv) words() []string { return strings.Fields(strings.ToUpper(e.query)) }

// isDrop reports whether the statement is a DROP, where MySQL calls a
// missing table ER_BAD_TABLE_ERROR rather than ER_NO_SUCH_TABLE.
func (e errEnv) isDrop() bool {
	q := strings.TrimSpace(e.query)
	return len(q) >= 4 && strings.EqualFold(q[:4], "drop")
}

var errRules = []errRule{
	// sqlfront refuses a division by zero in a stored value (strict
	// ERROR_FOR_DIVISION_BY_ZERO) with MySQL's text.
	{re: regexp.MustCompile(`^Division by 0$`), num: erDivisionByZero, state: "22012", msg: verbatim},

	{re: regexp.MustCompile(`^table "(?:Table\\n └─ name: )?(.+?)(?:\\n)?" does not have column "(.+)"$`), num: mysql.ERBadFieldError, state: "42S22",
		msg:    func(m []string, _ errEnv) string { return fmt.Sprintf("Unknown column '%s' in '%s'", m[2], m[1]) },
		refine: unknownColumnIn},
	{re: regexp.MustCompile("^foreign key `(.+)` was not found on the table `(.+)`$"), num: mysql.ERCantDropFieldOrKey, state: "42000",
		msg: func(m []string, _ errEnv) string { return cantDrop(m[1]) }},
	{re: regexp.MustCompile(`^Constraint "(.+)" does not exist$`), num: erConstraintNotFound, state: "HY000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Constraint '%s' does not exist.", m[1]) },
		refine: func(m []string, env errEnv, se *mysql.SQLError) {
			if regexp.MustCompile(`(?i)\bDROP\s+CHECK\b`).MatchString(env.query) {
				se.Num, se.Message = erCheckConstraintNotFound, fmt.Sprintf("Check constraint '%s' is not found in the table.", m[1])
			}
		}},
	{re: regexp.MustCompile(`^error: can't drop '(.+)'; check that column/key exists$|^Can't DROP '(.+)'; check that column/key exists$`), num: mysql.ERCantDropFieldOrKey, state: "42000",
		msg:    func(m []string, _ errEnv) string { return cantDrop(m[1] + m[2]) },
		refine: renameUnknownIndex},
	{re: regexp.MustCompile(`(?i)^key column '(.+)' doesn't exist in table$`), num: mysql.ERKeyColumnDoesNotExist, state: "42000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Key column '%s' doesn't exist in table", m[1]) }},
	{re: regexp.MustCompile(`^(?:error: )?Multiple primary keys? defined$`), num: mysql.ERMultiplePriKey, state: "42000",
		msg: func([]string, errEnv) string { return "Multiple primary key defined" }},
	{re: regexp.MustCompile("^missing index for foreign key `(.+)` on the referenced table `(.+)`$"), num: erFKNoIndexParent, state: "HY000",
		msg: func(m []string, _ errEnv) string {
			return fmt.Sprintf("Failed to add the foreign key constraint. Missing index for constraint '%s' in the referenced table '%s'", m[1], m[2])
		}},
	{re: regexp.MustCompile("^column type mismatch on `(.+)` and `(.+)`$"), num: erFKIncompatibleColumns, state: "HY000",
		msg: func(m []string, env errEnv) string {
			return fmt.Sprintf("Referencing column '%s' and referenced column '%s' in foreign key constraint '%s' are incompatible.", m[1], m[2], fkNameIn(env.query, m[1]))
		}},
	{re: regexp.MustCompile("^duplicate foreign key constraint name `(.+)`$"), num: erFKDupName, state: "HY000",
		msg: func(m []string, _ errEnv) string {
			return fmt.Sprintf("Duplicate foreign key constraint name '%s'", m[1])
		}},
	{re: regexp.MustCompile("^cannot drop index: `(.+)` is used by foreign key `(.+)`$"), num: erDropIndexFK, state: "HY000",
		msg: func(m []string, _ errEnv) string {
			return fmt.Sprintf("Cannot drop index '%s': needed in a foreign key constraint", m[1])
		}},
	{re: regexp.MustCompile("^cannot drop table `(.+)` as it is referenced in foreign key `(.+)`$"), num: erFKDropTableReferenced, state: "HY000",
		msg: func(m []string, env errEnv) string {
			child := "?"
			for _, db := range env.databases() {
				if fk, ok := env.prov.ReferencingForeignKey(db, m[1], m[2]); ok {
					child = fk.Table
					break
				}
			}
			return fmt.Sprintf("Cannot drop table '%s' referenced by a foreign key constraint '%s' on table '%s'.", m[1], m[2], child)
		}},
	{re: regexp.MustCompile("^invalid identifier: `(.{65,})`$"), num: mysql.ERTooLongIdent, state: "42000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Identifier name '%s' is too long", m[1]) }},
	{re: regexp.MustCompile(`(?i)^blob/text column '(.+)' used in key specification without a key length$`), num: mysql.ERBlobKeyWithoutLength, state: "42000",
		msg: func(m []string, _ errEnv) string {
			return fmt.Sprintf("BLOB/TEXT column '%s' used in key specification without a key length", m[1])
		}},
	{re: regexp.MustCompile(`^there can be only one auto_increment column and it must be defined as a key$`), num: mysql.ERWrongAutoKey, state: "42000",
		msg: func([]string, errEnv) string {
			return "Incorrect table definition; there can be only one auto column and it must be defined as a key"
		}},
	{re: regexp.MustCompile(`^length is (\d+) but max allowed is (\d+)$`), num: mysql.ERTooBigFieldLength, state: "42000",
		msg: func(m []string, env errEnv) string {
			return fmt.Sprintf("Column length too big for column '%s' (max = %s); use BLOB or TEXT instead", columnOfLength(env.query, m[1]), m[2])
		}},
	{re: regexp.MustCompile(`(?s)^table with name CreateView\((.+)\)\s*already exists$`), num: mysql.ERTableExists, state: "42S01",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Table '%s' already exists", m[1]) }},
	{re: regexp.MustCompile(`^the view (.+) does not exist$`), num: mysql.ERBadTable, state: "42S02",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Unknown table '%s'", m[1]) }},
	{re: regexp.MustCompile(`(?i)^can't create database (.+); database exists$`), num: mysql.ERDbCreateExists, state: "HY000",
		msg: func(m []string, _ errEnv) string {
			return fmt.Sprintf("Can't create database '%s'; database exists", m[1])
		}},
	{re: regexp.MustCompile(`(?i)^column '(.+)' specified twice$`), num: mysql.ERFieldSpecifiedTwice, state: "42000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Column '%s' specified twice", m[1]) }},
	{re: regexp.MustCompile(`^column name '(.+)' is non-nullable but attempted to set a value of null$`), num: mysql.ERBadNullError, state: "23000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Column '%s' cannot be null", m[1]) }},
	{re: regexp.MustCompile(`^incompatible type for default value: `), num: mysql.ERInvalidDefault, state: "42000", from: []int{mysql.ERTruncatedWrongValueForField},
		msg: func(m []string, env errEnv) string {
			return fmt.Sprintf("Invalid default value for '%s'", columnWithDefault(env.query))
		}},

	{re: regexp.MustCompile(`^Variable '(.+)' is a read only variable$`), num: erVariableReadOnly, state: "HY000", msg: verbatim},
	// A literal too large for a double (1e400): the parser's own error.
	{re: regexp.MustCompile(`^strconv\.ParseFloat: parsing "(.+)": value out of range$`), num: erIllegalValueForType, state: "22007",
		msg: func(m []string, _ errEnv) string {
			return fmt.Sprintf("Illegal double '%s' value found during parsing", m[1])
		}},
	{re: regexp.MustCompile(`^command denied to user '(.*)'@'(.*)'$`), num: erTableAccessDenied, state: "42000",
		msg: func(m []string, env errEnv) string { return denied(env, m[1], m[2], "") }},
	{re: regexp.MustCompile(`^Access denied for user '(.*)'@'(.*)' to table '(.*)'$`), num: erTableAccessDenied, state: "42000",
		msg: func(m []string, env errEnv) string { return denied(env, m[1], m[2], m[3]) }},
	{re: regexp.MustCompile(`^Duplicate key name '(.+)'$`), num: mysql.ERDupKeyName, state: "42000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Duplicate key name '%s'", m[1]) }},
	{re: regexp.MustCompile("^(?:Column \"(.+)\" already exists|duplicate column name: `(.+)`)$"), num: mysql.ERDupFieldName, state: "42S21",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Duplicate column name '%s'", m[1]+m[2]) }},
	{re: regexp.MustCompile(`^Check constraint "(.+)" violated$`), num: 3819, state: "HY000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Check constraint '%s' is violated.", m[1]) }},
	{re: regexp.MustCompile(`^error: can't drop '(.+)'; check that column/key exists$`), num: mysql.ERCantDropFieldOrKey, state: "42000",
		msg: func(m []string, _ errEnv) string {
			return fmt.Sprintf("Can't DROP '%s'; check that column/key exists", m[1])
		}},
	{re: regexp.MustCompile(`^cannot truncate table (.+) as it is referenced in foreign key (.+) on table (.+)$`), num: erTruncateIllegalFK, state: "42000",
		msg: func(m []string, env errEnv) string {
			db := env.db
			for _, d := range env.databases() {
				if _, ok := env.prov.ForeignKey(d, m[3], m[2]); ok {
					db = d
					break
				}
			}
			return fmt.Sprintf("Cannot truncate a table referenced in a foreign key constraint (`%s`.`%s`, CONSTRAINT `%s`)", db, m[3], m[2])
		}},
	{re: regexp.MustCompile(`^incorrect prefix key '.*'; the used key part isn't a string, the used length is longer than the key part, or the storage engine doesn't support unique prefix keys$`), num: mysql.ERWrongSubKey, state: "HY000",
		msg: func([]string, errEnv) string {
			return "Incorrect prefix key; the used key part isn't a string, the used length is longer than the key part, or the storage engine doesn't support unique prefix keys"
		}},
	{re: regexp.MustCompile(`^no database selected$`), num: mysql.ERNoDb, state: "3D000",
		msg: func([]string, errEnv) string { return "No database selected" }},
	{re: regexp.MustCompile(`^SAVEPOINT (.+) does not exist$`), num: 1305, state: "42000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("SAVEPOINT %s does not exist", m[1]) }},
	{re: regexp.MustCompile(`(?i)^cannot execute statement in a READ ONLY transaction`), num: 1792, state: "25006",
		msg: func([]string, errEnv) string { return "Cannot execute statement in a READ ONLY transaction." }},
	{re: regexp.MustCompile(`syntax error at position \d+(?: near '(.*)')?`), num: mysql.ERParseError, state: "42000",
		msg: func(m []string, _ errEnv) string {
			return fmt.Sprintf("You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '%s' at line 1", cutChars(m[1], nearQuoteChars))
		}},
	{re: regexp.MustCompile(`^table not found: (.+)$|^Table '(.+)' doesn't exist$`), num: mysql.ERNoSuchTable, state: "42S02",
		msg: func(m []string, env errEnv) string {
			name := m[1] + m[2]
			if !strings.Contains(name, ".") && env.db != "" {
				name = env.db + "." + name
			}
			return fmt.Sprintf("Table '%s' doesn't exist", name)
		},
		refine: missingReferencedTable},
	{re: regexp.MustCompile(`^database not found: (.+)$|^Unknown database '(.+)'$`), num: mysql.ERBadDb, state: "42000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Unknown database '%s'", m[1]+m[2]) },
		refine: func(m []string, env errEnv, se *mysql.SQLError) {
			if w := env.words(); len(w) >= 2 && w[0] == "DROP" && (w[1] == "DATABASE" || w[1] == "SCHEMA") {
				se.Num, se.State = mysql.ERDbDropExists, "HY000"
				se.Message = fmt.Sprintf("Can't drop database '%s'; database doesn't exist", m[1]+m[2])
			}
		}},
	{re: regexp.MustCompile(`^column "(.+)" could not be found in any table in scope$|^Unknown column '(.+)' in '.*'$`), num: mysql.ERBadFieldError, state: "42S22",
		msg: func(m []string, env errEnv) string {
			return fmt.Sprintf("Unknown column '%s' in '%s'", m[1]+m[2], clauseOf(env.query, m[1]+m[2]))
		}},
	{re: regexp.MustCompile(`^ambiguous column name "(.+)", it's present in all these tables`), num: 1052, state: "23000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Column '%s' in field list is ambiguous", m[1]) }},
	{re: regexp.MustCompile(`^function: '(.+)' not found$`), num: 1305, state: "42000",
		msg: func(m []string, env errEnv) string {
			if env.db != "" {
				return fmt.Sprintf("FUNCTION %s.%s does not exist", env.db, m[1])
			}
			return fmt.Sprintf("FUNCTION %s does not exist", m[1])
		}},
	{re: regexp.MustCompile(`^the subquery returned more than 1 row$`), num: mysql.ERSubqueryNo1Row, state: "21000",
		msg: func([]string, errEnv) string { return "Subquery returns more than 1 row" }},
	{re: regexp.MustCompile(`^Field '(.+)' doesn't have a default value$`), num: mysql.ERNoDefaultForField, state: "HY000",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Field '%s' doesn't have a default value", m[1]) }},
	{re: regexp.MustCompile(`^string '(?s:.*)' is too large for column '(.+)'$`), num: mysql.ERDataTooLong, state: "22001",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Data too long for column '%s' at row 1", m[1]) }},
	{re: regexp.MustCompile(`^Incorrect (\w+) value: '(.*)'`), num: mysql.ERTruncatedWrongValue, state: "22007",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Incorrect %s value: '%s'", m[1], m[2]) }},
	{re: regexp.MustCompile(`^(.+) out of range for (\w+)`), num: mysql.ERWarnDataOutOfRange, state: "22003",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Out of range value %s for %s", m[1], m[2]) }},
	{re: regexp.MustCompile(`^specified key was too long; max key length is (\d+) bytes$`), num: mysql.ERTooLongKey, state: "42000",
		msg: func(m []string, _ errEnv) string {
			return fmt.Sprintf("Specified key was too long; max key length is %s bytes", m[1])
		}},
	{re: regexp.MustCompile(`^table with name (.+) already exists$`), num: mysql.ERTableExists, state: "42S01",
		msg: func(m []string, _ errEnv) string { return fmt.Sprintf("Table '%s' already exists", m[1]) }},
	{re: regexp.MustCompile(`^number of values does not match number of columns provided$`), num: mysql.ERWrongValueCountOnRow, state: "21S01",
		msg: func([]string, errEnv) string { return "Column count doesn't match value count at row 1" }},
	{re: regexp.MustCompile("^cannot add or update a child row - Foreign key violation on fk: `(.+)`, table: `(.+)`, referenced table: `(.+)`, key: `.*`$"), num: mysql.ErNoReferencedRow2, state: "23000",
		msg: func(m []string, env errEnv) string {
			return "Cannot add or update a child row: a foreign key constraint fails (" + fkText(env, m[1], m[2], m[3]) + ")"
		}},
	{re: regexp.MustCompile("^cannot delete or update a parent row - Foreign key violation on fk: `(.+)`, table: `(.+)`, referenced table: `(.+)`, key: `.*`$"), num: mysql.ERRowIsReferenced2, state: "23000",
		msg: func(m []string, env errEnv) string {
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
	for _, d := range env.databases() {
		if fk, ok := env.prov.ForeignKey(d, child, name); ok && strings.EqualFold(fk.ParentTable, parent) {
			db = fk.Database
			cols = "`" + strings.Join(fk.Columns, "`, `") + "`"
			pcols = "`" + strings.Join(fk.ParentColumns, "`, `") + "`"
			parent = fk.ParentTable
			break
		}
	}
	return fmt.Sprintf("`%s`.`%s`, CONSTRAINT `%s` FOREIGN KEY (%s) REFERENCES `%s` (%s)", db, child, name, cols, parent, pcols)
}

// unknownColumnIn finishes an unknown column named by DDL or an INSERT's
// column list: MySQL names the clause of a DML statement, the table of an
// ALTER, and calls dropping a missing column ER_CANT_DROP_FIELD_OR_KEY.
func unknownColumnIn(m []string, env errEnv, se *mysql.SQLError) {
	table, col := m[1], m[2]
	w := env.words()
	switch {
	case len(w) > 0 && (w[0] == "INSERT" || w[0] == "REPLACE" || w[0] == "UPDATE" || w[0] == "SELECT" || w[0] == "DELETE"):
		se.Message = fmt.Sprintf("Unknown column '%s' in '%s'", col, clauseOf(env.query, col))
	case regexp.MustCompile(`(?i)\bDROP\s+(?:COLUMN\s+)?[` + "`" + `"]?` + regexp.QuoteMeta(col) + `\b`).MatchString(env.query):
		se.Num, se.State, se.Message = mysql.ERCantDropFieldOrKey, "42000", cantDrop(col)
	case len(w) > 1 && w[0] == "CREATE" && (w[1] == "TABLE" || w[1] == "INDEX" || w[1] == "UNIQUE"):
		if fk := fkNameIn(env.query, col); fk != "" && !strings.EqualFold(table, createdTable(env.query)) {
			se.Num, se.State = erFKNoColumnParent, "HY000"
			se.Message = fmt.Sprintf("Failed to add the foreign key constraint. Missing column '%s' for constraint '%s' in the referenced table '%s'", col, fk, table)
			return
		}
		se.Num, se.State = mysql.ERKeyColumnDoesNotExist, "42000"
		se.Message = fmt.Sprintf("Key column '%s' doesn't exist in table", col)
	}
}

// renameUnknownIndex: the engine reports renaming a missing index as a
// failed DROP of the new name; MySQL says the old one does not exist.
func renameUnknownIndex(_ []string, env errEnv, se *mysql.SQLError) {
	m := regexp.MustCompile("(?i)^\\s*ALTER\\s+TABLE\\s+[`\"]?([^`\"\\s]+)[`\"]?\\s+RENAME\\s+(?:INDEX|KEY)\\s+[`\"]?([^`\"\\s]+)[`\"]?").FindStringSubmatch(env.query)
	if m == nil {
		return
	}
	table := m[1]
	if i := strings.LastIndex(table, "."); i >= 0 {
		table = strings.Trim(table[i+1:], "`")
	}
	se.Num, se.State = erKeyDoesNotExist, "42000"
	se.Message = fmt.Sprintf("Key '%s' doesn't exist in table '%s'", m[2], table)
}

// missingReferencedTable: a foreign key to a table that does not exist is
// ER_FK_CANNOT_OPEN_PARENT in MySQL, not a missing table.
func missingReferencedTable(m []string, env errEnv, se *mysql.SQLError) {
	name := m[1] + m[2]
	if i := strings.LastIndex(name, "."); i >= 0 {
		name = name[i+1:]
	}
	w := env.words()
	if len(w) < 2 || (w[0] != "CREATE" && w[0] != "ALTER") || w[1] != "TABLE" {
		return
	}
	if regexp.MustCompile("(?i)\\bREFERENCES\\s+(?:[`\"]?\\w+[`\"]?\\.)?[`\"]?" + regexp.QuoteMeta(name) + "\\b").MatchString(env.query) {
		se.Num, se.State = erFKCannotOpenParent, "HY000"
		se.Message = fmt.Sprintf("Failed to open the referenced table '%s'", name)
	}
}

func cantDrop(name string) string {
	return fmt.Sprintf("Can't DROP '%s'; check that column/key exists", name)
}

// clauseOf names the clause of a statement in which a column name first
// appears, as MySQL's ER_BAD_FIELD_ERROR does.
func clauseOf(query, col string) string {
	loc := regexp.MustCompile("(?i)(?:^|[^\\w$])[`\"]?" + regexp.QuoteMeta(col) + "(?:[^\\w$]|$)").FindStringIndex(query)
	if loc == nil {
		return "field list"
	}
	clause := "field list"
	kw := regexp.MustCompile(`(?i)\b(WHERE|ORDER\s+BY|GROUP\s+BY|HAVING|ON|SET|VALUES|SELECT)\b`)
	for _, k := range kw.FindAllStringSubmatchIndex(query[:loc[0]+1], -1) {
		switch strings.ToUpper(strings.Fields(query[k[2]:k[3]])[0]) {
		case "WHERE":
			clause = "where clause"
		case "ORDER":
			clause = "order clause"
		case "GROUP":
			clause = "group statement"
		case "HAVING":
			clause = "having clause"
		case "ON":
			clause = "on clause"
		default:
			clause = "field list"
		}
	}
	return clause
}

// fkNameIn finds the name of the foreign key whose column list (of either
// side) holds col in a CREATE or ALTER TABLE; MySQL generates
// <table>_ibfk_<n> for an unnamed one.
func fkNameIn(query, col string) string {
	re := regexp.MustCompile("(?is)(?:CONSTRAINT\\s+[`\"]?(\\w+)[`\"]?\\s+)?FOREIGN\\s+KEY\\s*(?:[`\"]?\\w+[`\"]?\\s*)?\\(([^)]*)\\)\\s*REFERENCES\\s+[^(]+\\(([^)]*)\\)")
	n := 0
	for _, m := range re.FindAllStringSubmatch(query, -1) {
		if m[1] == "" {
			n++
		}
		for _, list := range []string{m[2], m[3]} {
			for _, c := range strings.Split(list, ",") {
				if strings.EqualFold(strings.Trim(strings.TrimSpace(c), "`\""), col) {
					if m[1] != "" {
						return m[1]
					}
					return fmt.Sprintf("%s_ibfk_%d", createdTable(query), n)
				}
			}
		}
	}
	return ""
}

// createdTable is the table a CREATE TABLE or ALTER TABLE names.
func createdTable(query string) string {
	m := regexp.MustCompile("(?i)^\\s*(?:CREATE|ALTER)\\s+TABLE\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?((?:[`\"]?\\w+[`\"]?\\.)?[`\"]?\\w+[`\"]?)").FindStringSubmatch(query)
	if m == nil {
		return ""
	}
	name := m[1]
	if i := strings.LastIndex(name, "."); i >= 0 {
		name = name[i+1:]
	}
	return strings.Trim(name, "`\"")
}

// columnOfLength finds the column declared with the given length, which the
// engine's message leaves out.
func columnOfLength(query, length string) string {
	m := regexp.MustCompile("(?i)[`\"]?(\\w+)[`\"]?\\s+\\w*(?:CHAR|BINARY)\\s*\\(\\s*" + regexp.QuoteMeta(length) + "\\s*\\)").FindStringSubmatch(query)
	if m == nil {
		return "?"
	}
	return m[1]
}

// columnWithDefault finds the column whose DEFAULT the engine refused; its
// message names the value, not the column.
func columnWithDefault(query string) string {
	re := regexp.MustCompile("(?i)(?:\\(|,)\\s*[`\"]?(\\w+)[`\"]?\\s+[^,()]*(?:\\([^)]*\\)[^,()]*)?\\bDEFAULT\\b")
	m := re.FindAllStringSubmatch(query, -1)
	if len(m) == 0 {
		return "?"
	}
	return m[len(m)-1][1]
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
		if se.Num != mysql.ERUnknownError && se.Num != r.num && !slices.Contains(r.from, int(se.Num)) {
			continue // the engine already chose a code; keep it
		}
		se.Num, se.State, se.Message = r.num, r.state, r.msg(m, env)
		if r.refine != nil {
			r.refine(m, env, se)
		}
		if se.Num == erTableAccessDenied {
			accountDenied(se, env)
		}
		if se.Num == mysql.ERNoSuchTable && env.isDrop() {
			se.Num, se.State = mysql.ERBadTable, "42S02"
			se.Message = strings.Replace(strings.TrimSuffix(se.Message, " doesn't exist"), "Table ", "Unknown table ", 1)
		}
		return
	}
	translateKind(se, msg)
}

// accountDenied refines a privilege error for statements on databases and
// accounts, which MySQL reports with codes of their own.
func accountDenied(se *mysql.SQLError, env errEnv) {
	words := strings.Fields(strings.ToUpper(env.query))
	if len(words) < 2 {
		return
	}
	switch {
	case words[0] == "LOAD" && words[1] == "DATA":
		// The engine checks only FILE, a global privilege: MySQL answers
		// its lack with 1045.
		if m := regexp.MustCompile(`user '(.*)'@'(.*?)'`).FindStringSubmatch(se.Message); m != nil {
			yes := "NO"
			if env.usedPassword {
				yes = "YES"
			}
			se.Num, se.State = mysql.ERAccessDeniedError, "28000"
			se.Message = fmt.Sprintf("Access denied for user '%s'@'%s' (using password: %s)", m[1], m[2], yes)
		}
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

// verbatim keeps a message that is MySQL's already.
func verbatim(m []string, _ errEnv) string { return m[0] }

// MySQL 8's codes that vitess has no names for.
const (
	erDivisionByZero          = 1365 // ER_DIVISION_BY_ZERO
	erTableAccessDenied       = 1142 // ER_TABLEACCESS_DENIED_ERROR
	erVariableReadOnly        = 1238 // ER_INCORRECT_GLOBAL_LOCAL_VAR
	erIllegalValueForType     = 1367 // ER_ILLEGAL_VALUE_FOR_TYPE
	erKeyDoesNotExist         = 1176 // ER_KEY_DOES_NOT_EXITS
	erDropIndexFK             = 1553 // ER_DROP_INDEX_FK
	erTruncateIllegalFK       = 1701 // ER_TRUNCATE_ILLEGAL_FK
	erFKNoIndexParent         = 1822 // ER_FK_NO_INDEX_PARENT
	erFKCannotOpenParent      = 1824 // ER_FK_CANNOT_OPEN_PARENT
	erFKDupName               = 1826 // ER_FK_DUP_NAME
	erFKDropTableReferenced   = 3730 // ER_FK_CANNOT_DROP_PARENT
	erFKNoColumnParent        = 3734 // ER_FK_NO_COLUMN_PARENT
	erFKIncompatibleColumns   = 3780 // ER_FK_INCOMPATIBLE_COLUMNS
	erCheckConstraintNotFound = 3821 // ER_CHECK_CONSTRAINT_NOT_FOUND
	erConstraintNotFound      = 3940 // ER_CONSTRAINT_NOT_FOUND
)
