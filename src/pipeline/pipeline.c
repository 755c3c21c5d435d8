// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Decode -> filter -> exporters, one collector batch at a time.  Exporters
 * are flushed after every batch, so a record reaches its file within one
 * flush interval of the request's end.
 */
#include <time.h>
#include "aggregator.h"
#include "clock.h"
#include "collector.h"
#include "console.h"
#include "filter.h"
#include "jsonl.h"
#include "k8smeta.h"
#include "otlp.h"
#include "pipeline.h"
#include "profile.h"
#include "prom.h"
#include "request.h"

void pipeline_sink(void *ctx, const void *items, size_t n)
{
	const struct pbpf_req_event *ev = items;
	struct pipeline *p = ctx;
	struct request_record r;
	pid_t ns;

	if (p->profile && p->stacks)
		collector__flush(p->stacks);
	for (size_t i = 0; i < n; i++) {
		if (request_decode(&ev[i], p->realtime_offset_ns, &r)) {
			p->malformed++;
			continue;
		}
		p->decoded++;
		if (p->meta)
			k8smeta_cache__get(p->meta, r.pid, r.ts_ns, &r.meta);
		ns = r.meta.ns_pid;
		r.ns_pid = ns > 0 && ns != (pid_t)r.pid ? ns : 0;
		if (p->filter && r.has_path && filter__excluded(p->filter, r.path))
			continue; /* counted by the filter */
		if (p->profile)
			profile__push_request(p->profile, r.pid, r.tid, r.ts_ns - r.dur_ns,
					      r.has_method ? r.method : "?",
					      r.route_matched ? r.route : REQ_UNMATCHED);
		r.sample_rate = ev[i].keep == PBPF_KEEP_ERROR ? 1.0 : p->sample_rate;
		if (p->jsonl)
			jsonl__push(p->jsonl, &r);
		if (p->console)
			console__push(p->console, &r);
		if (p->otlp)
			otlp__push(p->otlp, &r);
		if (p->agg)
			aggregator__push(p->agg, &r);
		if (p->prom)
			prom__push(p->prom, &r);
	}
	if (p->jsonl)
		jsonl__flush(p->jsonl);
	if (p->console)
		console__flush(p->console);
}

void pipeline_profile_records(struct pipeline *p, uint64_t now)
{
	static char routes[256][300];
	char line[16384];
	size_t n;

	if (!p->profile || (!p->jsonl && !p->console))
		return;
	n = profile__routes(p->profile, routes, 256);
	for (size_t i = 0; i < n; i++) {
		int len = profile__jsonl(p->profile, routes[i], now, p->realtime_offset_ns, line,
					 sizeof(line));

		if (len <= 0)
			continue;
		if (p->jsonl)
			jsonl__push_line(p->jsonl, line, len);
		if (p->console)
			console__push_line(p->console, line, len);
	}
	if (p->jsonl)
		jsonl__flush(p->jsonl);
	if (p->console)
		console__flush(p->console);
}

void pipeline_tick(void *ctx)
{
	struct pipeline *p = ctx;
	uint64_t now = mono_ns();

	if (p->profile_every_ns && now >= p->next_profile_ns) {
		if (p->next_profile_ns)
			pipeline_profile_records(p, now);
		p->next_profile_ns = now + p->profile_every_ns;
	}
	if (p->jsonl)
		jsonl__tick(p->jsonl);
	if (p->console)
		console__flush(p->console);
	prom__tick(p->prom, now);
}
