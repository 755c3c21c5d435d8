/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Symbolization of Python code objects in the target: PyCodeObject * ->
 * qualname, file and line, read with process_vm_readv and cached.  Cached
 * entries are re-validated (type, name, file, first line) when older than a
 * second, so a freed and reused code object is noticed, not misnamed.  The
 * cache is capped (entries and bytes; past a cap frames are resolved but not
 * kept) and forgets processes that exited (symbols__prune).
 */
#ifndef PROFILIS_SYMBOLS_H
#define PROFILIS_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "interps.h"
#include "profilis/abi.h"

struct pyframe_sym {
	const char *qualname; /* owned by the cache; valid until the next call on it */
	const char *file;
	int line; /* -1 when unknown */
	int shim; /* a shim frame's code (3.13's __init__ clean-up) */
};

struct symbols;

struct symbols *symbols__new(void);
/* Resolves one frame of process `pid`, whose layout `d` describes (NULL:
 * unknown); unreadable code objects give "<unknown>". */
void symbols__resolve(struct symbols *s, const struct interp_desc *d, pid_t pid, uint64_t code,
		      uint64_t instr, uint64_t now_ns, struct pyframe_sym *out);
uint64_t symbols__misses(const struct symbols *s);
/* Frames resolved without being cached, because the cache was full. */
uint64_t symbols__uncached(const struct symbols *s);
/* Code objects cached now. */
size_t symbols__cached(const struct symbols *s);
/* Drops the entries of processes that exited (gone, zombie, or their pid
 * now names another process); returns how many processes were dropped.
 * Costs one read of /proc/PID/stat per cached process. */
int symbols__prune(struct symbols *s);
void symbols__free(struct symbols *s);

#endif
