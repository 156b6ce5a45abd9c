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
	// AdminAddr is the admin HTTP listener (health, readiness, status,
	// metrics); empty disables it. Like MySQLAddr, a non-loopback address
	// needs a root password: status reveals the node's layout.
	AdminAddr string
	// DataDir holds the node's state file.
	DataDir string
	// RootPassword is root's password; empty allows passwordless root, which
	// Validate permits only on a loopback listener.
	RootPassword string
	SQL          sqlfront.Config
	Logger       *slog.Logger
}

// DefaultConfig is the embedded single-node default: 127.0.0.1:3306, the
// admin API on 127.0.0.1:7070, data in ./fogdb-data.
func DefaultConfig() Config {
	return Config{
		MySQLAddr: "127.0.0.1:3306",
		AdminAddr: "127.0.0.1:7070",
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
	if err := c.checkListener("MySQL", c.MySQLAddr); err != nil {
		return err
	}
	if c.AdminAddr != "" {
		if err := c.checkListener("admin", c.AdminAddr); err != nil {
			return err
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

func (c *Config) statePath() string { return filepath.Join(c.DataDir, "state.db") }
