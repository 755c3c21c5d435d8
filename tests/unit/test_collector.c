// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The collector's promises, checked against a recording sink that can be
 * held shut: a burst of ten queues' worth never blocks a drop-oldest
 * producer and leaves enqueued == exported + dropped with the newest events
 * kept in order; without drop-oldest the producer is held back and nothing
 * is lost; batches never exceed batch_max and full ones leave at once, while
 * a partial one waits exactly its flush interval; flush delivers everything,
 * a stopped collector refuses pushes, the tick keeps its period when idle,
 * and bad options are refused.  Seeded random configurations repeat the
 * burst check with a sink that sleeps.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "collector.h"

#define MS 1000000ULL

/* A lost wake-up would hang the run: fail it instead. */
TestSuite(collector, .timeout = 20);

struct item {
	uint64_t seq;
	char pad[40]; /* items are copied whole: make them more than a word */
};

/* What the sink saw, and a gate that holds it shut until opened. */
struct rec {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool gate_shut;
	bool bad_pad;
	unsigned sleep_us; /* per batch, for a slow sink */
	uint64_t *seqs;
	size_t n_seqs, cap;
	size_t *sizes;
	uint64_t *at_ns; /* when each batch arrived */
	size_t n_batches;
	size_t sink_entered; /* batches that entered the sink, gate or not */
	uint64_t ticks;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void rec_init(struct rec *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->cap = cap;
	r->seqs = calloc(cap, sizeof(*r->seqs));
	r->sizes = calloc(cap, sizeof(*r->sizes));
	r->at_ns = calloc(cap, sizeof(*r->at_ns));
	cr_assert(r->seqs && r->sizes && r->at_ns);
}

static void rec_free(struct rec *r)
{
	free(r->seqs);
	free(r->sizes);
	free(r->at_ns);
}

static void rec_open_gate(struct rec *r)
{
	pthread_mutex_lock(&r->lock);
	r->gate_shut = false;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void sink(void *ctx, const void *items, size_t n)
{
	struct rec *r = ctx;
	const struct item *it = items;
	uint64_t at = now_ns();

	pthread_mutex_lock(&r->lock);
	r->sink_entered++;
	pthread_cond_broadcast(&r->cond);
	while (r->gate_shut)
		pthread_cond_wait(&r->cond, &r->lock);
	if (r->n_batches < r->cap) {
		r->sizes[r->n_batches] = n;
		r->at_ns[r->n_batches] = at;
	}
	r->n_batches++;
	for (size_t i = 0; i < n; i++) {
		if (r->n_seqs < r->cap)
			r->seqs[r->n_seqs] = it[i].seq;
		r->n_seqs++;
		if (it[i].pad[0] != (char)it[i].seq || it[i].pad[39] != (char)~it[i].seq)
			r->bad_pad = true;
	}
	pthread_mutex_unlock(&r->lock);
	if (r->sleep_us)
		usleep(r->sleep_us);
}

static void tick(void *ctx)
{
	struct rec *r = ctx;

	pthread_mutex_lock(&r->lock);
	r->ticks++;
	pthread_mutex_unlock(&r->lock);
}

static struct item make_item(uint64_t seq)
{
	struct item it;

	memset(&it, 0, sizeof(it));
	it.seq = seq;
	it.pad[0] = (char)seq;
	it.pad[39] = (char)~seq;
	return it;
}

static struct collector *start(struct rec *r, size_t q, size_t batch, uint64_t interval_ns,
			       bool drop_oldest)
{
	struct collector_opts o = {
		.item_size = sizeof(struct item),
		.queue_size = q,
		.batch_max = batch,
		.flush_interval_ns = interval_ns,
		.drop_oldest = drop_oldest,
		.sink = sink,
		.tick = tick,
		.ctx = r,
	};
	struct collector *c = collector__new(&o);

	cr_assert_not_null(c, "collector__new: %s", strerror(errno));
	return c;
}

static int push_seq(struct collector *c, uint64_t seq)
{
	struct item it = make_item(seq);

	return collector__push(c, &it);
}

/* Strictly increasing: in order, no duplicates; all copied whole. */
static void assert_in_order(struct rec *r)
{
	cr_assert_leq(r->n_seqs, r->cap);
	cr_assert(!r->bad_pad, "an item reached the sink torn");
	for (size_t i = 1; i < r->n_seqs; i++)
		cr_assert_gt(r->seqs[i], r->seqs[i - 1], "seq[%zu]=%llu after seq[%zu]=%llu", i,
			     (unsigned long long)r->seqs[i], i - 1,
			     (unsigned long long)r->seqs[i - 1]);
}

/* Checks one burst of 10x the queue into a shut sink, drop-oldest. */
static void burst_case(size_t q, size_t batch, uint64_t interval_ns, unsigned sleep_us)
{
	size_t total = 10 * q;
	struct collector_stats st;
	struct rec r;
	struct collector *c;
	uint64_t t0, took;

	rec_init(&r, total + 1);
	r.gate_shut = true;
	r.sleep_us = sleep_us;
	c = start(&r, q, batch, interval_ns, true);
	t0 = now_ns();
	for (size_t i = 0; i < total; i++)
		cr_assert_eq(push_seq(c, i), 0, "push %zu", i);
	took = now_ns() - t0;
	cr_assert_lt(took, 1000 * MS, "a burst of %zu took %llu ms: push blocked", total,
		     (unsigned long long)(took / MS));

	collector__stats(c, &st);
	cr_assert_eq(st.enqueued, total);
	/* Full, but for what the batcher took out after its one batch was taken. */
	cr_assert_leq(st.depth, q);
	cr_assert_geq(st.depth + batch, q);
	cr_assert_eq(st.high_water, q);

	rec_open_gate(&r);
	collector__stop(c);
	collector__stats(c, &st);
	cr_assert_eq(st.enqueued, total);
	cr_assert_eq(st.exported + st.dropped, st.enqueued, "exported %llu + dropped %llu",
		     (unsigned long long)st.exported, (unsigned long long)st.dropped);
	cr_assert_gt(st.dropped, 0);
	cr_assert_eq(st.depth, 0);
	/* What survives: at most one batch taken before the gate, plus the full queue. */
	cr_assert_geq(st.exported, q);
	cr_assert_leq(st.exported, q + batch);
	cr_assert_eq(r.n_seqs, st.exported);
	cr_assert_eq(r.n_batches, st.batches);
	assert_in_order(&r);
	/* The newest q events are all kept: the last q seen are total-q .. total-1. */
	for (size_t i = 0; i < q; i++)
		cr_assert_eq(r.seqs[r.n_seqs - q + i], total - q + i);
	for (size_t i = 0; i < r.n_batches; i++)
		cr_assert_leq(r.sizes[i], batch);
	collector__free(c);
	rec_free(&r);
}

Test(collector, burst_of_ten_queues_never_blocks_and_keeps_the_newest)
{
	burst_case(256, 32, 10 * MS, 0);
}

/* Seeded random shapes, including batch_max == queue_size and a 1-slot queue. */
Test(collector, random_bursts_keep_counters_consistent)
{
	unsigned seed = 20240611;

	burst_case(1, 1, 5 * MS, 0);
	burst_case(64, 64, 5 * MS, 0);
	for (int k = 0; k < 6; k++) {
		size_t q = 1 + rand_r(&seed) % 500;
		size_t batch = 1 + rand_r(&seed) % q;

		burst_case(q, batch, (1 + rand_r(&seed) % 20) * MS, rand_r(&seed) % 200);
	}
}

struct producer {
	struct collector *c;
	size_t n;
	int failed; /* pushes that did not return 0 */
	volatile int done;
};

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (size_t i = 0; i < p->n; i++)
		if (push_seq(p->c, i))
			p->failed++;
	__atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

Test(collector, no_drop_mode_blocks_the_producer_and_loses_nothing)
{
	const size_t q = 32, batch = 8, total = q + batch + 5;
	struct producer p = { .n = total };
	struct collector_stats st;
	struct rec r;
	pthread_t th;

	rec_init(&r, 1024);
	r.gate_shut = true;
	/* A long interval: only full batches leave on their own, so counts are exact. */
	p.c = start(&r, q, batch, 5000 * MS, false);
	cr_assert_eq(pthread_create(&th, NULL, produce, &p), 0);
	sleep_ms(200);
	cr_assert_eq(__atomic_load_n(&p.done, __ATOMIC_SEQ_CST), 0,
		     "the producer finished although the sink is shut and the queue full");
	collector__stats(p.c, &st);
	cr_assert_eq(st.dropped, 0);
	cr_assert_eq(st.enqueued, q + batch, "one batch in the sink, a full queue");
	cr_assert_eq(st.depth, q);
	pthread_mutex_lock(&r.lock);
	cr_assert_eq(r.sink_entered, 1);
	pthread_mutex_unlock(&r.lock);

	rec_open_gate(&r);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(p.failed, 0);
	collector__stop(p.c);
	collector__stats(p.c, &st);
	cr_assert_eq(st.enqueued, total);
	cr_assert_eq(st.exported, total);
	cr_assert_eq(st.dropped, 0);
	cr_assert_eq(r.n_seqs, total);
	for (size_t i = 0; i < total; i++)
		cr_assert_eq(r.seqs[i], i, "seq[%zu]", i);
	assert_in_order(&r);
	collector__free(p.c);
	rec_free(&r);
}

Test(collector, full_batches_leave_at_once_and_never_exceed_batch_max)
{
	const size_t n = 1000, batch = 50;
	struct collector_stats st;
	struct rec r;
	struct collector *c;
	uint64_t t0, waited;

	rec_init(&r, 2 * n);
	/* 5 s interval: anything that leaves within the test left because it was full. */
	c = start(&r, 256, batch, 5000 * MS, false);
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(push_seq(c, i), 0);
	for (;;) {
		collector__stats(c, &st);
		waited = now_ns() - t0;
		if (st.exported == n || waited > 1000 * MS)
			break;
		sleep_ms(1);
	}
	cr_assert_eq(st.exported, n, "only %llu of %zu exported after %llu ms",
		     (unsigned long long)st.exported, n, (unsigned long long)(waited / MS));
	pthread_mutex_lock(&r.lock);
	cr_assert_eq(r.n_batches, n / batch);
	for (size_t i = 0; i < r.n_batches; i++)
		cr_assert_eq(r.sizes[i], batch, "batch %zu has %zu items", i, r.sizes[i]);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(r.seqs[i], i);
	pthread_mutex_unlock(&r.lock);
	cr_assert_leq(st.high_water, 256);
	collector__free(c);
	rec_free(&r);
}

Test(collector, a_partial_batch_waits_for_the_flush_interval)
{
	struct collector_stats st;
	struct rec r;
	struct collector *c;
	uint64_t t0, delay;

	rec_init(&r, 64);
	c = start(&r, 1024, 100, 50 * MS, true);
	sleep_ms(5); /* not aligned with the batcher's tick */
	t0 = now_ns();
	for (int i = 0; i < 3; i++)
		cr_assert_eq(push_seq(c, i), 0);
	sleep_ms(20);
	collector__stats(c, &st);
	if (now_ns() - t0 < 50 * MS)
		cr_assert_eq(st.exported, 0, "sent before the 50 ms interval");
	for (int i = 0; i < 500 && !__atomic_load_n(&r.n_batches, __ATOMIC_SEQ_CST); i++)
		sleep_ms(1);
	pthread_mutex_lock(&r.lock);
	cr_assert_eq(r.n_batches, 1);
	cr_assert_eq(r.sizes[0], 3);
	delay = r.at_ns[0] - t0;
	pthread_mutex_unlock(&r.lock);
	cr_assert_geq(delay, 50 * MS, "sent after %llu us", (unsigned long long)(delay / 1000));
	cr_assert_lt(delay, 500 * MS, "sent after %llu ms", (unsigned long long)(delay / MS));
	collector__free(c);
	rec_free(&r);
}

Test(collector, flush_delivers_everything_queued_before_returning)
{
	struct collector_stats st;
	struct rec r;
	struct collector *c;
	uint64_t t0;

	rec_init(&r, 64);
	c = start(&r, 1024, 100, 5000 * MS, true);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(push_seq(c, i), 0);
	t0 = now_ns();
	cr_assert_eq(collector__flush(c), 0);
	cr_assert_lt(now_ns() - t0, 1000 * MS, "flush waited for the interval");
	pthread_mutex_lock(&r.lock);
	cr_assert_eq(r.n_seqs, 7, "flush returned with %zu of 7 delivered", r.n_seqs);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(r.seqs[i], i);
	pthread_mutex_unlock(&r.lock);
	collector__stats(c, &st);
	cr_assert_eq(st.exported, 7);
	cr_assert_eq(st.depth, 0);
	/* A second flush with nothing queued returns too. */
	cr_assert_eq(collector__flush(c), 0);
	for (int i = 7; i < 10; i++)
		cr_assert_eq(push_seq(c, i), 0);
	cr_assert_eq(collector__flush(c), 0);
	cr_assert_eq(r.n_seqs, 10);
	assert_in_order(&r);
	collector__free(c);
	rec_free(&r);
}

Test(collector, push_after_stop_is_refused)
{
	struct collector_stats st;
	struct rec r;
	struct collector *c;

	rec_init(&r, 64);
	c = start(&r, 16, 4, 5000 * MS, false);
	cr_assert_eq(push_seq(c, 0), 0);
	cr_assert_eq(push_seq(c, 1), 0);
	collector__stop(c);
	cr_assert_eq(r.n_seqs, 2, "stop flushes what was queued");
	cr_assert_eq(push_seq(c, 2), -ESHUTDOWN);
	cr_assert_eq(push_seq(c, 3), -ESHUTDOWN);
	collector__stop(c); /* twice is harmless */
	collector__stats(c, &st);
	cr_assert_eq(st.enqueued, 2);
	cr_assert_eq(st.exported, 2);
	cr_assert_eq(st.batches, 1);
	cr_assert_eq(r.n_seqs, 2);
	collector__free(c);
	collector__free(NULL);
	rec_free(&r);
}

Test(collector, tick_keeps_its_period_when_idle_and_stops_with_the_collector)
{
	struct rec r;
	struct collector *c;
	uint64_t t0, elapsed, ticks, after;

	rec_init(&r, 16);
	t0 = now_ns();
	c = start(&r, 16, 4, 20 * MS, true);
	sleep_ms(300);
	pthread_mutex_lock(&r.lock);
	ticks = r.ticks;
	elapsed = now_ns() - t0;
	pthread_mutex_unlock(&r.lock);
	cr_assert_leq(ticks, elapsed / (20 * MS), "%llu ticks in %llu ms: faster than 20 ms",
		      (unsigned long long)ticks, (unsigned long long)(elapsed / MS));
	cr_assert_geq(ticks, 7, "%llu ticks in %llu ms", (unsigned long long)ticks,
		      (unsigned long long)(elapsed / MS));
	cr_assert_eq(r.n_batches, 0, "no items, no batches");
	collector__stop(c);
	after = __atomic_load_n(&r.ticks, __ATOMIC_SEQ_CST);
	sleep_ms(60);
	cr_assert_eq(__atomic_load_n(&r.ticks, __ATOMIC_SEQ_CST), after, "tick after stop");
	collector__free(c);
	rec_free(&r);
}

Test(collector, invalid_options_are_refused)
{
	struct rec r;
	const struct collector_opts good = {
		.item_size = sizeof(struct item),
		.queue_size = 8,
		.batch_max = 4,
		.flush_interval_ns = 10 * MS,
		.sink = sink,
		.ctx = &r,
	};
	struct collector_opts o;
	struct collector *c;

	rec_init(&r, 4);
	o = good;
	o.queue_size = 0;
	errno = 0;
	cr_assert_null(collector__new(&o));
	cr_assert_eq(errno, EINVAL);
	o = good;
	o.batch_max = 0;
	errno = 0;
	cr_assert_null(collector__new(&o));
	cr_assert_eq(errno, EINVAL);
	o = good;
	o.item_size = 0;
	errno = 0;
	cr_assert_null(collector__new(&o));
	cr_assert_eq(errno, EINVAL);
	o = good;
	o.sink = NULL;
	errno = 0;
	cr_assert_null(collector__new(&o));
	cr_assert_eq(errno, EINVAL);
	/* The same options with nothing missing work. */
	c = collector__new(&good);
	cr_assert_not_null(c);
	collector__free(c);
	rec_free(&r);
}

/* The stack queue is flushed by one thread while another keeps pushing into
 * it: the flush waits for what was queued when it was called, and returns
 * although the queue is never seen empty (it waited forever before). */
Test(collector, flush_returns_while_another_thread_keeps_pushing)
{
	struct producer p = { .n = 400000 };
	struct collector_stats st;
	struct rec r;
	pthread_t th;
	int flushes = 0;

	rec_init(&r, 400000);
	p.c = start(&r, 256, 16, 100 * MS, true);
	cr_assert_eq(pthread_create(&th, NULL, produce, &p), 0);
	while (!__atomic_load_n(&p.done, __ATOMIC_SEQ_CST)) {
		uint64_t before;

		collector__stats(p.c, &st);
		before = st.enqueued;
		cr_assert_eq(collector__flush(p.c), 0);
		collector__stats(p.c, &st);
		cr_assert_geq(st.exported + st.dropped, before,
			      "flush returned before what was queued at its call was handled");
		flushes++;
	}
	pthread_join(th, NULL);
	cr_assert_eq(collector__flush(p.c), 0);
	collector__stats(p.c, &st);
	cr_assert_eq(st.exported + st.dropped, 400000);
	cr_assert_gt(flushes, 0);
	collector__free(p.c);
	rec_free(&r);
}

/* Batches are handed to the sink where they lie in the ring: a drop_oldest
 * producer that laps a slow sink again and again must step over the lent
 * slots every time, never write into them, and keep the order. */
Test(collector, a_lapping_producer_never_writes_into_the_batch_in_the_sink)
{
	const size_t total = 200000;
	struct collector_stats st;
	struct rec r;
	struct collector *c;

	rec_init(&r, total + 1);
	r.sleep_us = 30;
	c = start(&r, 48, 16, 2 * MS, true);
	for (size_t i = 0; i < total; i++)
		cr_assert_eq(push_seq(c, i), 0);
	collector__stop(c);
	collector__stats(c, &st);
	cr_assert_eq(st.exported + st.dropped, total);
	cr_assert_gt(st.dropped, 0, "the sink never fell behind: nothing was tested");
	cr_assert_eq(r.n_seqs, st.exported);
	assert_in_order(&r);
	cr_assert_eq(r.seqs[r.n_seqs - 1], total - 1, "the newest item is kept");
	for (size_t i = 0; i < r.n_batches; i++)
		cr_assert_leq(r.sizes[i], 16);
	collector__free(c);
	rec_free(&r);
}
