// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A ring of fixed-size items under one mutex.  The batching thread takes up
 * to batch_max items under the lock and calls the sink without it, on the
 * items where they lie in the ring (a request event is ~4.5 KB: a copy of
 * each cost more than decoding it), so the producer only ever waits for a
 * memcpy, never for a write(2).  A batch leaves when batch_max items are
 * waiting or the oldest has waited flush_interval.
 *
 * The ring has batch_max slots more than queue_size, so the slots of the
 * batch in the sink (lent) are not the ones the producer writes next: the
 * queue still holds queue_size items while a batch is out, as when batches
 * were copied.  Only drop_oldest can bring the producer round to the lent
 * slots, when the sink is slower than a whole queue of drops: it then steps
 * over them, and they stay a hole in the queue until its head passes them;
 * batches are copied (as far as the hole) until then, so there is never more
 * than one hole.  Behind the ring lie batch_max slots more, where a batch
 * that wraps around the ring's end gets its wrapped part copied, so the sink
 * always sees one array.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "collector.h"

struct collector {
	struct collector_opts o;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t not_empty; /* producer -> batcher */
	pthread_cond_t not_full;  /* batcher -> blocked producer */
	pthread_cond_t idle;	  /* batcher -> flush waiters */
	char *ring;		  /* cap slots, then batch_max for a wrapped batch */
	uint64_t *arrived;	  /* per slot: when its item was pushed */
	size_t cap;		  /* queue_size + batch_max */
	size_t head, count;
	size_t lent_at, lent_n; /* the slots of the batch in the sink */
	size_t hole_at, hole_n; /* lent slots the producer stepped over */
	bool busy;		/* the sink is running */
	bool flush_req;
	bool stopping;
	bool joined;
	struct collector_stats st;
};

static void deadline_ts(uint64_t at_ns, struct timespec *ts)
{
	ts->tv_sec = at_ns / 1000000000ULL;
	ts->tv_nsec = at_ns % 1000000000ULL;
}

static char *slot(struct collector *c, size_t at)
{
	return c->ring + (at % c->cap) * c->o.item_size;
}

/* Where the next item goes: past the queue, and past a hole inside it. */
static size_t tail_at(struct collector *c)
{
	return (c->head + c->count + c->hole_n) % c->cap;
}

/* Removes n items from the queue's head; a hole reached is passed. */
static void advance_head(struct collector *c, size_t n)
{
	c->head = (c->head + n) % c->cap;
	c->count -= n;
	if (c->hole_n && c->head == c->hole_at) {
		c->head = (c->head + c->hole_n) % c->cap;
		c->hole_n = 0;
	}
}

/*
 * Takes up to batch_max items off the queue, with the lock held, and returns
 * where the sink finds them.  Normally they stay in their slots, lent until
 * the sink returns; while a hole is in the queue they are copied behind the
 * ring instead, and only as far as the hole.
 */
static const char *take_batch(struct collector *c, size_t *taken)
{
	size_t sz = c->o.item_size, first = c->head;
	size_t n = c->count < c->o.batch_max ? c->count : c->o.batch_max;
	char *spare = c->ring + c->cap * sz;

	if (c->hole_n) {
		size_t before = (c->hole_at + c->cap - first) % c->cap;

		n = n < before ? n : before;
		for (size_t i = 0; i < n; i++)
			memcpy(spare + i * sz, slot(c, first + i), sz);
		advance_head(c, n);
		*taken = n;
		return spare;
	}
	if (first + n > c->cap)
		memcpy(spare, c->ring, (first + n - c->cap) * sz);
	c->lent_at = first;
	c->lent_n = n;
	advance_head(c, n);
	*taken = n;
	return slot(c, first);
}

static uint64_t oldest_ns(struct collector *c)
{
	return c->arrived[c->head];
}

static bool batch_due(struct collector *c, uint64_t now)
{
	return c->count >= c->o.batch_max || c->flush_req || c->stopping ||
	       (c->count && now - oldest_ns(c) >= c->o.flush_interval_ns);
}

static void *batcher(void *arg)
{
	struct collector *c = arg;
	uint64_t next_tick = mono_ns() + c->o.flush_interval_ns;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		uint64_t now = mono_ns();
		const char *items = NULL;
		struct timespec ts;
		size_t n = 0;

		if (batch_due(c, now) && c->count)
			items = take_batch(c, &n);
		if (n) {
			c->busy = true;
			pthread_cond_broadcast(&c->not_full);
			pthread_mutex_unlock(&c->lock);
			c->o.sink(c->o.ctx, items, n);
			pthread_mutex_lock(&c->lock);
			c->busy = false;
			c->lent_n = 0;
			c->st.exported += n;
			c->st.batches++;
			pthread_cond_broadcast(&c->idle); /* a flush may be waiting for these */
			continue;
		}
		if (c->flush_req) {
			c->flush_req = false;
			pthread_cond_broadcast(&c->idle);
		}
		if (c->stopping)
			break;
		if (now >= next_tick) {
			next_tick = now + c->o.flush_interval_ns;
			if (c->o.tick) {
				pthread_mutex_unlock(&c->lock);
				c->o.tick(c->o.ctx);
				pthread_mutex_lock(&c->lock);
			}
			continue;
		}
		/* Sleep until the next tick or until the oldest item is due. */
		uint64_t wake = next_tick;
		if (c->count && oldest_ns(c) + c->o.flush_interval_ns < wake)
			wake = oldest_ns(c) + c->o.flush_interval_ns;
		deadline_ts(wake, &ts);
		pthread_cond_timedwait(&c->not_empty, &c->lock, &ts);
	}
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

struct collector *collector__new(const struct collector_opts *o)
{
	struct collector *c;
	pthread_condattr_t ca;

	if (!o->item_size || !o->queue_size || !o->batch_max || !o->sink) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->o = *o;
	c->cap = o->queue_size + o->batch_max;
	c->ring = calloc(c->cap + o->batch_max, o->item_size);
	c->arrived = calloc(c->cap, sizeof(*c->arrived));
	if (!c->ring || !c->arrived)
		goto fail;
	pthread_mutex_init(&c->lock, NULL);
	/* Timed waits use CLOCK_MONOTONIC: a clock step must not stall flushes. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->not_empty, &ca);
	pthread_cond_init(&c->not_full, &ca);
	pthread_cond_init(&c->idle, &ca);
	pthread_condattr_destroy(&ca);
	errno = pthread_create(&c->thread, NULL, batcher, c);
	if (errno)
		goto fail;
	return c;
fail:
	free(c->ring);
	free(c->arrived);
	free(c);
	return NULL;
}

int collector__push(struct collector *c, const void *item)
{
	size_t at;

	pthread_mutex_lock(&c->lock);
	while (c->count == c->o.queue_size && !c->o.drop_oldest && !c->stopping)
		pthread_cond_wait(&c->not_full, &c->lock);
	if (c->stopping) {
		pthread_mutex_unlock(&c->lock);
		return -ESHUTDOWN;
	}
	if (c->count == c->o.queue_size) {
		/* drop_oldest: the newest event is the more useful one. */
		advance_head(c, 1);
		c->st.dropped++;
	}
	at = tail_at(c);
	if (c->lent_n && (at + c->cap - c->lent_at) % c->cap < c->lent_n) {
		/* Round to the batch in the sink (drop_oldest only): step over it. */
		c->hole_at = at;
		c->hole_n = c->lent_n;
		at = (at + c->hole_n) % c->cap;
	}
	c->arrived[at] = mono_ns();
	if (c->o.copy)
		c->o.copy(slot(c, at), item);
	else
		memcpy(slot(c, at), item, c->o.item_size);
	c->count++;
	c->st.enqueued++;
	if (c->count > c->st.high_water)
		c->st.high_water = c->count;
	if (c->count >= c->o.batch_max)
		pthread_cond_signal(&c->not_empty);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Waits for what was queued when it was called, not for an empty queue:
 * another thread may go on pushing (the stack queue, flushed by the request
 * thread while the ring-buffer thread fills it), and an empty queue might
 * never be seen then. */
int collector__flush(struct collector *c)
{
	uint64_t target;

	pthread_mutex_lock(&c->lock);
	target = c->st.enqueued;
	while (c->st.exported + c->st.dropped < target && !c->stopping) {
		c->flush_req = true;
		pthread_cond_signal(&c->not_empty);
		pthread_cond_wait(&c->idle, &c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void collector__stats(struct collector *c, struct collector_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	out->depth = c->count;
	pthread_mutex_unlock(&c->lock);
}

void collector__stop(struct collector *c)
{
	if (!c || c->joined)
		return;
	collector__flush(c);
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->not_empty);
	pthread_cond_broadcast(&c->not_full);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	c->joined = true;
}

void collector__free(struct collector *c)
{
	if (!c)
		return;
	collector__stop(c);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->not_empty);
	pthread_cond_destroy(&c->not_full);
	pthread_cond_destroy(&c->idle);
	free(c->ring);
	free(c->arrived);
	free(c);
}
