#!/usr/bin/python3
"""chart.py - checks of the Helm chart as rendered by `helm template`, and
its translation for podman 4.3's `kube play`.

Findings are printed as TAP comments.

  chart.py probes FILE        every probe of the Deployment that names a port
                              names one of its own container (Kubernetes
                              resolves it there)
  chart.py metrics FILE       the pod's prometheus.io annotations name nginx's metrics port
  chart.py exec-probe FILE CONTAINER
                              the command of its exec liveness probe
  chart.py tmpdir FILE        the responder has TMPDIR on a writable emptyDir
  chart.py env FILE NAME VALUE
                              the responder's last variable NAME has VALUE
  chart.py push FILE SECRET   nginx mounts push-auth.conf from the chart's ConfigMap
                              and /etc/oci-registry/htpasswd from the Secret SECRET
  chart.py kubeplay FILE DIR  DIR/play.yaml and DIR/secret.json: see kubeplay()
  chart.py kubeplay-gc FILE DIR
                              DIR/play.yaml: the gc CronJob's job as a Pod, see kubeplay_gc()
"""
import base64
import json
import os
import sys

import yaml


def documents(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def deployment(docs):
    return next(d for d in docs if d["kind"] == "Deployment")


def pod_spec(docs):
    return deployment(docs)["spec"]["template"]["spec"]


def probes(path):
    """Prints each probe; fails if a named port is not its container's."""
    bad = 0
    for c in pod_spec(documents(path))["containers"]:
        names = {p.get("name") for p in c.get("ports", [])}
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = c.get(kind)
            if not probe:
                continue
            action = probe.get("httpGet") or probe.get("tcpSocket")
            port = action.get("port") if action else None
            ok = not isinstance(port, str) or port in names
            what = "exec" if "exec" in probe else "port %s" % port
            print("# %s %s: %s %s" % (c["name"], kind, what, "ok" if ok else "NOT ITS OWN"))
            bad += not ok
    return 1 if bad else 0


def exec_probe(path, container, kind="livenessProbe"):
    """The command of a container's exec probe, one argument a line."""
    c = next(c for c in pod_spec(documents(path))["containers"] if c["name"] == container)
    print("\n".join(c[kind]["exec"]["command"]))
    return 0


def tmpdir(path):
    """The responder's TMPDIR is the mount path of an emptyDir volume."""
    spec = pod_spec(documents(path))
    empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    c = next(c for c in spec["containers"] if c["name"] == "oci-registry")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    where = env.get("TMPDIR")
    ok = where is not None and mounts.get(where) in empty
    print("# TMPDIR=%s on volume %s" % (where, mounts.get(where)))
    return 0 if ok else 1


def env(path, name, value):
    """The responder's environment ends with NAME=VALUE (a later entry wins)."""
    c = next(c for c in pod_spec(documents(path))["containers"] if c["name"] == "oci-registry")
    found = [e.get("value") for e in c.get("env", []) if e["name"] == name]
    print("# %s: %s" % (name, found))
    return 0 if found and found[-1] == value else 1


def metrics(path):
    """The pod is annotated for Prometheus, at a port that nginx names "metrics"."""
    docs = documents(path)
    notes = deployment(docs)["spec"]["template"]["metadata"].get("annotations", {})
    spec = pod_spec(docs)
    ports = {p["containerPort"]: p.get("name") for c in spec["containers"] if c["name"] == "nginx"
             for p in c.get("ports", [])}
    print("# annotations: scrape=%s port=%s path=%s; nginx ports %s" % (
        notes.get("prometheus.io/scrape"), notes.get("prometheus.io/port"),
        notes.get("prometheus.io/path"), ports))
    port = int(notes.get("prometheus.io/port", "0"))
    ok = notes.get("prometheus.io/scrape") == "true" and notes.get("prometheus.io/path") == \
        "/metrics" and ports.get(port) == "metrics"
    return 0 if ok else 1


def empty_dir(path):
    """An empty directory as Kubernetes makes one for an emptyDir."""
    os.mkdir(path)
    os.chmod(path, 0o777)
    return path


def empty_dirs_on_host(spec, out):
    """The pod's emptyDirs as directories of mode 0777 in out, mounted as hostPath."""
    for v in spec["volumes"]:
        if "emptyDir" in v:
            del v["emptyDir"]
            v["hostPath"] = {"path": empty_dir("%s/%s" % (out, v["name"])), "type": "Directory"}


def kubeplay_gc(path, out):
    """The pod a run of the gc CronJob makes, for kube play (which takes no
    CronJob or Job): a Pod of the job template's spec and the CronJob's name,
    its emptyDirs made as kubeplay() makes them, on the host's network (the
    test's own namespace, where S3 listens on 127.0.0.1: gc starts at once,
    before a bridge into a pod's namespace could be made as containers.sh
    makes one for the Deployment). Fails without a CronJob."""
    cron = next(d for d in documents(path) if d["kind"] == "CronJob")
    template = cron["spec"]["jobTemplate"]["spec"]["template"]
    empty_dirs_on_host(template["spec"], out)
    template["spec"]["hostNetwork"] = True
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": cron["metadata"]["name"], "labels": template["metadata"]["labels"]},
           "spec": template["spec"]}
    with open(out + "/play.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump(pod, f)
    print("# schedule %s, args %s" % (cron["spec"]["schedule"],
                                      " ".join(template["spec"]["containers"][0]["args"])))
    return 0


def kubeplay(path, out):
    """What podman 4.3's kube play cannot take as rendered, turned into the
    closest it can; everything else is left as rendered.
    - A mount with a subPath gets the whole ConfigMap or Secret (a
      directory) where one key (a file) belongs: such mounts become hostPath
      files, written to DIR, with that key's content; volumes no longer
      mounted are dropped.
    - A secretKeyRef is read from a podman secret holding a JSON map of
      base64 values (a Secret document given to kube play is kept as YAML,
      which its secretKeyRef cannot read): DIR/secret.json is that map of
      the Secret's data, for `podman secret create`.
    - An emptyDir is a volume that the first container to mount it
      initialises from its image (nginx's image: root's), and fsGroup is
      not applied, where Kubernetes makes an empty directory of mode 0777:
      emptyDirs become such directories in DIR, mounted as hostPath.
    - The Service is left out (kube play has none)."""
    docs = documents(path)
    secret = next(d for d in docs if d["kind"] == "Secret")
    data = dict(secret.get("stringData", {}))
    for key, value in secret.get("data", {}).items():
        data[key] = base64.b64decode(value).decode()
    with open(out + "/secret.json", "w", encoding="utf-8") as f:
        json.dump({k: base64.b64encode(v.encode()).decode() for k, v in data.items()}, f)
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    maps[secret["metadata"]["name"]] = data
    spec = pod_spec(docs)
    empty_dirs_on_host(spec, out)
    sources = {v["name"]: (v.get("configMap") or {}).get("name") or v["secret"]["secretName"]
               for v in spec["volumes"] if "configMap" in v or "secret" in v}
    for c in spec["containers"]:
        for m in c.get("volumeMounts", []):
            if m["name"] not in sources or "subPath" not in m:
                continue
            key = m.pop("subPath")
            name = "%s-%s" % (m["name"], key.replace(".", "-"))
            file = "%s/%s" % (out, name)
            with open(file, "w", encoding="utf-8") as f:
                f.write(maps[sources[m["name"]]][key])
            spec["volumes"].append({"name": name, "hostPath": {"path": file, "type": "File"}})
            m["name"] = name
    mounted = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] in mounted]
    kept = [d for d in docs if d["kind"] in ("ConfigMap", "Deployment")]
    with open(out + "/play.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump_all(kept, f)
    print(secret["metadata"]["name"])
    return 0


def push(path, secret):
    """nginx has what push-auth.conf needs: the file itself and the htpasswd it names."""
    spec = pod_spec(documents(path))
    volumes = {v["name"]: v for v in spec["volumes"]}
    nginx = next(c for c in spec["containers"] if c["name"] == "nginx")
    mounts = {m["mountPath"]: m for m in nginx["volumeMounts"]}
    auth = mounts.get("/etc/oci-registry/nginx/push-auth.conf")
    users = mounts.get("/etc/oci-registry/htpasswd")
    bad = 0
    if auth is None or auth.get("subPath") != "push-auth.conf" or "configMap" not in volumes[auth["name"]]:
        print("# nginx does not mount push-auth.conf from the ConfigMap")
        bad = 1
    if users is None or volumes[users["name"]].get("secret", {}).get("secretName") != secret:
        print(f"# nginx does not mount /etc/oci-registry/htpasswd from the Secret {secret}")
        bad = 1
    return bad


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    return {"probes": probes, "exec-probe": exec_probe, "tmpdir": tmpdir, "env": env, "metrics": metrics,
            "push": push, "kubeplay": kubeplay, "kubeplay-gc": kubeplay_gc}[cmd](*args)


if __name__ == "__main__":
    sys.exit(main())
