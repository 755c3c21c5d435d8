// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The line decoders against the interpreter itself, for every supported
 * CPython (pyenv 3.9.18 to 3.13.0): each version compiles hand-made functions
 * (multi-line statements, loops, nested calls, a 300-line and a 70000-line
 * jump, code without a location, wide columns, a 400-byte line) and a stdlib
 * module, and prints every code object's line table with the line
 * PyCode_Addr2Line gives each code unit (the function PyFrame_GetLineNumber
 * calls; on 3.10+ it must agree with co_lines() and co_positions()).  The
 * decoders are fed that table and the instruction word the sampler would
 * record for the unit.  Garbage and truncated tables are fed from the end of
 * a page followed by a PROT_NONE page, so an out-of-bounds read crashes the
 * test.  symbols__resolve on real processes is test_symbols.c's.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "pyversions.h"
#include "linetable.h"

/* Where the pure tests pretend the code object lives. */
#define FAKE_CODE 0x7f5a00001000ULL

TestSuite(linetables, .fini = pyv_cleanup, .timeout = 60);

#define W10 "wwwwwwwwww"

/* Prints "firstlineno hex(table) units line..." per code object, hand-made
 * ones first, then "stdlib", the stdlib modules named in argv, and "end". */
static const char oracle_py[] = PY_UNIT_LINES
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
	"    return str(1) + " W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10 W10
	" + q(2)\n"
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

	snprintf(cmd, sizeof(cmd), "%s %s %s", python, pyv_script("oracle.py", oracle_py), modules);
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
		pages = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			     0);
		cr_assert_neq(pages, MAP_FAILED);
		cr_assert_eq(mprotect(pages + pg, pg, PROT_NONE), 0);
	}
	memcpy(pages + pg - len, t, len);
	return pages + pg - len;
}

/* What the oracle's tables exercised, so a test cannot pass on easy input. */
struct table_forms {
	int kinds[16], multibyte;	  /* 3.11+ entry codes, varints */
	int zero_step, big_step, no_line; /* 3.9/3.10 pairs */
	int backwards;			  /* lines going back (loops) */
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
			int got = linetable_frame_line(o, c->table, c->len, c->firstlineno,
						       FAKE_CODE, w);

			cr_assert_eq(got, c->lines[i],
				     "3.%u code object %zu (firstlineno %d), unit %d: got line %d, "
				     "the interpreter says %d",
				     v->minor, k, c->firstlineno, i, got, c->lines[i]);
			checked++;
		}
		/* A table that knows where the code ends has no line past it. */
		if (o->lines_format != PBPF_LINES_LNOTAB)
			cr_assert_eq(linetable_frame_line(o, c->table, c->len, c->firstlineno,
							  FAKE_CODE,
							  instr_word(o, FAKE_CODE, c->units)),
				     -1);
		count_forms(o->lines_format, c, &forms);
	}
	check_forms(o->lines_format, &forms);
	cr_assert_gt(checked, 10000);
}

FOR_EACH_VERSION(linetables, lines_match_interpreter)

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
		int got = linetable_locations_line(t, cut, c->firstlineno, i);

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
		int got = lnotab ? linetable_lnotab_line(t, cut, c->firstlineno, 2 * i)
				 : linetable_pep626_line(t, cut, c->firstlineno, 2 * i);

		if (cut % 2)
			cr_assert_eq(got, -1, "odd cut %zu, unit %d", cut, i);
		else if (2 * i < reach)
			cr_assert_eq(got, c->lines[i], "cut %zu of %zu, unit %d", cut, c->len, i);
		else
			cr_assert_eq(got, lnotab ? last : -1,
				     "cut %zu of %zu, unit %d past the data", cut, c->len, i);
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

FOR_EACH_VERSION(linetables, truncated_tables)

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

Test(linetables, linetable_garbage)
{
	uint8_t buf[256];

	fuzz(linetable_locations_line, 1);
	/* 0xff: a no-location entry of 8 units. */
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(linetable_locations_line(guarded(buf, 3), 3, 1, 0), -1,
		     "code 15: no location");
	memset(buf, 0x7f, sizeof(buf));
	cr_assert_eq(linetable_locations_line(guarded(buf, 40), 40, 1, 0), -1,
		     "not an entry start");
	/* A long-form entry whose varints run to the end of the table. */
	buf[0] = 0x80 | 14 << 3;
	memset(buf + 1, 0x40 | 0x3f, 39);
	linetable_locations_line(guarded(buf, 40), 40, 1, 0);
}

Test(linetables, lnotab_garbage)
{
	uint8_t buf[255];

	fuzz(linetable_lnotab_line, 0);
	memset(buf, 0x01, sizeof(buf));
	for (int at = 0; at < 300; at += 7)
		cr_assert_eq(linetable_lnotab_line(guarded(buf, 255), 255, 1, at), -1,
			     "odd length, at %d", at);
	/* Steps of 255 bytes, lines -1 each: the walk ends inside the table. */
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(linetable_lnotab_line(guarded(buf, 254), 254, 500, 255 * 100), 400);
	cr_assert_eq(linetable_lnotab_line(guarded(buf, 254), 254, 500, INT_MAX), 500 - 127);
}

Test(linetables, linetable310_garbage)
{
	uint8_t buf[255];

	fuzz(linetable_pep626_line, 0);
	memset(buf, 0x01, sizeof(buf));
	cr_assert_eq(linetable_pep626_line(guarded(buf, 255), 255, 1, 0), -1, "odd length");
	/* Zero-length ranges only: no offset is covered. */
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(linetable_pep626_line(guarded(buf, 254), 254, 1, 0), -1);
	memset(buf, 0x80, sizeof(buf));
	cr_assert_eq(linetable_pep626_line(guarded(buf, 254), 254, 1, 1000), -1,
		     "no line anywhere");
	cr_assert_eq(linetable_pep626_line(guarded(buf, 254), 254, 1, INT_MAX), -1, "past the end");
}

Test(linetables, linetable_edges)
{
	/* Three units: line 10 (short form), +1 (one-line form), no location. */
	static const uint8_t t[] = { 0x80 | 0 << 3 | 0, 0x00, 0x80 | 11 << 3 | 0, 0x04, 0x08,
				     0x80 | 15 << 3 | 0 };

	cr_assert_eq(linetable_locations_line(t, sizeof(t), 10, 0), 10);
	cr_assert_eq(linetable_locations_line(t, sizeof(t), 10, 1), 11);
	cr_assert_eq(linetable_locations_line(t, sizeof(t), 10, 2), -1);
	cr_assert_eq(linetable_locations_line(t, sizeof(t), 10, 3), -1, "past the end");
	cr_assert_eq(linetable_locations_line(t, 0, 10, 0), -1, "empty table");
	cr_assert_eq(linetable_locations_line(NULL, 0, 10, 0), -1, "no table");
	cr_assert_eq(linetable_locations_line(t, sizeof(t), 10, -1), -1, "negative index: no unit");
	cr_assert_eq(linetable_locations_line(t, sizeof(t), 10, -1000000), -1);
}

Test(linetables, lnotab_edges)
{
	/* (address step, line step): 11 from 0, 12 from 6, 10 from 10, a step
	 * of 255 without a line change, 13 from 266. */
	static const uint8_t t[] = { 0, 1, 6, 1, 4, 0xfe, 255, 0, 1, 3 };

	cr_assert_eq(linetable_lnotab_line(t, sizeof(t), 10, 0), 11);
	cr_assert_eq(linetable_lnotab_line(t, sizeof(t), 10, 5), 11);
	cr_assert_eq(linetable_lnotab_line(t, sizeof(t), 10, 6), 12);
	cr_assert_eq(linetable_lnotab_line(t, sizeof(t), 10, 9), 12);
	cr_assert_eq(linetable_lnotab_line(t, sizeof(t), 10, 10), 10, "line steps are signed");
	cr_assert_eq(linetable_lnotab_line(t, sizeof(t), 10, 265), 10, "address steps are not");
	cr_assert_eq(linetable_lnotab_line(t, sizeof(t), 10, 266), 13);
	cr_assert_eq(linetable_lnotab_line(t, sizeof(t), 10, 100000), 13, "the last line holds");
	cr_assert_eq(linetable_lnotab_line(t, sizeof(t) - 1, 10, 0), -1, "odd length");
	cr_assert_eq(linetable_lnotab_line(t, sizeof(t), 10, -1), -1, "f_lasti -1: not started");
	/* An empty co_lnotab: every instruction is on the first line. */
	cr_assert_eq(linetable_lnotab_line(NULL, 0, 10, 0), 10);
	cr_assert_eq(linetable_lnotab_line(NULL, 0, 10, 40), 10);
}

Test(linetables, linetable310_edges)
{
	/* [0,4) line 11, a zero-length +127, [4,10) line 211, [10,12) no line,
	 * [12,16) line 208. */
	static const uint8_t t[] = { 4, 1, 0, 127, 6, 73, 2, 0x80, 4, 0xfd };

	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, 0), 11);
	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, 3), 11);
	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, 4), 211, "zero-length pairs add up");
	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, 9), 211);
	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, 10), -1, "-128: no line");
	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, 11), -1);
	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, 12), 208,
		     "-128 kept the running line");
	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, 15), 208);
	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, 16), -1, "past the end");
	cr_assert_eq(linetable_pep626_line(t, sizeof(t) - 1, 10, 0), -1, "odd length");
	cr_assert_eq(linetable_pep626_line(t, sizeof(t), 10, -2), -1, "not started");
	cr_assert_eq(linetable_pep626_line(NULL, 0, 10, 0), -1, "no table");
}

static void expect_offset(unsigned int minor, uint64_t instr, int want)
{
	const struct pbpf_py_offsets *o = offsets_of(minor);
	int got = linetable_instr_offset(o, FAKE_CODE, instr);

	cr_assert_eq(got, want, "3.%u, word %#llx: offset %d, want %d", minor,
		     (unsigned long long)instr, got, want);
}

Test(linetables, instr_words)
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
	cr_assert_eq(linetable_instr_offset(&broken, FAKE_CODE, a13), -1, "no co_code_adaptive");
	broken = *offsets_of(9);
	broken.instr_kind = 77;
	cr_assert_eq(linetable_instr_offset(&broken, FAKE_CODE, 4), -1, "unknown kind");
}
