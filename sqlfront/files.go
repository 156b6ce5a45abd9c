package sqlfront

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/mysql_db"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/transform"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"
)

// Server-side file access (LOAD_FILE, LOAD DATA INFILE, SELECT ... INTO
// OUTFILE and DUMPFILE) goes through the checks MySQL makes, in MySQL's
// order: the FILE privilege, then secure_file_priv, which is NULL (no file
// at all) unless the node was started with a directory. The engine reads
// any file the process can when secure_file_priv is empty, which is its
// default, and checks neither FILE for SELECT ... INTO nor the table's
// INSERT privilege for LOAD DATA.

const secureFilePrivVar = "secure_file_priv"

// MySQL's errors for file access. The EE_ codes are those of MySQL's file
// layer, which it reports as they are.
const (
	eeStat              = 13   // EE_STAT
	eeFileNotFound      = 29   // EE_FILENOTFOUND
	erAccessDenied      = 1045 // ER_ACCESS_DENIED_ERROR
	erTextFileNotRead   = 1085 // ER_TEXTFILE_NOT_READABLE
	erFileExists        = 1086 // ER_FILE_EXISTS_ERROR
	erTableAccessDenied = 1142 // ER_TABLEACCESS_DENIED_ERROR
	erOptionPrevents    = 1290 // ER_OPTION_PREVENTS_STATEMENT
)

var errSecureFilePriv = mysql.NewSQLError(erOptionPrevents, "HY000",
	"The MySQL server is running with the --secure-file-priv option so it cannot execute this statement")

// nullableSysString is a string system variable that may be NULL, as
// secure_file_priv is when file access is disabled; the engine's string
// type turns NULL into "", which to the engine means any file.
type nullableSysString struct{ sql.SystemVariableType }

func (t nullableSysString) Convert(ctx context.Context, v any) (any, sql.ConvertInRange, error) {
	if v == nil {
		return nil, sql.InRange, nil
	}
	return t.SystemVariableType.Convert(ctx, v)
}

func secureFilePrivVariable() sql.SystemVariable {
	return &sql.MysqlSystemVariable{
		Name:  secureFilePrivVar,
		Scope: sql.GetMysqlScope(sql.SystemVariableScope_Global),
		// Read-only, as in MySQL: it is set when the node starts.
		Dynamic: false,
		Type:    nullableSysString{types.NewSystemStringType(secureFilePrivVar)},
		Default: nil,
	}
}

// SetSecureFilePriv sets secure_file_priv: "" disables server-side file
// access (NULL), anything else must be a directory, which is recorded as
// MySQL records it, its real path with a trailing separator. It returns
// the value set.
func SetSecureFilePriv(dir string) (string, error) {
	var val any
	if dir != "" {
		real, err := secureDir(dir)
		if err != nil {
			return "", err
		}
		val = real
	}
	if err := sql.SystemVariables.AssignValues(map[string]any{secureFilePrivVar: val}); err != nil {
		return "", fmt.Errorf("sqlfront: secure_file_priv: %w", err)
	}
	s, _ := val.(string)
	return s, nil
}

// secureDir is dir as secure_file_priv holds it.
func secureDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("sqlfront: secure_file_priv %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("sqlfront: secure_file_priv: %w", err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("sqlfront: secure_file_priv: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("sqlfront: secure_file_priv %s is not a directory", dir)
	}
	if !strings.HasSuffix(real, string(filepath.Separator)) {
		real += string(filepath.Separator)
	}
	return real, nil
}

// realPath is the file a name designates, as MySQL compares it with
// secure_file_priv: absolute, with every symbolic link resolved (of the
// directory only, for a file that does not exist yet). A relative name is
// taken from the node's working directory.
func realPath(name string) string {
	abs, err := filepath.Abs(name)
	if err != nil {
		return filepath.Clean(name)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}

// securePath reports whether secure_file_priv lets the server touch the
// file at real (a realPath).
func securePath(real string) bool {
	_, v, ok := sql.SystemVariables.GetGlobal(secureFilePrivVar)
	if !ok || v == nil {
		return false
	}
	dir, _ := v.(string)
	if dir == "" {
		// MySQL's empty secure_file_priv: no restriction. fogdb never
		// sets it so; the engine's own tests do.
		return true
	}
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		dir += string(filepath.Separator)
	}
	return strings.HasPrefix(real, dir)
}

// account is the user account a session logged in as ('app'@'%'), nil
// without one.
func (p *Provider) account(ctx *sql.Context) *mysql_db.User {
	db := p.grants.db.Load()
	if db == nil || !db.Enabled() {
		return nil
	}
	rd := db.Reader()
	defer rd.Close()
	c := ctx.Session.Client()
	return db.GetUser(rd, c.User, c.Address, false)
}

// hasFile reports whether the session holds the FILE privilege, which is a
// global one.
func (p *Provider) hasFile(ctx *sql.Context) bool {
	db := p.grants.db.Load()
	if db == nil || !db.Enabled() {
		return true
	}
	set := db.UserActivePrivilegeSet(ctx)
	return set.Has(sql.PrivilegeType_File) || set.Has(sql.PrivilegeType_Super)
}

// AccessDenied is MySQL's 1045 for the session of ctx, which MySQL answers
// to a statement that needs a global privilege the account lacks.
func AccessDenied(ctx *sql.Context) error {
	user, host := ctx.Session.Client().User, ctx.Session.Client().Address
	password := false
	if s, ok := ctx.Session.(*Session); ok {
		if s.p != nil {
			if a := s.p.account(ctx); a != nil {
				user, host = a.User, a.Host
			}
		}
		password = s.usedPassword.Load()
	}
	return accessDeniedError(user, host, password)
}

func accessDeniedError(user, host string, password bool) error {
	yes := "NO"
	if password {
		yes = "YES"
	}
	return mysql.NewSQLError(erAccessDenied, "28000", "Access denied for user '%s'@'%s' (using password: %s)", user, host, yes)
}

// SetUsedPassword records whether the session's client logged in with a
// password, which MySQL's access errors mention.
func (s *Session) SetUsedPassword(v bool) { s.usedPassword.Store(v) }

// UsedPassword tells whether the session's client logged in with a
// password.
func (s *Session) UsedPassword() bool { return s.usedPassword.Load() }

// osError is MySQL's file-layer error: its message shows the OS error
// number and text.
func osError(code int, format, path string, err error) error {
	errno := syscall.EIO
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if e, ok := pe.Err.(syscall.Errno); ok {
			errno = e
		}
	}
	return mysql.NewSQLError(code, "HY000", format+" (OS errno %d - %s)", path, int(errno), osErrText(errno))
}

// osErrText is strerror's text, which Go spells in lower case.
func osErrText(e syscall.Errno) string {
	s := e.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// checkFileStatement makes the checks MySQL makes before a statement
// reads or writes a file of the host. It returns the node to run in n's
// place (with the file's real path), or n when n touches no file.
func (p *Provider) checkFileStatement(ctx *sql.Context, n sql.Node) (sql.Node, error) {
	switch n := n.(type) {
	case *plan.Into:
		name := n.Outfile
		if name == "" {
			name = n.Dumpfile
		}
		if name == "" {
			return n, nil
		}
		if !p.hasFile(ctx) {
			return nil, AccessDenied(ctx)
		}
		real := realPath(name)
		if !securePath(real) {
			return nil, errSecureFilePriv
		}
		if _, err := os.Lstat(real); err == nil {
			return nil, mysql.NewSQLError(erFileExists, "HY000", "File '%s' already exists", real)
		}
		if real == name {
			return n, nil
		}
		c := *n
		if c.Outfile != "" {
			c.Outfile = real
		} else {
			c.Dumpfile = real
		}
		return &c, nil
	case *plan.InsertInto:
		var ld *plan.LoadData
		transform.Inspect(n.Source, func(n sql.Node) bool {
			if l, ok := n.(*plan.LoadData); ok {
				ld = l
			}
			return ld == nil
		})
		if ld == nil || ld.Local {
			return n, nil
		}
		if !p.hasFile(ctx) {
			return nil, AccessDenied(ctx)
		}
		return n, p.checkInsertGrant(ctx, n, ld.IsReplace)
	case *plan.LoadData:
		if n.Local {
			return n, nil
		}
		if !p.hasFile(ctx) {
			return nil, AccessDenied(ctx)
		}
		real := realPath(n.File)
		if !securePath(real) {
			return nil, errSecureFilePriv
		}
		st, err := os.Stat(real)
		if err != nil {
			return nil, osError(eeStat, "Can't get stat of '%s'", real, err)
		}
		if !st.Mode().IsRegular() && st.Mode()&fs.ModeNamedPipe == 0 {
			return nil, mysql.NewSQLError(erTextFileNotRead, "HY000", "The file '%s' must be in the database directory or be readable by all", real)
		}
		f, err := os.Open(real)
		if err != nil {
			return nil, osError(eeFileNotFound, "File '%s' not found", real, err)
		}
		f.Close()
		if real == n.File {
			return n, nil
		}
		c := *n
		c.File = real
		return &c, nil
	}
	return n, nil
}

// checkInsertGrant refuses a LOAD DATA into a table the account may not
// insert into (nor delete from, for REPLACE), as MySQL does.
func (p *Provider) checkInsertGrant(ctx *sql.Context, n *plan.InsertInto, replace bool) error {
	db := p.grants.db.Load()
	if db == nil || !db.Enabled() {
		return nil
	}
	table := ""
	dbName := n.Database().Name()
	if t, err := plan.GetInsertable(n.Destination); err == nil {
		table = t.Name()
	}
	privs := []sql.PrivilegeType{sql.PrivilegeType_Insert}
	if replace {
		privs = append(privs, sql.PrivilegeType_Delete)
	}
	for _, priv := range privs {
		op := sql.NewPrivilegedOperation(sql.PrivilegeCheckSubject{Database: dbName, Table: table}, priv)
		if db.UserHasPrivileges(ctx, op) {
			continue
		}
		user, host := ctx.Session.Client().User, ctx.Session.Client().Address
		if a := p.account(ctx); a != nil {
			user, host = a.User, a.Host
		}
		return mysql.NewSQLError(erTableAccessDenied, "42000", "%s command denied to user '%s'@'%s' for table '%s'",
			strings.ToUpper(priv.String()), user, host, table)
	}
	return nil
}

// loadFile is LOAD_FILE(name): the file's bytes, or NULL wherever MySQL
// answers NULL (no FILE privilege, outside secure_file_priv, missing, not
// a regular file readable by all, larger than max_allowed_packet).
type loadFile struct {
	name sql.Expression
	p    *Provider
}

var (
	_ sql.FunctionExpression = (*loadFile)(nil)
	_ sql.CollationCoercible = (*loadFile)(nil)
)

func (p *Provider) loadFileFunction() sql.Function {
	return sql.Function1{Name: "load_file", Fn: func(e sql.Expression) sql.Expression {
		return &loadFile{name: e, p: p}
	}}
}

func (l *loadFile) FunctionName() string { return "load_file" }
func (l *loadFile) Description() string {
	return "returns the contents of a file of the server's host."
}
func (l *loadFile) Resolved() bool             { return l.name.Resolved() }
func (l *loadFile) String() string             { return fmt.Sprintf("load_file(%s)", l.name) }
func (l *loadFile) Type() sql.Type             { return types.LongBlob }
func (l *loadFile) IsNullable() bool           { return true }
func (l *loadFile) Children() []sql.Expression { return []sql.Expression{l.name} }
func (l *loadFile) CollationCoercibility(*sql.Context) (sql.CollationID, byte) {
	return sql.Collation_binary, 4
}

func (l *loadFile) WithChildren(children ...sql.Expression) (sql.Expression, error) {
	if len(children) != 1 {
		return nil, sql.ErrInvalidChildrenNumber.New(l, len(children), 1)
	}
	return &loadFile{name: children[0], p: l.p}, nil
}

func (l *loadFile) Eval(ctx *sql.Context, row sql.Row) (any, error) {
	v, err := l.name.Eval(ctx, row)
	if err != nil || v == nil {
		return nil, err
	}
	s, _, err := types.LongText.Convert(ctx, v)
	if err != nil {
		return nil, err
	}
	name, _ := s.(string)
	if name == "" || !l.p.hasFile(ctx) {
		return nil, nil
	}
	real := realPath(name)
	if !securePath(real) {
		return nil, nil
	}
	// Not blocking: a named pipe is refused below, not waited on.
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o004 == 0 {
		return nil, nil
	}
	limit := sessionInt(ctx, "max_allowed_packet", DefaultMaxAllowedPacket)
	tooBig := func() (any, error) {
		ctx.Session.Warn(&sql.Warning{Level: "Warning", Code: erWarnAllowedPacketOverflowed,
			Message: fmt.Sprintf("Result of load_file() was larger than max_allowed_packet (%d) - truncated", limit)})
		return nil, nil
	}
	if st.Size() > limit {
		return tooBig()
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil
	}
	if int64(len(b)) > limit {
		return tooBig()
	}
	return b, nil
}
