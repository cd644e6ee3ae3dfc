#!/usr/bin/python3
"""Checks of the deployment files (compose, Helm chart) that need no engine.

  deploy.py yaml FILE...            every file parses as YAML (all documents)
  deploy.py chart-refs CHART        every .Values path the templates use exists in
                                    values.yaml, every .Files.Get file and every
                                    included template exists; prints problems
  deploy.py chart-env CHART         the responder's environment as the chart's
                                    deployment sets it with the default values and
                                    filesystem storage: NAME=VALUE lines (secret
                                    references give the value the chart stores)
  deploy.py chart-env-names CHART   every variable name the deployment sets, with
                                    "s3 " before those of the s3 storage branch
  deploy.py compose-env FILE SVC    a service's environment, ${VAR:-default} taken
                                    as its default: NAME=VALUE lines
  deploy.py compose-paths FILE      the local paths the compose file names (build
                                    context, Dockerfile, bind-mount sources), one
                                    per line, resolved against its directory
  deploy.py get FILE KEY...         a value out of a YAML file
"""

import os
import re
import sys

import yaml

VALUES_RE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
FILES_RE = re.compile(r'\.Files\.Get\s+"([^"]+)"')
INCLUDE_RE = re.compile(r'(?:include|template)\s+"([^"]+)"')
DEFINE_RE = re.compile(r'define\s+"([^"]+)"')


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def cmd_yaml(paths):
    bad = 0
    for p in paths:
        try:
            with open(p) as f:
                list(yaml.safe_load_all(f))
        except Exception as e:  # noqa: BLE001 - report any parse failure
            print("%s: %s" % (p, e))
            bad = 1
    return bad


def lookup(values, dotted):
    node = values
    for key in dotted.strip(".").split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def templates(chart):
    tdir = os.path.join(chart, "templates")
    for name in sorted(os.listdir(tdir)):
        with open(os.path.join(tdir, name)) as f:
            yield name, f.read()


def cmd_chart_refs(chart):
    values = load(os.path.join(chart, "values.yaml"))
    texts = dict(templates(chart))
    defined = set()
    for text in texts.values():
        defined.update(DEFINE_RE.findall(text))
    problems = []
    for name, text in texts.items():
        for ref in sorted(set(VALUES_RE.findall(text))):
            if not lookup(values, ref)[0]:
                problems.append("%s: .Values%s is not in values.yaml" % (name, ref))
        for f in FILES_RE.findall(text):
            if not os.path.isfile(os.path.join(chart, f)):
                problems.append("%s: .Files.Get %s: no such file" % (name, f))
        for inc in INCLUDE_RE.findall(text):
            if inc not in defined:
                problems.append("%s: template %s is not defined" % (name, inc))
    for p in problems:
        print(p)
    return 1 if problems else 0


def helper_lines(chart, name):
    """The lines of the template that _helpers.tpl defines as name (its own
    if/else/end included)."""
    with open(os.path.join(chart, "templates", "_helpers.tpl")) as f:
        lines = f.read().splitlines()
    start = lines.index('{{- define "%s" -}}' % name) + 1
    body, depth = [], 0
    for line in lines[start:]:
        word = line.strip()
        if word.startswith("{{- end") and depth == 0:
            break
        depth += word.startswith("{{- if")
        depth -= word.startswith("{{- end")
        body.append(line)
    return body


def chart_env(chart):
    """(name, value or None, branch) for each env entry of the deployment,
    with the storage's from the helper it includes."""
    values = load(os.path.join(chart, "values.yaml"))
    with open(os.path.join(chart, "templates", "deployment.yaml")) as f:
        lines = []
        for line in f.read().splitlines():
            included = re.search(r'include "(oci-registry\.storageEnv)"', line)
            lines += helper_lines(chart, included.group(1)) if included else [line]
    out, branch, i = [], "", 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith(("{{- if $fs", '{{- if eq .Values.registry.storage.mode "filesystem"')):
            branch = "fs"
        elif line.startswith("{{- else") and branch == "fs":
            branch = "s3"
        elif line.startswith("{{- end") and branch:
            branch = ""
        m = re.match(r"- name: ([A-Z_][A-Z0-9_]*)$", line)
        if m:
            name, nxt, value = m.group(1), lines[i + 1].strip(), None
            if nxt.startswith("value:"):
                raw = nxt[len("value:"):].strip()
                ref = VALUES_RE.search(raw)
                if ref:
                    value = lookup(values, ref.group(1))[1]
                    value = str(value).lower() if isinstance(value, bool) else str(value)
                else:
                    value = raw.strip('"')
            elif name == "UPSTREAM_CREDENTIALS":
                value = values["registry"]["upstream"]["credentials"]
            out.append((name, value, branch))
        i += 1
    return out


def cmd_chart_env(chart):
    for name, value, branch in chart_env(chart):
        if branch != "s3" and value is not None:
            print("%s=%s" % (name, value))
    return 0


def cmd_chart_env_names(chart):
    for name, _, branch in chart_env(chart):
        print(("s3 " if branch == "s3" else "") + name)
    return 0


def default_of(value):
    """${VAR:-default} as its default, ${VAR} as empty (VAR unset)."""
    return re.sub(r"\$\{[A-Z_]+(?::-([^}]*))?\}", r"\1", str(value))


def cmd_compose_env(path, service):
    env = load(path)["services"][service].get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    for name, value in env.items():
        print("%s=%s" % (name, default_of(value)))
    return 0


def cmd_compose_paths(path):
    doc, base = load(path), os.path.dirname(os.path.abspath(path))
    for svc in doc["services"].values():
        build = svc.get("build")
        if isinstance(build, dict):
            ctx = os.path.normpath(os.path.join(base, build.get("context", ".")))
            print(ctx)
            print(os.path.join(ctx, build.get("dockerfile", "Dockerfile")))
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith((".", "/")):
                print(os.path.normpath(os.path.join(base, src)))
    return 0


def cmd_get(path, keys):
    node = load(path)
    for k in keys:
        node = node[int(k)] if isinstance(node, list) else node[k]
    print(node if not isinstance(node, (dict, list)) else yaml.safe_dump(node))
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    return {
        "yaml": lambda: cmd_yaml(args),
        "chart-refs": lambda: cmd_chart_refs(args[0]),
        "chart-env": lambda: cmd_chart_env(args[0]),
        "chart-env-names": lambda: cmd_chart_env_names(args[0]),
        "compose-env": lambda: cmd_compose_env(args[0], args[1]),
        "compose-paths": lambda: cmd_compose_paths(args[0]),
        "get": lambda: cmd_get(args[0], args[1:]),
    }[cmd]()


if __name__ == "__main__":
    sys.exit(main())
