// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: the JSONL writer's escaping (src/export/jsonl.c), fed
 * the way the program feeds it: a raw request event from BPF (any bytes: str
 * kinds, lengths, invalid UTF-8, surrogates) decoded by request_decode, then
 * encoded.  Differential, not just crash-free: every line must fit
 * JSONL_LINE_MAX, be valid UTF-8 with no raw control byte, end in its only
 * '\n', and parse back with cJSON to exactly the record's fields and values
 * (64-bit numbers read back from the text, cJSON holds doubles).  A buffer
 * one byte too small must give -ENOSPC and an empty string, never a part.
 *
 * Input: 8 bytes realtime offset, 1 byte sample rate (n/255), 2 bytes a
 * small buffer size, then the struct pbpf_req_event bytes (zero padded).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonl.h"
#include "request.h"
#include "k8smeta.h"
#include "traceparent.h"

#define HEADER 11

/* Strict UTF-8 (RFC 3629): no overlongs, surrogates or values past U+10FFFF. */
static int valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k;

		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0)
			k = 2, cp = s[i] & 0x1f;
		else if ((s[i] & 0xf0) == 0xe0)
			k = 3, cp = s[i] & 0x0f;
		else if ((s[i] & 0xf8) == 0xf0)
			k = 4, cp = s[i] & 0x07;
		else
			return 0;
		if (n - i < k)
			return 0;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k;
	}
	return 1;
}

/* A text holds NULs where the target's str did ("%00" in a path), so it is
 * compared by length: cJSON's valuestring ends at the first one, the rest is
 * compared as the escaped text in the line. */
static void want_text(const cJSON *j, const char *key, int have, const char *val, size_t len)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, key);
	size_t head;

	if (!it || (have ? !cJSON_IsString(it) : !cJSON_IsNull(it)))
		abort();
	if (!have)
		return;
	head = strnlen(val, len);
	if (strlen(it->valuestring) != head || memcmp(it->valuestring, val, head))
		abort();
}

static void want_string(const cJSON *j, const char *key, int have, const char *val)
{
	want_text(j, key, have, val, strlen(val));
}

/* "<field>_truncated": true exactly when the record says so; else absent. */
static int want_marker(const cJSON *j, const char *field, bool truncated)
{
	char key[64];
	const cJSON *it;

	snprintf(key, sizeof(key), "%s_truncated", field);
	it = cJSON_GetObjectItemCaseSensitive(j, key);
	if (truncated ? !cJSON_IsTrue(it) : it != NULL)
		abort();
	return truncated;
}

/* The decimal after "key": in the line: exact, unlike cJSON's double. */
static uint64_t text_u64(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (!p)
		abort();
	return strtoull(p + strlen(pat), NULL, 10);
}

static void check_line(const struct request_record *r, const char *line, int n)
{
	const cJSON *it;
	int markers;
	cJSON *j;

	if (n <= 0 || n >= JSONL_LINE_MAX || (size_t)n != strlen(line) || line[n - 1] != '\n' ||
	    memchr(line, '\n', n - 1) || !valid_utf8((const unsigned char *)line, n))
		abort();
	for (int i = 0; i < n - 1; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			abort();
	j = cJSON_ParseWithLength(line, n);
	if (!j || !cJSON_IsObject(j))
		abort();
	markers = want_marker(j, "method", r->has_method && r->method_truncated) +
		  want_marker(j, "path", r->has_path && r->path_truncated) +
		  want_marker(j, "route", r->has_route && r->route_truncated) +
		  want_marker(j, "endpoint", r->has_endpoint && r->endpoint_truncated) +
		  want_marker(j, "exception_type",
			      r->has_exception_type && r->exception_type_truncated);
	if (cJSON_GetArraySize(j) != 24 + markers + (r->ns_pid != 0))
		abort();
	/* Where the request ran: the record's metadata, null when absent. */
	want_string(j, "service_name", r->meta.service_name[0], r->meta.service_name);
	want_string(j, "container_id", r->meta.container_id[0], r->meta.container_id);
	want_string(j, "k8s_pod_uid", r->meta.pod_uid[0], r->meta.pod_uid);
	want_string(j, "k8s_pod_name", r->meta.pod_name[0], r->meta.pod_name);
	want_string(j, "k8s_namespace", r->meta.namespace[0], r -> meta.namespace);
	want_string(j, "host_name", k8smeta_host_name() != NULL,
		    k8smeta_host_name() ? k8smeta_host_name() : "");
	want_string(j, "kind", 1, "REQ");
	want_string(j, "trace_id", 1, r->trace_id);
	want_string(j, "span_id", 1, r->span_id);
	want_string(j, "parent_span_id", r->parent_span_id[0] != 0, r->parent_span_id);
	want_text(j, "method", r->has_method, r->method, r->method_len);
	want_text(j, "path", r->has_path, r->path, r->path_len);
	want_text(j, "route", r->has_route, r->route, r->route_len);
	want_text(j, "endpoint", r->has_endpoint, r->endpoint, r->endpoint_len);
	want_text(j, "exception_type", r->has_exception_type, r->exception_type,
		  r->exception_type_len);
	it = cJSON_GetObjectItemCaseSensitive(j, "status");
	if (r->status >= 0 ? !cJSON_IsNumber(it) || it->valueint != r->status : !cJSON_IsNull(it))
		abort();
	it = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (!it || (r->error ? !cJSON_IsTrue(it) : !cJSON_IsFalse(it)))
		abort();
	it = cJSON_GetObjectItemCaseSensitive(j, "sample_rate");
	if (!cJSON_IsNumber(it) || fabs(it->valuedouble - r->sample_rate) > 1e-6)
		abort();
	if (text_u64(line, "ts_ns") != r->ts_ns || text_u64(line, "dur_ns") != r->dur_ns ||
	    text_u64(line, "time_unix_ns") != r->time_unix_ns || text_u64(line, "pid") != r->pid ||
	    text_u64(line, "tid") != r->tid ||
	    text_u64(line, "schema_version") != JSONL_SCHEMA_VERSION)
		abort();
	cJSON_Delete(j);
}

/* An exact-size heap buffer: ASan sees a write one past it. */
static void check_small(const struct request_record *r, const char *full, int n, size_t size)
{
	char *buf = malloc(size ? size : 1);
	int rc = jsonl_encode_request(r, buf, size);

	if ((size_t)n < size ? rc != n || memcmp(buf, full, n + 1)
			     : rc != -ENOSPC || (size && buf[0]))
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[JSONL_LINE_MAX];
	struct pbpf_req_event ev;
	struct request_record r;
	int64_t realtime;
	uint16_t small;
	int n;

	if (size < HEADER)
		return 0;
	memcpy(&realtime, data, 8);
	memset(&ev, 0, sizeof(ev));
	memcpy(&ev, data + HEADER, size - HEADER < sizeof(ev) ? size - HEADER : sizeof(ev));
	ev.kind = PBPF_EV_REQUEST;
	traceparent_seed(1);
	if (request_decode(&ev, realtime, &r))
		abort();
	r.sample_rate = data[8] / 255.0; /* --sample's range, 0..1 */
	n = jsonl_encode_request(&r, line, sizeof(line));
	check_line(&r, line, n);
	memcpy(&small, data + 9, 2);
	check_small(&r, line, n, small % (n + 2));
	check_small(&r, line, n, n + 1);
	check_small(&r, line, n, n);
	return 0;
}
