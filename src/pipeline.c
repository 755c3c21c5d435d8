// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Decode -> filter -> exporters, one collector batch at a time.  Exporters
 * are flushed after every batch, so a record reaches its file within one
 * flush interval of the request's end.
 */
#include "aggregator.h"
#include "export_console.h"
#include "export_jsonl.h"
#include "filter.h"
#include "pipeline.h"
#include "request.h"

void pipeline_sink(void *ctx, const void *items, size_t n)
{
	const struct pbpf_req_event *ev = items;
	struct pipeline *p = ctx;
	struct request_record r;

	for (size_t i = 0; i < n; i++) {
		if (request_decode(&ev[i], p->realtime_offset_ns, &r)) {
			p->malformed++;
			continue;
		}
		p->decoded++;
		if (p->filter && r.has_path && filter__excluded(p->filter, r.path)) {
			p->excluded++;
			continue;
		}
		r.sample_rate = ev[i].keep == PBPF_KEEP_ERROR ? 1.0 : p->sample_rate;
		if (p->jsonl)
			jsonl__push(p->jsonl, &r);
		if (p->console)
			console__push(p->console, &r);
		if (p->agg)
			agg__push(p->agg, &r);
	}
	if (p->jsonl)
		jsonl__flush(p->jsonl);
	if (p->console)
		console__flush(p->console);
}

void pipeline_tick(void *ctx)
{
	struct pipeline *p = ctx;

	if (p->jsonl)
		jsonl__tick(p->jsonl);
	if (p->console)
		console__flush(p->console);
}
