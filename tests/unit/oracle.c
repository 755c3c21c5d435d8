// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Runs nm and readelf through popen and parses their text output.  Used by
 * test_elfsym.c and test_target.c as the expected side of every address and
 * offset comparison.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "oracle.h"

struct nm_sym {
	uint64_t addr;
	char *name;
};

/* One nm run per file and table: each test runs in its own process, so a
 * one-entry cache turns five lookups into one popen. */
static struct {
	char cmd[512];
	struct nm_sym *syms;
	size_t n;
} cache;

static void load_nm(const char *cmd)
{
	char line[1024], sym[512], type;
	unsigned long long a;
	size_t cap = 0;
	FILE *p;

	for (size_t i = 0; i < cache.n; i++)
		free(cache.syms[i].name);
	cache.n = 0;
	snprintf(cache.cmd, sizeof(cache.cmd), "%s", cmd);
	p = popen(cmd, "r");
	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		if (sscanf(line, "%llx %c %511s", &a, &type, sym) != 3)
			continue;
		if (cache.n == cap) {
			cap = cap ? 2 * cap : 4096;
			cache.syms = realloc(cache.syms, cap * sizeof(*cache.syms));
		}
		cache.syms[cache.n++] = (struct nm_sym){ a, strdup(sym) };
	}
	pclose(p);
}

int oracle_nm(const char *path, int dynamic, const char *name, uint64_t *addr)
{
	char cmd[512];
	int count = 0;

	snprintf(cmd, sizeof(cmd), "nm %s --defined-only '%s' 2>/dev/null", dynamic ? "-D" : "",
		 path);
	if (strcmp(cmd, cache.cmd))
		load_nm(cmd);
	for (size_t i = 0; i < cache.n; i++) {
		if (strcmp(cache.syms[i].name, name))
			continue;
		if (count++ == 0)
			*addr = cache.syms[i].addr;
	}
	return count;
}

int oracle_load_segs(const char *path, struct oracle_seg *segs, int max)
{
	unsigned long long off, va, pa, fsz, msz;
	char cmd[512], line[1024];
	int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "readelf -lW '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	while (fgets(line, sizeof(line), p) && n < max) {
		if (sscanf(line, " LOAD %llx %llx %llx %llx %llx", &off, &va, &pa, &fsz, &msz) != 5)
			continue;
		segs[n++] = (struct oracle_seg){ off, va, fsz, msz };
	}
	pclose(p);
	return n;
}

int oracle_vaddr_to_offset(const struct oracle_seg *segs, int n, uint64_t vaddr, uint64_t *offset)
{
	for (int i = 0; i < n; i++) {
		if (vaddr >= segs[i].vaddr && vaddr < segs[i].vaddr + segs[i].filesz) {
			*offset = vaddr - segs[i].vaddr + segs[i].offset;
			return 0;
		}
	}
	return -1;
}
