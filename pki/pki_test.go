package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInitAndIssue(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, InitCA(dir, 0))
	require.ErrorIs(t, InitCA(dir, 0), ErrCAExists, "an existing CA is never replaced")
	require.NoError(t, Issue(dir, "n1", []string{"fogdb-a", "10.0.0.5", "127.0.0.1"}, 0))

	ca, _, err := loadCA(dir)
	require.NoError(t, err)
	require.True(t, ca.IsCA)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"))
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	require.Equal(t, "n1", leaf.Subject.CommonName)
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok)
	require.Equal(t, elliptic.P256(), pub.Curve)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		for _, host := range []string{"fogdb-a", "10.0.0.5", "127.0.0.1"} {
			_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
			require.NoError(t, err, "%s as %v", host, usage)
		}
	}
	require.True(t, leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.5")))
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "fogdb-b"})
	require.Error(t, err, "a name not given is not covered")

	st, err := os.Stat(filepath.Join(dir, "n1.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "keys are private")

	require.Error(t, Issue(dir, "ca", []string{"x"}, 0), "would overwrite the CA")
	require.Error(t, Issue(dir, "../n2", []string{"x"}, 0))
	require.Error(t, Issue(dir, "n2", nil, 0), "no host")
	require.Error(t, Issue(t.TempDir(), "n2", []string{"x"}, 0), "no CA")
}

// A node's own directory gets its pair and the CA certificate, never the
// CA's key.
func TestIssueInto(t *testing.T) {
	caDir, out := t.TempDir(), filepath.Join(t.TempDir(), "n1")
	require.NoError(t, InitCA(caDir, 0))
	require.NoError(t, IssueInto(caDir, out, "n1", []string{"127.0.0.1"}, 0))
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"ca.crt", "n1.crt", "n1.key"}, names)
	caPEM, err := os.ReadFile(filepath.Join(out, "ca.crt"))
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(caDir, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	pair, err := tls.LoadX509KeyPair(filepath.Join(out, "n1.crt"), filepath.Join(out, "n1.key"))
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"})
	require.NoError(t, err)
	ca, _, err := loadCA(caDir)
	require.NoError(t, err)
	require.Equal(t, ca.Raw, mustPEMBlock(t, want))
}

func mustPEMBlock(t *testing.T, b []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk)
	return blk.Bytes
}
