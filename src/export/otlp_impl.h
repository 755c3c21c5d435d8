/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The OTLP exporter's insides, shared by its files and nobody else: otlp.c
 * (life cycle, the queue the pipeline pushes into), otlp_sender.c (the
 * sender thread: batching, POSTs, retries, the exit flush) and
 * otlp_report.c (messages).  The lock guards the queue, the counters and
 * the stop state; the HTTP handle belongs to the sender thread.
 */
#ifndef PROFILIS_OTLP_IMPL_H
#define PROFILIS_OTLP_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include "otlp.h"
#include "otlp_config.h"
#include "otlp_http.h"
#include "otlp_span.h"

/* One queued span: its resource object, then its span object. */
struct otlp_item {
	uint64_t enq_ns;
	uint32_t res_len, span_len;
	char text[];
};

struct otlp_exporter {
	struct otlp_opts o;
	char url_shown[OTLP_URL_MAX]; /* without user:password@ */
	struct otlp_kvlist headers, attrs;
	struct otlp_resource_opts ro;
	struct otlp_http *http;
	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* a push, a stop */
	struct otlp_item **ring;
	size_t head, count;
	bool stopping;
	_Atomic int64_t stop_deadline; /* INT64_MAX until otlp__finish */
	struct otlp_stats st;
	struct otlp_item **batch;     /* the sender's, batch_max long */
	struct otlp_span_text *texts; /* the same */

	/* The pipeline thread's encoding buffers. */
	char span_buf[OTLP_SPAN_MAX];
	char res_buf[OTLP_RESOURCE_MAX];

	/* The main thread's report state. */
	struct otlp_stats warned;
	int64_t next_warn_ns;
};

/* The sender thread (otlp_sender.c). */
void *otlp_sender_main(void *arg);

#endif
