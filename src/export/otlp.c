// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OTLP exporter's life cycle and the queue the pipeline pushes into.  The
 * pipeline thread encodes each span itself (a few microseconds) and only
 * takes the lock to queue the text: the network is the sender thread's
 * (otlp_sender.c), so a slow or dead receiver costs the pipeline nothing but
 * the spans a full queue drops.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "otlp_impl.h"
#include "otlp_retry.h"

/* The sender's timed waits are on CLOCK_MONOTONIC, like every deadline. */
static void init_cond(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

static int parse_settings(struct otlp_exporter *x)
{
	char msg[256];

	/* cli.c has checked them: a failure here is memory. */
	if (otlp_kv_parse("OTEL_EXPORTER_OTLP_HEADERS", x->o.headers, true, &x->headers, msg,
			  sizeof(msg)) ||
	    otlp_kv_parse("OTEL_EXPORTER_OTLP_TRACES_HEADERS", x->o.traces_headers, true,
			  &x->headers, msg, sizeof(msg)) ||
	    otlp_kv_parse("OTEL_RESOURCE_ATTRIBUTES", x->o.resource_attrs, false, &x->attrs, msg,
			  sizeof(msg)))
		return -EINVAL;
	x->ro = (struct otlp_resource_opts){ .service_name = x->o.service_name,
					     .attrs = &x->attrs };
	otlp_url_redacted(x->o.url, x->url_shown, sizeof(x->url_shown));
	return 0;
}

struct otlp_exporter *otlp__new(const struct otlp_opts *opts)
{
	struct otlp_exporter *x = calloc(1, sizeof(*x));
	int err = ENOMEM;

	if (!x)
		return NULL;
	x->o = *opts;
	if (!x->o.retry_max_elapsed_ns)
		x->o.retry_max_elapsed_ns = OTLP_RETRY_MAX_ELAPSED_NS;
	if (!x->o.queue_size || !x->o.batch_max) {
		free(x);
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_init(&x->lock, NULL);
	init_cond(&x->cond);
	atomic_store(&x->stop_deadline, INT64_MAX);
	x->ring = calloc(x->o.queue_size, sizeof(*x->ring));
	x->batch = calloc(x->o.batch_max, sizeof(*x->batch));
	x->texts = calloc(x->o.batch_max, sizeof(*x->texts));
	if (!x->ring || !x->batch || !x->texts)
		goto fail;
	if (parse_settings(x)) {
		err = EINVAL;
		goto fail;
	}
	x->http = otlp_http__new(x->o.url, &x->headers);
	if (!x->http) {
		err = errno;
		goto fail;
	}
	err = pthread_create(&x->thread, NULL, otlp_sender_main, x);
	if (err)
		goto fail;
	x->started = true;
	return x;
fail:
	otlp__free(x);
	errno = err;
	return NULL;
}

/* The span and resource texts of r in one allocation; NULL when they do
 * not fit their buffers or memory is short. */
static struct otlp_item *encode(struct otlp_exporter *x, const struct request_record *r)
{
	int rl = otlp_encode_resource(r, &x->ro, x->res_buf, sizeof(x->res_buf));
	int sl = rl < 0 ? rl : otlp_encode_span(r, x->span_buf, sizeof(x->span_buf));
	struct otlp_item *it;

	if (sl < 0)
		return NULL;
	it = malloc(sizeof(*it) + rl + sl);
	if (!it)
		return NULL;
	it->enq_ns = mono_ns();
	it->res_len = rl;
	it->span_len = sl;
	memcpy(it->text, x->res_buf, rl);
	memcpy(it->text + rl, x->span_buf, sl);
	return it;
}

int otlp__push(struct otlp_exporter *x, const struct request_record *r)
{
	struct otlp_item *it = encode(x, r), *evicted = NULL;
	size_t cap = x->o.queue_size;
	int rc = 0;

	pthread_mutex_lock(&x->lock);
	x->st.spans++;
	if (!it) {
		x->st.unencodable++;
		pthread_mutex_unlock(&x->lock);
		return -ENOMEM;
	}
	if (x->count == cap || x->stopping) {
		x->st.queue_full++;
		rc = -ENOBUFS;
		if (!x->o.drop_oldest || x->stopping) {
			evicted = it; /* the new span goes */
			goto out;
		}
		evicted = x->ring[x->head];
		x->head = (x->head + 1) % cap;
		x->count--;
	}
	x->ring[(x->head + x->count) % cap] = it;
	x->count++;
	if (x->count > x->st.high_water)
		x->st.high_water = x->count;
	/* The sender waits for a first span, or on its flush timer for a
	 * full batch. */
	if (x->count == 1 || x->count == x->o.batch_max)
		pthread_cond_signal(&x->cond);
out:
	pthread_mutex_unlock(&x->lock);
	free(evicted);
	return rc;
}

void otlp__stats(struct otlp_exporter *x, struct otlp_stats *out)
{
	pthread_mutex_lock(&x->lock);
	*out = x->st;
	out->depth = x->count;
	pthread_mutex_unlock(&x->lock);
}

void otlp__finish(struct otlp_exporter *x, uint64_t timeout_ns)
{
	if (!x || !x->started)
		return;
	pthread_mutex_lock(&x->lock);
	x->stopping = true;
	atomic_store(&x->stop_deadline, (int64_t)(mono_ns() + timeout_ns));
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	otlp_http__wakeup(x->http);
	pthread_join(x->thread, NULL);
	x->started = false;
}

void otlp__free(struct otlp_exporter *x)
{
	if (!x)
		return;
	otlp__finish(x, OTLP_EXIT_FLUSH_NS);
	for (size_t i = 0; x->ring && i < x->count; i++)
		free(x->ring[(x->head + i) % x->o.queue_size]);
	free(x->ring);
	free(x->batch);
	free(x->texts);
	otlp_http__free(x->http);
	otlp_kv_free(&x->headers);
	otlp_kv_free(&x->attrs);
	pthread_cond_destroy(&x->cond);
	pthread_mutex_destroy(&x->lock);
	free(x);
}
