"""dashboard.py DASHBOARD.json METRICS.txt - checks a Grafana dashboard
against what the responder exports.

Grafana is not in Debian, so the dashboard cannot be loaded here: this checks
what an import needs (a Prometheus data source input that every panel and
query uses, panels with unique ids, types, titles and places, queries with
refIds) and that every metric a query names is a family of METRICS.txt, a
scrape of /metrics (histograms by their _bucket, _sum and _count series).
Prints each problem and exits 1 when there is one.
"""
import json
import re
import sys

PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "bargauge"}
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# The series the dashboard is for; each must be asked for by some query.
REQUIRED = {
    "oci_registry_cache_hits_total",
    "oci_registry_cache_misses_total",
    "oci_registry_cache_served_bytes_total",
    "oci_registry_upstream_received_bytes_total",
    "oci_registry_upstream_requests_total",
    "oci_registry_upstream_request_duration_seconds",
    "oci_registry_cache_size_bytes",
    "oci_registry_cache_bound_bytes",
}


def exported_families(path):
    families = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"# TYPE (\S+) (\S+)", line)
            if m:
                families[m.group(1)] = m.group(2)
    return families


def family_of(name, families):
    if name in families:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base) == "histogram":
            return base
    return None


def check_panel(panel, ids, families, used, problems):
    where = "panel %r" % panel.get("title")
    for key in ("id", "type", "title", "gridPos", "targets"):
        if key not in panel:
            problems.append("%s: no %s" % (where, key))
    if panel.get("id") in ids:
        problems.append("%s: id %s used twice" % (where, panel.get("id")))
    ids.add(panel.get("id"))
    if panel.get("type") not in PANEL_TYPES:
        problems.append("%s: unknown type %r" % (where, panel.get("type")))
    pos = panel.get("gridPos", {})
    if not all(isinstance(pos.get(k), int) for k in ("x", "y", "w", "h")) or pos.get("x", 0) + pos.get("w", 0) > 24:
        problems.append("%s: bad gridPos %r" % (where, pos))
    if panel.get("datasource") != DS:
        problems.append("%s: data source is not ${DS_PROMETHEUS}" % where)
    for target in panel.get("targets", []):
        if target.get("datasource") != DS or not target.get("refId") or not target.get("expr"):
            problems.append("%s: a query without refId, expr or the data source" % where)
            continue
        for name in set(re.findall(r"\boci_registry_[a-zA-Z0-9_:]+", target["expr"])):
            family = family_of(name, families)
            if family is None:
                problems.append("%s: %s is not exported" % (where, name))
            used.add(family or name)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        dash = json.load(f)
    families = exported_families(sys.argv[2])
    problems = []
    for key in ("uid", "title", "panels", "schemaVersion", "__inputs"):
        if key not in dash:
            problems.append("dashboard: no %s" % key)
    inputs = [i for i in dash.get("__inputs", []) if i.get("name") == "DS_PROMETHEUS"]
    if not inputs or inputs[0].get("pluginId") != "prometheus" or inputs[0].get("type") != "datasource":
        problems.append("dashboard: no Prometheus data source input DS_PROMETHEUS")
    ids, used = set(), set()
    for panel in dash.get("panels", []):
        check_panel(panel, ids, families, used, problems)
    for name in sorted(REQUIRED - used):
        problems.append("dashboard: no query shows %s" % name)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
