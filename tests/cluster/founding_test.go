package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/internal/freeport"
	"github.com/fogdb/fogdb/server"
	"github.com/fogdb/fogdb/sharding"
	"github.com/fogdb/fogdb/wanem"
)

// addNode declares one more node of site in c, not started.
func (c *Cluster) addNode(t *testing.T, site string) int {
	nd := &Node{Name: fmt.Sprintf("n%d", len(c.Nodes)+1), Dir: t.TempDir(), PeerAddr: freeport.Addr(t), MySQLAddr: freeport.Addr(t), Site: site}
	l, err := c.WAN.Listen(wanem.LinkConfig{Name: nd.Name, To: site, Listen: "127.0.0.1:0", Target: nd.PeerAddr})
	require.NoError(t, err)
	nd.Link = l
	c.Net.Name(nd.Addr(), nd.Name)
	c.Nodes = append(c.Nodes, nd)
	return len(c.Nodes) - 1
}

// TestSiteFoundedWhenItsRecordPredatesItsNodes: a site's record can exist
// before any of its nodes (CREATE TABLE of a table placed there creates
// it, placeTable; a founder can stop between creating it and founding the
// group). Its first nodes, started together, must still form its group:
// here both registered before either listed the site's nodes, as happens
// when they start at about the same time, so each finds the other and
// none is the record's creator.
func TestSiteFoundedWhenItsRecordPredatesItsNodes(t *testing.T) {
	c := StartSites(t, []string{"paris"}, nil)
	g := c.Nodes[0].Srv.Group()
	b1, b2 := c.addNode(t, "rennes"), c.addNode(t, "rennes")

	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	_, created, err := sharding.EnsureSite(ctx, g, "rennes")
	require.NoError(t, err)
	require.True(t, created)
	for _, i := range []int{b1, b2} {
		require.NoError(t, sharding.RegisterNode(ctx, g, sharding.Node{ID: c.Nodes[i].Name, Site: "rennes", PeerAddr: c.Nodes[i].Addr()}))
	}

	var wg sync.WaitGroup
	srvs := make([]*server.Server, 2)
	errs := make([]error, 2)
	for k, i := range []int{b1, b2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srvs[k], errs[k] = server.New(c.Config(i))
		}()
	}
	wg.Wait()
	for k, i := range []int{b1, b2} {
		if srvs[k] != nil {
			c.Nodes[i].Srv = srvs[k]
			require.NoError(t, srvs[k].Start())
		}
	}
	require.NoError(t, errs[0], "starting the first node of rennes")
	require.NoError(t, errs[1], "starting the second node of rennes")
	require.Eventually(t, func() bool {
		sg := c.Nodes[b1].Srv.SiteGroup()
		if sg == nil {
			return false
		}
		st := sg.Status()
		return st.Leader != "" && len(st.Members) == 2
	}, Patience, 50*time.Millisecond, "the group of rennes has both its nodes")
}
