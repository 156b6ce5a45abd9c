package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fogdb/fogdb/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	} else if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		fmt.Fprintf(os.Stderr, "fogdb: unknown command %q (commands: serve)\n", args[0])
		return 2
	}
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("fogdb serve", flag.ContinueOnError)
	fs.StringVar(&cfg.MySQLAddr, "mysql-addr", cfg.MySQLAddr, "MySQL protocol listen address")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", cfg.AdminAddr, "admin HTTP listen address (/healthz, /readyz, /status, /metrics); empty disables it")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	fs.StringVar(&cfg.RootPassword, "root-password", os.Getenv("FOGDB_ROOT_PASSWORD"), "root password, set on first start (default $FOGDB_ROOT_PASSWORD); required to listen on a non-loopback address")
	fs.DurationVar(&cfg.SQL.IdleTxnTimeout, "idle-txn-timeout", cfg.SQL.IdleTxnTimeout, "roll back transactions idle this long (0: never)")
	fs.Int64Var(&cfg.SQL.MaxTxnBytes, "max-txn-bytes", cfg.SQL.MaxTxnBytes, "largest transaction, in bytes of keys and values")
	fs.Int64Var(&cfg.SQL.MaxStatementMemory, "max-statement-memory", cfg.SQL.MaxStatementMemory, "default of max_statement_memory: bytes one statement may buffer (sorts, recursive CTEs); 0 for no limit")
	lockWait := fs.Int("lock-wait-timeout", int(cfg.SQL.DefaultLockWaitTimeout/time.Second), "default innodb_lock_wait_timeout, seconds")
	fs.StringVar(&cfg.Cluster.NodeID, "node-id", "", "this node's ID in the cluster (default: the one stored in --data-dir, or a new random one on first start)")
	fs.StringVar(&cfg.Cluster.PeerAddr, "peer-addr", cfg.Cluster.PeerAddr, "address for other nodes (Raft and forwarding); they dial it as given, so name a host")
	fs.StringVar(&cfg.Cluster.Join, "join", "", "peer address of any member: join that cluster on first start instead of bootstrapping one (ignored once the node has state)")
	fs.BoolVar(&cfg.Cluster.NonVoter, "non-voter", false, "join as a non-voting replica")
	fs.StringVar(&cfg.Cluster.Secret, "cluster-secret", os.Getenv("FOGDB_CLUSTER_SECRET"), "secret shared by every node of the cluster (default $FOGDB_CLUSTER_SECRET); required with --join or a non-loopback --peer-addr")
	fs.DurationVar(&cfg.Cluster.Timeout, "cluster-timeout", cfg.Cluster.Timeout, "longest wait for the cluster on a client's behalf before a write fails as unavailable (1047) or outcome unknown (1180)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.SQL.DefaultLockWaitTimeout = time.Duration(*lockWait) * time.Second
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "fogdb: --log-level: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	srv, err := server.New(cfg)
	if err != nil {
		cfg.Logger.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		cfg.Logger.Error("cannot start", "err", err)
		srv.Close()
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	cfg.Logger.Info("shutting down", "signal", s.String())
	if err := srv.Close(); err != nil {
		cfg.Logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}
