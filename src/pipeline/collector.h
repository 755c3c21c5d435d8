/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The collector: a bounded queue between the ring-buffer consumer and the
 * exporters, drained in batches by its own thread so a slow exporter never
 * stalls ring-buffer consumption.  Under backpressure it either drops the
 * oldest queued event (drop_oldest) or blocks the producer, which leaves the
 * events in the kernel's ring buffer (where overflow is counted by BPF).
 */
#ifndef PROFILIS_COLLECTOR_H
#define PROFILIS_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Receives up to batch_max items; returns nothing: errors are the sink's to count. */
typedef void (*collector_sink_fn)(void *ctx, const void *items, size_t n);
/* Called on the collector thread about every flush interval, also when idle. */
typedef void (*collector_tick_fn)(void *ctx);

struct collector_opts {
	size_t item_size;
	size_t queue_size; /* capacity in items, >= 1 */
	size_t batch_max;  /* >= 1 */
	uint64_t flush_interval_ns;
	bool drop_oldest;
	collector_sink_fn sink;
	collector_tick_fn tick; /* optional */
	/* Optional: copies an item into its slot, when less than item_size
	 * bytes of it matter (request events: the text fields' used bytes);
	 * memcpy of item_size otherwise. */
	void (*copy)(void *dst, const void *src);
	void *ctx;
};

struct collector_stats {
	uint64_t enqueued; /* accepted by push */
	uint64_t exported; /* handed to the sink */
	uint64_t dropped;  /* evicted from a full queue (drop_oldest) */
	uint64_t batches;
	uint64_t high_water; /* deepest the queue has been */
	size_t depth;	     /* items queued now */
};

struct collector;

/* Starts the batching thread; NULL with errno set on failure. */
struct collector *collector__new(const struct collector_opts *opts);
/* Queues one item (copied).  With drop_oldest never blocks; otherwise waits
 * for room.  Returns 0, or -ESHUTDOWN once collector__stop has run. */
int collector__push(struct collector *c, const void *item);
/* Hands everything queued so far to the sink and waits until it is done
 * (items pushed meanwhile by other threads are not waited for). */
int collector__flush(struct collector *c);
void collector__stats(struct collector *c, struct collector_stats *out);
/* Flushes and stops the thread: the sink and tick are never called again;
 * stats stay readable.  Later pushes return -ESHUTDOWN. */
void collector__stop(struct collector *c);
/* Stops (if not yet) and frees. */
void collector__free(struct collector *c);

#endif
