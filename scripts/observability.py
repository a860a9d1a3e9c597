#!/usr/bin/env python3
"""Checks the Grafana dashboards and Prometheus alert rules, and lists their PromQL.

    python3 scripts/observability.py check   # structure, datasources, metric names, runbook anchors
    python3 scripts/observability.py exprs   # JSON: every dashboard target and alert expression

Python 3 standard library only. The alert file is read line by line (no YAML library): every
`expr:` there is one line or a `|` block. When PyYAML happens to be installed, `check` also
parses the file with it and fails if the two readings disagree.

Files: deploy/grafana/dashboards/*.json, deploy/prometheus/alerts.yml, docs/metrics.md (the
metric catalogue), docs/operator-guide.md (runbook anchors) and
deploy/grafana/no-data-on-localnet.txt (panels that may be empty on a fresh localnet).
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARDS = "deploy/grafana/dashboards"
ALERTS = "deploy/prometheus/alerts.yml"
CATALOGUE = "docs/metrics.md"
GUIDE = "docs/operator-guide.md"
NO_DATA = "deploy/grafana/no-data-on-localnet.txt"

GROUP = "harmony-appliance"
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"timeseries", "stat", "gauge", "table"}
SEVERITIES = {"critical", "warning"}
INSTANCE_QUERY = "label_values(harmony_chain_height_blocks, instance)"
# Grafana's own variables that dashboards may use.
BUILTIN_VARS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                "__range_ms", "__from", "__to", "__dashboard", "__org", "__user"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
CHECKED_PREFIXES = ("harmony_", "process_")


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append(f"{where}: {what}")


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


# --------------------------------------------------------------------------- catalogue

def catalogue():
    """Metric name -> type, from the table rows of docs/metrics.md."""
    out = {}
    for line in read(CATALOGUE).splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.split(r"[`{]", cells[0][1:], maxsplit=1)[0]
        out[name] = cells[1] if len(cells) > 1 else ""
    return out


def strip_strings(expr):
    """PromQL with its string literals emptied (label values are not metric names)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def metric_names(expr):
    return set(re.findall(r"(?<![A-Za-z0-9_:$])((?:%s)[A-Za-z0-9_:]*)" %
                          "|".join(CHECKED_PREFIXES), strip_strings(expr)))


def unknown_metrics(expr, known):
    bad = []
    for name in sorted(metric_names(expr)):
        if name in known:
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base is not None and known.get(base) == "histogram":
            continue
        bad.append(name)
    return bad


# --------------------------------------------------------------------------- alerts

def _scalar(text):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r'\\(.)', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text[1:-1])
    return re.sub(r"\s+#.*$", "", text)


def parse_alerts(text):
    """The alert rules as dicts (alert, expr, labels, annotations, line), read line by line.

    Understands the layout alerts.yml keeps: `- alert:` items, `expr:` on one line or as a
    `|` block, and one-line `key: value` entries under `labels:` and `annotations:`.
    """
    lines = text.splitlines()
    alerts, groups = [], []
    cur, section, section_indent = None, None, 0
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip())
        body = raw.strip()
        m = re.match(r"-\s+name:\s*(.*)$", body)
        if m:
            groups.append(_scalar(m.group(1)))
            continue
        m = re.match(r"-\s+(alert|record):\s*(.*)$", body)
        if m:
            cur = {"kind": m.group(1), "alert": _scalar(m.group(2)), "expr": None,
                   "labels": {}, "annotations": {}, "line": i, "indent": indent + 2}
            alerts.append(cur)
            section = None
            continue
        if cur is None:
            continue
        if indent <= cur["indent"] - 2:
            cur, section = None, None
            continue
        if section and indent <= section_indent:
            section = None
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*):\s*(.*)$", body)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if section:
            cur[section][key] = _scalar(value)
        elif key in ("labels", "annotations") and not value:
            section, section_indent = key, indent
        elif key == "expr":
            if value.strip() in ("|", "|-", "|+", ">", ">-"):
                block = []
                while i < len(lines):
                    nxt = lines[i]
                    if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                        break
                    block.append(nxt)
                    i += 1
                while block and not block[-1].strip():
                    block.pop()
                pad = min((len(b) - len(b.lstrip()) for b in block if b.strip()), default=0)
                sep = " " if value.strip().startswith(">") else "\n"
                cur["expr"] = sep.join(b[pad:] for b in block)
            else:
                cur["expr"] = _scalar(value)
        else:
            cur[key] = _scalar(value)
    return groups, [a for a in alerts if a["kind"] == "alert"], alerts


def slug(heading):
    """GitHub's anchor for a markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def guide_anchors():
    anchors = set()
    in_code = False
    for line in read(GUIDE).splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            anchors.add(slug(m.group(1)))
        for a in re.findall(r'<a\s+(?:name|id)="([^"]+)"', line):
            anchors.add(a)
    return anchors


def check_alerts(p, known):
    text = read(ALERTS)
    groups, alerts, rules = parse_alerts(text)
    if groups != [GROUP]:
        p.add(ALERTS, f"expected one rule group named {GROUP!r}, found {groups}")
    if not alerts:
        p.add(ALERTS, "no alerts found")
    anchors = guide_anchors()
    seen = set()
    for a in alerts:
        where = f"{ALERTS}:{a['line']}: alert {a['alert']}"
        if a["alert"] in seen:
            p.add(where, "duplicate alert name")
        seen.add(a["alert"])
        if not a["expr"]:
            p.add(where, "no expr (keep it one line or a `|` block)")
        else:
            for name in unknown_metrics(a["expr"], known):
                p.add(where, f"metric {name} is not in {CATALOGUE}")
        sev = a["labels"].get("severity")
        if sev not in SEVERITIES:
            p.add(where, f"label severity is {sev!r}, not one of {sorted(SEVERITIES)}")
        for ann in ("summary", "description", "runbook"):
            if not a["annotations"].get(ann):
                p.add(where, f"no {ann} annotation")
        rb = a["annotations"].get("runbook", "")
        m = re.fullmatch(re.escape(GUIDE) + r"#([\w-]+)", rb)
        if rb and not m:
            p.add(where, f"runbook {rb!r} is not {GUIDE}#<anchor>")
        elif m and m.group(1) not in anchors:
            p.add(where, f"runbook anchor #{m.group(1)} has no heading in {GUIDE}")
    try:
        import yaml  # optional: cross-check the line-by-line reading
    except ImportError:
        return alerts
    doc = yaml.safe_load(text)
    ref = [r for g in doc.get("groups", []) for r in g.get("rules", [])]
    if len(ref) != len(rules):
        p.add(ALERTS, f"PyYAML reads {len(ref)} rules, the line reader {len(rules)}: keep the file's layout simple")
    for r, mine in zip(ref, rules):
        name = r.get("alert") or r.get("record")
        if (name != mine["alert"] or str(r.get("expr", "")).strip() != (mine["expr"] or "").strip()
                or (r.get("labels") or {}) != mine["labels"]
                or (r.get("annotations") or {}) != mine["annotations"]):
            p.add(f"{ALERTS}:{mine['line']}: {name}",
                  "PyYAML and the line reader disagree: keep expr one line or a `|` block and "
                  "labels/annotations one-line `key: value`")
    return alerts


# --------------------------------------------------------------------------- dashboards

def dashboards():
    d = os.path.join(ROOT, DASHBOARDS)
    return [os.path.join(DASHBOARDS, f) for f in sorted(os.listdir(d)) if f.endswith(".json")]


def load_dashboard(p, rel):
    try:
        return json.loads(read(rel))
    except (OSError, ValueError) as e:
        p.add(rel, f"not valid JSON: {e}")
        return None


def walk_datasources(node, path, out):
    """Every `datasource` value in the JSON tree, with its path."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource":
                out.append((f"{path}.{k}", v))
            walk_datasources(v, f"{path}.{k}", out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_datasources(v, f"{path}[{i}]", out)


def variables_used(expr):
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expr))


def check_dashboard(p, rel, d, known):
    def bad(what, panel=None):
        if panel is None:
            p.add(rel, what)
        else:
            p.add(f"{rel}: panel {panel.get('id')!r} {panel.get('title')!r}", what)

    if not isinstance(d, dict):
        bad("the top level is not an object")
        return
    for key, kind in (("uid", str), ("title", str), ("schemaVersion", int), ("tags", list)):
        v = d.get(key)
        if not isinstance(v, kind) or isinstance(v, bool) or not v:
            bad(f"missing or empty {key!r} ({kind.__name__})")
    if isinstance(d.get("uid"), str) and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"]):
        bad(f"uid {d['uid']!r}: letters, digits, '-' and '_', at most 40")
    if "__inputs" in d:
        bad("has __inputs (an export for sharing): datasources come from the `datasource` variable")

    tl = (d.get("templating") or {}).get("list")
    if not isinstance(tl, list):
        bad("no templating.list")
        tl = []
    names = {v.get("name"): v for v in tl if isinstance(v, dict)}
    ds = names.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        bad('templating: needs a variable "datasource" of type "datasource" with query "prometheus"')
    inst = names.get("instance")
    if (not inst or inst.get("type") != "query" or INSTANCE_QUERY not in json.dumps(inst.get("query"))
            or inst.get("multi") is not True or inst.get("includeAll") is not True):
        bad(f'templating: needs a query variable "instance" ({INSTANCE_QUERY}, multi, includeAll)')
    for v in tl:
        if isinstance(v, dict) and v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            for name in unknown_metrics(q, known):
                bad(f"variable {v.get('name')!r}: metric {name} is not in {CATALOGUE}")

    refs = []
    walk_datasources(d, "$", refs)
    for path, v in refs:
        if v != DS_REF:
            bad(f"{path} is {json.dumps(v)}: every datasource must be {json.dumps(DS_REF)} "
                "(no datasource names)")

    panels = d.get("panels")
    if not isinstance(panels, list) or not panels:
        bad("no panels")
        return
    ids, rects = set(), []
    for panel in panels:
        if not isinstance(panel, dict):
            bad("a panel is not an object")
            continue
        pid = panel.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool):
            bad("id is not an integer", panel)
        elif pid in ids:
            bad("duplicate panel id", panel)
        ids.add(pid)
        if panel.get("type") not in PANEL_TYPES:
            bad(f"type {panel.get('type')!r} is not one of {sorted(PANEL_TYPES)}", panel)
        if not isinstance(panel.get("title"), str) or not panel["title"].strip():
            bad("no title", panel)
        g = panel.get("gridPos")
        if not isinstance(g, dict) or not all(
                isinstance(g.get(k), int) and not isinstance(g.get(k), bool) for k in ("h", "w", "x", "y")):
            bad("gridPos needs integer h, w, x, y", panel)
        elif g["w"] <= 0 or g["h"] <= 0 or g["x"] < 0 or g["y"] < 0 or g["x"] + g["w"] > 24:
            bad(f"gridPos {g} outside the 24-column grid", panel)
        else:
            for other, (x, y, w, h) in rects:
                if g["x"] < x + w and x < g["x"] + g["w"] and g["y"] < y + h and y < g["y"] + g["h"]:
                    bad(f"gridPos overlaps panel {other!r}", panel)
            rects.append((pid, (g["x"], g["y"], g["w"], g["h"])))
        if panel.get("datasource") != DS_REF:
            bad(f"datasource must be {json.dumps(DS_REF)}", panel)
        targets = panel.get("targets")
        if not isinstance(targets, list) or not targets:
            bad("no targets", panel)
            continue
        refids = set()
        for t in targets:
            if not isinstance(t, dict):
                bad("a target is not an object", panel)
                continue
            rid = t.get("refId")
            if not isinstance(rid, str) or not rid:
                bad("a target has no refId", panel)
            elif rid in refids:
                bad(f"duplicate refId {rid!r}", panel)
            refids.add(rid)
            if t.get("datasource") != DS_REF:
                bad(f"target {rid!r}: datasource must be {json.dumps(DS_REF)}", panel)
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                bad(f"target {rid!r}: no expr", panel)
                continue
            for name in unknown_metrics(expr, known):
                bad(f"target {rid!r}: metric {name} is not in {CATALOGUE}", panel)
            for var in sorted(variables_used(expr) - BUILTIN_VARS - set(names)):
                bad(f"target {rid!r}: ${var} is not a variable of this dashboard", panel)
            if re.search(r"\[\s*\d+[smhdwy]\s*(?::[^\]]*)?\]", expr):
                bad(f"target {rid!r}: a fixed range window; use [$__rate_interval]", panel)
            if "instance" not in expr:
                bad(f"target {rid!r}: no instance selector (instance=~\"$instance\")", panel)


def no_data_titles(p):
    titles = {}
    try:
        text = read(NO_DATA)
    except OSError:
        return titles
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        title, sep, reason = line.partition(" # ")
        if not sep or not reason.strip() or not title.strip():
            p.add(f"{NO_DATA}:{n}", "expected `<panel title> # <reason>`")
            continue
        titles[title.strip()] = n
    return titles


def check():
    p = Problems()
    known = catalogue()
    if not known:
        p.add(CATALOGUE, "no metrics found in the catalogue table")
    check_alerts(p, known)
    uids, titles = {}, {}
    files = dashboards()
    if not files:
        p.add(DASHBOARDS, "no dashboards")
    for rel in files:
        d = load_dashboard(p, rel)
        if d is None:
            continue
        check_dashboard(p, rel, d, known)
        if not isinstance(d, dict):
            continue
        uid = d.get("uid")
        if uid in uids:
            p.add(rel, f"uid {uid!r} is also the uid of {uids[uid]}")
        uids[uid] = rel
        for panel in d.get("panels") or []:
            t = panel.get("title") if isinstance(panel, dict) else None
            if isinstance(t, str):
                if t in titles:
                    p.add(f"{rel}: panel {t!r}", f"title also used in {titles[t]} "
                          f"(titles are unique: {NO_DATA} names panels by title)")
                titles[t] = rel
    for t, n in no_data_titles(p).items():
        if t not in titles:
            p.add(f"{NO_DATA}:{n}", f"no panel is titled {t!r}")
    if p.items:
        for item in p.items:
            print(f"observability check: {item}", file=sys.stderr)
        print(f"observability check: {len(p.items)} problem(s)", file=sys.stderr)
        return 1
    print(f"observability check: {len(files)} dashboards, {len(titles)} panels and the alert rules are fine")
    return 0


# --------------------------------------------------------------------------- exprs

def substitute(expr):
    """Grafana variables replaced so that Prometheus can run the query as it is."""
    expr = expr.replace("$__rate_interval", "1m").replace("${__rate_interval}", "1m")
    expr = expr.replace("$__interval", "15s").replace("${__interval}", "15s")
    expr = expr.replace("$__range", "5m").replace("${__range}", "5m")
    expr = re.sub(r'instance\s*=~\s*"\$\{?instance\}?"', 'instance=~".*"', expr)
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*", ".*", expr)


def exprs():
    p = Problems()
    quiet = no_data_titles(p)
    out = []
    for rel in dashboards():
        d = load_dashboard(p, rel)
        if not isinstance(d, dict):
            continue
        for panel in d.get("panels") or []:
            title = panel.get("title", "")
            for t in panel.get("targets") or []:
                expr = t.get("expr")
                if not expr:
                    continue
                out.append({"source": f"{rel}: {title}", "expr": substitute(expr),
                            "expect_data": title not in quiet and expr not in quiet})
    _, alerts, _ = parse_alerts(read(ALERTS))
    for a in alerts:
        if a["expr"]:
            out.append({"source": f"{ALERTS}: {a['alert']}", "expr": a["expr"].strip(),
                        "expect_data": False})
    if p.items:
        for item in p.items:
            print(f"observability exprs: {item}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


def main(argv):
    if len(argv) != 2 or argv[1] not in ("check", "exprs"):
        print(__doc__.strip().split("\n\n")[0], file=sys.stderr)
        print("usage: observability.py check | exprs", file=sys.stderr)
        return 2
    return check() if argv[1] == "check" else exprs()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
