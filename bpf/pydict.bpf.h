/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Dict lookups and instance attributes in the target: through the dict's
 * hash index (pyindex.bpf.h) when the process's name hashes are known, else
 * one bulk-read pass over a key table for up to PY_WANT_MAX names; instances
 * of a class remember where each attribute sits in its shared keys
 * (attr_cache).  Inline values, managed dicts and classic tp_dictoffset dicts
 * are all handled here and only here.
 */
#ifndef PROFILIS_PYDICT_BPF_H
#define PROFILIS_PYDICT_BPF_H

#include "pyindex.bpf.h"

struct dict_scan {
	const struct pbpf_py_offsets *py;
	const void *entries; /* first entry of the key table */
	const void *values;  /* split table: values[i]; NULL: in the entry */
	__u64 nentries;
	__u64 base;	   /* index of the chunk's first entry */
	__u32 entry_words; /* 3 for {hash, key, value}, 2 for {key, value} */
	__u32 key_word;
	struct py_want *want;
	struct py_scratch *sc;
	struct py_key key;
};

static __always_inline void want_match(struct py_want *w, const struct py_key *k, const void *val,
				       __u32 idx)
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
	if (!read_ascii_key(d->py, key, &d->key))
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
	if (bpf_probe_read_user(d->sc->entries, bytes, d->entries + d->base * d->entry_words * 8) ||
	    (d->values && bpf_probe_read_user(d->sc->values, n * 8, d->values + d->base * 8))) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return 1;
	}
	bpf_loop(PY_CHUNK, dict_entry_step, d, 0);
	return 0;
}

/* Where a key table's entries start and their width, set in `d`.  3.11+
 * store log2 of the index bytes and a kind (general entries carry the hash
 * first: {hash, key, value}; unicode ones are {key, value}); 3.9/3.10 store
 * the slot count, with 1-, 2-, 4- or 8-byte slots, and general entries only. */
static __always_inline int keys_shape(const void *keys, struct dict_scan *d)
{
	const struct pbpf_py_offsets *py = d->py;
	__u8 log2_index_bytes = 0, kind = 0;
	__u64 size = 0;

	if (py->keys_layout == PBPF_KEYS_SIZE) {
		if (bpf_probe_read_user(&size, 8, keys + py->keys_size))
			goto fail;
		if (size >= 1ULL << 32)
			return -1;
		d->entries = keys + py->keys_indices +
			     size * (size <= 0xff     ? 1
				     : size <= 0xffff ? 2
						      : 4);
		d->entry_words = 3;
		d->key_word = 1;
		return 0;
	}
	if (bpf_probe_read_user(&log2_index_bytes, 1, keys + py->keys_log2_index_bytes) ||
	    bpf_probe_read_user(&kind, 1, keys + py->keys_kind))
		goto fail;
	if (log2_index_bytes > 40)
		return -1;
	d->entries = keys + py->keys_indices + (1ULL << log2_index_bytes);
	d->entry_words = kind == 0 ? 3 : 2;
	d->key_word = kind == 0 ? 1 : 0;
	return 0;
fail:
	__sync_fetch_and_add(&stats.read_failures, 1);
	return -1;
}

/* Scans a PyDictKeysObject; `values_addr` is the split table's value array
 * (already past any PyDictValues header) or 0. */
__noinline int keys_lookup(const struct pbpf_py_offsets *py, __u64 keys_addr, __u64 values_addr,
			   struct py_want *want)
{
	const void *keys = (const void *)keys_addr, *values = (const void *)values_addr;
	struct dict_scan d = {};
	__s64 nentries = 0;

	d.sc = scratch();
	d.py = py;
	if (!py || !keys || !want || !d.sc || keys_shape(keys, &d))
		return -1;
	if (bpf_probe_read_user(&nentries, 8, keys + py->keys_nentries)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	if (nentries < 0)
		return -1;
	d.values = values;
	d.nentries = nentries;
	d.want = want;
	want->key_at0 = (__u64)d.entries + d.key_word * 8;
	want->entry_words = d.entry_words;
	bpf_loop(PY_DICT_SCAN_MAX / PY_CHUNK, dict_chunk_step, &d, 0);
	return 0;
}

/* A dict's values for want's names: through its hash index when the
 * process's name hashes are known and the index answers, else by a scan. */
static __always_inline int dict_lookup(struct pbpf_proc_desc *desc, const void *dict,
				       struct py_want *want)
{
	const struct pbpf_py_offsets *py = &desc->py;

	if (!dict)
		return -1;
	if (!index_lookup(desc, (__u64)dict, want))
		return 0;
	__sync_fetch_and_add(&stats.dict_scans, 1);
	return keys_lookup(py, (__u64)read_ptr(dict + py->dict_keys),
			   values_array(py, read_ptr(dict + py->dict_values)), want);
}
/* The attr_cache entry of `type` and `name` in this process, when it was
 * made with `keys`, the type's shared keys now. */
static __always_inline struct attr_cache_val *attr_cache_get(__u64 type, __u64 keys, __u32 name)
{
	struct attr_cache_key ck = { .type = type,
				     .tgid = bpf_get_current_pid_tgid() >> 32,
				     .name = name };
	struct attr_cache_val *c = bpf_map_lookup_elem(&attr_cache, &ck);

	return c && c->keys == keys ? c : NULL;
}

/*
 * The wanted names attr_cache knows for `type` in this process, each
 * checked against the keys object and key word it was found at.  A value in
 * the object's window getattrs read already (3.13+'s inline values) costs
 * no read of its own.  (Reading several names' key words and values in one
 * read each saved ~0.1 us but made the verifier take 0.8 s longer to load the
 * programs: not kept.)
 */
static __always_inline void attr_cache_lookup(__u64 type, __u64 keys, __u64 values,
					      struct attr_cache_val *c0, struct py_want *w)
{
	struct py_scratch *sc = scratch();
	struct attr_cache_val *c;
	__u64 at;
	int j;

	if (!sc)
		return;
	for (j = 0; j < PY_WANT_MAX; j++) {
		if (j >= w->nwant)
			break;
		if (w->vals[j])
			continue;
		/* The first name's entry the caller fetched already. */
		c = j == 0 && c0 ? c0 : attr_cache_get(type, keys, w->ids[j]);
		if (!c || c->slot >= PY_DICT_SCAN_MAX ||
		    (__u64)read_ptr((const void *)c->key_at) != c->key)
			continue;
		/* NULL: this instance has no such attribute (a Request of a 404
		 * has no url_rule of its own), known without a scan. */
		at = values + c->slot * 8;
		if (at >= sc->objwin_addr && at + 8 <= sc->objwin_addr + sc->objwin_len)
			w->vals[j] = (const void *)sc->objwin[((at - sc->objwin_addr) / 8) &
							      (PY_OBJ_WIN / 8 - 1)];
		else
			w->vals[j] = read_ptr((const void *)at);
		w->cached |= 1U << j;
		w->nfound++;
	}
}

/* Remembers where the scan found what attr_cache did not know. */
static __always_inline void attr_cache_remember(__u64 type, __u64 keys, __u64 flags,
						const struct py_want *w)
{
	struct attr_cache_key ck = { .type = type, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct attr_cache_val c = { .keys = keys, .flags = flags };
	int j;

	for (j = 0; j < PY_WANT_MAX; j++) {
		if (j >= w->nwant)
			break;
		if (!w->vals[j] || (w->cached & (1U << j)))
			continue;
		ck.name = w->ids[j];
		c.slot = w->idx[j];
		c.key_at = w->key_at0 + c.slot * w->entry_words * 8;
		/* Read again, not kept from the scan: only misses pay it. */
		c.key = (__u64)read_ptr((const void *)c.key_at);
		if (c.key)
			bpf_map_update_elem(&attr_cache, &ck, &c, BPF_ANY);
	}
}

/* Values that live with the object and use the type's shared keys `keys`. */
static __always_inline int shared_values_lookup(const struct pbpf_py_offsets *py, __u64 type,
						__u64 keys, __u64 flags, struct attr_cache_val *c0,
						const void *values, struct py_want *want)
{
	__u64 items = values_array(py, values);
	int err;

	if (!keys || !items)
		return -1;
	attr_cache_lookup(type, keys, items, c0, want);
	if (want->nfound >= want->nwant) {
		__sync_fetch_and_add(&stats.attr_cache_hits, 1);
		return 0;
	}
	__sync_fetch_and_add(&stats.attr_cache_misses, 1);
	err = keys_lookup(py, keys, items, want);
	if (!err)
		attr_cache_remember(type, keys, flags, want);
	return err;
}

/* Bytes before an object that getattrs reads with its header: 3.11-3.13
 * keep the managed dict and values pointers there. */
#define PY_PRE_HEADER 32

/* The word at byte `rel` of the object (-32..24, 8-aligned) in the window
 * read from PY_PRE_HEADER bytes before it. */
static __always_inline __u64 win_word(const __u64 *w, __s32 rel)
{
	return word_field(w, PY_OBJ_WIN / 8, (__u32)(rel + PY_PRE_HEADER) & 63, 8);
}

/* Reads `obj`'s window into sc->objwin: PY_OBJ_WIN bytes where 3.13+ keep
 * values inline, else (or where the object sits near the end of its
 * mapping) the first PY_OBJ_WIN_MIN: more cache lines cost more when they
 * hold nothing we use.  The window's words or NULL; sc->objwin_len says how
 * much was read. */
static __always_inline const __u64 *obj_window(const struct pbpf_py_offsets *py,
					       struct py_scratch *sc, const void *obj)
{
	sc->objwin_addr = (__u64)obj - PY_PRE_HEADER;
	sc->objwin_len = 0;
	if (py->attr_layout == PBPF_ATTR_313 &&
	    !bpf_probe_read_user(sc->objwin, PY_OBJ_WIN, obj - PY_PRE_HEADER))
		sc->objwin_len = PY_OBJ_WIN;
	else if (!bpf_probe_read_user(sc->objwin, PY_OBJ_WIN_MIN, obj - PY_PRE_HEADER))
		sc->objwin_len = PY_OBJ_WIN_MIN;
	return sc->objwin_len ? sc->objwin : NULL;
}

/* Whether every field getattrs takes from the window lies in it. */
static __always_inline bool window_fits(const struct pbpf_py_offsets *py)
{
	return py->managed_dict_ptr >= -PY_PRE_HEADER && py->managed_dict_ptr <= 24 &&
	       py->managed_values_ptr >= -PY_PRE_HEADER && py->managed_values_ptr <= 24 &&
	       (py->attr_layout != PBPF_ATTR_313 ||
		py->inline_values_at + py->values_valid < 64 - PY_PRE_HEADER);
}

/* An instance's materialized __dict__: still a split table over the type's
 * shared keys (3.9-3.12 make one so on `__dict__` access, as werkzeug's
 * cached_property does to every Request), its values apart; looked up like
 * the instance's own values then, else as any dict. */
static __always_inline int instance_dict_lookup(struct pbpf_proc_desc *desc, __u64 type, __u64 keys,
						__u64 flags, struct attr_cache_val *c0,
						const void *dict, struct py_want *want)
{
	const struct pbpf_py_offsets *py = &desc->py;
	__u64 h[8] = {}, values;

	if (!dict)
		return -1;
	if (keys && py->dict_keys <= 56 && py->dict_values <= 56 &&
	    !bpf_probe_read_user(h, sizeof(h), dict)) {
		values = word_field(h, 8, py->dict_values & 56, 8);
		if (values && word_field(h, 8, py->dict_keys & 56, 8) == keys)
			return shared_values_lookup(py, type, keys, flags, c0, (const void *)values,
						    want);
	}
	return dict_lookup(desc, dict, want);
}

/*
 * Instance attributes, the one place that knows each version's layout:
 *   3.9/3.10  a dict at tp_dictoffset;
 *   3.11      managed: a values pointer at -4 words, else a dict at -3;
 *   3.12      managed: one word at -3, values (tagged, low bit set) or dict;
 *   3.13      managed: a dict at -3 if materialized, else the inline values
 *             after the object header while their `valid` byte is set.
 * Types without a managed dict keep tp_dictoffset in every version.  One
 * read takes the words around the object header (type, managed pointers,
 * 3.13's `valid`); the type's flags come from attr_cache once its shared
 * keys are seen to be the ones the entry was made with.
 */
__noinline int getattrs(struct pbpf_proc_desc *desc, __u64 obj_addr, struct py_want *want)
{
	const struct pbpf_py_offsets *py;
	const void *obj = (const void *)obj_addr, *p;
	struct py_scratch *sc = scratch();
	__u64 type, keys = 0, flags = 0, word;
	struct attr_cache_val *c = NULL;
	__s64 dictoffset = 0;
	const __u64 *w = NULL;
	bool win;

	if (!desc || !obj || !want || want->nwant == 0 || !sc)
		return -1;
	py = &desc->py;
	/* Not readable: an object without a pre-header at the start of a
	 * mapping (3.9/3.10 objects have none, and need none of it). */
	sc->objwin_len = 0;
	if (window_fits(py))
		w = obj_window(py, sc, obj);
	win = w != NULL;
	type = win ? win_word(w, 8) : (__u64)read_ptr(obj + 8);
	if (!type)
		return -1;
	keys = (__u64)read_ptr((const void *)type + py->heaptype_cached_keys);
	c = keys ? attr_cache_get(type, keys, want->ids[0]) : NULL;
	if (py->attr_layout == PBPF_ATTR_DICTOFFSET) {
		/* 3.9/3.10: a dict at tp_dictoffset, kept in the entry's flags;
		 * split over the type's shared keys like the later values. */
		if (c)
			dictoffset = c->flags;
		else if (bpf_probe_read_user(&dictoffset, 8,
					     (const void *)type + py->type_dictoffset))
			return -1;
		if (dictoffset <= 0)
			return -1;
		p = win && dictoffset <= 24 ? (const void *)win_word(w, dictoffset)
					    : read_ptr(obj + dictoffset);
		return instance_dict_lookup(desc, type, keys, dictoffset, c, p, want);
	}
	if (c)
		flags = c->flags;
	else if (bpf_probe_read_user(&flags, 8, (const void *)type + py->type_flags))
		return -1;
	if (win && keys && (flags & py->managed_dict_flag)) {
		if (py->attr_layout == PBPF_ATTR_311) {
			p = (const void *)win_word(w, py->managed_values_ptr);
			if (p)
				return shared_values_lookup(py, type, keys, flags, c, p, want);
			return instance_dict_lookup(desc, type, keys, flags, c,
						    (const void *)win_word(w, py->managed_dict_ptr),
						    want);
		}
		if (py->attr_layout == PBPF_ATTR_312) {
			word = win_word(w, py->managed_dict_ptr);
			if (word & 1)
				return shared_values_lookup(py, type, keys, flags, c,
							    (const void *)(word + 1), want);
			return instance_dict_lookup(desc, type, keys, flags, c, (const void *)word,
						    want);
		}
		p = (const void *)win_word(w, py->managed_dict_ptr);
		if (p)
			return instance_dict_lookup(desc, type, keys, flags, c, p, want);
		if (!(flags & py->inline_values_flag) ||
		    !word_field(w, PY_OBJ_WIN / 8,
				(py->inline_values_at + py->values_valid + PY_PRE_HEADER) & 63, 1))
			return -1;
		return shared_values_lookup(py, type, keys, flags, c, obj + py->inline_values_at,
					    want);
	}
	if (flags & py->managed_dict_flag)
		return -1; /* managed, but its window could not be read */
	/* 3.11+ types without a managed dict (__slots__ with __dict__, C types):
	 * a dict at tp_dictoffset, read as 3.9/3.10's above. */
	if (bpf_probe_read_user(&dictoffset, 8, (const void *)type + py->type_dictoffset) ||
	    dictoffset <= 0)
		return -1;
	return instance_dict_lookup(desc, type, keys, flags, c, read_ptr(obj + dictoffset), want);
}

static __always_inline const void *getattr1(struct pbpf_proc_desc *desc, const void *obj, __u32 id)
{
	struct py_want w = { .ids = { id }, .nwant = 1 };

	getattrs(desc, (__u64)obj, &w);
	return w.vals[0];
}

#endif /* PROFILIS_PYDICT_BPF_H */
