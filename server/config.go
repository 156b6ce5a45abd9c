package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/fogdb/fogdb/replication"
	"github.com/fogdb/fogdb/replication/mux"
	"github.com/fogdb/fogdb/sharding"
	"github.com/fogdb/fogdb/sharding/placement"
	"github.com/fogdb/fogdb/sqlfront"
)

// Config is a node's configuration.
type Config struct {
	// MySQLAddr is the MySQL protocol listener (host:port).
	MySQLAddr string
	// AdminAddr is the admin HTTP listener (health, readiness, status,
	// metrics); empty disables it. Like MySQLAddr, a non-loopback address
	// needs a root password: status reveals the node's layout.
	AdminAddr string
	// DataDir holds the node's state file.
	DataDir string
	// RootPassword is the password root is created with on the first start
	// of a new cluster (afterwards root's stored password counts, as ALTER
	// USER sets it); empty allows passwordless root, which Validate permits
	// only on a loopback listener.
	RootPassword string
	SQL          sqlfront.Config
	Logger       *slog.Logger

	// TLSCert and TLSKey are PEM files of the MySQL listener's certificate
	// and key; with them clients may use TLS. ReloadTLS rereads them.
	TLSCert, TLSKey string
	// RequireSecureTransport sets require_secure_transport at start:
	// clients without TLS are refused (3159). It needs TLSCert.
	RequireSecureTransport bool
	// MaxConnections and ConnectTimeout set the global max_connections
	// and connect_timeout at Start (zero leaves the current value); SET
	// GLOBAL changes them while the node runs.
	MaxConnections int
	ConnectTimeout time.Duration
	// SecureFilePriv (--secure-file-priv) is the one directory whose
	// files LOAD_FILE, LOAD DATA INFILE and SELECT ... INTO OUTFILE may
	// touch, for accounts holding FILE; empty leaves secure_file_priv
	// NULL: no file of the host is reachable through SQL.
	SecureFilePriv string

	// PlacementFile (--placement) is a placement file (docs/PLACEMENT.md)
	// stored as the cluster's placement when this node bootstraps a new
	// cluster; afterwards the admin API changes it.
	PlacementFile string

	Cluster ClusterConfig
}

// ClusterConfig places the node in a cluster. The zero value (with the
// defaults of DefaultConfig) is a single node that bootstraps a cluster of
// itself on first start.
type ClusterConfig struct {
	// NodeID is the node's stable identity. Empty means the one stored in
	// the data directory, or, on first start, a new random one.
	NodeID string
	// PeerAddr is the node's port for other nodes (Raft and forwarding).
	// Other nodes dial it as given unless AdvertisePeerAddr is set, so it
	// must then name a host.
	PeerAddr string
	// AdvertisePeerAddr is the address other nodes dial to reach PeerAddr,
	// and the one the cluster's membership records; empty means PeerAddr.
	// It lets a node sit behind NAT, a container network or a WAN
	// emulator, or listen on an unspecified address (0.0.0.0:7071).
	AdvertisePeerAddr string
	// PeerSourceAddr is the IP address this node's connections to other
	// nodes come from; empty lets the system choose. A WAN emulator that
	// tells sites apart by source address needs one per site when the
	// nodes share a host (127.0.1.1, 127.0.2.1, ...: every 127.0.0.0/8
	// address is local on Linux). Ignored when Dial is set.
	PeerSourceAddr string
	// Join is any member's peer address: a node started on an empty data
	// directory asks to be added there instead of bootstrapping. A node
	// with state ignores it.
	Join string
	// NonVoter joins as a non-voting replica (of every group).
	NonVoter bool
	// Site names the node's site: its rows of site-local data live in
	// that site's group, whose voters are nodes of the site. Nodes started
	// without one share the site "default".
	Site string
	// GlobalVoters bounds the global group's voters, spread over sites
	// (sharding.DesiredVoters).
	GlobalVoters int
	// Secret is the cluster secret every node shares. Empty is allowed only
	// for a node that neither joins nor listens beyond loopback: it then
	// gets a random one nobody else knows.
	Secret string
	// PeerCA, PeerCert and PeerKey (PEM files, all or none) put the peer
	// port in TLS 1.3 with mutual authentication: both ends of every
	// connection between nodes hold a certificate PeerCA signed.
	PeerCA, PeerCert, PeerKey string
	// Timeout bounds every wait for the group on a client's behalf:
	// reaching a leader, catching up with it and confirming a commit.
	Timeout time.Duration

	// Raft overrides replication's defaults where non-zero (tests make a
	// cluster react faster, or snapshot more often).
	TrailingLogs      uint64
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	HeartbeatTimeout  time.Duration
	ElectionTimeout   time.Duration

	// Dial replaces the TCP dialer towards other nodes: fault-injection
	// tests put a network they control there.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// AdvertiseVersion makes the node advertise and apply no more than
	// this version (replication.Config.AdvertiseVersion): rolling-upgrade
	// tests run one build as two.
	AdvertiseVersion replication.Version
	// UnsafeStaleReads turns the read barrier off (see replication.Config);
	// only the test proving the linearizability check can fail sets it.
	UnsafeStaleReads bool
}

// DefaultConfig is the embedded single-node default: 127.0.0.1:3306, the
// admin API on 127.0.0.1:7070, data in ./fogdb-data.
func DefaultConfig() Config {
	return Config{
		MySQLAddr: "127.0.0.1:3306",
		AdminAddr: "127.0.0.1:7070",
		DataDir:   "fogdb-data",
		// MySQL's defaults.
		MaxConnections: 151,
		ConnectTimeout: 10 * time.Second,
		SQL:            sqlfront.DefaultConfig(),
		Cluster: ClusterConfig{
			PeerAddr:     "127.0.0.1:7071",
			Site:         sharding.DefaultSite,
			GlobalVoters: 3,
			Timeout:      5 * time.Second,
			// A site group's voters are on one LAN: fail over in about a
			// second rather than raft's WAN-minded defaults.
			HeartbeatTimeout: 500 * time.Millisecond,
			ElectionTimeout:  500 * time.Millisecond,
		},
	}
}

// Sentinel errors of the server package.
var (
	// ErrInsecureListener: a non-loopback listener without a root password.
	ErrInsecureListener = errors.New("server: refusing to listen on a non-loopback address without a root password")
	// ErrNoClusterSecret: joining a cluster, or a peer port beyond
	// loopback, without a cluster secret.
	ErrNoClusterSecret = errors.New("server: a cluster secret is required to join a cluster or to listen for peers beyond loopback")
	// ErrShortClusterSecret: a cluster secret under mux.MinSecretSize bytes.
	ErrShortClusterSecret = fmt.Errorf("server: the cluster secret must be at least %d bytes; make one with: head -c 32 /dev/urandom | base64", mux.MinSecretSize)
)

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("server: data directory not set")
	}
	if err := c.checkListener("MySQL", c.MySQLAddr); err != nil {
		return err
	}
	if c.AdminAddr != "" {
		if err := c.checkListener("admin", c.AdminAddr); err != nil {
			return err
		}
	}
	if c.MaxConnections < 0 || c.MaxConnections > 100000 {
		return errors.New("server: max connections must be between 1 and 100000")
	}
	if c.ConnectTimeout != 0 && (c.ConnectTimeout < 2*time.Second || c.ConnectTimeout > 31536000*time.Second) {
		return errors.New("server: connect timeout must be between 2 s and 31536000 s")
	}
	if c.SecureFilePriv != "" {
		if st, err := os.Stat(c.SecureFilePriv); err != nil || !st.IsDir() {
			return fmt.Errorf("server: --secure-file-priv %s is not a directory", c.SecureFilePriv)
		}
	}
	if c.Cluster.PeerAddr == "" {
		return errors.New("server: peer address not set")
	}
	if a := c.Cluster.AdvertisePeerAddr; a != "" {
		if err := mux.CheckDialable(a); err != nil {
			return fmt.Errorf("server: advertised peer address: %w", err)
		}
	}
	if a := c.Cluster.PeerSourceAddr; a != "" {
		if ip := net.ParseIP(a); ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("server: peer source address %q: want an IP address of this host", a)
		}
	}
	if !placement.ValidSiteName(c.Cluster.Site) {
		return fmt.Errorf("server: site name %q: use 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit", c.Cluster.Site)
	}
	if c.Cluster.GlobalVoters < 1 || c.Cluster.GlobalVoters > 9 {
		return errors.New("server: global voters must be between 1 and 9")
	}
	if c.Cluster.Timeout <= 0 {
		return errors.New("server: cluster timeout must be positive")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("server: --tls-cert and --tls-key go together")
	}
	if c.RequireSecureTransport && c.TLSCert == "" {
		// MySQL refuses the same (ER_NO_SECURE_TRANSPORTS_CONFIGURED): no
		// client could connect.
		return errors.New("server: require_secure_transport needs --tls-cert and --tls-key")
	}
	if _, err := c.Cluster.peerFilesSet(); err != nil {
		return err
	}
	if n := len(c.Cluster.Secret); n > 0 && n < mux.MinSecretSize {
		return fmt.Errorf("%w (it is %d bytes)", ErrShortClusterSecret, n)
	}
	if c.Cluster.Secret == "" {
		host, _, err := net.SplitHostPort(c.Cluster.PeerAddr)
		if err != nil {
			return fmt.Errorf("server: peer address %q: %w", c.Cluster.PeerAddr, err)
		}
		if c.Cluster.Join != "" || !isLoopback(host) {
			return ErrNoClusterSecret
		}
	}
	return nil
}

// checkListener applies one rule to every listener: without a root
// password, only loopback.
func (c *Config) checkListener(what, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("server: %s address %q: %w", what, addr, err)
	}
	if c.RootPassword == "" && !isLoopback(host) {
		return fmt.Errorf("%w (%s %s)", ErrInsecureListener, what, addr)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) statePath() string  { return filepath.Join(c.DataDir, "state.db") }
func (c *Config) raftDir() string    { return filepath.Join(c.DataDir, "raft") }
func (c *Config) nodeIDPath() string { return filepath.Join(c.DataDir, "node-id") }
