/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Dict lookups by hash, the way CPython's own lookdict probes: with the
 * hashes of our names that userspace computed for the process (from its hash
 * secret: src/python/pyhash.c), a dict's keys object (header, index and
 * entries) is read in one bulk read and each wanted key costs one key read
 * to confirm its name,
 * instead of one read per key of the dict (~30 in a WSGI environ, ~20 in a
 * Request's materialized __dict__).  A key the dict lacks (most requests
 * carry no traceparent) is known absent at the first empty slot of its probe
 * sequence.
 *
 * Trust: a hit counts only when the key's text is the wanted name and its
 * stored hash is the computed one.  Absence is believed only once such a hit
 * has proven the hash function and the secret the process's (its first
 * environ does, having REQUEST_METHOD; hashes_proven in the descriptor).
 * Otherwise, and for tables too big for the scratch buffers, the caller scans
 * (dict_lookup).
 */
#ifndef PROFILIS_PYINDEX_BPF_H
#define PROFILIS_PYINDEX_BPF_H

#include "pykey.bpf.h"

/* A split table's values array, past the PyDictValues header (3.13+). */
static __always_inline __u64 values_array(const struct pbpf_py_offsets *py, const void *values)
{
	return values ? (__u64)values + py->values_items : 0;
}

/* Probe steps per key before giving up (then the dict is scanned): with a
 * load of at most 2/3, longer chains are vanishingly rare. */
#define PY_PROBE_MAX 16
#define PY_PERTURB_SHIFT 5

struct index_scan {
	const struct pbpf_py_offsets *py;
	struct py_scratch *sc;
	struct py_want *want;
	struct pbpf_proc_desc *desc; /* its name_hash, and the span hint */
	__u64 mask;		     /* slots - 1 */
	__u64 nentries;
	__u32 ioff;	   /* byte of the index in sc->keys */
	__u32 eword;	   /* word of the first entry in sc->keys */
	__u32 ixsize;	   /* bytes per index slot */
	__u32 entry_words; /* 3: {hash, key, value}, 2: {key, value} */
	__u32 key_word;
	__u64 values; /* a split table's value array, else 0 */
	__u32 j;      /* the wanted key being probed */
	__s64 hash;   /* its hash */
	__u64 slot, perturb;
	__u32 done; /* 1 found, 2 absent */
	struct py_key key;
};

#define PY_KEYS_WORDS (PY_KEYS_BYTES / 8)

/* Slot `i` of the index, signed as CPython stores it (-1 empty, -2 dummy). */
static __always_inline __s64 index_at(const struct index_scan *s, __u64 i)
{
	const __u8 *b = (const __u8 *)s->sc->keys;
	__u32 off = s->ioff + (i & s->mask) * s->ixsize;

	if (s->ixsize == 1)
		return (__s8)b[off & (PY_KEYS_BYTES - 1)];
	if (s->ixsize == 2)
		return (__s16)word_field(s->sc->keys, PY_KEYS_WORDS, off & (PY_KEYS_BYTES - 2), 2);
	if (s->ixsize == 4)
		return (__s32)word_field(s->sc->keys, PY_KEYS_WORDS, off & (PY_KEYS_BYTES - 4), 4);
	return (__s64)s->sc->keys[(off / 8) & (PY_KEYS_WORDS - 1)];
}

/* Word `w` of the entries. */
static __always_inline __u64 entry_word(const struct index_scan *s, __u64 w)
{
	return s->sc->keys[(s->eword + w) & (PY_KEYS_WORDS - 1)];
}

/* Entry ix's key is the wanted name j with the computed hash. */
static __always_inline bool entry_is(struct index_scan *s, __u64 ix, const void **val)
{
	__u64 w = ix * s->entry_words, key, stored;
	__s64 hash;

	hash = s->hash;
	if (s->entry_words == 3 && (__s64)entry_word(s, w) != hash)
		return false; /* general entries carry the hash: no read */
	key = entry_word(s, w + s->key_word);
	*val = (const void *)entry_word(s, w + s->key_word + 1);
	if (s->values) /* a split table: the value is the instance's */
		*val = read_ptr((const void *)(s->values + ix * 8));
	if (!key || !*val || read_ascii_key(s->py, key, &s->key) ||
	    !key_is(&s->key, s->want->ids[s->j & (PY_WANT_MAX - 1)]))
		return false;
	/* read_ascii_key left the str's first bytes in keybuf: its hash
	 * follows its length. */
	stored = word_field((const __u64 *)s->sc->keybuf, 8, (s->py->str_length + 8) & 56, 8);
	return (__s64)stored == hash;
}

static long probe_step(__u64 n, void *ctx)
{
	struct index_scan *s = ctx;
	const void *val = NULL;
	__s64 ix = index_at(s, s->slot);

	if (ix == -1) {
		s->done = 2;
		return 1;
	}
	if (ix >= 0 && ix < s->nentries && entry_is(s, ix, &val)) {
		__u32 j = s->j & (PY_WANT_MAX - 1);

		s->want->vals[j] = val;
		s->want->idx[j] = ix;
		s->want->nfound++;
		s->done = 1;
		return 1;
	}
	s->perturb >>= PY_PERTURB_SHIFT;
	s->slot = (s->slot * 5 + s->perturb + 1) & s->mask;
	return 0;
}

/* Reads `bytes` of the keys object at `keys` into sc->keys; 0 or -1. */
static __always_inline int keys_read(struct index_scan *s, const void *keys, __u64 bytes)
{
	barrier_var(bytes);
	if (bytes == 0 || bytes > PY_KEYS_BYTES)
		return -1;
	return bpf_probe_read_user(s->sc->keys, bytes, keys) ? -1 : 0;
}

/* The index's and entries' shape from the keys header in sc->keys; the
 * bytes from header to the last entry, or 0 when the table does not fit. */
static __always_inline __u64 keys_parse(struct index_scan *s)
{
	const struct pbpf_py_offsets *py = s->py;
	const __u64 *h = s->sc->keys;
	__u64 size, ibytes, ebytes;

	s->nentries = word_field(h, 8, py->keys_nentries & 56, 8);
	if (py->keys_layout == PBPF_KEYS_SIZE) {
		size = word_field(h, 8, py->keys_size & 56, 8);
		s->ixsize = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
		s->entry_words = 3;
		s->key_word = 1;
	} else {
		__u32 lsize = word_field(h, 8, (py->keys_log2_index_bytes - 1) & 63, 1);
		__u32 lbytes = word_field(h, 8, py->keys_log2_index_bytes & 63, 1);

		if (lsize > 20 || lbytes < lsize || lbytes - lsize > 3)
			return 0;
		size = 1ULL << lsize;
		s->ixsize = 1U << (lbytes - lsize);
		s->entry_words = word_field(h, 8, py->keys_kind & 63, 1) == 0 ? 3 : 2;
		s->key_word = s->entry_words == 3 ? 1 : 0;
	}
	if (size < 8 || size > (1U << 20))
		return 0;
	ibytes = size * s->ixsize;
	ebytes = s->nentries * s->entry_words * 8;
	if (ibytes > PY_INDEX_BYTES || ebytes > PY_TABLE_WORDS * 8)
		return 0;
	s->mask = size - 1;
	s->ioff = py->keys_indices;
	s->eword = (py->keys_indices + ibytes) / 8;
	return py->keys_indices + ibytes + ebytes;
}

/* Reads the keys header, the index and the entries into sc->keys: as many
 * bytes as the process's last table took, in one read; a second when this
 * one is larger, or when the first ran past the end of the mapping.  -1
 * when the table does not fit or cannot be read (the caller scans). */
static __always_inline int index_load(struct index_scan *s, const void *keys)
{
	const struct pbpf_py_offsets *py = s->py;
	__u64 got = s->desc->learned.keys_span, need;

	if (py->keys_nentries > 40 || py->keys_indices > 48 || (py->keys_indices & 7) || !keys)
		return -1;
	if (got < 64 || got > PY_KEYS_BYTES)
		got = 64;
	if (keys_read(s, keys, got)) {
		got = 64;
		if (keys_read(s, keys, got))
			goto fail;
	}
	need = keys_parse(s);
	if (!need)
		return -1;
	if (need > got && keys_read(s, keys, need))
		goto fail;
	/* Room for a few more keys next time: one read even as headers vary. */
	if (need > got || need + 256 < got)
		s->desc->learned.keys_span = need + 128 < PY_KEYS_BYTES ? need + 128
									: PY_KEYS_BYTES;
	return 0;
fail:
	__sync_fetch_and_add(&stats.read_failures, 1);
	return -1;
}

/*
 * Looks up want's names in `dict` by the process's name hashes; 0 when the
 * answer is trustworthy (see above), -1 when the caller must scan.  A split
 * table (an instance's materialized __dict__) has its values apart.
 */
__noinline int index_lookup(struct pbpf_proc_desc *desc, __u64 dict_addr, struct py_want *want)
{
	const void *dict = (const void *)dict_addr;
	const struct pbpf_py_offsets *py;
	struct index_scan s = {};
	__u64 d[8] = {};
	bool found = false;
	__u32 j;

	if (!desc || !desc->hashes_known)
		return -1;
	py = &desc->py;
	s.sc = scratch();
	s.py = py;
	s.desc = desc;
	if (!dict || !want || !s.sc || py->dict_keys > 40 || py->dict_values > 40)
		return -1;
	if (bpf_probe_read_user(d, sizeof(d), dict))
		return -1;
	s.values = values_array(py, (const void *)word_field(d, 8, py->dict_values & 56, 8));
	if (index_load(&s, (const void *)word_field(d, 8, py->dict_keys & 56, 8)))
		return -1;
	s.want = want;
	for (j = 0; j < PY_WANT_MAX; j++) {
		if (j >= want->nwant)
			break;
		if (want->vals[j] || want->ids[j] >= PBPF_NAME__COUNT)
			continue;
		s.j = j;
		s.hash = desc->name_hash[want->ids[j]];
		s.slot = (__u64)s.hash & s.mask;
		s.perturb = (__u64)s.hash;
		s.done = 0;
		bpf_loop(PY_PROBE_MAX, probe_step, &s, 0);
		if (s.done == 0)
			return -1; /* a chain too long */
		found |= s.done == 1;
	}
	/* Nothing found, and never yet: the hashes may not be this process's. */
	if (found && !desc->hashes_proven)
		desc->hashes_proven = 1;
	return found || desc->hashes_proven ? 0 : -1;
}

#endif /* PROFILIS_PYINDEX_BPF_H */
