/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Turns a raw request event from BPF into a request record: UTF-8 strings,
 * durations, wall-clock time and trace ids.  Pure, so it is unit tested with
 * synthetic events, including hostile ones.
 */
#ifndef PROFILIS_REQUEST_H
#define PROFILIS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "profilis/abi.h"
#include "k8smeta.h"

/* What per-route statistics and profiles key a request without a rule
 * template by (a 404): one placeholder, not its raw path, so a scanner of
 * random paths cannot make a route of each. */
#define REQ_UNMATCHED "(unmatched)"

/* Room for every code unit of a field expanded to UTF-8: a byte of a field
 * becomes at most 3 (a latin-1 byte that is not UTF-8 becomes U+FFFD). */
#define REQ_TEXT(n) ((n)*3 + 1)

struct request_record {
	uint64_t ts_ns; /* CLOCK_MONOTONIC at request end */
	uint64_t dur_ns;
	uint64_t time_unix_ns; /* CLOCK_REALTIME at request end */
	uint32_t pid, tid;
	uint32_t ns_pid;    /* pid in its own namespace when that differs, else 0 */
	int status;	    /* -1: unknown */
	double sample_rate; /* probability this request was recorded (1.0 = all) */
	bool error;
	bool has_method, has_path, has_endpoint, has_exception_type;
	bool has_route;	    /* route holds text: the template, or the raw
				 * path of an unmatched request */
	bool route_matched; /* route is a rule's template (else statistics
				 * key the request by REQ_UNMATCHED) */
	char method[REQ_TEXT(PBPF_METHOD_MAX)];
	char path[REQ_TEXT(PBPF_PATH_MAX)];
	char route[REQ_TEXT(PBPF_PATH_MAX)]; /* rule template, else the raw path */
	char endpoint[REQ_TEXT(PBPF_ENDPOINT_MAX)];
	char exception_type[REQ_TEXT(PBPF_EXC_MAX)];
	/* Text lengths in bytes: a text may hold NULs ("%00" in a path), so
	 * writers go by these, not strlen.  A terminating NUL follows each. */
	uint32_t method_len, path_len, route_len, endpoint_len, exception_type_len;
	/* The target's string was longer than the record keeps. */
	bool method_truncated, path_truncated, route_truncated, endpoint_truncated,
		exception_type_truncated;
	char trace_id[33];
	char span_id[17];
	char parent_span_id[17]; /* from traceparent; empty when none */
	/* Where the process runs: service, container, pod (k8smeta.h); every
	 * field "" (null in JSONL) when unknown or not in a pod. */
	struct k8smeta meta;
};

/* Sets the text lengths of a record built from C strings (tests). */
static inline void request_text_lengths(struct request_record *r)
{
	r->method_len = strlen(r->method);
	r->path_len = strlen(r->path);
	r->route_len = strlen(r->route);
	r->endpoint_len = strlen(r->endpoint);
	r->exception_type_len = strlen(r->exception_type);
}

/*
 * Copies of `src` what request_decode reads: the fixed fields, each text
 * field's header and its used bytes, the exception name through its NUL.
 * A 4.9 KB event is mostly unused text room; this copies ~300 bytes of a
 * typical one.  The rest of `dst` keeps whatever it held.
 */
void request_event_copy(void *dst, const void *src);

/*
 * Decodes `e`.  `realtime_offset_ns` is CLOCK_REALTIME - CLOCK_MONOTONIC.
 * Returns 0, or -EINVAL when `e` is not a request event.
 */
int request_decode(const struct pbpf_req_event *e, int64_t realtime_offset_ns,
		   struct request_record *out);

#endif
