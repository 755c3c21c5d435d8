/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading CPython objects from BPF: str keys and values, dict and instance
 * attribute lookups (managed dicts and inline values), the current thread's
 * frame chain and a frame's locals by name.  Every offset comes from the
 * rodata table `py` that userspace fills for the target's exact version, so
 * nothing here knows one build's layout.  A failed read makes the result
 * "unknown" (NULL / -1) and bumps stats.read_failures; it never guesses.
 */
#ifndef PROFILIS_PYOBJ_BPF_H
#define PROFILIS_PYOBJ_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "profilis/abi.h"

const volatile struct pbpf_py_offsets py = {};
const volatile struct pbpf_name_key names[PBPF_NAME__COUNT] = {};

struct pbpf_stats stats = {};

/* A dict lookup scans at most this many entries; WSGI environs hold ~30. */
#define PY_DICT_SCAN_MAX 256
#define PY_LOCALS_MAX 32
#define PY_FRAME_WALK_MAX 8
#define PY_WANT_MAX 4

static __always_inline void *read_ptr(const void *addr)
{
	void *v = NULL;

	if (bpf_probe_read_user(&v, sizeof(v), addr) != 0) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return NULL;
	}
	return v;
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
__noinline int read_ascii_key(__u64 str_addr, struct py_key *k)
{
	const void *str = (const void *)str_addr;
	__u64 len = 0;
	__u32 state = 0;
	int i;

	if (!str || !k)
		return -1;
	if (bpf_probe_read_user(&len, sizeof(len), str + py.str_length) ||
	    bpf_probe_read_user(&state, sizeof(state), str + py.str_state))
		return -1;
	if (!((state >> py.str_compact_bit) & 1) || !((state >> py.str_ascii_bit) & 1))
		return -1;
	k->len = len;
	k->w[0] = k->w[1] = k->w[2] = 0;
	if (len > PBPF_NAME_BYTES)
		return 0; /* too long to be one of our names */
	if (bpf_probe_read_user(k->w, sizeof(k->w), str + py.str_ascii_data))
		return -1;
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
	return k->len == names[id].len && k->w[0] == names[id].w[0] &&
	       k->w[1] == names[id].w[1] && k->w[2] == names[id].w[2];
}

/* A lookup of up to PY_WANT_MAX names in one pass over a key table. */
struct py_want {
	__u32 ids[PY_WANT_MAX];
	const void *vals[PY_WANT_MAX];
	__u32 nwant;
	__u32 nfound;
};

struct dict_scan {
	const void *entries;	/* first entry of the key table */
	const void *values;	/* split table: values[i]; NULL: in the entry */
	__u64 nentries;
	__u32 entry_size;
	__u32 key_off;
	struct py_want *want;
	struct py_key key;
};

static __always_inline void want_match(struct py_want *w, const struct py_key *k,
				       const void *val)
{
	int j;

	for (j = 0; j < PY_WANT_MAX; j++) {
		if (j < w->nwant && !w->vals[j] && key_is(k, w->ids[j])) {
			w->vals[j] = val;
			w->nfound++;
		}
	}
}

static long dict_scan_step(__u64 i, void *ctx)
{
	struct dict_scan *d = ctx;
	const void *e, *key, *val;

	if (i >= d->nentries || d->want->nfound >= d->want->nwant)
		return 1;
	e = d->entries + i * d->entry_size;
	key = read_ptr(e + d->key_off);
	if (!key)
		return 0; /* deleted or never used slot */
	if (read_ascii_key((__u64)key, &d->key))
		return 0;
	if (d->values)
		val = read_ptr(d->values + i * 8);
	else
		val = read_ptr(e + d->key_off + 8);
	if (val)
		want_match(d->want, &d->key, val);
	return 0;
}

/* Scans a PyDictKeysObject; `values` is the split values array or NULL. */
__noinline int keys_lookup(__u64 keys_addr, __u64 values_addr, struct py_want *want)
{
	const void *keys = (const void *)keys_addr, *values = (const void *)values_addr;
	struct dict_scan d = {};
	__u8 log2_index_bytes = 0, kind = 0;
	__s64 nentries = 0;

	if (!keys || !want)
		return -1;
	if (bpf_probe_read_user(&log2_index_bytes, 1, keys + py.keys_log2_index_bytes) ||
	    bpf_probe_read_user(&kind, 1, keys + py.keys_kind) ||
	    bpf_probe_read_user(&nentries, 8, keys + py.keys_nentries)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	if (nentries < 0 || log2_index_bytes > 40)
		return -1;
	d.entries = keys + py.keys_indices + (1ULL << log2_index_bytes);
	d.values = values;
	d.nentries = nentries;
	/* DICT_KEYS_GENERAL entries carry the hash first: {hash, key, value}. */
	d.entry_size = kind == 0 ? 24 : 16;
	d.key_off = kind == 0 ? 8 : 0;
	d.want = want;
	bpf_loop(PY_DICT_SCAN_MAX, dict_scan_step, &d, 0);
	return 0;
}

static __always_inline int dict_lookup(const void *dict, struct py_want *want)
{
	if (!dict)
		return -1;
	return keys_lookup((__u64)read_ptr(dict + py.dict_keys),
			   (__u64)read_ptr(dict + py.dict_values), want);
}

/* Instance attributes: inline values with the type's shared keys, a managed
 * dict, or a classic tp_dictoffset dict. */
__noinline int getattrs(__u64 obj_addr, struct py_want *want)
{
	const void *obj = (const void *)obj_addr, *type, *values;
	__u64 flags = 0;
	__s64 dictoffset = 0;

	if (!obj || !want)
		return -1;
	type = read_ptr(obj + 8);
	if (!type || bpf_probe_read_user(&flags, 8, type + py.type_flags))
		return -1;
	if (flags & py.managed_dict_flag) {
		values = read_ptr(obj + py.managed_values_ptr);
		if (values)
			return keys_lookup((__u64)read_ptr(type + py.heaptype_cached_keys),
					   (__u64)values, want);
		return dict_lookup(read_ptr(obj + py.managed_dict_ptr), want);
	}
	if (bpf_probe_read_user(&dictoffset, 8, type + py.type_dictoffset) ||
	    dictoffset <= 0)
		return -1;
	return dict_lookup(read_ptr(obj + dictoffset), want);
}

static __always_inline const void *getattr1(const void *obj, __u32 id)
{
	struct py_want w = { .ids = { id }, .nwant = 1 };

	getattrs((__u64)obj, &w);
	return w.vals[0];
}

/*
 * Copies a compact str into `buf` as raw PEP 393 code units.  Returns 0, or
 * -1 when `obj` is not a compact str (the field then stays unknown).
 */
static __always_inline int read_str(const void *obj, struct pbpf_str_hdr *hdr,
				   char *buf, __u32 size)
{
	__u64 len = 0, bytes;
	__u32 state = 0, kind, off;

	if (!obj || !hdr || !buf)
		return -1;
	if (bpf_probe_read_user(&len, 8, obj + py.str_length) ||
	    bpf_probe_read_user(&state, 4, obj + py.str_state)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	if (!((state >> py.str_compact_bit) & 1) || len > (1ULL << 31))
		return -1;
	kind = (state >> py.str_kind_shift) & 7;
	if (kind != 1 && kind != 2 && kind != 4)
		return -1;
	off = ((state >> py.str_ascii_bit) & 1) ? py.str_ascii_data : py.str_compact_data;
	bytes = len * kind;
	/* Field sizes are multiples of 4, so this never splits a code unit. */
	if (bytes > size)
		bytes = size;
	if (bpf_probe_read_user(buf, bytes, obj + off)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	hdr->len = len;
	hdr->kind = kind;
	hdr->copied = bytes;
	return 0;
}

/* A small non-negative int (HTTP status); -1 when unknown. */
static __always_inline __s64 read_small_int(const void *obj)
{
	__s64 size = 0;
	__u32 digit = 0;

	if (!obj || bpf_probe_read_user(&size, 8, obj + py.long_size))
		return -1;
	if (size == 0)
		return 0;
	if (size != 1 || bpf_probe_read_user(&digit, 4, obj + py.long_digits))
		return -1;
	return digit & ((1U << 30) - 1);
}

/* The thread holding the GIL, which is the caller at our uprobes. */
static __always_inline const void *current_frame(void)
{
	const void *tstate, *cframe;

	tstate = read_ptr((const void *)(py.runtime_addr + py.runtime_tstate_current));
	if (!tstate)
		return NULL;
	cframe = read_ptr(tstate + py.tstate_cframe);
	if (!cframe)
		return NULL;
	return read_ptr(cframe + py.cframe_current_frame);
}

/* Looks up locals of `frame` by name through co_localsplusnames. */
struct locals_scan {
	const void *names;	/* &tuple->ob_item[0] */
	const void *slots;	/* &frame->localsplus[0] */
	__s64 n;
	struct py_want *want;
	struct py_key key;
};

static long locals_scan_step(__u64 i, void *ctx)
{
	struct locals_scan *s = ctx;
	const void *val;

	if (i >= s->n || s->want->nfound >= s->want->nwant)
		return 1;
	if (read_ascii_key((__u64)read_ptr(s->names + i * 8), &s->key))
		return 0;
	val = read_ptr(s->slots + i * 8);
	if (val)
		want_match(s->want, &s->key, val);
	return 0;
}

__noinline int frame_locals(__u64 frame_addr, __u64 code_addr, struct py_want *want)
{
	const void *frame = (const void *)frame_addr, *code = (const void *)code_addr;
	struct locals_scan s = {};
	const void *tuple;
	__s32 n = 0;

	if (!frame || !code || !want)
		return -1;
	tuple = read_ptr(code + py.code_localsplusnames);
	if (!tuple || bpf_probe_read_user(&n, 4, code + py.code_nlocalsplus))
		return -1;
	s.names = tuple + py.tuple_items;
	s.slots = frame + py.frame_localsplus;
	s.n = n;
	s.want = want;
	bpf_loop(PY_LOCALS_MAX, locals_scan_step, &s, 0);
	return 0;
}

#endif /* PROFILIS_PYOBJ_BPF_H */
