// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * JSONL encoding and output.  Lines are built in memory and appended to a
 * write buffer only when complete, and the buffer is flushed in whole lines,
 * so a reader (or a crash) never sees half a record.  A failed write drops
 * whole lines, counts them and warns once per kind of failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "jsonl.h"
#include "log.h"
#include "rotfile.h"

#define WBUF_SIZE (256 * 1024)

int jsonl_put_string(char *buf, size_t size, size_t pos, const char *s)
{
	return jsonl_put_string_n(buf, size, pos, s, strlen(s));
}

int jsonl_put_string_n(char *buf, size_t size, size_t pos, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *end = (const unsigned char *)s + n;

	if (pos + 2 > size)
		return -ENOSPC;
	buf[pos++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; p < end; p++) {
		char esc = 0;

		switch (*p) {
		case '"': esc = '"'; break;
		case '\\': esc = '\\'; break;
		case '\n': esc = 'n'; break;
		case '\r': esc = 'r'; break;
		case '\t': esc = 't'; break;
		case '\b': esc = 'b'; break;
		case '\f': esc = 'f'; break;
		}
		if (esc) {
			if (pos + 2 >= size)
				return -ENOSPC;
			buf[pos++] = '\\';
			buf[pos++] = esc;
		} else if (*p < 0x20 || *p == 0x7f) {
			if (pos + 6 >= size)
				return -ENOSPC;
			memcpy(buf + pos, "\\u00", 4);
			buf[pos + 4] = hex[*p >> 4];
			buf[pos + 5] = hex[*p & 15];
			pos += 6;
		} else {
			if (pos + 1 >= size)
				return -ENOSPC;
			buf[pos++] = *p; /* UTF-8 passes through; request.c validated it */
		}
	}
	if (pos + 1 >= size)
		return -ENOSPC;
	buf[pos++] = '"';
	buf[pos] = 0;
	return pos;
}

/* Small append helpers: each returns the new position or -ENOSPC. */
static int put_raw(char *buf, size_t size, int pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int put_raw(char *buf, size_t size, int pos, const char *fmt, ...)
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

/* "key":"text" (or null), then "key_truncated":true only when the
 * target's string was longer than the record keeps. */
static int put_str_field(char *buf, size_t size, int pos, const char *key, bool have,
			 const char *val, size_t len, bool truncated)
{
	pos = put_raw(buf, size, pos, ",\"%s\":", key);
	if (pos < 0)
		return pos;
	if (!have)
		return put_raw(buf, size, pos, "null");
	pos = jsonl_put_string_n(buf, size, pos, val, len);
	if (truncated)
		pos = put_raw(buf, size, pos, ",\"%s_truncated\":true", key);
	return pos;
}

/* Where the request ran: each field null when unknown, never a guess. */
static int put_meta(char *buf, size_t size, int pos, const struct k8smeta *m)
{
	const char *host = k8smeta_host_name();
	const struct {
		const char *key, *val;
	} f[] = {
		{ "service_name", m->service_name }, { "container_id", m->container_id },
		{ "k8s_pod_uid", m->pod_uid },	     { "k8s_pod_name", m->pod_name },
		{ "k8s_namespace", m->namespace },   { "host_name", host ? host : "" },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && pos >= 0; i++)
		pos = put_str_field(buf, size, pos, f[i].key, f[i].val[0] != 0, f[i].val,
				    strlen(f[i].val), false);
	return pos;
}

#define PUT_TEXT(buf, size, pos, r, f) \
	put_str_field(buf, size, pos, #f, (r)->has_##f, (r)->f, (r)->f##_len, (r)->f##_truncated)

int jsonl_encode_request(const struct request_record *r, char *buf, size_t size)
{
	int pos;

	pos = put_raw(buf, size, 0,
		      "{\"kind\":\"REQ\",\"schema_version\":%d,\"ts_ns\":%" PRIu64
		      ",\"time_unix_ns\":%" PRIu64 ",\"trace_id\":\"%s\",\"span_id\":\"%s\"",
		      JSONL_SCHEMA_VERSION, r->ts_ns, r->time_unix_ns, r->trace_id, r->span_id);
	pos = put_str_field(buf, size, pos, "parent_span_id", r->parent_span_id[0] != 0,
			    r->parent_span_id, strlen(r->parent_span_id), false);
	pos = PUT_TEXT(buf, size, pos, r, method);
	pos = PUT_TEXT(buf, size, pos, r, path);
	pos = PUT_TEXT(buf, size, pos, r, route);
	pos = PUT_TEXT(buf, size, pos, r, endpoint);
	if (r->status >= 0)
		pos = put_raw(buf, size, pos, ",\"status\":%d", r->status);
	else
		pos = put_raw(buf, size, pos, ",\"status\":null");
	pos = put_raw(buf, size, pos, ",\"dur_ns\":%" PRIu64 ",\"error\":%s", r->dur_ns,
		      r->error ? "true" : "false");
	pos = PUT_TEXT(buf, size, pos, r, exception_type);
	pos = put_raw(buf, size, pos, ",\"sample_rate\":%.6g,\"pid\":%u", r->sample_rate, r->pid);
	/* In a container: the PID the process has there (1 for its master). */
	if (r->ns_pid)
		pos = put_raw(buf, size, pos, ",\"ns_pid\":%u", r->ns_pid);
	pos = put_raw(buf, size, pos, ",\"tid\":%u", r->tid);
	pos = put_meta(buf, size, pos, &r->meta);
	pos = put_raw(buf, size, pos, "}\n");
	if (pos < 0 && size)
		buf[0] = 0;
	return pos;
}

struct jsonl_exporter {
	struct rotfile *rf;
	char *wbuf;
	size_t wlen;
	uint64_t pending;	/* request records in wbuf */
	uint64_t pending_other; /* other records (PROFILE) in wbuf */
	struct jsonl_stats stats;
	int last_errno;		 /* the failure being reported, 0 when writing works */
	uint64_t renames_warned; /* rename failures already reported */
	uint64_t deleted_warned; /* deleted active files already reported */
	uint64_t lost_since;	 /* records lost since that failure began */
	time_t last_warn;
};

int jsonl_check_template(const char *dir, const char *template, char *msg, size_t msglen)
{
	return rotfile_check_path(dir, template, msg, msglen);
}

struct jsonl_exporter *jsonl__new(const struct jsonl_opts *opts)
{
	struct jsonl_exporter *x = calloc(1, sizeof(*x));
	struct rotfile_opts ro = {
		.dir = opts->dir,
		.file = opts->path,
		.rotate_bytes = opts->rotate_bytes,
		.rotate_secs = opts->rotate_secs,
		.template = opts->filename_template,
	};
	int err = ENOMEM;

	if (!x || !(x->wbuf = malloc(WBUF_SIZE)))
		goto fail;
	x->rf = rotfile__open(&ro);
	if (!x->rf) {
		err = errno;
		goto fail;
	}
	return x;
fail:
	if (x)
		free(x->wbuf);
	free(x);
	errno = err;
	return NULL;
}

/* Failures are reported when they start, then at most every 10 s. */
static void report_failure(struct jsonl_exporter *x, int err, uint64_t lost)
{
	time_t now = time(NULL);

	x->lost_since += lost;
	if (err == x->last_errno && now - x->last_warn < 10)
		return;
	p_warn("writing JSONL to %s failed: %s; %" PRIu64 " records lost so far (counted; "
	       "writing resumes when it works again)",
	       rotfile__name(x->rf), strerror(err), x->lost_since);
	x->last_errno = err;
	x->last_warn = now;
}

int jsonl__flush(struct jsonl_exporter *x)
{
	int err;

	if (!x || x->wlen == 0)
		return 0;
	/* After jsonl__finish nothing can be written: count, do not crash. */
	err = x->rf ? rotfile__write(x->rf, x->wbuf, x->wlen) : -EBADF;
	if (err) {
		x->stats.write_errors += x->pending;
		x->stats.other_errors += x->pending_other;
		report_failure(x, -err, x->pending);
	} else {
		x->stats.written += x->pending;
		x->stats.other_written += x->pending_other;
		x->stats.bytes += x->wlen;
		if (x->last_errno)
			p_warn("writing JSONL to %s works again after %" PRIu64 " lost records",
			       rotfile__name(x->rf), x->lost_since);
		x->last_errno = 0;
		x->lost_since = 0;
	}
	x->wlen = 0;
	x->pending = 0;
	x->pending_other = 0;
	return err;
}

/* A finished file that could not get its name kept its records under a
 * fallback name: nothing is lost, but the operator should know at once. */
static void report_rename_failures(struct jsonl_exporter *x)
{
	int err = 0;
	uint64_t n = rotfile__rename_failures(x->rf, &err);

	if (n == x->renames_warned)
		return;
	if (x->renames_warned == 0)
		p_warn("a finished JSONL file could not be given its --filename-template name "
		       "(%s); its records are kept as profilis-unrenamed-*.jsonl next to %s, and "
		       "so will the next ones be (counted)",
		       strerror(-err), rotfile__name(x->rf));
	x->renames_warned = n;
}

/* An active file deleted under us took its records with it: say so at once. */
static void report_deleted(struct jsonl_exporter *x)
{
	uint64_t bytes, n = rotfile__deleted(x->rf, &bytes);

	if (n == x->deleted_warned)
		return;
	p_warn("the JSONL file being written, now %s, was deleted by someone else (%" PRIu64
	       " files so far, %" PRIu64 " bytes of records with them); writing goes on in a "
	       "new file there",
	       rotfile__name(x->rf), n, bytes);
	x->deleted_warned = n;
}

/* Buffers one whole line: request records and other records (PROFILE) are
 * counted apart, so the summary's "requests recorded" stays exact. */
static void buffer_line(struct jsonl_exporter *x, const char *line, size_t n, bool request)
{
	if (x->wlen + n > WBUF_SIZE)
		jsonl__flush(x);
	/* A line never straddles two files: rotate before it would overflow. */
	if (rotfile__would_overflow(x->rf, x->wlen + n)) {
		int err;

		jsonl__flush(x);
		err = rotfile__make_room(x->rf, n);
		if (err)
			report_failure(x, -err, 0);
		report_rename_failures(x);
	}
	memcpy(x->wbuf + x->wlen, line, n);
	x->wlen += n;
	if (request)
		x->pending++;
	else
		x->pending_other++;
}

int jsonl__push(struct jsonl_exporter *x, const struct request_record *r)
{
	char line[JSONL_LINE_MAX];
	int n = jsonl_encode_request(r, line, sizeof(line));

	if (n < 0 || !x->rf) {
		x->stats.write_errors++;
		return n < 0 ? n : -EBADF;
	}
	buffer_line(x, line, n, true);
	return 0;
}

int jsonl__push_line(struct jsonl_exporter *x, const char *line, size_t n)
{
	if (!x->rf || n == 0 || line[n - 1] != '\n' || n > WBUF_SIZE) {
		x->stats.other_errors++;
		return -EINVAL;
	}
	buffer_line(x, line, n, false);
	return 0;
}

int jsonl__tick(struct jsonl_exporter *x)
{
	int err;

	if (!x->rf)
		return 0;
	jsonl__flush(x);
	err = rotfile__tick(x->rf);
	if (err)
		report_failure(x, -err, 0);
	report_rename_failures(x);
	report_deleted(x);
	return err;
}

void jsonl__stats(const struct jsonl_exporter *x, struct jsonl_stats *out)
{
	*out = x->stats;
	if (x->rf) {
		out->files = rotfile__rotations(x->rf);
		out->rename_failures = rotfile__rename_failures(x->rf, NULL);
		out->deleted_files = rotfile__deleted(x->rf, &out->deleted_bytes);
	}
}

void jsonl__finish(struct jsonl_exporter *x)
{
	if (!x || !x->rf)
		return;
	jsonl__flush(x);
	rotfile__finish(x->rf); /* the active file gets its final name */
	x->stats.rename_failures = rotfile__rename_failures(x->rf, NULL);
	x->stats.deleted_files = rotfile__deleted(x->rf, &x->stats.deleted_bytes);
	x->stats.files = rotfile__close(x->rf);
	x->rf = NULL;
}

void jsonl__free(struct jsonl_exporter *x)
{
	if (!x)
		return;
	jsonl__finish(x);
	free(x->wbuf);
	free(x);
}
