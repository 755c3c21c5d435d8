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
#include "maps.bpf.h"

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
 * 0 when the header words `w` (read from ob_type on) are an exact compact
 * str's, -1 otherwise.  Only an exact str passes: what a hostile app puts in
 * the environ or a rule (bytes, an int, anything) must give null, not its
 * payload read as text.  Comparing ob_type
 * with &PyUnicode_Type costs no read beyond the header's; str subclasses are
 * not compact anyway, so tp_flags' UNICODE_SUBCLASS bit would buy nothing.
 */
static __always_inline int str_head_of(const struct pbpf_py_offsets *py,
				       const __u64 w[PY_HEAD_BYTES / 8], struct py_str_head *h)
{
	__u32 loff = py->str_length - 8, soff = py->str_state - 8, state;

	if (w[0] != py->unicode_type_addr || loff > PY_HEAD_BYTES - 8 || soff > PY_HEAD_BYTES - 4)
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

/* str_head_of the str at `obj`, its header read from ob_type on. */
static __always_inline int str_head(const struct pbpf_py_offsets *py, const void *obj,
				    struct py_str_head *h)
{
	__u64 w[PY_HEAD_BYTES / 8] = {};

	if (!obj)
		return -1;
	if (bpf_probe_read_user(w, sizeof(w), obj + 8)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	return str_head_of(py, w, h);
}

/* Bytes read with a str's header (from ob_type on): the header is 32-48
 * bytes, so most methods, routes, endpoints and paths come whole. */
#define PY_STR_FIRST 160

/* The header of a str read whole into `buf` (from ob_type on), as str_head. */
static __always_inline int str_head_in(const struct pbpf_py_offsets *py, const char *buf,
				       struct py_str_head *h)
{
	__u64 w[PY_HEAD_BYTES / 8];

	__builtin_memcpy(w, buf, sizeof(w));
	return str_head_of(py, w, h);
}

/* read_str for a str whose first PY_STR_FIRST bytes could not be read at
 * once (it ends near the end of a mapping): header, then text at skip 0. */
static __always_inline int read_str_apart(const struct pbpf_py_offsets *py, const void *obj,
					  struct pbpf_str_hdr *hdr, char *buf, __u32 size)
{
	struct py_str_head h;
	__u64 bytes;

	if (str_head(py, obj, &h))
		return -1;
	bytes = h.len * h.kind;
	if (bytes > size - PBPF_STR_SLACK)
		bytes = size - PBPF_STR_SLACK;
	if (bpf_probe_read_user(buf, bytes, obj + h.data)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	hdr->len = h.len;
	hdr->kind = h.kind;
	hdr->copied = bytes;
	hdr->skip = 0;
	return 0;
}

/*
 * Copies a compact str into the event field `buf` (PBPF_STR_FIELD: `size`
 * bytes, PBPF_STR_SLACK of them for the header): its header and first bytes
 * in one read from ob_type on, the rest of its text (at most size - slack
 * bytes in all) in a second only when longer.  Raw PEP 393 code units; `hdr`
 * keeps the real length, so a cut is known from the header, not guessed from
 * a full buffer.  Returns 0, or -1 when `obj` is not a str (the field then
 * stays unknown).
 */
static __always_inline int read_str(const struct pbpf_py_offsets *py, const void *obj,
				    struct pbpf_str_hdr *hdr, char *buf, __u32 size)
{
	__u32 first = size < PY_STR_FIRST ? size : PY_STR_FIRST;
	struct py_str_head h;
	__u64 bytes, skip, rest;

	if (!hdr || !buf || !obj || size <= PBPF_STR_SLACK)
		return -1;
	if (bpf_probe_read_user(buf, first, obj + 8))
		return read_str_apart(py, obj, hdr, buf, size);
	if (str_head_in(py, buf, &h))
		return -1;
	skip = h.data - 8;
	if (skip > PBPF_STR_SLACK)
		return -1;
	bytes = h.len * h.kind;
	/* Field sizes are multiples of 4, so this never splits a code unit. */
	if (bytes > size - PBPF_STR_SLACK)
		bytes = size - PBPF_STR_SLACK;
	if (skip + bytes > first) {
		rest = skip + bytes - first;
		barrier_var(rest);
		if (rest > size - first)
			return -1;
		if (bpf_probe_read_user(buf + first, rest, obj + 8 + first)) {
			__sync_fetch_and_add(&stats.read_failures, 1);
			return -1;
		}
	}
	hdr->len = h.len;
	hdr->kind = h.kind;
	hdr->copied = bytes;
	hdr->skip = skip;
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

/* A frame's _PyStackRef as an object address (pbpf_stackref_obj). */
static __always_inline __u64 stackref_obj(const struct pbpf_py_offsets *py, __u64 ref)
{
	return pbpf_stackref_obj(py->stackref_tag_mask, ref);
}

/* The PyThreadState that holds the GIL, NULL when none does.  3.9-3.11 keep
 * it in _PyRuntime; 3.12+ only as the GIL's last holder, which is the
 * holder while the GIL is locked.  Userspace resolved both addresses. */
static __always_inline const void *gil_holder(const struct pbpf_py_offsets *py)
{
	__u64 w[2] = {};
	int locked = 0;

	/* 3.12+ keep last_holder and locked side by side in the GIL's struct:
	 * one read takes both. */
	if (py->holder_locked_addr == py->holder_addr + 8) {
		if (bpf_probe_read_user(w, sizeof(w), (const void *)py->holder_addr))
			return NULL;
		return (int)w[1] > 0 ? (const void *)w[0] : NULL;
	}
	/* locked is -1 once the GIL is destroyed (shutdown): no holder then. */
	if (py->holder_locked_addr &&
	    (bpf_probe_read_user(&locked, 4, (const void *)py->holder_locked_addr) || locked <= 0))
		return NULL;
	return read_ptr((const void *)py->holder_addr);
}

#endif /* PROFILIS_PYOBJ_BPF_H */
