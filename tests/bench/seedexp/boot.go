package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// One VM boot, as the SQL that Nova's API, conductor, scheduler (through
// placement) and compute make against their databases for it, in Zed's
// order. Reads of one service call are single autocommit statements, as
// oslo.db's reader sessions issue them; the steps Nova runs in one writer
// session are one explicit transaction here; the others are autocommit
// writes.
//
//	nova-api        flavor, its extra specs, the key pair, the project's
//	                quotas, the project's instance usage (a count over the
//	                cell's instances); request spec, build request and
//	                instance mapping created (3 autocommit inserts)
//	scheduler       candidate providers of the site (placement's
//	                allocation candidates: providers, then inventories
//	                with their usage), compute nodes of the candidates
//	placement       claim (1 transaction): project, user, consumer,
//	                capacity and generation of the chosen provider,
//	                3 allocations, generation bump; a lost race on the
//	                generation rolls back and the claim is tried again
//	conductor       host mapping and cell; instance created in the cell
//	                (1 transaction: security group, instances,
//	                instance_info_caches, instance_extra, 10 rows of
//	                instance_system_metadata, security group
//	                association); block device mapping; action "create";
//	                instance mapping pointed at the cell; build request
//	                deleted
//	nova-compute    action event started (1 transaction); vm_state and
//	                task_state moves (building, then host and node set by
//	                the resource claim, networking, block_device_mapping,
//	                spawning, active) each an update that names the task
//	                state it expects, as Instance.save does; compute node
//	                usage; network info cache; the instance read back;
//	                event finished (1 transaction)
//
// 42 statements and 4 transactions, when no claim has to be retried.

// querier is what a connection and a transaction have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// counted counts the statements sent through it.
type counted struct {
	q querier
	n *atomic.Int64
}

func (c counted) exec(ctx context.Context, query string, args ...any) (int64, error) {
	c.n.Add(1)
	res, err := c.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execOne runs an update that must change exactly one row.
func (c counted) execOne(ctx context.Context, query string, args ...any) error {
	n, err := c.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%w: %d rows affected, want 1: %s", errUnexpected, n, compact(query))
	}
	return nil
}

func (c counted) row(ctx context.Context, query string, args []any, dest ...any) error {
	c.n.Add(1)
	return c.q.QueryRowContext(ctx, query, args...).Scan(dest...)
}

// rows runs a query and hands each row's columns, as text, to each.
func (c counted) rows(ctx context.Context, query string, args []any, each func(cols []sql.RawBytes) error) error {
	c.n.Add(1)
	rs, err := c.q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	names, err := rs.Columns()
	if err != nil {
		return err
	}
	cols := make([]sql.RawBytes, len(names))
	ptrs := make([]any, len(names))
	for i := range cols {
		ptrs[i] = &cols[i]
	}
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return err
		}
		if each != nil {
			if err := each(cols); err != nil {
				return err
			}
		}
	}
	return rs.Err()
}

var (
	// errUnexpected: the database answered something a boot cannot go on
	// from (a state update that matched no row, a missing seed row).
	errUnexpected = errors.New("unexpected answer")
	// errRetryClaim: the placement claim lost a race (generation moved or
	// capacity taken); the scheduler tries again.
	errRetryClaim = errors.New("claim lost a race")
)

// maxTxnRetries bounds the retries of one transaction after deadlocks and
// lock wait timeouts, and maxClaims the placement claims of one boot.
const (
	maxTxnRetries = 5
	maxClaims     = 20
)

// client is one service worker of a site: it boots its VMs one after the
// other on one connection to its site's database server.
type client struct {
	site, idx int
	l         layout
	conn      *sql.Conn
	rng       *rand.Rand
	stmts     atomic.Int64
	txns      atomic.Int64
	retries   atomic.Int64 // transactions retried after 1213/1205
	claims    atomic.Int64 // placement claims retried
	latencies []time.Duration
}

func (c *client) q() counted { return counted{c.conn, &c.stmts} }

// txn runs fn in a transaction, again from the start after a deadlock or
// a lock wait timeout (oslo.db retries those on Nova's writer sessions).
func (c *client) txn(ctx context.Context, fn func(q counted) error) error {
	for attempt := 0; ; attempt++ {
		c.txns.Add(1)
		tx, err := c.conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		err = fn(counted{tx, &c.stmts})
		if err == nil {
			err = tx.Commit()
			if err == nil {
				return nil
			}
		} else {
			_ = tx.Rollback()
		}
		if !retryable(err) || attempt >= maxTxnRetries {
			return err
		}
		c.retries.Add(1)
	}
}

// auto runs one autocommit statement through fn, again after a deadlock
// or a lock wait timeout.
func (c *client) auto(ctx context.Context, fn func(q counted) error) error {
	for attempt := 0; ; attempt++ {
		err := fn(c.q())
		if err == nil || !retryable(err) || attempt >= maxTxnRetries {
			return err
		}
		c.retries.Add(1)
	}
}

func retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// vm is the state of one boot as the services pass it along.
type vm struct {
	uuid, reqID, hostname string
	now                   time.Time

	flavorID, vcpus, memMB, rootGB int
	flavorName                     string

	provider     int    // resource provider chosen
	host         string // and its compute host
	computeID    int    // compute_nodes.id
	actionID     int64
	eventID      int64
	secGroupID   int
	cellID       int
	placeProject int
	placeUser    int
}

func (c *client) newUUID() string {
	b := make([]byte, 16)
	for i := 0; i < 16; i += 8 {
		x := c.rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// boot runs the whole sequence for VM number n of this client.
func (c *client) boot(ctx context.Context, n int) error {
	v := &vm{
		uuid:     c.newUUID(),
		hostname: fmt.Sprintf("vm-%s-c%d-%d", siteName(c.site), c.idx, n),
		now:      time.Now().UTC().Truncate(time.Second),
	}
	v.reqID = "req-" + c.newUUID()
	for _, step := range []struct {
		name string
		fn   func(context.Context, *vm) error
	}{
		{"api: flavor, key pair, quotas", c.apiChecks},
		{"api: request spec, build request, instance mapping", c.apiCreate},
		{"scheduler and placement claim", c.scheduleAndClaim},
		{"conductor: instance created in the cell", c.conductorCreate},
		{"conductor: mappings", c.conductorMappings},
		{"compute: build", c.computeBuild},
	} {
		if err := step.fn(ctx, v); err != nil {
			return fmt.Errorf("%s client %d, VM %d (%s): %s: %w", siteName(c.site), c.idx, n, v.uuid, step.name, err)
		}
	}
	return nil
}

func (c *client) apiChecks(ctx context.Context, v *vm) error {
	q := c.q()
	var rxtx float64
	var swap, ephemeral int
	var disabled, public sql.NullBool
	var desc sql.NullString
	var weight sql.NullInt64
	var created, updated sql.NullString
	if err := q.row(ctx, `SELECT id, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, rxtx_factor, vcpu_weight,
		disabled, is_public, description, created_at, updated_at FROM nova_api.flavors WHERE flavorid = ?`,
		[]any{bootFlavorID}, &v.flavorID, &v.flavorName, &v.memMB, &v.vcpus, &v.rootGB, &ephemeral, &swap, &rxtx, &weight,
		&disabled, &public, &desc, &created, &updated); err != nil {
		return fmt.Errorf("flavor: %w", err)
	}
	if err := q.rows(ctx, "SELECT `key`, value FROM nova_api.flavor_extra_specs WHERE flavor_id = ?", []any{v.flavorID}, nil); err != nil {
		return fmt.Errorf("flavor extra specs: %w", err)
	}
	keys := 0
	if err := q.rows(ctx, `SELECT id, name, user_id, fingerprint, public_key, type, created_at FROM nova_api.key_pairs
		WHERE user_id = ? AND name = ?`, []any{userID(c.site), keyName(c.site)}, func([]sql.RawBytes) error { keys++; return nil }); err != nil {
		return fmt.Errorf("key pair: %w", err)
	}
	if keys != 1 {
		return fmt.Errorf("%w: %d key pairs named %s", errUnexpected, keys, keyName(c.site))
	}
	limits := map[string]int{}
	if err := q.rows(ctx, "SELECT resource, hard_limit FROM nova_api.quotas WHERE project_id = ?", []any{projectID(c.site)},
		func(cols []sql.RawBytes) error {
			f, err := numbers(cols[1:2])
			if err != nil {
				return err
			}
			limits[string(cols[0])] = int(f[0])
			return nil
		}); err != nil {
		return fmt.Errorf("quotas: %w", err)
	}
	var count, cores, ram int64
	if err := q.row(ctx, `SELECT COUNT(id), COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mb), 0) FROM nova.instances
		WHERE deleted = 0 AND project_id = ?`, []any{projectID(c.site)}, &count, &cores, &ram); err != nil {
		return fmt.Errorf("quota usage: %w", err)
	}
	if count+1 > int64(limits["instances"]) || cores+int64(v.vcpus) > int64(limits["cores"]) || ram+int64(v.memMB) > int64(limits["ram"]) {
		return fmt.Errorf("%w: over quota (%d instances, %d cores, %d MB; limits %v)", errUnexpected, count, cores, ram, limits)
	}
	return nil
}

func (c *client) apiCreate(ctx context.Context, v *vm) error {
	if err := c.auto(ctx, func(q counted) error {
		_, err := q.exec(ctx, "INSERT INTO nova_api.request_specs (created_at, instance_uuid, spec) VALUES (?, ?, ?)",
			v.now, v.uuid, requestSpec(v, c.site))
		return err
	}); err != nil {
		return fmt.Errorf("request spec: %w", err)
	}
	if err := c.auto(ctx, func(q counted) error {
		_, err := q.exec(ctx, `INSERT INTO nova_api.build_requests (created_at, instance_uuid, project_id, instance, block_device_mappings, tags)
			VALUES (?, ?, ?, ?, ?, ?)`, v.now, v.uuid, projectID(c.site), buildRequestInstance(v, c.site), bdmList(v), "[]")
		return err
	}); err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	return c.auto(ctx, func(q counted) error {
		_, err := q.exec(ctx, `INSERT INTO nova_api.instance_mappings (created_at, instance_uuid, cell_id, project_id, user_id, queued_for_delete)
			VALUES (?, ?, NULL, ?, ?, 0)`, v.now, v.uuid, projectID(c.site), userID(c.site))
		return err
	})
}

// candidate is a provider with room for the flavor.
type candidate struct {
	id        int
	uuid      string
	freeRAM   int // compute_nodes.free_ram_mb, the RAM weigher's input
	computeID int
	host      string
}

func (c *client) scheduleAndClaim(ctx context.Context, v *vm) error {
	for attempt := 0; attempt < maxClaims; attempt++ {
		cands, err := c.candidates(ctx, v)
		if err != nil {
			return err
		}
		if len(cands) == 0 {
			return fmt.Errorf("%w: no valid host in %s", errUnexpected, siteName(c.site))
		}
		// The RAM weigher: most free RAM first; ties go to a random one,
		// so that a site's schedulers do not all pick the same host.
		best := cands[:1]
		for _, cd := range cands[1:] {
			switch {
			case cd.freeRAM > best[0].freeRAM:
				best = []candidate{cd}
			case cd.freeRAM == best[0].freeRAM:
				best = append(best, cd)
			}
		}
		pick := best[c.rng.IntN(len(best))]
		v.provider, v.host, v.computeID = pick.id, pick.host, pick.computeID
		err = c.txn(ctx, func(q counted) error { return c.claim(ctx, q, v) })
		if errors.Is(err, errRetryClaim) {
			c.claims.Add(1)
			continue
		}
		return err
	}
	return fmt.Errorf("%w: %d placement claims lost in a row", errUnexpected, maxClaims)
}

// candidates is placement's allocation candidates, restricted to the
// site's providers (the availability zone's aggregate), with the compute
// nodes the scheduler's host manager reads for them.
func (c *client) candidates(ctx context.Context, v *vm) ([]candidate, error) {
	q := c.q()
	type prov struct {
		uuid, name string
		fits       bool
	}
	provs := map[int]*prov{}
	var ids []any
	if err := q.rows(ctx, "SELECT id, uuid, name, generation FROM placement.resource_providers WHERE name LIKE ? ORDER BY id",
		[]any{hostPrefix(c.site)}, func(cols []sql.RawBytes) error {
			f, err := numbers(cols[:1])
			if err != nil {
				return err
			}
			id := int(f[0])
			provs[id] = &prov{uuid: string(cols[1]), name: string(cols[2]), fits: true}
			ids = append(ids, id)
			return nil
		}); err != nil {
		return nil, fmt.Errorf("providers: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	want := map[int]int{rcVCPU: v.vcpus, rcMemoryMB: v.memMB, rcDiskGB: v.rootGB}
	seen := map[int]int{}
	if err := q.rows(ctx, `SELECT i.resource_provider_id, i.resource_class_id, i.total, i.reserved, i.allocation_ratio, i.max_unit,
		COALESCE(SUM(a.used), 0)
		FROM placement.inventories i LEFT JOIN placement.allocations a
		ON a.resource_provider_id = i.resource_provider_id AND a.resource_class_id = i.resource_class_id
		WHERE i.resource_provider_id IN `+placeholders(len(ids))+`
		GROUP BY i.resource_provider_id, i.resource_class_id, i.total, i.reserved, i.allocation_ratio, i.max_unit`,
		ids, func(cols []sql.RawBytes) error {
			f, err := numbers(cols)
			if err != nil {
				return err
			}
			rp, rc, total, reserved, ratio, maxUnit, used := int(f[0]), int(f[1]), int(f[2]), int(f[3]), f[4], int(f[5]), int(f[6])
			p := provs[rp]
			if p == nil {
				return fmt.Errorf("%w: inventory of unknown provider %d", errUnexpected, rp)
			}
			seen[rp]++
			need := want[rc]
			if float64(used+need) > float64(total-reserved)*ratio || need > maxUnit {
				p.fits = false
			}
			return nil
		}); err != nil {
		return nil, fmt.Errorf("inventories and usage: %w", err)
	}
	var uuids []any
	for _, id := range ids {
		p := provs[id.(int)]
		if p.fits && seen[id.(int)] == placementRCs {
			uuids = append(uuids, p.uuid)
		}
	}
	if len(uuids) == 0 {
		return nil, nil
	}
	var out []candidate
	if err := q.rows(ctx, `SELECT id, host, hypervisor_hostname, uuid, vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used,
		local_gb_used, free_ram_mb, free_disk_gb, running_vms, cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio,
		stats, numa_topology, supported_instances, cpu_info, pci_stats
		FROM nova.compute_nodes WHERE deleted = 0 AND uuid IN `+placeholders(len(uuids)), uuids,
		func(cols []sql.RawBytes) error {
			f, err := numbers([]sql.RawBytes{cols[0], cols[10]})
			if err != nil {
				return err
			}
			cd := candidate{computeID: int(f[0]), freeRAM: int(f[1])}
			cd.host, cd.uuid = string(cols[1]), string(cols[3])
			for id, p := range provs {
				if p.uuid == cd.uuid {
					cd.id = id
				}
			}
			out = append(out, cd)
			return nil
		}); err != nil {
		return nil, fmt.Errorf("compute nodes: %w", err)
	}
	return out, nil
}

// claim is placement's PUT /allocations/{consumer}: in one transaction.
func (c *client) claim(ctx context.Context, q counted, v *vm) error {
	if err := q.row(ctx, "SELECT id FROM placement.projects WHERE external_id = ?", []any{projectID(c.site)}, &v.placeProject); err != nil {
		return fmt.Errorf("placement project: %w", err)
	}
	if err := q.row(ctx, "SELECT id FROM placement.users WHERE external_id = ?", []any{userID(c.site)}, &v.placeUser); err != nil {
		return fmt.Errorf("placement user: %w", err)
	}
	if _, err := q.exec(ctx, "INSERT INTO placement.consumers (created_at, uuid, project_id, user_id, generation, consumer_type_id) VALUES (?, ?, ?, ?, 0, 1)",
		v.now, v.uuid, v.placeProject, v.placeUser); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	want := map[int]int{rcVCPU: v.vcpus, rcMemoryMB: v.memMB, rcDiskGB: v.rootGB}
	gen := -1
	full := false
	if err := q.rows(ctx, `SELECT rp.generation, i.resource_class_id, i.total, i.reserved, i.allocation_ratio, i.min_unit, i.max_unit,
		i.step_size, COALESCE(SUM(a.used), 0)
		FROM placement.resource_providers rp
		JOIN placement.inventories i ON i.resource_provider_id = rp.id
		LEFT JOIN placement.allocations a ON a.resource_provider_id = i.resource_provider_id AND a.resource_class_id = i.resource_class_id
		WHERE rp.id = ?
		GROUP BY rp.generation, i.resource_class_id, i.total, i.reserved, i.allocation_ratio, i.min_unit, i.max_unit, i.step_size`,
		[]any{v.provider}, func(cols []sql.RawBytes) error {
			f, err := numbers(cols)
			if err != nil {
				return err
			}
			rc, total, reserved, ratio, used := int(f[1]), int(f[2]), int(f[3]), f[4], int(f[8])
			gen = int(f[0])
			if float64(used+want[rc]) > float64(total-reserved)*ratio {
				full = true
			}
			return nil
		}); err != nil {
		return fmt.Errorf("capacity: %w", err)
	}
	if gen < 0 {
		return fmt.Errorf("%w: provider %d has no inventory", errUnexpected, v.provider)
	}
	if full {
		return errRetryClaim
	}
	if _, err := q.exec(ctx, `INSERT INTO placement.allocations (created_at, resource_provider_id, consumer_id, resource_class_id, used)
		VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)`,
		v.now, v.provider, v.uuid, rcVCPU, v.vcpus,
		v.now, v.provider, v.uuid, rcMemoryMB, v.memMB,
		v.now, v.provider, v.uuid, rcDiskGB, v.rootGB); err != nil {
		return fmt.Errorf("allocations: %w", err)
	}
	n, err := q.exec(ctx, "UPDATE placement.resource_providers SET generation = ?, updated_at = ? WHERE id = ? AND generation = ?",
		gen+1, v.now, v.provider, gen)
	if err != nil {
		return fmt.Errorf("generation: %w", err)
	}
	if n != 1 {
		return errRetryClaim
	}
	return nil
}

func (c *client) conductorCreate(ctx context.Context, v *vm) error {
	var transport, dbconn sql.NullString
	var cellUUID, cellName string
	var disabled sql.NullBool
	if err := c.q().row(ctx, `SELECT cm.id, cm.uuid, cm.name, cm.transport_url, cm.database_connection, cm.disabled
		FROM nova_api.host_mappings hm JOIN nova_api.cell_mappings cm ON cm.id = hm.cell_id WHERE hm.host = ?`,
		[]any{v.host}, &v.cellID, &cellUUID, &cellName, &transport, &dbconn, &disabled); err != nil {
		return fmt.Errorf("host mapping of %s: %w", v.host, err)
	}
	return c.txn(ctx, func(q counted) error {
		if err := q.row(ctx, "SELECT id FROM nova.security_groups WHERE project_id = ? AND name = 'default' AND deleted = 0",
			[]any{projectID(c.site)}, &v.secGroupID); err != nil {
			return fmt.Errorf("security group: %w", err)
		}
		if _, err := q.exec(ctx, `INSERT INTO nova.instances (created_at, updated_at, deleted, user_id, project_id, image_ref, hostname,
			launch_index, key_name, key_data, power_state, vm_state, task_state, memory_mb, vcpus, root_gb, ephemeral_gb, host, node,
			instance_type_id, user_data, reservation_id, availability_zone, display_name, display_description, locked, os_type,
			architecture, vm_mode, uuid, root_device_name, config_drive, auto_disk_config, progress, shutdown_terminate,
			disable_terminate, cleaned, hidden)
			VALUES (?, ?, 0, ?, ?, ?, ?, 0, ?, ?, 0, 'building', 'scheduling', ?, ?, ?, 0, NULL, NULL, ?, NULL, ?, ?, ?, ?, 0, NULL,
			NULL, NULL, ?, '/dev/vda', '', 0, 0, 0, 0, 0, 0)`,
			v.now, v.now, userID(c.site), projectID(c.site), imageRef, v.hostname, keyName(c.site), publicKey(c.site),
			v.memMB, v.vcpus, v.rootGB, v.flavorID, "r-"+v.uuid[:8], siteName(c.site), v.hostname, v.hostname, v.uuid); err != nil {
			return fmt.Errorf("instances: %w", err)
		}
		if _, err := q.exec(ctx, "INSERT INTO nova.instance_info_caches (created_at, deleted, network_info, instance_uuid) VALUES (?, 0, '[]', ?)",
			v.now, v.uuid); err != nil {
			return fmt.Errorf("instance_info_caches: %w", err)
		}
		if _, err := q.exec(ctx, `INSERT INTO nova.instance_extra (created_at, deleted, instance_uuid, device_metadata, numa_topology,
			pci_requests, flavor, vcpu_model, migration_context, keypairs, trusted_certs, resources)
			VALUES (?, 0, ?, NULL, NULL, ?, ?, NULL, NULL, ?, NULL, NULL)`,
			v.now, v.uuid, pciRequests, flavorBlob(v), keypairsBlob(c.site)); err != nil {
			return fmt.Errorf("instance_extra: %w", err)
		}
		meta := systemMetadata(v, c.site)
		args := make([]any, 0, 4*len(meta))
		var b strings.Builder
		b.WriteString("INSERT INTO nova.instance_system_metadata (created_at, deleted, instance_uuid, `key`, value) VALUES ")
		for i, kv := range meta {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, 0, ?, ?, ?)")
			args = append(args, v.now, v.uuid, kv[0], kv[1])
		}
		if _, err := q.exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("instance_system_metadata: %w", err)
		}
		if _, err := q.exec(ctx, `INSERT INTO nova.security_group_instance_association (created_at, deleted, security_group_id, instance_uuid)
			VALUES (?, 0, ?, ?)`, v.now, v.secGroupID, v.uuid); err != nil {
			return fmt.Errorf("security group association: %w", err)
		}
		return nil
	})
}

func (c *client) conductorMappings(ctx context.Context, v *vm) error {
	if err := c.auto(ctx, func(q counted) error {
		_, err := q.exec(ctx, `INSERT INTO nova.block_device_mapping (created_at, deleted, instance_uuid, uuid, source_type,
			destination_type, device_type, disk_bus, boot_index, device_name, delete_on_termination, image_id, no_device, encrypted)
			VALUES (?, 0, ?, ?, 'image', 'local', 'disk', 'virtio', 0, '/dev/vda', 1, ?, 0, 0)`,
			v.now, v.uuid, c.newUUID(), imageRef)
		return err
	}); err != nil {
		return fmt.Errorf("block device mapping: %w", err)
	}
	if err := c.auto(ctx, func(q counted) error {
		_, err := q.exec(ctx, `INSERT INTO nova.instance_actions (created_at, deleted, action, instance_uuid, request_id, user_id,
			project_id, start_time) VALUES (?, 0, 'create', ?, ?, ?, ?, ?)`,
			v.now, v.uuid, v.reqID, userID(c.site), projectID(c.site), v.now)
		return err
	}); err != nil {
		return fmt.Errorf("action: %w", err)
	}
	if err := c.auto(ctx, func(q counted) error {
		return q.execOne(ctx, "UPDATE nova_api.instance_mappings SET cell_id = ?, updated_at = ? WHERE instance_uuid = ?",
			v.cellID, v.now, v.uuid)
	}); err != nil {
		return fmt.Errorf("instance mapping: %w", err)
	}
	return c.auto(ctx, func(q counted) error {
		return q.execOne(ctx, "DELETE FROM nova_api.build_requests WHERE instance_uuid = ?", v.uuid)
	})
}

const buildEvent = "compute__do_build_and_run_instance"

func (c *client) computeBuild(ctx context.Context, v *vm) error {
	if err := c.txn(ctx, func(q counted) error {
		if err := q.row(ctx, `SELECT id FROM nova.instance_actions WHERE instance_uuid = ? AND request_id = ? AND deleted = 0
			ORDER BY created_at DESC, id DESC LIMIT 1`, []any{v.uuid, v.reqID}, &v.actionID); err != nil {
			return fmt.Errorf("action: %w", err)
		}
		_, err := q.exec(ctx, `INSERT INTO nova.instance_actions_events (created_at, deleted, event, action_id, start_time, host)
			VALUES (?, 0, ?, ?, ?, ?)`, v.now, buildEvent, v.actionID, v.now, v.host)
		return err
	}); err != nil {
		return fmt.Errorf("event start: %w", err)
	}
	state := func(set, where string, args ...any) error {
		return c.auto(ctx, func(q counted) error {
			return q.execOne(ctx, "UPDATE nova.instances SET "+set+", updated_at = ? WHERE uuid = ? AND deleted = 0 AND "+where,
				append(args, time.Now().UTC().Truncate(time.Second), v.uuid)...)
		})
	}
	if err := state("vm_state = 'building', task_state = NULL", "(task_state = 'scheduling' OR task_state IS NULL)"); err != nil {
		return fmt.Errorf("building: %w", err)
	}
	if err := state("host = ?, node = ?, launched_on = ?", "task_state IS NULL", v.host, v.host, v.host); err != nil {
		return fmt.Errorf("claim: instance host: %w", err)
	}
	if err := c.auto(ctx, func(q counted) error {
		return q.execOne(ctx, `UPDATE nova.compute_nodes SET vcpus_used = vcpus_used + ?, memory_mb_used = memory_mb_used + ?,
			local_gb_used = local_gb_used + ?, free_ram_mb = free_ram_mb - ?, free_disk_gb = free_disk_gb - ?,
			running_vms = running_vms + 1, updated_at = ? WHERE id = ? AND deleted = 0`,
			v.vcpus, v.memMB, v.rootGB, v.memMB, v.rootGB, time.Now().UTC().Truncate(time.Second), v.computeID)
	}); err != nil {
		return fmt.Errorf("claim: compute node: %w", err)
	}
	if err := state("task_state = 'networking'", "task_state IS NULL"); err != nil {
		return fmt.Errorf("networking: %w", err)
	}
	if err := c.auto(ctx, func(q counted) error {
		return q.execOne(ctx, "UPDATE nova.instance_info_caches SET network_info = ?, updated_at = ? WHERE instance_uuid = ?",
			networkInfo(v, c.site), time.Now().UTC().Truncate(time.Second), v.uuid)
	}); err != nil {
		return fmt.Errorf("network info cache: %w", err)
	}
	if err := state("task_state = 'block_device_mapping'", "task_state = 'networking'"); err != nil {
		return fmt.Errorf("block_device_mapping: %w", err)
	}
	if err := state("task_state = 'spawning'", "task_state = 'block_device_mapping'"); err != nil {
		return fmt.Errorf("spawning: %w", err)
	}
	if err := state("vm_state = 'active', task_state = NULL, power_state = 1, progress = 100, launched_at = ?",
		"task_state = 'spawning'", time.Now().UTC().Truncate(time.Second)); err != nil {
		return fmt.Errorf("active: %w", err)
	}
	var vmState, host string
	var taskState sql.NullString
	var flavor, network sql.NullString
	if err := c.q().row(ctx, `SELECT i.vm_state, i.task_state, i.host, ie.flavor, ic.network_info FROM nova.instances i
		JOIN nova.instance_extra ie ON ie.instance_uuid = i.uuid
		JOIN nova.instance_info_caches ic ON ic.instance_uuid = i.uuid
		WHERE i.uuid = ? AND i.deleted = 0`, []any{v.uuid}, &vmState, &taskState, &host, &flavor, &network); err != nil {
		return fmt.Errorf("instance read back: %w", err)
	}
	if vmState != "active" || taskState.Valid || host != v.host {
		return fmt.Errorf("%w: instance read back as vm_state %s, task_state %v, host %s", errUnexpected, vmState, taskState, host)
	}
	if err := c.txn(ctx, func(q counted) error {
		if err := q.row(ctx, `SELECT id FROM nova.instance_actions_events WHERE action_id = ? AND event = ?
			ORDER BY created_at DESC, id DESC LIMIT 1`, []any{v.actionID, buildEvent}, &v.eventID); err != nil {
			return fmt.Errorf("event: %w", err)
		}
		t := time.Now().UTC().Truncate(time.Second)
		if err := q.execOne(ctx, "UPDATE nova.instance_actions_events SET finish_time = ?, result = 'Success', updated_at = ? WHERE id = ?",
			t, t, v.eventID); err != nil {
			return err
		}
		return q.execOne(ctx, "UPDATE nova.instance_actions SET updated_at = ? WHERE id = ?", t, v.actionID)
	}); err != nil {
		return fmt.Errorf("event finish: %w", err)
	}
	return nil
}

// numbers reads every column as a number: servers print SUM() of an
// integer column as a decimal, some with a fraction.
func numbers(cols []sql.RawBytes) ([]float64, error) {
	out := make([]float64, len(cols))
	for i, c := range cols {
		f, err := strconv.ParseFloat(string(c), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: column %d is %q, not a number", errUnexpected, i, c)
		}
		out[i] = f
	}
	return out, nil
}

func compact(s string) string { return strings.Join(strings.Fields(s), " ") }
