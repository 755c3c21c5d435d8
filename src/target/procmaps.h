/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * /proc/PID/maps parsing and the search for a CPython interpreter in it.
 */
#ifndef PROFILIS_PROCMAPS_H
#define PROFILIS_PROCMAPS_H

#include <stdint.h>
#include <stdio.h>

#define MAPS_PATH_MAX 512

struct maps_entry {
	uint64_t start, end, offset;
	unsigned int dev_major, dev_minor;
	uint64_t inode;
	char perms[5];
	char path[MAPS_PATH_MAX];
};

/* Parses one maps line; 0, or -EINVAL for a malformed line. */
int procmaps_parse_line(const char *line, struct maps_entry *out);

/* What a path looks like: 0 not python, else the version as 3xx (311 for
 * "libpython3.11.so.1.0" or "python3.11"), or 1 for a python of unknown
 * version ("python3", "python"). */
int procmaps_python_kind(const char *path);

struct py_mapping {
	char path[MAPS_PATH_MAX];    /* as the target sees it */
	int version_hint;	     /* from the file name, see procmaps_python_kind */
	int is_lib;		     /* libpython: shared-library layout */
	uint64_t start, end, offset; /* one mapping of the file: for load bias */
	unsigned int dev_major, dev_minor;
	uint64_t inode; /* the file, to check a path names the one mapped */
};

/* Scans maps text for the interpreter: libpython wins over the executable
 * (the executable of a shared build only holds main()).  0 or -ENOENT. */
int procmaps_find_python(FILE *maps, struct py_mapping *out);

#endif
