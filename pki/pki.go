package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// ErrCAExists is returned by InitCA where a CA is already.
var ErrCAExists = errors.New("pki: a CA exists")

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// InitCA makes a cluster CA in dir: ca.crt and ca.key (ECDSA P-256), valid
// for days (3650 when 0). It refuses to replace an existing CA, which would
// orphan every certificate it signed.
func InitCA(dir string, days int) error {
	if days == 0 {
		days = 3650
	}
	crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	for _, p := range []string{crt, key} {
		if _, err := os.Stat(p); err == nil {
			// Replacing the CA would orphan every node certificate it signed.
			return fmt.Errorf("%w: %s exists; remove it to make a new CA", ErrCAExists, p)
		}
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "fogdb cluster CA", Organization: []string{"fogdb"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writePair(crt, key, der, priv)
}

var certName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Issue makes name.crt and name.key in dir, signed by the CA there, for
// the DNS names and IP addresses in hosts, usable as a TLS server and as a
// TLS client, valid for days (825 when 0, never past the CA).
func Issue(dir, name string, hosts []string, days int) error {
	return IssueInto(dir, dir, name, hosts, days)
}

// IssueInto is Issue with the CA in caDir and the new pair written to
// outDir, with a copy of the CA certificate (ca.crt) beside it: what one
// node needs, and no more (its volume never holds the CA's key).
func IssueInto(caDir, outDir, name string, hosts []string, days int) error {
	if !certName.MatchString(name) || name == "ca" {
		return fmt.Errorf("--name %q: letters, digits, '.', '_' and '-' only, and not \"ca\"", name)
	}
	if len(hosts) == 0 {
		return errors.New("at least one --host is needed: the names or addresses the node is reached at")
	}
	if days == 0 {
		days = 825
	}
	caCert, caKey, err := loadCA(caDir)
	if err != nil {
		return err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"fogdb"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, days),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if caCert.NotAfter.Before(tmpl.NotAfter) {
		tmpl.NotAfter = caCert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &priv.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return err
	}
	if filepath.Clean(outDir) != filepath.Clean(caDir) {
		if err := writeFile(filepath.Join(outDir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}), 0o644); err != nil {
			return err
		}
	}
	return writePair(filepath.Join(outDir, name+".crt"), filepath.Join(outDir, name+".key"), der, priv)
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	crtPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the CA (make one with fogdb certs init --dir %s): %w", dir, err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the CA's key: %w", err)
	}
	cb, _ := pem.Decode(crtPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("the CA's files are not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the CA certificate: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the CA key: %w", err)
	}
	return cert, key, nil
}

func writePair(crtPath, keyPath string, der []byte, priv *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile replaces path atomically, so a node reloading on SIGHUP never
// reads half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
