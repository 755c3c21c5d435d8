/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The stages after the collector, run on its thread: decode each raw event,
 * apply the userspace filters, and hand the record to every exporter.
 */
#ifndef PROFILIS_PIPELINE_H
#define PROFILIS_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

struct aggregator;
struct collector;
struct k8smeta_cache;
struct profile;
struct filter;
struct jsonl_exporter;
struct console_exporter;
struct prom;
struct otlp_exporter;

struct pipeline {
	int64_t realtime_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	double sample_rate;	    /* configured --sample */
	struct filter *filter;
	struct jsonl_exporter *jsonl;	  /* may be NULL */
	struct console_exporter *console; /* may be NULL */
	struct otlp_exporter *otlp;	  /* may be NULL: spans, queued */
	struct aggregator *agg;		  /* may be NULL */
	struct prom *prom;		  /* --http's /metrics; may be NULL */
	struct profile *profile;	  /* may be NULL: joins samples to routes */
	/* The stack events' own queue (may be NULL).  A request's stacks were
	 * queued before its record, so emptying it first gives the profile
	 * every stack of the batch's requests before their records join them. */
	struct collector *stacks;
	uint64_t profile_every_ns; /* PROFILE records period, 0: only at exit */
	uint64_t next_profile_ns;
	struct k8smeta_cache *meta; /* records' service, pod and ns_pid; NULL: none */
	uint64_t decoded;
	uint64_t malformed; /* events that failed to decode */
};

/* collector_sink_fn: items are struct pbpf_req_event. */
void pipeline_sink(void *ctx, const void *items, size_t n);
/* collector_tick_fn: flushes and rotates while the service is idle, and
 * writes the periodic PROFILE records. */
void pipeline_tick(void *ctx);
/* PROFILE records for every route, to the JSONL outputs. */
void pipeline_profile_records(struct pipeline *p, uint64_t now_ns);

#endif
