package sqlfront

import (
	"bufio"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dolthub/go-mysql-server/sql"
	ast "github.com/dolthub/vitess/go/vt/sqlparser"
	"github.com/dolthub/vitess/go/vt/vterrors"
	"github.com/stretchr/testify/require"
)

// mysqlKeywords reads testdata/mysql80_keywords.txt: MySQL 8.0.31's
// keyword table, each word with whether MySQL reserves it.
func mysqlKeywords(t testing.TB) map[string]bool {
	t.Helper()
	f, err := os.Open("testdata/mysql80_keywords.txt")
	require.NoError(t, err)
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		require.LessOrEqual(t, len(fields), 2, line)
		out[strings.ToLower(fields[0])] = len(fields) == 2 && fields[1] == "R"
	}
	require.NoError(t, sc.Err())
	require.Len(t, out, 748, "MySQL 8.0.31 has 748 keywords")
	return out
}

// nameWords is every word MySQL 8 takes as an unquoted name that the
// engine's tokenizer reads as something else: each keyword of MySQL's
// table it does not reserve, and each word the engine's parser reads as a
// keyword that MySQL does not (SHARED, ENCRYPTED). Character set
// introducers (_utf8mb4) are no names to MySQL's lexer either.
func nameWords(t testing.TB) []string {
	var out []string
	seen := map[string]bool{}
	for w, reserved := range mysqlKeywords(t) {
		if !reserved {
			out = append(out, w)
			seen[w] = true
		}
	}
	for _, w := range ParserKeywords() {
		if !seen[w] && !IsReservedWord(w) && w[0] != '_' {
			out = append(out, w)
		}
	}
	return out
}

func reservedWords(t testing.TB) []string {
	var out []string
	for w, reserved := range mysqlKeywords(t) {
		if reserved {
			out = append(out, w)
		}
	}
	return out
}

// The reserved words the parser refuses unquoted are MySQL's, word for
// word.
func TestReservedWordsMatchMySQL(t *testing.T) {
	kw := mysqlKeywords(t)
	for w, reserved := range kw {
		require.Equal(t, reserved, IsReservedWord(w), "%s", w)
	}
	for w := range mysqlReserved {
		require.Contains(t, kw, w)
	}
}

// identifierPositions is every place a statement names a database, table,
// column, index, constraint or alias, in DDL and DML; {} stands for the
// name.
var identifierPositions = []string{
	"CREATE DATABASE {}",
	"CREATE DATABASE IF NOT EXISTS {}",
	"DROP DATABASE {}",
	"USE {}",
	"CREATE TABLE {} (a INT)",
	"CREATE TABLE {}.{} ({} INT)",
	"CREATE TABLE t ({} INT)",
	"CREATE TABLE t (a INT, {} INT NOT NULL DEFAULT 1)",
	"CREATE TABLE t (a INT, {} VARCHAR(10), KEY {} ({}(5)))",
	"CREATE TABLE t (a INT, INDEX {} (a))",
	"CREATE TABLE t (a INT, UNIQUE KEY {} (a))",
	"CREATE TABLE t (a INT, CONSTRAINT {} UNIQUE (a))",
	"CREATE TABLE t (a INT, CONSTRAINT {} PRIMARY KEY (a))",
	"CREATE TABLE t (a INT, CONSTRAINT {} CHECK (a > 0))",
	"CREATE TABLE t (a INT, CHECK ({} > 0))",
	"CREATE TABLE t (a INT, PRIMARY KEY ({}))",
	"CREATE TABLE t (a INT, CONSTRAINT {} FOREIGN KEY (a) REFERENCES p (a))",
	"CREATE TABLE t (a INT, FOREIGN KEY {} (a) REFERENCES {} ({}))",
	"CREATE TABLE t (a INT, FOREIGN KEY ({}) REFERENCES {}.{} ({}))",
	"CREATE TABLE {} LIKE t",
	"CREATE TABLE t AS SELECT {} FROM {}",
	"CREATE INDEX {} ON t (a)",
	"CREATE INDEX i ON {} ({})",
	"CREATE UNIQUE INDEX {} ON {}.{} ({}, a)",
	"DROP INDEX {} ON {}",
	"ALTER TABLE {} ADD COLUMN b INT",
	"ALTER TABLE t ADD COLUMN {} INT",
	"ALTER TABLE t ADD {} INT AFTER {}",
	"ALTER TABLE t DROP COLUMN {}",
	"ALTER TABLE t DROP {}",
	"ALTER TABLE t CHANGE {} b INT",
	"ALTER TABLE t CHANGE COLUMN a {} INT",
	"ALTER TABLE t MODIFY {} INT",
	"ALTER TABLE t MODIFY COLUMN {} BIGINT FIRST",
	"ALTER TABLE t RENAME COLUMN {} TO b",
	"ALTER TABLE t RENAME COLUMN b TO {}",
	"ALTER TABLE t ALTER COLUMN {} SET DEFAULT 1",
	"ALTER TABLE t ALTER {} DROP DEFAULT",
	"ALTER TABLE t ADD INDEX {} (a)",
	"ALTER TABLE t ADD KEY ({})",
	"ALTER TABLE t ADD UNIQUE {} ({})",
	"ALTER TABLE t ADD CONSTRAINT {} UNIQUE (a)",
	"ALTER TABLE t ADD CONSTRAINT {} CHECK ({} > 0)",
	"ALTER TABLE t ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})",
	"ALTER TABLE t ADD PRIMARY KEY ({})",
	"ALTER TABLE t DROP INDEX {}",
	"ALTER TABLE t DROP KEY {}",
	"ALTER TABLE t DROP FOREIGN KEY {}",
	"ALTER TABLE t DROP CONSTRAINT {}",
	"ALTER TABLE t DROP CHECK {}",
	"ALTER TABLE t RENAME INDEX {} TO b",
	"ALTER TABLE t RENAME KEY b TO {}",
	"ALTER TABLE t RENAME TO {}",
	"ALTER TABLE t RENAME {}.{}",
	"RENAME TABLE {} TO b, b TO {}",
	"TRUNCATE TABLE {}",
	"TRUNCATE {}.{}",
	"DROP TABLE {}",
	"DROP TABLE IF EXISTS {}.{}, t",
	"CREATE VIEW {} AS SELECT 1",
	"CREATE VIEW v ({}) AS SELECT a FROM t",
	"CREATE VIEW v AS SELECT {} FROM {}",
	"DROP VIEW {}",
	"SELECT {} FROM t",
	"SELECT a, {} FROM t",
	"SELECT {}, a FROM t",
	"SELECT t.{} FROM t",
	"SELECT {}.a FROM t AS {}",
	"SELECT {}.{} FROM {}",
	"SELECT {}.{}.{} FROM {}.{}",
	"SELECT * FROM {}",
	"SELECT * FROM {}.t",
	"SELECT * FROM {}.{}",
	"SELECT a AS {} FROM t",
	"SELECT a {} FROM t",
	"SELECT a AS {}, b FROM t",
	"SELECT a {}, b FROM t",
	"SELECT * FROM t {}",
	"SELECT * FROM t AS {}",
	"SELECT * FROM t {}, u",
	"SELECT * FROM t {} WHERE {}.a = 1",
	"SELECT * FROM t JOIN u {} ON t.a = {}.a",
	"SELECT * FROM t {} JOIN u ON {}.a = u.a",
	"SELECT * FROM t LEFT JOIN {} ON t.a = {}.{}",
	"SELECT * FROM t JOIN u USING ({})",
	"SELECT * FROM t WHERE {} = 1",
	"SELECT * FROM t WHERE {} IS NULL",
	"SELECT * FROM t WHERE {} IN (1, 2)",
	"SELECT * FROM t WHERE a = {}",
	"SELECT * FROM t WHERE {} > 1 AND {} < 3",
	"SELECT * FROM t WHERE a IN (SELECT {} FROM u)",
	"SELECT * FROM t WHERE EXISTS (SELECT 1 FROM {} WHERE {}.{} = t.a)",
	"SELECT {} + 1 FROM t",
	"SELECT 1 + {} FROM t",
	"SELECT -{} FROM t",
	"SELECT COUNT({}) FROM t",
	"SELECT MAX({}) AS {} FROM t",
	"SELECT COUNT(*) FROM t GROUP BY {}",
	"SELECT {} FROM t GROUP BY {} HAVING {} > 1",
	"SELECT * FROM t ORDER BY {}",
	"SELECT * FROM t ORDER BY {} DESC, a",
	"SELECT {} FROM t WHERE {} > 1 GROUP BY {} HAVING {} > 1 ORDER BY {} LIMIT 1",
	"SELECT * FROM (SELECT a FROM t) {}",
	"SELECT * FROM (SELECT a FROM t) AS {}",
	"SELECT * FROM (SELECT a AS {} FROM t) AS d WHERE d.{} = 1",
	"WITH {} AS (SELECT 1) SELECT * FROM {}",
	"WITH c ({}) AS (SELECT 1) SELECT {} FROM c",
	"SELECT a FROM t UNION SELECT {} FROM u",
	"SELECT * FROM t FOR UPDATE",
	"INSERT INTO {} VALUES (1)",
	"INSERT INTO {}.{} VALUES (1)",
	"INSERT INTO t ({}) VALUES (1)",
	"INSERT INTO t (a, {}) VALUES (1, 2)",
	"INSERT INTO t ({}, a) VALUES (1, 2)",
	"INSERT INTO t SET {} = 1",
	"INSERT INTO t (a, {}) SELECT a, {} FROM u",
	"INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE {} = 1",
	"INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = {} + 1",
	"INSERT INTO t VALUES (1) AS {} ON DUPLICATE KEY UPDATE a = {}.a",
	"REPLACE INTO {} ({}) VALUES (1)",
	"UPDATE {} SET a = 1",
	"UPDATE t SET {} = 1",
	"UPDATE t SET a = {}",
	"UPDATE t SET {} = {} + 1 WHERE {} > 0",
	"UPDATE t {} SET {}.a = 1",
	"UPDATE {}.{} SET {}.{} = 1",
	"DELETE FROM {} WHERE a = 1",
	"DELETE FROM {}.{}",
	"DELETE FROM t WHERE {} = 1",
	"DELETE {} FROM {} JOIN u ON {}.a = u.a",
	"DELETE {} FROM t AS {} WHERE {}.a = 1",
	"SHOW COLUMNS FROM {}",
	"SHOW INDEX FROM {}.{}",
	"SHOW CREATE TABLE {}",
	"DESCRIBE {}",
	"CREATE TRIGGER {} BEFORE INSERT ON {} FOR EACH ROW SET NEW.{} = 1",
	"CREATE PROCEDURE {} () SELECT {} FROM {}",
	"LOCK TABLES {} READ",
}

func substitute(tmpl, name string) string { return strings.ReplaceAll(tmpl, "{}", name) }

// selectOptions are the words MySQL does not reserve that it reads as a
// SELECT option right after SELECT (SELECT SQL_NO_CACHE a FROM t), so
// never as the first select expression.
var selectOptions = map[string]bool{"sql_no_cache": true, "sql_buffer_result": true}

// Every word MySQL does not reserve parses as a name wherever a name may
// stand, unquoted, in any case, and the statement names it.
func TestNonReservedKeywordsAreNames(t *testing.T) {
	p := Parser()
	words := nameWords(t)
	require.Greater(t, len(words), 480)
	for _, w := range words {
		for i, tmpl := range identifierPositions {
			if selectOptions[w] && strings.Contains(tmpl, "SELECT {}") {
				continue
			}
			spellings := []string{w}
			if i%8 == 0 {
				// Keywords are words in any case.
				spellings = append(spellings, strings.ToUpper(w))
			}
			for _, spelled := range spellings {
				q := substitute(tmpl, spelled)
				stmt, err := p.ParseSimple(q)
				if !assertNoErr(t, err, q) {
					continue
				}
				// The name reached the AST as a name.
				quoted := substitute(tmpl, "`"+spelled+"`")
				want, err := p.ParseSimple(quoted)
				require.NoError(t, err, quoted)
				require.Equal(t, ast.String(want), ast.String(stmt), q)
			}
		}
	}
}

func assertNoErr(t *testing.T, err error, q string) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", q, err)
		return false
	}
	return true
}

// A reserved word is a name only quoted, as in MySQL: unquoted it is a
// syntax error wherever a name stands alone; after a period it is a name.
func TestReservedWordsAreNamesOnlyQuoted(t *testing.T) {
	p := Parser()
	for _, w := range reservedWords(t) {
		for _, tmpl := range identifierPositions {
			quoted := substitute(tmpl, "`"+w+"`")
			_, err := p.ParseSimple(quoted)
			assertNoErr(t, err, quoted)
		}
		for _, tmpl := range []string{
			"CREATE DATABASE {}",
			"CREATE TABLE {} (a INT)",
			"CREATE TABLE t ({} INT)",
			"CREATE TABLE t (a INT, {} INT)",
			"CREATE TABLE t (a INT, CONSTRAINT {} UNIQUE (a))",
			"CREATE INDEX {} ON t (a)",
			"ALTER TABLE t ADD COLUMN {} INT",
			"ALTER TABLE t RENAME COLUMN a TO {}",
			"SELECT * FROM t AS {}",
			"SELECT a AS {} FROM t",
			"INSERT INTO t ({}) VALUES (1)",
			"INSERT INTO t (a, {}) VALUES (1, 2)",
			"INSERT INTO d.t ({}, a) SELECT 1, 2",
			"REPLACE INTO t ({}) VALUES (1)",
			"UPDATE t SET {} = 1",
			"SELECT * FROM {}.t",
		} {
			q := substitute(tmpl, w)
			_, err := p.ParseSimple(q)
			if err == nil {
				t.Errorf("%s: parsed, MySQL refuses it", q)
				continue
			}
			_, ok := vterrors.AsSyntaxError(err)
			require.True(t, ok, "%s: %v", q, err)
		}
		// A word after a period is a name even when reserved.
		for _, tmpl := range []string{"SELECT t.{} FROM t", "SELECT * FROM d.{}", "INSERT INTO d.{} (a) VALUES (1)"} {
			q := substitute(tmpl, w)
			_, err := p.ParseSimple(q)
			assertNoErr(t, err, q)
		}
	}
}

// A name quoted to parse keeps the client's text: an expression's result
// column is named as written, a multi-statement text is split where the
// client's statements end, and an error's position is in the client's
// text.
func TestRequotedStatementKeepsItsText(t *testing.T) {
	p := Parser()
	stmt, err := p.ParseSimple("SELECT shared + 1, status, 2 * vector FROM t")
	require.NoError(t, err)
	exprs := stmt.(*ast.Select).SelectExprs
	require.Equal(t, "shared + 1", exprs[0].(*ast.AliasedExpr).InputExpression)
	require.Equal(t, "2 * vector", exprs[2].(*ast.AliasedExpr).InputExpression)

	q := "INSERT INTO t (shared) VALUES (1); SELECT encrypted FROM t"
	_, parsed, rest, err := p.ParseWithOptions(context.Background(), q, ';', true, ast.ParserOptions{})
	require.NoError(t, err)
	require.Equal(t, "INSERT INTO t (shared) VALUES (1)", parsed)
	require.Equal(t, " SELECT encrypted FROM t", rest)
	_, n, err := p.ParseOneWithOptions(context.Background(), q, ast.ParserOptions{})
	require.NoError(t, err)
	require.Equal(t, len("INSERT INTO t (shared) VALUES (1);"), n)

	// The statement still fails where MySQL would fail it: at INTEGR.
	_, err = p.ParseSimple("CREATE TABLE t (shared BOOL, x INTEGR)")
	se, ok := vterrors.AsSyntaxError(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, len("CREATE TABLE t (shared BOOL, x INTEGR)"), se.Position)

	// A view's body is kept as written.
	stmt, err = p.ParseSimple("CREATE VIEW v AS SELECT shared FROM t")
	require.NoError(t, err)
	ddl := stmt.(*ast.DDL)
	require.Equal(t, "SELECT shared FROM t", "CREATE VIEW v AS SELECT shared FROM t"[ddl.SubStatementPositionStart:ddl.SubStatementPositionEnd])

	// MySQL 8 has no FULL JOIN: t FULL JOIN u names t full; FULL OUTER
	// JOIN stays the engine's.
	stmt, err = p.ParseSimple("SELECT * FROM t full JOIN u ON full.a = u.a")
	require.NoError(t, err)
	require.Equal(t, "select * from t as `full` join u on `full`.a = u.a", ast.String(stmt))
	stmt, err = p.ParseSimple("SELECT * FROM t FULL OUTER JOIN u ON t.a = u.a")
	require.NoError(t, err)
	require.Contains(t, ast.String(stmt), "full outer join")

	// ANSI_QUOTES: a double-quoted name is a name, and the keyword after it
	// is found.
	_, err = p.ParseSimple(`SELECT "a" FROM t`)
	require.NoError(t, err)
	_, _, _, err = p.ParseWithOptions(context.Background(), `SELECT "x", shared FROM "t"`, ';', false, ast.ParserOptions{AnsiQuotes: true})
	require.NoError(t, err)
}

// The engine runs statements naming words MySQL does not reserve as a
// database, table, column, index, constraint and alias, and the names
// stick. TestNonReservedKeywordsAreNames shows that every such word, in
// every position, gives the AST its quoted spelling gives, which is all
// the engine sees; this runs the words and a sample of the rest
// through the engine (each DDL statement is a durable commit).
func TestNonReservedKeywordsAsNamesInTheEngine(t *testing.T) {
	db := newTestDB(t)
	words := []string{"shared", "encryption_key_id", "encrypted", "status", "comment", "full", "file", "sql_cache", "vector", "next", "stddev"}
	all := nameWords(t)
	slices.Sort(all)
	for i := 0; i < len(all); i += 25 {
		words = append(words, all[i])
	}
	for _, w := range words {
		script := []string{
			"CREATE DATABASE {}",
			"CREATE TABLE {}.{} ({} INT PRIMARY KEY, x INT, KEY {} (x), CONSTRAINT {} CHECK ({} >= 0))",
			"INSERT INTO {}.{} ({}, x) VALUES (1, 10)",
			"UPDATE {}.{} SET {} = {} + 1 WHERE {} = 1",
			"ALTER TABLE {}.{} RENAME COLUMN x TO y",
		}
		for _, q := range script {
			require.NoError(t, db.exec(db.sess, substitute(q, w)), substitute(q, w))
		}
		ctx := sql.NewContext(context.Background(), sql.WithSession(db.sess))
		q := substitute("SELECT {}.{} AS {}, y FROM {}.{} AS {} WHERE {}.{} = 2 ORDER BY {}", w)
		sch, it, _, err := db.e.Query(ctx, q)
		require.NoError(t, err, q)
		rows, err := sql.RowIterToRows(ctx, it)
		require.NoError(t, err, q)
		require.Equal(t, []sql.Row{{int32(2), int32(10)}}, rows, q)
		require.Equal(t, w, sch[0].Name, q)
		for _, q := range []string{"DELETE FROM {}.{} WHERE {} = 2", "DROP DATABASE {}"} {
			require.NoError(t, db.exec(db.sess, substitute(q, w)), substitute(q, w))
		}
	}
}

// ON DELETE / ON UPDATE SET DEFAULT, which InnoDB does not implement, is
// refused as the engine refuses it with its own parser.
func TestForeignKeySetDefaultRefused(t *testing.T) {
	db := newTestDB(t)
	require.NoError(t, db.exec(db.sess, "CREATE DATABASE d"))
	require.NoError(t, db.exec(db.sess, "CREATE TABLE d.p (id INT PRIMARY KEY)"))
	require.NoError(t, db.exec(db.sess, "CREATE TABLE d.c (id INT PRIMARY KEY, pid INT)"))
	for _, q := range []string{
		"CREATE TABLE d.x (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES d.p (id) ON DELETE SET DEFAULT)",
		"ALTER TABLE d.c ADD FOREIGN KEY (pid) REFERENCES d.p (id) ON UPDATE SET DEFAULT",
	} {
		err := db.exec(db.sess, q)
		require.True(t, sql.ErrForeignKeySetDefault.Is(err), "%s: %v", q, err)
	}
}

func TestContainsFold(t *testing.T) {
	for s, want := range map[string]bool{"SELECT SQL_CACHE a": true, "t Full join": true, "fu ll": false, "INSERT": true, "": false} {
		got := containsFold(s, "sql_cache") || containsFold(s, "full") || containsFold(s, "insert")
		require.Equal(t, want, got, s)
	}
}
