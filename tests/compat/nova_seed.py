"""Give `nova-manage db archive_deleted_rows` and `db purge` work to do.

    /usr/bin/python3 nova_seed.py NOVA_CONF

Through Nova's own DB API (nova.db.main.api, nova.db.api.api) against the
databases NOVA_CONF names: creates four instances in the cell database
([database]/connection, mapped as cell1) with metadata, system metadata, the
default security group, a tag, an action and a fault, maps them in the API
database (instance_mappings, request_specs), then destroys two of them, which
soft-deletes their rows. Archiving then moves the deleted rows into the shadow
tables (INSERT ... SELECT) and deletes their API records; purging empties the
shadow tables. Prints one line; exits non-zero with the error otherwise.

Uses Debian's python3-nova; run it with /usr/bin/python3.
"""

import datetime
import sys
import uuid


def main(conf_file):
    from nova import config
    from nova import context as nova_context
    from nova.db.api import api as api_db
    from nova.db.api import models as api_models
    from nova.db.main import api as db

    # As nova-manage does, less the RPC set-up it has no use for here.
    config.parse_args(["nova_seed", "--config-file", conf_file], init_rpc=False)

    ctx = nova_context.RequestContext("seed-user", "seed-project", is_admin=True)

    # The cell this database is mapped as (create_cell named it cell1).
    with api_db.context_manager.reader.using(ctx):
        cell = ctx.session.query(api_models.CellMapping).filter_by(name="cell1").one()
        cell_id = cell.id

    uuids = ["5eed0000-0000-4000-8000-%012d" % i for i in range(1, 5)]
    now = datetime.datetime(2024, 1, 2, 3, 4, 5)
    for i, u in enumerate(uuids):
        db.instance_create(ctx, {
            "uuid": u, "project_id": ctx.project_id, "user_id": ctx.user_id,
            "display_name": "seed-%d" % i, "hostname": "seed-%d" % i,
            "host": "compute-1", "node": "compute-1", "vm_state": "active",
            "memory_mb": 512, "vcpus": 1, "root_gb": 1,
            "metadata": {"role": "seed"}, "system_metadata": {"image_os": "none"},
            "security_groups": ["default"],
        })
        db.instance_tag_add(ctx, u, "seed")
        db.action_start(ctx, {
            "instance_uuid": u, "action": "create", "request_id": "req-%s" % uuid.uuid4(),
            "user_id": ctx.user_id, "project_id": ctx.project_id, "start_time": now,
        })
        db.instance_fault_create(ctx, {
            "instance_uuid": u, "code": 500, "message": "seed", "details": "",
            "host": "compute-1",
        })
        with api_db.context_manager.writer.using(ctx):
            ctx.session.add(api_models.InstanceMapping(
                instance_uuid=u, cell_id=cell_id, project_id=ctx.project_id,
                user_id=ctx.user_id, queued_for_delete=False))
            ctx.session.add(api_models.RequestSpec(instance_uuid=u, spec="{}"))

    for u in uuids[:2]:
        db.instance_destroy(ctx, u)

    live = db.instance_get_all(ctx)
    if sorted(i["uuid"] for i in live) != sorted(uuids[2:]):
        print("nova_seed: after destroying two of four instances, %d remain: %s"
              % (len(live), sorted(i["uuid"] for i in live)), file=sys.stderr)
        return 1
    print("nova_seed: 4 instances created, 2 destroyed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
