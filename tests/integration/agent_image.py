# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""deploy/Dockerfile's image, built without docker (issue 13): this machine has
no container engine, so the tests interpret the Dockerfile themselves.  Each
stage starts from the root file system tools/rootfs caches for it ("agent-build",
"agent": debootstrap --variant=minbase of the stage's Debian suite plus the
packages of its apt-get install, both read from the Dockerfile), copied; the
stage's remaining instructions then run for real: COPY from the build context
(minus Dockerfile.dockerignore) or from the build stage, WORKDIR, and RUN as
/bin/sh -c in a chroot with its own /proc (in a private mount namespace, so
nothing stays mounted).  The result is the runtime stage's root file system
with the binary the build stage compiled, and its ENTRYPOINT.  An instruction
this interpreter does not know fails the build: it never silently differs from
what docker would do."""
import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import tempfile

from containers import ensure_rootfs
from harness import ROOT, TestFailure, check

DOCKERFILE = os.path.join(ROOT, "deploy", "Dockerfile")
IGNORE = DOCKERFILE + ".dockerignore"
WORK_DIR = "/var/tmp"
WORK_PREFIX = "profilis-agent-image-"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Stage:
    def __init__(self, image, name):
        self.image = image
        self.name = name
        self.steps = []  # (INSTRUCTION, argument text)


def parse(path=DOCKERFILE):
    """The stages of a Dockerfile, continuation lines joined, comments out."""
    stages = []
    logical = ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.lstrip().startswith("#") or (not line.strip() and not logical):
                continue
            if line.endswith("\\"):
                logical += line[:-1] + " "
                continue
            logical += line
            word, _, rest = logical.strip().partition(" ")
            logical = ""
            if word.upper() == "FROM":
                args = rest.split()
                name = args[2] if len(args) == 3 and args[1].lower() == "as" else None
                stages.append(Stage(args[0], name))
            else:
                check(stages, "%s: %s before FROM", path, word)
                stages[-1].steps.append((word.upper(), " ".join(rest.split())))
    check(len(stages) >= 2, "%s: expected a build and a runtime stage, found %d",
          path, len(stages))
    return stages


def apt_packages(stage):
    """The packages of the stage's apt-get install, in order."""
    for instr, text in stage.steps:
        words = text.split()
        if instr == "RUN" and "install" in words:
            i = words.index("install")
            if words[i - 1] == "apt-get":
                pkgs = []
                for w in words[i + 1:]:
                    if w == "&&":
                        break
                    if not w.startswith("-"):
                        pkgs.append(w)
                return pkgs
    raise TestFailure("%s: stage %s has no apt-get install" % (DOCKERFILE, stage.image))


def ldd_packages(binary):
    """The Debian packages of the shared libraries `ldd binary` resolves to on
    this (bookworm) host; fails on a library ldd cannot find or dpkg does not
    know."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    pkgs = set()
    for line in out.splitlines():
        parts = line.split()
        if "=>" not in parts:
            continue  # the vDSO and the dynamic loader itself
        lib = parts[parts.index("=>") + 1]
        check(lib.startswith("/"), "ldd %s: %s", binary, line.strip())
        pkgs.add(owner(lib))
    return pkgs


def needed_packages(binary):
    """The Debian packages of the shared libraries `binary` itself links
    (its DT_NEEDED entries, resolved where ldd resolves them): what a
    Dockerfile installs, apt bringing their own dependencies (libcurl4 pulls
    in TLS, HTTP/2, IDN, ... libraries that ldd lists too)."""
    dyn = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                         check=True).stdout
    names = set(line.split("[", 1)[1].split("]", 1)[0] for line in dyn.splitlines()
                if "(NEEDED)" in line)
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    pkgs = set()
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and parts[0] in names:
            lib = parts[parts.index("=>") + 1]
            check(lib.startswith("/"), "ldd %s: %s", binary, line.strip())
            pkgs.add(owner(lib))
            names.discard(parts[0])
    check(not names, "ldd %s does not resolve %s", binary, sorted(names))
    return pkgs


def owner(path):
    """dpkg -S, trying the merged-/usr twin of the path dpkg may have recorded."""
    twin = path[4:] if path.startswith("/usr/") else "/usr" + path
    for p in (path, twin, os.path.realpath(path)):
        out = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0]
    raise TestFailure("no Debian package owns %s (dpkg -S)" % path)


def ignored(rel, patterns):
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p.removeprefix("**/"))
               or fnmatch.fnmatch(os.path.basename(rel), p.removeprefix("**/"))
               for p in patterns)


def ignore_patterns():
    with open(IGNORE) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


def copy_context(dest):
    """COPY . DEST: the checkout minus Dockerfile.dockerignore."""
    patterns = ignore_patterns()
    for top, dirs, files in os.walk(ROOT):
        rel_top = os.path.relpath(top, ROOT)
        dirs[:] = [d for d in dirs if not ignored(os.path.normpath(os.path.join(rel_top, d)),
                                                  patterns)]
        os.makedirs(os.path.join(dest, rel_top), exist_ok=True)
        for name in files:
            rel = os.path.normpath(os.path.join(rel_top, name))
            if not ignored(rel, patterns):
                shutil.copy2(os.path.join(ROOT, rel), os.path.join(dest, rel),
                             follow_symlinks=False)


def run_in(tree, workdir, command, log):
    """RUN: /bin/sh -c COMMAND in the tree, with a /proc of its own that
    disappears with the private mount namespace."""
    script = 'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c "cd \\"$2\\" && $3"'
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "/bin/sh",
                          "-c", script, "-", tree, workdir, command],
                         env={"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8"},
                         capture_output=True, text=True, timeout=900)
    log.append("RUN %s -> %d" % (command, out.returncode))
    check(out.returncode == 0, "Dockerfile RUN %s exited %d:\n%s", command, out.returncode,
          (out.stdout + out.stderr)[-3000:])


def inside(tree, path):
    return os.path.join(tree, path.lstrip("/"))


def sweep():
    """Removes the images of earlier runs that were SIGKILLed."""
    for name in os.listdir(WORK_DIR):
        if name.startswith(WORK_PREFIX):
            owner = name[len(WORK_PREFIX):].split("-")[0]
            if owner.isdigit() and not os.path.exists("/proc/" + owner):
                shutil.rmtree(os.path.join(WORK_DIR, name), ignore_errors=True)


class Image:
    """The runtime stage's root file system (`rootfs`), its ENTRYPOINT and CMD;
    everything lives in one directory removed by cleanup()."""

    def __init__(self, log=None):
        self.log = log if log is not None else []
        sweep()
        self.work = tempfile.mkdtemp(prefix="%s%d-" % (WORK_PREFIX, os.getpid()), dir=WORK_DIR)
        self.entrypoint = []
        self.cmd = []
        try:
            stages = parse()
            build, runtime = stages[0], stages[-1]
            self.build_root = self.stage(build, "agent-build", None)
            self.rootfs = self.stage(runtime, "agent", build)
        except BaseException:
            self.cleanup()
            raise

    def stage(self, stage, cached, build):
        """A copy of the cached base, then the instructions after its apt-get."""
        tree = os.path.join(self.work, cached)
        subprocess.run(["cp", "-a", ensure_rootfs(cached), tree], check=True)
        os.chmod(tree, 0o755)
        steps = stage.steps
        first = next(i for i, (instr, text) in enumerate(steps)
                     if instr == "RUN" and "apt-get install" in text)
        check(first == 0, "%s: stage %s has %s before its apt-get install: the cached base "
              "(tools/rootfs %s) would miss it", DOCKERFILE, stage.image, steps[:first], cached)
        workdir = "/"
        for instr, text in steps[first + 1:]:
            if instr == "WORKDIR":
                workdir = os.path.join(workdir, text)
                os.makedirs(inside(tree, workdir), exist_ok=True)
            elif instr == "COPY":
                self.copy(tree, workdir, shlex.split(text), build)
            elif instr == "RUN":
                run_in(tree, workdir, text, self.log)
            elif instr in ("ENTRYPOINT", "CMD"):
                setattr(self, instr.lower(), json.loads(text))
            else:
                raise TestFailure("%s: agent_image.py does not interpret %s; teach it"
                                  % (DOCKERFILE, instr))
        return tree

    def copy(self, tree, workdir, args, build):
        if args[0].startswith("--from="):
            check(build is not None and args[0] == "--from=" + build.name,
                  "%s: COPY %s: only --from=%s is known", DOCKERFILE, args, build and build.name)
            src, dest = inside(self.build_root, args[1]), inside(tree, args[2])
            shutil.copy2(src, dest)
            self.log.append("COPY --from=build %s %s" % (args[1], args[2]))
            return
        check(args == [".", "."], "%s: COPY %s: only 'COPY . .' is known", DOCKERFILE, args)
        copy_context(inside(tree, workdir))
        self.log.append("COPY . %s" % workdir)

    def binary(self):
        return inside(self.rootfs, self.entrypoint[0])

    def cleanup(self):
        shutil.rmtree(self.work, ignore_errors=True)
