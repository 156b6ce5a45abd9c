package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fogdb/fogdb/replication"
	"github.com/fogdb/fogdb/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

const commands = "serve, healthcheck, certs"

func run(args []string, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "healthcheck":
		return healthcheck(args, stderr)
	case "certs":
		return certs(args, stderr)
	}
	fmt.Fprintf(stderr, "fogdb: unknown command %q (commands: %s)\n", cmd, commands)
	return 2
}

// envName is the environment variable every flag also reads: FOGDB_ and the
// flag's name in upper case with dashes as underscores.
func envName(flagName string) string {
	return "FOGDB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args over the values the FOGDB_* environment variables
// give, so that a flag on the command line wins over its variable, which
// wins over the default.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		f.Usage += " [$" + envName(f.Name) + "]"
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				// The value itself may be a secret: name the variable only.
				err = fmt.Errorf("$%s: invalid value for --%s", envName(f.Name), f.Name)
			}
		}
	})
	if err != nil {
		fmt.Fprintf(fs.Output(), "fogdb: %v\n", err)
		return err
	}
	return fs.Parse(args)
}

// serveOpts are the flags of serve that are not fields of server.Config.
type serveOpts struct {
	lockWait, connectTimeout *int
	logLevel, logFormat      *string
}

// serveFlags defines serve's flags over cfg.
func serveFlags(cfg *server.Config, stderr io.Writer) (*flag.FlagSet, serveOpts) {
	fs := flag.NewFlagSet("fogdb serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.MySQLAddr, "mysql-addr", cfg.MySQLAddr, "MySQL protocol listen address")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", cfg.AdminAddr, "admin HTTP listen address (/healthz, /readyz, /status, /metrics); empty disables it")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	fs.StringVar(&cfg.RootPassword, "root-password", "", "root password, set on first start; required to listen on a non-loopback address")
	fs.DurationVar(&cfg.SQL.IdleTxnTimeout, "idle-txn-timeout", cfg.SQL.IdleTxnTimeout, "roll back transactions idle this long (0: never)")
	fs.Int64Var(&cfg.SQL.MaxTxnBytes, "max-txn-bytes", cfg.SQL.MaxTxnBytes, "largest transaction, in bytes of keys and values")
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "max_connections: most client connections at once, plus one kept for a SUPER or CONNECTION_ADMIN user; SET GLOBAL changes it")
	connectTimeout := fs.Int("connect-timeout", int(cfg.ConnectTimeout/time.Second), "connect_timeout: seconds a client has to log in; SET GLOBAL changes it")
	fs.Int64Var(&cfg.SQL.MaxStatementMemory, "max-statement-memory", cfg.SQL.MaxStatementMemory, "default of max_statement_memory: bytes one statement may buffer (sorts, recursive CTEs); 0 for no limit")
	fs.StringVar(&cfg.SecureFilePriv, "secure-file-priv", "", "secure_file_priv: the one directory whose files LOAD_FILE, LOAD DATA INFILE and SELECT ... INTO OUTFILE may read or write, for accounts holding FILE (default: none, secure_file_priv is NULL)")
	lockWait := fs.Int("lock-wait-timeout", int(cfg.SQL.DefaultLockWaitTimeout/time.Second), "default innodb_lock_wait_timeout, seconds")
	fs.StringVar(&cfg.Cluster.NodeID, "node-id", "", "this node's ID in the cluster (default: the one stored in --data-dir, or a new random one on first start)")
	fs.StringVar(&cfg.Cluster.PeerAddr, "peer-addr", cfg.Cluster.PeerAddr, "address for other nodes (Raft and forwarding); they dial it as given unless --advertise-peer-addr is set, so name a host")
	fs.StringVar(&cfg.Cluster.AdvertisePeerAddr, "advertise-peer-addr", "", "address other nodes dial to reach --peer-addr, recorded in the cluster's membership (default: --peer-addr); for a node behind NAT, a container network or a WAN emulator")
	fs.StringVar(&cfg.Cluster.PeerSourceAddr, "peer-source-addr", "", "IP address of this host that connections to other nodes come from (default: the system's choice); for a WAN emulator that tells sites apart by source address")
	fs.StringVar(&cfg.Cluster.Join, "join", "", "peer address of any member: join that cluster on first start instead of bootstrapping one (ignored once the node has state)")
	fs.BoolVar(&cfg.Cluster.NonVoter, "non-voter", false, "join as a non-voting replica of every group")
	fs.StringVar(&cfg.Cluster.Site, "site", cfg.Cluster.Site, "this node's site: the rows homed at it live in its site's group, whose voters are nodes of the site (fixed once the node has state)")
	fs.StringVar(&cfg.PlacementFile, "placement", "", "placement file (docs/PLACEMENT.md) stored as the cluster's placement when this node bootstraps a new cluster; afterwards GET and PUT /placements read and change it")
	fs.IntVar(&cfg.Cluster.GlobalVoters, "global-voters", cfg.Cluster.GlobalVoters, "most voters of the global group (the catalog and shared tables), spread over sites; the nodes beyond them hold non-voting replicas")
	fs.StringVar(&cfg.Cluster.Secret, "cluster-secret", "", "secret shared by every node of the cluster; required with --join or a non-loopback --peer-addr")
	fs.DurationVar(&cfg.Cluster.Timeout, "cluster-timeout", cfg.Cluster.Timeout, "longest wait for the cluster on a client's behalf before a write fails as unavailable (1047) or outcome unknown (1180)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) for MySQL clients' TLS; reloaded on SIGHUP")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert; reloaded on SIGHUP")
	fs.BoolVar(&cfg.RequireSecureTransport, "require-secure-transport", false, "refuse MySQL clients that do not use TLS (the require_secure_transport variable's value at start)")
	fs.StringVar(&cfg.Cluster.PeerCA, "peer-ca", "", "PEM CA certificate of the cluster: peer connections use TLS 1.3 and both ends must hold a certificate it signed")
	fs.StringVar(&cfg.Cluster.PeerCert, "peer-cert", "", "PEM certificate of this node, signed by --peer-ca; reloaded on SIGHUP")
	fs.StringVar(&cfg.Cluster.PeerKey, "peer-key", "", "PEM private key of --peer-cert; reloaded on SIGHUP")
	fs.Var(versionFlag{&cfg.Cluster.AdvertiseVersion}, "advertise-version", "act as an older build: advertise and apply no more than COMMANDS.SNAPSHOT (log entry types, snapshot format); rolling-upgrade tests run one build as two")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json (one JSON object a line)")
	return fs, serveOpts{lockWait: lockWait, connectTimeout: connectTimeout, logLevel: logLevel, logFormat: logFormat}
}

func serve(args []string, stderr io.Writer) int {
	cfg := server.DefaultConfig()
	fs, opts := serveFlags(&cfg, stderr)
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	cfg.SQL.DefaultLockWaitTimeout = time.Duration(*opts.lockWait) * time.Second
	cfg.ConnectTimeout = time.Duration(*opts.connectTimeout) * time.Second
	logger, err := newLogger(stderr, *opts.logFormat, *opts.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "fogdb: %v\n", err)
		return 2
	}
	cfg.Logger = logger
	bridgeLibraryLogs(logger)
	raiseFileLimit(logger)

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
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		s := <-sig
		if s == syscall.SIGHUP {
			if err := srv.ReloadTLS(); err != nil {
				cfg.Logger.Error("reloading certificates; keeping the ones in use", "err", err)
			} else {
				cfg.Logger.Info("certificates reloaded")
			}
			continue
		}
		cfg.Logger.Info("shutting down", "signal", s.String())
		break
	}
	if err := srv.Close(); err != nil {
		cfg.Logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// raiseFileLimit raises the soft limit on open files to the hard limit:
// every client connection holds one, and hosts often default to 1024. (The
// Go runtime stops one short of the hard limit.)
func raiseFileLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot read the open files limit", "err", err)
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("cannot raise the open files limit", "err", err, "hard_limit", lim.Max)
			return
		}
	}
	log.Debug("open files limit", "limit", lim.Cur)
}

// versionFlag is --advertise-version: COMMANDS.SNAPSHOT, no higher than
// this build's; empty for this build's own.
type versionFlag struct{ v *replication.Version }

func (f versionFlag) String() string {
	if f.v == nil || *f.v == (replication.Version{}) {
		return ""
	}
	return fmt.Sprintf("%d.%d", f.v.Commands, f.v.Snapshot)
}

func (f versionFlag) Get() any { return *f.v }

func (f versionFlag) Set(s string) error {
	if s == "" {
		*f.v = replication.Version{}
		return nil
	}
	var c, sn int
	if n, err := fmt.Sscanf(s, "%d.%d", &c, &sn); err != nil || n != 2 || fmt.Sprintf("%d.%d", c, sn) != s {
		return fmt.Errorf("want COMMANDS.SNAPSHOT, such as 1.1")
	}
	b := replication.BuildVersion
	if c < 1 || sn < 1 || c > int(b.Commands) || sn > int(b.Snapshot) {
		return fmt.Errorf("%s is not between 1.1 and this build's %d.%d", s, b.Commands, b.Snapshot)
	}
	*f.v = replication.Version{Commands: replication.CommandType(c), Snapshot: uint8(sn)}
	return nil
}
