/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One OTLP/HTTP POST at a time over libcurl, on the sender's thread, with
 * the connection kept between requests.  A request ends at the receiver's
 * answer, at libcurl's limits (connect 2 s, whole request 10 s), or at a
 * deadline the caller may move closer while it runs (shutdown): the transfer
 * waits in curl_multi_poll, which otlp_http__wakeup interrupts.
 */
#ifndef PROFILIS_OTLP_HTTP_H
#define PROFILIS_OTLP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "otlp_config.h"

#define OTLP_CONNECT_TIMEOUT_MS 2000
#define OTLP_REQUEST_TIMEOUT_MS 10000

struct otlp_http_result {
	long status;		/* HTTP status; 0 when no answer came */
	int64_t retry_after_ns; /* the answer's Retry-After, -1 when none */
	int64_t rejected;	/* partialSuccess.rejectedSpans of a 2xx, else 0 */
	char error[256];	/* what went wrong (not 2xx, or a partial success) */
};

/* CLOCK_MONOTONIC ns at which the running request is abandoned. */
typedef int64_t (*otlp_deadline_fn)(void *ctx);

struct otlp_http;

/* Sets up libcurl (call before other threads use it) for `url` with the
 * extra `headers`.  NULL with errno set. */
struct otlp_http *otlp_http__new(const char *url, const struct otlp_kvlist *headers);
/* POSTs body as application/json.  0 when an answer came (any status),
 * -ETIMEDOUT / -ECONNREFUSED / -EIO when none did: res says why. */
int otlp_http__post(struct otlp_http *h, const char *body, size_t len, otlp_deadline_fn deadline,
		    void *ctx, struct otlp_http_result *res);
/* Makes a running otlp_http__post look at its deadline now (any thread). */
void otlp_http__wakeup(struct otlp_http *h);
void otlp_http__free(struct otlp_http *h);

#endif
