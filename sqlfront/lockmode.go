package sqlfront

import "strings"

// go-mysql-server parses the locking clause of a SELECT (FOR UPDATE, FOR
// SHARE, LOCK IN SHARE MODE) into its AST (vitess Select.Lock and
// SetOp.Lock) but drops it when it builds the plan, and gives a table no
// hint of the statement it is read for. How a statement reads a table is
// therefore decided from two sources (Session.readMode):
//
//   - Writes come from the plan: the engine opens an editor for each table
//     that an Update, DeleteFrom or InsertInto node of the plan writes
//     (triggers and cascades included) while it builds the plan, before any
//     row is read. Those tables are read under exclusive locks, every other
//     table the statement reads under shared ones. The text plays no part,
//     so EXECUTE of a prepared UPDATE, WITH ... UPDATE or DELETE, and a
//     procedure's writes are all found.
//   - Locking clauses come from the statement's own text: the client's, for
//     EXECUTE the prepared statement's, printed from the AST the engine
//     cached for it, and for a statement of a procedure or stored function
//     body (which the engine runs without text) its AST printed by
//     stmtRunner. A clause anywhere in the text counts, whatever the
//     statement begins with (SET @x = (SELECT ... FOR UPDATE), INSERT ...
//     SELECT ... FOR SHARE). Quoted text and comments are skipped, so a
//     plain SELECT pays one pass over its text.

type stmtKind uint8

const (
	stmtUnknown stmtKind = iota
	stmtRead
	stmtLockShared
	stmtLockExclusive
)

// classify returns the strongest locking clause of a statement's text.
func classify(q string) stmtKind { return lockingClause(q) }

// executedName returns the name of the prepared statement that an EXECUTE
// statement runs.
func executedName(q string) (string, bool) {
	w, next := word(q, skipSpaceAndComments(q, 0))
	if w != "execute" {
		return "", false
	}
	name, _, ok := identAt(q, skipSpaceAndComments(q, next))
	return name, ok
}

// identAt reads an identifier, plain or backquoted, at i.
func identAt(q string, i int) (string, int, bool) {
	if i < len(q) && q[i] == '`' {
		end := skipQuoted(q, i)
		if end <= i+1 || q[end-1] != '`' {
			return "", i, false
		}
		return strings.ReplaceAll(q[i+1:end-1], "``", "`"), end, true
	}
	j := i
	for j < len(q) && (isWordByte(q[j]) || q[j] == '$' || q[j] >= 0x80) {
		j++
	}
	return q[i:j], j, j > i
}

// needsBarrier reports whether a statement may read the catalog or data:
// all but those that only change session or transaction state.
func needsBarrier(q string) bool {
	i := skipSpaceAndComments(q, 0)
	j := i
	for j < len(q) && isWordByte(q[j]) {
		j++
	}
	switch lowerASCII(q[i:j]) {
	case "set", "commit", "rollback", "begin", "start", "savepoint", "release", "kill":
		return false
	case "show":
		// The session's own state and the server's: nothing of the
		// catalog, so nothing to wait for (SHOW WARNINGS must answer on a
		// node cut off from the global group).
		w, _ := word(q, skipSpaceAndComments(q, j))
		switch w {
		case "warnings", "errors", "count", "status", "session", "global", "variables", "processlist":
			return false
		}
	}
	return true
}

// lockingClause looks for FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE as
// whole words, case-insensitively, outside quoted text and comments.
func lockingClause(q string) stmtKind {
	kind := stmtRead
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(q, i)
			continue
		case c == '#' || c == '-' && i+1 < len(q) && q[i+1] == '-' || c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := skipSpaceAndComments(q, i)
			if j == i {
				j++
			}
			i = j
			continue
		case !isWordByte(c):
			i++
			continue
		}
		w, next := word(q, i)
		switch w {
		case "for":
			w2, _ := word(q, skipSpaceAndComments(q, next))
			switch w2 {
			case "update":
				return stmtLockExclusive
			case "share":
				kind = stmtLockShared
			}
		case "lock":
			w2, n2 := word(q, skipSpaceAndComments(q, next))
			if w2 == "in" {
				w3, _ := word(q, skipSpaceAndComments(q, n2))
				if w3 == "share" {
					kind = stmtLockShared
				}
			}
		}
		i = next
	}
	return kind
}

func word(q string, i int) (string, int) {
	j := i
	for j < len(q) && isWordByte(q[j]) {
		j++
	}
	return lowerASCII(q[i:j]), j
}

func skipSpaceAndComments(q string, i int) int {
	for i < len(q) {
		switch c := q[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '-' && i+2 < len(q) && q[i+1] == '-' && (q[i+2] == ' ' || q[i+2] == '\t'):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := i + 2
			for end+1 < len(q) && !(q[end] == '*' && q[end+1] == '/') {
				end++
			}
			i = end + 2
		default:
			return i
		}
	}
	return i
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// RewriteQuery adapts MySQL 8 text the engine's parser does not take to an
// equivalent it does: FOR SHARE becomes LOCK IN SHARE MODE. (Words MySQL
// takes as names and the parser as keywords are the parser's business:
// dialectParser.) Quoted text and comments are left alone; a query
// needing nothing is returned as is, without copying.
func RewriteQuery(q string) string {
	var out []byte
	last := 0
	for i := 0; i < len(q); {
		switch c := q[i]; {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(q, i)
		case c == '#' || c == '-' && i+1 < len(q) && q[i+1] == '-' || c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := skipSpaceAndComments(q, i)
			if j == i {
				j++
			}
			i = j
		case (c|0x20) == 'f' && (i == 0 || !isWordByte(q[i-1])):
			w, next := word(q, i)
			if w == "for" {
				j := skipSpaceAndComments(q, next)
				if w2, end := word(q, j); w2 == "share" {
					out = append(out, q[last:i]...)
					out = append(out, "LOCK IN SHARE MODE"...)
					last, next = end, end
				}
			}
			i = next
		case isWordByte(c):
			_, next := word(q, i)
			i = next
		default:
			i++
		}
	}
	if out == nil {
		return q
	}
	return string(append(out, q[last:]...))
}

func skipQuoted(q string, i int) int {
	quote := q[i]
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if quote != '`' {
				j++
			}
		case quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}
