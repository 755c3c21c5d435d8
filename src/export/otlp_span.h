/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A request record as an OpenTelemetry SERVER span in OTLP/HTTP JSON (the
 * protobuf JSON mapping with OTLP's exceptions: lowerCamelCase keys, ids as
 * hex, enums as integers, 64-bit integers as decimal strings), its process's
 * resource, and the ExportTraceServiceRequest body that groups spans by
 * resource.  Pure: tested against golden text and the official protobuf
 * definitions (tests/otlp).
 *
 * The span, after the HTTP semantic conventions (stable since 1.23):
 *   name          "METHOD route" when a Flask rule matched, else "METHOD"
 *                 (never the raw path); "HTTP" instead of METHOD when the
 *                 method is not one of the nine of RFC 9110 + PATCH
 *   kind          2 (SERVER); start = time_unix_ns - dur_ns, end = time_unix_ns
 *   attributes    http.request.method (or "_OTHER" and
 *                 http.request.method_original), url.path, http.route (only
 *                 when a rule matched), http.response.status_code (when
 *                 known), error.type (the exception's class, else the status
 *                 code of a 5xx), thread.id
 *   status        code 2 (ERROR) on a 5xx, or on an exception when the status
 *                 is unknown; otherwise unset (a server's 4xx is not its error)
 * The resource, one per process:
 *   service.name  the process's own name (its OTEL_SERVICE_NAME, its
 *                 OTEL_RESOURCE_ATTRIBUTES' service.name, gunicorn's name,
 *                 the app module, FLASK_APP, the main module: k8smeta.h);
 *                 else the agent's OTEL_SERVICE_NAME, else service.name of
 *                 the agent's OTEL_RESOURCE_ATTRIBUTES; else the process's
 *                 comm; else "unknown_service"
 *   process.pid   (the host's pid), host.name, and when known
 *                 k8s.namespace.name, k8s.pod.name, k8s.pod.uid, container.id
 *   then every other entry of the agent's OTEL_RESOURCE_ATTRIBUTES (the
 *   attributes above, read from the process, win over it).
 */
#ifndef PROFILIS_OTLP_SPAN_H
#define PROFILIS_OTLP_SPAN_H

#include <stddef.h>
#include "otlp_config.h"
#include "request.h"

#define OTLP_SCOPE_NAME "profilis-bpf"
/* The longest span: a text of n code units escapes to at most 6n bytes
 * (control characters), and the route appears twice (name, http.route),
 * the method twice (http.request.method_original, or name and method). */
#define OTLP_SPAN_MAX 40960
_Static_assert(6 * (2 * PBPF_METHOD_MAX + PBPF_PATH_MAX + 2 * PBPF_ROUTE_MAX + PBPF_EXC_MAX) +
			       2048 <=
		       OTLP_SPAN_MAX,
	       "a span's longest encoding fits");
#define OTLP_RESOURCE_MAX 16384

struct otlp_resource_opts {
	const char *service_name;	 /* the agent's fallback (see above), may be NULL */
	const struct otlp_kvlist *attrs; /* OTEL_RESOURCE_ATTRIBUTES, may be NULL */
};

/* A growing output buffer. */
struct otlp_buf {
	char *p;
	size_t len, cap;
};

/* The span object.  Its length, or -ENOSPC (buf then holds ""). */
int otlp_encode_span(const struct request_record *r, char *buf, size_t size);
/* The resource object of r's process.  Its length, or -ENOSPC. */
int otlp_encode_resource(const struct request_record *r, const struct otlp_resource_opts *o,
			 char *buf, size_t size);
/* The service.name the rule above gives. */
const char *otlp_service_name(const struct k8smeta *m, const struct otlp_resource_opts *o);

/* One queued span: its resource and span objects. */
struct otlp_span_text {
	const char *resource, *span;
	size_t resource_len, span_len;
};

/*
 * Writes the ExportTraceServiceRequest of spans[0..n) into out (replacing
 * its content): one resourceSpans per distinct resource, in order of first
 * appearance, each with one scopeSpans.  0 or -ENOMEM.
 */
int otlp_encode_request(const struct otlp_span_text *spans, size_t n, struct otlp_buf *out);
void otlp_buf_free(struct otlp_buf *b);

#endif
