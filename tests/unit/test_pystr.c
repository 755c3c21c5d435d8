// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Python str objects read from another process (src/python/pystr.c): the
 * header of real str objects of every kind in a live interpreter of every
 * supported version, read the way the symbolizer and --list read them, and
 * the refusal of what has no code units after its header (a str subclass
 * instance, which CPython keeps in the legacy, non-compact layout).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pyinspect.h"
#include "pystr.h"
#include "pyversions.h"

TestSuite(pystr, .timeout = 60);

/* Prints id() of each str, then waits to be read and killed. */
static const char child_py[] =
	"import sys, time\n"
	"class S(str): pass\n"
	"keep = ['ascii', 'caf\\xe9', '\\u03bb-kind2', '\\U00020000-kind4',\n"
	"        S('subclass')]\n"
	"print(*[id(s) for s in keep], flush=True)\n"
	"time.sleep(60)\n";

static pid_t start_child(const char *python, uint64_t ids[5])
{
	char line[512];
	int p[2];
	pid_t pid;
	FILE *f;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		execl(python, python, "-c", child_py, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	cr_assert(f && fgets(line, sizeof(line), f), "%s printed nothing", python);
	cr_assert_eq(sscanf(line, "%lu %lu %lu %lu %lu", &ids[0], &ids[1], &ids[2], &ids[3],
			    &ids[4]),
		     5, "%s", line);
	fclose(f);
	return pid;
}

/* What the symbolizer does: the header, then the code units it points at. */
static int read_str(pid_t pid, const struct pbpf_py_offsets *o, uint64_t addr,
		    struct pystr_shape *sh, char *out, size_t len)
{
	uint8_t hdr[64], data[64];
	struct pbpf_str_hdr h;
	int err;

	cr_assert_eq(pyinspect_read(pid, addr, hdr, sizeof(hdr)), 0);
	if ((err = pystr_shape(o, hdr, sh)))
		return err;
	cr_assert_leq(sh->len * sh->kind, sizeof(data));
	cr_assert_eq(pyinspect_read(pid, addr + sh->data, data, sh->len * sh->kind), 0);
	h = (struct pbpf_str_hdr){ .len = sh->len, .copied = sh->len * sh->kind, .kind = sh->kind };
	pystr_to_utf8(&h, (const char *)data, h.copied, false, out, len);
	return 0;
}

static void shapes(const struct pyver *v)
{
	static const char *const want[] = { "ascii", "caf\xc3\xa9", "\xce\xbb-kind2",
					    "\xf0\xa0\x80\x80-kind4" };
	static const unsigned int kinds[] = { 1, 1, 2, 4 }, lens[] = { 5, 4, 7, 7 };
	const struct pbpf_py_offsets *o = offsets_of(v->minor);
	struct pystr_shape sh;
	uint64_t ids[5];
	char text[128];
	pid_t pid = start_child(v->python, ids);

	for (int i = 0; i < 4; i++) {
		cr_assert_eq(read_str(pid, o, ids[i], &sh, text, sizeof(text)), 0, "%s", want[i]);
		cr_assert_eq(sh.kind, kinds[i], "%s", want[i]);
		cr_assert_eq(sh.len, lens[i], "%s", want[i]);
		cr_assert_eq(sh.ascii, i == 0, "%s", want[i]);
		cr_assert_eq(sh.data, i == 0 ? o->str_ascii_data : o->str_compact_data);
		cr_assert_str_eq(text, want[i]);
	}
	cr_assert_eq(read_str(pid, o, ids[4], &sh, text, sizeof(text)), -EINVAL,
		     "a str subclass is not compact: its text is elsewhere");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

FOR_EACH_VERSION(pystr, shapes)
