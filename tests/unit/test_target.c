// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Target resolution.  The pure parts (load bias, Py_Version decoding) get
 * table cases; the process tree and liveness use real forked children; and
 * target_resolve runs against real interpreters started here: Debian's static
 * python3.11 and pyenv's shared-libpython 3.11.7.  Expected addresses come
 * from outside the code under test: the child prints id(None) (the address of
 * _Py_NoneStruct) and &_PyRuntime via ctypes, and file offsets come from nm
 * and readelf.  Children die with the test (PR_SET_PDEATHSIG and .fini).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/stat.h>
#include "oracle.h"
#include "target.h"

#define NO_PID 4194300

static pid_t kids[8];
static int nkids;

static void reap_all(void)
{
	for (int i = 0; i < nkids; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	nkids = 0;
}

/* Forks a child that dies with us; `body` NULL means exec argv. Its stdout is
 * a pipe whose read end is returned in *out (when out is not NULL). */
static pid_t spawn(char *const argv[], void (*body)(int wfd), int *out)
{
	int p[2];
	pid_t pid;

	pid_t parent = getpid();

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* the test died before prctl */
			_exit(1);
		close(p[0]);
		if (body) {
			body(p[1]);
			_exit(0);
		}
		dup2(p[1], STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	kids[nkids++] = pid;
	close(p[1]);
	if (out)
		*out = p[0];
	else
		close(p[0]);
	return pid;
}

static void read_line(int fd, char *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t n = 0;

	while (n + 1 < len) {
		cr_assert_eq(poll(&pfd, 1, 10000), 1, "child printed nothing in 10 s");
		cr_assert_eq(read(fd, buf + n, 1), 1, "child closed its stdout");
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = 0;
}

TestSuite(target, .fini = reap_all, .timeout = 30);

Test(target, load_bias)
{
	/* Debian's non-PIE executable: linked at 0x400000, mapped there. */
	cr_assert_eq(target_load_bias(0x400000, 0, 0x400000, 0), 0);
	/* A shared library linked at 0. */
	cr_assert_eq(target_load_bias(0x7f0000000000ULL, 0, 0, 0), 0x7f0000000000ULL);
	/* libpython's text mapping: offset 0xf5000 in the segment at vaddr 0xf5000. */
	cr_assert_eq(target_load_bias(0x7f00000f5000ULL, 0xf5000, 0xf5000, 0xf5000),
		     0x7f0000000000ULL);
	/* The RW segment: vaddr 0x415ed0, offset 0x414ed0, mapped from page 0x414000. */
	cr_assert_eq(target_load_bias(0x7f0000415000ULL, 0x414000, 0x415ed0, 0x414ed0),
		     0x7f0000000000ULL);
	/* A PIE executable whose first segment is linked at 0x1000 offset 0x1000. */
	cr_assert_eq(target_load_bias(0x55d0c0a01000ULL, 0x1000, 0x1000, 0x1000),
		     0x55d0c0a00000ULL);
}

Test(target, decode_version)
{
	static const struct {
		uint32_t hex;
		unsigned int ma, mi, mc;
	} cases[] = { { 0x030B02F0, 3, 11, 2 },
		      { 0x030B07F0, 3, 11, 7 },
		      { 0x030C00A1, 3, 12, 0 },
		      { 0x02070FF0, 2, 7, 15 } };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned int ma, mi, mc;

		target_decode_version(cases[i].hex, &ma, &mi, &mc);
		cr_assert(ma == cases[i].ma && mi == cases[i].mi && mc == cases[i].mc,
			  "%#x -> %u.%u.%u", cases[i].hex, ma, mi, mc);
	}
}

static void sleeper(int wfd)
{
	pause();
}

static void parent_of_one(int wfd)
{
	pid_t gc = fork();

	if (gc == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pause();
		_exit(0);
	}
	dprintf(wfd, "%d\n", gc);
	pause();
}

static int contains(const pid_t *v, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (v[i] == pid)
			return 1;
	return 0;
}

Test(target, process_tree)
{
	pid_t out[64], self = getpid(), c1, c2, gc;
	char line[32];
	int fd, n;

	c1 = spawn(NULL, sleeper, NULL);
	c2 = spawn(NULL, parent_of_one, &fd);
	read_line(fd, line, sizeof(line));
	gc = atoi(line);
	cr_assert_gt(gc, 0);
	n = target_process_tree(self, out, 64);
	cr_assert_eq(n, 4, "found %d", n);
	cr_assert_eq(out[0], self);
	cr_assert(contains(out, n, c1) && contains(out, n, c2) && contains(out, n, gc));
	n = target_process_tree(c2, out, 64);
	cr_assert_eq(n, 2);
	cr_assert(out[0] == c2 && out[1] == gc);
	cr_assert_eq(target_process_tree(self, out, 2), 2);
	cr_assert_eq(out[0], self);
	cr_assert_eq(target_process_tree(self, out, 0), 0);
	kill(gc, SIGKILL);
	close(fd);
}

Test(target, process_tree_skips_zombies)
{
	/* The header promises live descendants; a zombie has already exited. */
	pid_t out[8], z = fork();
	siginfo_t si;

	cr_assert_geq(z, 0);
	if (z == 0)
		_exit(0);
	kids[nkids++] = z;
	cr_assert_eq(waitid(P_PID, z, &si, WEXITED | WNOWAIT), 0); /* zombie, not reaped */
	int n = target_process_tree(getpid(), out, 8);

	cr_expect_eq(n, 1, "the zombie %d is in the tree (%d entries)", z, n);
}

Test(target, alive)
{
	pid_t c = spawn(NULL, sleeper, NULL);
	siginfo_t si;

	cr_assert_eq(target_alive(getpid()), 1);
	cr_assert_eq(target_alive(c), 1);
	kill(c, SIGKILL);
	cr_assert_eq(waitpid(c, NULL, 0), c);
	nkids = 0;
	cr_assert_eq(target_alive(c), 0, "reaped child");
	c = fork();
	cr_assert_geq(c, 0);
	if (c == 0)
		_exit(0);
	kids[nkids++] = c;
	cr_assert_eq(waitid(P_PID, c, &si, WEXITED | WNOWAIT), 0);
	cr_assert_eq(target_alive(c), 0, "zombie");
	cr_assert_neq(access("/proc/4194300", F_OK), 0, "precondition: PID %d unused", NO_PID);
	cr_assert_eq(target_alive(NO_PID), 0);
}

#define PY_SCRIPT                                                                       \
	"import ctypes, sys, threading, time\n"                                         \
	"t = threading.Thread(target=time.sleep, args=(30,), daemon=True)\n"            \
	"t.start()\n"                                                                   \
	"rt = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, '_PyRuntime'))\n" \
	"print(id(None), rt, sys.version_info.micro, t.native_id, flush=True)\n"        \
	"time.sleep(30)\n"

struct py_child {
	pid_t pid, thread;
	unsigned long long none, runtime;
	unsigned int micro;
};

static void start_python(const char *exe, struct py_child *c)
{
	char *argv[] = { (char *)exe, "-c", PY_SCRIPT, NULL }, line[256];
	int fd;

	c->pid = spawn(argv, NULL, &fd);
	read_line(fd, line, sizeof(line));
	close(fd);
	cr_assert_eq(sscanf(line, "%llu %llu %u %d", &c->none, &c->runtime, &c->micro, &c->thread),
		     4, "child said: %s", line);
}

static uint64_t file_offset(const char *path, int dynamic, const char *sym)
{
	struct oracle_seg segs[16];
	uint64_t vaddr, off;
	int n = oracle_load_segs(path, segs, 16);

	cr_assert_eq(oracle_nm(path, dynamic, sym, &vaddr), 1, "%s in %s", sym, path);
	cr_assert_eq(oracle_vaddr_to_offset(segs, n, vaddr, &off), 0);
	return off;
}

static void resolve_ok(pid_t pid, struct target *t)
{
	char msg[512] = "";
	int err = target_resolve(pid, t, msg, sizeof(msg));

	cr_assert_eq(err, 0, "target_resolve(%d) = %d: %s", pid, err, msg);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return !stat(a, &sa) && !stat(b, &sb) && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

Test(target, resolve_debian_static)
{
	struct py_child c;
	struct target t, tt;
	char host[128];
	uint64_t rt;

	start_python(DEBIAN_PY, &c);
	resolve_ok(c.pid, &t);
	cr_assert_eq(t.pid, c.pid);
	cr_assert_str_eq(t.comm, "python3.11");
	cr_assert_str_eq(t.exe, DEBIAN_PY);
	cr_assert_str_eq(t.interp, DEBIAN_PY);
	/* Opened through the mapping itself, which is the very file. */
	snprintf(host, sizeof(host), "/proc/%d/map_files/", c.pid);
	cr_assert_eq(strncmp(t.interp_host, host, strlen(host)), 0, "%s", t.interp_host);
	cr_assert(same_file(t.interp_host, DEBIAN_PY));
	cr_assert_eq(t.is_lib, 0);
	cr_assert_eq(t.is_pie, 0);
	cr_assert(t.py_major == 3 && t.py_minor == 11 && t.py_micro == c.micro, "%u.%u.%u",
		  t.py_major, t.py_minor, t.py_micro);
	cr_assert_eq(c.micro, 2, "Debian bookworm ships 3.11.2");
	cr_assert_eq(t.load_bias, 0);
	cr_assert_eq(t.set_offset, file_offset(DEBIAN_PY, 1, "PyContextVar_Set"));
	cr_assert_eq(t.reset_offset, file_offset(DEBIAN_PY, 1, "PyContextVar_Reset"));
	cr_assert_eq(t.none_addr, c.none, "id(None)");
	cr_assert_eq(t.runtime_addr, c.runtime, "&_PyRuntime");
	cr_assert_eq(oracle_nm(DEBIAN_PY, 1, "_PyRuntime", &rt), 1);
	cr_assert_eq(t.runtime_addr, rt, "non-PIE: the link-time address");
	/* A thread id resolves to its process. */
	cr_assert_neq(c.thread, c.pid);
	resolve_ok(c.thread, &tt);
	cr_assert_eq(tt.pid, c.pid);
	cr_assert_eq(tt.runtime_addr, t.runtime_addr);
	cr_assert_eq(tt.set_offset, t.set_offset);
}

/* Start of the offset-0 mapping of `suffix` in the child, read with sscanf. */
static uint64_t map_start(pid_t pid, const char *suffix)
{
	char path[64], line[1024], file[512];
	unsigned long long start, end, off;
	uint64_t found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		file[0] = 0;
		if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %511s", &start, &end, &off, file) < 3)
			continue;
		size_t n = strlen(file), m = strlen(suffix);

		if (!found && off == 0 && n >= m && strcmp(file + n - m, suffix) == 0)
			found = start;
	}
	fclose(f);
	cr_assert_neq(found, 0, "no %s mapping in PID %d", suffix, pid);
	return found;
}

Test(target, resolve_pyenv_shared)
{
	struct oracle_seg segs[16];
	struct py_child c;
	struct target t;
	uint64_t base, rt, none;
	size_t n;

	start_python(PYENV_PY, &c);
	resolve_ok(c.pid, &t);
	cr_assert_eq(t.is_lib, 1);
	cr_assert_eq(t.is_pie, 1);
	n = strlen(t.interp);
	cr_assert(n > 20 && strcmp(t.interp + n - 20, "libpython3.11.so.1.0") == 0, "%s", t.interp);
	cr_assert_str_eq(t.interp, PYENV_LIB);
	cr_assert_str_eq(t.exe, PYENV_PY);
	cr_assert(t.py_major == 3 && t.py_minor == 11 && t.py_micro == 7, "%u.%u.%u", t.py_major,
		  t.py_minor, t.py_micro);
	cr_assert_eq(c.micro, 7);
	/* maps + readelf + nm: where the library is and where its symbols are. */
	cr_assert_geq(oracle_load_segs(PYENV_LIB, segs, 16), 1);
	base = map_start(c.pid, "/libpython3.11.so.1.0") - (segs[0].vaddr - segs[0].offset);
	cr_assert_eq(t.load_bias, base);
	cr_assert_eq(oracle_nm(PYENV_LIB, 0, "_PyRuntime", &rt), 1);
	cr_assert_eq(oracle_nm(PYENV_LIB, 0, "_Py_NoneStruct", &none), 1);
	cr_assert_eq(t.runtime_addr, base + rt);
	cr_assert_eq(t.none_addr, base + none);
	cr_assert_eq(t.runtime_addr, c.runtime, "&_PyRuntime as ctypes sees it");
	cr_assert_eq(t.none_addr, c.none, "id(None)");
	cr_assert_eq(t.set_offset, file_offset(PYENV_LIB, 0, "PyContextVar_Set"));
	cr_assert_eq(t.reset_offset, file_offset(PYENV_LIB, 0, "PyContextVar_Reset"));
}

Test(target, resolve_not_python)
{
	char *argv[] = { "/usr/bin/sleep", "30", NULL }, msg[512], want[64];
	int fd;
	pid_t pid = spawn(argv, NULL, &fd);
	struct target t;

	/* The pipe's write end is inherited by sleep: wait for /proc to show it. */
	for (int i = 0; i < 1000; i++) {
		char exe[64] = "", path[64];

		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		if (readlink(path, exe, sizeof(exe) - 1) > 0 && strstr(exe, "sleep"))
			break;
		usleep(2000);
	}
	close(fd);
	cr_assert_eq(target_resolve(pid, &t, msg, sizeof(msg)), -ENOEXEC, "%s", msg);
	snprintf(want, sizeof(want), "PID %d (sleep, /usr/bin/sleep)", pid);
	cr_assert(strstr(msg, want) != NULL, "%s", msg);
	cr_assert(strstr(msg, "is not a Python process") != NULL, "%s", msg);
}

Test(target, resolve_no_process)
{
	char msg[512];
	struct target t;

	cr_assert_neq(access("/proc/4194300", F_OK), 0, "precondition: PID %d unused", NO_PID);
	cr_assert_eq(target_resolve(NO_PID, &t, msg, sizeof(msg)), -ESRCH);
	cr_assert_str_eq(msg, "no process with PID 4194300");
	cr_assert_eq(target_resolve(0, &t, msg, sizeof(msg)), -ESRCH);
	cr_assert_str_eq(msg, "no process with PID 0");
	cr_assert_eq(target_resolve(-5, &t, msg, sizeof(msg)), -ESRCH);
}
