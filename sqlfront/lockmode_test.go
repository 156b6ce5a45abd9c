package sqlfront

import "testing"

func TestClassify(t *testing.T) {
	cases := map[string]stmtKind{
		"SELECT * FROM t":                                        stmtRead,
		"select * from t where id = 1 for update":                stmtLockExclusive,
		"SELECT v FROM c WHERE id=1 FOR\n  UPDATE":               stmtLockExclusive,
		"select * from t lock in share mode":                     stmtLockShared,
		"SELECT * FROM t FOR SHARE":                              stmtLockShared,
		"SELECT * FROM t FOR SHARE NOWAIT":                       stmtLockShared,
		"/* client */ select 1":                                  stmtRead,
		"  (SELECT a FROM t) UNION (SELECT b FROM u) FOR UPDATE": stmtLockExclusive,
		"SELECT formula FROM t":                                  stmtRead,
		"SELECT * FROM forums":                                   stmtRead,
		"UPDATE t SET v = v + 1":                                 stmtRead,
		"INSERT INTO t SELECT * FROM u FOR UPDATE":               stmtLockExclusive,
		"SET @x = (SELECT v FROM t WHERE id = 1 FOR UPDATE)":     stmtLockExclusive,
		"DO (SELECT v FROM t LOCK IN SHARE MODE)":                stmtLockShared,
		"# comment\nselect 1":                                    stmtRead,
		"SET autocommit = 0":                                     stmtRead,
		"WITH x AS (SELECT 1) SELECT * FROM x FOR UPDATE":        stmtLockExclusive,
		"SELECT 'for update' FROM t":                             stmtRead,
		"SELECT `for` FROM t /* for update */ -- for share\n":    stmtRead,
		"SELECT \"lock in share mode\" FROM t":                   stmtRead,
		"":                                                       stmtRead,
	}
	for q, want := range cases {
		if got := classify(q); got != want {
			t.Errorf("classify(%q) = %d, want %d", q, got, want)
		}
	}
}

func TestExecutedName(t *testing.T) {
	cases := map[string]string{
		"EXECUTE s":                "s",
		"  execute stmt1 USING @a": "stmt1",
		"/* c */ EXECUTE `my s`":   "my s",
		"EXECUTE `a``b`":           "a`b",
	}
	for q, want := range cases {
		got, ok := executedName(q)
		if !ok || got != want {
			t.Errorf("executedName(%q) = %q, %v; want %q", q, got, ok, want)
		}
	}
	for _, q := range []string{"SELECT 1", "EXECUTE", "executes s", "PREPARE s FROM 'x'"} {
		if got, ok := executedName(q); ok {
			t.Errorf("executedName(%q) = %q, want none", q, got)
		}
	}
}

func TestRewriteQuery(t *testing.T) {
	cases := map[string]string{
		"SELECT v FROM r WHERE id = 1 FOR SHARE":          "SELECT v FROM r WHERE id = 1 LOCK IN SHARE MODE",
		"select v from r for  share":                      "select v from r LOCK IN SHARE MODE",
		"SELECT 'for share' FROM t":                       "SELECT 'for share' FROM t",
		"SELECT `for` FROM t FOR UPDATE":                  "SELECT `for` FROM t FOR UPDATE",
		"SELECT * FROM forshare":                          "SELECT * FROM forshare",
		"SELECT 'it''s' FROM t /* for share */ FOR SHARE": "SELECT 'it''s' FROM t /* for share */ LOCK IN SHARE MODE",
	}
	for in, want := range cases {
		if got := RewriteQuery(in); got != want {
			t.Errorf("RewriteQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNextTransactionOnly(t *testing.T) {
	cases := map[string]bool{
		"SET TRANSACTION ISOLATION LEVEL READ COMMITTED":         true,
		"set  transaction isolation level serializable":          true,
		"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED": false,
		"SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED":  false,
		"SET @@transaction_isolation = 'READ-COMMITTED'":         true,
		"SET @@SESSION.transaction_isolation = 'READ-COMMITTED'": false,
		"SET transaction_isolation = 'READ-COMMITTED'":           false,
		"SET @@transaction_isolation_x = 1":                      false,
		"SELECT @@transaction_isolation":                         false,
	}
	for q, want := range cases {
		if got := nextTransactionOnly(q, "transaction_isolation"); got != want {
			t.Errorf("nextTransactionOnly(%q) = %v, want %v", q, got, want)
		}
	}
}
