package cluster

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fogdb/fogdb/internal/freeport"
	_ "github.com/go-sql-driver/mysql" // the MySQL driver clients use
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/server"
	"github.com/fogdb/fogdb/tests/faultnet"
	"github.com/fogdb/fogdb/wanem"
)

// Patience bounds every wait for something expected to happen.
const Patience = 60 * time.Second

// Secret is the cluster secret of test clusters.
const Secret = "test-cluster-secret-0123456789abcdef"

// Cluster is a set of in-process nodes.
type Cluster struct {
	T   testing.TB
	Net *faultnet.Network
	// WAN, in clusters started by StartSites, carries every byte between
	// nodes: each node advertises its own link of it as its peer address,
	// and dials through it as a process of its site.
	WAN   *wanem.Proxy
	Nodes []*Node
	// Tweak adjusts each node's configuration before every start.
	Tweak func(i int, cfg *server.Config)
}

// Node is one member. Its addresses stay the same across restarts, since
// the group's configuration records the peer address.
type Node struct {
	Name      string
	Dir       string
	PeerAddr  string
	MySQLAddr string
	// Site is the node's site in a StartSites cluster; Link is the WAN
	// link in front of its peer port, whose address the node advertises.
	Site string
	Link *wanem.Link
	Srv  *server.Server // nil while stopped
}

// Addr is the peer address other nodes dial: its WAN link's, if it has one.
func (nd *Node) Addr() string {
	if nd.Link != nil {
		return nd.Link.Addr()
	}
	return nd.PeerAddr
}

// Start starts an n-node cluster: node 0 bootstraps, the others join it.
func Start(t testing.TB, n int, tweak func(i int, cfg *server.Config)) *Cluster {
	t.Helper()
	return start(t, make([]string, n), tweak)
}

// StartSites starts a cluster of one node per entry of sites, node i at
// sites[i], whose peer traffic all crosses a WAN emulator (c.WAN) with no
// delay until the test sets one: c.WAN.SetDelay("paris", "rennes", d).
// Nodes of one site reach each other through it too, without delay.
func StartSites(t testing.TB, sites []string, tweak func(i int, cfg *server.Config)) *Cluster {
	t.Helper()
	return start(t, sites, tweak)
}

func start(t testing.TB, sites []string, tweak func(i int, cfg *server.Config)) *Cluster {
	c := &Cluster{T: t, Net: faultnet.New(), Tweak: tweak}
	wan := false
	for _, s := range sites {
		wan = wan || s != ""
	}
	if wan {
		c.WAN = wanem.New(wanem.DefaultConfig())
		// Registered first, so it runs after the nodes have stopped.
		t.Cleanup(func() { c.WAN.Close() })
	}
	for i, site := range sites {
		nd := &Node{Name: fmt.Sprintf("n%d", i+1), Dir: t.TempDir(), PeerAddr: freeport.Addr(t), MySQLAddr: freeport.Addr(t), Site: site}
		if c.WAN != nil {
			l, err := c.WAN.Listen(wanem.LinkConfig{Name: nd.Name, To: site, Listen: "127.0.0.1:0", Target: nd.PeerAddr})
			require.NoError(t, err)
			nd.Link = l
		}
		c.Net.Name(nd.Addr(), nd.Name)
		c.Nodes = append(c.Nodes, nd)
	}
	t.Cleanup(func() {
		for _, nd := range c.Nodes {
			if nd.Srv != nil {
				nd.Srv.Close()
			}
		}
	})
	for i := range c.Nodes {
		c.StartNode(i)
	}
	for i := range c.Nodes {
		c.WaitMember(i)
	}
	return c
}

// Config is node i's configuration.
func (c *Cluster) Config(i int) server.Config {
	nd := c.Nodes[i]
	cfg := server.DefaultConfig()
	cfg.DataDir = nd.Dir
	cfg.MySQLAddr = nd.MySQLAddr
	cfg.AdminAddr = ""
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Cluster.NodeID = nd.Name
	cfg.Cluster.PeerAddr = nd.PeerAddr
	cfg.Cluster.Secret = Secret
	cfg.Cluster.Dial = c.Net.Dialer(nd.Name)
	if c.WAN != nil {
		cfg.Cluster.AdvertisePeerAddr = nd.Addr()
		cfg.Cluster.Dial = c.Net.DialerVia(nd.Name, c.WAN.Dialer(nd.Site))
		cfg.Cluster.Site = nd.Site
	}
	cfg.Cluster.HeartbeatTimeout = 300 * time.Millisecond
	cfg.Cluster.ElectionTimeout = 300 * time.Millisecond
	if i > 0 {
		cfg.Cluster.Join = c.Nodes[0].Addr()
	}
	if c.Tweak != nil {
		c.Tweak(i, &cfg)
	}
	return cfg
}

// StartNode starts (or restarts) node i.
func (c *Cluster) StartNode(i int) {
	c.T.Helper()
	nd := c.Nodes[i]
	require.Nil(c.T, nd.Srv, "node %s is running", nd.Name)
	srv, err := server.New(c.Config(i))
	require.NoError(c.T, err, "starting %s", nd.Name)
	require.NoError(c.T, srv.Start())
	nd.Srv = srv
}

// StopNode shuts node i down cleanly (a leader hands leadership over).
func (c *Cluster) StopNode(i int) {
	c.T.Helper()
	nd := c.Nodes[i]
	require.NotNil(c.T, nd.Srv)
	require.NoError(c.T, nd.Srv.Close())
	nd.Srv = nil
}

// CrashNode stops node i without handing its leadership over, as a crash
// looks to the others (the process itself is not killed: see the
// process-level tests for kill -9).
func (c *Cluster) CrashNode(i int) {
	c.T.Helper()
	nd := c.Nodes[i]
	require.NotNil(c.T, nd.Srv)
	require.NoError(c.T, nd.Srv.Abort())
	nd.Srv = nil
}

// WaitMember waits until node i knows a leader and has caught up with it.
func (c *Cluster) WaitMember(i int) {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for {
		g := c.Nodes[i].Srv.Group()
		bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
		err := g.ReadBarrier(bctx)
		bcancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			c.T.Fatalf("node %s never caught up: %v", c.Nodes[i].Name, err)
		}
	}
}

// Leader waits for a node that leads and returns its index.
func (c *Cluster) Leader() int {
	c.T.Helper()
	deadline := time.Now().Add(Patience)
	for time.Now().Before(deadline) {
		for i, nd := range c.Nodes {
			if nd.Srv != nil && nd.Srv.Group().IsLeader() {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.T.Fatal("no leader elected")
	return -1
}

// Follower returns the index of a running node that does not lead.
func (c *Cluster) Follower() int {
	c.T.Helper()
	l := c.Leader()
	for i, nd := range c.Nodes {
		if i != l && nd.Srv != nil {
			return i
		}
	}
	c.T.Fatal("no running follower")
	return -1
}

// DSN is a client's data source name for node i and database db.
func (c *Cluster) DSN(i int, db string) string {
	return fmt.Sprintf("root@tcp(%s)/%s?parseTime=true&multiStatements=true&timeout=10s", c.Nodes[i].MySQLAddr, db)
}

// DB opens a pool to node i.
func (c *Cluster) DB(i int, db string) *sql.DB {
	c.T.Helper()
	pool, err := sql.Open("mysql", c.DSN(i, db))
	require.NoError(c.T, err)
	c.T.Cleanup(func() { pool.Close() })
	return pool
}

// Exec runs statements on node i, failing the test on error.
func (c *Cluster) Exec(i int, stmts ...string) {
	c.T.Helper()
	db := c.DB(i, "")
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for _, s := range stmts {
		_, err := db.ExecContext(ctx, s)
		require.NoError(c.T, err, s)
	}
}

// Checksum is a digest of every row of every user table node i holds,
// read locally after catching up.
func (c *Cluster) Checksum(i int) string {
	c.T.Helper()
	c.WaitMember(i)
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	sum, err := ChecksumDSN(ctx, c.DSN(i, ""))
	require.NoError(c.T, err, "checksum of %s", c.Nodes[i].Name)
	return sum
}

// ChecksumDSN digests every row of every user table the server at dsn
// serves: equal digests mean equal data. Process-level tests use it
// directly; Cluster.Checksum wraps it.
func ChecksumDSN(ctx context.Context, dsn string) (string, error) {
	d, err := DumpDSN(ctx, dsn)
	if err != nil {
		return "", err
	}
	return d.Digest(), nil
}

// Dump is every row of every user table of a server: table name (quoted,
// db.table) to its rows rendered as sorted lines.
type Dump map[string][]string

// Digest is a digest of the dump: equal digests mean equal data.
func (d Dump) Digest() string {
	tables := make([]string, 0, len(d))
	for tb := range d {
		tables = append(tables, tb)
	}
	sort.Strings(tables)
	h := sha256.New()
	for _, tb := range tables {
		fmt.Fprintln(h, tb)
		for _, l := range d[tb] {
			fmt.Fprintln(h, l)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Only returns, for each table, the lines d has and other lacks (a table
// other lacks altogether is reported as such), for telling what differs
// between two nodes.
func (d Dump) Only(other Dump) []string {
	var out []string
	for tb, lines := range d {
		theirs, ok := other[tb]
		if !ok {
			out = append(out, tb+": whole table")
			continue
		}
		has := make(map[string]bool, len(theirs))
		for _, l := range theirs {
			has[l] = true
		}
		for _, l := range lines {
			if !has[l] {
				out = append(out, tb+": "+l)
			}
		}
	}
	sort.Strings(out)
	return out
}

// DumpDSN reads every row of every user table the server at dsn serves,
// in one session.
func DumpDSN(ctx context.Context, dsn string) (Dump, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var tables []string
	rows, err := conn.QueryContext(ctx, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys')")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var s, n string
		if err := rows.Scan(&s, &n); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, "`"+s+"`.`"+n+"`")
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	d := Dump{}
	for _, tb := range tables {
		lines, err := tableLines(ctx, conn, tb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tb, err)
		}
		d[tb] = lines
	}
	return d, nil
}

// tableLines renders every row of table as a line, sorted.
func tableLines(ctx context.Context, conn *sql.Conn, table string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var lines []string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for j := range vals {
			ptrs[j] = &vals[j]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, v := range vals {
			if v == nil {
				b.WriteString("\\N")
			} else {
				b.WriteString(hex.EncodeToString(v))
			}
			b.WriteByte(',')
		}
		lines = append(lines, b.String())
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Strings(lines)
	return lines, nil
}

func sqlOpen(dsn string) (*sql.DB, error) { return sql.Open("mysql", dsn) }

// WANRoundTrips runs stmts on one connection to node i and returns what
// SHOW SESSION STATUS LIKE 'fogdb_wan_round_trips' then says of the last
// transaction: its round trips to nodes of other sites.
func (c *Cluster) WANRoundTrips(i int, stmts ...string) uint64 {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	conn, err := c.DB(i, "").Conn(ctx)
	require.NoError(c.T, err)
	defer conn.Close()
	for _, q := range stmts {
		_, err := conn.ExecContext(ctx, q)
		require.NoError(c.T, err, q)
	}
	var name string
	var n uint64
	require.NoError(c.T, conn.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'fogdb_wan_round_trips'").Scan(&name, &n))
	return n
}
