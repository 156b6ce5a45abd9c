package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// check is one count the finished workload must leave.
type check struct {
	what  string
	query string
	args  []any
	want  int64
}

// checks lists what l.VMs finished boots leave in the databases: every
// row each boot writes, every state it ends in, and the counters it
// moves (provider generations, compute node usage).
func checks(l layout) []check {
	v := int64(l.VMs)
	cs := []check{
		{"instances", "SELECT COUNT(*) FROM nova.instances", nil, v},
		{"active instances", `SELECT COUNT(*) FROM nova.instances WHERE vm_state = 'active' AND task_state IS NULL
			AND power_state = 1 AND deleted = 0 AND launched_at IS NOT NULL`, nil, v},
		{"instance_extra rows", "SELECT COUNT(*) FROM nova.instance_extra", nil, v},
		{"instance_info_caches with a port", "SELECT COUNT(*) FROM nova.instance_info_caches WHERE network_info <> '[]'", nil, v},
		{"instance_system_metadata rows", "SELECT COUNT(*) FROM nova.instance_system_metadata", nil, v * sysMetaPerVM},
		{"security group associations", "SELECT COUNT(*) FROM nova.security_group_instance_association", nil, v},
		{"block device mappings", "SELECT COUNT(*) FROM nova.block_device_mapping", nil, v},
		{"create actions", "SELECT COUNT(*) FROM nova.instance_actions WHERE action = 'create'", nil, v},
		{"finished build events", `SELECT COUNT(*) FROM nova.instance_actions_events WHERE result = 'Success'
			AND finish_time IS NOT NULL`, nil, v},
		{"running VMs over compute nodes", "SELECT COALESCE(SUM(running_vms), 0) FROM nova.compute_nodes", nil, v},
		{"vCPUs used over compute nodes", "SELECT COALESCE(SUM(vcpus_used), 0) FROM nova.compute_nodes", nil, v * int64(flavors[0].vcpus)},
		{"request specs", "SELECT COUNT(*) FROM nova_api.request_specs", nil, v},
		{"instance mappings to cell1", "SELECT COUNT(*) FROM nova_api.instance_mappings WHERE cell_id = ?", []any{cellOneID}, v},
		{"build requests left", "SELECT COUNT(*) FROM nova_api.build_requests", nil, 0},
		{"consumers", "SELECT COUNT(*) FROM placement.consumers", nil, v},
		{"allocations", "SELECT COUNT(*) FROM placement.allocations", nil, v * placementRCs},
		{"MEMORY_MB allocated", "SELECT COALESCE(SUM(used), 0) FROM placement.allocations WHERE resource_class_id = ?",
			[]any{rcMemoryMB}, v * int64(flavors[0].mem)},
		// Every successful claim bumps its provider's generation once.
		{"provider generations", "SELECT COALESCE(SUM(generation), 0) FROM placement.resource_providers", nil,
			int64(l.hosts()*initialRPGen) + v},
	}
	for s := 0; s < l.Sites; s++ {
		cs = append(cs, check{
			fmt.Sprintf("instances on %s's hosts", siteName(s)),
			"SELECT COUNT(*) FROM nova.instances WHERE host LIKE ?", []any{hostPrefix(s)}, int64(l.vmsOfSite(s)),
		})
	}
	return cs
}

// verify runs every check through db and reports all that fail.
func verify(ctx context.Context, db *sql.DB, l layout) error {
	var bad []string
	for _, c := range checks(l) {
		var got sql.NullFloat64
		if err := db.QueryRowContext(ctx, c.query, c.args...).Scan(&got); err != nil {
			return fmt.Errorf("checking %s: %w", c.what, err)
		}
		if !got.Valid || int64(got.Float64) != c.want {
			bad = append(bad, fmt.Sprintf("%s: %v, want %d", c.what, got.Float64, c.want))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("after %d boots: %s", l.VMs, strings.Join(bad, "; "))
	}
	return nil
}
