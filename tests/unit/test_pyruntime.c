// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Per-target offsets (src/python/pyruntime.c) against live pyenv interpreters of
 * every supported version.  Oracles: the table itself (measured by gdb on the
 * debug builds, re-checked by tools/gen-offsets --check) for what 3.13's
 * _Py_DebugOffsets must agree with, and gdb attached to the same process for
 * the address of the GIL holder's word.  Garbage debug-offset images must be
 * refused, never half-applied.
 */
#include <criterion/criterion.h>
#include <errno.h>
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
	cr_assert_eq(pyinspect_read(pid, t.runtime_addr, img, PYDEBUG_313_SIZE), 0);
	stop_python(pid);
}

/* Everything 3.13's _Py_DebugOffsets covers must equal what gdb measured on
 * the debug build: the overlay changes nothing for 3.13.0. */
Test(pyruntime, py313_debug_offsets_agree_with_the_table)
{
	const struct pbpf_py_offsets *row = &pyoffsets_find(3, 13)->off;
	uint8_t img[PYDEBUG_313_SIZE];
	struct pbpf_py_offsets off = *row;

	image_313(img);
	cr_assert_eq(pydebug_overlay_313(img, sizeof(img), 3, 13, &off), 0);
	/* The debug offsets do not name interpreters.main: the main interpreter
	 * is then found by id on the list. */
	cr_assert_eq(off.runtime_interp_main, PBPF_NONE);
	off.runtime_interp_main = row->runtime_interp_main;
	cr_assert_eq(memcmp(&off, row, sizeof(off)), 0,
		     "an offset published by 3.13.0 differs from the gdb table");
}

Test(pyruntime, bad_debug_offsets_are_refused_untouched)
{
	uint8_t good[PYDEBUG_313_SIZE], bad[PYDEBUG_313_SIZE];
	const struct pbpf_py_offsets *row = &pyoffsets_find(3, 13)->off;
	struct pbpf_py_offsets off;
	uint64_t v;

	image_313(good);
	/* wrong cookie */
	memcpy(bad, good, sizeof(bad));
	bad[0] = 'X';
	off = *row;
	cr_assert_eq(pydebug_overlay_313(bad, sizeof(bad), 3, 13, &off), -EINVAL);
	cr_assert_eq(memcmp(&off, row, sizeof(off)), 0);
	/* another minor version (3.14 has a different layout) */
	cr_assert_eq(pydebug_overlay_313(good, sizeof(good), 3, 14, &off), -EINVAL);
	/* a free-threaded build */
	memcpy(bad, good, sizeof(bad));
	v = 1;
	memcpy(bad + 16, &v, 8);
	cr_assert_eq(pydebug_overlay_313(bad, sizeof(bad), 3, 13, &off), -EINVAL);
	/* an absurd offset anywhere (here thread_state.current_frame) */
	memcpy(bad, good, sizeof(bad));
	v = 1ULL << 40;
	memcpy(bad + 184, &v, 8);
	cr_assert_eq(pydebug_overlay_313(bad, sizeof(bad), 3, 13, &off), -EINVAL);
	/* GIL fields that do not lie inside the GIL struct */
	memcpy(bad, good, sizeof(bad));
	v = 8;
	memcpy(bad + 144, &v, 8);
	cr_assert_eq(pydebug_overlay_313(bad, sizeof(bad), 3, 13, &off), -EINVAL);
	/* short, empty, NULL */
	cr_assert_eq(pydebug_overlay_313(good, sizeof(good) - 1, 3, 13, &off), -EINVAL);
	cr_assert_eq(pydebug_overlay_313(good, 0, 3, 13, &off), -EINVAL);
	cr_assert_eq(pydebug_overlay_313(NULL, sizeof(good), 3, 13, &off), -EINVAL);
	cr_assert_eq(memcmp(&off, row, sizeof(off)), 0, "a refused image changed offsets");
	/* all zero: no cookie */
	memset(bad, 0, sizeof(bad));
	cr_assert_eq(pydebug_overlay_313(bad, sizeof(bad), 3, 13, &off), -EINVAL);
}

Test(pyruntime, frame_window_covers_the_sampled_fields)
{
	/* 3.9: f_lasti at 104; 3.10: f_lasti at 96; 3.11: owner at 69;
	 * 3.12/3.13: owner at 70 (DESIGN.md section 4, gdb). */
	static const uint32_t want[] = { 112, 104, 80, 80, 80 };
	struct pbpf_py_offsets o;

	for (unsigned int minor = 9; minor <= 13; minor++)
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
			  strstr(msg, "supported: CPython 3.9, 3.10, 3.11, 3.12, 3.13"),
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
