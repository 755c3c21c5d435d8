# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Root on a shared node (issue 10): the real binary, as root, against a
real gunicorn app, writing into a directory an unprivileged user (`nobody`)
owns and has filled with symlinks to a root file at every name the old code
would have used for the next PIDs; outputs written only at exit fail before
attach; a FIFO without a reader is announced; file modes; usage errors for a
template too long for a file name and an empty exclusion regex."""
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
import time

from harness import DEBIAN_PY, Profiler, Server, check, http, log, run_parallel
from test_errors import expect_failure
from test_pipeline import summary_numbers

VICTIM_TEXT = "root:x:0:0:root:/root:/bin/bash\n"
PLANT_AHEAD = 3000  # PIDs after the last one handed out


def nobody():
    return pwd.getpwnam("nobody").pw_uid


def user_dir():
    """A directory owned by `nobody`, with a root-owned victim outside it."""
    d = tempfile.mkdtemp(prefix="pbpf-trust-")
    os.chmod(d, 0o755)
    os.chown(d, nobody(), nobody())
    fd, victim = tempfile.mkstemp(prefix="pbpf-victim-")
    os.write(fd, VICTIM_TEXT.encode())
    os.close(fd)
    return d, victim


def plant(d, victim, names):
    for name in names:
        path = os.path.join(d, name)
        os.symlink(victim, path)
        os.lchown(path, nobody(), nobody())


def last_pid():
    with open("/proc/sys/kernel/ns_last_pid") as f:
        return int(f.read())


def regular_files(d):
    return sorted(n for n in os.listdir(d) if stat.S_ISREG(os.lstat(os.path.join(d, n)).st_mode))


def req_records(path):
    import json
    with open(path, encoding="utf-8") as f:
        data = f.read()
    check(data.endswith("\n"), "%s ends in a partial line", path)
    return [r for r in map(json.loads, data.splitlines()) if r["kind"] == "REQ"]


def test_planted_symlinks_in_a_user_owned_directory():
    """The old names were .profilis-active-PID.jsonl, STATS.tmp-PID and
    FILE.tmp, all opened O_TRUNC by root: every one of them for the next
    PIDs points at the victim.  The victim must stay as it was and every
    request must be in the finished files."""
    d, victim = user_dir()
    try:
        with Server("gunicorn", python=DEBIAN_PY, workers=2) as srv:
            first = last_pid() + 1
            pids = range(first, first + PLANT_AHEAD)
            plant(d, victim, [".profilis-active-%d.jsonl" % p for p in pids])
            plant(d, victim, ["stats.json.tmp-%d" % p for p in pids])
            plant(d, victim, ["stats.json.tmp", "prof.speedscope.tmp", "prof.folded.tmp"])
            out = lambda name: os.path.join(d, name)  # noqa: E731
            prof = Profiler(srv.pid, ["-o", d + "/", "--rotate-bytes", "8k", "-i", "0.2",
                                      "--stats-json", out("stats.json"),
                                      "--speedscope", out("prof.speedscope"),
                                      "--folded", out("prof.folded")])
            try:
                check(prof.proc.pid in pids, "profiler PID %d outside the planted range %d..%d",
                      prof.proc.pid, first, first + PLANT_AHEAD)
                run_parallel(lambda i: http(srv.url("/users/%d" % i)), range(400))
                time.sleep(0.6)  # a few --stats-json rewrites
                check(prof.stop() == 0, "exit:\n%s", prof.stderr())
                err = prof.stderr()
            finally:
                prof.close()
        with open(victim) as f:
            check(f.read() == VICTIM_TEXT, "the victim file was written through a symlink")
        check("can be written by its owner, uid %d" % nobody() in err,
              "no shared-directory warning:\n%s", err)
        files = regular_files(d)
        jsonl = [n for n in files if n.startswith("profilis-")]
        recs = [r for n in jsonl for r in req_records(out(n))]
        check(len(recs) == 400 and len({r["span_id"] for r in recs}) == 400,
              "%d records (%d distinct) in %d files for 400 requests", len(recs),
              len({r["span_id"] for r in recs}), len(jsonl))
        check(summary_numbers(err)["recorded"] == 400, "summary:\n%s", err)
        check(set(files) == set(jsonl) | {"stats.json", "prof.speedscope", "prof.folded"},
              "unexpected files left: %s", sorted(set(files) - set(jsonl)))
        for name in files:
            mode = stat.S_IMODE(os.stat(out(name)).st_mode)
            check(mode == 0o600, "%s has mode %o, not 0600", name, mode)
            check(os.stat(out(name)).st_uid == 0, "%s is not root's", name)
        log("    %d symlinks planted; victim intact; 400 of 400 records in %d files"
            % (2 * PLANT_AHEAD + 3, len(jsonl)))
    finally:
        shutil.rmtree(d)
        os.unlink(victim)


def timed_failure(argv, code, *needles):
    t0 = time.time()
    err = expect_failure(argv, code, *needles)
    took = time.time() - t0
    check(took < 5, "%s: failed only after %.1fs (the run was not refused up front)",
          argv, took)
    check("attached" not in err, "attached before failing:\n%s", err)
    return took


def test_exit_time_outputs_fail_before_attach():
    """--speedscope, --folded and --stats-json into a missing or read-only
    directory: refused before attach, not after a whole run at exit."""
    ro = tempfile.mkdtemp(prefix="pbpf-ro-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", ro], check=True)
    try:
        with Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
            base = ["-p", str(srv.pid), "-d", "20"]
            timed_failure(base + ["--speedscope", "/nonexistent-pbpf/p.json"], 64,
                          "--speedscope /nonexistent-pbpf/p.json: no such directory "
                          "/nonexistent-pbpf (create it first)")
            timed_failure(base + ["--folded", ro + "/f.txt"], 64,
                          "--folded %s/f.txt: directory %s is not writable: Read-only file "
                          "system" % (ro, ro))
            took = timed_failure(base + ["--stats-json", ro + "/s.json"], 64,
                                 "--stats-json %s/s.json: directory %s is not writable: "
                                 "Read-only file system" % (ro, ro))
            timed_failure(base + ["-o", ro + "/"], 64,
                          "-o %s/: the directory is not writable: Read-only file system" % ro)
        log("    refused in %.2fs with -d 20" % took)
    finally:
        subprocess.run(["umount", ro])
        os.rmdir(ro)


def test_usage_errors_for_paths_and_patterns():
    t = "{seq}-" + "x" * 300 + ".jsonl"
    d = tempfile.mkdtemp(prefix="pbpf-tpl-")
    try:
        expect_failure(["-p", "1", "-o", d + "/", "--filename-template", t], 64,
                       "--filename-template: names from", "a file name has at most 255")
        check(os.listdir(d) == [], "files left in %s: %s", d, os.listdir(d))
    finally:
        shutil.rmtree(d)
    expect_failure(["-p", "1", "--exclude-route", "re:"], 64,
                   "--exclude-route: 're:' has an empty regular expression, which matches "
                   "every path")
    expect_failure(["-p", "1", "--file-mode", "0755"], 64, "--file-mode: '0755'")


def test_fifo_without_a_reader_is_announced_then_used():
    d = tempfile.mkdtemp(prefix="pbpf-fifo-")
    fifo = os.path.join(d, "records")
    os.mkfifo(fifo)
    got = []
    try:
        with Server("gunicorn", python=DEBIAN_PY, workers=2) as srv:
            prof = Profiler(srv.pid, ["-o", fifo], ready=False)
            try:
                prof.wait_stderr("waiting for a reader on FIFO %s" % fifo, timeout=10)
                time.sleep(0.5)
                check(prof.proc.poll() is None, "exited instead of waiting:\n%s", prof.stderr())
                check("attached" not in prof.stderr(), "attached before a reader came")

                def reader():
                    with open(fifo, "rb") as f:
                        got.append(f.read())
                t = threading.Thread(target=reader)
                t.start()
                prof.wait_stderr("attached to PID", 30)
                run_parallel(lambda i: http(srv.url("/users/%d" % i)), range(50))
                time.sleep(0.3)
                check(prof.stop() == 0, "exit:\n%s", prof.stderr())
                t.join(10)
            finally:
                prof.close()
        lines = got[0].decode().splitlines() if got else []
        reqs = [ln for ln in lines if '"kind":"REQ"' in ln]
        check(len(reqs) == 50, "%d of 50 records through the FIFO", len(reqs))
    finally:
        shutil.rmtree(d)


def test_file_modes_follow_file_mode_not_the_umask():
    d = tempfile.mkdtemp(prefix="pbpf-mode-")
    single = os.path.join(d, "single.jsonl")
    old = os.umask(0)
    try:
        with Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
            for mode, args in ((0o600, ["-o", single]),
                               (0o640, ["-o", d + "/rot/", "--file-mode", "0640",
                                        "--stats-json", d + "/stats.json"])):
                if "--file-mode" in args:
                    os.mkdir(d + "/rot")
                prof = Profiler(srv.pid, args)
                try:
                    run_parallel(lambda i: http(srv.url("/users/%d" % i)), range(20))
                    time.sleep(1.3)
                    check(prof.stop() == 0, "exit:\n%s", prof.stderr())
                finally:
                    prof.close()
                paths = [single] if mode == 0o600 else \
                    [d + "/stats.json"] + [d + "/rot/" + n for n in os.listdir(d + "/rot")]
                check(len(paths) >= 1 and all(os.path.exists(p) for p in paths), "%s", paths)
                for p in paths:
                    got = stat.S_IMODE(os.stat(p).st_mode)
                    check(got == mode, "%s: mode %o, expected %o (umask 0)", p, got, mode)
    finally:
        os.umask(old)
        shutil.rmtree(d)


def test_output_directory_removed_while_writing():
    """`rm -rf` of the -o directory mid-run, then the directory made again: the
    records that follow land in the new directory (they went into the deleted
    file before, silently), and the deletion is warned about and reported."""
    base = tempfile.mkdtemp(prefix="pbpf-rm-")
    d = os.path.join(base, "out")
    os.mkdir(d, 0o700)
    try:
        with Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
            prof = Profiler(srv.pid, ["-o", d])
            try:
                for i in range(20):
                    check(http(srv.url("/users/%d" % i)) == 200, "request failed")
                time.sleep(0.5)  # written to the active file
                shutil.rmtree(d)
                os.mkdir(d, 0o700)
                for i in range(30):
                    check(http(srv.url("/hello/%d" % i)) == 200, "request failed")
                time.sleep(0.5)
                check(prof.stop() == 0, "exit:\n%s", prof.stderr())
                err = prof.stderr()
                paths = []
                for name in os.listdir(d):
                    paths += [r["path"] for r in req_records(os.path.join(d, name))]
                check(sorted(paths) == sorted("/hello/%d" % i for i in range(30)),
                      "records in the new directory: %s\n%s", paths, err)
                check("was deleted by someone else" in err and
                      "1 JSONL files were deleted by someone else" in err,
                      "the deletion was not reported:\n%s", err)
                check(summary_numbers(err)["recorded"] == 50, "summary:\n%s", err)
            finally:
                prof.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


TESTS = [test_planted_symlinks_in_a_user_owned_directory, test_output_directory_removed_while_writing, test_exit_time_outputs_fail_before_attach,
         test_usage_errors_for_paths_and_patterns, test_fifo_without_a_reader_is_announced_then_used,
         test_file_modes_follow_file_mode_not_the_umask]
