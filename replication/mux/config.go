package mux

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures a Mux. Build it with DefaultConfig, set Secret, and
// override what else needs to change; New validates it.
type Config struct {
	// Secret is the cluster secret every node shares. Peers prove they know
	// it without sending it. At least MinSecretSize bytes, random: its
	// strength is the whole of the port's protection.
	Secret []byte

	// HandshakeTimeout bounds the whole handshake, on both sides, so a
	// peer that connects and goes silent cannot hold a goroutine.
	HandshakeTimeout time.Duration

	// MaxHandshakes bounds the connections in handshake at once, so a
	// flood of unauthenticated connections holds a bounded number of
	// goroutines and file descriptors; connections beyond it are closed as
	// soon as they are accepted.
	MaxHandshakes int

	// FailureBurst and FailureRefill limit failed handshakes per source
	// address (an IPv4 address, an IPv6 /64): a source may fail
	// FailureBurst handshakes in a row, then one per FailureRefill; while
	// over its budget its connections are closed as soon as they are
	// accepted, before any handshake.
	FailureBurst  int
	FailureRefill time.Duration

	// AdvertiseAddr is the host:port the other nodes dial to reach this
	// node, reported by the raft layers' Addr. When empty, the listener's
	// own address is used, which must then name a host.
	AdvertiseAddr string

	// Dial opens the TCP connection to another node's Mux; nil means a
	// plain net.Dialer. Fault-injection tests put a network between nodes
	// here.
	Dial func(ctx context.Context, addr string) (net.Conn, error)

	// ServerTLS and ClientTLS, both set or both nil, put every connection
	// in TLS before the handshake: ServerTLS on accepted connections,
	// ClientTLS on dialled ones (its ServerName defaults to the dialled
	// host). Both must require TLS 1.3, and ServerTLS must require and
	// verify the dialer's certificate; MutualTLS builds such a pair.
	ServerTLS *tls.Config
	ClientTLS *tls.Config

	// Logger receives rejected connections and accept errors. Nil means
	// silence.
	Logger hclog.Logger
}

// DefaultConfig returns a configuration with every setting but Secret.
func DefaultConfig() Config {
	return Config{
		HandshakeTimeout: 5 * time.Second,
		MaxHandshakes:    64,
		FailureBurst:     10,
		FailureRefill:    time.Second,
		Logger:           hclog.NewNullLogger(),
	}
}

// MinSecretSize is the shortest cluster secret accepted, in bytes.
const MinSecretSize = 32

// Validate reports the first setting that cannot work; the error wraps
// ErrInvalidConfig.
func (c Config) Validate() error {
	if len(c.Secret) == 0 {
		return fmt.Errorf("%w: a cluster secret is required", ErrInvalidConfig)
	}
	if len(c.Secret) < MinSecretSize {
		return fmt.Errorf("%w: the cluster secret is %d bytes; at least %d are required", ErrInvalidConfig, len(c.Secret), MinSecretSize)
	}
	if c.HandshakeTimeout <= 0 {
		return fmt.Errorf("%w: handshake timeout must be positive, got %s", ErrInvalidConfig, c.HandshakeTimeout)
	}
	if c.MaxHandshakes < 1 {
		return fmt.Errorf("%w: MaxHandshakes must be at least 1, got %d", ErrInvalidConfig, c.MaxHandshakes)
	}
	if c.FailureBurst < 1 || c.FailureRefill <= 0 {
		return fmt.Errorf("%w: FailureBurst must be at least 1 and FailureRefill positive", ErrInvalidConfig)
	}
	if (c.ServerTLS == nil) != (c.ClientTLS == nil) {
		return fmt.Errorf("%w: ServerTLS and ClientTLS go together", ErrInvalidConfig)
	}
	if c.ServerTLS != nil {
		if c.ServerTLS.MinVersion < tls.VersionTLS13 || c.ClientTLS.MinVersion < tls.VersionTLS13 {
			return fmt.Errorf("%w: peer TLS must require TLS 1.3", ErrInvalidConfig)
		}
		if c.ServerTLS.ClientAuth != tls.RequireAndVerifyClientCert {
			return fmt.Errorf("%w: peer TLS must require and verify the dialer's certificate", ErrInvalidConfig)
		}
	}
	if c.AdvertiseAddr != "" {
		if err := CheckDialable(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("%w: advertise address: %v", ErrInvalidConfig, err)
		}
	}
	return nil
}

// CheckDialable refuses addresses a peer could not dial: Raft hands this
// address to the other nodes as the way back to this one.
func CheckDialable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || port == "" || port == "0" {
		return fmt.Errorf("%q does not name a host and a port", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q is an unspecified address", addr)
	}
	return nil
}

// MutualTLS returns the ServerTLS and ClientTLS of a node whose peers all
// hold certificates signed by the cluster CA in ca: TLS 1.3 only, each side
// verifying the other's chain to ca. cert is asked for the node's own
// certificate at every handshake, so replacing what it returns rotates the
// certificate without a restart.
func MutualTLS(ca *x509.CertPool, cert func() (*tls.Certificate, error)) (server, client *tls.Config) {
	server = &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  ca,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cert()
		},
	}
	client = &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    ca,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert()
		},
	}
	return server, client
}
