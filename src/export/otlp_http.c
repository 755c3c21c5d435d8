// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OTLP/HTTP transport: libcurl's multi interface driving one easy handle,
 * so the connection is reused and a request can be abandoned at once when the
 * caller's deadline moves (a blocking curl_easy_perform could only be stopped
 * from its progress callback, which libcurl calls about once a second when
 * nothing moves).  Only http and https, no redirects, no signals (threads).
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "clock.h"
#include "otlp_http.h"
#include "otlp_retry.h"

#define BODY_KEEP 65536 /* of an answer: enough for any partialSuccess */

struct otlp_http {
	CURLM *multi;
	CURL *easy;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	char *body; /* the answer, up to BODY_KEEP */
	size_t body_len;
	char retry_after[64];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct otlp_http *h = ctx;
	size_t len = size * n, room = BODY_KEEP - h->body_len;

	if (len < room)
		room = len;
	memcpy(h->body + h->body_len, p, room);
	h->body_len += room;
	h->body[h->body_len] = 0;
	return len; /* the rest is read and dropped, not an error */
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct otlp_http *h = ctx;
	size_t len = size * n, v;

	/* A new status line (after a 100 Continue) starts a new answer. */
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
		h->retry_after[0] = 0;
	if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		v = len - 12;
		while (v && isspace((unsigned char)p[12 + v - 1]))
			v--;
		if (v >= sizeof(h->retry_after))
			v = sizeof(h->retry_after) - 1;
		memcpy(h->retry_after, p + 12, v);
		h->retry_after[v] = 0;
	}
	return len;
}

static int add_header(struct otlp_http *h, const char *line)
{
	struct curl_slist *l = curl_slist_append(h->headers, line);

	if (!l)
		return -ENOMEM;
	h->headers = l;
	return 0;
}

static int set_headers(struct otlp_http *h, const struct otlp_kvlist *extra)
{
	char line[8192];

	/* No "Expect: 100-continue" round trip before a large body. */
	if (add_header(h, "Content-Type: application/json") || add_header(h, "Expect:"))
		return -ENOMEM;
	for (size_t i = 0; extra && i < extra->n; i++) {
		if (snprintf(line, sizeof(line), "%s: %s", extra->kv[i].key, extra->kv[i].value) >=
		    (int)sizeof(line))
			return -E2BIG;
		if (add_header(h, line))
			return -ENOMEM;
	}
	return 0;
}

static int set_options(struct otlp_http *h, const char *url)
{
	CURL *e = h->easy;

	return curl_easy_setopt(e, CURLOPT_URL, url) ||
			       curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") ||
			       curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
			       curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
						(long)OTLP_CONNECT_TIMEOUT_MS) ||
			       curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
						(long)OTLP_REQUEST_TIMEOUT_MS) ||
			       curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers) ||
			       curl_easy_setopt(e, CURLOPT_USERAGENT, "profilis-bpf") ||
			       curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf) ||
			       curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) ||
			       curl_easy_setopt(e, CURLOPT_WRITEDATA, h) ||
			       curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) ||
			       curl_easy_setopt(e, CURLOPT_HEADERDATA, h)
		       ? -EINVAL
		       : 0;
}

struct otlp_http *otlp_http__new(const char *url, const struct otlp_kvlist *headers)
{
	struct otlp_http *h;
	int err = ENOMEM;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		errno = EIO;
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h || !(h->body = malloc(BODY_KEEP + 1)) || !(h->multi = curl_multi_init()) ||
	    !(h->easy = curl_easy_init()))
		goto fail;
	err = -set_headers(h, headers);
	if (!err)
		err = -set_options(h, url);
	if (!err)
		return h;
fail:
	otlp_http__free(h);
	errno = err;
	return NULL;
}

/* partialSuccess of a 2xx answer: spans the receiver refused, and why. */
static void read_partial(struct otlp_http *h, struct otlp_http_result *res)
{
	cJSON *root = cJSON_ParseWithLength(h->body, h->body_len);
	cJSON *ps = cJSON_GetObjectItemCaseSensitive(root, "partialSuccess");
	cJSON *n = cJSON_GetObjectItemCaseSensitive(ps, "rejectedSpans");
	cJSON *msg = cJSON_GetObjectItemCaseSensitive(ps, "errorMessage");

	/* int64 fields come as strings in OTLP JSON; numbers are accepted too. */
	if (cJSON_IsString(n))
		res->rejected = strtoll(n->valuestring, NULL, 10);
	else if (cJSON_IsNumber(n))
		res->rejected = (int64_t)n->valuedouble;
	if (res->rejected < 0)
		res->rejected = 0;
	if (res->rejected)
		snprintf(res->error, sizeof(res->error), "the receiver refused %lld spans: %.150s",
			 (long long)res->rejected, cJSON_IsString(msg) ? msg->valuestring : "");
	cJSON_Delete(root);
}

/* "HTTP 400: <the answer's start>", printable only. */
static void describe_status(struct otlp_http *h, struct otlp_http_result *res)
{
	int n = snprintf(res->error, sizeof(res->error), "HTTP %ld", res->status);

	if (h->body_len && n < (int)sizeof(res->error) - 3) {
		char *o = res->error + n;
		size_t room = sizeof(res->error) - n - 3;

		o += sprintf(o, ": ");
		for (size_t i = 0; i < h->body_len && room > 1; i++, room--)
			*o++ = isprint((unsigned char)h->body[i]) ? h->body[i] : ' ';
		*o = 0;
	}
}

/* Runs the transfer until it ends or the deadline passes: its CURLcode, or
 * CURLE_OPERATION_TIMEDOUT at the deadline. */
static CURLcode run(struct otlp_http *h, otlp_deadline_fn deadline, void *ctx)
{
	CURLcode rc = CURLE_OPERATION_TIMEDOUT;
	int running = 1;

	if (curl_multi_add_handle(h->multi, h->easy))
		return CURLE_OUT_OF_MEMORY;
	while (running) {
		int64_t left = deadline(ctx) - clock_ns(CLOCK_MONOTONIC);
		CURLMsg *m;
		int q;

		if (curl_multi_perform(h->multi, &running) != CURLM_OK)
			break;
		while ((m = curl_multi_info_read(h->multi, &q)))
			if (m->msg == CURLMSG_DONE)
				rc = m->data.result;
		if (!running)
			break;
		if (left <= 0) {
			snprintf(h->errbuf, sizeof(h->errbuf), "no answer by the exit deadline");
			rc = CURLE_OPERATION_TIMEDOUT;
			break;
		}
		curl_multi_poll(h->multi, NULL, 0,
				left / 1000000 + 1 < 1000 ? left / 1000000 + 1 : 1000, NULL);
	}
	curl_multi_remove_handle(h->multi, h->easy);
	return rc;
}

int otlp_http__post(struct otlp_http *h, const char *body, size_t len, otlp_deadline_fn deadline,
		    void *ctx, struct otlp_http_result *res)
{
	CURLcode rc;

	*res = (struct otlp_http_result){ .retry_after_ns = -1 };
	h->body_len = 0;
	h->body[0] = 0;
	h->retry_after[0] = 0;
	h->errbuf[0] = 0;
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	rc = run(h, deadline, ctx);
	if (rc != CURLE_OK) {
		snprintf(res->error, sizeof(res->error), "%s",
			 h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
		return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
		       : rc == CURLE_COULDNT_CONNECT  ? -ECONNREFUSED
						      : -EIO;
	}
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &res->status);
	res->retry_after_ns =
		otlp_retry_after_ns(h->retry_after[0] ? h->retry_after : NULL, time(NULL));
	if (res->status >= 200 && res->status < 300)
		read_partial(h, res);
	else
		describe_status(h, res);
	return 0;
}

void otlp_http__wakeup(struct otlp_http *h)
{
	if (h)
		curl_multi_wakeup(h->multi);
}

void otlp_http__free(struct otlp_http *h)
{
	if (!h)
		return;
	if (h->easy)
		curl_easy_cleanup(h->easy);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	curl_slist_free_all(h->headers);
	free(h->body);
	free(h);
}
