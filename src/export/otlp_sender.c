// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OTLP sender thread.  It takes a batch when --batch-max spans wait or
 * the oldest has waited --flush-interval, POSTs it, and on a retryable
 * failure waits (Retry-After, else backoff with jitter) and POSTs the same
 * batch again, giving up when the next try would come more than
 * retry_max_elapsed_ns (OTLP_RETRY_MAX_ELAPSED_NS) after the first.
 * Meanwhile the queue takes new spans up to its size.  One batch is in
 * flight at a time: a receiver that cannot keep up is what the queue and its
 * drops are for, and order within a process is kept.
 *
 * At exit (otlp__finish) every wait is cut short: what is queued is sent at
 * once in batches, each failure retried after at most 100 ms, until the
 * exit deadline; a POST still running then is abandoned, and everything not
 * acknowledged is counted at_exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include "clock.h"
#include "log.h"
#include "otlp_impl.h"
#include "otlp_retry.h"

#define SHUTDOWN_RETRY_NS 100000000LL /* at most, between tries at exit */

struct sender {
	struct otlp_exporter *x;
	struct otlp_item **batch;     /* the exporter's, batch_max long */
	struct otlp_span_text *texts; /* the same */
	struct otlp_buf body;
	uint64_t rnd;
	int64_t attempt_limit; /* the running POST's own deadline */
};

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64*: jitter needs spread, not secrecy */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Lock held; returns when `until` passes or the cond is signalled. */
static void wait_until(struct otlp_exporter *x, int64_t until)
{
	struct timespec ts = { .tv_sec = until / 1000000000LL, .tv_nsec = until % 1000000000LL };

	pthread_cond_timedwait(&x->cond, &x->lock, &ts);
}

static int64_t attempt_deadline(void *ctx)
{
	struct sender *s = ctx;
	int64_t stop = atomic_load(&s->x->stop_deadline);

	return stop < s->attempt_limit ? stop : s->attempt_limit;
}

/* Lock held: up to batch_max spans, within OTLP_BODY_MAX (at least one). */
static size_t take(struct otlp_exporter *x, struct otlp_item **batch)
{
	size_t n = 0, bytes = 64;

	while (n < x->o.batch_max && x->count) {
		struct otlp_item *it = x->ring[x->head];
		size_t b = it->res_len + it->span_len + 96;

		if (n && bytes + b > OTLP_BODY_MAX)
			break;
		bytes += b;
		batch[n++] = it;
		x->head = (x->head + 1) % x->o.queue_size;
		x->count--;
	}
	x->st.in_flight = n;
	return n;
}

/* Lock held: the verdict on one POST of n spans; true when the batch is
 * done with (sent, refused or given up). */
static bool account(struct sender *s, size_t n, const struct otlp_http_result *res, int64_t first,
		    int64_t *wait, unsigned *retry)
{
	struct otlp_exporter *x = s->x;
	enum otlp_verdict v = otlp_classify(res->status);
	uint64_t rej = res->rejected < 0 ? 0 : (uint64_t)res->rejected;
	int64_t now = clock_ns(CLOCK_MONOTONIC);

	if (v != OTLP_SENT || rej)
		snprintf(x->st.last_error, sizeof(x->st.last_error), "%s", res->error);
	x->st.retrying = false;
	if (v == OTLP_SENT) {
		rej = rej > n ? n : rej;
		x->st.sent += n - rej;
		x->st.rejected += rej;
		return true;
	}
	if (v == OTLP_REJECT) {
		x->st.rejected += n;
		return true;
	}
	*wait = res->retry_after_ns >= 0 ? res->retry_after_ns
					 : (int64_t)otlp_backoff_ns(++*retry, next_rand(&s->rnd));
	if (!x->stopping && now + *wait - first > (int64_t)x->o.retry_max_elapsed_ns) {
		x->st.gave_up += n;
		return true;
	}
	x->st.retrying = true;
	return false;
}

/* Lock held: sleeps `wait`, cut to SHUTDOWN_RETRY_NS once stopping. */
static void backoff(struct otlp_exporter *x, int64_t wait)
{
	int64_t until = clock_ns(CLOCK_MONOTONIC) + wait;

	while (!x->stopping && clock_ns(CLOCK_MONOTONIC) < until)
		wait_until(x, until);
	if (x->stopping) {
		int64_t cut = clock_ns(CLOCK_MONOTONIC) + SHUTDOWN_RETRY_NS;
		int64_t stop = atomic_load(&x->stop_deadline);

		until = until < cut ? until : cut;
		until = until < stop ? until : stop;
		while (clock_ns(CLOCK_MONOTONIC) < until)
			wait_until(x, until);
	}
}

static void send_batch(struct sender *s, size_t n)
{
	struct otlp_exporter *x = s->x;
	int64_t first = clock_ns(CLOCK_MONOTONIC), wait = 0;
	unsigned retry = 0;

	for (size_t i = 0; i < n; i++)
		s->texts[i] = (struct otlp_span_text){ s->batch[i]->text,
						       s->batch[i]->text + s->batch[i]->res_len,
						       s->batch[i]->res_len,
						       s->batch[i]->span_len };
	if (otlp_encode_request(s->texts, n, &s->body)) {
		pthread_mutex_lock(&x->lock);
		x->st.unencodable += n;
		pthread_mutex_unlock(&x->lock);
		return;
	}
	for (unsigned attempt = 0;; attempt++) {
		struct otlp_http_result res;
		bool done;

		if (clock_ns(CLOCK_MONOTONIC) >= atomic_load(&x->stop_deadline)) {
			pthread_mutex_lock(&x->lock);
			x->st.at_exit += n;
			pthread_mutex_unlock(&x->lock);
			return;
		}
		s->attempt_limit = clock_ns(CLOCK_MONOTONIC) + OTLP_REQUEST_TIMEOUT_MS * 1000000LL +
				   1000000000LL;
		otlp_http__post(x->http, s->body.p, s->body.len, attempt_deadline, s, &res);
		if (res.status < 200 || res.status >= 300)
			p_dbg("OTLP: POST of %zu spans to %s: %s", n, x->url_shown, res.error);
		pthread_mutex_lock(&x->lock);
		x->st.requests++;
		x->st.retries += attempt > 0;
		done = account(s, n, &res, first, &wait, &retry);
		if (!done)
			backoff(x, wait);
		pthread_mutex_unlock(&x->lock);
		if (done)
			return;
	}
}

/* Lock held: true when the sender should stop (nothing left, or the exit
 * deadline passed: what is queued then is lost at exit). */
static bool finished(struct otlp_exporter *x)
{
	if (!x->stopping)
		return false;
	if (clock_ns(CLOCK_MONOTONIC) >= atomic_load(&x->stop_deadline)) {
		x->st.at_exit += x->count;
		while (x->count) {
			free(x->ring[x->head]);
			x->head = (x->head + 1) % x->o.queue_size;
			x->count--;
		}
	}
	return x->count == 0;
}

/* Lock held: whether a batch is due now; otherwise waits a while. */
static bool batch_due(struct otlp_exporter *x)
{
	int64_t due;

	if (!x->count) {
		pthread_cond_wait(&x->cond, &x->lock);
		return false;
	}
	if (x->stopping || x->count >= x->o.batch_max)
		return true;
	due = (int64_t)(x->ring[x->head]->enq_ns + x->o.flush_interval_ns);
	if (clock_ns(CLOCK_MONOTONIC) >= due)
		return true;
	wait_until(x, due);
	return false;
}

void *otlp_sender_main(void *arg)
{
	struct otlp_exporter *x = arg;
	struct sender s = { .x = x, .batch = x->batch, .texts = x->texts };

	if (getrandom(&s.rnd, sizeof(s.rnd), 0) != sizeof(s.rnd) || !s.rnd)
		s.rnd = (uint64_t)clock_ns(CLOCK_MONOTONIC) | 1;
	pthread_mutex_lock(&x->lock);
	while (!finished(x)) {
		size_t n;

		if (!batch_due(x))
			continue;
		n = take(x, s.batch);
		pthread_mutex_unlock(&x->lock);
		send_batch(&s, n);
		for (size_t i = 0; i < n; i++)
			free(s.batch[i]);
		pthread_mutex_lock(&x->lock);
		x->st.in_flight = 0;
	}
	pthread_mutex_unlock(&x->lock);
	otlp_buf_free(&s.body);
	return NULL;
}
