package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// schema is created by whichever controller comes first; the placement
// file of the compose example makes ctl.events local, homed by its site
// column, and leaves ctl.heartbeats global.
var schema = []string{
	"CREATE DATABASE IF NOT EXISTS ctl",
	"CREATE TABLE IF NOT EXISTS ctl.events (site VARCHAR(63) NOT NULL, seq BIGINT NOT NULL, at DATETIME(6) NOT NULL, PRIMARY KEY (site, seq))",
	"CREATE TABLE IF NOT EXISTS ctl.heartbeats (site VARCHAR(63) NOT NULL PRIMARY KEY, seq BIGINT NOT NULL, at DATETIME(6) NOT NULL)",
}

// report is one line of output.
type report struct {
	Site      string           `json:"site"`
	Seq       int64            `json:"seq"`
	TLS       string           `json:"tls,omitempty"`
	Local     string           `json:"local"`
	Global    string           `json:"global"`
	Seen      map[string]int64 `json:"seen,omitempty"`
	SeenError string           `json:"seen_error,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "controller: %v\n", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func run() error {
	site := os.Getenv("CONTROLLER_SITE")
	if site == "" {
		return errors.New("CONTROLLER_SITE is required")
	}
	interval, err := time.ParseDuration(env("CONTROLLER_INTERVAL", "1s"))
	if err != nil {
		return fmt.Errorf("CONTROLLER_INTERVAL: %w", err)
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = env("CONTROLLER_ADDR", "127.0.0.1:3306")
	cfg.User = env("CONTROLLER_USER", "root")
	cfg.Passwd = os.Getenv("CONTROLLER_PASSWORD")
	cfg.Timeout = 5 * time.Second
	cfg.ParseTime = true
	if ca := os.Getenv("CONTROLLER_CA"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", ca)
		}
		if err := mysql.RegisterTLSConfig("site", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}); err != nil {
			return err
		}
		cfg.TLSConfig = "site"
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(2)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	out := json.NewEncoder(os.Stdout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	ready := false
	seq := int64(1)
	for {
		if !ready {
			ready = ensureSchema(ctx, db, out, site)
			// A controller restarted goes on after its site's last event.
			if ready && db.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) + 1 FROM ctl.events WHERE site = ?", site).Scan(&seq) != nil {
				ready = false
			}
		}
		if ready {
			r := step(ctx, db, site, seq)
			out.Encode(r)
			if r.Local == "ok" {
				seq++
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func ensureSchema(ctx context.Context, db *sql.DB, out *json.Encoder, site string) bool {
	for _, s := range schema {
		if _, err := db.ExecContext(ctx, s); err != nil {
			out.Encode(report{Site: site, Local: "schema: " + errText(err)})
			return false
		}
	}
	return true
}

// step is one round: the writes, then what the node shows. An event whose
// insert failed is written again under the same number next round, so
// the numbers a site acknowledged have no gaps. Each statement has a
// deadline of its own, longer than a node takes to answer that the
// cluster is unavailable.
func step(ctx context.Context, db *sql.DB, site string, seq int64) report {
	r := report{Site: site, Seq: seq, Local: "ok", Global: "ok"}
	conn, err := db.Conn(ctx)
	if err != nil {
		r.Local, r.Global = errText(err), "not tried"
		return r
	}
	defer conn.Close()
	var version string
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.QueryRowContext(c, "SHOW SESSION STATUS LIKE 'Ssl_version'").Scan(new(string), &version); err == nil {
		r.TLS = version
	}
	// 1062: an earlier try whose outcome was unknown (1180) did commit.
	if _, err := conn.ExecContext(c, "INSERT INTO ctl.events VALUES (?, ?, NOW(6))", site, seq); err != nil && !isDup(err) {
		r.Local = errText(err)
	}
	c, cancel = context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(c, "INSERT INTO ctl.heartbeats VALUES (?, ?, NOW(6)) ON DUPLICATE KEY UPDATE seq = VALUES(seq), at = VALUES(at)", site, seq); err != nil {
		r.Global = errText(err)
	}
	c, cancel = context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := conn.QueryContext(c, "SELECT site, COUNT(*) FROM ctl.events GROUP BY site ORDER BY site")
	if err != nil {
		r.SeenError = errText(err)
		return r
	}
	defer rows.Close()
	r.Seen = map[string]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			r.SeenError = errText(err)
			return r
		}
		r.Seen[s] = n
	}
	if err := rows.Err(); err != nil {
		r.SeenError = errText(err)
	}
	return r
}

func errText(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Sprintf("%d: %s", me.Number, me.Message)
	}
	return err.Error()
}

func isDup(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}
