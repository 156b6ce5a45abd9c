package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// layout is the shape of one experiment point: how many sites, how many
// compute hosts each, how many VMs in all and how many clients per site
// boot them.
type layout struct {
	Sites          int
	HostsPerSite   int
	ClientsPerSite int
	VMs            int
}

// The compute hosts' capacity (placement inventories and compute_nodes),
// large enough that no boot of the experiment runs out of room: 64 vCPUs
// at 16x, 256 GiB at 1.5x, 2 TB of disk per host.
const (
	hostVCPUs     = 64
	hostMemoryMB  = 262144
	hostReservedM = 512
	hostDiskGB    = 2000
	cpuRatio      = 16.0
	ramRatio      = 1.5
	diskRatio     = 1.0
	bootFlavorID  = "1" // m1.tiny
	sysMetaPerVM  = 10  // instance_system_metadata rows per boot
	cellOneID     = 2   // cell_mappings: cell0 is 1, cell1 is 2
	quotaUnlimit  = 1000000
	initialRPGen  = 1 // resource provider generation after its inventory is set
	placementRCs  = 3 // VCPU, MEMORY_MB, DISK_GB
	seedBatchRows = 50
)

// Placement's standard resource classes have fixed IDs (os-resource-classes'
// order) and no rows: resource_classes holds custom classes only.
const (
	rcVCPU     = 0
	rcMemoryMB = 1
	rcDiskGB   = 2
)

func siteName(s int) string { return fmt.Sprintf("site%d", s) }

// hostName is the compute host n (from 1) of site s: the value of the
// host column of the instances booted there.
func hostName(s, n int) string { return fmt.Sprintf("compute-%s-%d", siteName(s), n) }

// hostPrefix matches the hosts of site s in a LIKE pattern.
func hostPrefix(s int) string { return fmt.Sprintf("compute-%s-%%", siteName(s)) }

// Keystone IDs are 32 hex digits; each site has its own project and user.
func projectID(s int) string { return fmt.Sprintf("%08x5eed00000000000000%06x", 0xfeed0000+s, s) }
func userID(s int) string    { return fmt.Sprintf("%08x5eed00000000000000%06x", 0xbeef0000+s, s) }

func computeNodeUUID(s, n int) string {
	return fmt.Sprintf("c0de0000-%04x-4000-8000-%012x", s, n)
}

// vmsOfSite is how many of the VMs site s boots: an even spread, the first
// sites taking one more when the count does not divide.
func (l layout) vmsOfSite(s int) int {
	n := l.VMs / l.Sites
	if s < l.VMs%l.Sites {
		n++
	}
	return n
}

// vmsOfClient is the same spread over a site's clients.
func (l layout) vmsOfClient(s, c int) int {
	v := l.vmsOfSite(s)
	n := v / l.ClientsPerSite
	if c < v%l.ClientsPerSite {
		n++
	}
	return n
}

func (l layout) hosts() int { return l.Sites * l.HostsPerSite }

// flavors are Nova's classic defaults: id, name, vcpus, memory, disk.
var flavors = []struct {
	id, name           string
	vcpus, mem, rootGB int
}{
	{"1", "m1.tiny", 1, 512, 1},
	{"2", "m1.small", 1, 2048, 20},
	{"3", "m1.medium", 2, 4096, 40},
	{"4", "m1.large", 4, 8192, 80},
	{"5", "m1.xlarge", 8, 16384, 160},
}

// seed creates the three databases afresh and fills the shared tables a
// boot reads: flavors, quotas, key pairs, cells and host mappings, security
// groups, services, compute nodes, and placement's providers with their
// inventories. It goes through db (one site's server) before any client
// starts.
func seed(ctx context.Context, db *sql.DB, l layout) error {
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, d := range databases {
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+d); err != nil {
			return fmt.Errorf("drop database %s: %w", d, err)
		}
		if _, err := db.ExecContext(ctx, "CREATE DATABASE "+d+" DEFAULT CHARACTER SET utf8mb3"); err != nil {
			return fmt.Errorf("create database %s: %w", d, err)
		}
	}
	for _, stmt := range ddl {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", firstLine(stmt), err)
		}
	}

	var rows []insert
	add := func(table, cols string, vals ...any) { rows = append(rows, insert{table, cols, vals}) }

	add("nova_api.cell_mappings", "id, created_at, uuid, name, transport_url, database_connection, disabled",
		1, now, "00000000-0000-0000-0000-000000000000", "cell0", "none:///", "mysql+pymysql://nova@db/nova_cell0", 0)
	add("nova_api.cell_mappings", "id, created_at, uuid, name, transport_url, database_connection, disabled",
		cellOneID, now, "c0e11000-0000-4000-8000-000000000001", "cell1", "rabbit://nova@mq:5672/", "mysql+pymysql://nova@db/nova", 0)
	for i, f := range flavors {
		add("nova_api.flavors", "id, created_at, name, memory_mb, vcpus, root_gb, ephemeral_gb, flavorid, swap, rxtx_factor, vcpu_weight, disabled, is_public, description",
			i+1, now, f.name, f.mem, f.vcpus, f.rootGB, 0, f.id, 0, 1.0, nil, 0, 1, nil)
		add("nova_api.flavor_extra_specs", "created_at, `key`, value, flavor_id", now, "hw_rng:allowed", "True", i+1)
		add("nova_api.flavor_extra_specs", "created_at, `key`, value, flavor_id", now, "hw:cpu_policy", "shared", i+1)
	}
	for _, res := range []struct {
		name  string
		limit int
	}{{"instances", 10}, {"cores", 20}, {"ram", 51200}, {"key_pairs", 100}, {"server_groups", 10}} {
		add("nova_api.quota_classes", "created_at, class_name, resource, hard_limit", now, "default", res.name, res.limit)
	}

	// Security group IDs are fixed so that every client knows its own.
	for s := 0; s < l.Sites; s++ {
		for _, res := range []string{"instances", "cores", "ram"} {
			add("nova_api.quotas", "created_at, project_id, resource, hard_limit", now, projectID(s), res, quotaUnlimit)
		}
		add("nova_api.key_pairs", "created_at, name, user_id, fingerprint, public_key, type",
			now, keyName(s), userID(s), fingerprint(s), publicKey(s), "ssh")
		add("nova.security_groups", "id, created_at, deleted, name, description, user_id, project_id",
			s+1, now, 0, "default", "Default security group", userID(s), projectID(s))
		add("placement.projects", "id, created_at, external_id", s+1, now, projectID(s))
		add("placement.users", "id, created_at, external_id", s+1, now, userID(s))
	}
	add("placement.consumer_types", "id, created_at, name", 1, now, "INSTANCE")

	id := 0
	for s := 0; s < l.Sites; s++ {
		for n := 1; n <= l.HostsPerSite; n++ {
			id++
			h := hostName(s, n)
			add("nova_api.host_mappings", "created_at, cell_id, host", now, cellOneID, h)
			add("nova.services", "id, created_at, updated_at, deleted, uuid, host, `binary`, topic, report_count, disabled, last_seen_up, forced_down, version",
				id, now, now, 0, fmt.Sprintf("5e4c0000-%04x-4000-8000-%012x", s, n), h, "nova-compute", "compute", 1, 0, now, 0, 61)
			add("nova.compute_nodes", "id, created_at, updated_at, deleted, service_id, host, uuid, vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, hypervisor_hostname, free_ram_mb, free_disk_gb, current_workload, running_vms, cpu_info, disk_available_least, host_ip, supported_instances, pci_stats, stats, ram_allocation_ratio, cpu_allocation_ratio, disk_allocation_ratio, mapped",
				id, now, now, 0, id, h, computeNodeUUID(s, n), hostVCPUs, hostMemoryMB, hostDiskGB, 0, hostReservedM, 0,
				"QEMU", 6002000, h, hostMemoryMB-hostReservedM, hostDiskGB, 0, 0, cpuInfo, hostDiskGB,
				fmt.Sprintf("192.0.2.%d", id%250+1), `[["x86_64", "qemu", "hvm"]]`, pciStats, `{"failed_builds": "0"}`,
				ramRatio, cpuRatio, diskRatio, 1)
			// Placement creates a provider with no root and then sets its
			// root to itself (a self-referencing foreign key).
			add("placement.resource_providers", "id, created_at, uuid, name, generation, root_provider_id, parent_provider_id",
				id, now, computeNodeUUID(s, n), h, initialRPGen, nil, nil)
			for _, inv := range []struct {
				rc, total, reserved, max int
				ratio                    float64
			}{
				{rcVCPU, hostVCPUs, 0, hostVCPUs, cpuRatio},
				{rcMemoryMB, hostMemoryMB, hostReservedM, hostMemoryMB, ramRatio},
				{rcDiskGB, hostDiskGB, 0, hostDiskGB, diskRatio},
			} {
				add("placement.inventories", "created_at, resource_provider_id, resource_class_id, total, reserved, min_unit, max_unit, step_size, allocation_ratio",
					now, id, inv.rc, inv.total, inv.reserved, 1, inv.max, 1, inv.ratio)
			}
		}
	}
	if err := insertBatched(ctx, db, rows); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "UPDATE placement.resource_providers SET root_provider_id = id"); err != nil {
		return fmt.Errorf("setting providers' roots: %w", err)
	}
	return nil
}

// insert is one row for insertBatched.
type insert struct {
	table, cols string
	vals        []any
}

// insertBatched inserts rows, those of one table and column list in
// multi-row statements, keeping their order.
func insertBatched(ctx context.Context, db *sql.DB, rows []insert) error {
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && j-i < seedBatchRows && rows[j].table == rows[i].table && rows[j].cols == rows[i].cols {
			j++
		}
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", rows[i].table, rows[i].cols)
		var args []any
		for k := i; k < j; k++ {
			if k > i {
				b.WriteString(", ")
			}
			b.WriteString(placeholders(len(rows[k].vals)))
			args = append(args, rows[k].vals...)
		}
		if _, err := db.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("seeding %s: %w", rows[i].table, err)
		}
		i = j
	}
	return nil
}

// placeholders is "(?, ?, ...)" for n values.
func placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

func keyName(s int) string { return "key-" + siteName(s) }

func fingerprint(s int) string {
	var b strings.Builder
	for i := 0; i < 16; i++ {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02x", (s*31+i*7)&0xff)
	}
	return b.String()
}

// publicKey is an ssh-rsa key's length of text (about 400 bytes).
func publicKey(s int) string {
	return "ssh-rsa " + filler(372, s) + " user@" + siteName(s)
}

// filler is n bytes of base64-like text, different for each seed.
func filler(n, seed int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 12345
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = alphabet[x>>26]
	}
	return string(b)
}

// cpuInfo and pciStats are what a libvirt compute node reports, in size
// and shape.
const cpuInfo = `{"arch": "x86_64", "model": "EPYC-Rome", "vendor": "AMD", "topology": {"cells": 1, "sockets": 1, "cores": 32, "threads": 2}, "features": ["sse4.2", "avx", "avx2", "aes", "pclmuldq", "rdrand", "f16c", "fma", "bmi1", "bmi2", "smep", "smap", "clflushopt", "sha-ni", "xsaveopt", "xsavec", "xgetbv1", "xsaves", "clzero", "xsaveerptr", "wbnoinvd", "umip", "rdpid", "npt", "nrip-save", "svm", "topoext", "perfctr_core", "invtsc"]}`

const pciStats = `{"nova_object.name": "PciDevicePoolList", "nova_object.namespace": "nova", "nova_object.version": "1.1", "nova_object.data": {"objects": []}, "nova_object.changes": ["objects"]}`
