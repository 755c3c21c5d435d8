// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The profile stage with synthetic stack events.  Their code pointers point
 * at PyCodeObjects forged in this process (qualname, file, first line and a
 * location table giving unit i the line first+i), so symbolization reads
 * real memory through process_vm_readv and the expected frames are known
 * exactly; one test uses code objects of a real pyenv 3.11.7 child instead.
 * Covered: the join of samples with their request (pending, late request,
 * pending_ns expiry), sample classes, truncation, hot-function arithmetic
 * (own/total, recursion, off-CPU time, ordering), and the three outputs
 * parsed back: folded lines, the speedscope document (cJSON) and the JSONL
 * PROFILE record; plus a seeded two-thread race of stacks and requests.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "failalloc.h"
#include "oracle.h"
#include "profile.h"
#include "pyoffsets.h"
#include "pyversions.h"

#define FIRST_LINE 10
#define UNITS 8
#define NOW 1000000000ULL

static char dir[] = "/tmp/pbpf-prof-XXXXXX";
static char out_path[300], tmp_path[320], script[300];
static pid_t child;

static void cleanup(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (strstr(dir, "XXXXXX"))
		return;
	unlink(out_path);
	unlink(tmp_path);
	unlink(script);
	rmdir(dir);
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	snprintf(tmp_path, sizeof(tmp_path), "%s/out.tmp", dir);
	snprintf(script, sizeof(script), "%s/real.py", dir);
}

TestSuite(profile, .init = setup, .fini = cleanup, .timeout = 30);

/* ---- forged code objects ---- */

static const struct pbpf_py_offsets *O;
static uint64_t fake_code_type[8];

static struct {
	char name[64], file[128];
	uint64_t addr;
} fns[64];
static int nfns;

static const struct pbpf_py_offsets *off(void)
{
	if (!O) {
		const struct py_version_offsets *v = pyoffsets_find(3, 11);

		cr_assert_not_null(v);
		O = &v->off;
	}
	return O;
}

static uint8_t *fake_str(const char *s)
{
	return pyv_fake_str(off(), s);
}

/* A code object `name` in `file`; unit i (i > 0) is on line FIRST_LINE + i. */
static uint64_t fn_in(const char *name, const char *file)
{
	const struct pbpf_py_offsets *o = off();
	int32_t first = FIRST_LINE;
	uint64_t tlen = 2 * UNITS;
	uint8_t *c, *table;

	for (int i = 0; i < nfns; i++)
		if (strcmp(fns[i].name, name) == 0 && strcmp(fns[i].file, file) == 0)
			return fns[i].addr;
	cr_assert_lt(nfns, 64);
	c = calloc(1, 1024);
	table = calloc(1, 128);
	cr_assert(c && table);
	memcpy(table + o->long_size, &tlen, 8);
	for (int i = 0; i < UNITS; i++) {
		table[o->bytes_data + 2 * i] = 0x80 | 13 << 3; /* no columns, one unit */
		table[o->bytes_data + 2 * i + 1] = i ? 2 : 0;  /* line delta +1 / 0 */
	}
	pyv_set_ptr(c, 8, fake_code_type);
	pyv_set_ptr(c, o->code_qualname, fake_str(name));
	pyv_set_ptr(c, o->code_filename, fake_str(file));
	pyv_set_ptr(c, o->code_linetable, table);
	memcpy(c + o->code_firstlineno, &first, 4);
	snprintf(fns[nfns].name, sizeof(fns[nfns].name), "%s", name);
	snprintf(fns[nfns].file, sizeof(fns[nfns].file), "%s", file);
	fns[nfns].addr = (uint64_t)(uintptr_t)c;
	return fns[nfns++].addr;
}

/* The registry of descriptors with the one layout every test event uses
 * (desc_id 0); it lives as long as the test process. */
static struct interps *one_interp(uint64_t code_type)
{
	struct interps *r = interps__new();
	struct interp_desc d;

	cr_assert_not_null(r);
	memset(&d, 0, sizeof(d));
	d.off = *off();
	d.code_type = code_type;
	cr_assert_eq(interps__add(r, &d), 0);
	return r;
}

static struct profile *new_profile(uint64_t pending_ns)
{
	struct profile_opts o = { .interps = one_interp((uint64_t)(uintptr_t)fake_code_type),
				  .pending_ns = pending_ns };
	struct profile *p = profile__new(&o);

	cr_assert_not_null(p);
	return p;
}

/* "a;b:12;c": frames root first, each "name" or "name:line" (file views.py);
 * filled innermost first as BPF does. */
static void fill_stack(struct pbpf_stack_event *e, const char *spec)
{
	char buf[4096], *save, *tok;
	uint64_t code[PBPF_STACK_MAX], instr[PBPF_STACK_MAX];
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		char *colon = strchr(tok, ':');
		int line = FIRST_LINE;

		if (colon) {
			*colon = 0;
			line = atoi(colon + 1);
		}
		cr_assert_lt(n, PBPF_STACK_MAX);
		code[n] = fn_in(tok, "/srv/app/views.py");
		instr[n] = line > FIRST_LINE ? code[n] + off()->code_code_adaptive +
						       2 * (uint64_t)(line - FIRST_LINE)
					     : 0;
		n++;
	}
	e->depth = n;
	for (int i = 0; i < n; i++) {
		e->code[i] = code[n - 1 - i];
		e->instr[i] = instr[n - 1 - i];
	}
}

static void push(struct profile *p, uint32_t kind, uint32_t tid, uint64_t req, uint8_t cls,
		 uint64_t offcpu_ns, const char *spec, uint64_t now)
{
	static struct pbpf_stack_event e;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.pid = getpid();
	e.tid = tid;
	e.req_start_ns = req;
	e.cls = cls;
	e.offcpu_ns = offcpu_ns;
	e.ts_ns = now;
	if (spec)
		fill_stack(&e, spec);
	profile__push_stack(p, &e, now);
}

static void sample(struct profile *p, uint32_t tid, uint64_t req, const char *spec)
{
	push(p, PBPF_EV_SAMPLE, tid, req, PBPF_CLASS_PYTHON, 0, spec, NOW);
}

static void blocked(struct profile *p, uint32_t tid, uint64_t req, uint64_t ns, const char *spec)
{
	push(p, PBPF_EV_OFFCPU, tid, req, PBPF_CLASS_NO_GIL, ns, spec, NOW);
}

/* ---- reading the outputs back ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The folded file's lines, sorted; returns how many. */
static int folded(struct profile *p, char **lines, int max)
{
	char buf[16384];
	FILE *f;
	int n = 0;

	cr_assert_eq(profile__write_folded(p, out_path), 0);
	cr_assert_eq(access(tmp_path, F_OK), -1, "the temporary file is renamed away");
	f = fopen(out_path, "r");
	cr_assert_not_null(f);
	while (fgets(buf, sizeof(buf), f)) {
		size_t len = strlen(buf);

		cr_assert(len > 0 && buf[len - 1] == '\n', "unterminated line: %s", buf);
		buf[len - 1] = 0;
		cr_assert_lt(n, max);
		lines[n++] = strdup(buf);
	}
	fclose(f);
	qsort(lines, n, sizeof(*lines), cmp_str);
	return n;
}

static void expect_folded(struct profile *p, const char *const *want, int nwant)
{
	char *got[256];
	const char *sorted[256];
	int n = folded(p, got, 256);

	memcpy(sorted, want, nwant * sizeof(*want));
	qsort(sorted, nwant, sizeof(*sorted), cmp_str);
	for (int i = 0; i < n && i < nwant; i++)
		cr_assert_str_eq(got[i], sorted[i], "folded line %d", i);
	cr_assert_eq(n, nwant, "%d folded lines, want %d", n, nwant);
	for (int i = 0; i < n; i++)
		free(got[i]);
}

static const struct profile_hot *hot_fn(const struct profile_hot *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(h[i].function, name) == 0)
			return &h[i];
	cr_assert_fail("no hot function %s", name);
	return NULL;
}

static cJSON *read_json(const char *path)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	size_t n;
	cJSON *j;

	cr_assert_not_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	j = cJSON_Parse(buf);
	cr_assert_not_null(j, "invalid JSON near: %.80s", cJSON_GetErrorPtr());
	return j;
}

#define A "a (views.py:10)"
#define B "b (views.py:10)"
#define C "c (views.py:10)"

/* ---- joining samples with requests ---- */

Test(profile, outside_a_request)
{
	struct profile *p = new_profile(0);
	struct profile_stats st;
	struct profile_hot h[8];
	char routes[4][300];

	sample(p, 1, 0, "a;b;c");
	profile__stats(p, &st);
	cr_assert_eq(st.samples, 1);
	cr_assert_eq(st.pending, 0);
	cr_assert_eq(st.unknown_frames, 0);
	cr_assert_eq(profile__routes(p, routes, 4), 1);
	cr_assert_str_eq(routes[0], PROF_OUTSIDE);
	cr_assert_eq(profile__hot(p, PROF_OUTSIDE, h, 8), 3);
	cr_assert_str_eq(h[0].function, "c (views.py)");
	cr_assert_eq(h[0].own_samples, 1);
	cr_assert_eq(h[0].own_pct, 100);
	expect_folded(p, (const char *[]){ PROF_OUTSIDE ";" A ";" B ";" C " 1" }, 1);
	profile__free(p);
}

Test(profile, samples_wait_for_their_request)
{
	struct profile *p = new_profile(2000000000ULL);
	struct profile_stats st;
	struct profile_hot h[8];
	char routes[8][300];

	sample(p, 7, 5000, "a;b;c");
	sample(p, 7, 5000, "a;b;c");
	sample(p, 7, 5000, "a;b;c");
	sample(p, 8, 5000, "a;b"); /* another thread's request, same start */
	sample(p, 7, 6000, "a");   /* the same thread's next request */
	blocked(p, 7, 5000, 3000000, "a;d");
	profile__stats(p, &st);
	cr_assert_eq(st.pending, 6);
	cr_assert_eq(profile__routes(p, routes, 8), 0, "nothing is attributed yet");

	profile__push_request(p, getpid(), 7, 5000, "GET", "/x");
	profile__stats(p, &st);
	cr_assert_eq(st.pending, 2);
	cr_assert_eq(profile__routes(p, routes, 8), 1);
	cr_assert_str_eq(routes[0], "GET /x");
	cr_assert_eq(profile__hot(p, "GET /x", h, 8), 4);
	cr_assert_eq(hot_fn(h, 4, "c (views.py)")->own_samples, 3);
	cr_assert_eq(hot_fn(h, 4, "a (views.py)")->total_samples, 3);
	cr_assert_eq(hot_fn(h, 4, "d (views.py)")->offcpu_own_ns, 3000000);
	/* A request of another process with the same tid and start. */
	profile__push_request(p, getpid() + 1, 8, 5000, "GET", "/other");
	profile__stats(p, &st);
	cr_assert_eq(st.pending, 2);

	/* Not yet older than pending_ns. */
	profile__tick(p, NOW + 1000000000ULL);
	profile__stats(p, &st);
	cr_assert_eq(st.pending, 2);
	profile__tick(p, NOW + 2000000001ULL);
	profile__stats(p, &st);
	cr_assert_eq(st.pending, 0);
	cr_assert_eq(profile__hot(p, PROF_UNRECORDED, h, 8), 2);
	cr_assert_eq(hot_fn(h, 2, "a (views.py)")->total_samples, 2);
	cr_assert_eq(hot_fn(h, 2, "b (views.py)")->own_samples, 1);
	/* Their request arriving late changes nothing. */
	profile__push_request(p, getpid(), 8, 5000, "GET", "/late");
	cr_assert_eq(profile__hot(p, "GET /late", h, 8), 0);
	expect_folded(p,
		      (const char *[]){ "GET /x;" A ";" B ";" C " 3",
					PROF_UNRECORDED ";" A ";" B " 1",
					PROF_UNRECORDED ";" A " 1" },
		      3);
	profile__stats(p, &st);
	cr_assert_eq(st.samples, 5);
	cr_assert_eq(st.offcpu_stacks, 1);
	cr_assert_eq(st.offcpu_ns, 3000000);
	profile__free(p);
}

/* Stacks are stamped on their own thread: a tick whose `now` was read a
 * moment before that stamp must not take the stack for overdue (the
 * unsigned difference did, and a route's samples went to "request not
 * recorded" at random: test_profile's /deep, 1 run in 5). */
Test(profile, a_stack_newer_than_the_tick_waits)
{
	struct profile *p = new_profile(2000000000ULL);
	struct profile_stats st;
	struct profile_hot h[8];

	push(p, PBPF_EV_SAMPLE, 7, 5000, PBPF_CLASS_PYTHON, 0, "a;b", NOW + 5);
	profile__tick(p, NOW);
	profile__stats(p, &st);
	cr_assert_eq(st.pending, 1, "a stack stamped after the tick's clock is not overdue");
	profile__push_request(p, getpid(), 7, 5000, "GET", "/deep");
	cr_assert_eq(profile__hot(p, "GET /deep", h, 8), 2);
	cr_assert_eq(profile__hot(p, PROF_UNRECORDED, h, 8), 0);
	profile__free(p);
}

Test(profile, default_pending_is_ten_seconds)
{
	struct profile *p = new_profile(0);
	struct profile_stats st;

	sample(p, 1, 42, "a");
	profile__tick(p, NOW + 9000000000ULL);
	profile__stats(p, &st);
	cr_assert_eq(st.pending, 1);
	profile__tick(p, NOW + 11000000000ULL);
	profile__stats(p, &st);
	cr_assert_eq(st.pending, 0);
	expect_folded(p, (const char *[]){ PROF_UNRECORDED ";" A " 1" }, 1);
	profile__free(p);
}

/* ---- classes, truncation, unreadable frames ---- */

Test(profile, sample_classes)
{
	struct profile *p = new_profile(0);
	struct profile_stats st;
	struct profile_hot h[8];
	size_t n;

	push(p, PBPF_EV_SAMPLE, 1, 0, PBPF_CLASS_NO_GIL, 0, NULL, NOW);
	push(p, PBPF_EV_SAMPLE, 2, 0, PBPF_CLASS_NO_GIL, 0, NULL, NOW);
	push(p, PBPF_EV_SAMPLE, 3, 0, PBPF_CLASS_NO_PYTHON, 0, NULL, NOW);
	push(p, PBPF_EV_SAMPLE, 4, 0, PBPF_CLASS_PYTHON, 0, NULL, NOW);
	/* Off-CPU stacks are all "without the GIL": no pseudo frame for them. */
	blocked(p, 5, 0, 7000000, "a;d");
	profile__stats(p, &st);
	cr_assert_eq(st.samples, 4);
	cr_assert_eq(st.no_gil, 2);
	cr_assert_eq(st.no_python, 1);
	cr_assert_eq(st.offcpu_stacks, 1);
	cr_assert_eq(st.offcpu_ns, 7000000);
	expect_folded(p,
		      (const char *[]){ PROF_OUTSIDE ";[no GIL] 2", PROF_OUTSIDE ";[no Python] 1",
					PROF_OUTSIDE ";[no Python frames] 1" },
		      3);
	n = profile__hot(p, PROF_OUTSIDE, h, 8);
	cr_assert_eq(n, 5);
	cr_assert_eq(hot_fn(h, n, "[no GIL]")->own_samples, 2);
	cr_assert_eq(hot_fn(h, n, "[no GIL]")->own_pct, 50);
	cr_assert_eq(hot_fn(h, n, "[no Python]")->own_pct, 25);
	cr_assert_eq(hot_fn(h, n, "d (views.py)")->offcpu_own_ns, 7000000);
	cr_assert_eq(hot_fn(h, n, "a (views.py)")->offcpu_own_ns, 0);
	profile__free(p);
}

Test(profile, truncated_stacks)
{
	struct profile *p = new_profile(0);
	struct pbpf_stack_event *e = calloc(1, sizeof(*e));
	struct profile_stats st;

	cr_assert_not_null(e);
	e->kind = PBPF_EV_SAMPLE;
	e->pid = getpid();
	e->truncated = 1;
	fill_stack(e, "a;b");
	profile__push_stack(p, e, NOW);
	profile__stats(p, &st);
	cr_assert_eq(st.truncated, 1);
	expect_folded(p, (const char *[]){ PROF_OUTSIDE ";[truncated];" A ";" B " 1" }, 1);
	free(e);
	profile__free(p);
}

/* Counts ';' in the one folded line and checks its count. */
static void expect_one_line_with_frames(struct profile *p, int frames)
{
	char *lines[4];
	int n = folded(p, lines, 4), seps = 0;

	cr_assert_eq(n, 1);
	for (const char *s = lines[0]; *s; s++)
		seps += *s == ';';
	cr_assert_eq(seps, frames, "%d frames in the folded line, want %d", seps, frames);
	cr_assert(strstr(lines[0], " 1") == lines[0] + strlen(lines[0]) - 2);
	free(lines[0]);
}

Test(profile, deepest_stacks)
{
	struct profile *p = new_profile(0);
	struct pbpf_stack_event *e = calloc(1, sizeof(*e));
	struct profile_stats st;

	cr_assert_not_null(e);
	e->kind = PBPF_EV_SAMPLE;
	e->pid = getpid();
	e->truncated = 1;
	for (int i = 0; i < PBPF_STACK_MAX; i++)
		e->code[i] = fn_in(i % 2 ? "even" : "odd", "/srv/app/deep.py");
	/* A depth beyond the array (a malformed record) is clamped. */
	e->depth = 1000;
	profile__push_stack(p, e, NOW);
	expect_one_line_with_frames(p, PBPF_STACK_MAX + 1);
	profile__stats(p, &st);
	cr_assert_eq(st.truncated, 1);
	free(e);
	profile__free(p);
}

Test(profile, malformed_no_gil_sample_with_a_full_stack)
{
	/* BPF sends no frames with a NO_GIL/NO_PYTHON sample, but a malformed
	 * record can carry both pseudo frames and PBPF_STACK_MAX real ones:
	 * 130 ids.  An overflow of the id array shows under -fsanitize=address;
	 * without it this may pass by luck. */
	struct profile *p = new_profile(0);
	struct pbpf_stack_event *e = calloc(1, sizeof(*e));

	cr_assert_not_null(e);
	e->kind = PBPF_EV_SAMPLE;
	e->pid = getpid();
	e->cls = PBPF_CLASS_NO_GIL;
	e->truncated = 1;
	e->depth = PBPF_STACK_MAX;
	for (int i = 0; i < PBPF_STACK_MAX; i++)
		e->code[i] = fn_in("f", "/srv/app/deep.py");
	profile__push_stack(p, e, NOW);
	/* [no GIL];[truncated];128 frames */
	expect_one_line_with_frames(p, PBPF_STACK_MAX + 2);
	free(e);
	profile__free(p);
}

Test(profile, unreadable_frames)
{
	struct profile *p = new_profile(0);
	struct pbpf_stack_event e = { .kind = PBPF_EV_SAMPLE, .depth = 2 };
	struct profile_stats st;
	struct profile_hot h[4];
	size_t n;

	e.pid = getpid();
	e.code[0] = 0x10; /* innermost: unmapped */
	e.code[1] = fn_in("a", "/srv/app/views.py");
	profile__push_stack(p, &e, NOW);
	profile__stats(p, &st);
	cr_assert_eq(st.unknown_frames, 1);
	n = profile__hot(p, NULL, h, 4);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(h[0].function, "<unknown> (?)");
	cr_assert_eq(h[0].own_samples, 1);
	profile__free(p);
}

/* ---- hot functions ---- */

/* GET /x: 3x a;b;c, 1x a;b (b on another line), a;d blocked 5 ms.
 * GET /r: 2x a;b;a;b (recursion). */
static struct profile *hot_fixture(void)
{
	struct profile *p = new_profile(0);

	for (int i = 0; i < 3; i++)
		sample(p, 1, 100, "a;b;c");
	sample(p, 1, 100, "a;b:12");
	blocked(p, 1, 100, 5000000, "a;d");
	profile__push_request(p, getpid(), 1, 100, "GET", "/x");
	sample(p, 2, 200, "a;b;a;b");
	sample(p, 2, 200, "a;b;a;b");
	profile__push_request(p, getpid(), 2, 200, "GET", "/r");
	return p;
}

Test(profile, hot_functions_of_a_route)
{
	struct profile *p = hot_fixture();
	struct profile_hot h[8];
	const struct profile_hot *a, *b, *c, *d;
	size_t n = profile__hot(p, "GET /x", h, 8);

	cr_assert_eq(n, 4);
	a = hot_fn(h, n, "a (views.py)");
	b = hot_fn(h, n, "b (views.py)"); /* lines 10 and 12: one function */
	c = hot_fn(h, n, "c (views.py)");
	d = hot_fn(h, n, "d (views.py)");
	cr_assert(c->own_samples == 3 && c->total_samples == 3);
	cr_assert(c->own_pct == 75 && c->total_pct == 75);
	cr_assert(b->own_samples == 1 && b->total_samples == 4);
	cr_assert(b->own_pct == 25 && b->total_pct == 100);
	cr_assert(a->own_samples == 0 && a->total_samples == 4 && a->total_pct == 100);
	cr_assert(d->own_samples == 0 && d->total_samples == 0 && d->total_pct == 0);
	cr_assert(d->offcpu_ns == 5000000 && d->offcpu_own_ns == 5000000);
	cr_assert(a->offcpu_ns == 5000000 && a->offcpu_own_ns == 0);
	cr_assert(b->offcpu_ns == 0 && c->offcpu_ns == 0);
	/* Self time first; 5 ms blocked weighs as half a sample (~100 Hz). */
	cr_assert_str_eq(h[0].function, "c (views.py)");
	cr_assert_str_eq(h[1].function, "b (views.py)");
	cr_assert_str_eq(h[2].function, "d (views.py)");
	cr_assert_str_eq(h[3].function, "a (views.py)");
	cr_assert_eq(profile__hot(p, "GET /x", h, 2), 2, "max is honoured");
	cr_assert_str_eq(h[1].function, "b (views.py)");
	cr_assert_eq(profile__hot(p, "GET /nope", h, 8), 0);
	profile__free(p);
}

Test(profile, hot_recursion_counts_once)
{
	struct profile *p = hot_fixture();
	struct profile_hot h[8];
	size_t n = profile__hot(p, "GET /r", h, 8);

	cr_assert_eq(n, 2);
	cr_assert_str_eq(h[0].function, "b (views.py)");
	cr_assert(h[0].own_samples == 2 && h[0].total_samples == 2 && h[0].total_pct == 100);
	cr_assert_str_eq(h[1].function, "a (views.py)");
	cr_assert(h[1].own_samples == 0 && h[1].total_samples == 2 && h[1].total_pct == 100);
	profile__free(p);
}

Test(profile, hot_functions_of_all_routes)
{
	struct profile *p = hot_fixture();
	struct profile_hot h[8];
	size_t n = profile__hot(p, NULL, h, 8);

	cr_assert_eq(n, 4);
	/* b and c both own 3 of 6: the tie goes to the larger total. */
	cr_assert_str_eq(h[0].function, "b (views.py)");
	cr_assert(h[0].own_samples == 3 && h[0].total_samples == 6 && h[0].own_pct == 50);
	cr_assert_str_eq(h[1].function, "c (views.py)");
	cr_assert(h[1].own_samples == 3 && h[1].total_samples == 3 && h[1].total_pct == 50);
	cr_assert_eq(hot_fn(h, n, "a (views.py)")->total_samples, 6);
	cr_assert_eq(hot_fn(h, n, "a (views.py)")->total_pct, 100);
	profile__free(p);
}

Test(profile, routes_most_sampled_first)
{
	struct profile *p = new_profile(0);
	char routes[4][300];

	sample(p, 1, 100, "a");
	profile__push_request(p, getpid(), 1, 100, "GET", "/rare");
	for (int i = 0; i < 3; i++)
		sample(p, 1, 200, "a");
	profile__push_request(p, getpid(), 1, 200, "POST", "/busy");
	sample(p, 1, 0, "a");
	sample(p, 1, 0, "a");
	cr_assert_eq(profile__routes(p, routes, 4), 3);
	cr_assert_str_eq(routes[0], "POST /busy", "routes: %s, %s, %s", routes[0], routes[1],
			 routes[2]);
	cr_assert_str_eq(routes[1], PROF_OUTSIDE);
	cr_assert_str_eq(routes[2], "GET /rare");
	cr_assert_eq(profile__routes(p, routes, 1), 1);
	cr_assert_str_eq(routes[0], "POST /busy");
	profile__free(p);
}

/* ---- folded ---- */

Test(profile, folded_counts_on_cpu_samples_only)
{
	struct profile *p = hot_fixture();
	struct profile_stats st;
	char *lines[16];
	int n;
	long sum = 0;

	sample(p, 3, 0, "a;b;c");
	blocked(p, 3, 0, 9000000, "a;b;c"); /* the same cell, off-CPU */
	blocked(p, 3, 0, 9000000, "e");	    /* off-CPU only */
	expect_folded(p,
		      (const char *[]){ "GET /x;" A ";" B ";" C " 3",
					"GET /x;" A ";b (views.py:12) 1",
					"GET /r;" A ";" B ";" A ";" B " 2",
					PROF_OUTSIDE ";" A ";" B ";" C " 1" },
		      4);
	n = folded(p, lines, 16);
	for (int i = 0; i < n; i++) {
		sum += atol(strrchr(lines[i], ' ') + 1);
		cr_assert_null(strstr(lines[i], "d (views.py"), "off-CPU frame in %s", lines[i]);
		cr_assert_null(strstr(lines[i], "e (views.py"), "off-CPU frame in %s", lines[i]);
		free(lines[i]);
	}
	profile__stats(p, &st);
	cr_assert_eq(sum, (long)st.samples);
	profile__free(p);
}

Test(profile, folded_frame_names_keep_the_format)
{
	struct profile *p = new_profile(0);
	uint64_t code = fn_in("handler", "/srv/we;ird.py");
	struct pbpf_stack_event e = { .kind = PBPF_EV_SAMPLE, .depth = 1 };

	e.pid = getpid();
	e.code[0] = code;
	profile__push_stack(p, &e, NOW);
	expect_folded(p, (const char *[]){ PROF_OUTSIDE ";handler (we,ird.py:10) 1" }, 1);
	profile__free(p);
}

Test(profile, folded_routes_keep_the_format)
{
	/* Unmatched URLs are profiled under their raw path, which may hold ';'
	 * (/m;jsessionid=1) or, percent-decoded, a newline. */
	struct profile *p = new_profile(0);
	char *lines[8];
	int n;

	sample(p, 1, 100, "a;b");
	profile__push_request(p, getpid(), 1, 100, "GET", "/m;jsessionid=1");
	sample(p, 1, 200, "a;b");
	profile__push_request(p, getpid(), 1, 200, "GET", "/n\nx");
	n = folded(p, lines, 8);
	cr_assert_eq(n, 2, "%d lines for 2 stacks", n);
	for (int i = 0; i < n; i++) {
		int seps = 0;

		for (const char *s = lines[i]; *s; s++)
			seps += *s == ';';
		cr_assert_eq(seps, 2, "route;a;b count, got: %s", lines[i]);
		free(lines[i]);
	}
	profile__free(p);
}

Test(profile, folded_write_errors)
{
	struct profile *p = hot_fixture();
	char bad[400];

	snprintf(bad, sizeof(bad), "%s/missing/out", dir);
	cr_assert_eq(profile__write_folded(p, bad), -ENOENT);
	cr_assert_eq(profile__write_speedscope(p, bad), -ENOENT);
	profile__free(p);
}

/* The old writers opened PATH.tmp with fopen("w"): a symlink planted
 * there was followed and the file it names truncated.  A symlink at the
 * final name is refused (not replaced, not followed). */
Test(profile, outputs_never_write_through_planted_symlinks)
{
	struct profile *p = hot_fixture();
	char victim[400], buf[64] = "";
	FILE *f;

	snprintf(victim, sizeof(victim), "%s.victim", dir);
	f = fopen(victim, "w");
	cr_assert_not_null(f);
	fputs("victim\n", f);
	fclose(f);
	cr_assert_eq(symlink(victim, tmp_path), 0);
	cr_assert_eq(profile__write_folded(p, out_path), 0);
	cr_assert_eq(unlink(out_path), 0);
	cr_assert_eq(profile__write_speedscope(p, out_path), 0);
	cr_assert_eq(unlink(out_path), 0);
	cr_assert_eq(symlink(victim, out_path), 0);
	cr_assert_eq(profile__write_folded(p, out_path), -ELOOP);
	cr_assert_eq(profile__write_speedscope(p, out_path), -ELOOP);
	f = fopen(victim, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	unlink(victim);
	cr_assert_str_eq(buf, "victim\n", "the victim file was written through");
	profile__free(p);
}

/* ---- speedscope ---- */

static cJSON *profile_named(cJSON *profiles, const char *name)
{
	cJSON *it;

	cJSON_ArrayForEach(it, profiles) if (strcmp(cJSON_GetObjectItem(it, "name")->valuestring,
						    name) == 0) return it;
	return NULL;
}

/* Checks one sampled profile's shape; returns the sum of its weights and
 * appends "frame;frame weight" per sample to `stacks`. */
static double check_sampled(cJSON *prof, cJSON *frames, const char *unit, char *stacks, size_t len)
{
	cJSON *samples = cJSON_GetObjectItem(prof, "samples");
	cJSON *weights = cJSON_GetObjectItem(prof, "weights");
	int nframes = cJSON_GetArraySize(frames);
	double sum = 0;

	cr_assert_str_eq(cJSON_GetObjectItem(prof, "type")->valuestring, "sampled");
	cr_assert_str_eq(cJSON_GetObjectItem(prof, "unit")->valuestring, unit);
	cr_assert_eq(cJSON_GetObjectItem(prof, "startValue")->valuedouble, 0);
	cr_assert(cJSON_IsArray(samples) && cJSON_IsArray(weights));
	cr_assert_eq(cJSON_GetArraySize(samples), cJSON_GetArraySize(weights));
	cr_assert_gt(cJSON_GetArraySize(samples), 0);
	stacks[0] = 0;
	for (int i = 0; i < cJSON_GetArraySize(samples); i++) {
		cJSON *stack = cJSON_GetArrayItem(samples, i), *idx;
		double w = cJSON_GetArrayItem(weights, i)->valuedouble;
		size_t o = strlen(stacks);

		cr_assert_gt(w, 0);
		sum += w;
		cJSON_ArrayForEach(idx, stack)
		{
			cr_assert(cJSON_IsNumber(idx) && idx->valueint >= 0 &&
					  idx->valueint < nframes,
				  "frame index %d of %d", idx->valueint, nframes);
			o += snprintf(stacks + o, len - o, "%s%s",
				      o && stacks[o - 1] != '|' ? ";" : "",
				      cJSON_GetObjectItem(cJSON_GetArrayItem(frames, idx->valueint),
							  "name")
					      ->valuestring);
		}
		snprintf(stacks + o, len - o, " %.0f|", w);
	}
	cr_assert_eq(cJSON_GetObjectItem(prof, "endValue")->valuedouble, sum);
	return sum;
}

Test(profile, speedscope_document)
{
	struct profile *p = hot_fixture();
	struct profile_stats st;
	cJSON *doc, *frames, *profiles, *it;
	char stacks[4096];
	double on = 0, offns = 0;

	sample(p, 3, 0, "a");
	cr_assert_eq(profile__write_speedscope(p, out_path), 0);
	cr_assert_eq(access(tmp_path, F_OK), -1);
	doc = read_json(out_path);
	cr_assert_str_eq(cJSON_GetObjectItem(doc, "$schema")->valuestring,
			 "https://www.speedscope.app/file-format-schema.json");
	frames = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "shared"), "frames");
	profiles = cJSON_GetObjectItem(doc, "profiles");
	cr_assert(cJSON_IsArray(frames) && cJSON_IsArray(profiles));
	cJSON_ArrayForEach(it, frames)
	{
		cJSON *line = cJSON_GetObjectItem(it, "line");

		cr_assert(cJSON_IsString(cJSON_GetObjectItem(it, "name")));
		cr_assert_str_eq(cJSON_GetObjectItem(it, "file")->valuestring, "/srv/app/views.py");
		cr_assert(cJSON_IsNumber(line) && (line->valueint == 10 || line->valueint == 12));
	}
	/* On-CPU: GET /x, GET /r, outside; off-CPU: GET /x only. */
	cr_assert_eq(cJSON_GetArraySize(profiles), 4);
	cr_assert_null(profile_named(profiles, "GET /r (off-CPU)"));
	cr_assert_null(profile_named(profiles, PROF_OUTSIDE " (off-CPU)"));

	it = profile_named(profiles, "GET /x (on-CPU)");
	cr_assert_not_null(it);
	on += check_sampled(it, frames, "none", stacks, sizeof(stacks));
	cr_assert(strcmp(stacks, "a;b;c 3|a;b 1|") == 0 || strcmp(stacks, "a;b 1|a;b;c 3|") == 0,
		  "root-first stacks: %s", stacks);
	it = profile_named(profiles, "GET /r (on-CPU)");
	cr_assert_not_null(it);
	on += check_sampled(it, frames, "none", stacks, sizeof(stacks));
	cr_assert_str_eq(stacks, "a;b;a;b 2|");
	it = profile_named(profiles, PROF_OUTSIDE " (on-CPU)");
	cr_assert_not_null(it);
	on += check_sampled(it, frames, "none", stacks, sizeof(stacks));
	cr_assert_str_eq(stacks, "a 1|");
	it = profile_named(profiles, "GET /x (off-CPU)");
	cr_assert_not_null(it);
	offns += check_sampled(it, frames, "nanoseconds", stacks, sizeof(stacks));
	cr_assert_str_eq(stacks, "a;d 5000000|");

	profile__stats(p, &st);
	cr_assert_eq(on, st.samples);
	cr_assert_eq(offns, st.offcpu_ns);
	cJSON_Delete(doc);
	profile__free(p);
}

Test(profile, speedscope_escapes_and_pseudo_frames)
{
	struct profile *p = new_profile(0);
	const char *file = "/srv/q\"uo\\te\x01.py";
	struct pbpf_stack_event e = { .kind = PBPF_EV_SAMPLE, .depth = 1 };
	cJSON *doc, *frames, *it;
	int found = 0, pseudo = 0;

	e.pid = getpid();
	e.code[0] = fn_in("h", file);
	profile__push_stack(p, &e, NOW);
	push(p, PBPF_EV_SAMPLE, 1, 0, PBPF_CLASS_NO_GIL, 0, NULL, NOW);
	cr_assert_eq(profile__write_speedscope(p, out_path), 0);
	doc = read_json(out_path);
	frames = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "shared"), "frames");
	cJSON_ArrayForEach(it, frames)
	{
		cJSON *f = cJSON_GetObjectItem(it, "file");

		if (strcmp(cJSON_GetObjectItem(it, "name")->valuestring, "[no GIL]") == 0) {
			pseudo++;
			cr_assert_null(f, "a pseudo frame has no file");
			cr_assert_null(cJSON_GetObjectItem(it, "line"));
		} else if (f && strcmp(f->valuestring, file) == 0) {
			found++;
		}
	}
	cr_assert_eq(found, 1);
	cr_assert_eq(pseudo, 1);
	cJSON_Delete(doc);
	profile__free(p);
}

Test(profile, speedscope_of_nothing)
{
	struct profile *p = new_profile(0);
	cJSON *doc;

	cr_assert_eq(profile__write_speedscope(p, out_path), 0);
	doc = read_json(out_path);
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "profiles")), 0);
	cr_assert_eq(cJSON_GetArraySize(
			     cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "shared"), "frames")),
		     0);
	cJSON_Delete(doc);
	profile__free(p);
}

/* ---- JSONL ---- */

static cJSON *jsonl(struct profile *p, const char *route)
{
	static char buf[16384];
	int n = profile__jsonl(p, route, 123456789, 1000, buf, sizeof(buf));
	cJSON *j;

	cr_assert_gt(n, 0, "%s: %d", route, n);
	cr_assert_eq((size_t)n, strlen(buf));
	cr_assert_eq(buf[n - 1], '\n');
	cr_assert_null(memchr(buf, '\n', n - 1), "one line");
	j = cJSON_Parse(buf);
	cr_assert_not_null(j, "invalid JSON: %s", buf);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "kind")->valuestring, "PROFILE");
	cr_assert_eq(cJSON_GetObjectItem(j, "schema_version")->valueint, 1);
	cr_assert_eq(cJSON_GetObjectItem(j, "ts_ns")->valuedouble, 123456789);
	cr_assert_eq(cJSON_GetObjectItem(j, "time_unix_ns")->valuedouble, 123457789);
	return j;
}

Test(profile, jsonl_route_record)
{
	struct profile *p = hot_fixture();
	cJSON *j = jsonl(p, "GET /x"), *fns, *f0;

	cr_assert_str_eq(cJSON_GetObjectItem(j, "method")->valuestring, "GET");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "route")->valuestring, "/x");
	cr_assert_eq(cJSON_GetObjectItem(j, "samples")->valuedouble, 4);
	cr_assert_eq(cJSON_GetObjectItem(j, "offcpu_ns")->valuedouble, 5000000);
	fns = cJSON_GetObjectItem(j, "functions");
	cr_assert_eq(cJSON_GetArraySize(fns), 4);
	f0 = cJSON_GetArrayItem(fns, 0);
	cr_assert_str_eq(cJSON_GetObjectItem(f0, "function")->valuestring, "c (views.py)");
	cr_assert_eq(cJSON_GetObjectItem(f0, "own_pct")->valuedouble, 75);
	cr_assert_eq(cJSON_GetObjectItem(f0, "total_pct")->valuedouble, 75);
	cr_assert_eq(cJSON_GetObjectItem(f0, "own_samples")->valuedouble, 3);
	cr_assert_eq(cJSON_GetObjectItem(f0, "total_samples")->valuedouble, 3);
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(fns, 2), "function")->valuestring,
			 "d (views.py)");
	cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(fns, 2), "offcpu_ns")->valuedouble,
		     5000000);
	cJSON_Delete(j);
	profile__free(p);
}

Test(profile, jsonl_pseudo_routes_have_no_method)
{
	struct profile *p = new_profile(1);

	sample(p, 1, 0, "a");
	sample(p, 1, 99, "b");
	profile__tick(p, NOW + 2);
	for (int i = 0; i < 2; i++) {
		const char *route = i ? PROF_UNRECORDED : PROF_OUTSIDE;
		cJSON *j = jsonl(p, route);

		cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "method")), "%s", route);
		cr_assert_str_eq(cJSON_GetObjectItem(j, "route")->valuestring, route);
		cr_assert_eq(cJSON_GetObjectItem(j, "samples")->valuedouble, 1);
		cJSON_Delete(j);
	}
	profile__free(p);
}

Test(profile, jsonl_ten_functions_at_most)
{
	struct profile *p = new_profile(0);
	cJSON *j, *fns;

	for (int i = 0; i < 12; i++) {
		char spec[32];

		snprintf(spec, sizeof(spec), "root;leaf%02d", i);
		for (int k = 0; k <= i; k++)
			sample(p, 1, 100, spec);
	}
	profile__push_request(p, getpid(), 1, 100, "GET", "/many");
	j = jsonl(p, "GET /many");
	fns = cJSON_GetObjectItem(j, "functions");
	cr_assert_eq(cJSON_GetArraySize(fns), 10);
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(fns, 0), "function")->valuestring,
			 "leaf11 (views.py)");
	cr_assert_eq(cJSON_GetObjectItem(j, "samples")->valuedouble, 78);
	cJSON_Delete(j);
	profile__free(p);
}

Test(profile, jsonl_errors)
{
	struct profile *p = hot_fixture();
	char buf[64];

	cr_assert_eq(profile__jsonl(p, "GET /nope", 1, 0, buf, sizeof(buf)), -ENOENT);
	memset(buf, 'Z', sizeof(buf));
	cr_assert_eq(profile__jsonl(p, "GET /x", 1, 0, buf, 40), -ENOSPC);
	for (size_t i = 40; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 'Z', "byte %zu written past len", i);
	profile__free(p);
}

Test(profile, jsonl_escapes_the_method)
{
	/* Werkzeug hands any request-line token to Flask as the method
	 * (a 405 follows, but the request is recorded). */
	struct profile *p = new_profile(0);
	cJSON *j;

	sample(p, 1, 100, "a");
	profile__push_request(p, getpid(), 1, 100, "GE\"T", "/x");
	j = jsonl(p, "GE\"T /x");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "method")->valuestring, "GE\"T");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "route")->valuestring, "/x");
	cJSON_Delete(j);
	profile__free(p);
}

/* ---- two threads ---- */

#define RACE_REQS 3000

struct race {
	struct profile *p;
	uint64_t seed;
	int counts[RACE_REQS]; /* samples per request */
	long total;
	volatile int done;
	int violations; /* counted here, asserted on the test's thread */
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void shuffle(int *v, int n, uint64_t *seed)
{
	for (int i = 0; i < n; i++)
		v[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = xorshift(seed) % (i + 1), t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

static void *stacks_thread(void *arg)
{
	struct race *r = arg;
	uint64_t seed = r->seed;
	static int order[RACE_REQS];

	shuffle(order, RACE_REQS, &seed);
	for (int k = 0; k < RACE_REQS; k++) {
		int i = order[k];

		for (int s = 0; s < r->counts[i]; s++)
			push(r->p, PBPF_EV_SAMPLE, 1 + i % 8, 1000 + i, PBPF_CLASS_PYTHON, 0,
			     i % 3 ? "a;b" : "a;c", NOW);
	}
	return NULL;
}

static void *requests_thread(void *arg)
{
	struct race *r = arg;
	uint64_t seed = r->seed * 31 + 7;
	static int order[RACE_REQS];
	char route[16];

	shuffle(order, RACE_REQS, &seed);
	for (int k = 0; k < RACE_REQS; k++) {
		int i = order[k];

		snprintf(route, sizeof(route), "/r%d", i % 4);
		profile__push_request(r->p, getpid(), 1 + i % 8, 1000 + i, "GET", route);
	}
	return NULL;
}

/* Reads while the others write: attributed samples never exceed the pushed. */
static void *reader_thread(void *arg)
{
	struct race *r = arg;
	struct profile_hot h[8];
	struct profile_stats st;
	char buf[4096];

	while (!r->done) {
		size_t n = profile__hot(r->p, NULL, h, 8);
		double a = 0;

		for (size_t i = 0; i < n; i++)
			if (strcmp(h[i].function, "a (views.py)") == 0)
				a = h[i].total_samples;
		profile__stats(r->p, &st);
		r->violations += a + st.pending > st.samples;
		profile__jsonl(r->p, "GET /r0", 1, 0, buf, sizeof(buf));
	}
	return NULL;
}

Test(profile, stacks_and_requests_from_two_threads)
{
	static struct race r;
	pthread_t t[3];
	struct profile_hot h[8];
	struct profile_stats st;
	char routes[8][300];
	double attributed = 0, unrecorded;
	size_t n;

	r.p = new_profile(0);
	r.seed = 0x5eed;
	for (int i = 0; i < RACE_REQS; i++) {
		r.counts[i] = 1 + xorshift(&r.seed) % 3;
		r.total += r.counts[i];
	}
	fn_in("a", "/srv/app/views.py"); /* forge before the threads start */
	fn_in("b", "/srv/app/views.py");
	fn_in("c", "/srv/app/views.py");
	cr_assert_eq(pthread_create(&t[2], NULL, reader_thread, &r), 0);
	cr_assert_eq(pthread_create(&t[0], NULL, stacks_thread, &r), 0);
	cr_assert_eq(pthread_create(&t[1], NULL, requests_thread, &r), 0);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	r.done = 1;
	pthread_join(t[2], NULL);
	cr_assert_eq(r.violations, 0);

	profile__stats(r.p, &st);
	cr_assert_eq(st.samples, (uint64_t)r.total);
	n = profile__routes(r.p, routes, 8);
	for (size_t i = 0; i < n; i++) {
		cr_assert(strncmp(routes[i], "GET /r", 6) == 0, "%s", routes[i]);
		size_t k = profile__hot(r.p, routes[i], h, 8);

		attributed += hot_fn(h, k, "a (views.py)")->total_samples;
	}
	cr_assert_eq(attributed + st.pending, r.total);
	profile__tick(r.p, UINT64_MAX / 2);
	profile__stats(r.p, &st);
	cr_assert_eq(st.pending, 0);
	n = profile__hot(r.p, PROF_UNRECORDED, h, 8);
	unrecorded = n ? hot_fn(h, n, "a (views.py)")->total_samples : 0;
	cr_assert_eq(attributed + unrecorded, r.total);
	n = profile__hot(r.p, NULL, h, 8);
	cr_assert_eq(hot_fn(h, n, "a (views.py)")->total_samples, r.total);
	profile__free(r.p);
}

/* ---- a real interpreter ---- */

static const char real_py[] =
	"import time\n"
	"def handler():\n"
	"    x = 1\n"
	"    return x\n"
	"\n"
	"def view():\n"
	"    return handler()\n"
	"\n"
	"print(id(view.__code__), id(handler.__code__), id(type(view.__code__)),\n"
	"      view.__code__.co_firstlineno, handler.__code__.co_firstlineno, flush=True)\n"
	"time.sleep(120)\n";

Test(profile, frames_of_a_real_interpreter)
{
	unsigned long long view, handler, type;
	struct pollfd pfd = { .events = POLLIN };
	struct pbpf_stack_event e = { .kind = PBPF_EV_SAMPLE, .depth = 2 };
	struct profile_opts o = { 0 };
	pid_t parent = getpid();
	char line[512] = { 0 }, want[256];
	int fds[2], lv, lh;
	struct profile *p;
	size_t n = 0;
	FILE *f = fopen(script, "w");

	cr_assert_not_null(f);
	fputs(real_py, f);
	fclose(f);
	cr_assert_eq(pipe(fds), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		dup2(fds[1], STDOUT_FILENO);
		execl(PYENV_PY, PYENV_PY, script, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	while (n + 1 < sizeof(line) && (n == 0 || line[n - 1] != '\n')) {
		cr_assert_eq(poll(&pfd, 1, 20000), 1, "the child printed nothing");
		cr_assert_eq(read(fds[0], line + n, 1), 1, "the child exited");
		n++;
	}
	close(fds[0]);
	cr_assert_eq(sscanf(line, "%llu %llu %llu %d %d", &view, &handler, &type, &lv, &lh), 5);
	o.interps = one_interp(type);
	p = profile__new(&o);
	cr_assert_not_null(p);
	e.pid = child;
	e.tid = child;
	e.req_start_ns = 77;
	e.code[0] = handler;
	e.code[1] = view;
	profile__push_stack(p, &e, NOW);
	profile__push_request(p, child, child, 77, "GET", "/real");
	snprintf(want, sizeof(want), "GET /real;view (real.py:%d);handler (real.py:%d) 1", lv, lh);
	expect_folded(p, (const char *[]){ want }, 1);
	profile__free(p);
}

/* ---- off-CPU time weighs at the sampling frequency ---- */

static struct profile *new_profile_hz(int hz)
{
	struct profile_opts o = { .interps = one_interp((uint64_t)(uintptr_t)fake_code_type),
				  .sample_hz = hz };
	struct profile *p = profile__new(&o);

	cr_assert_not_null(p);
	return p;
}

/* The same request profiled at -F hz: 70 ms on the CPU in burn (70 ms of
 * samples at that rate), 30 ms blocked in wait; and a route that only
 * blocks 50 ms next to one that computes 30 ms. */
static struct profile *mixed_at(int hz)
{
	struct profile *p = new_profile_hz(hz);

	for (int i = 0; i < 70 * hz / 1000; i++)
		sample(p, 1, 100, "view;burn");
	blocked(p, 1, 100, 30000000, "view;wait");
	profile__push_request(p, getpid(), 1, 100, "GET", "/mixed");
	blocked(p, 1, 200, 50000000, "view;wait");
	profile__push_request(p, getpid(), 1, 200, "GET", "/blocks");
	for (int i = 0; i < 30 * hz / 1000; i++)
		sample(p, 1, 300, "view;burn");
	profile__push_request(p, getpid(), 1, 300, "GET", "/computes");
	return p;
}

Test(profile, offcpu_weighs_the_same_at_any_frequency)
{
	static const int hz[] = { 100, 1000 };

	for (int k = 0; k < 2; k++) {
		struct profile *p = mixed_at(hz[k]);
		struct profile_hot h[4];
		char routes[4][300];
		size_t n = profile__hot(p, "GET /mixed", h, 4);
		const struct profile_hot *burn = hot_fn(h, n, "burn (views.py)"),
					 *wait = hot_fn(h, n, "wait (views.py)"),
					 *view = hot_fn(h, n, "view (views.py)");
		cJSON *j, *f;

		cr_assert(fabs(burn->own_wall_pct - 70) < 1e-9, "-F %d: burn %.2f%% of wall time",
			  hz[k], burn->own_wall_pct);
		cr_assert(fabs(wait->own_wall_pct - 30) < 1e-9, "-F %d: wait %.2f%% of wall time",
			  hz[k], wait->own_wall_pct);
		cr_assert(fabs(view->total_wall_pct - 100) < 1e-9 && view->own_wall_pct == 0);
		cr_assert_eq(burn->own_pct, 100, "on-CPU shares stay shares of samples");
		cr_assert_str_eq(h[0].function, "burn (views.py)");
		cr_assert_str_eq(h[1].function, "wait (views.py)");
		/* 50 ms blocked is more time than 30 ms computed, at either rate. */
		cr_assert_eq(profile__routes(p, routes, 4), 3);
		cr_assert_str_eq(routes[0], "GET /mixed", "-F %d", hz[k]);
		cr_assert_str_eq(routes[1], "GET /blocks", "-F %d: %s", hz[k], routes[1]);
		cr_assert_str_eq(routes[2], "GET /computes", "-F %d", hz[k]);
		j = jsonl(p, "GET /mixed");
		cr_assert_eq(cJSON_GetObjectItem(j, "sample_hz")->valueint, hz[k]);
		f = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "functions"), 1);
		cr_assert_str_eq(cJSON_GetObjectItem(f, "function")->valuestring,
				 "wait (views.py)");
		cr_assert_eq(cJSON_GetObjectItem(f, "own_wall_pct")->valuedouble, 30);
		cr_assert_eq(cJSON_GetObjectItem(f, "total_wall_pct")->valuedouble, 30);
		cJSON_Delete(j);
		profile__free(p);
	}
}

Test(profile, frequency_defaults_to_99)
{
	struct profile *p = new_profile(0);
	cJSON *j;

	sample(p, 1, 0, "a");
	j = jsonl(p, PROF_OUTSIDE);
	cr_assert_eq(cJSON_GetObjectItem(j, "sample_hz")->valueint, PROF_DEFAULT_HZ);
	cJSON_Delete(j);
	profile__free(p);
}

/* ---- caps ---- */

Test(profile, routes_past_the_cap_share_other)
{
	struct profile *p = new_profile(0);
	static char routes[PROF_ROUTE_MAX + 8][300];
	struct profile_stats st;
	char route[64];
	int n = PROF_ROUTE_MAX + 50, other = -1;
	cJSON *j;

	for (int i = 0; i < n; i++) {
		snprintf(route, sizeof(route), "/scan/%d", i);
		sample(p, 1, 100 + i, "a");
		profile__push_request(p, getpid(), 1, 100 + i, "GET", route);
	}
	sample(p, 1, 0, "a"); /* pseudo routes keep their own key past the cap */
	cr_assert_eq(profile__routes(p, routes, PROF_ROUTE_MAX + 8), PROF_ROUTE_MAX + 2);
	for (int i = 0; i < PROF_ROUTE_MAX + 2; i++)
		if (strcmp(routes[i], PROF_OTHER) == 0)
			other = i;
	cr_assert_eq(other, 0, "(other) has the most samples: %s", routes[0]);
	j = jsonl(p, PROF_OTHER);
	cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "method")));
	cr_assert_eq(cJSON_GetObjectItem(j, "samples")->valuedouble, n - PROF_ROUTE_MAX);
	cJSON_Delete(j);
	j = jsonl(p, PROF_OUTSIDE);
	cr_assert_eq(cJSON_GetObjectItem(j, "samples")->valuedouble, 1);
	cJSON_Delete(j);
	profile__stats(p, &st);
	cr_assert_eq(st.routes, PROF_ROUTE_MAX);
	cr_assert_eq(st.capped, n - PROF_ROUTE_MAX);
	cr_assert_eq(st.dropped, 0);
	profile__free(p);
}

/* Stack "f:L1;g:L2" for the i-th of 64 x 8 x 8 x 8... distinct stacks: all
 * forged functions and lines are reused, so only the stacks are new. */
static void stack_spec(char *buf, size_t len, int i)
{
	snprintf(buf, len, "f%d:%d;g%d:%d;h:%d", i % 16, FIRST_LINE + i / 16 % 8, i / 128 % 16,
		 FIRST_LINE + i / 2048 % 8, FIRST_LINE + i / 16384 % 8);
}

Test(profile, stacks_past_the_cap_share_other, .timeout = 120)
{
	struct profile *p = new_profile(0);
	struct profile_stats st;
	int n = PROF_STACK_MAX + 100, other = 0;
	double total = 0;
	char spec[128], *lines[16];
	struct profile_hot h[64];
	size_t nh;

	for (int i = 0; i < n; i++) {
		stack_spec(spec, sizeof(spec), i);
		sample(p, 1, 0, spec);
	}
	profile__stats(p, &st);
	cr_assert_eq(st.stacks, PROF_STACK_MAX, "%llu stacks", (unsigned long long)st.stacks);
	cr_assert_eq(st.capped, n - (PROF_STACK_MAX - 1));
	nh = profile__hot(p, NULL, h, 64);
	for (size_t i = 0; i < nh; i++) {
		total += h[i].own_samples;
		if (strcmp(h[i].function, PROF_OTHER_STACK) == 0)
			other = h[i].own_samples;
	}
	cr_assert_eq(total, n, "every sample is somewhere");
	cr_assert_eq(other, n - (PROF_STACK_MAX - 1));
	(void)lines;
	profile__free(p);
}

Test(profile, cells_past_the_cap_share_other, .timeout = 120)
{
	struct profile *p = new_profile(0);
	struct profile_stats st;
	int routes = PROF_CELL_MAX / 200 + 20, n = 0;
	char spec[128], route[32];
	cJSON *j;

	for (int r = 0; r < routes; r++) {
		snprintf(route, sizeof(route), "/r/%d", r);
		for (int i = 0; i < 200; i++, n++) {
			stack_spec(spec, sizeof(spec), i);
			sample(p, 1, 100 + r, spec);
		}
		profile__push_request(p, getpid(), 1, 100 + r, "GET", route);
	}
	profile__stats(p, &st);
	cr_assert_eq(st.cells, PROF_CELL_MAX);
	cr_assert_eq(st.capped, n - (PROF_CELL_MAX - 1));
	j = jsonl(p, PROF_OTHER);
	cr_assert_eq(cJSON_GetObjectItem(j, "samples")->valuedouble, n - (PROF_CELL_MAX - 1));
	cJSON_Delete(j);
	profile__free(p);
}

/* ---- out of memory ---- */

/* Every allocation a new stack of new frames needs fails in turn (real
 * failures: failalloc.h).  The sample is dropped and counted, or kept; the
 * profile stays whole: more new frames after it (past the sizes where the
 * arrays double) are named right and every kept sample is in the output. */
Test(profile, failed_allocations_drop_a_sample_not_the_profile)
{
	if (!failalloc_available())
		cr_skip_test("sanitizer build: allocations cannot be made to fail");
	for (long k = 0;; k++) {
		struct profile *p = new_profile(0);
		struct profile_stats st;
		struct profile_hot h[32];
		double total = 0;
		size_t n, named = 0;
		int fired;

		for (char c = 'a'; c <= 'p'; c++)
			fn_in((char[]){ c, 0 },
			      "/srv/app/views.py"); /* forged before, not during */
		sample(p, 1, 100, "a;b;c;d");
		failalloc_arm(k);
		sample(p, 1, 100, "a;e;f;g");
		failalloc_disarm();
		fired = failalloc_fired();
		sample(p, 1, 100, "a;e;f;g");
		sample(p, 1, 100, "h;i;j;k;l;m;n;o;p");
		profile__push_request(p, getpid(), 1, 100, "GET", "/x");
		profile__stats(p, &st);
		cr_assert(st.oom <= (uint64_t)fired && st.dropped <= st.oom,
			  "allocation %ld: %llu failures, %llu dropped", k,
			  (unsigned long long)st.oom, (unsigned long long)st.dropped);
		/* All routes: a sample that could not wait for its request is
		 * "(request not recorded)", kept. */
		n = profile__hot(p, NULL, h, 32);
		for (size_t i = 0; i < n; i++) {
			total += h[i].own_samples;
			/* A name or file the symbol cache could not copy: unknown,
			 * in that one sample. */
			if (fired && (strncmp(h[i].function, "<unknown> (", 11) == 0 ||
				      strstr(h[i].function, " (?)"))) {
				cr_assert_eq(h[i].total_samples, 1);
				continue;
			}
			cr_assert(strlen(h[i].function) == strlen("a (views.py)") &&
					  h[i].function[0] >= 'a' && h[i].function[0] <= 'p' &&
					  strcmp(h[i].function + 1, " (views.py)") == 0,
				  "allocation %ld: a function named %s", k, h[i].function);
			named++;
		}
		cr_assert_eq(named, 16, "allocation %ld: %zu functions", k, named);
		cr_assert_eq(total + st.dropped, 4, "allocation %ld: %.0f kept, %llu dropped", k,
			     total, (unsigned long long)st.dropped);
		profile__free(p);
		if (!fired)
			break;
		cr_assert_lt(k, 100);
	}
}
