"""Dump MySQL schemas in a normalised form and compare two dumps.

    schema.py dump --port PORT --out FILE DB [DB ...]
    schema.py diff [--labels A,B] [--max N] [--raw] FILE_A FILE_B
    schema.py selftest

`dump` reads each database over the MySQL protocol (root, no password, on
127.0.0.1) with the statements SQLAlchemy itself relies on: SHOW FULL TABLES
and SHOW CREATE TABLE, whose output it parses into tables, columns (type,
character set and collation, nullability, default, ON UPDATE, auto
increment, comment), indexes, foreign keys, check constraints and table
options. It also records SHOW TRIGGERS, the rows of the migration version
tables (alembic_version, migrate_version) and the row count of every table.
The raw SHOW CREATE TABLE text is kept in the dump for reading, not compared.

Spellings that differ between MariaDB and MySQL 8 for the same definition
are normalised: integer display widths (`int(11)` vs `int`, but
`tinyint(1)` is kept, as both print it), `current_timestamp()` vs
`CURRENT_TIMESTAMP`, quoted vs bare numeric defaults (`DEFAULT 0` vs
`DEFAULT '0'`), `DEFAULT NULL` printed or left out for a nullable column,
`utf8` vs `utf8mb3`, column character sets and collations printed only when
they differ from the table's, the server's default utf8mb4 collation
(MariaDB's `utf8mb4_general_ci`, MySQL 8's `utf8mb4_0900_ai_ci`), generated
names of unnamed CHECK constraints (`CONSTRAINT_1` vs `t_chk_1`) and the
spacing and back-quoting of CHECK expressions, `ON DELETE RESTRICT` / `NO
ACTION` (the default) printed or not, `USING BTREE`, and the order in which
indexes and constraints are listed. Anything else is compared as printed.

`diff` prints every difference (or the first N) and exits 1 if there is one.
With --raw it also compares the SHOW CREATE TABLE texts as printed, less
their AUTO_INCREMENT=N option: for two nodes of one fogdb cluster, which
must print the same definitions, though each site hands out its own
AUTO_INCREMENT values for local tables (docs/PLACEMENT.md).
`selftest` checks the normalisation on one table as MariaDB and MySQL 8
print it, and that real changes to it are reported.
Only Debian's python3-pymysql is needed.
"""

import argparse
import json
import re
import sys

# ---------------------------------------------------------------- parsing


def split_top(text, sep=None):
    """Split text at sep (whitespace when None) outside quotes and brackets."""
    out, cur, depth, quote, i = [], [], 0, None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                if i + 1 < len(text) and text[i + 1] == quote:
                    cur.append(text[i + 1])
                    i += 2
                    continue
                quote = None
            i += 1
            continue
        if ch in "'\"`":
            quote = ch
            cur.append(ch)
        elif ch == "(":
            depth += 1
            cur.append(ch)
        elif ch == ")":
            depth -= 1
            cur.append(ch)
        elif depth == 0 and (ch.isspace() if sep is None else ch == sep):
            if sep is not None or cur:
                out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    if cur or sep is not None:
        out.append("".join(cur))
    return [t.strip() if sep is not None else t for t in out]


def unquote_ident(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == "`" and s[-1] == "`":
        return s[1:-1].replace("``", "`")
    return s


def unquote_string(s):
    """'abc' -> abc, with SQL doubling and backslash escapes undone."""
    q = s[0]
    body = s[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(nxt, nxt))
            i += 2
            continue
        if ch == q and i + 1 < len(body) and body[i + 1] == q:
            out.append(q)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def is_quoted(s):
    return len(s) >= 2 and s[0] in "'\"" and s[-1] == s[0]


INT_TYPES = ("tinyint", "smallint", "mediumint", "int", "integer", "bigint")
NUM_TYPES = INT_TYPES + ("decimal", "numeric", "float", "double", "real", "bit")
STRING_TYPES = (
    "char", "varchar", "tinytext", "text", "mediumtext", "longtext",
    "enum", "set",
)

# The collation each server uses for a character set when none is named.
# utf8mb4's differs between MariaDB and MySQL 8 (both case-insensitive).
DEFAULT_COLLATIONS = {
    "utf8mb3": ("utf8mb3_general_ci",),
    "utf8mb4": ("utf8mb4_general_ci", "utf8mb4_0900_ai_ci"),
    "latin1": ("latin1_swedish_ci",),
    "ascii": ("ascii_general_ci",),
    "binary": ("binary",),
}


def norm_charset(cs):
    cs = cs.lower()
    return "utf8mb3" if cs == "utf8" else cs


def norm_collation(coll):
    coll = coll.lower()
    if coll.startswith("utf8_"):
        coll = "utf8mb3_" + coll[5:]
    return coll


def charset_of_collation(coll):
    if coll == "binary":
        return "binary"
    return coll.split("_", 1)[0]


def collation_token(cs, coll):
    """A comparable spelling of a (charset, collation) pair."""
    cs = norm_charset(cs) if cs else None
    coll = norm_collation(coll) if coll else None
    if coll and not cs:
        cs = charset_of_collation(coll)
    if not coll or coll in DEFAULT_COLLATIONS.get(cs, ()):
        return cs + "/default"
    return cs + "/" + coll


def base_type(t):
    return t.split("(", 1)[0].split(" ", 1)[0]


def norm_type(raw):
    m = re.match(r"^([A-Za-z]+)(\(.*\))?((?:\s+(?:unsigned|signed|zerofill))*)\s*$",
                 raw, re.S | re.I)
    if not m:
        return raw
    name = m.group(1).lower()
    args = m.group(2) or ""
    mods = " ".join(x.lower() for x in m.group(3).split() if x.lower() != "signed")
    if name == "integer":
        name = "int"
    if name in ("bool", "boolean"):
        name, args = "tinyint", "(1)"
    if name in INT_TYPES and not (name == "tinyint" and args == "(1)"):
        args = ""
    if name in ("enum", "set"):
        args = "(" + ",".join(split_top(args[1:-1], ",")) + ")"
    return (name + args + (" " + mods if mods else "")).strip()


def norm_number(s):
    s = s.strip()
    if re.fullmatch(r"[+-]?\d+", s):
        return str(int(s))
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        return s.lstrip("+")
    return s


def norm_expr(e):
    """Spacing, case and back-quotes of an expression do not matter."""
    e = e.strip()
    while e.startswith("(") and e.endswith(")") and balanced(e[1:-1]):
        e = e[1:-1].strip()
    out, quote = [], None
    for ch in e:
        if quote:
            out.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "`" or ch.isspace():
            continue
        else:
            out.append(ch.lower())
    return "".join(out)


def balanced(s):
    depth, quote = 0, None
    for ch in s:
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


CURRENT_TS = re.compile(
    r"^(current_timestamp|now|localtime|localtimestamp)(\((\d*)\))?$", re.I)


def norm_default(raw, typ):
    if raw is None:
        return None
    r = raw.strip()
    m = CURRENT_TS.match(r)
    if m:
        prec = m.group(3)
        return "CURRENT_TIMESTAMP" + ("(%s)" % prec if prec and prec != "0" else "")
    if r.upper() == "NULL":
        return "NULL"
    b = base_type(typ)
    if is_quoted(r):
        val = unquote_string(r)
        if b in NUM_TYPES and b != "bit":
            return norm_number(val)
        return "'" + val + "'"
    if b in NUM_TYPES and b != "bit":
        return norm_number(r)
    if r.startswith("("):
        return "(" + norm_expr(r) + ")"
    return r


def parse_column(name, rest):
    toks = split_top(rest)
    col = {
        "name": name, "type": None, "charset": None, "collation": None,
        "nullable": True, "default": None, "has_default": False,
        "on_update": None, "auto_increment": False, "comment": None,
        "generated": None, "other": [],
    }
    # The type: first token, then unsigned/zerofill.
    t = toks[0]
    i = 1
    while i < len(toks) and toks[i].lower() in ("unsigned", "signed", "zerofill"):
        t += " " + toks[i]
        i += 1
    col["type"] = norm_type(t)
    while i < len(toks):
        w = toks[i].upper()
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if w == "CHARACTER" and nxt.upper() == "SET":
            col["charset"] = toks[i + 2]
            i += 3
        elif w == "CHARSET":
            col["charset"] = nxt
            i += 2
        elif w == "COLLATE":
            col["collation"] = nxt
            i += 2
        elif w == "NOT" and nxt.upper() == "NULL":
            col["nullable"] = False
            i += 2
        elif w == "NULL":
            col["nullable"] = True
            i += 1
        elif w == "DEFAULT":
            col["default"] = nxt
            col["has_default"] = True
            i += 2
        elif w == "ON" and nxt.upper() == "UPDATE":
            col["on_update"] = norm_default(toks[i + 2], "datetime")
            i += 3
        elif w == "AUTO_INCREMENT":
            col["auto_increment"] = True
            i += 1
        elif w == "COMMENT":
            col["comment"] = unquote_string(nxt)
            i += 2
        elif w == "GENERATED" and nxt.upper() == "ALWAYS" and \
                i + 3 < len(toks) and toks[i + 2].upper() == "AS":
            col["generated"] = norm_expr(toks[i + 3])
            i += 4
        elif w == "AS" and nxt.startswith("("):
            col["generated"] = norm_expr(nxt)
            i += 2
        elif w in ("VIRTUAL", "STORED", "PERSISTENT"):
            col["generated"] = (col["generated"] or "") + " " + \
                ("stored" if w != "VIRTUAL" else "virtual")
            i += 1
        elif w == "CHECK":
            col["other"].append("check " + norm_expr(nxt))
            i += 2
        else:
            col["other"].append(toks[i])
            i += 1
    return col


KEY_RE = re.compile(
    r"^(PRIMARY KEY|UNIQUE KEY|UNIQUE INDEX|UNIQUE|KEY|INDEX|FULLTEXT KEY|"
    r"FULLTEXT INDEX|SPATIAL KEY|SPATIAL INDEX)\s*(`(?:[^`]|``)*`)?\s*(\(.*\))(.*)$",
    re.S)
FK_RE = re.compile(
    r"^CONSTRAINT\s+(`(?:[^`]|``)*`)\s+FOREIGN KEY\s*(\(.*?\))\s*REFERENCES\s+"
    r"((?:`(?:[^`]|``)*`\.)?`(?:[^`]|``)*`)\s*(\(.*?\))(.*)$", re.S)
CHECK_RE = re.compile(r"^(?:CONSTRAINT\s+(`(?:[^`]|``)*`)\s+)?CHECK\s*(\(.*\))(.*)$", re.S)


def parse_key_parts(text):
    parts = []
    for p in split_top(text[1:-1], ","):
        m = re.match(r"^(`(?:[^`]|``)*`)\s*(\(\d+\))?\s*(ASC|DESC)?$", p, re.I)
        if m:
            s = unquote_ident(m.group(1)) + (m.group(2) or "")
            if (m.group(3) or "").upper() == "DESC":
                s += " desc"
            parts.append(s)
        else:
            parts.append("expr:" + norm_expr(p))
    return parts


def norm_ref_action(rest):
    acts = {}
    for m in re.finditer(r"ON (DELETE|UPDATE) (SET NULL|SET DEFAULT|NO ACTION|RESTRICT|CASCADE)",
                         rest, re.I):
        act = m.group(2).upper()
        if act not in ("RESTRICT", "NO ACTION"):
            acts[m.group(1).lower()] = act
    return acts


def parse_table_options(text):
    opts = {}
    toks = split_top(text)
    i = 0
    while i < len(toks):
        tok = toks[i]
        up = tok.upper()
        if up == "DEFAULT":
            i += 1
            continue
        if up in ("CHARACTER",) and i + 1 < len(toks) and toks[i + 1].upper().startswith("SET"):
            tok = "CHARSET" + toks[i + 1][3:]
            i += 1
        if "=" in tok:
            k, v = tok.split("=", 1)
            if v == "" and i + 1 < len(toks):
                v = toks[i + 1]
                i += 1
            opts[k.upper()] = v
        elif tok.startswith("/*"):
            opts.setdefault("OTHER", []).append(tok)
        else:
            opts.setdefault("OTHER", []).append(tok)
        i += 1
    return opts


def parse_create_table(table, ddl):
    lines = ddl.split("\n")
    if not lines or not re.match(r"^CREATE TABLE", lines[0]):
        raise ValueError("unexpected SHOW CREATE TABLE output for %s: %r" % (table, ddl[:200]))
    # The last line carries the table options: ") ENGINE=... ".
    end = len(lines) - 1
    while end > 0 and not lines[end].startswith(")"):
        end -= 1
    body = lines[1:end]
    opts = parse_table_options(" ".join(lines[end:])[1:].strip())
    t = {
        "columns": [], "indexes": {}, "foreign_keys": {}, "checks": [],
        "options": {}, "unparsed": [],
    }
    for line in body:
        line = line.strip()
        if line.endswith(","):
            line = line[:-1]
        if line.startswith("`"):
            m = re.match(r"^(`(?:[^`]|``)*`)\s+(.*)$", line, re.S)
            t["columns"].append(parse_column(unquote_ident(m.group(1)), m.group(2)))
            continue
        m = KEY_RE.match(line)
        if m:
            kind = m.group(1).upper()
            if kind.startswith("PRIMARY"):
                kind, name = "primary", "PRIMARY"
            else:
                kind = ("unique" if kind.startswith("UNIQUE") else
                        "fulltext" if kind.startswith("FULLTEXT") else
                        "spatial" if kind.startswith("SPATIAL") else "index")
                name = unquote_ident(m.group(2)) if m.group(2) else None
            rest = m.group(4)
            extra = []
            cm = re.search(r"COMMENT\s+('(?:[^']|'')*')", rest)
            if cm:
                extra.append("comment " + unquote_string(cm.group(1)))
            if re.search(r"\bINVISIBLE\b", rest) or re.search(r"\bIGNORED\b", rest):
                extra.append("invisible")
            if re.search(r"USING\s+HASH", rest, re.I):
                extra.append("using hash")
            t["indexes"][name] = {
                "kind": kind, "columns": parse_key_parts(m.group(3)), "extra": extra,
            }
            continue
        m = FK_RE.match(line)
        if m:
            ref = m.group(3)
            ref_parts = re.findall(r"`((?:[^`]|``)*)`", ref)
            t["foreign_keys"][unquote_ident(m.group(1))] = {
                "columns": parse_key_parts(m.group(2)),
                "ref_table": ref_parts[-1],
                "ref_schema": ref_parts[0] if len(ref_parts) > 1 else None,
                "ref_columns": parse_key_parts(m.group(4)),
                "actions": norm_ref_action(m.group(5)),
            }
            continue
        m = CHECK_RE.match(line)
        if m:
            name = unquote_ident(m.group(1)) if m.group(1) else None
            generated = name is None or re.fullmatch(r"CONSTRAINT_\d+", name) or \
                re.fullmatch(re.escape(table) + r"_chk_\d+", name)
            enforced = "not enforced" if re.search(r"NOT ENFORCED", m.group(3)) else ""
            t["checks"].append({
                "name": "(generated)" if generated else name,
                "expr": norm_expr(m.group(2)),
                "extra": enforced,
            })
            continue
        t["unparsed"].append(line)
    # Table options.
    tcs = opts.get("CHARSET") or opts.get("DEFAULT CHARSET")
    tcoll = opts.get("COLLATE")
    if tcoll and not tcs:
        tcs = charset_of_collation(norm_collation(tcoll))
    t["options"] = {
        "engine": (opts.get("ENGINE") or "").lower(),
        "collation": collation_token(tcs, tcoll) if tcs else None,
        "row_format": (opts.get("ROW_FORMAT") or "").lower() or None,
        "comment": unquote_string(opts["COMMENT"]) if "COMMENT" in opts else None,
        "other": opts.get("OTHER", []),
    }
    # Column character sets: explicit, else the table's.
    for c in t["columns"]:
        if base_type(c["type"]) in STRING_TYPES:
            if c["charset"] or c["collation"]:
                c["collation"] = collation_token(c["charset"], c["collation"])
            else:
                c["collation"] = t["options"]["collation"]
        else:
            c["collation"] = None
        c["charset"] = None
        # A nullable column without a DEFAULT clause defaults to NULL, as
        # one that prints DEFAULT NULL does.
        if c["has_default"]:
            c["default"] = norm_default(c["default"], c["type"])
        elif c["nullable"] and not c["auto_increment"] and not c["generated"]:
            c["default"] = "NULL"
        else:
            c["default"] = None
        del c["has_default"]
    t["checks"].sort(key=lambda c: (c["expr"], c["name"] or ""))
    return t


# ---------------------------------------------------------------- dumping

VERSION_TABLES = ("alembic_version", "migrate_version")


def query(cur, sql):
    cur.execute(sql)
    return cur.fetchall()


def dump(port, dbs, host="127.0.0.1"):
    import pymysql

    conn = pymysql.connect(host=host, port=port, user="root", password="",
                           charset="utf8mb4", autocommit=True)
    out = {}
    try:
        cur = conn.cursor()
        for db in dbs:
            d = {"tables": {}, "raw": {}, "versions": {}, "counts": {},
                 "triggers": [], "views": []}
            cur.execute("SHOW FULL TABLES FROM `%s`" % db)
            rows = cur.fetchall()
            for name, kind in sorted(rows):
                if kind.upper() == "VIEW":
                    d["views"].append(name)
                    continue
                # A statement the server rejects is recorded, and compared,
                # as its error.
                try:
                    ddl = query(cur, "SHOW CREATE TABLE `%s`.`%s`" % (db, name))[0][1]
                    d["raw"][name] = ddl
                    d["tables"][name] = parse_create_table(name, ddl)
                except pymysql.MySQLError as e:
                    d["tables"][name] = {"error": "SHOW CREATE TABLE: %s" % (e,)}
                try:
                    d["counts"][name] = query(
                        cur, "SELECT COUNT(*) FROM `%s`.`%s`" % (db, name))[0][0]
                except pymysql.MySQLError as e:
                    d["counts"][name] = "error: %s" % (e,)
                if name in VERSION_TABLES:
                    try:
                        d["versions"][name] = sorted(
                            [str(v) for v in r]
                            for r in query(cur, "SELECT * FROM `%s`.`%s`" % (db, name)))
                    except pymysql.MySQLError as e:
                        d["versions"][name] = "error: %s" % (e,)
            try:
                d["triggers"] = sorted(
                    "%s %s %s ON %s" % (r[0], r[4], r[1], r[2])
                    for r in query(cur, "SHOW TRIGGERS FROM `%s`" % db))
            except pymysql.MySQLError as e:
                d["triggers"] = "SHOW TRIGGERS: error: %s" % (e,)
            out[db] = d
    finally:
        conn.close()
    return out


# ---------------------------------------------------------------- comparing

COLUMN_FIELDS = ("type", "collation", "nullable", "default", "on_update",
                 "auto_increment", "comment", "generated", "other")


AUTO_INC_OPTION = re.compile(r" AUTO_INCREMENT=\d+(?= |$)", re.M)


def diff_dumps(a, b, la="A", lb="B", counts=True, raw=False):
    """Differences between two dumps, in a stable order (databases, then
    tables by name; in a table columns, indexes, foreign keys, checks)."""
    diffs = []

    def add(where, what, va, vb):
        diffs.append("%s: %s: %s has %s, %s has %s" % (
            where, what, la, fmt(va), lb, fmt(vb)))

    for db in sorted(set(a) | set(b)):
        if db not in a or db not in b:
            add(db, "database", db in a, db in b)
            continue
        da, dbb = a[db], b[db]
        ta, tb = da["tables"], dbb["tables"]
        for t in sorted(set(ta) | set(tb)):
            where = "%s.%s" % (db, t)
            if t not in ta or t not in tb:
                add(where, "table", "it" if t in ta else "no such table",
                    "it" if t in tb else "no such table")
                continue
            diffs.extend(diff_table(where, ta[t], tb[t], la, lb))
            if raw:
                ra, rb = (AUTO_INC_OPTION.sub("", d["raw"].get(t, "")) for d in (da, dbb))
                if ra != rb:
                    la_, lb_ = ra.splitlines(), rb.splitlines()
                    n = next((i for i, (x, y) in enumerate(zip(la_, lb_)) if x != y),
                             min(len(la_), len(lb_)))
                    add(where, "SHOW CREATE TABLE line %d" % (n + 1),
                        la_[n] if n < len(la_) else "no such line",
                        lb_[n] if n < len(lb_) else "no such line")
        for key in ("views", "triggers"):
            if da.get(key) != dbb.get(key):
                add(db, key, da.get(key), dbb.get(key))
        for t in sorted(set(da["versions"]) | set(dbb["versions"])):
            va, vb = da["versions"].get(t), dbb["versions"].get(t)
            if va != vb:
                add("%s.%s" % (db, t), "version rows", va, vb)
        if counts:
            for t in sorted(set(da["counts"]) & set(dbb["counts"])):
                if da["counts"][t] != dbb["counts"][t]:
                    add("%s.%s" % (db, t), "row count", da["counts"][t], dbb["counts"][t])
    return diffs


def diff_table(where, x, y, la, lb):
    diffs = []

    def add(what, va, vb):
        diffs.append("%s: %s: %s has %s, %s has %s" % (where, what, la, fmt(va), lb, fmt(vb)))

    if "error" in x or "error" in y:
        if x.get("error") != y.get("error"):
            add("definition", x.get("error", "it"), y.get("error", "it"))
        return diffs
    if x["unparsed"] or y["unparsed"]:
        if x["unparsed"] != y["unparsed"]:
            add("unparsed lines", x["unparsed"], y["unparsed"])
    cx = [c["name"] for c in x["columns"]]
    cy = [c["name"] for c in y["columns"]]
    if cx != cy:
        missing = [c for c in cx if c not in cy]
        extra = [c for c in cy if c not in cx]
        if missing or extra:
            add("columns", "%s (not in the other: %s)" % (cx, missing),
                "%s (not in the other: %s)" % (cy, extra))
        else:
            add("column order", cx, cy)
    byx = {c["name"]: c for c in x["columns"]}
    byy = {c["name"]: c for c in y["columns"]}
    for name in cx:
        if name not in byy:
            continue
        for f in COLUMN_FIELDS:
            if byx[name][f] != byy[name][f]:
                add("column %s: %s" % (name, f), byx[name][f], byy[name][f])
    for name in sorted(set(x["indexes"]) | set(y["indexes"]), key=str):
        ix, iy = x["indexes"].get(name), y["indexes"].get(name)
        if ix != iy:
            add("index %s" % name, idx_str(ix), idx_str(iy))
    for name in sorted(set(x["foreign_keys"]) | set(y["foreign_keys"])):
        fx, fy = x["foreign_keys"].get(name), y["foreign_keys"].get(name)
        if fx != fy:
            add("foreign key %s" % name, fk_str(fx), fk_str(fy))
    if x["checks"] != y["checks"]:
        add("check constraints", [chk_str(c) for c in x["checks"]],
            [chk_str(c) for c in y["checks"]])
    for k in sorted(set(x["options"]) | set(y["options"])):
        if x["options"].get(k) != y["options"].get(k):
            add("table option %s" % k, x["options"].get(k), y["options"].get(k))
    return diffs


def idx_str(i):
    if i is None:
        return "no such index"
    return "%s (%s)%s" % (i["kind"], ", ".join(i["columns"]),
                          "".join(" " + e for e in i["extra"]))


def fk_str(f):
    if f is None:
        return "no such foreign key"
    acts = "".join(" ON %s %s" % (k.upper(), v) for k, v in sorted(f["actions"].items()))
    return "(%s) REFERENCES %s%s (%s)%s" % (
        ", ".join(f["columns"]), (f["ref_schema"] + ".") if f["ref_schema"] else "",
        f["ref_table"], ", ".join(f["ref_columns"]), acts)


def chk_str(c):
    return "%s CHECK %s%s" % (c["name"], c["expr"], (" " + c["extra"]) if c["extra"] else "")


def fmt(v):
    if isinstance(v, str):
        return v if v and not v.isspace() else repr(v)
    if v is None:
        return "none"
    return json.dumps(v)


# ---------------------------------------------------------------- self-test

# One table as MariaDB 10.11 and MySQL 8.0 print it: they must compare equal.
SELFTEST_MARIADB = """CREATE TABLE `t` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `a` tinyint(1) NOT NULL DEFAULT 0,
  `b` datetime DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  `c` text DEFAULT NULL,
  `d` varchar(10) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin DEFAULT 'x''y',
  `e` bigint(20) unsigned DEFAULT NULL,
  `f` enum('ssh','x509') NOT NULL DEFAULT 'ssh',
  `g` decimal(10,2) NOT NULL DEFAULT 0.00,
  `h` varchar(8) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `u` (`d`),
  KEY `k` (`e`,`a`),
  KEY `p` (`h`(4)),
  CONSTRAINT `fk` FOREIGN KEY (`e`) REFERENCES `p` (`id`) ON DELETE CASCADE ON UPDATE RESTRICT,
  CONSTRAINT `CONSTRAINT_1` CHECK (`a` in (0,1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"""

SELFTEST_MYSQL8 = """CREATE TABLE `t` (
  `id` int NOT NULL AUTO_INCREMENT,
  `a` tinyint(1) NOT NULL DEFAULT '0',
  `b` datetime DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  `c` text,
  `d` varchar(10) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin DEFAULT 'x''y',
  `e` bigint unsigned DEFAULT NULL,
  `f` enum('ssh','x509') NOT NULL DEFAULT 'ssh',
  `g` decimal(10,2) NOT NULL DEFAULT '0.00',
  `h` varchar(8) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `u` (`d`),
  KEY `p` (`h`(4)),
  KEY `k` (`e`,`a`),
  CONSTRAINT `fk` FOREIGN KEY (`e`) REFERENCES `p` (`id`) ON DELETE CASCADE,
  CONSTRAINT `t_chk_1` CHECK ((`a` in (0,1)))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci"""

# Each change must be reported (what it changes, a word the report names).
SELFTEST_CHANGES = [
    ("DEFAULT 'ssh'", "DEFAULT '1'", "column f: default"),
    ("`h` varchar(8) NOT NULL", "`h` varchar(8)", "column h: nullable"),
    ("  KEY `k` (`e`,`a`),\n", "", "index k"),
    ("KEY `k` (`e`,`a`)", "KEY `k` (`a`,`e`)", "index k"),
    ("`d` varchar(10) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin", "`d` varchar(10)",
     "column d: collation"),
    ("bigint unsigned", "bigint", "column e: type"),
    (" ON DELETE CASCADE", "", "foreign key fk"),
    ("CHECK ((`a` in (0,1)))", "CHECK ((`a` in (0,2)))", "check constraints"),
    ("COLLATE=utf8mb4_0900_ai_ci", "COLLATE=utf8mb4_0900_bin", "table option collation"),
    ("`c` text,", "`c` mediumtext,", "column c: type"),
    ("DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP", "DEFAULT NULL", "column b: default"),
]


def selftest():
    def dump_of(ddl):
        return {"db": {"tables": {"t": parse_create_table("t", ddl)}, "versions": {},
                       "counts": {}, "triggers": [], "views": []}}

    errors = []
    base = dump_of(SELFTEST_MARIADB)
    d = diff_dumps(base, dump_of(SELFTEST_MYSQL8), "mariadb", "mysql8")
    if d:
        errors.append("MariaDB's and MySQL 8's spelling of one table differ: %s" % d)
    for old, new, want in SELFTEST_CHANGES:
        if old not in SELFTEST_MYSQL8:
            errors.append("self-test change %r does not apply" % old)
            continue
        d = diff_dumps(base, dump_of(SELFTEST_MYSQL8.replace(old, new, 1)), "a", "b")
        if not any(want in line for line in d):
            errors.append("changing %r to %r: want a difference in %r, got %s"
                          % (old, new, want, d))
    return errors


# ---------------------------------------------------------------- main


def main(argv):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--out", required=True)
    d.add_argument("dbs", nargs="+")
    c = sub.add_parser("diff")
    c.add_argument("--labels", default="A,B")
    c.add_argument("--max", type=int, default=0)
    c.add_argument("--no-counts", action="store_true")
    c.add_argument("--raw", action="store_true")
    c.add_argument("a")
    c.add_argument("b")
    sub.add_parser("selftest")
    args = ap.parse_args(argv)
    if args.cmd == "selftest":
        errors = selftest()
        for e in errors:
            print("schema.py selftest: " + e)
        return 1 if errors else 0
    if args.cmd == "dump":
        try:
            res = dump(args.port, args.dbs)
        except Exception as e:  # the statement that failed is in the message
            print("schema dump failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
            return 2
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
        return 0
    with open(args.a) as f:
        a = json.load(f)
    with open(args.b) as f:
        b = json.load(f)
    la, lb = args.labels.split(",", 1)
    diffs = diff_dumps(a, b, la, lb, counts=not args.no_counts, raw=args.raw)
    for line in diffs[:args.max] if args.max else diffs:
        print(line)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
