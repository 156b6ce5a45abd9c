package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/fogdb/fogdb/replication/mux"
)

// ErSecureTransportRequired is MySQL's ER_SECURE_TRANSPORT_REQUIRED.
const ErSecureTransportRequired = 3159

// keyPair holds a certificate and key read from files, swapped whole on
// reload so that a handshake in progress keeps the pair it started with.
type keyPair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if err := kp.reload(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *keyPair) reload() error {
	c, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("server: loading %s and %s: %w", kp.certFile, kp.keyFile, err)
	}
	kp.cur.Store(&c)
	return nil
}

func (kp *keyPair) get() *tls.Certificate { return kp.cur.Load() }

// mysqlTLS is the MySQL listener's TLS configuration, nil without
// --tls-cert. The certificate is looked up per handshake, so ReloadTLS takes
// effect for the next client without a restart.
func (s *Server) mysqlTLS() *tls.Config {
	if s.clientPair == nil {
		return nil
	}
	kp := s.clientPair
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return kp.get(), nil
		},
	}
}

// loadTLS reads the certificates the configuration names.
func (s *Server) loadTLS() error {
	if s.cfg.TLSCert != "" {
		kp, err := newKeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return err
		}
		s.clientPair = kp
	}
	return nil
}

// ReloadTLS rereads the MySQL listener's and the peer port's certificates
// and keys (SIGHUP). A file that does not load leaves the pair in use in
// place; the error says which.
func (s *Server) ReloadTLS() error {
	var errs []error
	if s.clientPair != nil {
		errs = append(errs, s.clientPair.reload())
	}
	if s.peerPair != nil {
		errs = append(errs, s.peerPair.reload())
	}
	return errors.Join(errs...)
}

// requireSecureTransport tells whether clients must use TLS now: the
// global variable, which --require-secure-transport sets at start and SET
// GLOBAL changes.
func requireSecureTransport() bool {
	_, v, ok := sql.SystemVariables.GetGlobal("require_secure_transport")
	if !ok {
		return false
	}
	switch x := v.(type) {
	case int8:
		return x != 0
	case bool:
		return x
	case int64:
		return x != 0
	}
	return false
}

type secureAuthServer struct{ mysql.AuthServer }

func (a secureAuthServer) AuthMethods() []mysql.AuthMethod {
	inner := a.AuthServer.AuthMethods()
	out := make([]mysql.AuthMethod, len(inner))
	for i, m := range inner {
		out[i] = secureAuthMethod{m}
	}
	return out
}

type secureAuthMethod struct{ mysql.AuthMethod }

// HandleUser takes every user of an insecure connection while TLS is
// required, so that the login reaches HandleAuthPluginData and fails with
// 3159: left to itself, caching_sha2_password declines a connection
// without TLS and the client would get a generic handshake error (2012).
func (m secureAuthMethod) HandleUser(c *mysql.Conn, user string) bool {
	// The first hook after the protocol code read the handshake response.
	markTLS(c)
	if !c.TLSEnabled() && requireSecureTransport() {
		return true
	}
	return m.AuthMethod.HandleUser(c, user)
}

// HandleAuthPluginData refuses an insecure connection before looking at
// what the client sent, so no password is checked over clear text once the
// server requires TLS.
func (m secureAuthMethod) HandleAuthPluginData(c *mysql.Conn, user string, serverData, clientData []byte, remote net.Addr) (mysql.Getter, error) {
	markTLS(c)
	if !c.TLSEnabled() && requireSecureTransport() {
		return nil, mysql.NewSQLError(ErSecureTransportRequired, "HY000",
			"Connections using insecure transport are prohibited while --require_secure_transport=ON.")
	}
	return m.AuthMethod.HandleAuthPluginData(c, user, serverData, clientData, remote)
}

// peerTLS reads the cluster CA and the node's pair for the peer port, nil
// configurations when none is given.
func (s *Server) peerTLS() (server, client *tls.Config, err error) {
	cc := s.cfg.Cluster
	if ok, err := cc.peerFilesSet(); !ok || err != nil {
		return nil, nil, err
	}
	pool, err := loadCAPool(cc.PeerCA)
	if err != nil {
		return nil, nil, err
	}
	kp, err := newKeyPair(cc.PeerCert, cc.PeerKey)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(kp.get().Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("server: --peer-cert: %w", err)
	}
	// A node whose own certificate the CA did not sign would be refused by
	// every peer: say so at start rather than as handshake failures.
	// It serves as both ends of peer connections, so it needs both uses.
	for _, use := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{use}}); err != nil {
			return nil, nil, fmt.Errorf("server: --peer-cert %s does not verify against --peer-ca %s as a TLS server and client: %w", cc.PeerCert, cc.PeerCA, err)
		}
	}
	s.peerPair = kp
	server, client = mux.MutualTLS(pool, func() (*tls.Certificate, error) { return kp.get(), nil })
	return server, client, nil
}

// peerFilesSet tells whether the peer port is configured for TLS: all of
// --peer-ca, --peer-cert and --peer-key, or none.
func (c *ClusterConfig) peerFilesSet() (bool, error) {
	n := 0
	for _, f := range []string{c.PeerCA, c.PeerCert, c.PeerKey} {
		if f != "" {
			n++
		}
	}
	switch n {
	case 0:
		return false, nil
	case 3:
		return true, nil
	}
	return false, errors.New("server: --peer-ca, --peer-cert and --peer-key go together")
}

func loadCAPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("server: cluster CA %s holds no PEM certificate", path)
	}
	return pool, nil
}

// tlsStatusNames are a connection's TLS version and cipher suite as MySQL
// names them in Ssl_version and Ssl_cipher: "TLSv1.3", and the suite's
// name (for TLS 1.3 the same in OpenSSL as in the standard; for TLS 1.2 the
// standard's, where MySQL shows OpenSSL's).
func tlsStatusNames(st tls.ConnectionState) (version, cipher string) {
	switch st.Version {
	case tls.VersionTLS13:
		version = "TLSv1.3"
	case tls.VersionTLS12:
		version = "TLSv1.2"
	default:
		version = tls.VersionName(st.Version)
	}
	return version, tls.CipherSuiteName(st.CipherSuite)
}
