# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""CPython 3.14 and 3.15 (Debian sid), and 3.11 (Debian bookworm), each
serving from a REAL runc container (own PID and mount namespaces, a
read-only root reached by pivot_root, a kubelet-style cgroup), and a 3.11
gunicorn under a plain chroot: profilis-bpf runs on the host, is given the
host PID of the gunicorn master and records exact requests and stacks.
The root file systems come from tools/rootfs (cached outside the checkout);
when they cannot be built these tests fail with the reason."""
import subprocess

from containers import Chroot, Container
from harness import BINARY, Profiler, check, http, log
from test_profile import check_profile, cleanup, run_profiled
from test_requests import acceptance

# (root file system, interpreter, the version --list and the log must name)
TARGETS = (("sid", "python3.14", "3.14.10"), ("sid", "python3.15", "3.15.2"),
           ("bookworm", "python3.11", "3.11.2"))


def tree(t):
    return lambda: set([t.pid] + t.children())


def test_acceptance_in_containers():
    """The request acceptance of every supported row (15 routes x 15 rounds
    on 4 threads plus 5 traceparents: 230 requests, exact fields) on 3.14,
    3.15 and 3.11 under gunicorn with 2 sync workers in runc containers,
    attached through the master's host PID; ns_pid is each worker's PID in
    the container."""
    for rootfs, python, version in TARGETS:
        with Container(rootfs=rootfs, python=python, app="shop", workers=2) as c:
            recs = acceptance(c, tree(c))
            ns = {r["pid"]: r.get("ns_pid") for r in recs}
            check(c.ns_pid == 1 and all(v and v != p and 1 < v < 1000 for p, v in ns.items()),
                  "%s: ns_pid by host pid %s (master ns pid %s)", c.name, ns, c.ns_pid)
            log("    %s: ns pids %s" % (c.name, sorted(set(ns.values()))))


def test_debug_build_in_a_container():
    """Debian's python3.14d, a debug build with other struct sizes (its
    _Py_DebugOffsets differ from the release build's): read from the target
    itself, its records are exact too."""
    with Container(rootfs="sid", python="python3.14d", app="shop", workers=2) as c:
        acceptance(c, tree(c))


def test_stacks_in_containers():
    """The stack-profile acceptance of every supported row on 3.14 and 3.15
    in containers (tagged stack references, new frame owners): the loop's
    share of the route's wall time, the sleep all of its blocked time, lines
    from each version's line table, truncation at --max-depth, speedscope's
    schema."""
    for rootfs, python, version in TARGETS[:2]:
        with Container(rootfs=rootfs, python=python, app="profiled", workers=1) as c:
            d, paths, err = run_profiled(c, ["--max-depth", "40"])
        try:
            check_profile(paths, err, c.name)
        finally:
            cleanup(d)


def test_chroot_target():
    """A gunicorn under chroot(1): its maps name files from our root, so the
    interpreter is opened through the mapping itself (it failed with "No such
    file or directory" when read via /proc/PID/root).  The same acceptance;
    no ns_pid (a chroot shares our PID namespace)."""
    with Chroot(rootfs="bookworm", python="python3.11", app="shop", workers=2) as t:
        recs = acceptance(t, tree(t))
        check(all("ns_pid" not in r for r in recs), "ns_pid in a chroot's records")


def test_list_and_check_see_containers():
    """--list names the containers' interpreters, versions and Flask workers
    by host PID; --check passes."""
    with Container(rootfs="sid", python="python3.14", app="shop", workers=1) as a, \
            Container(rootfs="sid", python="python3.15", app="shop", workers=1) as b:
        for t in (a, b):
            check(http(t.url("/users/1")) == 200, "request failed")
        out = subprocess.run([BINARY, "--list"], capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, "--list: %s", out.stderr)
        rows = {int(l.split()[0]): l.split() for l in out.stdout.splitlines()[1:] if l.strip()}
        for t, version in ((a, "3.14.10"), (b, "3.15.2")):
            worker = t.children()[0]
            check(t.pid in rows and rows[t.pid][3] == version, "%s master: %s", t.name,
                  rows.get(t.pid))
            check(worker in rows and rows[worker][6] == "yes", "%s worker Flask: %s",
                  t.name, rows.get(worker))
        chk = subprocess.run([BINARY, "--check"], capture_output=True, text=True, timeout=60)
        check(chk.returncode == 0, "--check: %s%s", chk.stdout, chk.stderr)


TESTS = [test_acceptance_in_containers, test_debug_build_in_a_container,
         test_stacks_in_containers, test_chroot_target, test_list_and_check_see_containers]
