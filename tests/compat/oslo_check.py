"""What OpenStack services do at run time, through their own DB layers.

    /usr/bin/python3 oslo_check.py --port PORT --server NAME --nova-conf FILE [--other-port PORT]

Against the databases that openstack.sh built on the server at 127.0.0.1:PORT
(nova: Nova's cell1 database; keystone), with Debian's SQLAlchemy, PyMySQL,
oslo.db, Nova and Keystone:

 1. oslo.db's enginefacade with Keystone's user table (and its local_user
    row, which a composite foreign key with ON DELETE CASCADE ties to it):
    read back with the joined eager loads Keystone uses; a duplicate id gives
    DBDuplicateEntry naming the primary key as the server spells it (MySQL 8:
    'user.PRIMARY'; MariaDB: 'PRIMARY'), and rolls back the whole
    transaction, including a user it inserted first (PyMySQL runs with
    autocommit off: SQLAlchemy's transactions are the server's); a
    local_user row for no user gives DBReferenceError (error 1452); deleting
    the user cascades.
 2. The same with Nova's models: insert instances, read them back,
    soft-delete one (UPDATE ... SET deleted=instances.id), and insert a
    duplicate uuid: DBDuplicateEntry(columns=['uuid']).
 3. Nova's DB API (nova.db.main.api, configured as nova-manage configures
    it): session A updates an instance (setting task_state) and holds its
    transaction open; session B meanwhile updates the same instance expecting
    A's task_state, as Nova's compare-and-swap updates do. B must wait for A,
    then succeed, on its first attempt (instance_update's retry decorator
    must not fire: no deadlock, no conflict), and the row must hold both.
    With --other-port, B goes through the server on that port instead (a
    node of another site of the same cluster: Nova's API at one site and a
    conductor at another updating one instance), with a context manager of
    its own, as Nova targets a context at a cell.

NAME is mariadb (whose duplicate-key messages name keys differently) or
anything else for fogdb.

Prints one line per check; a failed check prints `CHECK FAILED: ...`; exits
non-zero if any failed.
"""

import argparse
import datetime
import sys
import threading
import time
import traceback

HOLD = 2.0  # seconds session A keeps its transaction open


class Failed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Failed(msg)


def short(e):
    s = "%s: %s" % (type(e).__name__, e)
    return " ".join(s.split())[:600]


def check_enginefacade_nova(url):
    from oslo_db import exception as db_exc
    from oslo_db.sqlalchemy import enginefacade
    from nova.db.main import models

    tx = enginefacade.transaction_context()
    tx.configure(connection=url)

    @enginefacade.transaction_context_provider
    class Ctx(object):
        pass

    uuids = ["0510c4ec-0000-4000-8000-%012d" % i for i in range(1, 4)]
    with tx.writer.using(Ctx()) as session:
        for i, u in enumerate(uuids):
            session.add(models.Instance(
                uuid=u, project_id="oslo-check", user_id="oslo-check",
                display_name="row-%d" % i, vm_state="building", memory_mb=64 * (i + 1),
                locked_by="owner" if i == 0 else None))
    with tx.reader.using(Ctx()) as session:
        rows = session.query(models.Instance).filter(
            models.Instance.uuid.in_(uuids)).order_by(models.Instance.id).all()
        got = [(r.uuid, r.display_name, r.memory_mb, r.locked_by, r.deleted) for r in rows]
        want = [(u, "row-%d" % i, 64 * (i + 1), "owner" if i == 0 else None, 0)
                for i, u in enumerate(uuids)]
        expect(got == want, "instances read back %r, want %r" % (got, want))
        expect(all(r.created_at is not None for r in rows), "created_at not set")
        ids = {r.uuid: r.id for r in rows}
    # oslo.db's soft delete: SET deleted=instances.id.
    with tx.writer.using(Ctx()) as session:
        n = session.query(models.Instance).filter_by(uuid=uuids[2]).soft_delete(
            synchronize_session=False)
        expect(n == 1, "soft_delete matched %r rows, want 1" % (n,))
    with tx.reader.using(Ctx()) as session:
        r = session.query(models.Instance).filter_by(uuid=uuids[2]).one()
        expect(r.deleted == ids[uuids[2]] and r.deleted_at is not None,
               "after soft_delete deleted=%r deleted_at=%r, want deleted=%r"
               % (r.deleted, r.deleted_at, ids[uuids[2]]))
    # A duplicate uuid.
    try:
        with tx.writer.using(Ctx()) as session:
            session.add(models.Instance(uuid=uuids[0], project_id="oslo-check"))
    except db_exc.DBDuplicateEntry as e:
        expect(e.columns == ["uuid"] and e.value == uuids[0],
               "DBDuplicateEntry columns=%r value=%r, want ['uuid'] %r"
               % (e.columns, e.value, uuids[0]))
    else:
        raise Failed("inserting a duplicate instances.uuid did not fail")
    # The failed transaction left nothing behind.
    with tx.reader.using(Ctx()) as session:
        n = session.query(models.Instance).filter_by(uuid=uuids[0]).count()
        expect(n == 1, "%d instances with uuid %s after the duplicate, want 1" % (n, uuids[0]))
    tx.writer.get_engine().dispose()


def check_enginefacade_keystone(url, server):
    import sqlalchemy
    from oslo_db import exception as db_exc
    from oslo_db.sqlalchemy import enginefacade
    from keystone.identity.backends import sql_model

    tx = enginefacade.transaction_context()
    tx.configure(connection=url)

    @enginefacade.transaction_context_provider
    class Ctx(object):
        pass

    uid = "0510c4ec0000400080000000000000aa"
    now = datetime.datetime(2024, 1, 2, 3, 4, 5)
    with tx.writer.using(Ctx()) as session:
        user = sql_model.User(id=uid, domain_id="default", enabled=True,
                              extra={"email": "check@example.org"}, created_at=now)
        user.local_user = sql_model.LocalUser(user_id=uid, domain_id="default",
                                              name="oslo-check-user")
        session.add(user)
    with tx.reader.using(Ctx()) as session:
        u = session.query(sql_model.User).filter_by(id=uid).one()
        got = (u.id, u.domain_id, u.enabled, u.extra, u.created_at, u.name)
        want = (uid, "default", True, {"email": "check@example.org"}, now, "oslo-check-user")
        expect(got == want, "user read back %r, want %r" % (got, want))
    # A duplicate primary key, after another insert in the same transaction:
    # MySQL 8 names the key 'user.PRIMARY'; the transaction rolls back whole.
    key = "user.PRIMARY" if server != "mariadb" else "PRIMARY"
    uid2 = "0510c4ec0000400080000000000000bb"
    autocommit = None
    try:
        with tx.writer.using(Ctx()) as session:
            autocommit = session.execute(sqlalchemy.text("SELECT @@autocommit")).scalar()
            session.add(sql_model.User(id=uid2, domain_id="default", enabled=True))
            session.flush()
            session.add(sql_model.User(id=uid, domain_id="default", enabled=True))
    except db_exc.DBDuplicateEntry as e:
        expect(e.columns == [key] and e.value == uid,
               "DBDuplicateEntry columns=%r value=%r, want %r %r"
               % (e.columns, e.value, [key], uid))
    else:
        raise Failed("inserting a duplicate user.id did not fail")
    with tx.reader.using(Ctx()) as session:
        n = session.query(sql_model.User).filter_by(id=uid2).count()
        expect(n == 0, "a user inserted by a transaction that was rolled back is there: the "
               "statements were committed one by one (@@autocommit in the session: %r)"
               % (autocommit,))
    # A row that references no user: error 1452.
    try:
        with tx.writer.using(Ctx()) as session:
            session.add(sql_model.LocalUser(user_id="no-such-user", domain_id="default",
                                            name="orphan"))
    except db_exc.DBReferenceError as e:
        expect(e.key_table == "user" and e.constraint == "local_user_user_id_fkey",
               "DBReferenceError key_table=%r constraint=%r, want 'user' "
               "'local_user_user_id_fkey'" % (e.key_table, e.constraint))
    else:
        raise Failed("inserting a local_user row for no user did not fail")
    # ON DELETE CASCADE.
    with tx.writer.using(Ctx()) as session:
        n = session.query(sql_model.User).filter_by(id=uid).delete(synchronize_session=False)
        expect(n == 1, "deleting the user matched %r rows" % (n,))
    with tx.reader.using(Ctx()) as session:
        n = session.query(sql_model.LocalUser).filter_by(user_id=uid).count()
        expect(n == 0, "%d local_user rows left after deleting their user" % n)
    tx.writer.get_engine().dispose()


def configure(nova_conf):
    """Nova's and Keystone's options live in one oslo.config object: parse
    Nova's configuration as nova-manage does (which also configures Nova's
    DB API), then add the Keystone options its user model reads (their
    defaults will do)."""
    from nova import config
    from keystone.conf import security_compliance

    config.parse_args(["oslo_check", "--config-file", nova_conf], init_rpc=False)
    security_compliance.register_opts(config.CONF)


def cleanup(base):
    """Rows a previous run of this check left (so that it can run again)."""
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=int(base.rsplit(":", 1)[1]),
                           user="root", password="", autocommit=True)
    try:
        cur = conn.cursor()
        for sql in (
            "DELETE FROM nova.instance_extra WHERE instance_uuid LIKE '0510c4ec-%'",
            "DELETE FROM nova.instance_info_caches WHERE instance_uuid LIKE '0510c4ec-%'",
            "DELETE FROM nova.instance_id_mappings WHERE uuid LIKE '0510c4ec-%'",
            "DELETE FROM nova.security_group_instance_association "
            "WHERE instance_uuid LIKE '0510c4ec-%'",
            "DELETE FROM nova.instances WHERE uuid LIKE '0510c4ec-%'",
            "DELETE FROM keystone.user WHERE id LIKE '0510c4ec%'",
        ):
            try:
                cur.execute(sql)
            except pymysql.err.ProgrammingError as e:
                if e.args[0] != 1146:  # no such table: the check says so later
                    raise
    finally:
        conn.close()


def check_concurrent_update(other_url=None):
    from nova import context as nova_context
    from nova import exception as nova_exc
    from nova.db.main import api as db

    def ctx():
        return nova_context.RequestContext("oslo-check", "oslo-check")

    # Session B's context: through another server, when given, as a
    # context targeted at a cell reaches that cell's database.
    other_cm = db.create_context_manager(other_url) if other_url else None

    def ctx_b():
        c = ctx()
        if other_cm is not None:
            c.db_connection = other_cm
        return c

    uuid = "0510c4ec-0000-4000-8000-0000000000cc"
    db.instance_create(ctx(), {
        "uuid": uuid, "project_id": "oslo-check", "user_id": "oslo-check",
        "display_name": "start", "vm_state": "active", "task_state": None,
    })

    # Count attempts below instance_update's retry decorator.
    attempts = []
    inner = db._instance_update

    def counted(context, instance_uuid, values, expected, original=None):
        name = threading.current_thread().name
        try:
            r = inner(context, instance_uuid, values, expected, original=original)
            attempts.append((name, None))
            return r
        except Exception as e:
            attempts.append((name, short(e)))
            raise

    db._instance_update = counted

    a_updated = threading.Event()
    times = {}
    errors = {}

    def session_a():
        try:
            c = ctx()
            with db.context_manager.writer.using(c):
                db.instance_update(c, uuid, {"task_state": "check-a", "display_name": "A"})
                a_updated.set()
                time.sleep(HOLD)
                times["a_commit"] = time.monotonic()
            times["a_done"] = time.monotonic()
        except Exception as e:
            errors["A"] = short(e)
        finally:
            a_updated.set()

    def session_b():
        try:
            if not a_updated.wait(30):
                errors["B"] = "session A never updated"
                return
            times["b_start"] = time.monotonic()
            db.instance_update(ctx_b(), uuid, {
                "display_name": "B", "vm_state": "stopped",
                "expected_task_state": "check-a"})
            times["b_done"] = time.monotonic()
        except Exception as e:
            errors["B"] = short(e)

    ta = threading.Thread(target=session_a, name="A")
    tb = threading.Thread(target=session_b, name="B")
    ta.start()
    tb.start()
    ta.join(120)
    tb.join(120)
    db._instance_update = inner
    expect(not ta.is_alive() and not tb.is_alive(), "the two sessions did not finish in 120 s")
    expect(not errors, "concurrent instance_update failed: %s (attempts: %s)" % (errors, attempts))
    retried = [a for a in attempts if a[1] is not None]
    expect(not retried and len(attempts) == 2,
           "instance_update needed a retry: attempts %s" % (attempts,))
    waited = times["b_done"] - times["b_start"]
    expect(waited >= HOLD * 0.75,
           "session B finished %.2fs after it started while A held the row for %.1fs: "
           "it did not wait for A" % (waited, HOLD))
    expect(times["b_done"] >= times["a_commit"],
           "session B finished before A committed")
    got = db.instance_get_by_uuid(ctx(), uuid)
    row = (got["display_name"], got["vm_state"], got["task_state"])
    expect(row == ("B", "stopped", "check-a"),
           "instance after both updates %r, want ('B', 'stopped', 'check-a')" % (row,))
    # Session B still fails, at once, when its expectation is not met.
    try:
        db.instance_update(ctx(), uuid, {"display_name": "C", "expected_task_state": "other"})
    except nova_exc.UnexpectedTaskStateError:
        pass
    else:
        raise Failed("instance_update with a wrong expected_task_state succeeded")
    return waited


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--nova-conf", required=True)
    ap.add_argument("--other-port", type=int)
    args = ap.parse_args(argv)
    base = "mysql+pymysql://root@127.0.0.1:%d" % args.port
    other = None
    if args.other_port:
        other = "mysql+pymysql://root@127.0.0.1:%d/nova" % args.other_port
    try:
        configure(args.nova_conf)
        cleanup(base)
    except Exception as e:
        traceback.print_exc()
        print("CHECK FAILED: set-up: %s" % short(e))
        return 1

    checks = [
        ("enginefacade: keystone user",
         lambda: check_enginefacade_keystone(base + "/keystone", args.server)),
        ("enginefacade: nova instances", lambda: check_enginefacade_nova(base + "/nova")),
        ("nova.db.main.api: concurrent instance_update",
         lambda: "B waited %.2fs%s" % (check_concurrent_update(other),
                                       " through port %d" % args.other_port if other else "")),
    ]
    failed = []
    for name, fn in checks:
        t0 = time.monotonic()
        try:
            note = fn()
            print("ok: %s (%.1fs%s)" % (name, time.monotonic() - t0,
                                        ", " + note if isinstance(note, str) else ""))
        except Failed as e:
            failed.append("%s: %s" % (name, e))
        except Exception as e:
            traceback.print_exc()
            failed.append("%s: %s" % (name, short(e)))
        else:
            continue
        print("CHECK FAILED: %s" % failed[-1])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
