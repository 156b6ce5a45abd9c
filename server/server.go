package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	sqle "github.com/dolthub/go-mysql-server"
	gmsserver "github.com/dolthub/go-mysql-server/server"
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/mysql_db"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/replication"
	"github.com/fogdb/fogdb/sharding"
	"github.com/fogdb/fogdb/sqlfront"
)

// Server is one fogdb node: the kv store, the SQL engine over it and the
// MySQL listener.
type Server struct {
	cfg   Config
	log   *slog.Logger
	node  *replication.Node
	group *replication.Group // the global group
	// siteGroup holds the rows homed at this node's site; topo places
	// the voters of both groups (sites.go).
	siteGroup  atomic.Pointer[replication.Group]
	siteMu     sync.Mutex // held while the site group opens; Close waits for it
	topo       *sharding.Topology
	parts      *sqlfront.PartSet // the groups sqlfront reaches, by ID
	specCache  atomic.Pointer[cachedSpec]
	homes      atomic.Pointer[homes] // where local tables' rows live (homes.go); nil until build
	groupsStop chan struct{}
	groupsOnce sync.Once
	// bootstrapped: this start created the cluster (--placement seeds it).
	bootstrapped bool
	prov         *sqlfront.Provider
	engine       *sqle.Engine
	mysql        *gmsserver.Server
	ln           net.Listener
	mln          *mysqlListener // listener.go
	admin        *admin         // admin.go

	clientPair, peerPair *keyPair // tls.go; nil without TLS

	commitSeconds *prometheus.HistogramVec // admin_metrics.go

	conns *connSet // open client connections (errors.go)

	usersDirty chan struct{}
	usersStop  chan struct{}
	usersDone  chan struct{}

	abort     atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// engineInit serialises go-mysql-server's engine construction (build).
var engineInit sync.Mutex

// New opens the data directory and builds the engine; Start serves.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cutEngineLogs()
	cfg.SQL.Logger = cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	}
	kopts := kv.DefaultOptions(cfg.statePath())
	kopts.Logger = cfg.Logger
	kopts.Clock = kv.NewClock(time.Now)
	eng, err := kv.Open(kopts)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, commitSeconds: newCommitHistogram(),
		usersDirty: make(chan struct{}, 1), usersStop: make(chan struct{}), usersDone: make(chan struct{}),
		conns: newConnSet(), groupsStop: make(chan struct{}),
	}
	if err := s.loadTLS(); err != nil {
		eng.Close()
		return nil, err
	}
	spec, err := cfg.readPlacementFile()
	if err != nil {
		eng.Close()
		return nil, err
	}
	if err := s.startCluster(eng, kopts); err != nil {
		s.closeCluster()
		return nil, err
	}
	if err := s.build(); err != nil {
		s.closeCluster()
		return nil, err
	}
	if err := s.startSite(kopts); err != nil {
		s.closeCluster()
		return nil, err
	}
	if err := s.applyPlacementFile(spec); err != nil {
		s.closeCluster()
		return nil, err
	}
	return s, nil
}

func (s *Server) closeCluster() error {
	s.groupsOnce.Do(func() { close(s.groupsStop) })
	// A site group opening in the background finishes (or sees the stop)
	// before the node's groups are shut down.
	s.siteMu.Lock()
	defer s.siteMu.Unlock()
	if s.node == nil {
		return nil
	}
	return s.node.Close()
}

func (s *Server) build() error {
	sqlCfg := s.cfg.SQL
	sqlCfg.OnCommit = s.observeCommit
	sqlCfg.OnGrantsChanged = s.usersChanged
	sqlCfg.Topology = s.topology
	sqlCfg.PlaceTable = func(ctx *sql.Context, db, table string) (sqlfront.TablePlacement, error) {
		return s.placeTable(ctx, db, table)
	}
	h := &homes{s: s}
	sqlCfg.Homes = h
	sqlCfg.ReadPolicy = s.readPolicy
	// The site group joins the parts when it opens (sites.go).
	s.parts = sqlfront.NewPartSet(sqlfront.GroupStore{G: s.group}, nil)
	// Published after the parts: the global group's apply hook
	// (followPeerSites) refreshes homes from its own goroutine.
	s.homes.Store(h)
	prov, err := sqlfront.NewProviderOn(s.parts, sqlCfg)
	if err != nil {
		return err
	}
	s.prov = prov
	// The engine's constructor initialises package-level status
	// variables without a lock: nodes built at once in one process
	// (tests) take turns.
	engineInit.Lock()
	s.engine = sqle.NewDefault(prov)
	engineInit.Unlock()
	prov.AttachEngine(s.engine)
	s.engine.ProcessList = processList{s.engine.ProcessList}
	s.engine.Analyzer.ExecBuilder = s.prov.NewExecBuilder()
	cancellableAnalyzer(s.engine.Analyzer)
	go s.reloadUsers()
	s.catchUp(2 * s.cfg.Cluster.Timeout)
	return s.loadUsers()
}

// loadUsers restores users and grants, creating root on first start.
func (s *Server) loadUsers() error {
	db := s.engine.Analyzer.Catalog.MySQLDb
	ctx := s.newContext(context.Background())
	found, err := s.prov.AttachMySQLDb(ctx, db)
	if err != nil {
		return fmt.Errorf("server: stored users and grants: %w", err)
	}
	if !found && s.cfg.Cluster.Join != "" {
		// A joining node gets users and grants from the cluster; it must
		// never write a root of its own over them.
		return errors.New("server: joined, but no users and grants arrived from the cluster; restart to retry")
	}
	db.SetEnabled(true)
	if !found {
		ed := db.Editor()
		db.AddSuperUser(ed, "root", "localhost", s.cfg.RootPassword)
		db.AddSuperUser(ed, "root", "%", s.cfg.RootPassword)
		ed.Close()
		ed = db.Editor()
		defer ed.Close()
		if err := db.Persist(ctx, ed); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) newContext(ctx context.Context) *sql.Context {
	sess := s.prov.NewSession(sql.NewBaseSession())
	return sql.NewContext(ctx, sql.WithSession(sess))
}

func (s *Server) sessionBuilder(_ context.Context, conn *mysql.Conn, addr string) (sql.Session, error) {
	host, user := "", ""
	if u, ok := conn.UserData.(sql.MysqlConnectionUser); ok {
		host, user = u.Host, u.User
	}
	client := sql.Client{Address: host, User: user, Capabilities: conn.Capabilities}
	sess := s.prov.NewSession(sql.NewBaseSessionWithClientServer(addr, client, conn.ConnectionID))
	if g := guardedOf(conn.Conn); g != nil {
		sess.SetUsedPassword(g.usedPassword)
		// The guard runs the client's TLS (guardconn.go): the protocol
		// code's connection is the guard, not a *tls.Conn.
		if tc, ok := g.tr.(*tls.Conn); ok && g.tlsOn {
			sess.SetTLS(tlsStatusNames(tc.ConnectionState()))
		}
	} else if tc, ok := conn.Conn.(*tls.Conn); ok {
		sess.SetTLS(tlsStatusNames(tc.ConnectionState()))
	}
	return sess, nil
}

// Start listens and serves MySQL clients until Close.
func (s *Server) Start() error {
	if s.cfg.RequireSecureTransport {
		if err := sql.SystemVariables.SetGlobal(sql.NewEmptyContext(), "require_secure_transport", int8(1)); err != nil {
			return fmt.Errorf("server: require_secure_transport: %w", err)
		}
	}
	ln, err := net.Listen("tcp", s.cfg.MySQLAddr)
	if err != nil {
		return fmt.Errorf("server: MySQL listener: %w", err)
	}
	s.ln = ln
	if err := s.applyConnectionLimits(); err != nil {
		ln.Close()
		return err
	}
	// Set at every start: the variable is the process's, shared by the
	// nodes of an in-process cluster.
	if _, err := sqlfront.SetSecureFilePriv(s.cfg.SecureFilePriv); err != nil {
		ln.Close()
		return err
	}
	// TLS is run by each connection's guard (guardconn.go), not by the
	// protocol code, so that the guard sees every client's packets.
	s.mln = newMySQLListener(ln, s.log, s.mysqlTLS())
	gcfg := gmsserver.Config{Protocol: "tcp", Address: ln.Addr().String(), Listener: s.mln,
		ProtocolListenerFactory: s.protocolListener}
	srv, err := gmsserver.NewServerWithHandler(gcfg, s.engine, sql.NewContext, s.sessionBuilder, nil,
		func(h mysql.Handler) (mysql.Handler, error) {
			return errorEdge{Handler: h, prov: s.prov, conns: s.conns}, nil
		})
	if err != nil {
		ln.Close()
		return err
	}
	s.mysql = srv
	s.log.Info("fogdb serving MySQL", "addr", ln.Addr().String(), "data", s.cfg.DataDir)
	go func() {
		if err := srv.Start(); err != nil {
			s.log.Debug("MySQL listener stopped", "err", err)
		}
		s.mln.loopReturned()
	}()
	if err := s.startAdmin(); err != nil {
		_ = srv.Close()
		return err
	}
	return nil
}

// protocolListener is the engine's MySQL listener with authentication
// hooked for max_connections and connect_timeout (admissionAuth).
func (s *Server) protocolListener(cfg gmsserver.Config, lc mysql.ListenerConfig, sel gmsserver.ServerEventListener) (gmsserver.ProtocolListener, error) {
	// TLS policy wraps admission, so an insecure login is refused with
	// 3159 before it counts against max_connections.
	lc.AuthServer = secureAuthServer{admissionAuth{AuthServer: lc.AuthServer, db: s.engine.Analyzer.Catalog.MySQLDb, onLogin: s.loggedIn,
		tlsRequirement: s.prov.AccountTLSRequirement}}
	return gmsserver.MySQLProtocolListenerFactory(cfg, lc, sel)
}

// applyConnectionLimits sets the global max_connections and connect_timeout
// from the configuration where it names them; SET GLOBAL changes them later.
func (s *Server) applyConnectionLimits() error {
	ctx := s.newContext(context.Background())
	if n := s.cfg.MaxConnections; n > 0 {
		if err := sql.SystemVariables.SetGlobal(ctx, "max_connections", int64(n)); err != nil {
			return fmt.Errorf("server: max_connections: %w", err)
		}
	}
	if t := s.cfg.ConnectTimeout; t > 0 {
		if err := sql.SystemVariables.SetGlobal(ctx, "connect_timeout", int64(t/time.Second)); err != nil {
			return fmt.Errorf("server: connect_timeout: %w", err)
		}
	}
	return nil
}

// MySQLAddr is the address the MySQL listener is bound to.
func (s *Server) MySQLAddr() string {
	if s.ln == nil {
		return s.cfg.MySQLAddr
	}
	return s.ln.Addr().String()
}

// MySQLConnections is the number of client connections open, counted as
// max_connections counts them (from accept, whether logged in or not).
func (s *Server) MySQLConnections() int64 {
	if s.mln == nil {
		return 0
	}
	return s.mln.open.Load()
}

// Provider exposes the SQL backend (tests and tools).
func (s *Server) Provider() *sqlfront.Provider { return s.prov }

// Engine exposes the SQL engine (tests and tools).
func (s *Server) Engine() *sqle.Engine { return s.engine }

// KV exposes the local replica (tests count fsyncs and keys read through
// it). Installing a snapshot replaces it, so ask again after one.
func (s *Server) KV() *kv.Engine { return s.group.Engine() }

// Abort stops the node as a crash would look to the rest of the cluster:
// like Close, but a leader does not hand leadership over first, so the
// others notice by missed heartbeats and elect. Fault tests use it.
func (s *Server) Abort() error {
	s.abort.Store(true)
	return s.Close()
}

// Close stops the listener, closes client connections and the store. Every
// acknowledged commit is already durable, so nothing more needs flushing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.markNotReady()
		if s.mysql != nil {
			_ = s.mysql.Close()
		}
		s.conns.closeAll()
		if s.prov != nil {
			if !s.abort.Load() {
				// The next leader (or this node, restarted) then resumes
				// right after the last value handed out.
				ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Cluster.Timeout)
				if err := s.prov.ReleaseSequences(ctx); err != nil {
					s.log.Warn("giving back reserved sequence values", "err", err)
				}
				cancel()
			}
			s.prov.Close()
		}
		s.stopAdmin()
		close(s.usersStop)
		<-s.usersDone
		if !s.abort.Load() {
			for _, g := range []*replication.Group{s.siteGroup.Load(), s.group} {
				if g == nil {
					continue
				}
				if err := g.HandOver(s.cfg.Cluster.Timeout); err != nil {
					s.log.Warn("shutting down as leader", "group", g.Status().Group, "err", err)
				}
			}
		}
		s.closeErr = s.closeCluster()
	})
	return s.closeErr
}

var _ mysql_db.MySQLDbPersistence = (*sqlfront.Provider)(nil)
