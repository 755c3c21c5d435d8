// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Symbolization, for every supported CPython (pyenv 3.9.18 to 3.13.0).  The
 * line decoders are checked against the interpreter itself: each version
 * compiles hand-made functions (multi-line statements, loops, nested calls,
 * a 300-line and a 70000-line jump, code without a location, wide columns, a
 * 400-byte line) and a stdlib module, and prints every code object's line
 * table with the line PyCode_Addr2Line gives each code unit (the function
 * PyFrame_GetLineNumber calls; on 3.10+ it must agree with co_lines() and
 * co_positions()).  The decoders are fed that table and the instruction word
 * the sampler would record for the unit.  Garbage and truncated tables are
 * fed from the end of a page followed by a PROT_NONE page, so an
 * out-of-bounds read crashes the test.  symbols__resolve reads code objects
 * out of real children of each version (and Debian's python3.11) that print
 * id(code), its qualname, file and lines, and park a thread in a call whose
 * real frame is read the way the sampler reads it; cache revalidation and
 * forged tables use code objects forged in this process.  Children die with
 * the test (PR_SET_PDEATHSIG).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "oracle.h"
#include "pyinspect.h"
#include "pyoffsets.h"
#include "symbols.h"

#define NO_PID 4194300
/* Where the pure tests pretend the code object lives. */
#define FAKE_CODE 0x7f5a00001000ULL

struct pyver {
	const char *python;
	unsigned int minor;
};

static const struct pyver py39 = { "/root/.pyenv/versions/3.9.18/bin/python3.9", 9 };
static const struct pyver py310 = { "/root/.pyenv/versions/3.10.13/bin/python3.10", 10 };
static const struct pyver py311 = { PYENV_PY, 11 };
static const struct pyver py312 = { "/root/.pyenv/versions/3.12.1/bin/python3.12", 12 };
static const struct pyver py313 = { "/root/.pyenv/versions/3.13.0/bin/python3.13", 13 };

/* One test per version, so a failure names the version. */
#define FOR_EACH_VERSION(fn)                            \
	Test(symbols, fn##_3_9) { fn(&py39); }          \
	Test(symbols, fn##_3_10) { fn(&py310); }        \
	Test(symbols, fn##_3_11) { fn(&py311); }        \
	Test(symbols, fn##_3_12) { fn(&py312); }        \
	Test(symbols, fn##_3_13) { fn(&py313); }

static char dir[] = "/tmp/pbpf-sym-XXXXXX";
static char script[256];
static pid_t kids[4];
static int nkids;

static void cleanup(void)
{
	for (int i = 0; i < nkids; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	nkids = 0;
	if (script[0])
		unlink(script);
	if (!strstr(dir, "XXXXXX"))
		rmdir(dir);
}

TestSuite(symbols, .fini = cleanup, .timeout = 60);

/* The table row; for 3.13 it agrees with 3.13.0's _Py_DebugOffsets, which
 * pyruntime overlays on it in the real program. */
static const struct pbpf_py_offsets *offsets_of(unsigned int minor)
{
	const struct py_version_offsets *v = pyoffsets_find(3, minor);

	cr_assert_not_null(v, "no offsets for 3.%u", minor);
	return &v->off;
}

static const struct pbpf_py_offsets *off311(void)
{
	return offsets_of(11);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
}

/* The instruction word the sampler records (bpf/sampler.bpf.h) for a frame
 * at code unit `unit`: 3.9's f_lasti counts bytes, 3.10's code units, both
 * an int zero-extended; later versions point into co_code_adaptive.  Unit -1
 * is a frame that has not started (f_lasti -1; 3.11/3.12 prev_instr one unit
 * before the code); 3.13 has no such word. */
static uint64_t instr_word(const struct pbpf_py_offsets *o, uint64_t code, int unit)
{
	switch (o->instr_kind) {
	case PBPF_INSTR_LASTI_BYTES:
		return (uint32_t)(2 * unit);
	case PBPF_INSTR_LASTI_UNITS:
		return (uint32_t)unit;
	default:
		return code + o->code_code_adaptive + 2 * (int64_t)unit;
	}
}

/* ---- the line decoders against the interpreters' own line numbers ---- */

/* Python shared by the oracle and the child: unit_lines(co) is the line of
 * every code unit per PyCode_Addr2Line of its byte offset (-1: none),
 * checked against co_positions() (3.11+) or co_lines() (3.10); table(co) is
 * what the version's decoder reads.  Only single quotes: nothing to escape. */
#define PY_UNIT_LINES                                                            \
	"import ctypes, sys, types\n"                                            \
	"A2L = ctypes.pythonapi.PyCode_Addr2Line\n"                              \
	"A2L.argtypes = (ctypes.py_object, ctypes.c_int)\n"                      \
	"A2L.restype = ctypes.c_int\n"                                           \
	"\n"                                                                     \
	"def unit_lines(co):\n"                                                  \
	"    n = len(co.co_code) // 2\n"                                         \
	"    lines = [A2L(co, 2 * i) for i in range(n)]\n"                       \
	"    if hasattr(co, 'co_positions'):\n"                                  \
	"        other = [-1 if p[0] is None else p[0] for p in co.co_positions()]\n" \
	"    elif hasattr(co, 'co_lines'):\n"                                    \
	"        other = [-1] * n\n"                                             \
	"        for start, end, line in co.co_lines():\n"                       \
	"            for b in range(start, end, 2):\n"                           \
	"                other[b // 2] = -1 if line is None else line\n"         \
	"    else:\n"                                                            \
	"        other = lines\n"                                                \
	"    assert other == lines, co\n"                                        \
	"    return lines\n"                                                     \
	"\n"                                                                     \
	"def table(co):\n"                                                       \
	"    return co.co_lnotab if sys.version_info < (3, 10) else co.co_linetable\n"

#define W10 "wwwwwwwwww"

/* Prints "firstlineno hex(table) units line..." per code object, hand-made
 * ones first, then "stdlib", the stdlib modules named in argv, and "end". */
static const char oracle_py[] =
	PY_UNIT_LINES
	"NL = chr(10)\n"
	"SRC = '''\n"
	"def multi_line(a,\n"
	"               b):\n"
	"    x = (a +\n"
	"         b *\n"
	"         2)\n"
	"    return foo(\n"
	"        a,\n"
	"        bar(b,\n"
	"            baz(x)))\n"
	"\n"
	"def loops(n):\n"
	"    t = 0\n"
	"    for i in range(n):\n"
	"        while t < i:\n"
	"            t += 1\n"
	"        else:\n"
	"            t -= 1\n"
	"    return t\n"
	"\n"
	"def nested_calls(v):\n"
	"    return f(g(h(v), i(j(v))), k(l(m(n(v)))))\n"
	"\n"
	"def long_jump(x):\n"
	"    if x:\n"
	"        return 1\n"
	"''' + NL * 300 + '''\n"
	"    return 2\n"
	"\n"
	"def no_location(p):\n"
	"    try:\n"
	"        g(p)\n"
	"    except ValueError as e:\n"
	"        h(e)\n"
	"    finally:\n"
	"        k()\n"
	"    with open(p) as f:\n"
	"        return f\n"
	"\n"
	"def wide_columns():\n"
	"    return str(1) + " W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 " + q(2)\n"
	"\n"
	"def long_line(v):\n"
	"    return ''' + '+'.join(['v'] * 200) + '''\n"
	"    return 3\n"
	"\n"
	"class K:\n"
	"    def m(self):\n"
	"        return [y for y in range(3) if y]\n"
	"    lam = lambda s: s\n"
	"\n"
	"def gen():\n"
	"    yield from range(3)\n"
	"\n"
	"async def co(x):\n"
	"    async with x as y:\n"
	"        await y\n"
	"''' + NL * 70000 + '''\n"
	"def far_away(a):\n"
	"    for i in a:\n"
	"        if i:\n"
	"            continue\n"
	"    return a\n"
	"'''\n"
	"\n"
	"def walk(co):\n"
	"    yield co\n"
	"    for c in co.co_consts:\n"
	"        if isinstance(c, types.CodeType):\n"
	"            yield from walk(c)\n"
	"\n"
	"def dump(co):\n"
	"    lines = unit_lines(co)\n"
	"    print(co.co_firstlineno, table(co).hex() or '-', len(lines), *lines)\n"
	"\n"
	"for co in walk(compile(SRC, 'oracle.py', 'exec')):\n"
	"    dump(co)\n"
	"print('stdlib')\n"
	"for name in sys.argv[1:]:\n"
	"    mod = __import__(name)\n"
	"    with open(mod.__file__, encoding='utf-8') as f:\n"
	"        for co in walk(compile(f.read(), mod.__file__, 'exec')):\n"
	"            dump(co)\n"
	"print('end')\n";

struct oracle_code {
	int firstlineno, handmade;
	uint8_t *table;
	size_t len;
	int units;
	int *lines;
};

static struct oracle_code *codes;
static size_t ncodes;

static void load_oracle(const char *python, const char *modules)
{
	char cmd[512], *line = NULL;
	size_t cap = 0, alloc = 0;
	int handmade = 1, ended = 0;
	FILE *p;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/oracle.py", dir);
	write_file(script, oracle_py);
	snprintf(cmd, sizeof(cmd), "%s %s %s", python, script, modules);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (getline(&line, &cap, p) > 0) {
		struct oracle_code *c;
		char *s = line, *hex, *end;

		if (strcmp(line, "stdlib\n") == 0) {
			handmade = 0;
			continue;
		}
		if (strcmp(line, "end\n") == 0) {
			ended = 1;
			break;
		}
		if (ncodes == alloc) {
			alloc = alloc ? alloc * 2 : 256;
			codes = realloc(codes, alloc * sizeof(*codes));
			cr_assert_not_null(codes);
		}
		c = &codes[ncodes++];
		c->handmade = handmade;
		c->firstlineno = strtol(s, &s, 10);
		hex = strtok_r(s, " ", &end);
		cr_assert_not_null(hex);
		c->len = strcmp(hex, "-") ? strlen(hex) / 2 : 0;
		c->table = malloc(c->len + 1);
		for (size_t i = 0; i < c->len; i++)
			cr_assert_eq(sscanf(hex + 2 * i, "%2hhx", &c->table[i]), 1);
		s = end;
		c->units = strtol(s, &s, 10);
		c->lines = malloc((c->units + 1) * sizeof(int));
		for (int i = 0; i < c->units; i++) {
			c->lines[i] = strtol(s, &end, 10);
			cr_assert_neq(end, s, "short line list in the oracle output");
			s = end;
		}
	}
	free(line);
	cr_assert_eq(pclose(p), 0, "%s failed", cmd);
	cr_assert(ended, "the oracle did not finish");
	cr_assert_gt(ncodes, 10);
}

/* A copy of `t` ending exactly at a page followed by an inaccessible one. */
static uint8_t *guarded(const uint8_t *t, size_t len)
{
	static uint8_t *pages;
	long pg = sysconf(_SC_PAGESIZE);

	cr_assert_leq(len, (size_t)pg);
	if (!pages) {
		pages = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);
		cr_assert_neq(pages, MAP_FAILED);
		cr_assert_eq(mprotect(pages + pg, pg, PROT_NONE), 0);
	}
	memcpy(pages + pg - len, t, len);
	return pages + pg - len;
}

/* What the oracle's tables exercised, so a test cannot pass on easy input. */
struct table_forms {
	int kinds[16], multibyte;			/* 3.11+ entry codes, varints */
	int zero_step, big_step, no_line;		/* 3.9/3.10 pairs */
	int backwards;					/* lines going back (loops) */
};

static void count_forms(unsigned int format, const struct oracle_code *c, struct table_forms *f)
{
	for (int i = 1; i < c->units; i++)
		f->backwards += c->lines[i] > 0 && c->lines[i - 1] > c->lines[i];
	for (size_t i = 0; i < c->len; i++) {
		if (format == PBPF_LINES_LOCATIONS) {
			if (c->table[i] & 0x80)
				f->kinds[(c->table[i] >> 3) & 15]++;
			else if (c->table[i] & 0x40)
				f->multibyte++; /* a varint continues */
		} else if (i % 2 == 0) {
			f->zero_step += c->table[i] == 0;
			f->big_step += c->table[i] >= 128; /* would go negative as a char */
		} else {
			f->no_line += (int8_t)c->table[i] == -128;
		}
	}
}

static void check_forms(unsigned int format, const struct table_forms *f)
{
	cr_assert_gt(f->backwards, 0, "lines going backwards (loops)");
	if (format == PBPF_LINES_LOCATIONS) {
		cr_assert_gt(f->kinds[0], 0, "short form");
		cr_assert_gt(f->kinds[10] + f->kinds[11] + f->kinds[12], 0, "one-line forms");
		cr_assert_gt(f->kinds[13], 0, "no-column form");
		cr_assert_gt(f->kinds[14], 0, "long form");
		cr_assert_gt(f->kinds[15], 0, "no-location entries");
		cr_assert_gt(f->multibyte, 0, "multi-byte varints");
		return;
	}
	cr_assert_gt(f->zero_step, 0, "line jumps split over pairs");
	cr_assert_gt(f->big_step, 0, "address steps of 128 bytes or more");
	if (format == PBPF_LINES_310)
		cr_assert_gt(f->no_line, 0, "ranges without a line (-128)");
}

/* Every unit of every code object: the line the resolver would compute from
 * the sampler's word equals the interpreter's. */
static void lines_match_interpreter(const struct pyver *v)
{
	const struct pbpf_py_offsets *o = offsets_of(v->minor);
	struct table_forms forms = { 0 };
	size_t checked = 0;

	load_oracle(v->python, "argparse dataclasses");
	for (size_t k = 0; k < ncodes; k++) {
		const struct oracle_code *c = &codes[k];

		for (int i = 0; i < c->units; i++) {
			uint64_t w = instr_word(o, FAKE_CODE, i);
			int got = frame_line(o, c->table, c->len, c->firstlineno, FAKE_CODE, w);

			cr_assert_eq(got, c->lines[i],
				     "3.%u code object %zu (firstlineno %d), unit %d: got line %d, "
				     "the interpreter says %d",
				     v->minor, k, c->firstlineno, i, got, c->lines[i]);
			checked++;
		}
		/* A table that knows where the code ends has no line past it. */
		if (o->lines_format != PBPF_LINES_LNOTAB)
			cr_assert_eq(frame_line(o, c->table, c->len, c->firstlineno, FAKE_CODE,
						instr_word(o, FAKE_CODE, c->units)), -1);
		count_forms(o->lines_format, c, &forms);
	}
	check_forms(o->lines_format, &forms);
	cr_assert_gt(checked, 10000);
}

FOR_EACH_VERSION(lines_match_interpreter)

/* The units an entry starting at byte `at` covers: entries start at bytes
 * with the top bit set (Objects/locations.md), every other byte is below 0x80. */
static int entry_units(const uint8_t *t, size_t at)
{
	return (t[at] & 7) + 1;
}

/* 3.11+: units of entries wholly inside the cut decode exactly, units past
 * the entry the cut falls into have no line. */
static size_t truncated_locations(const struct oracle_code *c, size_t cut)
{
	const uint8_t *t = guarded(c->table, cut);
	int complete = 0, partial_end = 0; /* in units */
	size_t tested = 0;

	for (size_t i = 0; i < c->len; i++) {
		size_t next = i + 1;

		if (!(c->table[i] & 0x80))
			continue;
		while (next < c->len && !(c->table[next] & 0x80))
			next++;
		if (next <= cut)
			complete += entry_units(c->table, i);
		else if (i < cut)
			partial_end = complete + entry_units(c->table, i);
	}
	if (!partial_end)
		partial_end = complete;
	for (int i = 0; i < c->units + 2; i++) {
		int got = linetable_line(t, cut, c->firstlineno, i);

		if (i < complete)
			cr_assert_eq(got, c->lines[i], "cut %zu of %zu, unit %d", cut, c->len, i);
		else if (i >= partial_end)
			cr_assert_eq(got, -1, "cut %zu of %zu, unit %d past the data", cut, c->len,
				     i);
		tested++;
	}
	return tested;
}

/* 3.9/3.10 pairs: an odd cut is no table (-1); offsets below the address
 * the whole pairs reach decode exactly; past it, 3.10 has no line and 3.9
 * keeps the prefix's last line (co_lnotab does not know the code's end). */
static size_t truncated_pairs(const struct oracle_code *c, size_t cut, int lnotab)
{
	const uint8_t *t = guarded(c->table, cut);
	int reach = 0, last = c->firstlineno;
	size_t tested = 0;

	for (size_t i = 0; i + 1 < cut; i += 2) {
		reach += c->table[i];
		last += (int8_t)c->table[i + 1];
	}
	for (int i = 0; i < c->units + 2; i++) {
		int got = lnotab ? lnotab_line(t, cut, c->firstlineno, 2 * i)
				 : linetable310_line(t, cut, c->firstlineno, 2 * i);

		if (cut % 2)
			cr_assert_eq(got, -1, "odd cut %zu, unit %d", cut, i);
		else if (2 * i < reach)
			cr_assert_eq(got, c->lines[i], "cut %zu of %zu, unit %d", cut, c->len, i);
		else
			cr_assert_eq(got, lnotab ? last : -1, "cut %zu of %zu, unit %d past the data",
				     cut, c->len, i);
		tested++;
	}
	return tested;
}

static void truncated_tables(const struct pyver *v)
{
	unsigned int format = offsets_of(v->minor)->lines_format;
	size_t tested = 0;

	load_oracle(v->python, "");
	for (size_t k = 0; k < ncodes; k++) {
		const struct oracle_code *c = &codes[k];

		if (!c->handmade || c->len > 400)
			continue;
		for (size_t cut = 0; cut <= c->len; cut++)
			tested += format == PBPF_LINES_LOCATIONS
					  ? truncated_locations(c, cut)
					  : truncated_pairs(c, cut, format == PBPF_LINES_LNOTAB);
	}
	cr_assert_gt(tested, 1000);
}

FOR_EACH_VERSION(truncated_tables)

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

typedef int (*decoder)(const uint8_t *table, size_t len, int firstlineno, int at);

/* Random tables and positions: any answer but a read past the end (the
 * guard page) is allowed; both "a line" and "none" must come up. */
static void fuzz(decoder fn, int top_bit)
{
	uint8_t buf[256];
	int lines = 0, unknown = 0;

	for (int round = 0; round < 20000; round++) {
		size_t len = next_rand() % sizeof(buf);
		int at = (int)(next_rand() % 600) - 50;

		for (size_t i = 0; i < len; i++)
			buf[i] = next_rand();
		if (top_bit && len && (round & 1))
			buf[0] |= 0x80; /* half of them start like a real entry */
		if (fn(guarded(buf, len), len, 100, at) == -1)
			unknown++;
		else
			lines++;
	}
	cr_assert_gt(unknown, 0);
	cr_assert_gt(lines, 0);
}

Test(symbols, linetable_garbage)
{
	uint8_t buf[256];

	fuzz(linetable_line, 1);
	/* 0xff: a no-location entry of 8 units. */
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(linetable_line(guarded(buf, 3), 3, 1, 0), -1, "code 15: no location");
	memset(buf, 0x7f, sizeof(buf));
	cr_assert_eq(linetable_line(guarded(buf, 40), 40, 1, 0), -1, "not an entry start");
	/* A long-form entry whose varints run to the end of the table. */
	buf[0] = 0x80 | 14 << 3;
	memset(buf + 1, 0x40 | 0x3f, 39);
	linetable_line(guarded(buf, 40), 40, 1, 0);
}

Test(symbols, lnotab_garbage)
{
	uint8_t buf[255];

	fuzz(lnotab_line, 0);
	memset(buf, 0x01, sizeof(buf));
	for (int at = 0; at < 300; at += 7)
		cr_assert_eq(lnotab_line(guarded(buf, 255), 255, 1, at), -1, "odd length, at %d", at);
	/* Steps of 255 bytes, lines -1 each: the walk ends inside the table. */
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(lnotab_line(guarded(buf, 254), 254, 500, 255 * 100), 400);
	cr_assert_eq(lnotab_line(guarded(buf, 254), 254, 500, INT_MAX), 500 - 127);
}

Test(symbols, linetable310_garbage)
{
	uint8_t buf[255];

	fuzz(linetable310_line, 0);
	memset(buf, 0x01, sizeof(buf));
	cr_assert_eq(linetable310_line(guarded(buf, 255), 255, 1, 0), -1, "odd length");
	/* Zero-length ranges only: no offset is covered. */
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(linetable310_line(guarded(buf, 254), 254, 1, 0), -1);
	memset(buf, 0x80, sizeof(buf));
	cr_assert_eq(linetable310_line(guarded(buf, 254), 254, 1, 1000), -1, "no line anywhere");
	cr_assert_eq(linetable310_line(guarded(buf, 254), 254, 1, INT_MAX), -1, "past the end");
}

Test(symbols, linetable_edges)
{
	/* Three units: line 10 (short form), +1 (one-line form), no location. */
	static const uint8_t t[] = { 0x80 | 0 << 3 | 0, 0x00,
				     0x80 | 11 << 3 | 0, 0x04, 0x08,
				     0x80 | 15 << 3 | 0 };

	cr_assert_eq(linetable_line(t, sizeof(t), 10, 0), 10);
	cr_assert_eq(linetable_line(t, sizeof(t), 10, 1), 11);
	cr_assert_eq(linetable_line(t, sizeof(t), 10, 2), -1);
	cr_assert_eq(linetable_line(t, sizeof(t), 10, 3), -1, "past the end");
	cr_assert_eq(linetable_line(t, 0, 10, 0), -1, "empty table");
	cr_assert_eq(linetable_line(NULL, 0, 10, 0), -1, "no table");
	cr_assert_eq(linetable_line(t, sizeof(t), 10, -1), -1, "negative index: no unit");
	cr_assert_eq(linetable_line(t, sizeof(t), 10, -1000000), -1);
}

Test(symbols, lnotab_edges)
{
	/* (address step, line step): 11 from 0, 12 from 6, 10 from 10, a step
	 * of 255 without a line change, 13 from 266. */
	static const uint8_t t[] = { 0, 1, 6, 1, 4, 0xfe, 255, 0, 1, 3 };

	cr_assert_eq(lnotab_line(t, sizeof(t), 10, 0), 11);
	cr_assert_eq(lnotab_line(t, sizeof(t), 10, 5), 11);
	cr_assert_eq(lnotab_line(t, sizeof(t), 10, 6), 12);
	cr_assert_eq(lnotab_line(t, sizeof(t), 10, 9), 12);
	cr_assert_eq(lnotab_line(t, sizeof(t), 10, 10), 10, "line steps are signed");
	cr_assert_eq(lnotab_line(t, sizeof(t), 10, 265), 10, "address steps are not");
	cr_assert_eq(lnotab_line(t, sizeof(t), 10, 266), 13);
	cr_assert_eq(lnotab_line(t, sizeof(t), 10, 100000), 13, "the last line holds");
	cr_assert_eq(lnotab_line(t, sizeof(t) - 1, 10, 0), -1, "odd length");
	cr_assert_eq(lnotab_line(t, sizeof(t), 10, -1), -1, "f_lasti -1: not started");
	/* An empty co_lnotab: every instruction is on the first line. */
	cr_assert_eq(lnotab_line(NULL, 0, 10, 0), 10);
	cr_assert_eq(lnotab_line(NULL, 0, 10, 40), 10);
}

Test(symbols, linetable310_edges)
{
	/* [0,4) line 11, a zero-length +127, [4,10) line 211, [10,12) no line,
	 * [12,16) line 208. */
	static const uint8_t t[] = { 4, 1, 0, 127, 6, 73, 2, 0x80, 4, 0xfd };

	cr_assert_eq(linetable310_line(t, sizeof(t), 10, 0), 11);
	cr_assert_eq(linetable310_line(t, sizeof(t), 10, 3), 11);
	cr_assert_eq(linetable310_line(t, sizeof(t), 10, 4), 211, "zero-length pairs add up");
	cr_assert_eq(linetable310_line(t, sizeof(t), 10, 9), 211);
	cr_assert_eq(linetable310_line(t, sizeof(t), 10, 10), -1, "-128: no line");
	cr_assert_eq(linetable310_line(t, sizeof(t), 10, 11), -1);
	cr_assert_eq(linetable310_line(t, sizeof(t), 10, 12), 208, "-128 kept the running line");
	cr_assert_eq(linetable310_line(t, sizeof(t), 10, 15), 208);
	cr_assert_eq(linetable310_line(t, sizeof(t), 10, 16), -1, "past the end");
	cr_assert_eq(linetable310_line(t, sizeof(t) - 1, 10, 0), -1, "odd length");
	cr_assert_eq(linetable310_line(t, sizeof(t), 10, -2), -1, "not started");
	cr_assert_eq(linetable310_line(NULL, 0, 10, 0), -1, "no table");
}

static void expect_offset(unsigned int minor, uint64_t instr, int want)
{
	const struct pbpf_py_offsets *o = offsets_of(minor);
	int got = instr_offset(o, FAKE_CODE, instr);

	cr_assert_eq(got, want, "3.%u, word %#llx: offset %d, want %d", minor,
		     (unsigned long long)instr, got, want);
}

Test(symbols, instr_words)
{
	uint64_t a11 = FAKE_CODE + 184, a12 = FAKE_CODE + 192, a13 = FAKE_CODE + 200;
	struct pbpf_py_offsets broken = *offsets_of(13);

	/* co_code_adaptive per version, as the pointer arithmetic below assumes. */
	cr_assert_eq(offsets_of(11)->code_code_adaptive, 184);
	cr_assert_eq(offsets_of(12)->code_code_adaptive, 192);
	cr_assert_eq(offsets_of(13)->code_code_adaptive, 200);
	/* 3.9: f_lasti in bytes, an int in the low half of the word. */
	expect_offset(9, 0, 0);
	expect_offset(9, 30, 30);
	expect_offset(9, 0xffffffff, -1);
	expect_offset(9, 0xdead00000010ULL, 16);
	expect_offset(9, INT_MAX, INT_MAX);
	/* 3.10: f_lasti in code units. */
	expect_offset(10, 0, 0);
	expect_offset(10, 15, 30);
	expect_offset(10, 0xffffffff, -1);
	expect_offset(10, 0x3fffffff, 0x7ffffffe);
	expect_offset(10, 0x40000000, -1);
	/* 3.11/3.12: prev_instr; one unit before the code: not started. */
	expect_offset(11, a11, 0);
	expect_offset(11, a11 + 14, 14);
	expect_offset(11, a11 - 2, -1);
	expect_offset(11, a11 + 1, -1);
	expect_offset(11, 0, -1);
	expect_offset(11, FAKE_CODE, -1);
	expect_offset(12, a12, 0);
	expect_offset(12, a12 + 2000, 2000);
	expect_offset(12, a12 - 2, -1);
	/* 3.13: instr_ptr, the current instruction, with the same arithmetic. */
	expect_offset(13, a13, 0);
	expect_offset(13, a13 + 6, 6);
	expect_offset(13, a13 - 2, -1);
	expect_offset(13, a13 + (1ULL << 31), -1);
	broken.code_code_adaptive = PBPF_NONE;
	cr_assert_eq(instr_offset(&broken, FAKE_CODE, a13), -1, "no co_code_adaptive");
	broken = *offsets_of(9);
	broken.instr_kind = 77;
	cr_assert_eq(instr_offset(&broken, FAKE_CODE, 4), -1, "unknown kind");
}

/* ---- symbols__resolve against real interpreters ---- */

/* Prints, per code object: tag, id(code), co_firstlineno, hex(UTF-8 of what
 * the resolver should name it: co_qualname, on 3.9/3.10 co_name), hex(UTF-8
 * filename), then unit_lines(); then the frame of a thread parked in a
 * sleep() call (id(frame), id(code), f_lineno), the addresses of
 * PyCode_Type, None and a function object, and sleeps.  The call is split
 * over two lines so that, from 3.11 on, the unit before the call is on
 * another line than the call: an off-by-one in the frame's word shows. */
static const char child_py[] =
	PY_UNIT_LINES
	"import threading, time\n"
	"class Outer:\n"
	"    def method(self):\n"
	"        def inner():\n"
	"            return 1\n"
	"        return inner\n"
	"\n"
	"def target_function(n):\n"
	"    x = 1\n"
	"    for i in range(n):\n"
	"        x += (i *\n"
	"              2)\n"
	"    return x\n"
	"\n"
	"def caf\xc3\xa9():\n"
	"    return 2\n"
	"\n"
	"def \xce\xbb_kind2():\n"
	"    return 3\n"
	"\n"
	"def \xf0\xa0\x80\x80_kind4():\n"
	"    return 4\n"
	"\n"
	"def parked(frames, started, t):\n"
	"    frames.append(sys._getframe())\n"
	"    started.set()\n"
	"    sleep = time.sleep\n"
	"    sleep(\n"
	"        t)\n"
	"\n"
	"ns = {}\n"
	"for ch in ('n', chr(0xe9), chr(0x3bb), chr(0x20000)):\n"
	"    exec('def ' + ch * 300 + '(): pass', ns)\n"
	"\n"
	"def emit(tag, co):\n"
	"    name = getattr(co, 'co_qualname', co.co_name)\n"
	"    print(tag, id(co), co.co_firstlineno, name.encode().hex(),\n"
	"          co.co_filename.encode().hex(), *unit_lines(co))\n"
	"\n"
	"emit('target', target_function.__code__)\n"
	"emit('inner', Outer().method().__code__)\n"
	"emit('method', Outer.method.__code__)\n"
	"emit('cafe', caf\xc3\xa9.__code__)\n"
	"emit('kind2', \xce\xbb_kind2.__code__)\n"
	"emit('kind4', \xf0\xa0\x80\x80_kind4.__code__)\n"
	"for i, f in enumerate(v for k, v in ns.items() if k != '__builtins__'):\n"
	"    emit('long%d' % i, f.__code__)\n"
	"frames, started = [], threading.Event()\n"
	"threading.Thread(target=parked, args=(frames, started, 120), daemon=True).start()\n"
	"started.wait()\n"
	"time.sleep(0.3)\n"
	"print('parked', id(frames[0]), id(parked.__code__), frames[0].f_lineno,\n"
	"      parked.__code__.co_firstlineno + 4)\n"
	"print('type', id(type(target_function.__code__)))\n"
	"print('none', id(None))\n"
	"print('function', id(target_function))\n"
	"print('ready', flush=True)\n"
	"time.sleep(120)\n";

struct child_code {
	char tag[16];
	uint64_t code;
	int firstlineno;
	char qualname[2048], file[512];
	int units, lines[512];
};

struct child {
	pid_t pid;
	struct child_code c[16];
	int n;
	uint64_t code_type, none, function;
	uint64_t parked_frame, parked_code;	/* PyFrameObject *, its code */
	int parked_line, call_line;		/* f_lineno, the line of "sleep(" */
};

static void read_line(int fd, char *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t n = 0;

	while (n + 1 < len) {
		cr_assert_eq(poll(&pfd, 1, 20000), 1, "child printed nothing in 20 s");
		cr_assert_eq(read(fd, buf + n, 1), 1, "child closed its stdout");
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = 0;
}

static void unhex(const char *hex, char *out, size_t size)
{
	size_t n = strlen(hex) / 2;

	cr_assert_lt(n, size);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(sscanf(hex + 2 * i, "%2hhx", (unsigned char *)&out[i]), 1);
	out[n] = 0;
}

static void parse_code(struct child *ch, char *line)
{
	struct child_code *c = &ch->c[ch->n++];
	char qhex[4096], fhex[1024];
	int used;
	unsigned long long code;

	cr_assert_leq(ch->n, 16);
	cr_assert_eq(sscanf(line, "%15s %llu %d %4095s %1023s%n", c->tag, &code, &c->firstlineno,
			    qhex, fhex, &used), 5, "bad line: %s", line);
	c->code = code;
	unhex(qhex, c->qualname, sizeof(c->qualname));
	unhex(fhex, c->file, sizeof(c->file));
	for (char *s = line + used, *end;; s = end) {
		long v = strtol(s, &end, 10);

		if (end == s)
			break;
		cr_assert_lt(c->units, 512);
		c->lines[c->units++] = v;
	}
}

static int parse_extra(struct child *ch, const char *line)
{
	unsigned long long a, b;

	if (sscanf(line, "parked %llu %llu %d %d", &a, &b, &ch->parked_line, &ch->call_line) == 4) {
		ch->parked_frame = a;
		ch->parked_code = b;
	} else if (sscanf(line, "type %llu", &a) == 1) {
		ch->code_type = a;
	} else if (sscanf(line, "none %llu", &a) == 1) {
		ch->none = a;
	} else if (sscanf(line, "function %llu", &a) == 1) {
		ch->function = a;
	} else {
		return 0;
	}
	return 1;
}

/* Starts `python` on the child script (under a non-ASCII file name) and
 * reads what it prints. */
static void start_child(const char *python, struct child *ch)
{
	char line[8192];
	pid_t parent = getpid();
	int p[2];

	memset(ch, 0, sizeof(*ch));
	if (strstr(dir, "XXXXXX"))
		cr_assert_not_null(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/pr\xc3\xb6g.py", dir);
	write_file(script, child_py);
	cr_assert_eq(pipe(p), 0);
	ch->pid = fork();
	cr_assert_geq(ch->pid, 0);
	if (ch->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(p[0]);
		dup2(p[1], STDOUT_FILENO);
		execl(python, python, script, (char *)NULL);
		_exit(127);
	}
	kids[nkids++] = ch->pid;
	close(p[1]);
	for (;;) {
		read_line(p[0], line, sizeof(line));
		cr_assert_neq(line[0], 0, "%s exited early", python);
		if (strcmp(line, "ready\n") == 0)
			break;
		if (!parse_extra(ch, line))
			parse_code(ch, line);
	}
	close(p[0]);
	cr_assert(ch->code_type && ch->none && ch->function && ch->parked_frame && ch->n == 10,
		  "%d codes", ch->n);
}

static const struct child_code *find(const struct child *ch, const char *tag)
{
	for (int i = 0; i < ch->n; i++)
		if (strcmp(ch->c[i].tag, tag) == 0)
			return &ch->c[i];
	cr_assert_fail("no code object %s", tag);
	return NULL;
}

/* The line the resolver gives a unit: the interpreter's, or the first line
 * when the unit has none. */
static int unit_line(const struct child_code *c, int unit)
{
	return c->lines[unit] > 0 ? c->lines[unit] : c->firstlineno;
}

static void check_names(struct symbols *s, const struct child *ch, const struct pbpf_py_offsets *o,
			unsigned int minor)
{
	static const char *const tags[] = { "target", "inner", "method", "cafe", "kind2", "kind4" };

	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		const struct child_code *c = find(ch, tags[i]);
		struct pyframe_sym sym;

		symbols__resolve(s, ch->pid, c->code, instr_word(o, c->code, 0), 1000, &sym);
		cr_assert_str_eq(sym.qualname, c->qualname, "%s", tags[i]);
		cr_assert_str_eq(sym.file, c->file);
		cr_assert_eq(sym.line, unit_line(c, 0), "%s: the first unit's line", tags[i]);
	}
	/* 3.9/3.10 code objects carry no qualname: the resolver names co_name. */
	cr_assert_str_eq(find(ch, "inner")->qualname,
			 minor >= 11 ? "Outer.method.<locals>.inner" : "inner");
	cr_assert_str_eq(find(ch, "method")->qualname, minor >= 11 ? "Outer.method" : "method");
	cr_assert_str_eq(find(ch, "cafe")->qualname, "caf\xc3\xa9");
	cr_assert_str_eq(find(ch, "kind2")->qualname, "\xce\xbb_kind2");
	cr_assert_str_eq(find(ch, "kind4")->qualname, "\xf0\xa0\x80\x80_kind4");
	cr_assert(strstr(find(ch, "target")->file, "/pr\xc3\xb6g.py"));
}

/* Every unit of target_function through the word the sampler would record
 * there, and a frame that has not started yet. */
static void check_lines(struct symbols *s, const struct child *ch, const struct pbpf_py_offsets *o)
{
	const struct child_code *c = find(ch, "target");
	int distinct = 0, last = 0;
	struct pyframe_sym sym;

	cr_assert_gt(c->units, 10);
	for (int i = 0; i < c->units; i++) {
		int want = unit_line(c, i);

		symbols__resolve(s, ch->pid, c->code, instr_word(o, c->code, i), 2000, &sym);
		cr_assert_eq(sym.line, want, "unit %d of %d: line %d, want %d", i, c->units,
			     sym.line, want);
		cr_assert_str_eq(sym.qualname, "target_function");
		distinct += want != last;
		last = want;
	}
	cr_assert_geq(distinct, 5, "the oracle function spans several lines");
	/* PyCode_Addr2Line gives a negative offset the first line.  The body
	 * starts below it, so the first line is not what unit 0 would give. */
	if (o->instr_kind != PBPF_INSTR_PTR) {
		symbols__resolve(s, ch->pid, c->code, instr_word(o, c->code, -1), 2000, &sym);
		cr_assert_eq(sym.line, c->firstlineno, "a frame that has not started");
	}
	if (o->instr_kind <= PBPF_INSTR_LASTI_UNITS)
		cr_assert_neq(c->lines[0], c->firstlineno, "3.9/3.10: unit 0 is in the body");
}

/* The word read out of the parked thread's real frame, where the sampler
 * reads it: the line the interpreter reports for that frame. */
static void check_parked(struct symbols *s, const struct child *ch, const struct pbpf_py_offsets *o,
			 unsigned int minor)
{
	size_t wlen = o->instr_kind <= PBPF_INSTR_LASTI_UNITS ? 4 : 8;
	uint64_t frame = ch->parked_frame, code = 0, word = 0, again = 0;
	struct pyframe_sym sym;

	/* 3.11+: PyFrameObject.f_frame (after the object header and f_back)
	 * is the interpreter frame the sampler walks. */
	if (o->instr_kind >= PBPF_INSTR_PREV_PTR)
		cr_assert_eq(pyinspect_read(ch->pid, frame + 24, &frame, 8), 0);
	cr_assert_eq(pyinspect_read(ch->pid, frame + o->frame_code, &code, 8), 0);
	cr_assert_eq(code, ch->parked_code, "the frame runs parked()");
	cr_assert_eq(pyinspect_read(ch->pid, frame + o->frame_prev_instr, &word, wlen), 0);
	usleep(20000);
	cr_assert_eq(pyinspect_read(ch->pid, frame + o->frame_prev_instr, &again, wlen), 0);
	cr_assert_eq(word, again, "the thread sits in sleep()");
	symbols__resolve(s, ch->pid, code, word, 3000, &sym);
	cr_assert_str_eq(sym.qualname, "parked");
	cr_assert_eq(sym.line, ch->parked_line, "word %#llx: line %d, f_lineno %d",
		     (unsigned long long)word, sym.line, ch->parked_line);
	if (o->instr_kind < PBPF_INSTR_PREV_PTR)
		return;
	/* From 3.11 the call is on the "sleep(" line.  On 3.12/3.13 the word
	 * names the CALL itself and the unit before it loads the argument, on
	 * the next line, so reading the word one unit off would show (3.11 has
	 * a PRECALL in between). */
	cr_assert_eq(ch->parked_line, ch->call_line);
	if (minor >= 12) {
		symbols__resolve(s, ch->pid, code, word - 2, 3000, &sym);
		cr_assert_eq(sym.line, ch->call_line + 1, "the unit before the call");
	}
}

/* Names cut at 255 bytes of UTF-8, never inside a character. */
static int valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
			: (*p & 0xf8) == 0xf0 ? 3 : -1;

		if (n < 0)
			return 0;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

static void check_long_names(struct symbols *s, const struct child *ch)
{
	for (int i = 0; i < 4; i++) {
		char tag[16];
		const struct child_code *c;
		struct pyframe_sym sym;
		size_t n;

		snprintf(tag, sizeof(tag), "long%d", i);
		c = find(ch, tag);
		symbols__resolve(s, ch->pid, c->code, 0, 0, &sym);
		n = strlen(sym.qualname);
		cr_assert(valid_utf8(sym.qualname), "%s cut inside a character", tag);
		cr_assert_geq(n, 200, "%s: %zu bytes kept", tag, n);
		cr_assert_lt(n, 512);
		cr_assert_eq(strncmp(sym.qualname, c->qualname, n), 0, "%s: not a prefix", tag);
		cr_assert_gt(strlen(c->qualname), n, "%s: 300 characters are cut", tag);
	}
}

static void check_interpreter(const char *python, unsigned int minor)
{
	const struct pbpf_py_offsets *o = offsets_of(minor);
	struct symbols *plain, *typed;
	struct child ch;

	start_child(python, &ch);
	plain = symbols__new(o, 0);
	typed = symbols__new(o, ch.code_type);
	cr_assert(plain && typed);
	check_names(plain, &ch, o, minor);
	check_names(typed, &ch, o, minor);
	check_lines(plain, &ch, o);
	check_lines(typed, &ch, o);
	check_parked(typed, &ch, o, minor);
	check_long_names(typed, &ch);
	cr_assert_eq(symbols__misses(plain), 0);
	cr_assert_eq(symbols__misses(typed), 0);
	symbols__free(plain);
	symbols__free(typed);
}

static void resolve(const struct pyver *v)
{
	check_interpreter(v->python, v->minor);
}

FOR_EACH_VERSION(resolve)

Test(symbols, resolve_debian_python)
{
	check_interpreter(DEBIAN_PY, 11);
}

Test(symbols, bogus_addresses)
{
	const struct pbpf_py_offsets *o = off311();
	struct symbols *plain = symbols__new(o, 0), *typed;
	struct pyframe_sym sym;
	struct child ch;

	start_child(PYENV_PY, &ch);
	typed = symbols__new(o, ch.code_type);
	/* Unmapped memory: unknown with or without the type check. */
	symbols__resolve(plain, ch.pid, 0x1000, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_str_eq(sym.file, "?");
	cr_assert_eq(sym.line, -1);
	cr_assert_eq(symbols__misses(plain), 1);
	symbols__resolve(typed, ch.pid, 0x1000, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(typed), 1);
	/* Readable objects that are not code objects. */
	symbols__resolve(typed, ch.pid, ch.none, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(sym.line, -1);
	cr_assert_eq(symbols__misses(typed), 2);
	symbols__resolve(typed, ch.pid, ch.function, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(typed), 3);
	/* A real code object in a process that does not exist. */
	symbols__resolve(typed, NO_PID, find(&ch, "target")->code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(typed), 4);
	/* The right pid still resolves after the failures. */
	symbols__resolve(typed, ch.pid, find(&ch, "target")->code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "target_function");
	cr_assert_eq(symbols__misses(typed), 4);
	symbols__free(plain);
	symbols__free(typed);
	/* A wrong PyCode_Type rejects even real code objects. */
	typed = symbols__new(o, ch.code_type + 8);
	symbols__resolve(typed, ch.pid, find(&ch, "target")->code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(typed), 1);
	symbols__free(typed);
	symbols__free(NULL);
}

Test(symbols, offsets_outside_the_headers_are_refused)
{
	struct pbpf_py_offsets o = *off311();

	o.code_linetable = 256 - 4;
	errno = 0;
	cr_assert_null(symbols__new(&o, 0), "the table pointer would end past the header");
	cr_assert_eq(errno, EINVAL);
	o = *off311();
	o.code_qualname = PBPF_NONE;
	cr_assert_null(symbols__new(&o, 0));
	o = *off311();
	o.str_state = 40;
	cr_assert_null(symbols__new(&o, 0), "str state past the smallest str header");
	for (unsigned int minor = 9; minor <= 13; minor++) {
		struct symbols *s = symbols__new(offsets_of(minor), 0);

		cr_assert_not_null(s, "3.%u's table fits", minor);
		symbols__free(s);
	}
}
/* ---- cache revalidation and line tables, with code objects forged here ---- */

static uint64_t fake_code_type[8];

static uint8_t *fake_str(const struct pbpf_py_offsets *o, const char *s)
{
	/* As in CPython, the text follows the header: no read runs past it. */
	uint8_t *obj = calloc(1, o->str_ascii_data + strlen(s) + 1);
	uint64_t len = strlen(s);
	uint32_t state = 1u << o->str_compact_bit | 1u << o->str_ascii_bit | 1u << o->str_kind_shift;

	cr_assert_not_null(obj);
	memcpy(obj + o->str_length, &len, 8);
	memcpy(obj + o->str_state, &state, 4);
	memcpy(obj + o->str_ascii_data, s, len);
	return obj;
}

static void set_ptr(uint8_t *obj, uint32_t at, const void *v)
{
	uint64_t p = (uint64_t)(uintptr_t)v;

	memcpy(obj + at, &p, 8);
}

static uint8_t *fake_code(const struct pbpf_py_offsets *o, const char *qualname, const char *file,
			  int32_t firstlineno)
{
	uint8_t *c = calloc(1, 1024);

	cr_assert_not_null(c);
	set_ptr(c, 8, fake_code_type);
	set_ptr(c, o->code_qualname, fake_str(o, qualname));
	set_ptr(c, o->code_filename, fake_str(o, file));
	memcpy(c + o->code_firstlineno, &firstlineno, 4);
	return c;
}

Test(symbols, revalidation_after_a_second)
{
	const struct pbpf_py_offsets *o = off311();
	struct symbols *s = symbols__new(o, (uint64_t)(uintptr_t)fake_code_type);
	uint8_t *code = fake_code(o, "before", "/app/a.py", 7);
	uint64_t addr = (uint64_t)(uintptr_t)code, t0 = 5000000000ULL;
	int32_t line = 9;
	struct pyframe_sym sym;

	symbols__resolve(s, getpid(), addr, 0, t0, &sym);
	cr_assert_str_eq(sym.qualname, "before");
	cr_assert_str_eq(sym.file, "/app/a.py");
	cr_assert_eq(sym.line, 7);
	/* The object is reused for another function. */
	set_ptr(code, o->code_qualname, fake_str(o, "after"));
	memcpy(code + o->code_firstlineno, &line, 4);
	symbols__resolve(s, getpid(), addr, 0, t0 + 500000000ULL, &sym);
	cr_assert_str_eq(sym.qualname, "before", "within a second the cache answers");
	cr_assert_eq(sym.line, 7);
	symbols__resolve(s, getpid(), addr, 0, t0 + 1500000000ULL, &sym);
	cr_assert_str_eq(sym.qualname, "after", "revalidated after a second");
	cr_assert_eq(sym.line, 9);
	/* Freed: no longer a code object. */
	set_ptr(code, 8, NULL);
	symbols__resolve(s, getpid(), addr, 0, t0 + 1600000000ULL, &sym);
	cr_assert_str_eq(sym.qualname, "after", "cached");
	cr_assert_eq(symbols__misses(s), 0);
	symbols__resolve(s, getpid(), addr, 0, t0 + 3000000000ULL, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(sym.line, -1);
	cr_assert_eq(symbols__misses(s), 1);
	symbols__free(s);
}

Test(symbols, same_address_in_two_processes)
{
	const struct pbpf_py_offsets *o = off311();
	struct symbols *s = symbols__new(o, 0);
	uint8_t *code = fake_code(o, "mine", "/app/m.py", 3);
	struct pyframe_sym sym;

	symbols__resolve(s, getpid(), (uint64_t)(uintptr_t)code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "mine");
	/* The cache is per process: another pid's address is read there. */
	symbols__resolve(s, NO_PID, (uint64_t)(uintptr_t)code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(s), 1);
	symbols__free(s);
}

/* A bytes object whose ob_size says `claimed` and whose data is t[0, len). */
static uint8_t *fake_bytes(const struct pbpf_py_offsets *o, const void *t, size_t len,
			   uint64_t claimed)
{
	uint8_t *b = calloc(1, o->bytes_data + len + 1);

	cr_assert_not_null(b);
	memcpy(b + o->bytes_size, &claimed, 8);
	memcpy(b + o->bytes_data, t, len);
	return b;
}

/* A forged code object of version `o` with `table` as its line table. */
static uint64_t code_with_table(const struct pbpf_py_offsets *o, const uint8_t *bytes)
{
	uint8_t *c = fake_code(o, "f", "/app/f.py", 10);

	set_ptr(c, o->code_linetable, bytes);
	return (uint64_t)(uintptr_t)c;
}

static int line_of(struct symbols *s, uint64_t code, uint64_t instr)
{
	struct pyframe_sym sym;

	symbols__resolve(s, getpid(), code, instr, 0, &sym);
	cr_assert_str_eq(sym.qualname, "f");
	return sym.line;
}

Test(symbols, forged_lnotab)
{
	/* Line 11 from byte 0, 13 from byte 4. */
	static const uint8_t t[] = { 0, 1, 4, 2 };
	struct pbpf_py_offsets o = *offsets_of(9);
	struct symbols *s;
	uint64_t good, odd, huge, unmapped;

	/* Where ob_size sits is the table's business: move it off long_size. */
	o.bytes_size = 24;
	o.bytes_data = 40;
	cr_assert_neq(o.bytes_size, o.long_size);
	s = symbols__new(&o, (uint64_t)(uintptr_t)fake_code_type);
	good = code_with_table(&o, fake_bytes(&o, t, 4, 4));
	cr_assert_eq(line_of(s, good, 0xffffffff), 10, "f_lasti -1: the first line");
	cr_assert_eq(line_of(s, good, 0), 11);
	cr_assert_eq(line_of(s, good, 2), 11);
	cr_assert_eq(line_of(s, good, 4), 13);
	cr_assert_eq(line_of(s, good, 400), 13);
	/* Malformed, too long or unreadable tables: the first line. */
	odd = code_with_table(&o, fake_bytes(&o, t, 3, 3));
	cr_assert_eq(line_of(s, odd, 4), 10);
	huge = code_with_table(&o, fake_bytes(&o, t, 4, 1ULL << 40));
	cr_assert_eq(line_of(s, huge, 4), 10);
	unmapped = code_with_table(&o, (const uint8_t *)0x1000);
	cr_assert_eq(line_of(s, unmapped, 4), 10);
	cr_assert_eq(symbols__misses(s), 0);
	symbols__free(s);
}

Test(symbols, forged_linetable310)
{
	/* Units 0-1 line 11, units 2-3 no line. */
	static const uint8_t t[] = { 4, 1, 4, 0x80 };
	const struct pbpf_py_offsets *o = offsets_of(10);
	struct symbols *s = symbols__new(o, (uint64_t)(uintptr_t)fake_code_type);
	uint64_t code = code_with_table(o, fake_bytes(o, t, sizeof(t), sizeof(t)));

	cr_assert_eq(line_of(s, code, 0xffffffff), 10, "f_lasti -1: the first line");
	cr_assert_eq(line_of(s, code, 1), 11, "f_lasti 1 is byte 2");
	cr_assert_eq(line_of(s, code, 2), 10, "no line: the first line");
	cr_assert_eq(line_of(s, code, 4), 10, "past the table");
	symbols__free(s);
}
