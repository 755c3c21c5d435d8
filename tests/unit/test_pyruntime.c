// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Per-target offsets (src/python/pyruntime.c) against live pyenv interpreters of
 * 3.9-3.13 and the _Py_DebugOffsets images of live 3.13, 3.14 and 3.15
 * interpreters (tests/unit/data).  Oracles: the table itself (measured by gdb
 * on each build's DWARF, re-checked by tools/gen-offsets --check) for what
 * the images must agree with, and gdb attached to the same process for the
 * address of the GIL holder's word.  Garbage, truncated or foreign images
 * must be refused, never half-applied; free-threaded builds, pre-releases
 * and unknown versions are refused by name.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pyinspect.h"
#include "pyoffsets.h"
#include "pyruntime.h"
#include "target.h"

#define PYENV "/root/.pyenv/versions/"

static const char *const pythons[] = {
	PYENV "3.9.18/bin/python3.9",  PYENV "3.10.13/bin/python3.10",
	PYENV "3.11.7/bin/python3.11", PYENV "3.12.1/bin/python3.12",
	PYENV "3.13.0/bin/python3.13",
};

static pid_t start_python_code(const char *python, const char *code);

/* A sleeping interpreter, initialized (it printed) before we look. */
static pid_t start_python(const char *python)
{
	return start_python_code(python, "import sys, time; print('up', flush=True); "
					 "time.sleep(60)");
}

static pid_t start_python_code(const char *python, const char *code)
{
	char buf[8];
	pid_t parent = getpid(), pid;
	ssize_t n = 0, r;
	int p[2];

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		execl(python, python, "-c", code, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (n < 3 && ((r = read(p[0], buf + n, 3 - n)) > 0 || (r < 0 && errno == EINTR)))
		n += r > 0 ? r : 0;
	cr_assert_eq(n, 3, "%s did not start: %s", python, strerror(errno));
	close(p[0]);
	return pid;
}

static void stop_python(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* gdb's value of a C expression in the live process (debug builds). */
static uint64_t gdb_eval(pid_t pid, const char *expr)
{
	char cmd[512], line[512];
	unsigned long long v = 0;
	int found = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "gdb -q -batch -nx -p %d -ex 'p/x (unsigned long)(%s)' 2>/dev/null", pid, expr);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		found |= sscanf(line, "$1 = 0x%llx", &v) == 1;
	pclose(f);
	cr_assert(found, "gdb could not evaluate %s", expr);
	return v;
}

static void resolve(pid_t pid, struct target *t, struct pbpf_py_offsets *off)
{
	char msg[512];

	cr_assert_eq(target_resolve(pid, t, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(pyruntime_offsets(t, off, msg, sizeof(msg)), 0, "%s", msg);
}

Test(pyruntime, gil_holder_word_matches_gdb, .timeout = 120)
{
	for (size_t i = 0; i < sizeof(pythons) / sizeof(pythons[0]); i++) {
		pid_t pid = start_python(pythons[i]);
		struct pbpf_py_offsets off;
		struct target t;

		resolve(pid, &t, &off);
		cr_assert_eq(off.runtime_addr, t.runtime_addr);
		cr_assert_eq(off.none_addr, t.none_addr);
		if (t.py_minor <= 11) {
			cr_assert_eq(off.holder_addr,
				     gdb_eval(pid, "&_PyRuntime.gilstate.tstate_current"), "%s",
				     pythons[i]);
			cr_assert_eq(off.holder_locked_addr, 0);
		} else {
			cr_assert_eq(
				off.holder_addr,
				gdb_eval(pid,
					 "&_PyRuntime.interpreters.main->ceval.gil->last_holder"),
				"%s", pythons[i]);
			cr_assert_eq(off.holder_locked_addr,
				     gdb_eval(pid,
					      "&_PyRuntime.interpreters.main->ceval.gil->locked"),
				     "%s", pythons[i]);
		}
		stop_python(pid);
	}
}

/* A sub-interpreter (mod_wsgi makes them) goes to the head of the list; the
 * GIL found must still be the main interpreter's.  3.13 finds it by id. */
Test(pyruntime, sub_interpreter_does_not_hide_the_main_one, .timeout = 60)
{
	static const char *const code[] = {
		"import _xxsubinterpreters as I, time; x = I.create(); print('up', flush=True); "
		"time.sleep(60)",
		"import _interpreters as I, time; x = I.create(); print('up', flush=True); "
		"time.sleep(60)",
	};

	for (int i = 0; i < 2; i++) {
		pid_t pid = start_python_code(pythons[3 + i], code[i]);
		struct pbpf_py_offsets off;
		struct target t;

		resolve(pid, &t, &off);
		cr_assert_neq(gdb_eval(pid, "_PyRuntime.interpreters.head"),
			      gdb_eval(pid, "_PyRuntime.interpreters.main"),
			      "the sub-interpreter should head the list");
		cr_assert_eq(off.holder_addr,
			     gdb_eval(pid, "&_PyRuntime.interpreters.main->ceval.gil->last_holder"),
			     "%s", pythons[3 + i]);
		stop_python(pid);
	}
}

/* The first bytes of a live 3.13.0's _PyRuntime: its _Py_DebugOffsets. */
static void image_313(uint8_t *img)
{
	pid_t pid = start_python(pythons[4]);
	struct target t;
	char msg[256];

	cr_assert_eq(target_resolve(pid, &t, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(pyinspect_read(pid, t.runtime_addr, img, pydebug_size(3, 13)), 0);
	stop_python(pid);
}

/* A _Py_DebugOffsets image read from a running interpreter (tests/unit/data,
 * found from __FILE__ or from the binary in .output/, like the golden
 * frames): 3.13.0 from pyenv, 3.14.10, 3.14.10d (Debian's debug build) and
 * 3.15.2 from Debian sid's, each the first bytes of its live _PyRuntime
 * (read through /proc/PID/mem at the address nm gives for _PyRuntime). */
static size_t load_image(const char *name, uint8_t *img, size_t cap)
{
	char src[PATH_MAX], exe[PATH_MAX], path[PATH_MAX];
	size_t n = 0;
	ssize_t len;
	FILE *f;

	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(path, sizeof(path), "%s/data/%s", dirname(src), name);
	if (access(path, R_OK) != 0 &&
	    (len = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[len] = 0;
		snprintf(path, sizeof(path), "%s/../tests/unit/data/%s", dirname(exe), name);
	}
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
	n = fread(img, 1, cap, f);
	fclose(f);
	return n;
}

static void put64(uint8_t *img, size_t at, uint64_t v)
{
	memcpy(img + at, &v, 8);
}

struct image_case {
	const char *file;
	unsigned int minor;
	size_t size; /* sizeof(_Py_DebugOffsets), from gdb's ptype /o */
	uint64_t version;
};

static const struct image_case images[] = {
	{ "pydebug-3.13.0.bin", 13, 584, 0x030d00f0 },
	{ "pydebug-3.14.10.bin", 14, 760, 0x030e0af0 },
	{ "pydebug-3.14.10d.bin", 14, 760, 0x030e0af0 },
	{ "pydebug-3.15.2.bin", 15, 888, 0x030f02f0 },
};

/* Everything an interpreter's _Py_DebugOffsets covers must equal what gdb
 * measured on the DWARF of that build (3.14.10d: of the release build, whose
 * layouts the debug build shares): two independent sources agree, so the
 * overlay changes nothing on the builds the table was measured on. */
Test(pyruntime, debug_offsets_agree_with_the_table)
{
	for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
		const struct py_version_offsets *row = pyoffsets_find(3, images[i].minor);
		struct pbpf_py_offsets off = row->off;
		struct py_version_rules rules = row->rules;
		uint8_t img[PYDEBUG_MAX_SIZE + 8];
		uint64_t version;
		char msg[256] = "";

		cr_assert_eq(load_image(images[i].file, img, sizeof(img)), images[i].size, "%s",
			     images[i].file);
		cr_assert_eq(pydebug_size(3, images[i].minor), images[i].size);
		cr_assert_eq(memcmp(img, "xdebugpy", 8), 0);
		memcpy(&version, img + 8, 8);
		cr_assert_eq(version, images[i].version, "%s: %#lx", images[i].file,
			     (unsigned long)version);
		cr_assert_eq(pydebug_overlay(img, images[i].size, 3, images[i].minor, &off, &rules,
					     msg, sizeof(msg)),
			     0, "%s: %s", images[i].file, msg);
		/* The debug offsets do not name interpreters.main: the main
		 * interpreter is then found by id on the list. */
		cr_assert_eq(off.runtime_interp_main, PBPF_NONE);
		off.runtime_interp_main = row->off.runtime_interp_main;
		cr_assert_eq(memcmp(&off, &row->off, sizeof(off)), 0,
			     "%s: an offset it publishes differs from the gdb table",
			     images[i].file);
		cr_assert_eq(memcmp(&rules, &row->rules, sizeof(rules)), 0, "%s", images[i].file);
	}
}

/* The image in tests/unit/data is what a running 3.13.0 holds now. */
Test(pyruntime, py313_image_is_the_live_one)
{
	uint8_t live[PYDEBUG_MAX_SIZE], saved[PYDEBUG_MAX_SIZE];

	image_313(live);
	cr_assert_eq(load_image("pydebug-3.13.0.bin", saved, sizeof(saved)), 584);
	cr_assert_eq(memcmp(live, saved, 584), 0);
}

/* The overlay must refuse `img` and leave the row untouched; `want` is in
 * the message. */
static void refused(const uint8_t *img, size_t len, unsigned int minor, int err, const char *want)
{
	const struct py_version_offsets *row = pyoffsets_find(3, minor < 16 ? minor : 15);
	struct pbpf_py_offsets off = row->off;
	struct py_version_rules rules = row->rules;
	char msg[256] = "";

	cr_assert_eq(pydebug_overlay(img, len, 3, minor, &off, &rules, msg, sizeof(msg)), err,
		     "3.%u: %s", minor, msg);
	cr_assert(strstr(msg, want), "3.%u: \"%s\" lacks \"%s\"", minor, msg, want);
	cr_assert_eq(memcmp(&off, &row->off, sizeof(off)), 0, "a refused image changed offsets");
	cr_assert_eq(memcmp(&rules, &row->rules, sizeof(rules)), 0);
}

/* Each good image, altered one way at a time. */
Test(pyruntime, bad_debug_offsets_are_refused_untouched)
{
	/* interpreter_state.gil_runtime_state_holder, thread_state.current_frame
	 * (gdb's ptype /o struct _Py_DebugOffsets of each build) */
	static const struct {
		size_t gil_holder, tstate_frame;
	} at[] = { { 144, 184 }, { 152, 208 }, { 152, 208 }, { 152, 208 } };

	for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
		uint8_t good[PYDEBUG_MAX_SIZE], bad[PYDEBUG_MAX_SIZE];
		unsigned int minor = images[i].minor;
		size_t n = images[i].size;

		load_image(images[i].file, good, sizeof(good));
		memcpy(bad, good, n);
		bad[0] = 'X';
		refused(bad, n, minor, -EINVAL, "no _Py_DebugOffsets");
		/* another minor version's interpreter */
		refused(good, n, minor == 15 ? 14 : minor + 1, -EINVAL, "_Py_DebugOffsets says");
		/* an absurd offset (thread_state.current_frame) */
		memcpy(bad, good, n);
		put64(bad, at[i].tstate_frame, 1ULL << 40);
		refused(bad, n, minor, -EINVAL, "do not read as the");
		/* GIL fields that do not lie inside the GIL struct */
		memcpy(bad, good, n);
		put64(bad, at[i].gil_holder, 8);
		refused(bad, n, minor, -EINVAL, "do not read as the");
		/* short, tiny, empty, NULL; all zero: no cookie */
		refused(good, n - 1, minor, -EINVAL, "do not read as the");
		refused(good, 23, minor, -EINVAL, "no _Py_DebugOffsets");
		refused(good, 0, minor, -EINVAL, "no _Py_DebugOffsets");
		refused(NULL, n, minor, -EINVAL, "no _Py_DebugOffsets");
		memset(bad, 0, n);
		refused(bad, n, minor, -EINVAL, "no _Py_DebugOffsets");
	}
}

/* One version's image read in another's layout, as if a patch release had
 * moved them: the version word is relabelled, the rest is the other
 * version's.  Each must be caught by the layout checks. */
Test(pyruntime, foreign_layout_is_refused)
{
	static const struct {
		const char *file;
		unsigned int as_minor;
		uint64_t as_version;
	} cases[] = {
		{ "pydebug-3.13.0.bin", 14, 0x030e0af0 },
		{ "pydebug-3.13.0.bin", 15, 0x030f02f0 },
		{ "pydebug-3.14.10.bin", 13, 0x030d00f0 },
		{ "pydebug-3.14.10.bin", 15, 0x030f02f0 },
		{ "pydebug-3.15.2.bin", 13, 0x030d00f0 },
		{ "pydebug-3.15.2.bin", 14, 0x030e0af0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t img[PYDEBUG_MAX_SIZE];
		/* The bytes after a shorter image are whatever _PyRuntime holds
		 * next: the other tests' zeros would be refused as absurd for the
		 * wrong reason, so repeat the image instead. */
		size_t n = load_image(cases[i].file, img, sizeof(img));

		for (size_t j = n; j < sizeof(img); j++)
			img[j] = img[24 + (j - n) % (n - 24)];
		put64(img, 8, cases[i].as_version);
		refused(img, sizeof(img), cases[i].as_minor, -EINVAL, "do not read as the");
	}
}

/* Builds refused by name, with the remedy or the supported versions. */
Test(pyruntime, refused_builds_are_named)
{
	uint8_t img[PYDEBUG_MAX_SIZE];
	size_t n;

	n = load_image("pydebug-3.14.10.bin", img, sizeof(img));
	put64(img, 16, 1);
	refused(img, n, 14, -ENOTSUP, "CPython 3.14.10 is a free-threaded build (3.14t)");
	n = load_image("pydebug-3.15.2.bin", img, sizeof(img));
	put64(img, 8, 0x030f00b2);
	refused(img, n, 15, -ENOTSUP,
		"CPython 3.15.0b2 is a pre-release, whose _Py_DebugOffsets layout is not "
		"verified; supported: final releases of CPython 3.13, 3.14, 3.15");
	put64(img, 8, 0x030f02c1);
	refused(img, n, 15, -ENOTSUP, "CPython 3.15.2rc1 is a pre-release");
	put64(img, 8, 0x031000f0);
	refused(img, n, 16, -ENOTSUP,
		"CPython 3.16.0 has no known _Py_DebugOffsets layout; supported: CPython "
		"3.13, 3.14, 3.15");
}

Test(pyruntime, frame_window_covers_the_sampled_fields)
{
	/* 3.9: f_lasti at 104; 3.10: f_lasti at 96; 3.11: owner at 69;
	 * 3.12/3.13: owner at 70 (DESIGN.md section 4, gdb); 3.14/3.15: owner
	 * at 74 (gdb on Debian's DWARF). */
	static const uint32_t want[] = { 112, 104, 80, 80, 80, 88, 88 };
	struct pbpf_py_offsets o;

	for (unsigned int minor = 9; minor <= 15; minor++)
		cr_assert_eq(pyruntime_frame_window(&pyoffsets_find(3, minor)->off),
			     want[minor - 9], "3.%u", minor);
	o = pyoffsets_find(3, 11)->off;
	o.frame_prev_instr = 121;
	cr_assert_eq(pyruntime_frame_window(&o), 0, "past 128 bytes must be refused");
	o.frame_prev_instr = 120;
	cr_assert_eq(pyruntime_frame_window(&o), 128);
}

Test(pyruntime, unsupported_version_names_the_supported_ones)
{
	struct target t = { .pid = 4242, .py_major = 3, .py_minor = 8 };
	struct pbpf_py_offsets off;
	char msg[512];

	strcpy(t.comm, "python3.8");
	strcpy(t.py_version, "3.8");
	strcpy(t.interp, "/usr/lib/libpython3.8.so.1.0");
	cr_assert_eq(pyruntime_offsets(&t, &off, msg, sizeof(msg)), -ENOTSUP);
	cr_assert(strstr(msg, "CPython 3.8") && strstr(msg, "not supported") &&
			  strstr(msg, "supported: CPython 3.9, 3.10, 3.11, 3.12, 3.13, 3.14, 3.15"),
		  "%s", msg);
}

Test(pyruntime, process_gone_is_an_error_not_garbage)
{
	pid_t pid = start_python(pythons[3]);
	struct pbpf_py_offsets off;
	struct target t;
	char msg[512];

	cr_assert_eq(target_resolve(pid, &t, msg, sizeof(msg)), 0, "%s", msg);
	stop_python(pid);
	cr_assert_eq(pyruntime_offsets(&t, &off, msg, sizeof(msg)), -EFAULT);
	cr_assert(strstr(msg, "cannot read the interpreter state"), "%s", msg);
}
