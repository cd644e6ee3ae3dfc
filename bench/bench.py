#!/usr/bin/python3
"""Helpers of bench/run: parsing, memory sampling, the report.

  bench.py wrk FILE                 wrk --latency output -> JSON metrics
  bench.py log-offset FILE          current size of a log file
  bench.py upstream LOG OFFSET DIGEST
                                    upstream access log lines after OFFSET ->
                                    JSON {bytes, blob_bytes, blob_gets, requests}
                                    (blob_*: GETs of the blob DIGEST)
  bench.py rss ROLE=MARKER...       resident memory now, JSON {role: {rss, pss}}
  bench.py cpu ROLE=MARKER...       CPU seconds (user + system) used so far,
                                    JSON {group or role: seconds}: a role's
                                    processes and their threads, and their
                                    sum per group
  bench.py sample OUT SECS ROLE=MARKER...
                                    sample every SECS until SIGTERM; keep in OUT
                                    the peak of each role and of each group
  bench.py report RESULTS PEAKS CONFIG OUT
                                    medians, ratios and targets: a table on
                                    stdout and the JSON file OUT

A ROLE is GROUP:PART (oci-registry:responder); its processes are those whose
command line (arguments joined by spaces) contains MARKER, with all their
descendants (nginx workers). Memory is in bytes.
"""

import json
import os
import re
import signal
import statistics
import sys
import time

SYSTEMS = ["oci-registry", "docker-registry", "limit"]
WORKLOADS = [
    "manifest_tag",
    "manifest_digest",
    "blob_hit_1",
    "blob_hit_4",
    "cold_pull",
    "cold_concurrent",
    "hit_concurrent",
    "memory",
    "push_image",
    "push_mono",
    "push_chunked",
    "pull_pushed",
]
# The replicas workload compares replicas on one S3 bucket with one alone.
REPLICA_SYSTEMS = ["replicas-3", "replicas-1"]
SYSTEMS_OF = {"replicas": REPLICA_SYSTEMS}
MIB = 1 << 20


# --- wrk ---------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def wrk(path):
    text = open(path).read()
    out = {"rps": None, "p50_ms": None, "p99_ms": None, "requests": 0, "errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, text, re.M)
        if m:
            out[key] = ms(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors"] += sum(int(g) for g in m.groups())
    if out["rps"] is None or out["p99_ms"] is None:
        out["errors"] += 1
    print(json.dumps(out))


# --- the upstream's access log -------------------------------------------------

ACCESS = re.compile(r'"(GET|HEAD) (\S+) HTTP/[\d.]+" (\d{3}) (\d+|-)')


def upstream(path, offset, digest):
    with open(path, "rb") as f:
        f.seek(int(offset))
        text = f.read().decode("utf-8", "replace")
    out = {"bytes": 0, "blob_bytes": 0, "blob_gets": 0, "requests": 0}
    for m in ACCESS.finditer(text):
        method, target, _status, size = m.groups()
        size = 0 if size == "-" else int(size)
        out["requests"] += 1
        if method != "GET":
            continue
        out["bytes"] += size
        if target.endswith("/blobs/" + digest):
            out["blob_gets"] += 1
            out["blob_bytes"] += size
    print(json.dumps(out))


# --- memory --------------------------------------------------------------------


def parse_roles(args):
    roles = []
    for arg in args:
        role, _, marker = arg.partition("=")
        roles.append((role, marker))
    return roles


def processes():
    procs = {}
    me = os.getpid()
    # This script's command lines name every marker: never count them.
    myself = os.path.abspath(__file__)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] in ("Z", "X") or myself in cmd:
            continue
        procs[pid] = (int(fields[1]), cmd)
    return procs


def members_of(procs, marker):
    """The processes whose command line contains marker, and their descendants."""
    members = {pid for pid, (_, cmd) in procs.items() if marker in cmd}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in procs.items() if ppid in members} - members
        members |= more
        grew = bool(more)
    return members


def memory_of(pid):
    rss = pss = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


def measure(roles):
    procs = processes()
    out = {}
    for role, marker in roles:
        members = members_of(procs, marker)
        rss = pss = 0
        for pid in members:
            r, p = memory_of(pid)
            rss += r
            pss += p
        out[role] = {"rss": rss, "pss": pss, "processes": len(members)}
    return out


def cpu(args):
    tick = os.sysconf("SC_CLK_TCK")
    procs = processes()
    out = {}
    for role, marker in parse_roles(args):
        members = members_of(procs, marker)
        used = 0
        for pid in members:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                used += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        group = role.split(":")[0]
        out[role] = used / tick
        out[group] = out.get(group, 0) + used / tick
    print(json.dumps(out))


def rss(args):
    print(json.dumps(measure(parse_roles(args))))


def sample(out_path, secs, args):
    roles = parse_roles(args)
    peaks = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    def keep(key, rss_, pss_):
        p = peaks.setdefault(key, {"rss": 0, "pss": 0})
        changed = rss_ > p["rss"] or pss_ > p["pss"]
        p["rss"], p["pss"] = max(p["rss"], rss_), max(p["pss"], pss_)
        return changed

    def write():
        tmp = out_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(peaks, f)
        os.replace(tmp, out_path)

    write()
    while not stop:
        now = measure(roles)
        changed = False
        groups = {}
        for role, m in now.items():
            changed |= keep(role, m["rss"], m["pss"])
            g = groups.setdefault(role.split(":")[0], [0, 0])
            g[0] += m["rss"]
            g[1] += m["pss"]
        for group, (r, p) in groups.items():
            changed |= keep(group, r, p)
        if changed:
            write()
        time.sleep(float(secs))
    write()


# --- the report ----------------------------------------------------------------


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


ROWS = [
    # workload, metric key, label, unit label, scale, higher is better
    ("manifest_tag", "rps", "manifest hit, by tag", "req/s", 1, True),
    ("manifest_tag", "p50_ms", "", "p50 ms", 1, False),
    ("manifest_tag", "p99_ms", "", "p99 ms", 1, False),
    ("manifest_digest", "rps", "manifest hit, by digest", "req/s", 1, True),
    ("manifest_digest", "p50_ms", "", "p50 ms", 1, False),
    ("manifest_digest", "p99_ms", "", "p99 ms", 1, False),
    ("blob_hit_1", "mbps", "blob hit, 1 client", "MB/s", 1, True),
    ("blob_hit_4", "mbps", "blob hit, 4 clients", "MB/s", 1, True),
    ("cold_pull", "seconds", "cold pull", "s", 1, False),
    ("cold_pull", "upstream_bytes", "", "upstream MiB", 1 / MIB, False),
    ("cold_pull", "cpu_s", "", "CPU s (limit: the upstream)", 1, False),
    ("cold_pull", "cpu_responder_s", "", "CPU s, the responder's", 1, False),
    ("cold_pull", "cpu_upstream_s", "", "CPU s, the upstream's", 1, False),
    ("cold_pull", "cpu_client_s", "", "CPU s, skopeo's", 1, False),
    ("cold_pull", "load", "", "load average", 1, False),
    ("cold_concurrent", "seconds", "cold concurrent", "wall s", 1, False),
    ("cold_concurrent", "cpu_s", "", "CPU s (limit: the upstream)", 1, False),
    ("cold_concurrent", "cpu_responder_s", "", "CPU s, the responder's", 1, False),
    ("cold_concurrent", "upstream_blob_bytes", "", "upstream MiB", 1 / MIB, False),
    ("cold_concurrent", "upstream_blob_gets", "", "upstream GETs", 1, False),
    ("cold_concurrent", "ttfb_first_ms", "", "first byte, first client ms", 1, False),
    ("cold_concurrent", "ttfb_median_ms", "", "first byte, median client ms", 1, False),
    ("cold_concurrent", "ttfb_last_ms", "", "first byte, last client ms", 1, False),
    ("cold_concurrent", "load", "", "load average", 1, False),
    ("hit_concurrent", "seconds", "hit concurrent", "wall s", 1, False),
    ("hit_concurrent", "cpu_s", "", "CPU s", 1, False),
    ("hit_concurrent", "cpu_responder_s", "", "CPU s, the responder's", 1, False),
    ("hit_concurrent", "ttfb_last_ms", "", "first byte, last client ms", 1, False),
    ("hit_concurrent", "load", "", "load average", 1, False),
    ("memory", "idle_rss", "memory, all processes", "idle RSS MiB", 1 / MIB, False),
    ("memory", "loaded_idle_rss", "", "idle after load MiB", 1 / MIB, False),
    ("memory", "peak_rss", "", "peak RSS MiB", 1 / MIB, False),
    # RSS counts a shared page once in every process that maps it (nginx's
    # processes share most of theirs); PSS divides it among them, so a sum
    # of PSS is what the processes hold together.
    ("memory", "idle_pss", "", "idle PSS MiB", 1 / MIB, False),
    ("memory", "peak_pss", "", "peak PSS MiB", 1 / MIB, False),
    ("memory", "idle_responder_rss", "memory, responder", "idle RSS MiB", 1 / MIB, False),
    ("memory", "loaded_idle_responder_rss", "", "idle after load MiB", 1 / MIB, False),
    ("memory", "peak_responder_rss", "", "peak RSS MiB", 1 / MIB, False),
    ("push_image", "seconds", "push, image (skopeo)", "s", 1, False),
    ("push_image", "load", "", "load average", 1, False),
]
for w, label in (("push_mono", "push, blob in one PUT"), ("push_chunked", "push, blob in PATCHes")):
    ROWS += [
        (w, "mbps", label, "MB/s", 1, True),
        (w, "responder_hwm", "", "responder peak RSS MiB", 1 / MIB, False),
        (w, "load", "", "load average", 1, False),
    ]
ROWS += [
    ("pull_pushed", "mbps", "pull of the pushed blob", "MB/s", 1, True),
    ("pull_pushed", "load", "", "load average", 1, False),
]
# Replicas: metric key, unit label (rows of their own table).
REPLICA_ROWS = [
    ("seconds", "wall s"),
    ("cpu_s", "CPU s, responders and nginx"),
    ("upstream_blob_gets", "upstream GETs"),
    ("upstream_blob_bytes", "upstream MiB"),
    ("ttfb_first_ms", "first byte, first client ms"),
    ("ttfb_median_ms", "first byte, median client ms"),
    ("ttfb_last_ms", "first byte, last client ms"),
    ("sha256_ok", "clients with the right sha256"),
    ("errors", "errors"),
    ("load", "load average"),
]


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 100:
        return "%.1f" % v
    return "%.2f" % v


def render(lines):
    """Lines of cells (the first is the head) as text columns: the first two
    left-aligned, the others right-aligned, a rule under the head."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    table = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [c.rjust(widths[i + 2]) for i, c in enumerate(line[2:])]
        table.append("  ".join(cells).rstrip())
        if n == 0:
            table.append("  ".join("-" * wd for wd in widths))
    return table


def replica_table(workloads, config):
    """Replicas on one S3 bucket against one responder alone on it, and
    against cold_concurrent's (one responder, filesystem) when it ran."""
    n = config.get("replicas", 3)
    rep = workloads["replicas"]

    def med(s, k):
        return rep[s]["median"].get(k)

    head = ("replicas, %d clients, one S3 bucket" % config.get("cold_clients", 16), "metric",
            "%d replicas" % n, "1 replica", "%d/1" % n, "1, filesystem")
    lines = [head]
    for key, unit in REPLICA_ROWS:
        scale = 1 / MIB if key == "upstream_blob_bytes" else 1
        a, b = med("replicas-3", key), med("replicas-1", key)
        fs = workloads["cold_concurrent"]["oci-registry"]["median"].get(key)
        vals = [None if v is None else v * scale for v in (a, b, fs)]
        lines.append(("", unit, fmt(vals[0]), fmt(vals[1]), fmt(ratio(vals[0], vals[1])), fmt(vals[2])))
    return render(lines)


def report(results_path, peaks_path, config_path, out_path):
    config = json.load(open(config_path))
    peaks = json.load(open(peaks_path)) if os.path.exists(peaks_path) else {}
    runs = {}
    for line in open(results_path):
        if line.strip():
            r = json.loads(line)
            runs.setdefault(r["workload"], {}).setdefault(r["system"], []).append(r)

    # Memory peaks come from the sampler over the whole run, not per repeat.
    mem_roles = {
        "oci-registry": ("oci-registry", "oci-registry:responder"),
        "docker-registry": ("docker-registry", None),
        "limit": ("limit", None),
    }
    workloads = {}
    for w in WORKLOADS + list(SYSTEMS_OF):
        workloads[w] = {}
        for s in SYSTEMS_OF.get(w, SYSTEMS):
            rs = runs.get(w, {}).get(s, [])
            keys = sorted({k for r in rs for k in r if k not in ("workload", "system", "rep")})
            med = {k: median([r.get(k) for r in rs if isinstance(r.get(k), (int, float))]) for k in keys}
            if w == "memory":
                # The peak is the highest sample, or the highest point measurement.
                group, responder = mem_roles[s]

                def highest(sampled, keys):
                    seen = [sampled] + [r.get(k) for r in rs for k in keys]
                    seen = [v for v in seen if isinstance(v, (int, float))]
                    return max(seen) if seen else None

                med["peak_rss"] = highest(peaks.get(group, {}).get("rss"), ("idle_rss", "loaded_idle_rss"))
                med["peak_pss"] = highest(peaks.get(group, {}).get("pss"), ("idle_pss", "loaded_idle_pss"))
                if responder:
                    med["peak_responder_rss"] = highest(
                        peaks.get(responder, {}).get("rss"),
                        ("idle_responder_rss", "loaded_idle_responder_rss"),
                    )
            workloads[w][s] = {"median": med, "runs": rs}

    def get(w, s, k):
        return workloads[w][s]["median"].get(k)

    def paired(w, k, a, b):
        """Median of the per-repeat ratios a/b: both taken in the same repeat."""
        by_rep = {}
        for s in (a, b):
            for r in workloads[w][s]["runs"]:
                by_rep.setdefault(r["rep"], {})[s] = r.get(k)
        return median([ratio(v.get(a), v.get(b)) for v in by_rep.values()])

    # The table.
    # Ratios are medians of the ratios within each repeat (memory: of the medians).
    head = ("workload", "metric", "oci-registry", "docker-registry", "limit", "oci/limit", "oci/docker")
    lines = [head]
    for w, key, label, unit, scale, _ in ROWS:
        vals = [get(w, s, key) for s in SYSTEMS]
        vals = [None if v is None else v * scale for v in vals]
        if w == "memory":
            ratios = (None, ratio(vals[0], vals[1]))
        else:
            ratios = (paired(w, key, SYSTEMS[0], SYSTEMS[2]), paired(w, key, SYSTEMS[0], SYSTEMS[1]))
        lines.append((label, unit, *map(fmt, vals), *map(fmt, ratios)))
    table = render(lines)
    if any(workloads["replicas"][s]["runs"] for s in REPLICA_SYSTEMS):
        table += [""] + replica_table(workloads, config)

    # The targets.
    blob = config.get("blob_size")
    targets = {}

    def target(name, value, want, met):
        targets[name] = {"value": value, "target": want, "met": bool(met) if value is not None else None}

    for w, label in (("manifest_tag", "by tag"), ("manifest_digest", "by digest")):
        r = paired(w, "rps", "oci-registry", "limit")
        target("manifest hit %s >= 0.5 x nginx static" % label, r, ">= 0.5", r is not None and r >= 0.5)
    for w, label in (("blob_hit_1", "1 client"), ("blob_hit_4", "4 clients")):
        r = paired(w, "mbps", "oci-registry", "limit")
        target("blob hit %s >= 0.9 x nginx static" % label, r, ">= 0.9", r is not None and r >= 0.9)
    r = paired("cold_pull", "seconds", "oci-registry", "limit")
    target("cold pull <= 1.05 x direct", r, "<= 1.05", r is not None and r <= 1.05)
    ub = get("cold_concurrent", "oci-registry", "upstream_blob_bytes")
    target("cold concurrent upstream bytes = one copy", ub, blob, ub == blob)
    ug = get("cold_concurrent", "oci-registry", "upstream_blob_gets")
    target("cold concurrent upstream GETs = 1", ug, 1, ug == 1)
    # Against nginx serving the cached file to as many clients (hit_concurrent
    # of the limit), each taken in the same repeat.
    for k, label, want in (("seconds", "wall", 1.5), ("cpu_s", "CPU", 2.0)):
        by_rep = {}
        for r in workloads["cold_concurrent"]["oci-registry"]["runs"]:
            by_rep.setdefault(r["rep"], {})["a"] = r.get(k)
        for r in workloads["hit_concurrent"]["limit"]["runs"]:
            # CPU is counted in clock ticks: less than one (a --quick run) counts as one.
            b = r.get(k)
            by_rep.setdefault(r["rep"], {})["b"] = max(b, 0.01) if k == "cpu_s" and b is not None else b
        r = median([ratio(v.get("a"), v.get("b")) for v in by_rep.values()])
        target("cold concurrent %s <= %.1f x nginx static hit" % (label, want), r, "<= %.1f" % want,
               r is not None and r <= want)
    v = get("memory", "oci-registry", "idle_responder_rss")
    target("responder idle RSS < 8 MiB", v, 8 * MIB, v is not None and v < 8 * MIB)
    v = get("memory", "oci-registry", "peak_responder_rss")
    target("responder peak RSS < 32 MiB", v, 32 * MIB, v is not None and v < 32 * MIB)
    for k, label in (("idle_rss", "idle RSS"), ("peak_rss", "peak RSS"), ("idle_pss", "idle PSS"), ("peak_pss", "peak PSS")):
        a, b = get("memory", "oci-registry", k), get("memory", "docker-registry", k)
        target("all processes %s < docker-registry's" % label, a, b, a is not None and b is not None and a < b)

    r = paired("push_image", "seconds", "oci-registry", "docker-registry")
    target("push of an image <= 1.0 x docker-registry", r, "<= 1.0", r is not None and r <= 1.0)
    for w, label in (("push_mono", "in one PUT"), ("push_chunked", "in PATCHes")):
        r = paired(w, "mbps", "oci-registry", "docker-registry")
        target("push of a blob %s >= 1.0 x docker-registry" % label, r, ">= 1.0", r is not None and r >= 1.0)
        hwm = [r["responder_hwm"] for r in workloads[w]["oci-registry"]["runs"] if r.get("responder_hwm")]
        v = max(hwm) if hwm else None
        target("responder peak RSS pushing %s < 32 MiB" % label, v, 32 * MIB, v is not None and v < 32 * MIB)
    r = paired("pull_pushed", "mbps", "oci-registry", "limit")
    target("pull of a pushed blob >= 0.9 x nginx static", r, ">= 0.9", r is not None and r >= 0.9)
    runs3 = workloads["replicas"]["replicas-3"]["runs"]
    if runs3:
        # Every run, not the median: one run with two fetches is a failure.
        gets = [r.get("upstream_blob_gets") for r in runs3]
        v = max(g for g in gets if g is not None) if any(g is not None for g in gets) else None
        target("replicas: upstream GETs = 1 in every run", v, 1, all(g == 1 for g in gets))
        bad = sum(r.get("errors", 1) for r in runs3)
        target("replicas: every client got the right bytes", bad, 0, bad == 0)

    table.append("")
    table.append("targets:")
    for name, t in targets.items():
        v = t["value"]
        shown = fmt(v / MIB) + " MiB" if isinstance(v, (int, float)) and v > 10000 else fmt(v)
        table.append("  %-48s %-5s (%s)" % (name, {True: "met", False: "NOT met", None: "n/a"}[t["met"]], shown))

    doc = {"config": config, "systems": SYSTEMS, "workloads": workloads, "peaks": peaks, "targets": targets}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
    print("\n".join(table))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "wrk":
        wrk(args[0])
    elif cmd == "log-offset":
        print(os.path.getsize(args[0]))
    elif cmd == "upstream":
        upstream(*args[:3])
    elif cmd == "cpu":
        cpu(args)
    elif cmd == "rss":
        rss(args)
    elif cmd == "sample":
        sample(args[0], args[1], args[2:])
    elif cmd == "report":
        report(*args[:4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
