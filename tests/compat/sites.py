"""Wait for a fogdb cluster of one node per site, and check where it keeps
the services' rows.

    sites.py formed    --timeout SECONDS ADMIN_ADDR...
    sites.py caught-up --timeout SECONDS ADMIN_ADDR...
    sites.py placed    --port PORT [--local DB.TABLE]... DB...
    sites.py at-home   --home PORT --away PORT SQL

ADMIN_ADDR is a node's --admin-addr (HOST:PORT), one per site, every node of
the cluster.

`formed` returns once every node holds the global group and its site's
group, all of them follow one global leader, the global group lists every
node with as many voters as there are sites (up to three: one per site),
and every site group has a leader.

`caught-up` returns once every node has applied, in every group it holds,
everything the group's leader had committed when the command started. A
node reads global tables from its own replica within the table's staleness
bound (docs/PLACEMENT.md), so work handed from one site to another starts
only when the replica of the site taking over holds what the previous site
wrote: the order a deployment's operators and message queues impose, made
certain instead of likely.

Both give up after --timeout seconds, saying what they were waiting for,
and exit 1.

`placed` reads fogdb.placements on the node at 127.0.0.1:PORT: every table
of the databases DB must hold its rows where the cluster's placement puts
it (the group it was created in: the global group for a global table, its
site's group for a `site:` one, every site's for a local one), and each
table given with --local must be local: the services' migrations created
their tables under the placement file.

`at-home` runs the query SQL (a read of rows homed at one site) on the
node of that site (--home) and on another site's node (--away): both must
answer the same rows, the first without a round trip to another site and
the second with some (SHOW SESSION STATUS LIKE 'fogdb_wan_round_trips'),
which says the rows are stored at the home site and only there.

Each prints what is wrong and exits 1. `formed` and `caught-up` need only
the standard library, the others Debian's python3-pymysql.
"""

import argparse
import json
import sys
import time
import urllib.request


def status(addr):
    with urllib.request.urlopen("http://%s/status" % addr, timeout=5) as r:
        return json.load(r)


def statuses(addrs):
    return {a: status(a) for a in addrs}


def not_formed(addrs):
    """Why the cluster is not formed yet, or None."""
    sts = statuses(addrs)
    want_voters = min(len(addrs), 3)
    if want_voters % 2 == 0:
        want_voters -= 1
    leader = None
    for a, st in sts.items():
        groups = st.get("groups") or []
        if len(groups) < 2:
            return "%s (%s) holds %d groups, want the global group and its site's" % (
                st.get("node"), a, len(groups))
        g = groups[0]
        if not g.get("leader") or (leader is not None and g["leader"] != leader):
            return "%s sees global leader %r, another node %r" % (st.get("node"), g.get("leader"), leader)
        leader = g["leader"]
        members = g.get("members") or []
        voters = sum(1 for m in members if m.get("voter"))
        if len(members) != len(addrs) or voters != want_voters:
            return "%s lists %d members (%d voters) of the global group, want %d (%d voters)" % (
                st.get("node"), len(members), voters, len(addrs), want_voters)
        if not groups[1].get("leader"):
            return "%s's site group (%s) has no leader" % (st.get("node"), groups[1].get("group"))
    return None


def commit_points(addrs):
    """Every group's commit index at its leader: {group: index}."""
    sts = statuses(addrs)
    points = {}
    for st in sts.values():
        for g in st.get("groups") or []:
            if g.get("role") == "Leader":
                points[g["group"]] = max(points.get(g["group"], 0), g["commit_index"])
    return points, sts


def behind(addrs, points):
    """Why some node has not applied up to points yet, or None."""
    sts = statuses(addrs)
    for st in sts.values():
        for g in st.get("groups") or []:
            want = points.get(g["group"])
            if want is not None and g["applied_index"] < want:
                return "%s has applied group %d up to %d, its leader had committed %d" % (
                    st.get("node"), g["group"], g["applied_index"], want)
    return None


def wait(what, cond, timeout):
    deadline = time.monotonic() + timeout
    why = "not asked yet"
    while True:
        try:
            why = cond()
        except (OSError, ValueError, KeyError) as e:
            why = "%s: %s" % (type(e).__name__, e)
        if why is None:
            return 0
        if time.monotonic() > deadline:
            print("sites.py: %s: not within %ss: %s" % (what, timeout, why), file=sys.stderr)
            return 1
        time.sleep(0.05)


def connect(port):
    import pymysql

    return pymysql.connect(host="127.0.0.1", port=port, user="root", password="",
                           charset="utf8mb4", autocommit=True)


def placed(port, dbs, local):
    conn = connect(port)
    try:
        cur = conn.cursor()
        cur.execute("SELECT site, group_id FROM fogdb.sites")
        site_group = dict(cur.fetchall())
        cur.execute("SELECT table_schema, table_name, placement, site, group_id FROM fogdb.placements")
        rows = [r for r in cur.fetchall() if r[0] in dbs]
        for db in dbs:
            cur.execute("SHOW FULL TABLES FROM `%s` WHERE Table_type = 'BASE TABLE'" % db)
            tables = {r[0].lower() for r in cur.fetchall()}
            listed = {r[1].lower() for r in rows if r[0] == db}
            if tables != listed:
                print("fogdb.placements lists %s's tables %s, SHOW TABLES %s" % (
                    db, sorted(listed - tables), sorted(tables - listed)))
                return 1
    finally:
        conn.close()
    wrong = []
    kinds = {}
    for db, table, kind, site, group in rows:
        name = "%s.%s" % (db, table)
        kinds[name] = kind
        want = {"global": 1, "local": 0}.get(kind)
        if kind.startswith("site"):
            want = site_group.get(site)
        if group != want:
            wrong.append("%s is placed %s%s but its rows are in group %s (want %s)" % (
                name, kind, " " + site if site else "", group, want))
    for name in local:
        if kinds.get(name) != "local":
            wrong.append("%s is placed %s, want local" % (name, kinds.get(name, "nowhere (no such table)")))
    for w in wrong:
        print(w)
    counts = {}
    for k in kinds.values():
        counts[k] = counts.get(k, 0) + 1
    print("%d tables: %s" % (len(kinds), ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items()))),
          file=sys.stderr)
    return 1 if wrong else 0


def read_counting(port, query):
    """The rows of query on the node at port, and the round trips to other
    sites the query's transaction made."""
    conn = connect(port)
    try:
        cur = conn.cursor()
        cur.execute(query)
        rows = sorted(cur.fetchall())
        cur.execute("SHOW SESSION STATUS LIKE 'fogdb_wan_round_trips'")
        trips = int(cur.fetchone()[1])
    finally:
        conn.close()
    return rows, trips


def at_home(home, away, query):
    rows_home, trips_home = read_counting(home, query)
    rows_away, trips_away = read_counting(away, query)
    print("%s: %d rows; %d WAN round trips at home, %d from another site" % (
        query, len(rows_home), trips_home, trips_away), file=sys.stderr)
    wrong = []
    if not rows_home:
        wrong.append("%s found no rows at their home site" % query)
    if rows_home != rows_away:
        wrong.append("%s: %r at home, %r from another site" % (query, rows_home, rows_away))
    if trips_home != 0:
        wrong.append("%s made %d WAN round trips at its rows' home site, want 0" % (query, trips_home))
    if trips_away == 0:
        wrong.append("%s made no WAN round trip from another site: the rows are not at their home only" % query)
    for w in wrong:
        print(w)
    return 1 if wrong else 0


def main(argv):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("formed", "caught-up"):
        w = sub.add_parser(name)
        w.add_argument("--timeout", type=float, default=60)
        w.add_argument("addrs", nargs="+")
    p = sub.add_parser("placed")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--local", action="append", default=[])
    p.add_argument("dbs", nargs="+")
    h = sub.add_parser("at-home")
    h.add_argument("--home", type=int, required=True)
    h.add_argument("--away", type=int, required=True)
    h.add_argument("query")
    args = ap.parse_args(argv)
    if args.command == "placed":
        return placed(args.port, args.dbs, args.local)
    if args.command == "at-home":
        return at_home(args.home, args.away, args.query)
    if args.command == "formed":
        return wait("the cluster forming", lambda: not_formed(args.addrs), args.timeout)
    points = {}

    def cond():
        # The commit points are read once, when every node answers and
        # every group has a leader.
        if not points:
            p, sts = commit_points(args.addrs)
            held = {g["group"] for st in sts.values() for g in st.get("groups") or []}
            missing = sorted(held - set(p))
            if missing:
                return "no leader known for groups %s" % missing
            points.update(p)
        return behind(args.addrs, points)

    return wait("every node catching up", cond, args.timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
