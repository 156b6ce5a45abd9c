package placement

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// The reference placement in the documentation must stay a valid file, and
// keep saying what its comments explain.
func TestOpenStackReference(t *testing.T) {
	data, err := os.ReadFile("../../docs/placement/openstack.yaml")
	require.NoError(t, err)
	s, err := Parse(data)
	require.NoError(t, err)

	byHost := Table{Kind: Local, Locality: "host"}
	instanceChild := Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "instance_uuid"}}
	global := Table{Kind: Global, Staleness: DefaultStaleness}
	for _, cell := range []string{"nova", "nova_cell1", "nova_cell0"} {
		require.Equal(t, Table{Kind: Local, Locality: "host", SiteUnique: []string{"uuid"}}, s.Effective(cell, "instances"), cell)
		require.Equal(t, instanceChild, s.Effective(cell, "instance_extra"), cell)
		require.Equal(t, instanceChild, s.Effective(cell, "shadow_instance_extra"), cell)
		require.Equal(t, Table{Kind: Local, Parent: &ParentRef{"instance_actions", "id", "action_id"}},
			s.Effective(cell, "instance_actions_events"), cell)
		require.Equal(t, Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "instance_uuid"}, SiteUnique: []string{"uuid"}},
			s.Effective(cell, "block_device_mapping"), cell)
		require.Equal(t, byHost, s.Effective(cell, "shadow_instances"), cell)
		idMapping := Table{Kind: Local, Parent: &ParentRef{"instances", "uuid", "uuid"}}
		require.Equal(t, idMapping, s.Effective(cell, "instance_id_mappings"), cell)
		require.Equal(t, idMapping, s.Effective(cell, "shadow_instance_id_mappings"), cell)
		require.Equal(t, global, s.Effective(cell, "services"), cell)
		require.Equal(t, global, s.Effective(cell, "compute_nodes"), cell)
	}
	require.Equal(t, s.Databases["nova"], s.Databases["nova_cell0"])

	require.Equal(t, global, s.Effective("nova_api", "build_requests"))
	require.Equal(t, global, s.Effective("nova_api", "request_specs"))
	require.Equal(t, global, s.Effective("nova_api", "instance_mappings"))
	require.Equal(t, global, s.Effective("nova_api", "flavors"))
	require.Equal(t, global, s.Effective("placement", "allocations"))
	require.Equal(t, global, s.Effective("neutron", "ports"))
	require.Equal(t, global, s.Effective("keystone", "project"))
	require.Equal(t, Table{Kind: Global, Staleness: 1e9}, s.Effective("keystone", "revocation_event"))
	require.Equal(t, global, s.Effective("glance", "images"))
	require.Equal(t, Table{Kind: Local, Parent: &ParentRef{"node_reference", "node_reference_id", "node_reference_id"}},
		s.Effective("glance", "cached_images"))
	require.Equal(t, Table{Kind: Local, Locality: "availability_zone", SiteUnique: []string{"primary"}}, s.Effective("cinder", "volumes"))
	require.Equal(t, Table{Kind: Local, Parent: &ParentRef{"snapshots", "id", "snapshot_id"}}, s.Effective("cinder", "snapshot_metadata"))
	require.Equal(t, global, s.Effective("cinder", "volume_types"))
	require.Equal(t, []string{"nantes", "paris", "rennes"}, s.Sites())

	// It survives the catalog and the YAML the admin API would show.
	b, err := Marshal(s)
	require.NoError(t, err)
	back, err := Unmarshal(b)
	require.NoError(t, err)
	require.True(t, s.Equal(back))
	y, err := s.YAML()
	require.NoError(t, err)
	back, err = Parse(y)
	require.NoError(t, err)
	require.True(t, s.Equal(back))
}
