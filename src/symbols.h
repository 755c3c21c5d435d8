/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Symbolization of Python code objects in the target: PyCodeObject * ->
 * qualname, file and line, read with process_vm_readv and cached.  Cached
 * entries are re-validated (type, name, file, first line) when older than a
 * second, so a freed and reused code object is noticed, not misnamed.
 */
#ifndef PROFILIS_SYMBOLS_H
#define PROFILIS_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "profilis/abi.h"

struct pyframe_sym {
	const char *qualname;	/* owned by the cache; valid until symbols__free */
	const char *file;
	int line;		/* -1 when unknown */
};

struct symbols;

/* code_type: &PyCode_Type in the target (0: do not check). */
struct symbols *symbols__new(const struct pbpf_py_offsets *off, uint64_t code_type);
/* Resolves one frame; unreadable code objects give "<unknown>". */
void symbols__resolve(struct symbols *s, pid_t pid, uint64_t code, uint64_t instr,
		      uint64_t now_ns, struct pyframe_sym *out);
uint64_t symbols__misses(const struct symbols *s);
void symbols__free(struct symbols *s);

/* Pure: the line of code-unit `index` in a 3.11+ location table. */
int linetable_line(const uint8_t *table, size_t len, int firstlineno, int index);

#endif
