// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Retry decisions for the OTLP sender (see otlp_retry.h).  HTTP dates are
 * parsed by libcurl's curl_getdate, which takes the three formats RFC 9110
 * asks recipients to accept.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include "otlp_retry.h"

enum otlp_verdict otlp_classify(long status)
{
	if (status >= 200 && status < 300)
		return OTLP_SENT;
	if (status == 0 || status == 429 || status == 502 || status == 503 || status == 504)
		return OTLP_RETRY;
	return OTLP_REJECT;
}

uint64_t otlp_backoff_ns(unsigned retry, uint64_t rnd)
{
	uint64_t d = OTLP_BACKOFF_FIRST_NS;

	for (unsigned i = 1; i < retry && d < OTLP_BACKOFF_MAX_NS; i++)
		d *= 2;
	if (d > OTLP_BACKOFF_MAX_NS)
		d = OTLP_BACKOFF_MAX_NS;
	return d / 2 + rnd % (d / 2 + 1);
}

int64_t otlp_retry_after_ns(const char *value, time_t now)
{
	const char *s = value;
	time_t when;

	if (!s)
		return -1;
	while (isblank((unsigned char)*s))
		s++;
	if (isdigit((unsigned char)*s)) {
		char *end;
		unsigned long long secs;

		errno = 0;
		secs = strtoull(s, &end, 10);
		while (isblank((unsigned char)*end))
			end++;
		if (errno || *end)
			return -1;
		/* A day is more than any retry will wait: the cap keeps the
		 * arithmetic safe, the elapsed limit decides. */
		return (int64_t)(secs > 86400 ? 86400 : secs) * 1000000000LL;
	}
	when = curl_getdate(s, NULL);
	if (when == (time_t)-1)
		return -1;
	return when <= now ? 0 : (int64_t)(when - now > 86400 ? 86400 : when - now) * 1000000000LL;
}
