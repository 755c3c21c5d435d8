/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The Prometheus exporter: cumulative request counts and duration
 * histograms since start, under Profilis's names and labels so its
 * dashboards keep working: profilis_http_requests_total and
 * profilis_http_request_duration_seconds, labels service, instance (the
 * node's host name), worker (the PID), route, status, plus method and, with
 * --all, namespace and pod.  The pipeline pushes every record (its thread);
 * the HTTP server renders the exposition (its thread).  Bounded: a request
 * that matched no Flask rule is counted under the route "(unmatched)",
 * methods outside the standard nine under "_OTHER", at most max_series
 * series (further requests are counted as dropped), and the series of a
 * process that has exited go expire_ns after it was first seen gone.
 */
#ifndef PROFILIS_PROM_H
#define PROFILIS_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "prom_text.h"
#include "request.h"

#define PROM_SERIES_MAX 4096
#define PROM_EXPIRE_NS (300ULL * 1000000000ULL) /* 5 minutes */
#define PROM_CHECK_NS (5ULL * 1000000000ULL)	/* how often gone processes are looked for */
#define PROM_NBUCKETS 11
#define PROM_METHOD_OTHER "_OTHER"

/* Profilis's buckets (DEFAULT_BUCKETS of its exporter), in nanoseconds
 * and as its Python client writes the le label. */
extern const uint64_t prom_bucket_ns[PROM_NBUCKETS];
extern const char *const prom_bucket_le[PROM_NBUCKETS];

struct prom_opts {
	bool k8s_labels;      /* namespace and pod labels (--all) */
	const char *instance; /* the instance label; NULL: "" */
	size_t max_series;    /* 0: PROM_SERIES_MAX */
	uint64_t expire_ns;   /* 0: PROM_EXPIRE_NS */
	/* Whether a process still runs; NULL: kill(pid, 0).  Tests inject one. */
	bool (*alive)(uint32_t pid, void *ctx);
	void *alive_ctx;
};

struct prom;

struct prom *prom__new(const struct prom_opts *o);
/* Counts a finished request (the pipeline's thread). */
void prom__push(struct prom *p, const struct request_record *r);
/* Looks for exited processes every PROM_CHECK_NS and removes their series
 * expire_ns after (the pipeline's thread: kill(2) is not called under the
 * lock the renderer takes). */
void prom__tick(struct prom *p, uint64_t now_ns);
/* The whole exposition: request families, then health (h may be NULL).
 * malloc'ed text, its length in *len; NULL with errno ENOMEM. */
char *prom__render(struct prom *p, const struct prom_health *h, size_t *len);
void prom__stats(struct prom *p, struct prom_stats *out);
void prom__free(struct prom *p);

/* Pure helpers, for the tests. */
/* The bucket index of a duration (le is inclusive), PROM_NBUCKETS: +Inf only. */
int prom_bucket(uint64_t dur_ns);
/* The method label: one of the nine standard methods, else "_OTHER". */
const char *prom_method(const char *method);

#endif
