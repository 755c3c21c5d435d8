// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --folded: collapsed stacks, one "route;frame;frame count" line per
 * (route, on-CPU stack), the input flamegraph.pl and most viewers take.
 * Written to a temporary file and renamed into place (safefile).
 */
#include <stdio.h>
#include "profile_impl.h"
#include "safefile.h"

int profile__write_folded(struct profile *p, const char *path)
{
	struct safefile_out out;
	FILE *f;
	int err = safefile_begin(&out, path);

	if (err)
		return err;
	f = out.f;
	pthread_mutex_lock(&p->lock);
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
	pthread_mutex_unlock(&p->lock);
	return safefile_commit(&out);
}
