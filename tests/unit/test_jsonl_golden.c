// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Golden tests of the streaming JSONL encoder: its bytes must equal those
 * of the previous encoder (snprintf per field, a per-character escape loop),
 * kept below verbatim as the REFERENCE implementation (ref_*), for hand-made
 * records and for 120,000 seeded random hostile ones: quotes, backslashes,
 * every control character, DEL, NULs inside texts, invalid UTF-8,
 * U+2028/U+2029, texts at their array limits (6 KiB paths), truncation
 * markers, every null combination, extreme numbers and sample rates.  The
 * return value and buffer contents must also agree when the buffer is too
 * small, exactly big enough, or one byte short.
 *
 * The console's pretty layout (jsonl_encode_request_pretty) is held to the
 * previous pretty path the same way: cJSON's check of the compact line, then
 * its re-indentation (console_pretty, kept below as ref_console_pretty),
 * plus the '\n' the console added.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonl.h"

/* ---------- REFERENCE: the previous encoder, unchanged but renamed ---------- */

static int ref_put_string_n(char *buf, size_t size, size_t pos, const char *s, size_t n)
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
static int ref_put_raw(char *buf, size_t size, int pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int ref_put_raw(char *buf, size_t size, int pos, const char *fmt, ...)
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
static int ref_put_str_field(char *buf, size_t size, int pos, const char *key, bool have,
			     const char *val, size_t len, bool truncated)
{
	pos = ref_put_raw(buf, size, pos, ",\"%s\":", key);
	if (pos < 0)
		return pos;
	if (!have)
		return ref_put_raw(buf, size, pos, "null");
	pos = ref_put_string_n(buf, size, pos, val, len);
	if (truncated)
		pos = ref_put_raw(buf, size, pos, ",\"%s_truncated\":true", key);
	return pos;
}

/* Where the request ran: each field null when unknown, never a guess. */
static int ref_put_meta(char *buf, size_t size, int pos, const struct k8smeta *m)
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
		pos = ref_put_str_field(buf, size, pos, f[i].key, f[i].val[0] != 0, f[i].val,
					strlen(f[i].val), false);
	return pos;
}

#define REF_PUT_TEXT(buf, size, pos, r, f)                                        \
	ref_put_str_field(buf, size, pos, #f, (r)->has_##f, (r)->f, (r)->f##_len, \
			  (r)->f##_truncated)

static int ref_encode_request(const struct request_record *r, char *buf, size_t size)
{
	int pos;

	pos = ref_put_raw(buf, size, 0,
			  "{\"kind\":\"REQ\",\"schema_version\":%d,\"ts_ns\":%" PRIu64
			  ",\"time_unix_ns\":%" PRIu64 ",\"trace_id\":\"%s\",\"span_id\":\"%s\"",
			  JSONL_SCHEMA_VERSION, r->ts_ns, r->time_unix_ns, r->trace_id, r->span_id);
	pos = ref_put_str_field(buf, size, pos, "parent_span_id", r->parent_span_id[0] != 0,
				r->parent_span_id, strlen(r->parent_span_id), false);
	pos = REF_PUT_TEXT(buf, size, pos, r, method);
	pos = REF_PUT_TEXT(buf, size, pos, r, path);
	pos = REF_PUT_TEXT(buf, size, pos, r, route);
	pos = REF_PUT_TEXT(buf, size, pos, r, endpoint);
	if (r->status >= 0)
		pos = ref_put_raw(buf, size, pos, ",\"status\":%d", r->status);
	else
		pos = ref_put_raw(buf, size, pos, ",\"status\":null");
	pos = ref_put_raw(buf, size, pos, ",\"dur_ns\":%" PRIu64 ",\"error\":%s", r->dur_ns,
			  r->error ? "true" : "false");
	pos = REF_PUT_TEXT(buf, size, pos, r, exception_type);
	pos = ref_put_raw(buf, size, pos, ",\"sample_rate\":%.6g,\"pid\":%u", r->sample_rate,
			  r->pid);
	/* In a container: the PID the process has there (1 for its master). */
	if (r->ns_pid)
		pos = ref_put_raw(buf, size, pos, ",\"ns_pid\":%u", r->ns_pid);
	pos = ref_put_raw(buf, size, pos, ",\"tid\":%u", r->tid);
	pos = ref_put_meta(buf, size, pos, &r->meta);
	pos = ref_put_raw(buf, size, pos, "}\n");
	if (pos < 0 && size)
		buf[0] = 0;
	return pos;
}

/* ---------- REFERENCE: the console's previous pretty path, renamed ---------- */

/* Re-indents the compact text itself: parsing would turn 19-digit
 * nanosecond times into doubles and lose digits. */
static char *ref_console_pretty(const char *line)
{
	size_t n = strlen(line), o = 0, cap = n * 4 + 64;
	char *out = malloc(cap);
	bool in_str = false, esc = false;
	int depth = 0;

	cJSON *check = cJSON_Parse(line);

	if (!check || !out) {
		cJSON_Delete(check);
		free(out);
		return NULL; /* not one valid JSON document */
	}
	cJSON_Delete(check);
	for (size_t i = 0; i < n && o + 64 < cap; i++) {
		char c = line[i];

		if (in_str) {
			out[o++] = c;
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		switch (c) {
		case '"':
			in_str = true;
			out[o++] = c;
			break;
		case '{':
		case '[':
			out[o++] = c;
			out[o++] = '\n';
			depth++;
			for (int d = 0; d < depth * 2; d++)
				out[o++] = ' ';
			break;
		case '}':
		case ']':
			out[o++] = '\n';
			depth--;
			for (int d = 0; d < depth * 2; d++)
				out[o++] = ' ';
			out[o++] = c;
			break;
		case ',':
			out[o++] = ',';
			out[o++] = '\n';
			for (int d = 0; d < depth * 2; d++)
				out[o++] = ' ';
			break;
		case ':':
			out[o++] = ':';
			out[o++] = ' ';
			break;
		case '\n': break; /* the caller adds its own */
		default: out[o++] = c;
		}
	}
	out[o] = 0;
	return out;
}

/* ---------- the corpus ---------- */

static uint64_t rng_state;

static uint64_t rnd(void) /* splitmix64: seeded, so a failure replays */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* n hostile bytes: every kind of byte the escaper treats differently, and
 * UTF-8 sequences valid and not. */
static size_t hostile_text(char *out, size_t cap)
{
	static const char *pieces[] = { "\"",
					"\\",
					"\xe2\x80\xa8",
					"\xe2\x80\xa9",
					"\xef\xbf\xbd",
					"\xc3\xa9",
					"\xf0\x9f\x98\x80",
					"\xed\xa0\x80",
					"\xc0\xaf",
					"/users/42",
					"%00",
					"\x7f",
					"\x80",
					"\xff",
					"\xfe",
					"\\u0000",
					"</script>" };
	size_t max = below(8) == 0 ? cap - 1 : below(4) == 0 ? below(300) : below(40);
	size_t n = 0;

	if (max > cap - 1)
		max = cap - 1;
	while (n < max) {
		unsigned k = below(10);

		if (k < 3) {
			out[n++] = (char)below(0x20); /* control, NUL included */
		} else if (k < 5) {
			out[n++] = (char)(0x20 + below(0x5f));
		} else if (k < 6) {
			out[n++] = (char)below(256);
		} else {
			const char *p = pieces[below(sizeof(pieces) / sizeof(pieces[0]))];
			size_t l = strlen(p);

			if (n + l > max)
				break;
			memcpy(out + n, p, l);
			n += l;
		}
	}
	out[n] = 0;
	return n;
}

/* A metadata field: a C string, empty (null) a third of the time. */
static void hostile_cstr(char *out, size_t cap)
{
	size_t n = below(3) == 0 ? 0 : hostile_text(out, cap);

	for (size_t i = 0; i < n; i++)
		if (!out[i])
			out[i] = '\x01';
	out[n] = 0;
}

static void hex_id(char *out, size_t digits)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < digits; i++)
		out[i] = hex[below(16)];
	out[digits] = 0;
}

static uint64_t extreme_u64(void)
{
	static const uint64_t v[] = { 0,
				      1,
				      9,
				      10,
				      99,
				      100,
				      999,
				      1000,
				      9999999999ULL,
				      10000000000ULL,
				      INT64_MAX,
				      UINT64_MAX - 1,
				      UINT64_MAX };

	return below(2) ? v[below(sizeof(v) / sizeof(v[0]))] : rnd() >> below(64);
}

static uint32_t extreme_u32(void)
{
	static const uint32_t v[] = { 0, 1, 10, 99, 100, 4194304, INT32_MAX, UINT32_MAX };

	return below(2) ? v[below(sizeof(v) / sizeof(v[0]))] : (uint32_t)(rnd() >> below(64));
}

static double any_rate(void)
{
	static const double v[] = { 1.0,
				    0.1,
				    1e-7,
				    0.125,
				    0.5,
				    0.25,
				    0.01,
				    0.001,
				    0.0,
				    -0.0,
				    1.0 / 3,
				    0.999999,
				    0.9999995,
				    123456.5,
				    1234567.0,
				    1e300,
				    -1.0,
				    5e-324,
				    2.2250738585072014e-308 };
	uint64_t bits;
	double d;

	switch (below(4)) {
	case 0: return v[below(sizeof(v) / sizeof(v[0]))];
	case 1: return (double)rnd() / (double)UINT64_MAX;
	case 2: return below(2) ? NAN : below(2) ? INFINITY : -INFINITY;
	default:
		bits = rnd();
		memcpy(&d, &bits, sizeof(d));
		return d;
	}
}

#define TEXT(r, f)                                                   \
	do {                                                         \
		(r)->has_##f = below(4) != 0;                        \
		(r)->f##_len = hostile_text((r)->f, sizeof((r)->f)); \
		(r)->f##_truncated = below(3) == 0;                  \
	} while (0)

static void hostile_record(struct request_record *r)
{
	memset(r, 0, sizeof(*r));
	r->ts_ns = extreme_u64();
	r->time_unix_ns = extreme_u64();
	r->dur_ns = extreme_u64();
	r->pid = extreme_u32();
	r->tid = extreme_u32();
	r->ns_pid = below(2) ? 0 : extreme_u32();
	r->status = below(2) ? (int)(rnd() >> 32) : below(2) ? -1 : (int)below(1000);
	if (below(8) == 0)
		r->status = below(2) ? INT_MIN : INT_MAX;
	r->sample_rate = any_rate();
	r->error = below(2);
	TEXT(r, method);
	TEXT(r, path);
	TEXT(r, route);
	TEXT(r, endpoint);
	TEXT(r, exception_type);
	r->route_matched = below(2);
	hex_id(r->trace_id, below(16) ? 32 : below(33));
	hex_id(r->span_id, below(16) ? 16 : below(17));
	hex_id(r->parent_span_id, below(2) ? 0 : below(16) ? 16 : below(17));
	hostile_cstr(r->meta.service_name, sizeof(r->meta.service_name));
	hostile_cstr(r->meta.container_id, sizeof(r->meta.container_id));
	hostile_cstr(r->meta.pod_uid, sizeof(r->meta.pod_uid));
	hostile_cstr(r->meta.pod_name, sizeof(r->meta.pod_name));
	hostile_cstr(r->meta.namespace, sizeof(r->meta.namespace));
}

/* Big enough for any record, escapes included (6 KiB texts of controls). */
#define BIG (128 * 1024)

static char got[BIG], want[BIG];

/* Both encoders, into buffers of `size` that start out alike: same return,
 * same bytes (a too small buffer must hold "" in both). */
static void same_at(const struct request_record *r, size_t size, const char *what)
{
	int g, w;

	memset(got, '#', size + 1 < BIG ? size + 1 : BIG);
	memset(want, '#', size + 1 < BIG ? size + 1 : BIG);
	g = jsonl_encode_request(r, got, size);
	w = ref_encode_request(r, want, size);
	cr_assert_eq(g, w, "%s: size %zu: got %d, reference %d", what, size, g, w);
	if (w >= 0) {
		cr_assert_eq(memcmp(got, want, w + 1), 0, "%s: size %zu:\n got %s\nwant %s", what,
			     size, got, want);
	} else if (size) {
		cr_assert_eq(got[0], 0, "%s: size %zu: a part left behind", what, size);
	}
}

static void same(const struct request_record *r, const char *what)
{
	int n;

	same_at(r, BIG, what);
	same_at(r, JSONL_LINE_MAX, what);
	n = ref_encode_request(r, want, BIG);
	cr_assert_gt(n, 0, "%s", what);
	same_at(r, n + 1, what); /* exactly enough */
	same_at(r, n, what);	 /* one byte short */
	same_at(r, below(n + 1), what);
}

static void fixed_host(void)
{
	setenv("PROFILIS_HOST_NAME", "node-1.example", 1);
}

Test(jsonl_golden, random_hostile_records)
{
	static struct request_record r;

	fixed_host();
	rng_state = 15;
	for (int i = 0; i < 120000; i++) {
		char what[32];

		hostile_record(&r);
		snprintf(what, sizeof(what), "record %d", i);
		if (i % 16 == 0) {
			same(&r, what);
		} else {
			same_at(&r, BIG, what);
		}
	}
}

static void plain(struct request_record *r)
{
	memset(r, 0, sizeof(*r));
	r->ts_ns = 1334176162672ULL;
	r->time_unix_ns = 1795534628965004257ULL;
	r->status = 200;
	r->sample_rate = 1.0;
	r->pid = 3470;
	r->tid = 3471;
	r->has_method = r->has_path = r->has_route = r->has_endpoint = true;
	strcpy(r->method, "GET");
	strcpy(r->path, "/users/42");
	strcpy(r->route, "/users/<int:uid>");
	strcpy(r->endpoint, "get_user");
	strcpy(r->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	strcpy(r->span_id, "00f067aa0ba902b7");
	request_text_lengths(r);
}

/* Every one of the 32 null combinations of the five texts, each with and
 * without its truncation marker, and parent/metadata present or not. */
Test(jsonl_golden, every_null_combination)
{
	static struct request_record r;

	fixed_host();
	for (unsigned m = 0; m < 32 * 32 * 4; m++) {
		char what[32];

		plain(&r);
		r.has_method = m & 1, r.has_path = m & 2, r.has_route = m & 4;
		r.has_endpoint = m & 8, r.has_exception_type = m & 16;
		strcpy(r.exception_type, "ValueError");
		request_text_lengths(&r);
		r.method_truncated = m >> 5 & 1, r.path_truncated = m >> 6 & 1;
		r.route_truncated = m >> 7 & 1, r.endpoint_truncated = m >> 8 & 1;
		r.exception_type_truncated = m >> 9 & 1;
		if (m >> 10 & 1)
			strcpy(r.parent_span_id, "b7ad6b7169203331");
		if (m >> 11 & 1) {
			strcpy(r.meta.service_name, "shop");
			strcpy(r.meta.container_id, "c0ffee");
			strcpy(r.meta.pod_uid, "1234-5678");
			strcpy(r.meta.pod_name, "shop-7d9f");
			strcpy(r.meta.namespace, "default");
		}
		snprintf(what, sizeof(what), "combination %#x", m);
		same(&r, what);
	}
}

/* Each byte value alone, and U+2028/U+2029, in every text field. */
Test(jsonl_golden, every_byte)
{
	static struct request_record r;

	fixed_host();
	for (unsigned b = 0; b < 256; b++) {
		char what[32];

		plain(&r);
		r.path[0] = (char)b, r.path[1] = 'x', r.path[2] = (char)b, r.path[3] = 0;
		r.path_len = 3;
		memcpy(r.route, "\xe2\x80\xa8\xe2\x80\xa9", 7);
		r.route_len = 6;
		r.method[0] = (char)b, r.method_len = 1;
		r.endpoint[0] = (char)b, r.endpoint_len = 1;
		r.has_exception_type = true;
		r.exception_type[0] = (char)b, r.exception_type_len = 1;
		if (b) {
			r.meta.service_name[0] = (char)b;
			r.meta.pod_name[0] = (char)b;
		}
		snprintf(what, sizeof(what), "byte %#x", b);
		same(&r, what);
	}
}

/* Texts filled to their arrays' last byte: plain, all quotes, all controls
 * (6 bytes each when escaped: past JSONL_LINE_MAX, so -ENOSPC in both). */
Test(jsonl_golden, texts_at_their_limits)
{
	static struct request_record r;
	const char fills[] = { 'a', '"', '\\', '\x01', '\0', '\x7f', '\xe2' };

	fixed_host();
	for (size_t i = 0; i < sizeof(fills); i++) {
		char what[32];

		plain(&r);
		memset(r.path, fills[i], sizeof(r.path) - 1);
		r.path_len = sizeof(r.path) - 1;
		memset(r.route, fills[i], sizeof(r.route) - 1);
		r.route_len = sizeof(r.route) - 1;
		memset(r.endpoint, fills[i], sizeof(r.endpoint) - 1);
		r.endpoint_len = sizeof(r.endpoint) - 1;
		memset(r.method, fills[i], sizeof(r.method) - 1);
		r.method_len = sizeof(r.method) - 1;
		r.path_truncated = r.route_truncated = true;
		snprintf(what, sizeof(what), "fill %#x", (unsigned char)fills[i]);
		same_at(&r, BIG, what);
		same_at(&r, JSONL_LINE_MAX, what);
		/* The 2 KiB limit BPF copies, as decoded ASCII: fits a line. */
		r.path_len = r.route_len = PBPF_PATH_MAX;
		same(&r, what);
	}
}

Test(jsonl_golden, extreme_numbers_and_rates)
{
	static struct request_record r;
	const double rates[] = { 1.0,	   0.1,	     1e-7,	0.125, 1e-5,   1e-4,
				 100000.0, 999999.5, 1e6,	0.0,   -0.0,   NAN,
				 -NAN,	   INFINITY, -INFINITY, 0.3,   2.0 / 3 };
	const int statuses[] = { INT_MIN, -2, -1, 0, 9, 10, 200, 999, 1000, INT_MAX };

	fixed_host();
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		for (size_t j = 0; j < sizeof(statuses) / sizeof(statuses[0]); j++) {
			char what[48];

			plain(&r);
			r.sample_rate = rates[i];
			r.status = statuses[j];
			r.ts_ns = r.dur_ns = UINT64_MAX;
			r.time_unix_ns = j ? (uint64_t)1 << (j * 6) : 0;
			r.pid = r.tid = UINT32_MAX;
			r.ns_pid = (uint32_t)j;
			r.error = j & 1;
			snprintf(what, sizeof(what), "rate %zu status %d", i, statuses[j]);
			same(&r, what);
		}
}

/* The string escaper callers outside records use (profiles, OTLP). */
Test(jsonl_golden, put_string_n_matches)
{
	static char s[4096];
	char g[8192], w[8192];

	rng_state = 2028;
	for (int i = 0; i < 20000; i++) {
		size_t n = hostile_text(s, below(4) ? 64 : sizeof(s));
		size_t pos = below(8), size = below(2) ? sizeof(g) : pos + below(6 * n + 8);
		int gr, wr;

		memset(g, '#', sizeof(g));
		memset(w, '#', sizeof(w));
		gr = jsonl_put_string_n(g, size, pos, s, n);
		wr = ref_put_string_n(w, size, pos, s, n);
		cr_assert_eq(gr, wr, "case %d: size %zu pos %zu: got %d, reference %d", i, size,
			     pos, gr, wr);
		if (wr >= 0)
			cr_assert_eq(memcmp(g + pos, w + pos, wr - pos + 1), 0, "case %d", i);
	}
}

/* request_decode clears only the first byte of each text array: a record
 * reused after long hostile texts must still encode as a fresh one would. */
Test(jsonl_golden, decode_into_a_dirty_record)
{
	static struct pbpf_req_event e;
	static struct request_record dirty, clean;

	fixed_host();
	rng_state = 7;
	e.kind = PBPF_EV_REQUEST;
	e.end_ns = 5000;
	e.start_ns = 1000;
	for (int i = 0; i < 64; i++) {
		hostile_record(&dirty); /* long texts, truncation flags, metadata */
		memset(&clean, 0, sizeof(clean));
		e.flags = i & 1 ? PBPF_F_HAVE_STATUS : 0;
		e.status = 201;
		cr_assert_eq(request_decode(&e, 7, &dirty), 0);
		cr_assert_eq(request_decode(&e, 7, &clean), 0);
		memcpy(clean.trace_id, dirty.trace_id, sizeof(clean.trace_id));
		memcpy(clean.span_id, dirty.span_id, sizeof(clean.span_id));
		cr_assert_eq(jsonl_encode_request(&dirty, got, BIG),
			     jsonl_encode_request(&clean, want, BIG));
		cr_assert_str_eq(got, want);
		cr_assert_str_eq(dirty.path, "");
		cr_assert_eq(dirty.path_len + dirty.route_len + dirty.method_len, 0);
	}
}

/* The pretty layout against console_pretty of the compact line.  A
 * configured sample rate is finite (cli.c): "nan" is no JSON, and the
 * reference refused such a line, so the corpus keeps rates finite and every
 * line must be accepted by the reference. */
static void same_pretty(const struct request_record *r, bool sizes, const char *what)
{
	char *ref;
	size_t n;
	int g;

	cr_assert_gt(ref_encode_request(r, want, BIG), 0, "%s", what);
	ref = ref_console_pretty(want);
	cr_assert_not_null(ref, "%s: the reference refused %s", what, want);
	n = strlen(ref);
	cr_assert_lt(n + 1, BIG);
	memcpy(want, ref, n);
	want[n++] = '\n';
	want[n] = 0;
	free(ref);
	g = jsonl_encode_request_pretty(r, got, BIG);
	cr_assert_eq(g, (int)n, "%s: length %d, reference %zu", what, g, n);
	cr_assert_eq(memcmp(got, want, n + 1), 0, "%s:\n got %s\nwant %s", what, got, want);
	if (!sizes)
		return;
	cr_assert_eq(jsonl_encode_request_pretty(r, got, n + 1), (int)n, "%s: exactly enough",
		     what);
	cr_assert_eq(memcmp(got, want, n + 1), 0, "%s: exactly enough", what);
	memset(got, '#', n + 1);
	cr_assert_eq(jsonl_encode_request_pretty(r, got, n), -ENOSPC, "%s: one byte short", what);
	cr_assert_eq(got[0], 0, "%s: a part left behind", what);
}

Test(jsonl_golden, pretty_equals_console_pretty_of_the_line)
{
	static struct request_record r;

	fixed_host();
	rng_state = 16;
	for (int i = 0; i < 60000; i++) {
		char what[32];

		hostile_record(&r);
		if (!isfinite(r.sample_rate))
			r.sample_rate = 0.5;
		snprintf(what, sizeof(what), "record %d", i);
		same_pretty(&r, i % 16 == 0, what);
	}
}
