package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/pki"
	"github.com/fogdb/fogdb/replication"
	"github.com/fogdb/fogdb/replication/mux"
	"github.com/fogdb/fogdb/server"
)

// A cluster whose peer port is in mutual TLS replicates as before; a node
// holding the cluster secret but a certificate another CA signed cannot
// join, and the cluster goes on without it.
func TestClusterOverPeerTLS(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, 0))
	for _, n := range []string{"n1", "n2", "n3"} {
		require.NoError(t, pki.Issue(dir, n, []string{"127.0.0.1"}, 0))
	}
	c := Start(t, 3, func(i int, cfg *server.Config) {
		cfg.Cluster.PeerCA = filepath.Join(dir, "ca.crt")
		cfg.Cluster.PeerCert = filepath.Join(dir, cfg.Cluster.NodeID+".crt")
		cfg.Cluster.PeerKey = filepath.Join(dir, cfg.Cluster.NodeID+".key")
	})
	l := c.Leader()
	c.Exec(l, "CREATE DATABASE s", "CREATE TABLE s.t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO s.t VALUES (1, 'a'), (2, 'b')")
	want := c.Checksum(l)
	for i := range c.Nodes {
		require.Equal(t, want, c.Checksum(i), "node %d", i)
	}

	// An intruder: the secret, a certificate of its own CA, trusting the
	// cluster's (so the refusal is the cluster's, not its own).
	otherDir := t.TempDir()
	require.NoError(t, pki.InitCA(otherDir, 0))
	require.NoError(t, pki.Issue(otherDir, "n4", []string{"127.0.0.1"}, 0))
	clusterCA, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)
	trust := x509.NewCertPool()
	require.True(t, trust.AppendCertsFromPEM(clusterCA))
	cert, err := tls.LoadX509KeyPair(filepath.Join(otherDir, "n4.crt"), filepath.Join(otherDir, "n4.key"))
	require.NoError(t, err)
	serverTLS, clientTLS := mux.MutualTLS(trust, func() (*tls.Certificate, error) { return &cert, nil })
	intruder, err := replication.NewNode(replication.NodeConfig{
		ID: "n4", PeerAddr: "127.0.0.1:0", Secret: []byte(Secret),
		ServerTLS: serverTLS, ClientTLS: clientTLS,
	})
	require.NoError(t, err)
	defer intruder.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = intruder.Join(ctx, 1, c.Nodes[l].PeerAddr, "n4", intruder.Addr(), true)
	require.Error(t, err, "a node outside the CA joined")
	for _, m := range c.Nodes[c.Leader()].Srv.Group().Status().Members {
		require.NotEqual(t, raft.ServerID("n4"), raft.ServerID(m.ID))
	}
	c.Exec(c.Leader(), "INSERT INTO s.t VALUES (3, 'c')")
}
