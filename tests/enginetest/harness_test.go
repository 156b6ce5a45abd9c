//go:build enginetest

package enginetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dolthub/go-mysql-server/enginetest"
	"github.com/dolthub/go-mysql-server/enginetest/scriptgen/setup"
	"github.com/dolthub/go-mysql-server/memory"
	gmsserver "github.com/dolthub/go-mysql-server/server"
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/sqlfront"
)

// fogHarness runs go-mysql-server's engine tests against fogdb: every
// engine gets a fresh store in its own directory.
type fogHarness struct {
	t       *testing.T
	setup   []setup.SetupScript
	prov    *sqlfront.Provider
	session *sqlfront.Session
}

var (
	_ enginetest.Harness             = (*fogHarness)(nil)
	_ enginetest.IndexHarness        = (*fogHarness)(nil)
	_ enginetest.ForeignKeyHarness   = (*fogHarness)(nil)
	_ enginetest.KeylessTableHarness = (*fogHarness)(nil)
	_ enginetest.TransactionHarness  = (*fogHarness)(nil)
	_ enginetest.ClientHarness       = (*fogHarness)(nil)
	_ enginetest.ServerHarness       = (*fogHarness)(nil)
	_ enginetest.SkippingHarness     = (*fogHarness)(nil)
)

func newFogHarness(t *testing.T) *fogHarness { return &fogHarness{t: t} }

func init() {
	// The suites' SHOW CREATE TABLE texts are the engine's own formatter's
	// (no DEFAULT NULL on nullable columns, NOT NULL before GENERATED);
	// fogdb prints MySQL 8's (sqlfront/showcreate.go, checked against
	// MySQL's text in tests/wire), so they are compared with the engine's.
	sql.GlobalSchemaFormatter = &sql.MySqlSchemaFormatter{}
}

// storeDir is where test stores live: tmpfs when the machine has one, so
// the suite's many thousand commits do not each wait for a disk flush. The
// fsync calls still happen; they are just cheap there.
func storeDir(t *testing.T) string {
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "fogdb-enginetest-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (h *fogHarness) openProvider(t *testing.T) *sqlfront.Provider {
	opts := kv.DefaultOptions(filepath.Join(storeDir(t), "state.db"))
	opts.GCInterval = 0
	eng, err := kv.Open(opts)
	require.NoError(t, err)
	cfg := sqlfront.DefaultConfig()
	cfg.IdleTxnTimeout = 0
	// The suites expect go-mysql-server's default collation.
	cfg.DefaultCollation = sql.Collation_Default
	// and its default sql_mode: their expectations store zero dates, which
	// MySQL 8.0's default (NO_ZERO_DATE, strict) refuses.
	cfg.SQLMode = sql.DefaultSqlMode
	// and its backends' order of keys (by name; fogdb's is InnoDB's).
	cfg.KeysByName = true
	prov, err := sqlfront.NewProvider(eng, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		prov.Close()
		eng.Close()
	})
	return prov
}

func (h *fogHarness) provider() *sqlfront.Provider {
	if h.prov == nil {
		h.prov = h.openProvider(h.t)
	}
	return h.prov
}

func (h *fogHarness) NewContext() *sql.Context {
	if h.session == nil {
		h.session = h.provider().NewSession(enginetest.NewBaseSession())
	}
	return sql.NewContext(context.Background(), sql.WithSession(h.session))
}

func (h *fogHarness) NewSession() *sql.Context {
	h.session = h.provider().NewSession(enginetest.NewBaseSession())
	return h.NewContext()
}

func (h *fogHarness) NewContextWithClient(client sql.Client) *sql.Context {
	base := sql.NewBaseSessionWithClientServer("address", client, 1)
	return sql.NewContext(context.Background(), sql.WithSession(h.provider().NewSession(base)))
}

func (h *fogHarness) SessionBuilder() gmsserver.SessionBuilder {
	return func(_ context.Context, c *mysql.Conn, addr string) (sql.Session, error) {
		host, user := "", ""
		if u, ok := c.UserData.(sql.MysqlConnectionUser); ok {
			host, user = u.Host, u.User
		}
		client := sql.Client{Address: host, User: user, Capabilities: c.Capabilities}
		return h.provider().NewSession(sql.NewBaseSessionWithClientServer(addr, client, c.ConnectionID)), nil
	}
}

func (h *fogHarness) Setup(scripts ...[]setup.SetupScript) {
	h.setup = nil
	for _, s := range scripts {
		h.setup = append(h.setup, s...)
	}
}

func (h *fogHarness) NewEngine(t *testing.T) (enginetest.QueryEngine, error) {
	h.t = t
	h.prov = h.openProvider(t)
	h.session = nil
	e, err := enginetest.NewEngine(t, h, h.prov, h.setup, memory.NewStatsProv())
	if e != nil {
		h.prov.AttachEngine(e)
	}
	// Tests start on a fresh session, not the one the setup ran on (its
	// LAST_INSERT_ID and variables would leak into results).
	h.session = nil
	return e, err
}

func (h *fogHarness) SupportsNativeIndexCreation() bool { return true }
func (h *fogHarness) SupportsForeignKeys() bool         { return true }
func (h *fogHarness) SupportsKeylessTables() bool       { return true }

// SkipQueryTest skips the queries of skipQueries, each listed with why.
func (h *fogHarness) SkipQueryTest(query string) bool {
	_, ok := skipQueries[strings.ToLower(strings.TrimSpace(query))]
	return ok
}

// skipQueries: queries fogdb does not run, with the reason for each.
var skipQueries = map[string]string{}
