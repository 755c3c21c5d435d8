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

/* Entries, values and str headers are copied in bulk: on this VM each
 * bpf_probe_read_user costs ~100 ns, so one read per 16 dict entries instead
 * of two per entry is most of the request-end cost.  Per-CPU is safe: a
 * tracing program never nests with another on the same CPU. */
#define PY_CHUNK 16
#define PY_KEYBUF 96

struct py_scratch {
	__u64 entries[PY_CHUNK * 3];	/* up to 16 {hash, key, value} entries */
	__u64 values[PY_CHUNK];		/* split-table values for those entries */
	__u64 names[PY_LOCALS_MAX];	/* co_localsplusnames items */
	__u64 slots[PY_LOCALS_MAX];	/* frame localsplus */
	__u8 keybuf[PY_KEYBUF];		/* str header + first bytes */
	__u64 pathbuf[8];		/* a path's first 64 bytes, for filters */
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
	struct py_scratch *sc = scratch();
	__u32 loff = py.str_length, soff = py.str_state, doff = py.str_ascii_data;
	__u64 len;
	__u32 state;
	int i;

	if (!str || !k || !sc || loff > PY_KEYBUF - 8 || soff > PY_KEYBUF - 4 ||
	    doff > PY_KEYBUF - PBPF_NAME_BYTES)
		return -1;
	/* One read of header and data; a str near the end of a mapping may not
	 * have 96 readable bytes, so fall back to exact reads then. */
	if (bpf_probe_read_user(sc->keybuf, PY_KEYBUF, str) &&
	    (bpf_probe_read_user(sc->keybuf + loff, 8, str + loff) ||
	     bpf_probe_read_user(sc->keybuf + soff, 4, str + soff) ||
	     bpf_probe_read_user(sc->keybuf + doff, PBPF_NAME_BYTES, str + doff)))
		return -1;
	len = *(__u64 *)(sc->keybuf + loff);
	state = *(__u32 *)(sc->keybuf + soff);
	if (!((state >> py.str_compact_bit) & 1) || !((state >> py.str_ascii_bit) & 1))
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
	return k->len == names[id].len && k->w[0] == names[id].w[0] &&
	       k->w[1] == names[id].w[1] && k->w[2] == names[id].w[2];
}

/* A lookup of up to PY_WANT_MAX names in one pass over a key table. */
struct py_want {
	__u32 ids[PY_WANT_MAX];
	const void *vals[PY_WANT_MAX];
	__u32 idx[PY_WANT_MAX];	/* entry index each value was found at */
	__u32 nwant;
	__u32 nfound;
};

/*
 * Where an attribute sits in a shared-keys table.  Instances of one class
 * share one keys object and its order only grows, so after one scan the next
 * lookup is one verified entry instead of a scan of ~20 keys (~10 us less per
 * request here).  The key string is re-checked on every hit, so a keys object
 * freed and reused at the same address cannot give a wrong value.
 */
struct attr_slot_key {
	__u64 keys;
	__u32 name;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct attr_slot_key);
	__type(value, __u32);
} attr_slots SEC(".maps");

struct dict_scan {
	const void *entries;	/* first entry of the key table */
	const void *values;	/* split table: values[i]; NULL: in the entry */
	__u64 nentries;
	__u64 base;		/* index of the chunk's first entry */
	__u32 entry_words;	/* 3 for {hash, key, value}, 2 for {key, value} */
	__u32 key_word;
	struct py_want *want;
	struct py_scratch *sc;
	struct py_key key;
};

static __always_inline void want_match(struct py_want *w, const struct py_key *k,
				       const void *val, __u32 idx)
{
	int j;

	for (j = 0; j < PY_WANT_MAX; j++) {
		if (j < w->nwant && !w->vals[j] && key_is(k, w->ids[j])) {
			w->vals[j] = val;
			w->idx[j] = idx;
			w->nfound++;
		}
	}
}

static long dict_entry_step(__u64 j, void *ctx)
{
	struct dict_scan *d = ctx;
	__u64 w = j * d->entry_words + d->key_word, key, val;

	if (j >= PY_CHUNK || d->base + j >= d->nentries || w > PY_CHUNK * 3 - 2 ||
	    d->want->nfound >= d->want->nwant)
		return 1;
	key = d->sc->entries[w];
	val = d->values ? d->sc->values[j & (PY_CHUNK - 1)] : d->sc->entries[w + 1];
	if (!key || !val)
		return 0; /* deleted or never used slot */
	if (!read_ascii_key(key, &d->key))
		want_match(d->want, &d->key, (const void *)val, d->base + j);
	return 0;
}

static long dict_chunk_step(__u64 c, void *ctx)
{
	struct dict_scan *d = ctx;
	__u64 n, bytes;

	d->base = c * PY_CHUNK;
	if (d->base >= d->nentries || d->want->nfound >= d->want->nwant)
		return 1;
	n = d->nentries - d->base;
	if (n > PY_CHUNK)
		n = PY_CHUNK;
	bytes = n * d->entry_words * 8;
	if (bytes > sizeof(d->sc->entries))
		return 1;
	if (bpf_probe_read_user(d->sc->entries, bytes,
				d->entries + d->base * d->entry_words * 8) ||
	    (d->values && bpf_probe_read_user(d->sc->values, n * 8, d->values + d->base * 8))) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return 1;
	}
	bpf_loop(PY_CHUNK, dict_entry_step, d, 0);
	return 0;
}

/* Tries the remembered slot of every wanted name in a shared-keys table. */
static __always_inline void slots_lookup(struct dict_scan *d)
{
	struct py_want *w = d->want;
	struct attr_slot_key sk = { .keys = (__u64)d->entries };
	__u32 *slot;
	int j;

	for (j = 0; j < PY_WANT_MAX; j++) {
		const void *key, *val;
		__u32 i;

		if (j >= w->nwant)
			break;
		sk.name = w->ids[j];
		slot = bpf_map_lookup_elem(&attr_slots, &sk);
		if (!slot || *slot >= d->nentries || *slot >= PY_DICT_SCAN_MAX)
			continue;
		i = *slot;
		key = read_ptr(d->entries + (i * d->entry_words + d->key_word) * 8);
		if (!key || read_ascii_key((__u64)key, &d->key) || !key_is(&d->key, w->ids[j]))
			continue;
		val = read_ptr(d->values + i * 8);
		if (val && !w->vals[j]) {
			w->vals[j] = val;
			w->idx[j] = i;
			w->nfound++;
		}
	}
}

static __always_inline void slots_remember(struct dict_scan *d)
{
	struct py_want *w = d->want;
	struct attr_slot_key sk = { .keys = (__u64)d->entries };
	int j;

	for (j = 0; j < PY_WANT_MAX; j++) {
		if (j >= w->nwant)
			break;
		if (!w->vals[j])
			continue;
		sk.name = w->ids[j];
		bpf_map_update_elem(&attr_slots, &sk, &w->idx[j], BPF_ANY);
	}
}

/* Scans a PyDictKeysObject; `values` is the split values array or NULL. */
__noinline int keys_lookup(__u64 keys_addr, __u64 values_addr, struct py_want *want)
{
	const void *keys = (const void *)keys_addr, *values = (const void *)values_addr;
	struct dict_scan d = {};
	__u8 log2_index_bytes = 0, kind = 0;
	__s64 nentries = 0;

	d.sc = scratch();
	if (!keys || !want || !d.sc)
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
	d.entry_words = kind == 0 ? 3 : 2;
	d.key_word = kind == 0 ? 1 : 0;
	d.want = want;
	if (values)
		slots_lookup(&d);
	if (want->nfound < want->nwant) {
		bpf_loop(PY_DICT_SCAN_MAX / PY_CHUNK, dict_chunk_step, &d, 0);
		if (values)
			slots_remember(&d);
	}
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
	__s64 n;
	struct py_want *want;
	struct py_scratch *sc;
	struct py_key key;
};

static long locals_scan_step(__u64 i, void *ctx)
{
	struct locals_scan *s = ctx;
	__u64 val;

	if (i >= s->n || i >= PY_LOCALS_MAX || s->want->nfound >= s->want->nwant)
		return 1;
	val = s->sc->slots[i & (PY_LOCALS_MAX - 1)];
	if (val && !read_ascii_key(s->sc->names[i & (PY_LOCALS_MAX - 1)], &s->key))
		want_match(s->want, &s->key, (const void *)val, i);
	return 0;
}

__noinline int frame_locals(__u64 frame_addr, __u64 code_addr, struct py_want *want)
{
	const void *frame = (const void *)frame_addr, *code = (const void *)code_addr;
	struct locals_scan s = {};
	const void *tuple;
	__s32 n = 0;
	__u64 bytes;

	s.sc = scratch();
	if (!frame || !code || !want || !s.sc)
		return -1;
	tuple = read_ptr(code + py.code_localsplusnames);
	if (!tuple || bpf_probe_read_user(&n, 4, code + py.code_nlocalsplus))
		return -1;
	if (n <= 0)
		return 0;
	/* wsgi_app has 7 locals; the mask is what the verifier can follow. */
	if (n > PY_LOCALS_MAX - 1)
		n = PY_LOCALS_MAX - 1;
	bytes = ((__u64)n & (PY_LOCALS_MAX - 1)) * 8;
	if (bpf_probe_read_user(s.sc->names, bytes, tuple + py.tuple_items) ||
	    bpf_probe_read_user(s.sc->slots, bytes, frame + py.frame_localsplus)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	s.n = n;
	s.want = want;
	bpf_loop(PY_LOCALS_MAX, locals_scan_step, &s, 0);
	return 0;
}

#endif /* PROFILIS_PYOBJ_BPF_H */
