// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Symbolization.  linetable_line is checked against CPython itself: a real
 * 3.11 interpreter compiles hand-made functions (multi-line statements,
 * loops, nested calls, a 300-line and a 70000-line jump, code without a
 * location, wide columns) and a stdlib module, and prints every code
 * object's location table with the line co_positions() gives each code unit.
 * Garbage and truncated tables are fed from the end of a page followed by a
 * PROT_NONE page, so an out-of-bounds read crashes the test.  symbols__resolve
 * reads code objects out of real children (Debian's python3.11 and pyenv's
 * 3.11.7) that print id(code), its qualname, file and lines; cache
 * revalidation uses code objects forged in this process, whose fields can be
 * changed under the cache.  Children die with the test (PR_SET_PDEATHSIG).
 */
#include <criterion/criterion.h>
#include <errno.h>
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
#include "pyoffsets.h"
#include "symbols.h"

#define NO_PID 4194300

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

static const struct pbpf_py_offsets *off311(void)
{
	const struct py_version_offsets *v = pyoffsets_find(3, 11);

	cr_assert_not_null(v);
	return &v->off;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
}

/* ---- linetable_line against co_positions() ---- */

#define W10 "wwwwwwwwww"

/* Prints "firstlineno hex(co_linetable) units line..." per code object (-1
 * for a unit without a location), hand-made ones first, then "stdlib", the
 * stdlib modules named in argv, and "end".  Only single quotes and chr(10):
 * nothing to escape here. */
static const char oracle_py[] =
	"import sys, types\n"
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
	"    lines = [-1 if p[0] is None else p[0] for p in co.co_positions()]\n"
	"    assert len(lines) == len(co.co_code) // 2\n"
	"    print(co.co_firstlineno, co.co_linetable.hex() or '-', len(lines), *lines)\n"
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

static void load_oracle(const char *modules)
{
	char cmd[512], *line = NULL;
	size_t cap = 0, alloc = 0;
	int handmade = 1, ended = 0;
	FILE *p;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/oracle.py", dir);
	write_file(script, oracle_py);
	snprintf(cmd, sizeof(cmd), "%s %s %s", PYENV_PY, script, modules);
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

Test(symbols, linetable_matches_co_positions)
{
	int kinds[16] = { 0 }, negative = 0, multibyte = 0;
	size_t checked = 0;

	load_oracle("argparse");
	for (size_t k = 0; k < ncodes; k++) {
		const struct oracle_code *c = &codes[k];

		for (int i = 0; i < c->units; i++) {
			int got = linetable_line(c->table, c->len, c->firstlineno, i);

			cr_assert_eq(got, c->lines[i],
				     "code object %zu (firstlineno %d), unit %d: got line %d, "
				     "co_positions says %d",
				     k, c->firstlineno, i, got, c->lines[i]);
			checked++;
		}
		/* Past the last unit there is no line. */
		cr_assert_eq(linetable_line(c->table, c->len, c->firstlineno, c->units), -1);
		for (size_t i = 0; i < c->len; i++) {
			if (c->table[i] & 0x80)
				kinds[(c->table[i] >> 3) & 15]++;
			else if (c->table[i] & 0x40)
				multibyte++; /* a varint continues */
		}
		for (int i = 1; i < c->units; i++)
			negative += c->lines[i] > 0 && c->lines[i - 1] > c->lines[i];
	}
	/* Guards the oracle itself: every entry form must have been exercised. */
	cr_assert_gt(kinds[0], 0, "short form");
	cr_assert_gt(kinds[10] + kinds[11] + kinds[12], 0, "one-line forms");
	cr_assert_gt(kinds[13], 0, "no-column form");
	cr_assert_gt(kinds[14], 0, "long form");
	cr_assert_gt(kinds[15], 0, "no-location entries");
	cr_assert_gt(multibyte, 0, "multi-byte varints");
	cr_assert_gt(negative, 0, "lines going backwards (loops)");
	cr_assert_gt(checked, 10000);
}

/* The units an entry starting at byte `at` covers: entries start at bytes
 * with the top bit set (Objects/locations.md), every other byte is below 0x80. */
static int entry_units(const uint8_t *t, size_t at)
{
	return (t[at] & 7) + 1;
}

Test(symbols, linetable_truncated_tables)
{
	size_t tested = 0;

	load_oracle("");
	for (size_t k = 0; k < ncodes; k++) {
		const struct oracle_code *c = &codes[k];

		if (!c->handmade || c->len > 400)
			continue;
		for (size_t cut = 0; cut <= c->len; cut++) {
			const uint8_t *t = guarded(c->table, cut);
			int complete = 0, partial_end = 0; /* in units */

			/* Units of the entries wholly inside the prefix, and the end of
			 * the entry the cut falls into. */
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
					cr_assert_eq(got, c->lines[i], "cut %zu of %zu, unit %d", cut,
						     c->len, i);
				else if (i >= partial_end)
					cr_assert_eq(got, -1, "cut %zu of %zu, unit %d past the data",
						     cut, c->len, i);
				tested++;
			}
		}
	}
	cr_assert_gt(tested, 1000);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

Test(symbols, linetable_garbage)
{
	uint8_t buf[256];
	int lines = 0, unknown = 0;

	for (int round = 0; round < 20000; round++) {
		size_t len = next_rand() % sizeof(buf);
		int index = (int)(next_rand() % 600) - 50, got;

		for (size_t i = 0; i < len; i++)
			buf[i] = next_rand();
		if (round & 1)
			buf[0] |= 0x80; /* half of them start like a real entry */
		got = linetable_line(guarded(buf, len), len, 100, index);
		/* Any value is allowed except a read past the end (the guard page). */
		if (got == -1)
			unknown++;
		else
			lines++;
	}
	cr_assert_gt(unknown, 0);
	cr_assert_gt(lines, 0);
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

/* ---- symbols__resolve against real interpreters ---- */

/* Prints, per code object: tag, id(code), co_firstlineno, hex(UTF-8
 * qualname), hex(UTF-8 filename), then co_positions() lines; then the
 * addresses of PyCode_Type, None and a function object, and sleeps. */
static const char child_py[] =
	"import sys, time\n"
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
	"ns = {}\n"
	"for ch in ('n', chr(0xe9), chr(0x3bb), chr(0x20000)):\n"
	"    exec('def ' + ch * 300 + '(): pass', ns)\n"
	"\n"
	"def emit(tag, co):\n"
	"    lines = [-1 if p[0] is None else p[0] for p in co.co_positions()]\n"
	"    print(tag, id(co), co.co_firstlineno, co.co_qualname.encode().hex(),\n"
	"          co.co_filename.encode().hex(), *lines)\n"
	"\n"
	"emit('target', target_function.__code__)\n"
	"emit('inner', Outer().method().__code__)\n"
	"emit('method', Outer.method.__code__)\n"
	"emit('cafe', caf\xc3\xa9.__code__)\n"
	"emit('kind2', \xce\xbb_kind2.__code__)\n"
	"emit('kind4', \xf0\xa0\x80\x80_kind4.__code__)\n"
	"for i, f in enumerate(v for k, v in ns.items() if k != '__builtins__'):\n"
	"    emit('long%d' % i, f.__code__)\n"
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
		unsigned long long v;

		read_line(p[0], line, sizeof(line));
		cr_assert_neq(line[0], 0, "%s exited early", python);
		if (sscanf(line, "type %llu", &v) == 1)
			ch->code_type = v;
		else if (sscanf(line, "none %llu", &v) == 1)
			ch->none = v;
		else if (sscanf(line, "function %llu", &v) == 1)
			ch->function = v;
		else if (strcmp(line, "ready\n") == 0)
			break;
		else
			parse_code(ch, line);
	}
	close(p[0]);
	cr_assert(ch->code_type && ch->none && ch->function && ch->n == 10, "%d codes", ch->n);
}

static const struct child_code *find(const struct child *ch, const char *tag)
{
	for (int i = 0; i < ch->n; i++)
		if (strcmp(ch->c[i].tag, tag) == 0)
			return &ch->c[i];
	cr_assert_fail("no code object %s", tag);
	return NULL;
}

static void check_names(struct symbols *s, const struct child *ch)
{
	static const char *const tags[] = { "target", "inner", "method", "cafe", "kind2", "kind4" };

	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		const struct child_code *c = find(ch, tags[i]);
		struct pyframe_sym sym;

		symbols__resolve(s, ch->pid, c->code, 0, 1000, &sym);
		cr_assert_str_eq(sym.qualname, c->qualname, "%s", tags[i]);
		cr_assert_str_eq(sym.file, c->file);
		cr_assert_eq(sym.line, c->firstlineno, "%s: instr 0 gives the first line",
			     tags[i]);
	}
	cr_assert_str_eq(find(ch, "inner")->qualname, "Outer.method.<locals>.inner");
	cr_assert_str_eq(find(ch, "cafe")->qualname, "caf\xc3\xa9");
	cr_assert_str_eq(find(ch, "kind2")->qualname, "\xce\xbb_kind2");
	cr_assert_str_eq(find(ch, "kind4")->qualname, "\xf0\xa0\x80\x80_kind4");
	cr_assert(strstr(find(ch, "target")->file, "/pr\xc3\xb6g.py"));
}

/* Lines from prev_instr: the code unit's line per co_positions(), the first
 * line when the unit has none. */
static void check_lines(struct symbols *s, const struct child *ch, const struct pbpf_py_offsets *o)
{
	const struct child_code *c = find(ch, "target");
	int distinct = 0, last = 0;

	cr_assert_gt(c->units, 10);
	for (int i = 0; i < c->units; i++) {
		uint64_t instr = c->code + o->code_code_adaptive + 2 * (uint64_t)i;
		int want = c->lines[i] > 0 ? c->lines[i] : c->firstlineno;
		struct pyframe_sym sym;

		symbols__resolve(s, ch->pid, c->code, instr, 2000, &sym);
		cr_assert_eq(sym.line, want, "unit %d of %d: line %d, want %d", i, c->units,
			     sym.line, want);
		cr_assert_str_eq(sym.qualname, "target_function");
		distinct += want != last;
		last = want;
	}
	cr_assert_geq(distinct, 5, "the oracle function spans several lines");
}

static void check_interpreter(const char *python)
{
	const struct pbpf_py_offsets *o = off311();
	struct symbols *plain, *typed;
	struct child ch;

	start_child(python, &ch);
	plain = symbols__new(o, 0);
	typed = symbols__new(o, ch.code_type);
	cr_assert(plain && typed);
	check_names(plain, &ch);
	check_names(typed, &ch);
	check_lines(plain, &ch, o);
	check_lines(typed, &ch, o);
	cr_assert_eq(symbols__misses(plain), 0);
	cr_assert_eq(symbols__misses(typed), 0);
	symbols__free(plain);
	symbols__free(typed);
}

Test(symbols, resolve_debian_python)
{
	check_interpreter(DEBIAN_PY);
}

Test(symbols, resolve_pyenv_python)
{
	check_interpreter(PYENV_PY);
}

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

Test(symbols, long_names_truncate_on_characters)
{
	const struct pbpf_py_offsets *o = off311();
	struct symbols *s = symbols__new(o, 0);
	struct child ch;

	start_child(PYENV_PY, &ch);
	for (int i = 0; i < 4; i++) {
		char tag[16];
		const struct child_code *c;
		struct pyframe_sym sym;
		size_t n;

		snprintf(tag, sizeof(tag), "long%d", i);
		c = find(&ch, tag);
		symbols__resolve(s, ch.pid, c->code, 0, 0, &sym);
		n = strlen(sym.qualname);
		cr_assert(valid_utf8(sym.qualname), "%s cut inside a character", tag);
		cr_assert_geq(n, 200, "%s: %zu bytes kept", tag, n);
		cr_assert_lt(n, 512);
		cr_assert_eq(strncmp(sym.qualname, c->qualname, n), 0, "%s: not a prefix", tag);
		cr_assert_gt(strlen(c->qualname), n, "%s: 300 characters are cut", tag);
	}
	symbols__free(s);
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

/* ---- cache revalidation, with code objects forged in this process ---- */

static uint64_t fake_code_type[8];

static uint8_t *fake_str(const struct pbpf_py_offsets *o, const char *s)
{
	/* remote_str reads an 80-byte header whatever the length. */
	uint8_t *obj = calloc(1, 128 + strlen(s));
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
