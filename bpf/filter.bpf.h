/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Request filters decided in the kernel: the sampling coin flipped at request
 * start, and exclusion prefixes compared against the raw WSGI path at request
 * end, before a ring-buffer slot is reserved.
 */
#ifndef PROFILIS_FILTER_BPF_H
#define PROFILIS_FILTER_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "profilis/abi.h"
#include "maps.bpf.h"
#include "pyobj.bpf.h"

static __always_inline bool sample_request(void)
{
	return filter.sample_threshold > 0xffffffffULL ||
	       (__u64)bpf_get_prandom_u32() < filter.sample_threshold;
}

/* Whether the str `path` starts with one of the configured prefixes. */
__noinline bool path_excluded(const struct pbpf_py_offsets *py, __u64 path_addr)
{
	const void *path = (const void *)path_addr;
	struct py_scratch *sc = scratch();
	struct py_str_head h;
	__u64 len;
	int p, i;

	if (!py || !path || !sc || !filter.n_prefixes || str_head(py, path, &h))
		return false;
	/* WSGI paths are latin-1 strs: one byte per code unit. */
	if (h.kind != 1)
		return false;
	len = h.len;
	__builtin_memset(sc->pathbuf, 0, sizeof(sc->pathbuf));
	if (bpf_probe_read_user(sc->pathbuf, len < PBPF_PREFIX_BYTES ? len : PBPF_PREFIX_BYTES,
				path + h.data))
		return false;
	for (p = 0; p < PBPF_PREFIX_MAX; p++) {
		__u32 plen = filter.prefix_len[p];
		bool match = true;

		if (p >= filter.n_prefixes)
			break;
		if (plen > len || plen > PBPF_PREFIX_BYTES)
			continue;
		for (i = 0; i < PBPF_PREFIX_BYTES / 8; i++) {
			__s32 keep = (__s32)plen - i * 8;
			__u64 mask = keep >= 8 ? ~0ULL : keep <= 0 ? 0 : (1ULL << (keep * 8)) - 1;

			if ((sc->pathbuf[i] & mask) != (filter.prefix[p][i] & mask))
				match = false;
		}
		if (match)
			return true;
	}
	return false;
}

#endif /* PROFILIS_FILTER_BPF_H */
