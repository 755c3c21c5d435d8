# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Every way an attach can fail gets a clear message, the right exit code and
leaves nothing loaded; a target that exits mid-trace keeps what was seen."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import (BINARY, PYENV_38, PYENV_311, PYENV_OLD, ROOT, Profiler, Server, check, http,
                     log, our_programs, programs_left, run_parallel)


def run(argv, timeout=30, **kw):
    p = subprocess.run([BINARY] + argv, capture_output=True, text=True, timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def new_programs(before):
    """Programs of ours loaded since `before` and still there after a grace."""
    return programs_left(our_programs() - before)


def expect_failure(argv, code, *needles, **kw):
    before = our_programs()
    rc, out, err = run(argv, **kw)
    check(rc == code, "%s: exit %s, expected %s; stderr:\n%s", argv, rc, code, err)
    check(out == "", "%s: wrote to stdout: %r", argv, out)
    for n in needles:
        check(n in err, "%s: stderr lacks %r:\n%s", argv, n, err)
    check(not new_programs(before), "programs left loaded")
    return err


def test_usage_errors():
    expect_failure([], 64, "-p PID or --all is required")
    expect_failure(["-p", "abc"], 64, "--pid: 'abc' is not a whole number in 1..4194304")
    expect_failure(["-p", "1", "-d", "-3"], 64, "--duration: '-3'")
    expect_failure(["-p", "1", "--ringbuf-mb", "3"], 64, "power of two")
    rc, out, err = run(["--help"])
    check(rc == 0 and "Examples:" in out and "--duration" in out, "--help: %s %s", rc, out)


def test_no_such_pid():
    expect_failure(["-p", "4194300"], 1, "no process with PID 4194300")


def test_not_python():
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        expect_failure(["-p", str(sleeper.pid)], 1, "is not a Python process", "sleep",
                       "/usr/bin/sleep")
    finally:
        sleeper.kill()
        sleeper.wait()


def test_old_cpython_refused_by_version():
    """3.6 and 3.7 lack the hooked functions; the refusal names the version
    and the supported ones (it said "no symbol ...; is it a CPython build?")."""
    for v, python in sorted(PYENV_OLD.items()):
        old = subprocess.Popen([python, "-c", "import time; time.sleep(60)"])
        try:
            time.sleep(0.3)
            p = subprocess.run([BINARY, "-p", str(old.pid)], capture_output=True, text=True,
                               timeout=30)
            check(p.returncode == 1 and "runs CPython %s" % v in p.stderr and
                  "not supported; supported: CPython 3.9" in p.stderr and
                  "is it a CPython build" not in p.stderr,
                  "%s refusal: %s %s", v, p.returncode, p.stderr)
        finally:
            old.kill()
            old.wait()


def test_not_root():
    py = subprocess.Popen([PYENV_311, "-c", "import time; time.sleep(60)"])
    try:
        expect_failure(["-p", str(py.pid)], 1,
                       "missing capabilities: CAP_SYS_ADMIN, CAP_SYS_PTRACE",
                       "run as root", preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
    finally:
        py.kill()
        py.wait()


def capability_copy(caps):
    """A copy of the binary with exactly `caps` as file capabilities, in a
    directory an unprivileged user can reach."""
    d = tempfile.mkdtemp(prefix="pbpf-caps-")
    os.chmod(d, 0o755)
    copy = os.path.join(d, "profilis-bpf")
    shutil.copy(BINARY, copy)
    os.chmod(copy, 0o755)
    subprocess.run(["setcap", caps + "+ep", copy], check=True, env=dict(
        os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"))
    return d, copy


def as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_capabilities_the_readme_names():
    """The README's capability set, as file capabilities on a copy run by an
    unprivileged user, attaches and records; the set it used to name
    (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE) passed --check and then failed to
    attach with EACCES: now --check and the run both say CAP_SYS_ADMIN."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    check("setcap cap_sys_admin,cap_sys_ptrace+ep" in readme,
          "the README does not name the capability set this test checks")
    good_dir, good = capability_copy("cap_sys_admin,cap_sys_ptrace")
    bad_dir, bad = capability_copy("cap_bpf,cap_perfmon,cap_sys_ptrace")
    try:
        p = subprocess.run([bad, "--check"], capture_output=True, text=True, timeout=60,
                           preexec_fn=as_nobody, cwd="/")
        check(p.returncode == 1 and "FAIL uprobe creation" in p.stdout and
              "CAP_SYS_ADMIN" in p.stdout, "--check with bpf,perfmon,ptrace: %s %s",
              p.returncode, p.stdout)
        with Server("gunicorn", workers=2) as srv:
            p = subprocess.run([bad, "-p", str(srv.pid)], capture_output=True, text=True,
                               timeout=30, preexec_fn=as_nobody, cwd="/")
            check(p.returncode == 1 and "missing capabilities: CAP_SYS_ADMIN;" in p.stderr and
                  "CAP_BPF and CAP_PERFMON are not enough" in p.stderr,
                  "run with bpf,perfmon,ptrace: %s %s", p.returncode, p.stderr)
            p = subprocess.run([good, "--check"], capture_output=True, text=True, timeout=60,
                               preexec_fn=as_nobody, cwd="/")
            check(p.returncode == 0, "--check with sys_admin,sys_ptrace: %s", p.stdout)
            proc = subprocess.Popen([good, "-p", str(srv.pid), "-d", "4"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    preexec_fn=as_nobody, cwd="/")
            deadline = time.time() + 20
            err = b""
            while b"attached" not in err and time.time() < deadline and proc.poll() is None:
                err += os.read(proc.stderr.fileno(), 4096)
            for i in range(10):
                check(http(srv.url("/users/%d" % i)) == 200, "request failed")
            out, rest = proc.communicate(timeout=30)
            err = (err + rest).decode()
            lines = [l for l in out.decode().splitlines() if '"kind":"REQ"' in l]
            check(proc.returncode == 0 and len(lines) == 10,
                  "as nobody with cap_sys_admin,cap_sys_ptrace: exit %s, %d records:\n%s",
                  proc.returncode, len(lines), err)
    finally:
        shutil.rmtree(good_dir, ignore_errors=True)
        shutil.rmtree(bad_dir, ignore_errors=True)


def test_no_btf():
    """Hides /sys/kernel/btf in a private mount namespace: a real missing BTF."""
    py = subprocess.Popen([PYENV_311, "-c", "import time; time.sleep(60)"])
    try:
        argv = ["unshare", "-m", "sh", "-c",
                "mount -t tmpfs none /sys/kernel/btf && exec %s -p %d" % (BINARY, py.pid)]
        before = our_programs()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        check(p.returncode == 1, "exit %s:\n%s", p.returncode, p.stderr)
        check("no BTF" in p.stderr and "/sys/kernel/btf/vmlinux" in p.stderr,
              "message: %s", p.stderr)
        check(not new_programs(before), "programs left loaded")
    finally:
        py.kill()
        py.wait()


def test_target_exits_while_traced():
    srv = Server("gunicorn", workers=1)
    before = our_programs()
    prof = Profiler(srv.pid)
    try:
        for i in range(20):
            check(http(srv.url("/users/%d" % i)) == 200, "request failed")
        time.sleep(0.2)
        os.killpg(srv.pid, signal.SIGKILL)
        rc = prof.proc.wait(timeout=15)
        err = prof.stderr()
        check(rc == 0, "exit %s after the target died:\n%s", rc, err)
        check("PID %d exited" % srv.pid in err, "no exit message:\n%s" % err)
        check(len(prof.records()) == 20, "20 requests, %d records", len(prof.records()))
        check("20 requests recorded, 0 lost" in err, "summary:\n%s", err)
        check(not new_programs(before), "programs left loaded")
    finally:
        prof.close()
        srv.stop()


def test_target_killed_with_losses_accounted():
    """A SIGKILLed master while the exporter is stalled: the exit report counts
    what was dropped and claims nothing more (it said "everything it sent was
    written" next to hundreds of queue drops)."""
    srv = Server("gunicorn", workers=2)
    proc = subprocess.Popen([BINARY, "-p", str(srv.pid), "--queue-size", "16",
                             "--batch-max", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = b""
        deadline = time.time() + 20
        while b"attached" not in err and time.time() < deadline:
            err += os.read(proc.stderr.fileno(), 4096)
        # Nobody reads stdout yet: the pipe fills and the queue drops the oldest.
        statuses = run_parallel(lambda i: http(srv.url("/users/%d" % i)), range(3000))
        check(statuses.count(200) == 3000, "requests failed")
        time.sleep(0.3)
        os.killpg(srv.pid, signal.SIGKILL)
        out, rest = proc.communicate(timeout=60)
        err = (err + rest).decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.stop()
    lines = [l for l in out.decode().splitlines() if '"kind":"REQ"' in l]
    m = re.search(r"(\d+) requests recorded, (\d+) lost", err)
    check(m, "no summary:\n%s", err)
    recorded, lost = int(m.group(1)), int(m.group(2))
    check("PID %d exited" % srv.pid in err, "no exit message:\n%s", err)
    check("everything" not in err, "the report claims everything was written:\n%s", err)
    check(lost > 0, "the stalled exporter lost nothing? %s", err)
    check(recorded == len(lines) and recorded + lost == 3000,
          "%d lines, %d recorded + %d lost != 3000 requests", len(lines), recorded, lost)
    log("    3000 requests: %d written, %d dropped and counted" % (recorded, lost))


def test_sigterm_and_duration_detach():
    with Server("gunicorn", workers=1) as srv:
        before = our_programs()
        prof = Profiler(srv.pid)
        try:
            ours = our_programs() - before
            check(len(ours) == 4, "expected our 4 programs while attached, saw %s", ours)
            check(prof.stop(signal.SIGTERM) == 0, "SIGTERM exit:\n%s", prof.stderr())
            check(not programs_left(ours), "programs left loaded after SIGTERM")
        finally:
            prof.close()
        t0 = time.time()
        before = our_programs()
        rc, out, err = run(["-p", str(srv.pid), "-d", "1"])
        check(rc == 0 and 0.9 < time.time() - t0 < 10, "-d 1: exit %s after %.1fs:\n%s", rc,
              time.time() - t0, err)
        check("0 requests recorded, 0 lost" in err, "summary: %s", err)
        check(not new_programs(before), "programs left loaded after -d")


def test_check():
    rc, out, err = run(["--check"])
    check(rc == 0 and "profilis-bpf can run here" in out and "FAIL" not in out,
          "--check as root: %s\n%s%s", rc, out, err)
    for feature in ("kernel BTF", "uprobe programs", "ring buffer maps", "bpf_loop helper",
                    "task storage from uprobe and perf_event programs",
                    "software CPU clock"):
        check(any(l.startswith("ok") and feature in l for l in out.splitlines()),
              "--check does not confirm %s:\n%s", feature, out)
    p = subprocess.run([BINARY, "--check"], capture_output=True, text=True, timeout=30,
                       preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
    check(p.returncode == 1 and "FAIL capabilities" in p.stdout and
          "CAP_SYS_ADMIN" in p.stdout,
          "--check as nobody: %s\n%s", p.returncode, p.stdout)


def test_list():
    """--list finds the test apps with version, server, workers, ports and
    whether Flask is imported (read from sys.modules, not guessed)."""
    other = subprocess.Popen([PYENV_38, "-c", "import time; time.sleep(60)"])
    try:
        with Server("gunicorn", workers=2) as gu, Server("werkzeug", python=PYENV_311) as wz:
            time.sleep(0.5)
            rc, out, err = run(["--list"])
            check(rc == 0, "--list exit %s: %s", rc, err)
            rows = {int(l.split()[0]): l.split() for l in out.splitlines()[1:] if l[:1].isdigit()}
            m = rows.get(gu.pid)
            check(m and m[2] == "gunicorn" and m[3] == "3.11.2" and m[4] == "2" and
                  m[5] == str(gu.port) and m[6] == "no", "gunicorn master row: %s", m)
            for w in gu.children():
                r = rows.get(w)
                check(r and r[6] == "yes" and r[5] == str(gu.port), "worker %d row: %s", w, r)
            r = rows.get(wz.pid)
            check(r and r[3] == "3.11.7" and r[5] == str(wz.port) and r[6] == "yes" and
                  r[7].endswith("libpython3.11.so.1.0"), "werkzeug row: %s", r)
            r = rows.get(other.pid)
            check(r and r[3] == "3.8" and r[6] == "?", "3.8 (unsupported) row: %s", r)
    finally:
        other.kill()
        other.wait()


TESTS = [test_list, test_check, test_usage_errors, test_no_such_pid, test_not_python,
         test_old_cpython_refused_by_version, test_not_root, test_capabilities_the_readme_names, test_no_btf, test_target_exits_while_traced,
         test_target_killed_with_losses_accounted,
         test_sigterm_and_duration_detach]
