package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

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
	mux.HandleFunc("GET /status", s.handleStatus)
	mux.HandleFunc("POST /cluster/remove", s.requireRoot(s.handleRemove))
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
		Groups:    []GroupStatus{gs},
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

// requireRoot guards the endpoints that change the cluster: HTTP basic
// authentication as root, with root's password.
func (s *Server) requireRoot(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "root" ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.RootPassword)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="fogdb admin"`)
			writeText(w, http.StatusUnauthorized, "root's user name and password are required\n")
			return
		}
		h(w, r)
	}
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
