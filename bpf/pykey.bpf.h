/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Names: a compact ASCII str read as a fixed-size key and compared with the
 * names table (enum pbpf_name) that userspace packed into rodata: a
 * ContextVar's name, a code object's co_name, dict keys, local names.
 */
#ifndef PROFILIS_PYKEY_BPF_H
#define PROFILIS_PYKEY_BPF_H

#include "pyobj.bpf.h"

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
	if (!str || !k || !sc || loff > PY_KEYBUF - 16 || soff > PY_KEYBUF - 4 ||
	    doff > PY_KEYBUF - PBPF_NAME_BYTES)
		return -1;
	/* One read of header and data; a str near the end of a mapping may not
	 * have 96 readable bytes, so fall back to exact reads then. */
	if (bpf_probe_read_user(sc->keybuf, PY_KEYBUF, str) &&
	    (bpf_probe_read_user(sc->keybuf + 8, 8, str + 8) ||
	     bpf_probe_read_user(sc->keybuf + loff, 16, str + loff) || /* length, hash */
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

/* A lookup of up to PY_WANT_MAX names in one pass over a key table. */
struct py_want {
	__u32 ids[PY_WANT_MAX];
	const void *vals[PY_WANT_MAX];
	__u32 idx[PY_WANT_MAX]; /* entry index each value was found at */
	__u32 nwant;
	__u32 nfound;
	__u64 key_at0; /* address of entry 0's key word in the table scanned */
	__u16 entry_words;
	__u16 cached; /* bit j: value j came from attr_cache */
};

#endif /* PROFILIS_PYKEY_BPF_H */
