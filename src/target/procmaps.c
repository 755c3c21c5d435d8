// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Pure parsing of /proc/PID/maps text.  Kept apart from target.c so that the
 * unit tests can feed it synthetic and hostile lines.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "procmaps.h"

int procmaps_parse_line(const char *line, struct maps_entry *out)
{
	unsigned long long start, end, off, inode;
	unsigned int major, minor;
	char perms[8];
	int pos = 0;
	const char *p;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu%n", &start, &end, perms, &off, &major,
		   &minor, &inode, &pos) != 7 ||
	    pos == 0 || end < start || strlen(perms) != 4)
		return -EINVAL;
	out->start = start;
	out->end = end;
	out->offset = off;
	out->dev_major = major;
	out->dev_minor = minor;
	out->inode = inode;
	memcpy(out->perms, perms, 5);
	p = line + pos;
	while (*p == ' ' || *p == '\t')
		p++;
	len = strcspn(p, "\n");
	if (len >= sizeof(out->path))
		return -EINVAL;
	memcpy(out->path, p, len);
	out->path[len] = 0;
	return 0;
}

/* Parses "3.11" at s; returns 311 and sets *end, or 0. */
static int parse_version(const char *s, const char **end)
{
	char *e;
	long minor;

	if (s[0] != '3' || s[1] != '.' || !isdigit((unsigned char)s[2]))
		return 0;
	minor = strtol(s + 2, &e, 10);
	if (minor < 0 || minor > 99)
		return 0;
	*end = e;
	return 300 + (int)minor;
}

int procmaps_python_kind(const char *path)
{
	const char *base = strrchr(path, '/'), *end;
	int v;

	base = base ? base + 1 : path;
	if (strncmp(base, "libpython", 9) == 0) {
		v = parse_version(base + 9, &end);
		/* "libpython3.11.so", "libpython3.11d.so.1.0" (debug ABI) */
		if (v && (strncmp(end, ".so", 3) == 0 || strncmp(end, "d.so", 4) == 0))
			return v;
		return 0;
	}
	if (strncmp(base, "python", 6) != 0)
		return 0;
	if (base[6] == 0 || strcmp(base + 6, "3") == 0)
		return 1;
	v = parse_version(base + 6, &end);
	return v && (*end == 0 || strcmp(end, "d") == 0) ? v : 0;
}

int procmaps_find_python(FILE *maps, struct py_mapping *out)
{
	struct maps_entry e;
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	memset(out, 0, sizeof(*out));
	/* Whole lines, however long: a fixed buffer would read the tail of a
	 * long path (names are up to PATH_MAX and may hold spaces) as a line of
	 * its own, and a crafted directory name could then pose as libpython. */
	while (getline(&line, &cap, maps) > 0) {
		int kind;

		if (procmaps_parse_line(line, &e) || e.path[0] != '/')
			continue;
		kind = procmaps_python_kind(e.path);
		if (!kind)
			continue;
		int is_lib = strstr(strrchr(e.path, '/'), "libpython") != NULL;
		/* The first mapping of a file has the lowest offset; keep it. */
		if (found && (out->is_lib || !is_lib))
			continue;
		snprintf(out->path, sizeof(out->path), "%s", e.path);
		out->version_hint = kind;
		out->is_lib = is_lib;
		out->start = e.start;
		out->end = e.end;
		out->offset = e.offset;
		out->dev_major = e.dev_major;
		out->dev_minor = e.dev_minor;
		out->inode = e.inode;
		found = 1;
	}
	free(line);
	return found ? 0 : -ENOENT;
}
