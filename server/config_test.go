package server

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValidateRefusesOpenListenerWithoutPassword(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate(), "the embedded default is valid")

	for _, addr := range []string{"127.0.0.1:3306", "localhost:3306", "[::1]:3306", "127.0.0.2:3306"} {
		cfg.MySQLAddr = addr
		require.NoError(t, cfg.Validate(), addr)
	}
	for _, addr := range []string{"0.0.0.0:3306", ":3306", "10.1.2.3:3306", "[::]:3306"} {
		cfg.MySQLAddr = addr
		err := cfg.Validate()
		require.True(t, errors.Is(err, ErrInsecureListener), "%s: %v", addr, err)
		cfg.RootPassword = "secret"
		require.NoError(t, cfg.Validate(), addr)
		cfg.RootPassword = ""
	}
	cfg = DefaultConfig()
	cfg.DataDir = ""
	require.Error(t, cfg.Validate())
	cfg = DefaultConfig()
	cfg.MySQLAddr = "no-port"
	require.Error(t, cfg.Validate())
}

func TestValidateRefusesShortClusterSecret(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cluster.Secret = "0123456789abcdef0123456789abcde" // 31 bytes
	err := cfg.Validate()
	require.ErrorIs(t, err, ErrShortClusterSecret)
	require.ErrorContains(t, err, "at least 32 bytes")
	require.ErrorContains(t, err, "31 bytes")

	cfg.Cluster.Secret += "f"
	require.NoError(t, cfg.Validate())
	cfg.Cluster.PeerAddr = "10.0.0.1:7071"
	cfg.Cluster.Join = "10.0.0.2:7071"
	require.NoError(t, cfg.Validate())
}

func TestValidateAdvertisedPeerAddr(t *testing.T) {
	cfg := DefaultConfig()
	for _, bad := range []string{"no-port", "0.0.0.0:7071", "[::]:7071", ":7071", "host:0"} {
		cfg.Cluster.AdvertisePeerAddr = bad
		require.Error(t, cfg.Validate(), bad)
	}
	for _, good := range []string{"wan:7100", "10.0.0.9:7071", "127.0.0.1:7100"} {
		cfg.Cluster.AdvertisePeerAddr = good
		require.NoError(t, cfg.Validate(), good)
	}
}

// The advertised address, not the listener's, is what the node reports and
// what the cluster's membership records, and a node can listen on an
// unspecified address when it advertises one.
func TestNodeAdvertisesPeerAddr(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MySQLAddr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.Cluster.PeerAddr = "127.0.0.1:0"
	cfg.Cluster.AdvertisePeerAddr = "wan.example:7100"
	cfg.DataDir = t.TempDir()
	srv, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	defer srv.Close()
	require.Equal(t, "wan.example:7100", srv.PeerAddr())
	members := srv.Group().Status().Members
	require.Len(t, members, 1)
	require.Equal(t, "wan.example:7100", members[0].Address)
}

func TestValidatePeerSourceAddr(t *testing.T) {
	cfg := DefaultConfig()
	for _, bad := range []string{"127.0.1.1:7071", "host", "0.0.0.0", "::"} {
		cfg.Cluster.PeerSourceAddr = bad
		require.Error(t, cfg.Validate(), bad)
	}
	for _, good := range []string{"127.0.1.1", "10.0.0.9", "::1"} {
		cfg.Cluster.PeerSourceAddr = good
		require.NoError(t, cfg.Validate(), good)
	}
}

// Connections to other nodes come from the source address, which is how
// a WAN emulator in front of nodes sharing a host tells their sites apart.
func TestPeerDialerBindsSourceAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c.RemoteAddr()
		c.Close()
	}()
	require.Nil(t, peerDialer(ClusterConfig{}), "the mux's own dialer")
	dial := peerDialer(ClusterConfig{PeerSourceAddr: "127.0.3.7"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dial(ctx, ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	from := <-accepted
	require.NotNil(t, from)
	require.Equal(t, "127.0.3.7", from.(*net.TCPAddr).IP.String())
}
