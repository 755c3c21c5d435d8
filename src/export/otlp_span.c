// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * OTLP/HTTP JSON encoding of spans, resources and export requests (the rules
 * are in otlp_span.h).  Strings are escaped by the JSONL exporter's helper;
 * texts may hold NULs ("%00" in a path), so they go by their lengths.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonl.h"
#include "otlp_span.h"

/* Appends printf output; the new position or -ENOSPC (pos < 0 passes). */
static int put(char *buf, size_t size, int pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int put(char *buf, size_t size, int pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (pos < 0)
		return pos;
	va_start(ap, fmt);
	n = vsnprintf(buf + pos, size - pos, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)(pos + n) >= size ? -ENOSPC : pos + n;
}

static int put_text(char *buf, size_t size, int pos, const char *s, size_t n)
{
	return pos < 0 ? pos : jsonl_put_string_n(buf, size, pos, s, n);
}

/* {"key":K,"value":{"stringValue":V}}, preceded by a comma unless first. */
static int attr_str(char *buf, size_t size, int pos, bool *first, const char *key, const char *v,
		    size_t n)
{
	pos = put(buf, size, pos,
		  "%s{\"key\":\"%s\",\"value\":{\"stringValue\":", *first ? "" : ",", key);
	*first = false;
	pos = put_text(buf, size, pos, v, n);
	return put(buf, size, pos, "}}");
}

static int attr_int(char *buf, size_t size, int pos, bool *first, const char *key, int64_t v)
{
	pos = put(buf, size, pos, "%s{\"key\":\"%s\",\"value\":{\"intValue\":\"%" PRId64 "\"}}",
		  *first ? "" : ",", key, v);
	*first = false;
	return pos;
}

/* RFC 9110's methods and PATCH: the semantic conventions' known set. */
static bool known_method(const struct request_record *r)
{
	static const char *const known[] = { "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS",
					     "PATCH",	"POST",	  "PUT", "TRACE" };

	if (!r->has_method || r->method_truncated)
		return false;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (r->method_len == strlen(known[i]) &&
		    memcmp(r->method, known[i], r->method_len) == 0)
			return true;
	return false;
}

static int put_name(char *buf, size_t size, int pos, const struct request_record *r, bool known)
{
	char name[REQ_TEXT(PBPF_METHOD_MAX) + REQ_TEXT(PBPF_PATH_MAX) + 8];
	size_t n = 0;

	if (known) {
		memcpy(name, r->method, r->method_len);
		n = r->method_len;
	} else {
		memcpy(name, "HTTP", 4);
		n = 4;
	}
	if (r->has_route && r->route_matched) {
		name[n++] = ' ';
		memcpy(name + n, r->route, r->route_len);
		n += r->route_len;
	}
	pos = put(buf, size, pos, ",\"name\":");
	return put_text(buf, size, pos, name, n);
}

static int put_attributes(char *buf, size_t size, int pos, const struct request_record *r,
			  bool known)
{
	bool first = true;
	char code[16];

	pos = put(buf, size, pos, ",\"attributes\":[");
	if (known) {
		pos = attr_str(buf, size, pos, &first, "http.request.method", r->method,
			       r->method_len);
	} else {
		pos = attr_str(buf, size, pos, &first, "http.request.method", "_OTHER", 6);
		if (r->has_method)
			pos = attr_str(buf, size, pos, &first, "http.request.method_original",
				       r->method, r->method_len);
	}
	if (r->has_path)
		pos = attr_str(buf, size, pos, &first, "url.path", r->path, r->path_len);
	if (r->has_route && r->route_matched)
		pos = attr_str(buf, size, pos, &first, "http.route", r->route, r->route_len);
	if (r->status >= 0)
		pos = attr_int(buf, size, pos, &first, "http.response.status_code", r->status);
	if (r->has_exception_type) {
		pos = attr_str(buf, size, pos, &first, "error.type", r->exception_type,
			       r->exception_type_len);
	} else if (r->status >= 500) {
		snprintf(code, sizeof(code), "%d", r->status);
		pos = attr_str(buf, size, pos, &first, "error.type", code, strlen(code));
	}
	pos = attr_int(buf, size, pos, &first, "thread.id", r->tid);
	return put(buf, size, pos, "]");
}

int otlp_encode_span(const struct request_record *r, char *buf, size_t size)
{
	bool known = known_method(r);
	bool failed = r->status >= 500 || (r->status < 0 && r->has_exception_type);
	uint64_t end = r->time_unix_ns;
	uint64_t start = end >= r->dur_ns ? end - r->dur_ns : 0;
	int pos;

	pos = put(buf, size, 0, "{\"traceId\":\"%s\",\"spanId\":\"%s\"", r->trace_id, r->span_id);
	if (r->parent_span_id[0])
		pos = put(buf, size, pos, ",\"parentSpanId\":\"%s\"", r->parent_span_id);
	pos = put_name(buf, size, pos, r, known);
	pos = put(buf, size, pos,
		  ",\"kind\":2,\"startTimeUnixNano\":\"%" PRIu64 "\",\"endTimeUnixNano\":\"%" PRIu64
		  "\"",
		  start, end);
	pos = put_attributes(buf, size, pos, r, known);
	if (failed)
		pos = put(buf, size, pos, ",\"status\":{\"code\":2}");
	pos = put(buf, size, pos, "}");
	if (pos < 0 && size)
		buf[0] = 0;
	return pos;
}

const char *otlp_service_name(const struct k8smeta *m, const struct otlp_resource_opts *o)
{
	const char *agent = o->service_name && *o->service_name ? o->service_name : NULL;

	if (!agent && o->attrs)
		agent = otlp_kv_get(o->attrs, "service.name");
	/* A comm ("gunicorn", "python3") names no service: the agent's
	 * setting says more. */
	if (m->service_name[0] && m->service_source != K8SMETA_SVC_COMM)
		return m->service_name;
	if (agent && *agent)
		return agent;
	return m->service_name[0] ? m->service_name : "unknown_service";
}

/* Keys the resource takes from the process: the agent's list cannot
 * override them. */
static bool own_key(const char *key)
{
	static const char *const own[] = { "service.name",	 "process.pid",	 "host.name",
					   "k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid",
					   "container.id" };

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(key, own[i]) == 0)
			return true;
	return false;
}

int otlp_encode_resource(const struct request_record *r, const struct otlp_resource_opts *o,
			 char *buf, size_t size)
{
	const struct k8smeta *m = &r->meta;
	const char *host = k8smeta_host_name();
	const char *svc = otlp_service_name(m, o);
	const struct {
		const char *key, *val;
	} meta[] = {
		{ "host.name", host ? host : "" },   { "k8s.namespace.name", m->namespace },
		{ "k8s.pod.name", m->pod_name },     { "k8s.pod.uid", m->pod_uid },
		{ "container.id", m->container_id },
	};
	bool first = true;
	int pos;

	pos = put(buf, size, 0, "{\"attributes\":[");
	pos = attr_str(buf, size, pos, &first, "service.name", svc, strlen(svc));
	pos = attr_int(buf, size, pos, &first, "process.pid", r->pid);
	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
		if (meta[i].val[0])
			pos = attr_str(buf, size, pos, &first, meta[i].key, meta[i].val,
				       strlen(meta[i].val));
	for (size_t i = 0; o->attrs && i < o->attrs->n; i++)
		if (!own_key(o->attrs->kv[i].key))
			pos = attr_str(buf, size, pos, &first, o->attrs->kv[i].key,
				       o->attrs->kv[i].value, strlen(o->attrs->kv[i].value));
	pos = put(buf, size, pos, "]}");
	if (pos < 0 && size)
		buf[0] = 0;
	return pos;
}

static int buf_add(struct otlp_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

#define ADD_LIT(b, s) buf_add(b, s, sizeof(s) - 1)

static bool same_resource(const struct otlp_span_text *a, const struct otlp_span_text *b)
{
	return a->resource_len == b->resource_len &&
	       memcmp(a->resource, b->resource, a->resource_len) == 0;
}

/* The spans of the resource of spans[first], from first on. */
static int add_group(const struct otlp_span_text *spans, size_t n, size_t first, bool *done,
		     struct otlp_buf *out)
{
	bool lead = true;
	int err;

	err = ADD_LIT(out, "{\"resource\":") ||
	      buf_add(out, spans[first].resource, spans[first].resource_len) ||
	      ADD_LIT(out,
		      ",\"scopeSpans\":[{\"scope\":{\"name\":\"" OTLP_SCOPE_NAME "\"},\"spans\":[");
	for (size_t i = first; i < n && !err; i++) {
		if (done[i] || !same_resource(&spans[first], &spans[i]))
			continue;
		done[i] = true;
		err = (!lead && ADD_LIT(out, ",")) ||
		      buf_add(out, spans[i].span, spans[i].span_len);
		lead = false;
	}
	return err || ADD_LIT(out, "]}]}") ? -ENOMEM : 0;
}

int otlp_encode_request(const struct otlp_span_text *spans, size_t n, struct otlp_buf *out)
{
	bool *done = calloc(n ? n : 1, sizeof(*done));
	bool lead = true;
	int err;

	if (!done)
		return -ENOMEM;
	out->len = 0;
	err = ADD_LIT(out, "{\"resourceSpans\":[");
	/* Batches are small (--batch-max): a quadratic grouping is cheap and
	 * keeps the order of first appearance. */
	for (size_t i = 0; i < n && !err; i++) {
		if (done[i])
			continue;
		err = (!lead && ADD_LIT(out, ",")) || add_group(spans, n, i, done, out);
		lead = false;
	}
	err = err || ADD_LIT(out, "]}");
	free(done);
	return err ? -ENOMEM : 0;
}

void otlp_buf_free(struct otlp_buf *b)
{
	free(b->p);
	*b = (struct otlp_buf){ 0 };
}
