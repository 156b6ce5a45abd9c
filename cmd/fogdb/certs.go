package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// certs makes a cluster CA and node certificates:
//
//	fogdb certs init  --dir D                      D/ca.crt, D/ca.key
//	fogdb certs issue --dir D --name N --host H... D/N.crt, D/N.key
//
// A node certificate serves both as a TLS server (MySQL clients, peers
// dialling in) and a TLS client (dialling peers), so one per node does.
func certs(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "fogdb certs: init or issue?")
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("fogdb certs "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "certs", "directory of the CA's files and the certificates")
	days := fs.Int("days", 0, "validity in days (default: 3650 for the CA, 825 for a node)")
	var name string
	var hosts multiFlag
	if sub == "issue" {
		fs.StringVar(&name, "name", "", "the certificate's name: its common name and its files' base name (the node's ID, say)")
		fs.Var(&hosts, "host", "DNS name or IP address the node is reached at (repeat, or separate by commas)")
	} else if sub != "init" {
		fmt.Fprintf(stderr, "fogdb certs: unknown command %q (init, issue)\n", sub)
		return 2
	}
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	var err error
	switch sub {
	case "init":
		err = certsInit(*dir, *days)
	case "issue":
		err = certsIssue(*dir, name, hosts, *days)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fogdb certs %s: %v\n", sub, err)
		return 1
	}
	return 0
}

type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	for h := range strings.SplitSeq(v, ",") {
		if h = strings.TrimSpace(h); h != "" {
			*m = append(*m, h)
		}
	}
	return nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func certsInit(dir string, days int) error {
	if days == 0 {
		days = 3650
	}
	crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	for _, p := range []string{crt, key} {
		if _, err := os.Stat(p); err == nil {
			// Replacing the CA would orphan every node certificate it signed.
			return fmt.Errorf("%s exists; remove it to make a new CA", p)
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

func certsIssue(dir, name string, hosts []string, days int) error {
	if !certName.MatchString(name) || name == "ca" {
		return fmt.Errorf("--name %q: letters, digits, '.', '_' and '-' only, and not \"ca\"", name)
	}
	if len(hosts) == 0 {
		return errors.New("at least one --host is needed: the names or addresses the node is reached at")
	}
	if days == 0 {
		days = 825
	}
	caCert, caKey, err := loadCA(dir)
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
	return writePair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), der, priv)
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
