# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Kubernetes metadata without the Kubernetes API (issue 13, part 2), seen
through `profilis-bpf --list`: two REAL runc containers in kubelet-style
cgroups (/kubepods/besteffort/pod<uid>/<64-hex id>), with HOSTNAME = the pod
name and a service-account namespace file in two namespaces, one with
OTEL_SERVICE_NAME and one without (its service is then the gunicorn app
module), plus a gunicorn on the host whose HOSTNAME is set but which is in
no pod: it must show no namespace, pod or container."""
import os
import subprocess

import containers
from containers import Container
from harness import BINARY, Server, check, http, log

# A pod name whose OTEL_SERVICE_NAME (containers.py: the name before the
# last two dashes) differs from the app module "shop", so the two sources
# cannot be mistaken for each other.
POD_A = "checkout-5d8f7c9b4-x7k2p"
POD_B = "storefront-6c9d8b7f5-q2w8r"


def without_otel(oci_config):
    def config(*args, **kwargs):
        cfg = oci_config(*args, **kwargs)
        cfg["process"]["env"] = [e for e in cfg["process"]["env"]
                                 if not e.startswith("OTEL_SERVICE_NAME=")]
        return cfg
    return config


def list_rows():
    """--list as {pid: {column: value}}, columns found by their header."""
    out = subprocess.run([BINARY, "--list"], capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "--list exit %d: %s", out.returncode, out.stderr)
    lines = out.stdout.splitlines()
    head = lines[0].split()
    check(head[:8] == ["PID", "COMM", "SERVER", "PYTHON", "WORKERS", "PORTS", "FLASK",
                       "INTERPRETER"], "--list keeps its first eight columns: %s", head)
    rows = {}
    for line in lines[1:]:
        cells = line.split()
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = (cells, head)
    return out.stdout, rows


def expect(rows, pid, what, **want):
    check(pid in rows, "%s (PID %d) not in --list", what, pid)
    cells, head = rows[pid]
    check(len(cells) == len(head), "%s: a row without every column: %s", what, cells)
    r = dict(zip(head, cells))
    got = dict((k, r.get(k)) for k in want)
    check(got == want, "%s (PID %d): %s, want %s", what, pid, got, want)


def test_list_shows_pod_metadata():
    """Each container's master and worker show their own service, namespace,
    pod and container id; the host gunicorn shows none of the Kubernetes
    fields (its exported HOSTNAME is not a pod name) and its app module as
    service."""
    saved = os.environ.get("HOSTNAME")
    os.environ["HOSTNAME"] = "decoy-pod-name"
    try:
        host = Server("gunicorn", app="shop", workers=1)
    finally:
        if saved is None:
            del os.environ["HOSTNAME"]
        else:
            os.environ["HOSTNAME"] = saved
    try:
        with Container(rootfs="bookworm", python="python3.11", app="shop", workers=1,
                       pod=POD_A, namespace="payments") as a:
            plain = containers.oci_config
            containers.oci_config = without_otel(plain)
            try:
                b = Container(rootfs="sid", python="python3.14", app="shop", workers=1,
                              pod=POD_B, namespace="storefront")
            finally:
                containers.oci_config = plain
            with b:
                for t in (a, b):
                    check(http(t.url("/users/1")) == 200, "%s: request failed", t.name)
                log("container %s cgroup: %s" % (a.id[:12], a.cgroup().splitlines()[0]))
                text, rows = list_rows()
                log("--list:\n" + text.rstrip())
                for t, service, ns, pod in ((a, "checkout", "payments", POD_A),
                                            (b, "shop", "storefront", POD_B)):
                    for pid in [t.pid] + t.children():
                        expect(rows, pid, t.name, SERVICE=service, NAMESPACE=ns, POD=pod,
                               CONTAINER=t.id[:12])
                for pid in [host.pid] + host.children():
                    expect(rows, pid, "host gunicorn", SERVICE="shop", NAMESPACE="-",
                           POD="-", CONTAINER="-")
    finally:
        host.stop()
    # Columns that every row would leave empty are not printed at all.
    _, rows = list_rows()
    for cells, head in rows.values():
        for col in ("NAMESPACE", "POD", "CONTAINER"):
            check(col not in head or any(c[head.index(col)] != "-" for c, _ in rows.values()
                                         if len(c) == len(head)),
                  "an empty %s column printed", col)
        break


TESTS = [test_list_shows_pod_metadata]
