#!/usr/bin/env python3
"""Prints the `podman run` arguments of one compose service, one a line.

deploy/smoke.sh uses it where no compose implementation runs the stack
(podman 4.3 has no `podman compose`; Debian's podman-compose 1.0.3 passes
network_mode "service:X" through unchanged and ignores depends_on
conditions): the containers then come from compose.yaml itself, not from a
second description that could drift from it.

  compose-run.py PROJECT SERVICE FILE [FILE...]          # run arguments
  compose-run.py --health PROJECT SERVICE FILE [FILE...] # healthcheck command
  compose-run.py --run PROJECT SERVICE FILE... -- ARG...  # `compose run --rm`

Later files are merged over earlier ones as compose does for the keys used
here (environment and lists appended). Names follow compose: the container
of service S is PROJECT-S, named volume V is PROJECT_V, network_mode
"service:S" is the container PROJECT-S's namespace, and a service without
network_mode is on the network PROJECT_default (the caller creates it). Any key this does not
translate is an error, so a new setting in compose.yaml cannot be silently
left out of the smoke test. depends_on and healthcheck are the caller's
(smoke.sh starts the services in order and waits for the healthcheck);
build is ignored (smoke.sh builds the same tags first). --run is a
one-off container as `compose run --rm SERVICE ARG...` makes it: the
service's settings with ARG... as its command, no published ports, no
restart policy.
"""
import os
import re
import sys

import yaml

HANDLED = {
    "build", "image", "entrypoint", "command", "init", "user", "cap_drop", "cap_add",
    "security_opt", "read_only", "sysctls", "ports", "environment", "network_mode",
    "volumes", "ulimits", "tmpfs", "healthcheck", "depends_on", "restart", "extra_hosts",
}


def interpolate(value):
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}."""
    def repl(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        v = os.environ.get(name, "")
        if op == ":?" and not v:
            sys.exit("compose-run: %s: %s" % (name, arg))
        if op == ":-" and not v:
            return arg
        return v
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", repl, value)


def environment(env):
    if isinstance(env, list):
        return dict(e.split("=", 1) for e in env)
    return dict(env or {})


def merge(base, over):
    for k, v in over.items():
        if k == "environment":
            e = environment(base.get(k))
            e.update(environment(v))
            base[k] = e
        elif isinstance(v, list) and isinstance(base.get(k), list):
            base[k] = base[k] + v
        else:
            base[k] = v


def main(argv):
    health = argv[:1] == ["--health"]
    oneoff = argv[:1] == ["--run"]
    if health or oneoff:
        argv = argv[1:]
    args = None
    if oneoff:
        i = argv.index("--")
        argv, args = argv[:i], argv[i + 1:]
    project, name, files = argv[0], argv[1], argv[2:]
    svc = {}
    for f in files:
        with open(f) as fh:
            doc = yaml.safe_load(fh)
        merge(svc, (doc.get("services") or {}).get(name) or {})
    if not svc:
        sys.exit("compose-run: no service %s in %s" % (name, files))
    unknown = set(svc) - HANDLED
    if unknown:
        sys.exit("compose-run: %s: keys not translated: %s" % (name, sorted(unknown)))
    if health:
        test = svc["healthcheck"]["test"]
        if test[0] != "CMD":
            sys.exit("compose-run: only CMD healthchecks")
        print("\n".join(test[1:]))
        return
    if oneoff:
        svc.pop("ports", None)
        svc.pop("restart", None)
        svc["command"] = args
    a = ["--name", "%s-%s%s" % (project, name, "-run" if oneoff else "")]
    if "entrypoint" in svc:
        ep = svc["entrypoint"]
        # Like compose: a new entrypoint drops the image's CMD.
        a += ["--entrypoint", ep[0]]
        cmd = ep[1:] + list(svc.get("command") or [])
    else:
        cmd = list(svc.get("command") or [])
    if svc.get("init"):
        a.append("--init")
    if "user" in svc:
        a += ["--user", str(svc["user"])]
    for c in svc.get("cap_drop", []):
        a += ["--cap-drop", c]
    for c in svc.get("cap_add", []):
        a += ["--cap-add", c]
    for s in svc.get("security_opt", []):
        a += ["--security-opt", s]
    if svc.get("read_only"):
        # Docker's --read-only: no tmpfs but the ones asked for (podman's
        # default adds /tmp, /var/tmp and /run).
        a += ["--read-only", "--read-only-tmpfs=false"]
    for t in svc.get("tmpfs", []):
        a += ["--tmpfs", t]
    for k, v in (svc.get("sysctls") or {}).items():
        a += ["--sysctl", "%s=%s" % (k, v)]
    for p in svc.get("ports", []):
        a += ["--publish", p]
    for k, v in environment(svc.get("environment")).items():
        a += ["--env", "%s=%s" % (k, interpolate(str(v)))]
    for h in svc.get("extra_hosts", []):
        a += ["--add-host", h]
    net = svc.get("network_mode")
    if net:
        if net.startswith("service:"):
            net = "container:%s-%s" % (project, net[len("service:"):])
    else:
        net = "%s_default" % project  # compose's project network
    a += ["--network", net]
    for v in svc.get("volumes", []):
        src, rest = v.split(":", 1)
        if not src.startswith(("/", ".")):
            src = "%s_%s" % (project, src)
        a += ["--volume", "%s:%s" % (src, rest)]
    for k, v in (svc.get("ulimits") or {}).items():
        if isinstance(v, dict):
            v = "%s:%s" % (v["soft"], v["hard"])
        a += ["--ulimit", "%s=%s" % (k, v)]
    if "restart" in svc:
        a += ["--restart", svc["restart"]]
    a.append(svc["image"])
    a += cmd
    for x in a:
        if "\n" in x:
            sys.exit("compose-run: a newline in %r" % x)
    print("\n".join(a))


if __name__ == "__main__":
    main(sys.argv[1:])
