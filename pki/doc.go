// Package pki makes the certificates of a fogdb cluster: a CA, and a
// certificate per node that serves both its MySQL clients and its peers.
//
// Keys are ECDSA P-256 and everything is written as PEM files that
// `fogdb certs init|issue` names; the CA key is meant to stay off the
// nodes.
package pki
