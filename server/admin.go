package server

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/mysql_db"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fogdb/fogdb/replication"
)

// Version names the build in /status; release builds set it with
// -ldflags "-X github.com/fogdb/fogdb/server.Version=...".
var Version = "dev"

// adminShutdownTimeout bounds how long Close lets in-flight admin requests
// (a slow scrape, a stuck client) finish, so shutdown cannot hang on them.
const adminShutdownTimeout = 5 * time.Second

// admin is the node's HTTP side: health, readiness, status and metrics.
type admin struct {
	started time.Time
	// ready is true from the end of Start until Close begins, so a load
	// balancer stops sending clients before the MySQL listener goes away.
	ready atomic.Bool
	http  *http.Server
	ln    net.Listener
	done  chan struct{}
	// loopback: the listener is reachable from this host only. Elsewhere
	// /status needs root too, and root needs a password.
	loopback bool
}

// startAdmin marks the node ready and, unless AdminAddr is empty, serves the
// admin API. Start calls it once the MySQL listener is up.
func (s *Server) startAdmin() error {
	a := &admin{started: time.Now()}
	s.admin = a
	if s.cfg.AdminAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("server: admin listener: %w", err)
		}
		a.ln = ln
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
			a.loopback = tcp.IP.IsLoopback()
		}
		a.http = &http.Server{
			Handler:           s.adminHandler(),
			ReadHeaderTimeout: 10 * time.Second,
		}
		a.done = make(chan struct{})
		s.log.Info("fogdb serving admin API", "addr", ln.Addr().String())
		go func() {
			defer close(a.done)
			if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("admin listener stopped", "err", err)
			}
		}()
	}
	a.ready.Store(true)
	return nil
}

// markNotReady makes /readyz fail from the first moment of Close.
func (s *Server) markNotReady() {
	if s.admin != nil {
		s.admin.ready.Store(false)
	}
}

// stopAdmin shuts the admin API down, waiting up to adminShutdownTimeout for
// requests in flight. Close calls it before closing the store, so no handler
// reads a closed store in the normal case.
func (s *Server) stopAdmin() {
	a := s.admin
	if a == nil || a.http == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
	defer cancel()
	if err := a.http.Shutdown(ctx); err != nil {
		s.log.Warn("admin API did not stop in time; closing its connections", "err", err)
		_ = a.http.Close()
	}
	<-a.done
}

// AdminAddr is the address the admin API is bound to ("" when disabled).
func (s *Server) AdminAddr() string {
	if s.admin == nil || s.admin.ln == nil {
		return s.cfg.AdminAddr
	}
	return s.admin.ln.Addr().String()
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.HandleFunc("GET /status", s.requireRootOffLoopback(s.handleStatus))
	mux.HandleFunc("POST /cluster/remove", s.requireRoot(true, s.handleRemove))
	mux.HandleFunc("GET /placements", s.requireRoot(false, s.handleGetPlacements))
	mux.HandleFunc("PUT /placements", s.requireRoot(true, s.handlePutPlacements))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.newMetricsRegistry(), promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{s},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return mux
}

func (s *Server) isReady() bool { return s.admin != nil && s.admin.ready.Load() }

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	if !s.isReady() {
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	// A listener that cannot accept leaves the node unable to take new
	// clients however healthy the rest of it is.
	if s.mln != nil {
		if p := s.mln.problem(); p != "" {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+p+"\n")
			return
		}
	}
	writeText(w, http.StatusOK, "ready\n")
}

// NodeStatus is the body of GET /status. Its JSON names are an interface for
// operators' tools: README.md lists them, and they change only additively.
type NodeStatus struct {
	Version       string        `json:"version"`
	Node          string        `json:"node"`
	PeerAddr      string        `json:"peer_addr"`
	MySQLAddr     string        `json:"mysql_addr"`
	DataDir       string        `json:"data_dir"`
	Site          string        `json:"site"`
	Ready         bool          `json:"ready"`
	UptimeSeconds float64       `json:"uptime_seconds"`
	Groups        []GroupStatus `json:"groups"`
}

// GroupStatus describes one replication group the node belongs to: its
// Raft state as this node sees it (replication.Status).
type GroupStatus = replication.Status

func (s *Server) status() (NodeStatus, error) {
	gs := s.group.Status()
	if gs.Role == raft.Shutdown.String() {
		return NodeStatus{}, errors.New("the node is shut down")
	}
	st := NodeStatus{
		Version:   Version,
		Node:      string(s.node.ID()),
		PeerAddr:  s.node.Addr(),
		MySQLAddr: s.MySQLAddr(),
		DataDir:   s.cfg.DataDir,
		Ready:     s.isReady(),
		Site:      s.cfg.Cluster.Site,
		Groups:    []GroupStatus{gs},
	}
	if sg := s.SiteGroup(); sg != nil {
		st.Groups = append(st.Groups, sg.Status())
	}
	if s.admin != nil {
		st.UptimeSeconds = time.Since(s.admin.started).Seconds()
	}
	return st, nil
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	st, err := s.status()
	if err != nil {
		s.log.Warn("admin status", "err", err)
		writeText(w, http.StatusServiceUnavailable, "status unavailable\n")
		return
	}
	body, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		s.log.Error("admin status encoding", "err", err)
		writeText(w, http.StatusInternalServerError, "status encoding failed\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// requireRoot guards an endpoint with HTTP basic authentication as root,
// checked against root's account as stored, the one a MySQL login from the
// request's address would use (ALTER USER changes both). For a cluster
// change the node first catches up with the cluster, so a password changed
// on another node is the one that counts.
func (s *Server) requireRoot(change bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		code, msg := s.authRoot(r, change)
		if code != http.StatusOK {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="fogdb admin"`)
			}
			writeText(w, code, msg)
			return
		}
		h(w, r)
	}
}

// requireRootOffLoopback guards what only reveals the cluster's layout:
// open on a loopback admin address, root's otherwise.
func (s *Server) requireRootOffLoopback(h http.HandlerFunc) http.HandlerFunc {
	guarded := s.requireRoot(false, h)
	return func(w http.ResponseWriter, r *http.Request) {
		if s.admin != nil && s.admin.loopback {
			h(w, r)
			return
		}
		guarded(w, r)
	}
}

func (s *Server) authRoot(r *http.Request, change bool) (int, string) {
	const denied = "root's user name and password are required\n"
	user, pass, ok := r.BasicAuth()
	if !ok || user != "root" {
		return http.StatusUnauthorized, denied
	}
	if change {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Cluster.Timeout)
		err := s.prov.ReadBarrier(ctx)
		cancel()
		if err != nil {
			return http.StatusServiceUnavailable, "cannot reach the cluster to check root's password: " + err.Error() + "\n"
		}
	}
	ctx := sql.NewContext(r.Context())
	if err := s.prov.SyncGrants(ctx); err != nil {
		s.log.Error("admin authentication: loading users", "err", err)
		return http.StatusServiceUnavailable, "cannot read root's account\n"
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	db := s.engine.Analyzer.Catalog.MySQLDb
	rd := db.Reader()
	var root mysql_db.User
	found := false
	if u := db.GetUser(rd, "root", host, false); u != nil {
		root, found = *u, true
	}
	rd.Close()
	switch {
	case !found || root.Locked:
		return http.StatusUnauthorized, denied
	case root.AuthString == "":
		if s.admin == nil || !s.admin.loopback {
			return http.StatusForbidden, "root has no password: set one (ALTER USER root IDENTIFIED BY ...) to use the admin API on an address other hosts can reach\n"
		}
		if pass != "" {
			return http.StatusUnauthorized, denied
		}
	case !passwordMatches(root.Plugin, root.AuthString, pass):
		return http.StatusUnauthorized, denied
	}
	return http.StatusOK, ""
}

// passwordMatches checks a plain-text password against a stored
// authentication string, hashed as go-mysql-server stores it for each
// plugin.
func passwordMatches(plugin, stored, pass string) bool {
	var want []byte
	switch plugin {
	case string(mysql.MysqlNativePassword), "":
		h1 := sha1.Sum([]byte(pass))
		h2 := sha1.Sum(h1[:])
		want = []byte("*" + strings.ToUpper(hex.EncodeToString(h2[:])))
	case string(mysql.CachingSha2Password):
		digest, iterations, salt, _, err := mysql.DeserializeCachingSha2PasswordAuthString([]byte(stored))
		if err != nil || digest != "SHA256" {
			return false
		}
		if want, err = mysql.SerializeCachingSha2PasswordAuthString(pass, salt, iterations); err != nil {
			return false
		}
	default:
		return false
	}
	return subtle.ConstantTimeCompare(want, []byte(stored)) == 1
}

// handleRemove takes a node out of the group: POST /cluster/remove?id=NODE.
func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		writeText(w, http.StatusBadRequest, "missing ?id=NODE\n")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*s.cfg.Cluster.Timeout)
	defer cancel()
	err := s.group.Remove(ctx, raft.ServerID(id))
	switch {
	case err == nil:
		s.log.Info("node removed through the admin API", "id", id)
		writeText(w, http.StatusOK, "removed "+id+"\n")
	case errors.Is(err, replication.ErrNoSuchMember):
		writeText(w, http.StatusNotFound, err.Error()+"\n")
	case errors.Is(err, replication.ErrUnavailable):
		writeText(w, http.StatusServiceUnavailable, err.Error()+"\n")
	default:
		writeText(w, http.StatusInternalServerError, err.Error()+"\n")
	}
}
