// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Code objects are read whole-header at once (one process_vm_readv), their
 * strings and line table with a read each.  A frame's instruction word is
 * turned into a line by linetable.c from the cached line table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "linetable.h"
#include "procstat.h"
#include "pyinspect.h"
#include "pystr.h"
#include "symbols.h"

static size_t code_header_len(const struct pbpf_py_offsets *o);
static int str_offsets_fit(const struct pbpf_py_offsets *o);

#define CODE_HDR 256
/* sizeof(PyASCIIObject) in 3.12+, the smallest str header of any version:
 * a read this long never runs past a str object. */
#define STR_HDR 40
#define TABLE_MAX 65536 /* a big module body has ~16 KiB */
#define NBUCKETS 4096
/* Caps on the cache: past them frames are still resolved, just not kept
 * (each costs a few process_vm_readv again). */
#define SYM_ENTRY_MAX 65536
#define SYM_BYTES_MAX (32u << 20)
#define REVALIDATE_NS 1000000000ULL

struct sym_entry {
	struct sym_entry *next;
	pid_t pid;
	uint64_t code;
	uint64_t checked_ns;
	uint64_t sig[3]; /* qualname ptr, filename ptr, firstlineno */
	char *qualname, *file;
	int firstlineno;
	int shim;  /* co_flags has the version's shim flag */
	int retry; /* incomplete for lack of memory: read again */
	uint8_t *table;
	size_t table_len;
};

/* A process with cached entries, known by its start time so that a
 * recycled pid is a different process. */
struct sym_proc {
	pid_t pid;
	uint64_t start;
};

struct symbols {
	/* The descriptor of the frame being resolved (its process's layout). */
	const struct interp_desc *cur;
	size_t code_hdr; /* bytes of a code object read: up to its last field used */
	struct sym_entry *buckets[NBUCKETS];
	size_t entries, bytes;	  /* cached, against SYM_ENTRY_MAX / SYM_BYTES_MAX */
	struct sym_entry scratch; /* past a cap: resolved, not kept */
	struct sym_proc *procs;
	size_t nprocs, capprocs;
	uint64_t misses, uncached;
};

/* A compact str as UTF-8 (kinds 1, 2, 4), from at most 256 bytes of it. */
static char *remote_str(const struct symbols *s, pid_t pid, uint64_t addr)
{
	uint8_t hdr[STR_HDR];
	char data[256], out[512];
	struct pystr_shape sh;
	struct pbpf_str_hdr h;
	size_t n;

	if (!addr || pyinspect_read(pid, addr, hdr, sizeof(hdr)) ||
	    pystr_shape(&s->cur->off, hdr, &sh))
		return NULL;
	n = sh.len * sh.kind < sizeof(data) ? sh.len * sh.kind
					    : sizeof(data) - sizeof(data) % sh.kind;
	if (pyinspect_read(pid, addr + sh.data, data, n))
		return NULL;
	h = (struct pbpf_str_hdr){ .len = n / sh.kind, .copied = n, .kind = sh.kind };
	pystr_to_utf8(&h, data, n, false, out, sizeof(out));
	return strdup(out);
}

static struct sym_entry **bucket(struct symbols *s, pid_t pid, uint64_t code)
{
	uint64_t h = (code >> 4) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)pid;

	return &s->buckets[(h >> 32) % NBUCKETS];
}

static void entry_clear(struct sym_entry *e)
{
	free(e->qualname);
	free(e->file);
	free(e->table);
	e->qualname = e->file = NULL;
	e->table = NULL;
	e->table_len = 0;
}

/* Reads the code object's header; fills sig.  0, or -EFAULT if it is not
 * (or no longer) a code object. */
static int read_header(struct symbols *s, pid_t pid, uint64_t code, uint8_t *hdr, uint64_t sig[3])
{
	uint64_t type = 0;
	int32_t first = 0;

	/* Not more than needed: a 3.9/3.10 code object is 176 bytes and may end
	 * at a page that is followed by an unmapped one. */
	if (pyinspect_read(pid, code, hdr, s->code_hdr))
		return -EFAULT;
	memcpy(&type, hdr + 8, 8);
	if (s->cur->code_type && type != s->cur->code_type)
		return -EFAULT;
	memcpy(&sig[0], hdr + s->cur->off.code_qualname, 8);
	memcpy(&sig[1], hdr + s->cur->off.code_filename, 8);
	memcpy(&first, hdr + s->cur->off.code_firstlineno, 4);
	sig[2] = (uint64_t)first;
	return 0;
}

/* Fills e from the target; e->retry when an allocation failed, so that the
 * next lookup reads it again rather than keep a name or line it lacks. */
static void fill_entry(struct symbols *s, struct sym_entry *e, const uint8_t *hdr)
{
	uint64_t table = 0, tlen = 0;
	uint32_t flags = 0;

	entry_clear(e);
	errno = 0;
	e->qualname = remote_str(s, e->pid, e->sig[0]);
	e->retry = !e->qualname && errno == ENOMEM;
	errno = 0;
	e->file = remote_str(s, e->pid, e->sig[1]);
	e->retry |= !e->file && errno == ENOMEM;
	e->firstlineno = (int)(int32_t)e->sig[2];
	memcpy(&flags, hdr + s->cur->off.code_flags, 4);
	e->shim = s->cur->off.code_shim_flag && (flags & s->cur->off.code_shim_flag);
	memcpy(&table, hdr + s->cur->off.code_linetable, 8);
	if (table && pyinspect_read_u64(e->pid, table + s->cur->off.bytes_size, &tlen) == 0 &&
	    tlen > 0 && tlen <= TABLE_MAX) {
		if (!(e->table = malloc(tlen)))
			e->retry = 1;
		else if (pyinspect_read(e->pid, table + s->cur->off.bytes_data, e->table, tlen) ==
			 0) {
			e->table_len = tlen;
		} else {
			free(e->table);
			e->table = NULL;
		}
	}
}

/* What an entry holds in memory, for SYM_BYTES_MAX. */
static size_t entry_bytes(const struct sym_entry *e)
{
	return sizeof(*e) + (e->qualname ? strlen(e->qualname) + 1 : 0) +
	       (e->file ? strlen(e->file) + 1 : 0) + e->table_len;
}

/* Remembers a process that gets its first cached entry. */
static void note_proc(struct symbols *s, pid_t pid)
{
	struct sym_proc *n;
	struct procstat st = { 0 };

	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid)
			return;
	if (s->nprocs == s->capprocs) {
		size_t cap = s->capprocs ? s->capprocs * 2 : 16;

		if (!(n = realloc(s->procs, cap * sizeof(*n))))
			return; /* its entries stay until symbols__free */
		s->procs = n;
		s->capprocs = cap;
	}
	/* Unreadable: gone already; symbols__prune drops it. */
	procstat_read(pid, &st);
	s->procs[s->nprocs++] = (struct sym_proc){ .pid = pid, .start = st.start_ticks };
}

/* The entry for (pid, code) to fill: a new cached one, or past a cap (or
 * out of memory) the scratch entry, valid until the next call. */
static struct sym_entry *new_entry(struct symbols *s, struct sym_entry **b, pid_t pid,
				   uint64_t code)
{
	struct sym_entry *e = NULL;

	if (s->entries < SYM_ENTRY_MAX && s->bytes < SYM_BYTES_MAX)
		e = calloc(1, sizeof(*e));
	if (!e) {
		s->uncached++;
		e = &s->scratch;
		entry_clear(e);
		e->pid = pid;
		e->code = code;
		return e;
	}
	e->pid = pid;
	e->code = code;
	e->next = *b;
	*b = e;
	s->entries++;
	s->bytes += entry_bytes(e);
	note_proc(s, pid);
	return e;
}

void symbols__resolve(struct symbols *s, const struct interp_desc *d, pid_t pid, uint64_t code,
		      uint64_t instr, uint64_t now, struct pyframe_sym *out)
{
	struct sym_entry **b = bucket(s, pid, code), *e;
	uint8_t hdr[CODE_HDR];
	uint64_t sig[3];

	out->qualname = "<unknown>";
	out->file = "?";
	out->line = -1;
	out->shim = 0;
	/* A layout whose fields lie outside the headers read is never used. */
	if (!d || !(s->code_hdr = code_header_len(&d->off)) || !str_offsets_fit(&d->off)) {
		s->misses++;
		return;
	}
	s->cur = d;
	for (e = *b; e && !(e->pid == pid && e->code == code); e = e->next)
		;
	if (!e || e->retry || now - e->checked_ns > REVALIDATE_NS) {
		if (read_header(s, pid, code, hdr, sig)) {
			s->misses++;
			return;
		}
		if (!e)
			e = new_entry(s, b, pid, code);
		if (memcmp(sig, e->sig, sizeof(sig)) != 0 || !e->qualname || e->retry) {
			int cached = e != &s->scratch;

			s->bytes -= cached ? entry_bytes(e) : 0;
			memcpy(e->sig, sig, sizeof(sig));
			fill_entry(s, e, hdr);
			s->bytes += cached ? entry_bytes(e) : 0;
		}
		e->checked_ns = now;
	}
	if (e->qualname)
		out->qualname = e->qualname;
	if (e->file)
		out->file = e->file;
	out->shim = e->shim;
	/* No line for the instruction (not started, no location, no table):
	 * the function's first line, still better than none. */
	out->line = e->firstlineno;
	if (e->table) {
		int line = linetable_frame_line(&s->cur->off, e->table, e->table_len,
						e->firstlineno, code, instr);

		if (line > 0)
			out->line = line;
	}
}

static int proc_gone(const struct sym_proc *p)
{
	struct procstat st;

	return procstat_read(p->pid, &st) || procstat_dead(st.state) || st.start_ticks != p->start;
}

static int in(const pid_t *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return 1;
	return 0;
}

/* Frees the entries of the `n` processes in `dead`. */
static void drop_entries(struct symbols *s, const pid_t *dead, size_t n)
{
	for (int i = 0; i < NBUCKETS; i++) {
		for (struct sym_entry **pe = &s->buckets[i], *e; (e = *pe);) {
			if (!in(dead, n, e->pid)) {
				pe = &e->next;
				continue;
			}
			*pe = e->next;
			s->bytes -= entry_bytes(e);
			s->entries--;
			entry_clear(e);
			free(e);
		}
	}
}

int symbols__prune(struct symbols *s)
{
	pid_t dead[64];
	size_t ndead = 0, w = 0;

	/* At most 64 a call: the rest go at the next one. */
	for (size_t i = 0; i < s->nprocs; i++) {
		if (ndead < sizeof(dead) / sizeof(dead[0]) && proc_gone(&s->procs[i]))
			dead[ndead++] = s->procs[i].pid;
		else
			s->procs[w++] = s->procs[i];
	}
	s->nprocs = w;
	if (ndead)
		drop_entries(s, dead, ndead);
	return ndead;
}

size_t symbols__cached(const struct symbols *s)
{
	return s->entries;
}

/* How much of a code object holds every field read from it (ob_type at 8
 * included); 0 when a field lies past CODE_HDR (PBPF_NONE always does). */
static size_t code_header_len(const struct pbpf_py_offsets *o)
{
	const uint64_t ends[] = { 16,
				  (uint64_t)o->code_qualname + 8,
				  (uint64_t)o->code_filename + 8,
				  (uint64_t)o->code_linetable + 8,
				  (uint64_t)o->code_firstlineno + 4,
				  (uint64_t)o->code_flags + 4 };
	size_t len = 0;

	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		if (ends[i] > CODE_HDR)
			return 0;
		if (ends[i] > len)
			len = ends[i];
	}
	return len;
}

/* str headers are read whole, at a fixed size: the fields must lie inside. */
static int str_offsets_fit(const struct pbpf_py_offsets *o)
{
	return o->str_length <= STR_HDR - 8 && o->str_state <= STR_HDR - 4;
}

struct symbols *symbols__new(void)
{
	return calloc(1, sizeof(struct symbols));
}

uint64_t symbols__misses(const struct symbols *s)
{
	return s->misses;
}

uint64_t symbols__uncached(const struct symbols *s)
{
	return s->uncached;
}

void symbols__free(struct symbols *s)
{
	if (!s)
		return;
	for (int i = 0; i < NBUCKETS; i++) {
		for (struct sym_entry *e = s->buckets[i], *n; e; e = n) {
			n = e->next;
			entry_clear(e);
			free(e);
		}
	}
	entry_clear(&s->scratch);
	free(s->procs);
	free(s);
}
