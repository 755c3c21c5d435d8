/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPython's str hash, computed outside the process: SipHash-1-3 (3.11+) or
 * SipHash-2-4 (3.9, 3.10) keyed with the target's _Py_HashSecret, as
 * Python/pyhash.c does for the bytes of a compact ASCII str.  The request
 * probe looks WSGI environ keys up through the dict's index with these
 * hashes (bpf/pydict.bpf.h), so even a key a request lacks (traceparent) costs
 * one index read instead of a scan of every key.  A wrong guess of the
 * algorithm cannot give a wrong field: BPF compares each hit's stored hash.
 */
#ifndef PROFILIS_PYHASH_H
#define PROFILIS_PYHASH_H

#include <stddef.h>
#include <stdint.h>

enum pyhash_alg {
	PYHASH_SIPHASH13 = 1, /* CPython 3.11+ default */
	PYHASH_SIPHASH24 = 2, /* 3.9, 3.10 */
};

/* The hash algorithm of a CPython minor version's default build. */
enum pyhash_alg pyhash_alg_for(unsigned int minor);

/* hash(s) for an ASCII str of `len` bytes, keyed by the secret's first 16
 * bytes (k0, k1 as the target stores them): -1 is never returned (it is -2),
 * and the empty str hashes to 0, as in CPython. */
int64_t pyhash_ascii(enum pyhash_alg alg, const uint8_t secret[16], const char *s, size_t len);

#endif
