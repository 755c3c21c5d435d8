// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What the OTLP exporter says, from the main thread: while running, a
 * failing receiver and every span dropped since the last message, by reason
 * and with the remedy, at most every 5 s; at exit one summary line whose
 * counts add up (spans = sent + every kind of loss).  Header values and a
 * URL's password are never printed.
 */
#include <inttypes.h>
#include "log.h"
#include "otlp_impl.h"
#include "otlp_retry.h"

#define WARN_EVERY_NS 5000000000LL

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* Warnings for drops since `old`; true when anything was said. */
static bool warn_drops(struct otlp_exporter *x, const struct otlp_stats *s,
		       const struct otlp_stats *old)
{
	bool said = false;

	if (s->queue_full > old->queue_full) {
		p_warn("OTLP: dropped %llu spans (%llu in all): the queue of %zu spans was full; "
		       "the receiver at %s is slower than the service or unreachable (raise "
		       "--queue-size, or check the receiver)",
		       ull(s->queue_full - old->queue_full), ull(s->queue_full), x->o.queue_size,
		       x->url_shown);
		said = true;
	}
	if (s->rejected > old->rejected) {
		p_warn("OTLP: %s refused %llu spans (%llu in all): %s; they are not retried "
		       "(check the URL, OTEL_EXPORTER_OTLP_HEADERS and the receiver's log)",
		       x->url_shown, ull(s->rejected - old->rejected), ull(s->rejected),
		       s->last_error);
		said = true;
	}
	if (s->gave_up > old->gave_up) {
		p_warn("OTLP: dropped %llu spans (%llu in all) after retrying for %llu s: %s",
		       ull(s->gave_up - old->gave_up), ull(s->gave_up),
		       ull(x->o.retry_max_elapsed_ns / 1000000000ULL), s->last_error);
		said = true;
	}
	if (s->unencodable > old->unencodable) {
		p_warn("OTLP: dropped %llu spans (%llu in all): out of memory while encoding",
		       ull(s->unencodable - old->unencodable), ull(s->unencodable));
		said = true;
	}
	return said;
}

void otlp__report(struct otlp_exporter *x, int64_t now)
{
	struct otlp_stats s;
	bool said;

	if (!x || now < x->next_warn_ns)
		return;
	otlp__stats(x, &s);
	said = warn_drops(x, &s, &x->warned);
	/* A receiver that fails is said once per streak of failures (and
	 * again every 5 s while spans pile up), not once per retry. */
	if (s.retrying && (s.retries > x->warned.retries || !x->warned.retrying)) {
		p_warn("OTLP: POST to %s failed: %s; retrying with backoff (%llu retries so far, "
		       "%zu spans queued of %zu)",
		       x->url_shown, s.last_error, ull(s.retries), s.depth + s.in_flight,
		       x->o.queue_size);
		said = true;
	} else if (!s.retrying && x->warned.retrying && s.sent > x->warned.sent) {
		p_info("OTLP: %s accepts spans again", x->url_shown);
	}
	if (s.depth * 5 > x->o.queue_size * 4) {
		p_warn("OTLP: queue %zu%% full (%zu of %zu spans)", s.depth * 100 / x->o.queue_size,
		       s.depth, x->o.queue_size);
		said = true;
	}
	x->warned = s;
	if (said)
		x->next_warn_ns = now + WARN_EVERY_NS;
}

void otlp__summary(struct otlp_exporter *x)
{
	struct otlp_stats s;
	uint64_t lost;

	if (!x)
		return;
	/* Drops since the last warning get their reason said too. */
	x->next_warn_ns = 0;
	otlp__stats(x, &s);
	warn_drops(x, &s, &x->warned);
	x->warned = s;
	lost = s.queue_full + s.rejected + s.gave_up + s.at_exit + s.unencodable;
	p_log(lost ? LOG_WARN : LOG_INFO,
	      "OTLP: %llu spans sent to %s in %llu requests (%llu retries); %llu lost (queue "
	      "full %llu, refused %llu, gave up after retries %llu, unsent at exit %llu, out of "
	      "memory %llu)",
	      ull(s.sent), x->url_shown, ull(s.requests), ull(s.retries), ull(lost),
	      ull(s.queue_full), ull(s.rejected), ull(s.gave_up), ull(s.at_exit),
	      ull(s.unencodable));
	if (s.at_exit)
		p_warn("OTLP: %llu spans were still unsent %.1f s after the stop: %s",
		       ull(s.at_exit), OTLP_EXIT_FLUSH_NS / 1e9,
		       s.last_error[0] ? s.last_error : "the receiver was slow");
	if (s.spans != s.sent + lost + s.depth + s.in_flight)
		p_err("internal: OTLP spans %llu != sent %llu + lost %llu + queued %zu",
		      ull(s.spans), ull(s.sent), ull(lost), s.depth + s.in_flight);
}
