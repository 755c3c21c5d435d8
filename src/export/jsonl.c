// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * JSONL encoding and output.  Lines are encoded straight into a write buffer
 * and count only when complete, and the buffer is flushed in whole lines,
 * so a reader (or a crash) never sees half a record.  A failed write drops
 * whole lines, counts them and warns once per kind of failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
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

/* What each byte becomes inside a JSON string: 0 copies it as is, a letter
 * is a two-byte escape ("\n"), 'u' a six-byte one ("\u001f").  UTF-8 passes
 * through; request.c validated it (U+2028 included: JSON allows it raw). */
static const char escape_of[256] = {
	['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f',	 ['\r'] = 'r', [0] = 'u',
	[1] = 'u',    [2] = 'u',    [3] = 'u',	  [4] = 'u',	 [5] = 'u',    [6] = 'u',
	[7] = 'u',    [11] = 'u',   [14] = 'u',	  [15] = 'u',	 [16] = 'u',   [17] = 'u',
	[18] = 'u',   [19] = 'u',   [20] = 'u',	  [21] = 'u',	 [22] = 'u',   [23] = 'u',
	[24] = 'u',   [25] = 'u',   [26] = 'u',	  [27] = 'u',	 [28] = 'u',   [29] = 'u',
	[30] = 'u',   [31] = 'u',   ['"'] = '"',  ['\\'] = '\\', [0x7f] = 'u',
};

/* The worst case of a string: every byte "\u00XX", plus its quotes. */
#define ESCAPED_MAX(n) (6 * (size_t)(n) + 2)

/* Writes `s` quoted and escaped at `out`, which has room for ESCAPED_MAX(n):
 * runs of plain bytes go by memcpy, only the others one by one.  Returns
 * the end. */
static char *put_escaped(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	*out++ = '"';
	while (p < end) {
		const unsigned char *run = p;
		char esc;

		while (p < end && !escape_of[*p])
			p++;
		memcpy(out, run, p - run);
		out += p - run;
		if (p == end)
			break;
		esc = escape_of[*p];
		*out++ = '\\';
		if (esc == 'u') {
			memcpy(out, "u00", 3);
			out[3] = hex[*p >> 4];
			out[4] = hex[*p & 15];
			out += 5;
		} else {
			*out++ = esc;
		}
		p++;
	}
	*out++ = '"';
	return out;
}

/* The exact length put_escaped writes, for a buffer that may be too small. */
static size_t escaped_len(const char *s, size_t n)
{
	size_t len = n + 2;

	for (size_t i = 0; i < n; i++) {
		char esc = escape_of[(unsigned char)s[i]];

		len += esc == 'u' ? 5 : esc ? 1 : 0;
	}
	return len;
}

int jsonl_put_string(char *buf, size_t size, size_t pos, const char *s)
{
	return jsonl_put_string_n(buf, size, pos, s, strlen(s));
}

int jsonl_put_string_n(char *buf, size_t size, size_t pos, const char *s, size_t n)
{
	/* It fits, with its terminating NUL, or nothing is written. */
	if (pos >= size || (size - pos <= ESCAPED_MAX(n) && size - pos <= escaped_len(s, n)))
		return -ENOSPC;
	pos = put_escaped(buf + pos, s, n) - buf;
	buf[pos] = 0;
	return pos;
}

/* Appends literal text of a compile-time length. */
#define PUT_LIT(out, lit) (memcpy((out), (lit), sizeof(lit) - 1), (out) + sizeof(lit) - 1)

/* Appends v in decimal, as "%" PRIu64 does: two digits a step from a table. */
static char *put_u64(char *out, uint64_t v)
{
	static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
				       "25262728293031323334353637383940414243444546474849"
				       "50515253545556575859606162636465666768697071727374"
				       "75767778798081828384858687888990919293949596979899";
	char tmp[20], *t = tmp + sizeof(tmp);
	size_t n;

	while (v >= 100) {
		t -= 2;
		memcpy(t, pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10) {
		t -= 2;
		memcpy(t, pairs + 2 * v, 2);
	} else {
		*--t = (char)('0' + v);
	}
	n = tmp + sizeof(tmp) - t;
	memcpy(out, t, n);
	return out + n;
}

/* The longest "%.6g" of a double ("-1.79769e+308"), with room to spare. */
#define RATE_MAX 32

/*
 * sample_rate as "%.6g" writes it.  The rate is the same for every record
 * of a run, so the text is kept per thread with the double's bits; 1 (no
 * sampling) needs no formatting at all.
 */
static char *put_rate(char *out, double rate)
{
	static __thread uint64_t last_bits;
	static __thread char last[RATE_MAX];
	static __thread size_t last_len;
	uint64_t bits;

	if (rate == 1.0) {
		*out = '1';
		return out + 1;
	}
	memcpy(&bits, &rate, sizeof(bits));
	if (!last_len || bits != last_bits) {
		int n = snprintf(last, sizeof(last), "%.6g", rate);

		last_len = n > 0 && n < RATE_MAX ? (size_t)n : 0;
		last_bits = bits;
	}
	memcpy(out, last, last_len);
	return out + last_len;
}

/* The node's name and length, read once: it never changes while we run. */
static const char *host_name(size_t *len)
{
	static const char *name;
	static size_t name_len;
	const char *h = __atomic_load_n(&name, __ATOMIC_ACQUIRE);

	if (!h) {
		h = k8smeta_host_name();
		if (!h)
			h = "";
		__atomic_store_n(&name_len, strlen(h), __ATOMIC_RELAXED);
		__atomic_store_n(&name, h, __ATOMIC_RELEASE);
	}
	*len = __atomic_load_n(&name_len, __ATOMIC_RELAXED);
	return h;
}

/* A key, with the comma before it: ,"key": compact, or on its own line,
 * indented, with a space after the colon, as console_pretty lays it out. */
#define PUT_KEY(out, pretty, key) \
	((pretty) ? PUT_LIT(out, ",\n  \"" key "\": ") : PUT_LIT(out, ",\"" key "\":"))

/* The key, then the quoted text, or null; then "key_truncated":true only
 * when the target's string was longer than the record keeps. */
#define PUT_FIELD(out, pretty, key, have, val, len, truncated)                  \
	do {                                                                    \
		(out) = PUT_KEY(out, pretty, key);                              \
		if (!(have)) {                                                  \
			(out) = PUT_LIT(out, "null");                           \
		} else {                                                        \
			(out) = put_escaped(out, val, len);                     \
			if (truncated) {                                        \
				(out) = PUT_KEY(out, pretty, key "_truncated"); \
				(out) = PUT_LIT(out, "true");                   \
			}                                                       \
		}                                                               \
	} while (0)

#define PUT_TEXT(out, pretty, r, f) \
	PUT_FIELD(out, pretty, #f, (r)->has_##f, (r)->f, (r)->f##_len, (r)->f##_truncated)

/* Metadata: each field null when unknown (""), never a guess. */
#define PUT_META(out, pretty, key, val, len) \
	PUT_FIELD(out, pretty, key, (len) != 0, val, len, false)

/* Room for everything in a line but its strings' escaped text, the pretty
 * layout's newlines and indents included. */
#define FIXED_MAX 1024

struct meta_lens {
	size_t service, container, uid, pod, ns, host;
	const char *host_name;
};

/* The record's longest possible line, from its text lengths. */
static size_t line_bound(const struct request_record *r, const struct meta_lens *m)
{
	return FIXED_MAX +
	       6 * ((size_t)r->method_len + r->path_len + r->route_len + r->endpoint_len +
		    r->exception_type_len + sizeof(r->parent_span_id) + m->service + m->container +
		    m->uid + m->pod + m->ns + m->host);
}

/* Writes the line at `out`, which has room for line_bound(); returns its
 * end.  Inlined twice, with `pretty` a constant in each: one layout's code
 * has no test of the other's. */
static inline __attribute__((always_inline)) char *
put_request(char *out, const struct request_record *r, const struct meta_lens *m, bool pretty)
{
	size_t parent_len = strnlen(r->parent_span_id, sizeof(r->parent_span_id));

	if (pretty)
		out = PUT_LIT(out, "{\n  \"kind\": \"REQ\"");
	else
		out = PUT_LIT(out, "{\"kind\":\"REQ\"");
	out = PUT_KEY(out, pretty, "schema_version");
	out = put_u64(out, JSONL_SCHEMA_VERSION);
	out = PUT_KEY(out, pretty, "ts_ns");
	out = put_u64(out, r->ts_ns);
	out = PUT_KEY(out, pretty, "time_unix_ns");
	out = put_u64(out, r->time_unix_ns);
	/* Hex digits from the decoder: nothing to escape. */
	out = PUT_KEY(out, pretty, "trace_id");
	*out++ = '"';
	out = (char *)memcpy(out, r->trace_id, 32) + strnlen(r->trace_id, 32);
	*out++ = '"';
	out = PUT_KEY(out, pretty, "span_id");
	*out++ = '"';
	out = (char *)memcpy(out, r->span_id, 16) + strnlen(r->span_id, 16);
	*out++ = '"';
	PUT_FIELD(out, pretty, "parent_span_id", parent_len != 0, r->parent_span_id, parent_len,
		  false);
	PUT_TEXT(out, pretty, r, method);
	PUT_TEXT(out, pretty, r, path);
	PUT_TEXT(out, pretty, r, route);
	PUT_TEXT(out, pretty, r, endpoint);
	out = PUT_KEY(out, pretty, "status");
	if (r->status >= 0)
		out = put_u64(out, (unsigned)r->status);
	else
		out = PUT_LIT(out, "null");
	out = PUT_KEY(out, pretty, "dur_ns");
	out = put_u64(out, r->dur_ns);
	out = PUT_KEY(out, pretty, "error");
	if (r->error)
		out = PUT_LIT(out, "true");
	else
		out = PUT_LIT(out, "false");
	PUT_TEXT(out, pretty, r, exception_type);
	out = PUT_KEY(out, pretty, "sample_rate");
	out = put_rate(out, r->sample_rate);
	out = PUT_KEY(out, pretty, "pid");
	out = put_u64(out, r->pid);
	/* In a container: the PID the process has there (1 for its master). */
	if (r->ns_pid) {
		out = PUT_KEY(out, pretty, "ns_pid");
		out = put_u64(out, r->ns_pid);
	}
	out = PUT_KEY(out, pretty, "tid");
	out = put_u64(out, r->tid);
	PUT_META(out, pretty, "service_name", r->meta.service_name, m->service);
	PUT_META(out, pretty, "container_id", r->meta.container_id, m->container);
	PUT_META(out, pretty, "k8s_pod_uid", r->meta.pod_uid, m->uid);
	PUT_META(out, pretty, "k8s_pod_name", r->meta.pod_name, m->pod);
	PUT_META(out, pretty, "k8s_namespace", r->meta.namespace, m->ns);
	PUT_META(out, pretty, "host_name", m->host_name, m->host);
	if (pretty)
		return PUT_LIT(out, "\n}\n");
	return PUT_LIT(out, "}\n");
}

/* A buffer smaller than the worst case: the line is built on the stack and
 * copied only if it fits, so nothing partial is left in `buf`. */
static __attribute__((noinline)) int encode_small(const struct request_record *r,
						  const struct meta_lens *m, bool pretty, char *buf,
						  size_t size)
{
	char line[FIXED_MAX + 6 * (sizeof(*r) - offsetof(struct request_record, method))];
	size_t n;

	if (line_bound(r, m) > sizeof(line))
		return -ENOSPC; /* lengths past their arrays: not a record */
	n = (pretty ? put_request(line, r, m, true) : put_request(line, r, m, false)) - line;
	if (n >= size)
		return -ENOSPC;
	memcpy(buf, line, n);
	buf[n] = 0;
	return n;
}

static inline __attribute__((always_inline)) int encode(const struct request_record *r, char *buf,
							size_t size, bool pretty)
{
	struct meta_lens m = {
		.service = strlen(r->meta.service_name),
		.container = strlen(r->meta.container_id),
		.uid = strlen(r->meta.pod_uid),
		.pod = strlen(r->meta.pod_name),
		.ns = strlen(r->meta.namespace),
	};
	int n;

	m.host_name = host_name(&m.host);
	if (line_bound(r, &m) < size) {
		n = put_request(buf, r, &m, pretty) - buf;
		buf[n] = 0;
		return n;
	}
	n = encode_small(r, &m, pretty, buf, size);
	if (n < 0 && size)
		buf[0] = 0;
	return n;
}

int jsonl_encode_request(const struct request_record *r, char *buf, size_t size)
{
	return encode(r, buf, size, false);
}

int jsonl_encode_request_pretty(const struct request_record *r, char *buf, size_t size)
{
	return encode(r, buf, size, true);
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

/* Takes the line just put at wbuf + wlen (n bytes) into the buffer; request
 * records and other records (PROFILE) are counted apart, so the summary's
 * "requests recorded" stays exact.  A line never straddles two files: the
 * buffer goes to the old one first, and the line moves to the buffer's start
 * (only on a rotation by size). */
static void commit_line(struct jsonl_exporter *x, size_t n, bool request)
{
	if (rotfile__would_overflow(x->rf, x->wlen + n)) {
		size_t at = x->wlen;
		int err;

		jsonl__flush(x);
		memmove(x->wbuf, x->wbuf + at, n);
		err = rotfile__make_room(x->rf, n);
		if (err)
			report_failure(x, -err, 0);
		report_rename_failures(x);
	}
	x->wlen += n;
	if (request)
		x->pending++;
	else
		x->pending_other++;
}

/* Encodes straight into the write buffer, which always has room for the
 * longest line: no copy of the line, no line buffer on the stack. */
int jsonl__push(struct jsonl_exporter *x, const struct request_record *r)
{
	int n;

	if (WBUF_SIZE - x->wlen <= JSONL_LINE_MAX)
		jsonl__flush(x);
	n = jsonl_encode_request(r, x->wbuf + x->wlen, JSONL_LINE_MAX);
	if (n < 0 || !x->rf) {
		x->stats.write_errors++;
		return n < 0 ? n : -EBADF;
	}
	commit_line(x, n, true);
	return 0;
}

int jsonl__push_line(struct jsonl_exporter *x, const char *line, size_t n)
{
	if (!x->rf || n == 0 || line[n - 1] != '\n' || n > WBUF_SIZE) {
		x->stats.other_errors++;
		return -EINVAL;
	}
	if (x->wlen + n > WBUF_SIZE)
		jsonl__flush(x);
	memcpy(x->wbuf + x->wlen, line, n);
	commit_line(x, n, false);
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
