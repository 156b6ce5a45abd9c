package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/fogdb/fogdb/sqlfront"
)

// Config is a node's configuration.
type Config struct {
	// MySQLAddr is the MySQL protocol listener (host:port).
	MySQLAddr string
	// DataDir holds the node's state file.
	DataDir string
	// RootPassword is root's password; empty allows passwordless root, which
	// Validate permits only on a loopback listener.
	RootPassword string
	SQL          sqlfront.Config
	Logger       *slog.Logger
}

// DefaultConfig is the embedded single-node default: 127.0.0.1:3306, data
// in ./fogdb-data.
func DefaultConfig() Config {
	return Config{
		MySQLAddr: "127.0.0.1:3306",
		DataDir:   "fogdb-data",
		SQL:       sqlfront.DefaultConfig(),
	}
}

// Sentinel errors of the server package.
var (
	// ErrInsecureListener: a non-loopback listener without a root password.
	ErrInsecureListener = errors.New("server: refusing to listen on a non-loopback address without a root password")
)

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("server: data directory not set")
	}
	host, _, err := net.SplitHostPort(c.MySQLAddr)
	if err != nil {
		return fmt.Errorf("server: MySQL address %q: %w", c.MySQLAddr, err)
	}
	if c.RootPassword == "" && !isLoopback(host) {
		return fmt.Errorf("%w (%s)", ErrInsecureListener, c.MySQLAddr)
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

func (c *Config) statePath() string { return filepath.Join(c.DataDir, "state.db") }
