package mux

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/pki"
)

// testPKI is a cluster CA in a temporary directory.
type testPKI struct {
	t   *testing.T
	dir string
}

func newTestPKI(t *testing.T) *testPKI {
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, 0))
	return &testPKI{t: t, dir: dir}
}

func (p *testPKI) pool() *x509.CertPool {
	b, err := os.ReadFile(filepath.Join(p.dir, "ca.crt"))
	require.NoError(p.t, err)
	pool := x509.NewCertPool()
	require.True(p.t, pool.AppendCertsFromPEM(b))
	return pool
}

func (p *testPKI) cert(name string, hosts ...string) *tls.Certificate {
	require.NoError(p.t, pki.Issue(p.dir, name, hosts, 0))
	c, err := tls.LoadX509KeyPair(filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key"))
	require.NoError(p.t, err)
	return &c
}

// tlsConfig is a node's mux configuration with certificate c from CA ca.
func tlsConfig(ca *testPKI, c *tls.Certificate) Config {
	cfg := testConfig(testSecret)
	cfg.ServerTLS, cfg.ClientTLS = MutualTLS(ca.pool(), func() (*tls.Certificate, error) { return c, nil })
	return cfg
}

func echoHandler(c net.Conn) {
	_, _ = io.Copy(c, c)
}

func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(waitFor)))
	_, err := c.Write([]byte("ping"))
	require.NoError(t, err)
	b := make([]byte, 4)
	_, err = io.ReadFull(c, b)
	require.NoError(t, err)
	require.Equal(t, "ping", string(b))
}

// Two nodes with certificates of the cluster CA talk over TLS 1.3, each
// having verified the other's certificate.
func TestMutualTLSBetweenMembers(t *testing.T) {
	ca := newTestPKI(t)
	srv := startMux(t, tlsConfig(ca, ca.cert("n1", "127.0.0.1")))
	srv.Handle(KindRPC, echoHandler)
	cli := startMux(t, tlsConfig(ca, ca.cert("n2", "127.0.0.1")))

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := cli.Dial(ctx, srv.Addr().String(), KindRPC)
	require.NoError(t, err)
	defer c.Close()
	tc, ok := c.(*tls.Conn)
	require.True(t, ok, "the dialled connection is TLS")
	st := tc.ConnectionState()
	require.Equal(t, uint16(tls.VersionTLS13), st.Version)
	require.Equal(t, "n1", st.PeerCertificates[0].Subject.CommonName)
	roundTrip(t, c)
	require.Equal(t, uint64(1), srv.Stats().Accepted)
}

// A dialer whose certificate another CA signed is refused, and so is one
// that speaks no TLS at all; neither reaches the route. A listener whose
// certificate another CA signed is refused by the dialer.
func TestTLSRefusesPeersOutsideTheCA(t *testing.T) {
	ca, other := newTestPKI(t), newTestPKI(t)
	srv := startMux(t, tlsConfig(ca, ca.cert("n1", "127.0.0.1")))
	reached := make(chan struct{}, 4)
	srv.Handle(KindRPC, func(c net.Conn) { reached <- struct{}{}; echoHandler(c) })

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// Same secret, certificate from another CA (trusting the cluster's, so
	// that the refusal is the listener's).
	strangerCfg := tlsConfig(other, other.cert("intruder", "127.0.0.1"))
	strangerCfg.ClientTLS.RootCAs = ca.pool()
	stranger := startMux(t, strangerCfg)
	c, err := stranger.Dial(ctx, srv.Addr().String(), KindRPC)
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "a peer with a certificate of another CA got in")
	require.Eventually(t, func() bool { return srv.Stats().Unauthorized == 1 }, waitFor, 5*time.Millisecond)

	// Same secret, no TLS.
	plain := startMux(t, testConfig(testSecret))
	c, err = plain.Dial(ctx, srv.Addr().String(), KindRPC)
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "a peer without TLS got in")
	require.Eventually(t, func() bool {
		s := srv.Stats()
		return s.Unauthorized+s.Failed+s.BadMagic == 2
	}, waitFor, 5*time.Millisecond)

	// The dialer checks the listener too.
	fake := startMux(t, tlsConfig(other, other.cert("fake", "127.0.0.1")))
	fake.Handle(KindRPC, echoHandler)
	member := startMux(t, tlsConfig(ca, ca.cert("n2", "127.0.0.1")))
	_, err = member.Dial(ctx, fake.Addr().String(), KindRPC)
	require.ErrorIs(t, err, ErrUnauthorized, "a member trusted a listener outside the CA")
	require.Zero(t, fake.Stats().Accepted)

	require.Zero(t, srv.Stats().Accepted)
	require.Len(t, reached, 0)
}

// The listener's certificate must name the host dialled.
func TestTLSChecksTheListenersName(t *testing.T) {
	ca := newTestPKI(t)
	srv := startMux(t, tlsConfig(ca, ca.cert("n1", "n1.fog.example")))
	srv.Handle(KindRPC, echoHandler)
	cli := startMux(t, tlsConfig(ca, ca.cert("n2", "127.0.0.1")))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := cli.Dial(ctx, srv.Addr().String(), KindRPC)
	require.ErrorIs(t, err, ErrUnauthorized)
	require.ErrorContains(t, err, "127.0.0.1")
}

// With TLS, the cluster secret is still required: a certificate of the
// cluster CA alone does not open the port.
func TestTLSKeepsTheSecret(t *testing.T) {
	ca := newTestPKI(t)
	srv := startMux(t, tlsConfig(ca, ca.cert("n1", "127.0.0.1")))
	srv.Handle(KindRPC, echoHandler)
	cfg := tlsConfig(ca, ca.cert("n2", "127.0.0.1"))
	cfg.Secret = []byte("another-secret-0123456789abcdefghij")
	cli := startMux(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := cli.Dial(ctx, srv.Addr().String(), KindRPC)
	require.ErrorIs(t, err, ErrUnauthorized)
	require.Zero(t, srv.Stats().Accepted)
}

// Raft layers run over TLS like RPC.
func TestRaftLayerOverTLS(t *testing.T) {
	ca := newTestPKI(t)
	srv := startMux(t, tlsConfig(ca, ca.cert("n1", "127.0.0.1")))
	cli := startMux(t, tlsConfig(ca, ca.cert("n2", "127.0.0.1")))
	l := srv.RaftLayer(7)
	acc := acceptAsync(l)
	c, err := cli.RaftLayer(7).Dial(raft.ServerAddress(l.Addr().String()), waitFor)
	require.NoError(t, err)
	defer c.Close()
	r := recvAccept(t, acc)
	require.NoError(t, r.err)
	defer r.conn.Close()
	_, ok := r.conn.(*tls.Conn)
	require.True(t, ok, "the raft layer got the TLS connection")
	go echoHandler(r.conn)
	roundTrip(t, c)
}

func TestTLSConfigValidate(t *testing.T) {
	ca := newTestPKI(t)
	cfg := tlsConfig(ca, ca.cert("n1", "127.0.0.1"))
	require.NoError(t, cfg.Validate())
	for _, tweak := range []func(*Config){
		func(c *Config) { c.ClientTLS = nil },
		func(c *Config) { c.ServerTLS = nil },
		func(c *Config) { c.ServerTLS = c.ServerTLS.Clone(); c.ServerTLS.MinVersion = tls.VersionTLS12 },
		func(c *Config) { c.ClientTLS = c.ClientTLS.Clone(); c.ClientTLS.MinVersion = tls.VersionTLS12 },
		func(c *Config) { c.ServerTLS = c.ServerTLS.Clone(); c.ServerTLS.ClientAuth = tls.RequestClientCert },
	} {
		c := cfg
		tweak(&c)
		require.ErrorIs(t, c.Validate(), ErrInvalidConfig)
	}
}
