// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --speedscope: one document with the shared frame table and, per route,
 * a "sampled" on-CPU profile (weights: samples) and an off-CPU one
 * (weights: nanoseconds blocked).  Written to a temporary file and renamed
 * into place (profile_write).
 */
#include <stdio.h>
#include "jsonl.h"
#include "profile_impl.h"

static void put_json_str(FILE *f, const char *s)
{
	char lit[2048]; /* names here are < 400 bytes: 6x escaping fits */

	if (jsonl_put_string(lit, sizeof(lit), 0, s) > 0)
		fputs(lit, f);
	else
		fputs("\"\"", f);
}

static void speedscope_profile(struct profile *p, FILE *f, size_t route, int offcpu, int *first)
{
	double total = 0;
	int any = 0;

	for (size_t c = 0; c < p->cells.n; c++) {
		uint32_t r, s;

		stacks__cell_key(p, c, &r, &s);
		if (r == route && (offcpu ? p->cell_v[c].offcpu_ns : p->cell_v[c].samples) > 0)
			any = 1;
	}
	if (!any)
		return;
	fprintf(f, "%s{\"type\":\"sampled\",\"name\":", *first ? "" : ",");
	*first = 0;
	{
		char name[400];

		snprintf(name, sizeof(name), "%s (%s)", p->routes.keys[route],
			 offcpu ? "off-CPU" : "on-CPU");
		put_json_str(f, name);
	}
	fprintf(f, ",\"unit\":\"%s\",\"startValue\":0,\"samples\":[",
		offcpu ? "nanoseconds" : "none");
	for (size_t c = 0, k = 0; c < p->cells.n; c++) {
		uint32_t r, s;
		const uint32_t *ids;
		size_t depth;

		stacks__cell_key(p, c, &r, &s);
		if (r != route || (offcpu ? p->cell_v[c].offcpu_ns : p->cell_v[c].samples) <= 0)
			continue;
		ids = stacks__ids(p, s, &depth);
		fprintf(f, "%s[", k++ ? "," : "");
		for (size_t i = 0; i < depth; i++)
			fprintf(f, "%s%u", i ? "," : "", ids[i]);
		fputc(']', f);
	}
	fputs("],\"weights\":[", f);
	for (size_t c = 0, k = 0; c < p->cells.n; c++) {
		uint32_t r, s;
		double w;

		stacks__cell_key(p, c, &r, &s);
		w = offcpu ? p->cell_v[c].offcpu_ns : p->cell_v[c].samples;
		if (r != route || w <= 0)
			continue;
		fprintf(f, "%s%.0f", k++ ? "," : "", w);
		total += w;
	}
	fprintf(f, "],\"endValue\":%.0f}", total);
}

static void speedscope(struct profile *p, FILE *f)
{
	int first = 1;

	fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
	      "\"name\":\"profilis-bpf\",\"exporter\":\"profilis-bpf\",\"activeProfileIndex\":0,"
	      "\"shared\":{\"frames\":[",
	      f);
	for (size_t i = 0; i < p->frames.n; i++) {
		const struct frame *fr = &p->frame_v[i];

		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		put_json_str(f, fr->qualname);
		if (fr->file[0]) {
			fputs(",\"file\":", f);
			put_json_str(f, fr->file);
			if (fr->line > 0)
				fprintf(f, ",\"line\":%d", fr->line);
		}
		fputc('}', f);
	}
	fputs("]},\"profiles\":[", f);
	for (size_t r = 0; r < p->routes.n; r++) {
		speedscope_profile(p, f, r, 0, &first);
		speedscope_profile(p, f, r, 1, &first);
	}
	fputs("]}\n", f);
}

int profile__write_speedscope(struct profile *p, const char *path)
{
	return profile_write(p, path, speedscope);
}
