package sharding

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
)

func TestTouchesNodes(t *testing.T) {
	put := func(k []byte) *kv.Batch { return &kv.Batch{Mutations: []kv.Mutation{{Key: k, Value: []byte("{}")}}} }
	require.True(t, TouchesNodes([]*kv.Batch{put(siteKey("paris")), put(nodeKey("n1"))}))
	require.True(t, TouchesNodes([]*kv.Batch{{Mutations: []kv.Mutation{{Key: nodeKey("n1"), Delete: true}}}}), "a removal")
	require.False(t, TouchesNodes([]*kv.Batch{put(siteKey("paris")), put(groupSeqKey())}))
	require.False(t, TouchesNodes([]*kv.Batch{put(keys.CatalogKey([]byte("nodes"), []byte("x")))}), "another kind that starts alike")
	require.False(t, TouchesNodes(nil))
	require.True(t, TouchesSites([]*kv.Batch{put(groupSeqKey()), put(siteKey("paris"))}))
	require.False(t, TouchesSites([]*kv.Batch{put(nodeKey("n1"))}))
}
