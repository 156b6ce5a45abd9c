"""Wait for a fogdb cluster of one node per site, through the admin API.

    sites.py formed    --timeout SECONDS ADMIN_ADDR...
    sites.py caught-up --timeout SECONDS ADMIN_ADDR...

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
and exit 1. Only the standard library is needed.
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


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=("formed", "caught-up"))
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("addrs", nargs="+")
    args = ap.parse_args(argv)
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
