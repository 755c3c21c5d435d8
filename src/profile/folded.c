// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --folded: collapsed stacks, one "route;frame;frame count" line per
 * (route, on-CPU stack), the input flamegraph.pl and most viewers take.
 * Written to a temporary file and renamed into place (profile_write).
 */
#include <stdio.h>
#include "profile_impl.h"

static void folded(struct profile *p, FILE *f)
{
	for (size_t c = 0; c < p->cells.n; c++) {
		uint32_t route, stack;
		const uint32_t *ids;
		size_t depth;

		if (p->cell_v[c].samples <= 0)
			continue;
		stacks__cell_key(p, c, &route, &stack);
		ids = stacks__ids(p, stack, &depth);
		/* ';' separates frames and '\n' records: a raw path may hold both. */
		for (const char *r = p->routes.keys[route]; *r; r++)
			fputc(*r == ';' ? ',' : *r == '\n' || *r == '\r' ? ' ' : *r, f);
		for (size_t i = 0; i < depth; i++) {
			/* ';' separates frames in the folded format: keep names clean. */
			fputc(';', f);
			for (const char *s = p->frame_v[ids[i]].name; *s; s++)
				fputc(*s == ';' ? ',' : *s, f);
		}
		fprintf(f, " %.0f\n", p->cell_v[c].samples);
	}
}

int profile__write_folded(struct profile *p, const char *path)
{
	return profile_write(p, path, folded);
}
