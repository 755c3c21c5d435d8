/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading CPython objects from BPF, the basics: the offsets table, scratch
 * space, pointers, str keys and values, small ints.  Dicts and attributes are
 * in pydict.bpf.h, frames in pyframe.bpf.h.  Every offset comes from `py`,
 * the traced process's interpreter descriptor (struct pbpf_proc_desc) that
 * userspace filled for its exact version, and is passed down from the
 * program that looked it up; nothing here knows one build's layout.  A failed read makes the result
 * "unknown" (NULL / -1) and bumps stats.read_failures; it never guesses.
 */
#ifndef PROFILIS_PYOBJ_BPF_H
#define PROFILIS_PYOBJ_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "profilis/abi.h"

const volatile struct pbpf_name_key names[PBPF_NAME__COUNT] = {};

struct pbpf_stats stats = {};

/* A dict lookup scans at most this many entries; WSGI environs hold ~30. */
#define PY_DICT_SCAN_MAX 256
#define PY_LOCALS_MAX 32
#define PY_FRAME_WALK_MAX 8
#define PY_WANT_MAX 4

/* Entries, values and str headers are copied in bulk: on this VM each
 * bpf_probe_read_user costs ~100 ns, so one read per 16 dict entries instead
 * of two per entry is most of the request-end cost.  Per-CPU is safe: a
 * tracing program never nests with another on the same CPU. */
#define PY_CHUNK 16
#define PY_KEYBUF 96

struct py_scratch {
	__u64 entries[PY_CHUNK * 3]; /* up to 16 {hash, key, value} entries */
	__u64 values[PY_CHUNK];	     /* split-table values for those entries */
	__u64 names[PY_LOCALS_MAX];  /* co_localsplusnames items */
	__u64 slots[PY_LOCALS_MAX];  /* frame localsplus */
	__u8 keybuf[PY_KEYBUF];	     /* str header + first bytes */
	__u64 pathbuf[8];	     /* a path's first 64 bytes, for filters */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_scratch);
} py_scratch SEC(".maps");

static __always_inline struct py_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&py_scratch, &zero);
}

static __always_inline void *read_ptr(const void *addr)
{
	void *v = NULL;

	if (bpf_probe_read_user(&v, sizeof(v), addr) != 0) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return NULL;
	}
	return v;
}

/*
 * The `bytes`-wide field at byte `off` of words read in one go; `nwords` is
 * a power of two.  Offsets come from a map now, unknown to the verifier, and
 * it refuses a variable-offset stack read that may be misaligned: indexing
 * whole words, then shifting, keeps every access aligned.  Fields are
 * naturally aligned in every CPython, so none straddles two words.
 */
static __always_inline __u64 word_field(const __u64 *w, __u32 nwords, __u32 off, __u32 bytes)
{
	__u64 v;

	/* Keeps the mask: clang would drop it, knowing the caller's bound
	 * check, and the verifier does not carry that bound over. */
	barrier_var(off);
	v = w[(off / 8) & (nwords - 1)] >> ((off % 8) * 8);

	return bytes >= 8 ? v : v & ((1ULL << (bytes * 8)) - 1);
}

struct py_key {
	__u64 len;
	__u64 w[PBPF_NAME_BYTES / 8];
};

/*
 * The helpers with loops are global functions: the verifier checks each once,
 * on its own, instead of once per call site (which overflowed its 1M-insn
 * budget).  Hence user addresses travel as __u64, outputs as struct pointers.
 */

/* Reads a compact ASCII str into `k` (first 24 bytes, zero padded). */
__noinline int read_ascii_key(const struct pbpf_py_offsets *py, __u64 str_addr, struct py_key *k)
{
	const void *str = (const void *)str_addr;
	struct py_scratch *sc = scratch();
	__u32 loff, soff, doff;
	__u64 len;
	__u32 state;
	int i;

	if (!py)
		return -1;
	loff = py->str_length;
	soff = py->str_state;
	doff = py->str_ascii_data;
	if (!str || !k || !sc || loff > PY_KEYBUF - 8 || soff > PY_KEYBUF - 4 ||
	    doff > PY_KEYBUF - PBPF_NAME_BYTES)
		return -1;
	/* One read of header and data; a str near the end of a mapping may not
	 * have 96 readable bytes, so fall back to exact reads then. */
	if (bpf_probe_read_user(sc->keybuf, PY_KEYBUF, str) &&
	    (bpf_probe_read_user(sc->keybuf + 8, 8, str + 8) ||
	     bpf_probe_read_user(sc->keybuf + loff, 8, str + loff) ||
	     bpf_probe_read_user(sc->keybuf + soff, 4, str + soff) ||
	     bpf_probe_read_user(sc->keybuf + doff, PBPF_NAME_BYTES, str + doff)))
		return -1;
	if (*(__u64 *)(sc->keybuf + 8) != py->unicode_type_addr)
		return -1; /* a bytes key is not one of our names */
	len = *(__u64 *)(sc->keybuf + loff);
	state = *(__u32 *)(sc->keybuf + soff);
	if (!((state >> py->str_compact_bit) & 1) || !((state >> py->str_ascii_bit) & 1))
		return -1;
	k->len = len;
	k->w[0] = k->w[1] = k->w[2] = 0;
	if (len > PBPF_NAME_BYTES)
		return 0; /* too long to be one of our names */
	__builtin_memcpy(k->w, sc->keybuf + doff, sizeof(k->w));
	/* Bytes past the end belong to other objects: mask them off. */
	for (i = 0; i < PBPF_NAME_BYTES / 8; i++) {
		__s64 keep = (__s64)len - i * 8;

		if (keep <= 0)
			k->w[i] = 0;
		else if (keep < 8)
			k->w[i] &= (1ULL << (keep * 8)) - 1;
	}
	return 0;
}

static __always_inline bool key_is(const struct py_key *k, __u32 id)
{
	if (id >= PBPF_NAME__COUNT)
		return false;
	return k->len == names[id].len && k->w[0] == names[id].w[0] && k->w[1] == names[id].w[1] &&
	       k->w[2] == names[id].w[2];
}

/* What read_str needs of a str's header.  From ob_type to the state word it
 * is one read: ob_type at 8, then length and state (16 and 32 in every
 * version); the offsets table says where, this checks they fit. */
#define PY_HEAD_BYTES 32

struct py_str_head {
	__u64 len;  /* characters */
	__u32 kind; /* 1, 2 or 4 bytes per character */
	__u32 data; /* offset of the characters */
};

/*
 * 0 when `obj` is exactly a compact str, -1 otherwise.  Only an exact str
 * passes: what a hostile app puts in the environ or a rule (bytes, an int,
 * anything) must give null, not its payload read as text.  Comparing ob_type
 * with &PyUnicode_Type costs no read beyond the header's; str subclasses are
 * not compact anyway, so tp_flags' UNICODE_SUBCLASS bit would buy nothing.
 */
static __always_inline int str_head(const struct pbpf_py_offsets *py, const void *obj,
				    struct py_str_head *h)
{
	__u64 w[PY_HEAD_BYTES / 8] = {};
	__u32 loff = py->str_length - 8, soff = py->str_state - 8, state;

	if (!obj || loff > PY_HEAD_BYTES - 8 || soff > PY_HEAD_BYTES - 4)
		return -1;
	if (bpf_probe_read_user(w, sizeof(w), obj + 8)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	if (w[0] != py->unicode_type_addr)
		return -1;
	h->len = word_field(w, PY_HEAD_BYTES / 8, loff, 8);
	state = word_field(w, PY_HEAD_BYTES / 8, soff, 4);
	h->kind = (state >> py->str_kind_shift) & 7;
	if (!((state >> py->str_compact_bit) & 1) || h->len > (1ULL << 31) ||
	    (h->kind != 1 && h->kind != 2 && h->kind != 4))
		return -1;
	h->data = ((state >> py->str_ascii_bit) & 1) ? py->str_ascii_data : py->str_compact_data;
	return 0;
}

/*
 * Copies a compact str into `buf` as raw PEP 393 code units: only its own
 * bytes, at most `size`.  `hdr` keeps the real length, so a cut is known
 * from the header, not guessed from a full buffer.  Returns 0, or -1 when
 * `obj` is not a str (the field then stays unknown).
 */
static __always_inline int read_str(const struct pbpf_py_offsets *py, const void *obj,
				    struct pbpf_str_hdr *hdr, char *buf, __u32 size)
{
	struct py_str_head h;
	__u64 bytes;

	if (!hdr || !buf || str_head(py, obj, &h))
		return -1;
	bytes = h.len * h.kind;
	/* Field sizes are multiples of 4, so this never splits a code unit. */
	if (bytes > size)
		bytes = size;
	if (bpf_probe_read_user(buf, bytes, obj + h.data)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	hdr->len = h.len;
	hdr->kind = h.kind;
	hdr->copied = bytes;
	return 0;
}

/* A small non-negative int (HTTP status); -1 when unknown or not exactly an
 * int (None, a str: `status` is then null, never 0).  One read from ob_type
 * to the first digit.  Up to 3.11 ob_size is the signed digit count; from
 * 3.12 lv_tag = ndigits << 3 | sign (0 positive, 1 zero, 2 negative). */
static __always_inline __s64 read_status(const struct pbpf_py_offsets *py, const void *obj)
{
	__u64 w[4] = {}; /* 24 bytes read: a one-digit int ends at 28 */
	__u32 soff = py->long_size - 8, doff = py->long_digits - 8;
	__s64 size;
	__u32 digit;

	if (!obj || soff > 16 || doff > 20)
		return -1;
	if (bpf_probe_read_user(w, 24, obj + 8)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	if (w[0] != py->long_type_addr)
		return -1;
	size = word_field(w, 4, soff, 8);
	digit = word_field(w, 4, doff, 4);
	if (py->long_layout == PBPF_LONG_TAG) {
		if ((size & 3) == 1)
			return 0;
		if ((size & 3) != 0)
			return -1;
		size >>= 3;
	}
	if (size == 0)
		return 0;
	if (size != 1)
		return -1;
	return digit & ((1U << 30) - 1);
}

/* The PyThreadState that holds the GIL, NULL when none does.  3.9-3.11 keep
 * it in _PyRuntime; 3.12+ only as the GIL's last holder, which is the
 * holder while the GIL is locked.  Userspace resolved both addresses. */
static __always_inline const void *gil_holder(const struct pbpf_py_offsets *py)
{
	int locked = 0;

	/* locked is -1 once the GIL is destroyed (shutdown): no holder then. */
	if (py->holder_locked_addr &&
	    (bpf_probe_read_user(&locked, 4, (const void *)py->holder_locked_addr) || locked <= 0))
		return NULL;
	return read_ptr((const void *)py->holder_addr);
}

#endif /* PROFILIS_PYOBJ_BPF_H */
