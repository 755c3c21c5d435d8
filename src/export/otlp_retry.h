/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The OTLP exporter's retry policy, pure so it is tested exactly: which
 * answers are retried (OTLP/HTTP: 429, 502, 503, 504, and no answer at all),
 * how long to wait (exponential backoff with jitter, or the receiver's
 * Retry-After), and when to give up.
 */
#ifndef PROFILIS_OTLP_RETRY_H
#define PROFILIS_OTLP_RETRY_H

#include <stdint.h>
#include <time.h>

#define OTLP_BACKOFF_FIRST_NS 500000000ULL /* 0.5 s, doubling ... */
#define OTLP_BACKOFF_MAX_NS 30000000000ULL /* ... up to 30 s */
/* A batch still failing this long after its first attempt is given up. */
#define OTLP_RETRY_MAX_ELAPSED_NS 60000000000ULL

enum otlp_verdict {
	OTLP_SENT,   /* 2xx */
	OTLP_RETRY,  /* 429, 502, 503, 504, or no HTTP answer (status 0) */
	OTLP_REJECT, /* any other answer: the same batch would fail again */
};

enum otlp_verdict otlp_classify(long status);

/* The wait before retry number `retry` (1, 2, ...): d = 0.5 s * 2^(retry-1)
 * capped at 30 s, then a uniform draw in [d/2, d] from `rnd` (any 64 random
 * bits), so agents that failed together do not retry together. */
uint64_t otlp_backoff_ns(unsigned retry, uint64_t rnd);

/* A Retry-After value (RFC 9110 10.2.3: seconds, or an HTTP date, taken
 * relative to `now`) as a wait in ns; -1 when absent or malformed.  A date
 * in the past waits 0. */
int64_t otlp_retry_after_ns(const char *value, time_t now);

#endif
