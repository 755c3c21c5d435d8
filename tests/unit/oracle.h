/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Independent oracles for the unit tests: symbol addresses as binutils' nm
 * prints them and PT_LOAD segments as readelf prints them.  The code under
 * test parses ELF itself, so its answers are checked against these tools'
 * rather than against a second copy of the same arithmetic.
 */
#ifndef PROFILIS_TEST_ORACLE_H
#define PROFILIS_TEST_ORACLE_H

#include <stdint.h>

#define DEBIAN_PY "/usr/bin/python3.11"
#define PYENV_PY "/root/.pyenv/versions/3.11.7/bin/python3.11"
#define PYENV_LIB "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"

struct oracle_seg {
	uint64_t offset, vaddr, filesz, memsz;
};

/* Address of the defined symbol `name` per `nm [-D] --defined-only`; returns
 * how many definitions nm listed (0: none, *addr untouched). */
int oracle_nm(const char *path, int dynamic, const char *name, uint64_t *addr);

/* The PT_LOAD rows of `readelf -lW`; returns how many (<= max). */
int oracle_load_segs(const char *path, struct oracle_seg *segs, int max);

/* File offset of `vaddr` through the segments; 0, or -1 outside them. */
int oracle_vaddr_to_offset(const struct oracle_seg *segs, int n, uint64_t vaddr, uint64_t *offset);

#endif
