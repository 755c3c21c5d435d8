// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OTLP exporter's pure parts: one exact golden span and resource, the
 * semantic-convention rules (unmatched requests have no http.route and are
 * named by the method alone, unknown methods are _OTHER, error.type and
 * status ERROR on 5xx only), the service.name ladder, grouping of spans by
 * resource in an export request (parsed back with cJSON), -ENOSPC at every
 * too-small size, the OTEL_* list and URL parsing, and the retry policy
 * (which answers are retried, backoff bounds, Retry-After seconds and dates).
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "otlp_config.h"
#include "otlp_retry.h"
#include "otlp_span.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN "00f067aa0ba902b7"
#define PARENT "b7ad6b7169203331"

static const char golden_span[] =
	"{\"traceId\":\"" TRACE "\",\"spanId\":\"" SPAN "\",\"parentSpanId\":\"" PARENT "\","
	"\"name\":\"GET /users/<int:uid>\",\"kind\":2,"
	"\"startTimeUnixNano\":\"1795534628963329027\",\"endTimeUnixNano\":\"1795534628965004257\","
	"\"attributes\":["
	"{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"GET\"}},"
	"{\"key\":\"url.path\",\"value\":{\"stringValue\":\"/users/42\"}},"
	"{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/users/<int:uid>\"}},"
	"{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"200\"}},"
	"{\"key\":\"thread.id\",\"value\":{\"intValue\":\"3471\"}}]}";

static const char golden_resource[] =
	"{\"attributes\":["
	"{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}},"
	"{\"key\":\"process.pid\",\"value\":{\"intValue\":\"3470\"}},"
	"{\"key\":\"host.name\",\"value\":{\"stringValue\":\"node-1\"}},"
	"{\"key\":\"k8s.namespace.name\",\"value\":{\"stringValue\":\"shop\"}},"
	"{\"key\":\"k8s.pod.name\",\"value\":{\"stringValue\":\"checkout-7d4b9\"}},"
	"{\"key\":\"k8s.pod.uid\",\"value\":{\"stringValue\":"
	"\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\"}},"
	"{\"key\":\"container.id\",\"value\":{\"stringValue\":"
	"\"" TRACE TRACE "\"}},"
	"{\"key\":\"deployment.environment.name\",\"value\":{\"stringValue\":\"prod eu\"}}]}";

static void sample(struct request_record *r)
{
	setenv("PROFILIS_HOST_NAME", "node-1", 1);
	memset(r, 0, sizeof(*r));
	r->ts_ns = 1334176162672ULL;
	r->time_unix_ns = 1795534628965004257ULL;
	r->dur_ns = 1675230;
	r->pid = 3470;
	r->tid = 3471;
	r->status = 200;
	r->sample_rate = 1.0;
	r->has_method = r->has_path = r->has_route = r->has_endpoint = true;
	r->route_matched = true;
	strcpy(r->method, "GET");
	strcpy(r->path, "/users/42");
	strcpy(r->route, "/users/<int:uid>");
	strcpy(r->endpoint, "get_user");
	strcpy(r->trace_id, TRACE);
	strcpy(r->span_id, SPAN);
	strcpy(r->parent_span_id, PARENT);
	request_text_lengths(r);
}

/* The span as cJSON (asserting it parses). */
static cJSON *span_json(const struct request_record *r)
{
	static char buf[OTLP_SPAN_MAX];
	cJSON *j;

	cr_assert_gt(otlp_encode_span(r, buf, sizeof(buf)), 0);
	j = cJSON_Parse(buf);
	cr_assert_not_null(j, "%s", buf);
	return j;
}

/* attribute `key`'s value object, or NULL. */
static cJSON *attr(cJSON *obj, const char *key)
{
	cJSON *a;

	cJSON_ArrayForEach(a, cJSON_GetObjectItem(obj, "attributes"))
	{
		if (strcmp(cJSON_GetObjectItem(a, "key")->valuestring, key) == 0)
			return cJSON_GetObjectItem(a, "value");
	}
	return NULL;
}

static const char *attr_str(cJSON *obj, const char *key)
{
	cJSON *v = attr(obj, key);

	return v ? cJSON_GetObjectItem(v, "stringValue")->valuestring : NULL;
}

static const char *attr_int(cJSON *obj, const char *key)
{
	cJSON *v = attr(obj, key);

	return v ? cJSON_GetObjectItem(v, "intValue")->valuestring : NULL;
}

static int status_code(cJSON *span)
{
	cJSON *s = cJSON_GetObjectItem(span, "status");

	return s ? cJSON_GetObjectItem(s, "code")->valueint : 0;
}

Test(otlp, golden_span)
{
	struct request_record r;
	char buf[OTLP_SPAN_MAX];

	sample(&r);
	int n = otlp_encode_span(&r, buf, sizeof(buf));

	cr_assert_str_eq(buf, golden_span);
	cr_assert_eq(n, (int)strlen(golden_span));
}

Test(otlp, golden_resource)
{
	struct otlp_kvlist attrs = { 0 };
	struct otlp_resource_opts o = { .service_name = "agent", .attrs = &attrs };
	struct request_record r;
	char buf[OTLP_RESOURCE_MAX], msg[256];

	sample(&r);
	strcpy(r.meta.service_name, "checkout");
	r.meta.service_source = K8SMETA_SVC_OTEL_SERVICE_NAME;
	strcpy(r.meta.namespace, "shop");
	strcpy(r.meta.pod_name, "checkout-7d4b9");
	strcpy(r.meta.pod_uid, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
	strcpy(r.meta.container_id, TRACE TRACE);
	/* The process's facts win over the agent's list; other keys are added. */
	cr_assert_eq(otlp_kv_parse("R",
				   "host.name=evil,deployment.environment.name=prod%20eu,"
				   "service.name=other,process.pid=1",
				   false, &attrs, msg, sizeof(msg)),
		     0, "%s", msg);
	int n = otlp_encode_resource(&r, &o, buf, sizeof(buf));

	cr_assert_str_eq(buf, golden_resource);
	cr_assert_eq(n, (int)strlen(golden_resource));
	otlp_kv_free(&attrs);
}

/* A host process: no k8s.* or container.id attribute at all. */
Test(otlp, resource_without_pod)
{
	struct otlp_resource_opts o = { 0 };
	struct request_record r;
	char buf[OTLP_RESOURCE_MAX];

	sample(&r);
	cr_assert_gt(otlp_encode_resource(&r, &o, buf, sizeof(buf)), 0);
	cr_assert_null(strstr(buf, "k8s."), "%s", buf);
	cr_assert_null(strstr(buf, "container.id"), "%s", buf);
	cr_assert_not_null(strstr(buf, "\"unknown_service\""), "%s", buf);
}

Test(otlp, service_name_ladder)
{
	struct otlp_kvlist attrs = { 0 };
	struct otlp_resource_opts none = { 0 }, agent = { .service_name = "agent-svc" },
				  listed = { .attrs = &attrs };
	struct k8smeta m = { 0 };
	char msg[128];

	cr_assert_eq(otlp_kv_parse("R", "service.name=from-list", false, &attrs, msg, sizeof(msg)),
		     0);
	cr_assert_str_eq(otlp_service_name(&m, &none), "unknown_service");
	cr_assert_str_eq(otlp_service_name(&m, &agent), "agent-svc");
	cr_assert_str_eq(otlp_service_name(&m, &listed), "from-list");
	/* A comm names no service: the agent's setting wins over it ... */
	strcpy(m.service_name, "gunicorn");
	m.service_source = K8SMETA_SVC_COMM;
	cr_assert_str_eq(otlp_service_name(&m, &agent), "agent-svc");
	cr_assert_str_eq(otlp_service_name(&m, &none), "gunicorn");
	/* ... the process's own name wins over the agent's. */
	strcpy(m.service_name, "shop");
	m.service_source = K8SMETA_SVC_APP_MODULE;
	cr_assert_str_eq(otlp_service_name(&m, &agent), "shop");
	otlp_kv_free(&attrs);
}

/* A 404: no rule matched, so no http.route and the name is the method
 * alone, never the raw path (a scanner must not make span names). */
Test(otlp, unmatched_route)
{
	struct request_record r;
	cJSON *j;

	sample(&r);
	r.route_matched = false;
	strcpy(r.route, "/wp-admin.php");
	strcpy(r.path, "/wp-admin.php");
	r.has_endpoint = false;
	r.status = 404;
	request_text_lengths(&r);
	j = span_json(&r);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "GET");
	cr_assert_null(attr(j, "http.route"));
	cr_assert_str_eq(attr_str(j, "url.path"), "/wp-admin.php");
	cr_assert_str_eq(attr_int(j, "http.response.status_code"), "404");
	/* A client's error is not the server's. */
	cr_assert_null(attr(j, "error.type"));
	cr_assert_eq(status_code(j), 0);
	cJSON_Delete(j);
}

Test(otlp, server_errors)
{
	struct request_record r;
	cJSON *j;

	sample(&r);
	r.status = 500;
	r.has_exception_type = r.error = true;
	strcpy(r.exception_type, "PaymentDeclined");
	request_text_lengths(&r);
	j = span_json(&r);
	cr_assert_str_eq(attr_str(j, "error.type"), "PaymentDeclined");
	cr_assert_eq(status_code(j), 2);
	cJSON_Delete(j);

	/* A 503 without an exception: error.type is the status code. */
	sample(&r);
	r.status = 503;
	j = span_json(&r);
	cr_assert_str_eq(attr_str(j, "error.type"), "503");
	cr_assert_eq(status_code(j), 2);
	cJSON_Delete(j);

	/* An unknown status with an exception is a failure too. */
	sample(&r);
	r.status = -1;
	r.has_exception_type = true;
	strcpy(r.exception_type, "TypeError");
	request_text_lengths(&r);
	j = span_json(&r);
	cr_assert_null(attr(j, "http.response.status_code"));
	cr_assert_eq(status_code(j), 2);
	cJSON_Delete(j);

	/* An exception Flask turned into a 4xx is the client's. */
	sample(&r);
	r.status = 403;
	r.has_exception_type = true;
	strcpy(r.exception_type, "Forbidden");
	request_text_lengths(&r);
	j = span_json(&r);
	cr_assert_eq(status_code(j), 0);
	cJSON_Delete(j);
}

Test(otlp, other_methods)
{
	static const char *const methods[] = { "PURGE", "get", "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM" };
	struct request_record r;
	cJSON *j;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		sample(&r);
		strcpy(r.method, methods[i]);
		r.method_truncated = i == 2;
		request_text_lengths(&r);
		j = span_json(&r);
		cr_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring,
				 "HTTP /users/<int:uid>");
		cr_assert_str_eq(attr_str(j, "http.request.method"), "_OTHER");
		cr_assert_str_eq(attr_str(j, "http.request.method_original"), methods[i]);
		cJSON_Delete(j);
	}
	/* No method read at all: _OTHER without an original. */
	sample(&r);
	r.has_method = false;
	j = span_json(&r);
	cr_assert_str_eq(attr_str(j, "http.request.method"), "_OTHER");
	cr_assert_null(attr(j, "http.request.method_original"));
	cJSON_Delete(j);
}

/* No parent: no parentSpanId key; a path with a NUL and a quote stays
 * exact through the escaping; no path: no url.path. */
Test(otlp, texts_and_ids)
{
	struct request_record r;
	cJSON *j;

	sample(&r);
	r.parent_span_id[0] = 0;
	memcpy(r.path, "/a\0\"b", 6);
	r.path_len = 5;
	j = span_json(&r);
	cr_assert_null(cJSON_GetObjectItem(j, "parentSpanId"));
	cr_assert_str_eq(cJSON_GetObjectItem(j, "traceId")->valuestring, TRACE);
	cr_assert_eq(cJSON_GetObjectItem(j, "kind")->valueint, 2);
	cJSON_Delete(j);

	sample(&r);
	r.has_path = false;
	j = span_json(&r);
	cr_assert_null(attr(j, "url.path"));
	cJSON_Delete(j);
}

/* The longest span fits its buffer; every shorter buffer gives -ENOSPC
 * and an empty string, never a partial object. */
Test(otlp, enospc_everywhere)
{
	static char buf[OTLP_SPAN_MAX];
	struct request_record r;
	int full;

	/* Every code unit a control character: 6 bytes each escaped. */
	sample(&r);
	memset(r.method, '\x01', PBPF_METHOD_MAX);
	memset(r.path, '\x01', PBPF_PATH_MAX);
	memset(r.route, '\x01', PBPF_ROUTE_MAX);
	memset(r.exception_type, '\x01', PBPF_EXC_MAX);
	r.method[PBPF_METHOD_MAX] = r.path[PBPF_PATH_MAX] = 0;
	r.route[PBPF_ROUTE_MAX] = r.exception_type[PBPF_EXC_MAX] = 0;
	r.has_exception_type = true;
	r.status = 500;
	request_text_lengths(&r);
	full = otlp_encode_span(&r, buf, sizeof(buf));
	cr_assert_gt(full, 6 * (2 * PBPF_METHOD_MAX + PBPF_PATH_MAX + 2 * PBPF_ROUTE_MAX));
	for (int size = 1; size <= full; size += size < 300 ? 1 : 97) {
		cr_assert_eq(otlp_encode_span(&r, buf, size), -ENOSPC, "size %d", size);
		cr_assert_eq(buf[0], 0);
	}
}

/* Spans of two processes, interleaved, become two resourceSpans in order of
 * first appearance, each with its spans in their order. */
Test(otlp, request_groups_by_resource)
{
	const struct otlp_span_text spans[] = {
		{ "{\"r\":1}", "{\"s\":1}", 7, 7 },
		{ "{\"r\":2}", "{\"s\":2}", 7, 7 },
		{ "{\"r\":1}", "{\"s\":3}", 7, 7 },
	};
	struct otlp_buf out = { 0 };

	cr_assert_eq(otlp_encode_request(spans, 3, &out), 0);
	cr_assert_str_eq(out.p, "{\"resourceSpans\":["
				"{\"resource\":{\"r\":1},\"scopeSpans\":[{\"scope\":{\"name\":"
				"\"profilis-bpf\"},\"spans\":[{\"s\":1},{\"s\":3}]}]},"
				"{\"resource\":{\"r\":2},\"scopeSpans\":[{\"scope\":{\"name\":"
				"\"profilis-bpf\"},\"spans\":[{\"s\":2}]}]}]}");
	/* The buffer is reused: a second request replaces the first. */
	cr_assert_eq(otlp_encode_request(spans + 1, 1, &out), 0);
	cr_assert_eq(strncmp(out.p, "{\"resourceSpans\":[{\"resource\":{\"r\":2}", 36), 0);
	otlp_buf_free(&out);
}

Test(otlp_config, kv_lists)
{
	struct otlp_kvlist l = { 0 };
	char msg[256];

	cr_assert_eq(otlp_kv_parse("H", " a = 1 ,, b=x%3Dy%2C%20z ,c=%zz%4", true, &l, msg,
				   sizeof(msg)),
		     0, "%s", msg);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(otlp_kv_get(&l, "a"), "1");
	cr_assert_str_eq(otlp_kv_get(&l, "b"), "x=y, z");
	cr_assert_str_eq(otlp_kv_get(&l, "c"), "%zz%4"); /* not escapes: kept */
	/* A later list (the traces-specific variable) wins per key. */
	cr_assert_eq(otlp_kv_parse("H2", "a=2", true, &l, msg, sizeof(msg)), 0);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(otlp_kv_get(&l, "a"), "2");
	otlp_kv_free(&l);
	cr_assert_eq(otlp_kv_parse("H", NULL, true, &l, msg, sizeof(msg)), 0);
	cr_assert_eq(l.n, 0);
}

Test(otlp_config, kv_refused)
{
	static const struct {
		const char *text;
		bool header;
	} bad[] = {
		{ "novalue", false },
		{ "=v", false },
		{ "a b=1", true },		/* not an HTTP token */
		{ "k=v%0d%0aX-Evil: 1", true }, /* header injection */
		{ "k=%ff", false },		/* not UTF-8 */
		{ "k=%c0%af", false },		/* overlong */
		{ "k=a%00b", false },
	};
	struct otlp_kvlist l = { 0 };
	char msg[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(otlp_kv_parse("OTEL_X", bad[i].text, bad[i].header, &l, msg,
					   sizeof(msg)),
			     -EINVAL, "%s", bad[i].text);
		cr_assert_not_null(strstr(msg, "OTEL_X"), "%s", msg);
		otlp_kv_free(&l);
	}
	/* A secret value is never echoed. */
	cr_assert_eq(otlp_kv_parse("H", "Authorization=Bearer s3cr3t%0a", true, &l, msg,
				   sizeof(msg)),
		     -EINVAL);
	cr_assert_null(strstr(msg, "s3cr3t"), "%s", msg);
	otlp_kv_free(&l);
	/* UTF-8 values are fine outside headers. */
	cr_assert_eq(otlp_kv_parse("R", "team=%C3%A9quipe", false, &l, msg, sizeof(msg)), 0);
	cr_assert_str_eq(otlp_kv_get(&l, "team"), "\xc3\xa9quipe");
	otlp_kv_free(&l);
}

Test(otlp_config, traces_url)
{
	static const struct {
		const char *in;
		bool append;
		const char *out;
	} cases[] = {
		{ "http://c:4318", true, "http://c:4318/v1/traces" },
		{ "http://c:4318/", true, "http://c:4318/v1/traces" },
		{ "https://c/otlp", true, "https://c/otlp/v1/traces" },
		{ "http://c:4318/v1/traces", true, "http://c:4318/v1/traces" },
		{ "http://c/p?x=1", true, "http://c/p/v1/traces?x=1" },
		{ "HTTP://c:4318", true, "HTTP://c:4318/v1/traces" },
		{ "http://c:4318/custom", false, "http://c:4318/custom" },
	};
	char out[OTLP_URL_MAX], msg[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(otlp_traces_url("U", cases[i].in, cases[i].append, out, msg,
					     sizeof(msg)),
			     0, "%s: %s", cases[i].in, msg);
		cr_assert_str_eq(out, cases[i].out);
	}
	cr_assert_eq(otlp_traces_url("--otlp-endpoint", "c:4318", true, out, msg, sizeof(msg)),
		     -EINVAL);
	cr_assert_not_null(strstr(msg, "--otlp-endpoint"), "%s", msg);
	cr_assert_eq(otlp_traces_url("U", "grpc://c:4317", true, out, msg, sizeof(msg)), -EINVAL);
	cr_assert_eq(otlp_traces_url("U", "http://", true, out, msg, sizeof(msg)), -EINVAL);
	cr_assert_eq(otlp_traces_url("U", "http://c /x", true, out, msg, sizeof(msg)), -EINVAL);
	otlp_url_redacted("https://user:pw@c:4318/v1/traces", out, sizeof(out));
	cr_assert_str_eq(out, "https://c:4318/v1/traces");
}

Test(otlp_retry, classify)
{
	static const long retry[] = { 0, 429, 502, 503, 504 };
	static const long reject[] = { 100, 301, 400, 401, 403, 404, 413, 500, 501, 505 };

	for (long s = 200; s < 300; s++)
		cr_assert_eq(otlp_classify(s), OTLP_SENT);
	for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		cr_assert_eq(otlp_classify(retry[i]), OTLP_RETRY, "%ld", retry[i]);
	for (size_t i = 0; i < sizeof(reject) / sizeof(reject[0]); i++)
		cr_assert_eq(otlp_classify(reject[i]), OTLP_REJECT, "%ld", reject[i]);
}

/* 0.5 s doubling to 30 s, each draw within [d/2, d], and spread. */
Test(otlp_retry, backoff)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL;

	for (unsigned retry = 1; retry <= 40; retry++) {
		uint64_t d = OTLP_BACKOFF_FIRST_NS << (retry - 1 < 7 ? retry - 1 : 7);
		uint64_t lo = UINT64_MAX, hi = 0;

		if (retry > 7 || d > OTLP_BACKOFF_MAX_NS)
			d = OTLP_BACKOFF_MAX_NS;
		for (int i = 0; i < 200; i++) {
			uint64_t w;

			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			w = otlp_backoff_ns(retry, s >> 11);
			cr_assert(w >= d / 2 && w <= d, "retry %u: %llu not in [%llu, %llu]", retry,
				  (unsigned long long)w, (unsigned long long)d / 2,
				  (unsigned long long)d);
			lo = w < lo ? w : lo;
			hi = w > hi ? w : hi;
		}
		cr_assert_gt(hi - lo, d / 4, "retry %u: jitter is spread", retry);
	}
}

Test(otlp_retry, retry_after)
{
	time_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */

	cr_assert_eq(otlp_retry_after_ns("120", now), 120000000000LL);
	cr_assert_eq(otlp_retry_after_ns(" 0 ", now), 0);
	cr_assert_eq(otlp_retry_after_ns("99999999", now), 86400000000000LL);
	cr_assert_eq(otlp_retry_after_ns("Wed, 21 Oct 2015 07:28:07 GMT", now), 7000000000LL);
	cr_assert_eq(otlp_retry_after_ns("Wednesday, 21-Oct-15 07:28:03 GMT", now), 3000000000LL);
	cr_assert_eq(otlp_retry_after_ns("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
	cr_assert_eq(otlp_retry_after_ns(NULL, now), -1);
	cr_assert_eq(otlp_retry_after_ns("soon", now), -1);
	cr_assert_eq(otlp_retry_after_ns("12abc", now), -1);
	cr_assert_eq(otlp_retry_after_ns("-5", now), -1);
}
