// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Symbolization, for every supported CPython (pyenv 3.9.18 to 3.13.0).
 * symbols__resolve reads code objects out of real children of each version
 * (and Debian's python3.11) that print id(code), its qualname, file and the
 * line PyCode_Addr2Line gives each code unit, and park a thread in a call
 * whose real frame is read the way the sampler reads it; cache revalidation
 * and forged tables use code objects forged in this process.  Children die
 * with the test (PR_SET_PDEATHSIG).  The line decoders on their own are
 * test_linetables.c's.
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
#include "oracle.h"
#include "procstat.h"
#include "pyinspect.h"
#include "pyversions.h"
#include "symbols.h"
#include "target.h"

#define NO_PID 4194300

static pid_t kids[4];
static int nkids;

static void cleanup(void)
{
	for (int i = 0; i < nkids; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	nkids = 0;
	pyv_cleanup();
}

TestSuite(symbols, .fini = cleanup, .timeout = 60);

/* Each test's symbolizer reads one process, whose layout is kept beside it
 * (the product passes the layout of each stack's process per call). */
struct tsyms {
	struct symbols *s;
	struct interp_desc d;
};

static struct tsyms *tsyms_new(const struct pbpf_py_offsets *o, uint64_t code_type)
{
	struct tsyms *t = calloc(1, sizeof(*t));

	cr_assert_not_null(t);
	t->s = symbols__new();
	cr_assert_not_null(t->s);
	t->d.off = *o;
	t->d.code_type = code_type;
	return t;
}

static void tsyms_resolve(struct tsyms *t, pid_t pid, uint64_t code, uint64_t instr, uint64_t now,
			  struct pyframe_sym *out)
{
	symbols__resolve(t->s, &t->d, pid, code, instr, now, out);
}

static void tsyms_free(struct tsyms *t)
{
	if (!t)
		return;
	symbols__free(t->s);
	free(t);
}

static const struct pbpf_py_offsets *off311(void)
{
	return offsets_of(11);
}

/* ---- symbols__resolve against real interpreters ---- */

/* Prints, per code object: tag, id(code), co_firstlineno, hex(UTF-8 of what
 * the resolver should name it: co_qualname, on 3.9/3.10 co_name), hex(UTF-8
 * filename), then unit_lines(); then the frame of a thread parked in a
 * sleep() call (id(frame), id(code), f_lineno), the addresses of
 * PyCode_Type, None and a function object, and sleeps.  The call is split
 * over two lines so that, from 3.11 on, the unit before the call is on
 * another line than the call: an off-by-one in the frame's word shows. */
static const char child_py[] = PY_UNIT_LINES
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
	"          co.co_filename.encode(errors='surrogatepass').hex(), *unit_lines(co))\n"
	"\n"
	"emit('target', target_function.__code__)\n"
	"emit('inner', Outer().method().__code__)\n"
	"emit('method', Outer.method.__code__)\n"
	"emit('cafe', caf\xc3\xa9.__code__)\n"
	"emit('kind2', \xce\xbb_kind2.__code__)\n"
	"emit('kind4', \xf0\xa0\x80\x80_kind4.__code__)\n"
	"sg = {}\n"
	"exec(compile('def surrogate(): pass', 'bad\\udcff.py', 'exec'), sg)\n"
	"emit('surrogate', sg['surrogate'].__code__)\n"
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
	uint64_t parked_frame, parked_code; /* PyFrameObject *, its code */
	int parked_line, call_line;	    /* f_lineno, the line of "sleep(" */
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
			    qhex, fhex, &used),
		     5, "bad line: %s", line);
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
	const char *script;
	pid_t parent = getpid();
	int p[2];

	memset(ch, 0, sizeof(*ch));
	script = pyv_script("pr\xc3\xb6g.py", child_py);
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
	cr_assert(ch->code_type && ch->none && ch->function && ch->parked_frame && ch->n == 11,
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

/* A file name that is not UTF-8 on disk reaches co_filename as lone
 * surrogates (surrogateescape): the name says U+FFFD, as a request field
 * would, never the surrogate's invalid UTF-8 bytes. */
static void check_surrogate(struct tsyms *s, const struct child *ch,
			    const struct pbpf_py_offsets *o)
{
	const struct child_code *c = find(ch, "surrogate");
	struct pyframe_sym sym;

	cr_assert_str_eq(c->file, "bad\xed\xb3\xbf.py", "the child's own bytes (surrogatepass)");
	tsyms_resolve(s, ch->pid, c->code, instr_word(o, c->code, 0), 1000, &sym);
	cr_assert_str_eq(sym.qualname, "surrogate");
	cr_assert_str_eq(sym.file, "bad\xef\xbf\xbd.py");
}

static void check_names(struct tsyms *s, const struct child *ch, const struct pbpf_py_offsets *o,
			unsigned int minor)
{
	static const char *const tags[] = { "target", "inner", "method", "cafe", "kind2", "kind4" };

	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		const struct child_code *c = find(ch, tags[i]);
		struct pyframe_sym sym;

		tsyms_resolve(s, ch->pid, c->code, instr_word(o, c->code, 0), 1000, &sym);
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
	check_surrogate(s, ch, o);
}

/* Every unit of target_function through the word the sampler would record
 * there, and a frame that has not started yet. */
static void check_lines(struct tsyms *s, const struct child *ch, const struct pbpf_py_offsets *o)
{
	const struct child_code *c = find(ch, "target");
	int distinct = 0, last = 0;
	struct pyframe_sym sym;

	cr_assert_gt(c->units, 10);
	for (int i = 0; i < c->units; i++) {
		int want = unit_line(c, i);

		tsyms_resolve(s, ch->pid, c->code, instr_word(o, c->code, i), 2000, &sym);
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
		tsyms_resolve(s, ch->pid, c->code, instr_word(o, c->code, -1), 2000, &sym);
		cr_assert_eq(sym.line, c->firstlineno, "a frame that has not started");
	}
	if (o->instr_kind <= PBPF_INSTR_LASTI_UNITS)
		cr_assert_neq(c->lines[0], c->firstlineno, "3.9/3.10: unit 0 is in the body");
}

/* The word read out of the parked thread's real frame, where the sampler
 * reads it: the line the interpreter reports for that frame. */
static void check_parked(struct tsyms *s, const struct child *ch, const struct pbpf_py_offsets *o,
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
	tsyms_resolve(s, ch->pid, code, word, 3000, &sym);
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
		tsyms_resolve(s, ch->pid, code, word - 2, 3000, &sym);
		cr_assert_eq(sym.line, ch->call_line + 1, "the unit before the call");
	}
}

/* Names cut at 255 bytes of UTF-8, never inside a character. */
static int valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80	      ? 0
			: (*p & 0xe0) == 0xc0 ? 1
			: (*p & 0xf0) == 0xe0 ? 2
			: (*p & 0xf8) == 0xf0 ? 3
					      : -1;

		if (n < 0)
			return 0;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

static void check_long_names(struct tsyms *s, const struct child *ch)
{
	for (int i = 0; i < 4; i++) {
		char tag[16];
		const struct child_code *c;
		struct pyframe_sym sym;
		size_t n;

		snprintf(tag, sizeof(tag), "long%d", i);
		c = find(ch, tag);
		tsyms_resolve(s, ch->pid, c->code, 0, 0, &sym);
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
	struct tsyms *plain, *typed;
	struct child ch;

	start_child(python, &ch);
	plain = tsyms_new(o, 0);
	typed = tsyms_new(o, ch.code_type);
	cr_assert(plain && typed);
	check_names(plain, &ch, o, minor);
	check_names(typed, &ch, o, minor);
	check_lines(plain, &ch, o);
	check_lines(typed, &ch, o);
	check_parked(typed, &ch, o, minor);
	check_long_names(typed, &ch);
	cr_assert_eq(symbols__misses(plain->s), 0);
	cr_assert_eq(symbols__misses(typed->s), 0);
	tsyms_free(plain);
	tsyms_free(typed);
}

static void resolve(const struct pyver *v)
{
	check_interpreter(v->python, v->minor);
}

FOR_EACH_VERSION(symbols, resolve)

Test(symbols, resolve_debian_python)
{
	check_interpreter(DEBIAN_PY, 11);
}

Test(symbols, bogus_addresses)
{
	const struct pbpf_py_offsets *o = off311();
	struct tsyms *plain = tsyms_new(o, 0), *typed;
	struct pyframe_sym sym;
	struct child ch;

	start_child(PYENV_PY, &ch);
	typed = tsyms_new(o, ch.code_type);
	/* Unmapped memory: unknown with or without the type check. */
	tsyms_resolve(plain, ch.pid, 0x1000, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_str_eq(sym.file, "?");
	cr_assert_eq(sym.line, -1);
	cr_assert_eq(symbols__misses(plain->s), 1);
	tsyms_resolve(typed, ch.pid, 0x1000, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(typed->s), 1);
	/* Readable objects that are not code objects. */
	tsyms_resolve(typed, ch.pid, ch.none, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(sym.line, -1);
	cr_assert_eq(symbols__misses(typed->s), 2);
	tsyms_resolve(typed, ch.pid, ch.function, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(typed->s), 3);
	/* A real code object in a process that does not exist. */
	tsyms_resolve(typed, NO_PID, find(&ch, "target")->code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(typed->s), 4);
	/* The right pid still resolves after the failures. */
	tsyms_resolve(typed, ch.pid, find(&ch, "target")->code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "target_function");
	cr_assert_eq(symbols__misses(typed->s), 4);
	tsyms_free(plain);
	tsyms_free(typed);
	/* A wrong PyCode_Type rejects even real code objects. */
	typed = tsyms_new(o, ch.code_type + 8);
	tsyms_resolve(typed, ch.pid, find(&ch, "target")->code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(typed->s), 1);
	tsyms_free(typed);
	symbols__free(NULL);
}

Test(symbols, offsets_outside_the_headers_are_refused)
{
	struct pbpf_py_offsets o = *off311();
	struct pyframe_sym sym;
	struct symbols *s = symbols__new();
	struct interp_desc d = { .code_type = 0 };
	uint64_t misses = 0;

	cr_assert_not_null(s);
	/* A layout that places a field past the headers read is never used:
	 * the frame is unknown, counted, and no memory is read (a real pid
	 * and a real code address would resolve otherwise). */
	o.code_linetable = 256 - 4;
	d.off = o;
	symbols__resolve(s, &d, getpid(), (uint64_t)(uintptr_t)&o, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>", "the table pointer would end past the header");
	cr_assert_eq(symbols__misses(s), ++misses);
	d.off = *off311();
	d.off.code_qualname = PBPF_NONE;
	symbols__resolve(s, &d, getpid(), (uint64_t)(uintptr_t)&o, 0, 0, &sym);
	cr_assert_eq(symbols__misses(s), ++misses);
	d.off = *off311();
	d.off.str_state = 40;
	symbols__resolve(s, &d, getpid(), (uint64_t)(uintptr_t)&o, 0, 0, &sym);
	cr_assert_eq(symbols__misses(s), ++misses, "str state past the smallest str header");
	symbols__resolve(s, NULL, getpid(), (uint64_t)(uintptr_t)&o, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>", "no layout known for the process");
	cr_assert_eq(symbols__misses(s), ++misses);
	symbols__free(s);
}
/* ---- cache revalidation and line tables, with code objects forged here ---- */

static uint64_t fake_code_type[8];

static uint8_t *fake_code(const struct pbpf_py_offsets *o, const char *qualname, const char *file,
			  int32_t firstlineno)
{
	uint8_t *c = calloc(1, 1024);

	cr_assert_not_null(c);
	pyv_set_ptr(c, 8, fake_code_type);
	pyv_set_ptr(c, o->code_qualname, pyv_fake_str(o, qualname));
	pyv_set_ptr(c, o->code_filename, pyv_fake_str(o, file));
	memcpy(c + o->code_firstlineno, &firstlineno, 4);
	return c;
}

/* 3.13 runs a class's __init__ under a shim frame whose code is the static
 * _Py_InitCleanup, flagged CO_NO_MONITORING_EVENTS; found by that flag, so
 * it works on stripped libraries too.  The address comes from nm. */
Test(symbols, py313_init_cleanup_is_a_shim)
{
	const struct pbpf_py_offsets *o = offsets_of(13);
	struct pyframe_sym sym;
	struct tsyms *s;
	struct target t;
	struct child ch;
	uint64_t shim = 0;
	char msg[256];

	start_child(py313.python, &ch);
	cr_assert_eq(target_resolve(ch.pid, &t, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(oracle_nm(t.interp, 0, "_Py_InitCleanup", &shim), 1);
	s = tsyms_new(o, ch.code_type);
	cr_assert_not_null(s);
	tsyms_resolve(s, ch.pid, shim + t.load_bias, 0, 0, &sym);
	cr_assert(sym.shim, "_Py_InitCleanup not recognised: %s (%s)", sym.qualname, sym.file);
	for (int i = 0; i < ch.n; i++) {
		tsyms_resolve(s, ch.pid, ch.c[i].code, 0, 0, &sym);
		cr_assert_str_neq(sym.qualname, "<unknown>");
		cr_assert_not(sym.shim, "%s taken for a shim", sym.qualname);
	}
	tsyms_free(s);
}

Test(symbols, shim_flag_is_per_version)
{
	const struct pbpf_py_offsets *o13 = offsets_of(13), *o12 = offsets_of(12);
	uint32_t flag = o13->code_shim_flag;
	uint8_t *c13 = fake_code(o13, "__init__", "__init__", 0),
		*c12 = fake_code(o12, "f", "/app/f.py", 1);
	struct tsyms *s13 = tsyms_new(o13, (uint64_t)(uintptr_t)fake_code_type),
		     *s12 = tsyms_new(o12, (uint64_t)(uintptr_t)fake_code_type);
	struct pyframe_sym sym;

	cr_assert_eq(flag, 0x2000000, "CO_NO_MONITORING_EVENTS in 3.13's code.h");
	cr_assert_eq(o12->code_shim_flag, 0);
	memcpy(c13 + o13->code_flags, &flag, 4);
	memcpy(c12 + o12->code_flags, &flag, 4);
	tsyms_resolve(s13, getpid(), (uint64_t)(uintptr_t)c13, 0, 0, &sym);
	cr_assert(sym.shim);
	cr_assert_str_eq(sym.qualname, "__init__");
	tsyms_resolve(s12, getpid(), (uint64_t)(uintptr_t)c12, 0, 0, &sym);
	cr_assert_not(sym.shim, "3.12 has no such flag: the bit means something else");
	tsyms_free(s13);
	tsyms_free(s12);
}

Test(symbols, revalidation_after_a_second)
{
	const struct pbpf_py_offsets *o = off311();
	struct tsyms *s = tsyms_new(o, (uint64_t)(uintptr_t)fake_code_type);
	uint8_t *code = fake_code(o, "before", "/app/a.py", 7);
	uint64_t addr = (uint64_t)(uintptr_t)code, t0 = 5000000000ULL;
	int32_t line = 9;
	struct pyframe_sym sym;

	tsyms_resolve(s, getpid(), addr, 0, t0, &sym);
	cr_assert_str_eq(sym.qualname, "before");
	cr_assert_str_eq(sym.file, "/app/a.py");
	cr_assert_eq(sym.line, 7);
	/* The object is reused for another function. */
	pyv_set_ptr(code, o->code_qualname, pyv_fake_str(o, "after"));
	memcpy(code + o->code_firstlineno, &line, 4);
	tsyms_resolve(s, getpid(), addr, 0, t0 + 500000000ULL, &sym);
	cr_assert_str_eq(sym.qualname, "before", "within a second the cache answers");
	cr_assert_eq(sym.line, 7);
	tsyms_resolve(s, getpid(), addr, 0, t0 + 1500000000ULL, &sym);
	cr_assert_str_eq(sym.qualname, "after", "revalidated after a second");
	cr_assert_eq(sym.line, 9);
	/* Freed: no longer a code object. */
	pyv_set_ptr(code, 8, NULL);
	tsyms_resolve(s, getpid(), addr, 0, t0 + 1600000000ULL, &sym);
	cr_assert_str_eq(sym.qualname, "after", "cached");
	cr_assert_eq(symbols__misses(s->s), 0);
	tsyms_resolve(s, getpid(), addr, 0, t0 + 3000000000ULL, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(sym.line, -1);
	cr_assert_eq(symbols__misses(s->s), 1);
	tsyms_free(s);
}

Test(symbols, same_address_in_two_processes)
{
	const struct pbpf_py_offsets *o = off311();
	struct tsyms *s = tsyms_new(o, 0);
	uint8_t *code = fake_code(o, "mine", "/app/m.py", 3);
	struct pyframe_sym sym;

	tsyms_resolve(s, getpid(), (uint64_t)(uintptr_t)code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "mine");
	/* The cache is per process: another pid's address is read there. */
	tsyms_resolve(s, NO_PID, (uint64_t)(uintptr_t)code, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "<unknown>");
	cr_assert_eq(symbols__misses(s->s), 1);
	tsyms_free(s);
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

	pyv_set_ptr(c, o->code_linetable, bytes);
	return (uint64_t)(uintptr_t)c;
}

static int line_of(struct tsyms *s, uint64_t code, uint64_t instr)
{
	struct pyframe_sym sym;

	tsyms_resolve(s, getpid(), code, instr, 0, &sym);
	cr_assert_str_eq(sym.qualname, "f");
	return sym.line;
}

Test(symbols, forged_lnotab)
{
	/* Line 11 from byte 0, 13 from byte 4. */
	static const uint8_t t[] = { 0, 1, 4, 2 };
	struct pbpf_py_offsets o = *offsets_of(9);
	struct tsyms *s;
	uint64_t good, odd, huge, unmapped;

	/* Where ob_size sits is the table's business: move it off long_size. */
	o.bytes_size = 24;
	o.bytes_data = 40;
	cr_assert_neq(o.bytes_size, o.long_size);
	s = tsyms_new(&o, (uint64_t)(uintptr_t)fake_code_type);
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
	cr_assert_eq(symbols__misses(s->s), 0);
	tsyms_free(s);
}

Test(symbols, forged_linetable310)
{
	/* Units 0-1 line 11, units 2-3 no line. */
	static const uint8_t t[] = { 4, 1, 4, 0x80 };
	const struct pbpf_py_offsets *o = offsets_of(10);
	struct tsyms *s = tsyms_new(o, (uint64_t)(uintptr_t)fake_code_type);
	uint64_t code = code_with_table(o, fake_bytes(o, t, sizeof(t), sizeof(t)));

	cr_assert_eq(line_of(s, code, 0xffffffff), 10, "f_lasti -1: the first line");
	cr_assert_eq(line_of(s, code, 1), 11, "f_lasti 1 is byte 2");
	cr_assert_eq(line_of(s, code, 2), 10, "no line: the first line");
	cr_assert_eq(line_of(s, code, 4), 10, "past the table");
	tsyms_free(s);
}

/* ---- exited processes leave the cache ---- */

static char proc_state(pid_t pid)
{
	struct procstat st;

	return procstat_read(pid, &st) ? 0 : st.state;
}

/* A real interpreter's code objects are cached under its pid; once it has
 * exited (first as an unreaped zombie, then reaped) prune drops exactly its
 * entries, and a live process's stay. */
static void exit_drops(int reap)
{
	const struct pbpf_py_offsets *o = off311();
	struct tsyms *s;
	struct child ch;
	struct pyframe_sym sym;
	uint8_t *mine = fake_code(o, "mine", "/app/m.py", 3);

	start_child(DEBIAN_PY, &ch);
	s = tsyms_new(o, 0);
	cr_assert_not_null(s);
	tsyms_resolve(s, getpid(), (uint64_t)(uintptr_t)mine, 0, 0, &sym);
	for (int i = 0; i < ch.n; i++) {
		tsyms_resolve(s, ch.pid, ch.c[i].code, 0, 0, &sym);
		cr_assert_str_neq(sym.qualname, "<unknown>");
	}
	cr_assert_eq(symbols__cached(s->s), 1 + ch.n);
	cr_assert_eq(symbols__prune(s->s), 0, "both alive: nothing dropped");
	cr_assert_eq(symbols__cached(s->s), 1 + ch.n);
	cr_assert_eq(kill(ch.pid, SIGKILL), 0);
	if (reap) {
		cr_assert_eq(waitpid(ch.pid, NULL, 0), ch.pid);
	} else {
		for (int i = 0; i < 500 && proc_state(ch.pid) != 'Z'; i++)
			usleep(10000);
		cr_assert_eq(proc_state(ch.pid), 'Z', "the child is a zombie");
	}
	cr_assert_eq(symbols__prune(s->s), 1);
	cr_assert_eq(symbols__cached(s->s), 1, "only this process's entry is left");
	cr_assert_eq(symbols__prune(s->s), 0, "dropped once");
	tsyms_resolve(s, getpid(), (uint64_t)(uintptr_t)mine, 0, 0, &sym);
	cr_assert_str_eq(sym.qualname, "mine");
	tsyms_free(s);
}

Test(symbols, exited_process_is_dropped)
{
	exit_drops(1);
}

Test(symbols, zombie_process_is_dropped)
{
	exit_drops(0);
}

/* Forked children share this process's forged code objects, so each caches
 * the same address: one entry per process, and only the exited one's goes. */
Test(symbols, one_entry_per_process_and_start)
{
	const struct pbpf_py_offsets *o = off311();
	struct tsyms *s = tsyms_new(o, 0);
	uint8_t *code = fake_code(o, "shared", "/app/s.py", 4);
	struct pyframe_sym sym;
	pid_t kid[2];

	cr_assert_not_null(s);
	for (int k = 0; k < 2; k++) {
		kid[k] = fork();
		cr_assert_geq(kid[k], 0);
		if (kid[k] == 0) {
			pause();
			_exit(0);
		}
		kids[nkids++] = kid[k];
		tsyms_resolve(s, kid[k], (uint64_t)(uintptr_t)code, 0, 0, &sym);
		cr_assert_str_eq(sym.qualname, "shared");
	}
	cr_assert_eq(symbols__cached(s->s), 2);
	kill(kid[0], SIGKILL);
	waitpid(kid[0], NULL, 0);
	cr_assert_eq(symbols__prune(s->s), 1);
	cr_assert_eq(symbols__cached(s->s), 1);
	tsyms_free(s);
}
