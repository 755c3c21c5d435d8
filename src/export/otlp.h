/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The OTLP/HTTP traces exporter: every request record becomes a SERVER span
 * (otlp_span.h), queued by the pipeline without ever blocking it and POSTed
 * in batches (--batch-max spans, or what waited --flush-interval) by a
 * sender thread.  Failed batches are retried with backoff (otlp_retry.h)
 * while the queue (--queue-size spans) keeps filling; a full queue drops its
 * oldest span (or, with --no-drop-oldest, the new one).  Every span ends up
 * exactly once in one of the counters below.
 */
#ifndef PROFILIS_OTLP_H
#define PROFILIS_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "request.h"

/* The final flush's default time, so exit stays within 2 s of Ctrl-C. */
#define OTLP_EXIT_FLUSH_NS 1000000000ULL
/* Largest request body: batches are cut below it (receivers refuse large
 * bodies; the OpenTelemetry Collector's default limit is 20 MiB). */
#define OTLP_BODY_MAX (4u << 20)

struct otlp_opts {
	const char *url;	    /* the traces URL (otlp_traces_url) */
	const char *headers;	    /* OTEL_EXPORTER_OTLP_HEADERS, may be NULL */
	const char *traces_headers; /* OTEL_EXPORTER_OTLP_TRACES_HEADERS: win per key */
	const char *resource_attrs; /* OTEL_RESOURCE_ATTRIBUTES, may be NULL */
	const char *service_name;   /* the agent's OTEL_SERVICE_NAME, may be NULL */
	size_t queue_size;	    /* spans, >= 1 */
	size_t batch_max;	    /* spans per request, >= 1 */
	uint64_t flush_interval_ns;
	bool drop_oldest;
	uint64_t retry_max_elapsed_ns; /* 0: OTLP_RETRY_MAX_ELAPSED_NS (tests shorten it) */
};

struct otlp_stats {
	uint64_t spans;	     /* records pushed */
	uint64_t sent;	     /* accepted by the receiver */
	uint64_t queue_full; /* dropped: the queue was full */
	uint64_t rejected;   /* dropped: refused (a non-retryable answer, or partialSuccess) */
	uint64_t gave_up; /* dropped: still failing OTLP_RETRY_MAX_ELAPSED_NS after the first try */
	uint64_t at_exit; /* dropped: not sent by the exit deadline */
	uint64_t unencodable; /* dropped: no memory to encode */
	uint64_t requests;    /* POSTs made */
	uint64_t retries;     /* of those, repeats of a failed batch */
	size_t depth;	      /* queued now */
	size_t in_flight;     /* in the batch being sent now */
	uint64_t high_water;
	bool retrying;	      /* the last POST failed and will be retried */
	char last_error[256]; /* of the last failed POST */
};

struct otlp_exporter;

/* Parses the settings (checked by cli.c before) and starts the sender;
 * NULL with errno set. */
struct otlp_exporter *otlp__new(const struct otlp_opts *opts);
/* Queues r's span; never blocks on the network.  0, or -ENOBUFS when the
 * span (or, with drop_oldest, an older one) was dropped, -ENOMEM. */
int otlp__push(struct otlp_exporter *x, const struct request_record *r);
void otlp__stats(struct otlp_exporter *x, struct otlp_stats *out);
/* Sends what is queued, retrying only until `timeout_ns` from now; what is
 * still unsent then is counted at_exit.  Stops the sender; stats stay. */
void otlp__finish(struct otlp_exporter *x, uint64_t timeout_ns);
/* Warnings while running (retrying, losses by reason, queue fill), at most
 * every 5 s; call from the main loop.  NULL-safe. */
void otlp__report(struct otlp_exporter *x, int64_t now_ns);
/* The exit summary line (after otlp__finish).  NULL-safe. */
void otlp__summary(struct otlp_exporter *x);
void otlp__free(struct otlp_exporter *x);

#endif
