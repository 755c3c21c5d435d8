// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Request events to records, with synthetic events built the way the BPF
 * side fills them: durations and wall-clock time, status ranges, the route
 * falling back to the raw path, traceparent adoption, every PEP 393 kind and
 * WSGI's bytes-as-latin-1 path converted to UTF-8 (U+FFFD for what is not
 * text), lengths clamped to what was copied (checked against a guard page),
 * and 1000 seeded random events that must decode to valid UTF-8 and JSON.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "jsonl.h"
#include "pystr.h"
#include "request.h"
#include "traceparent.h"

#define FFFD "\xef\xbf\xbd"

#define SET_STR(e, f, bytes, n, k) set_str(&(e)->f##_hdr, (e)->f, sizeof((e)->f), (bytes), (n), (k))

static void set_str(struct pbpf_str_hdr *h, char *field, size_t size, const void *bytes, size_t n,
		    int kind)
{
	cr_assert_leq(n, size);
	memcpy(field, bytes, n);
	h->copied = n;
	h->kind = kind;
	h->len = n / kind;
}

static void base_event(struct pbpf_req_event *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = PBPF_EV_REQUEST;
	e->pid = 3470;
	e->tid = 3471;
	e->start_ns = 1000000;
	e->end_ns = 3500000;
	e->status = 200;
	e->flags = PBPF_F_HAVE_FRAME | PBPF_F_HAVE_METHOD | PBPF_F_HAVE_PATH | PBPF_F_HAVE_RULE |
		   PBPF_F_HAVE_ENDPOINT | PBPF_F_HAVE_STATUS;
	SET_STR(e, method, "GET", 3, 1);
	SET_STR(e, path, "/users/42", 9, 1);
	SET_STR(e, route, "/users/<int:uid>", 16, 1);
	SET_STR(e, endpoint, "get_user", 8, 1);
}

#define decode_ok(e, off, r) cr_assert_eq(request_decode((e), (off), (r)), 0)

Test(request, full_event)
{
	struct pbpf_req_event e;
	struct request_record r;

	base_event(&e);
	e.kind = PBPF_EV_FIRST_SEEN;
	cr_assert_eq(request_decode(&e, 0, &r), -EINVAL);
	e.kind = 0;
	cr_assert_eq(request_decode(&e, 0, &r), -EINVAL);
	e.kind = PBPF_EV_REQUEST;
	decode_ok(&e, 1795534628000000000LL, &r);
	cr_assert_eq(r.ts_ns, 3500000);
	cr_assert_eq(r.dur_ns, 2500000);
	cr_assert_eq(r.time_unix_ns, 1795534628003500000ULL);
	cr_assert_eq(r.pid, 3470);
	cr_assert_eq(r.tid, 3471);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.sample_rate, 1.0, "the pipeline lowers it when sampling");
	cr_assert(!r.error);
	cr_assert(r.has_method && r.has_path && r.has_route && r.has_endpoint);
	cr_assert(!r.has_exception_type);
	cr_assert_str_eq(r.method, "GET");
	cr_assert_str_eq(r.path, "/users/42");
	cr_assert_str_eq(r.route, "/users/<int:uid>");
	cr_assert_str_eq(r.endpoint, "get_user");
	cr_assert_str_eq(r.parent_span_id, "");
}

Test(request, times)
{
	struct pbpf_req_event e;
	struct request_record r;

	base_event(&e);
	e.start_ns = 5000;
	e.end_ns = 4000; /* clocks of different CPUs: never a negative duration */
	decode_ok(&e, -1000, &r);
	cr_assert_eq(r.dur_ns, 0);
	cr_assert_eq(r.ts_ns, 4000);
	cr_assert_eq(r.time_unix_ns, 3000);
	e.start_ns = e.end_ns = 7;
	decode_ok(&e, 0, &r);
	cr_assert_eq(r.dur_ns, 0);
}

Test(request, status_range)
{
	static const struct {
		int have;
		int64_t in;
		int out;
	} cases[] = { { 1, 200, 200 },	    { 1, 404, 404 },	  { 1, 999, 999 },
		      { 1, 1000, -1 },	    { 1, 5000, -1 },	  { 1, -1, -1 },
		      { 1, INT64_MAX, -1 }, { 1, INT64_MIN, -1 }, { 1, 4294967496LL, -1 },
		      { 0, 200, -1 } };
	struct pbpf_req_event e;
	struct request_record r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		base_event(&e);
		if (!cases[i].have)
			e.flags &= ~PBPF_F_HAVE_STATUS;
		e.status = cases[i].in;
		decode_ok(&e, 0, &r);
		cr_assert_eq(r.status, cases[i].out, "status %lld -> %d", (long long)cases[i].in,
			     r.status);
	}
}

Test(request, route_falls_back_to_path)
{
	struct pbpf_req_event e;
	struct request_record r;
	char line[JSONL_LINE_MAX];

	base_event(&e);
	e.flags &= ~(PBPF_F_HAVE_RULE | PBPF_F_HAVE_ENDPOINT);
	e.flags |= PBPF_F_NO_RULE;
	SET_STR(&e, path, "/nope", 5, 1);
	decode_ok(&e, 0, &r);
	cr_assert(r.has_route, "route holds the raw path");
	cr_assert_str_eq(r.route, "/nope");
	jsonl_encode_request(&r, line, sizeof(line));
	cr_assert(strstr(line, "\"path\":\"/nope\",\"route\":\"/nope\",\"endpoint\":null,"), "%s",
		  line);
	/* Neither rule nor path: route is null. */
	e.flags &= ~PBPF_F_HAVE_PATH;
	decode_ok(&e, 0, &r);
	jsonl_encode_request(&r, line, sizeof(line));
	cr_assert(strstr(line, "\"path\":null,\"route\":null,"), "%s", line);
}

static void set_traceparent(struct pbpf_req_event *e, const char *tp)
{
	e->flags |= PBPF_F_HAVE_TRACEPARENT;
	SET_STR(e, traceparent, tp, strlen(tp), 1);
}

Test(request, traceparent_adopted)
{
	struct pbpf_req_event e;
	struct request_record r;
	char span[17];

	base_event(&e);
	set_traceparent(&e, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	traceparent_seed(42);
	decode_ok(&e, 0, &r);
	cr_assert_str_eq(r.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_assert_str_eq(r.parent_span_id, "00f067aa0ba902b7");
	traceparent_seed(42);
	traceparent_new_span_id(span);
	cr_assert_str_eq(r.span_id, span, "the span id is fresh");
}

Test(request, bad_traceparent_gets_fresh_ids)
{
	static const char *const bad[] = {
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"garbage",
	};
	struct pbpf_req_event e;
	struct request_record r;
	char trace[33], span[17];

	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		base_event(&e);
		if (i < sizeof(bad) / sizeof(bad[0]))
			set_traceparent(&e, bad[i]);
		else /* a valid header without the flag is not read */
			SET_STR(&e, traceparent,
				"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55, 1);
		traceparent_seed(42);
		decode_ok(&e, 0, &r);
		traceparent_seed(42);
		traceparent_new_trace_id(trace);
		traceparent_new_span_id(span);
		cr_assert_str_eq(r.trace_id, trace, "case %zu", i);
		cr_assert_str_eq(r.span_id, span, "case %zu", i);
		cr_assert_str_eq(r.parent_span_id, "", "case %zu", i);
	}
}

static void conv(const void *bytes, size_t n, int kind, bool wsgi, const char *want)
{
	struct pbpf_str_hdr h = { .len = n / (kind ? kind : 1), .copied = n, .kind = kind };
	char out[256];

	memset(out, 'X', sizeof(out));
	cr_assert_eq(pystr_to_utf8(&h, bytes, n, wsgi, out, sizeof(out)), strlen(want),
		     "kind %d: \"%s\", want \"%s\"", kind, out, want);
	cr_assert_str_eq(out, want);
}

Test(request, pystr_kinds)
{
	static const uint16_t nihon[] = { 0x65e5, 0x672c };
	static const uint16_t lone[] = { 'A', 0xd800, 'B', 0xdfff };
	static const uint32_t astral[] = { 0x1f600, 0x10ffff, 0x110000, 0xd83d, '!' };

	conv("caf\xe9", 4, 1, false, "caf\xc3\xa9");		   /* latin-1 é */
	conv("\xff\x80\x01", 3, 1, false, "\xc3\xbf\xc2\x80\x01"); /* U+00FF U+0080 U+0001 */
	conv("/caf\xc3\xa9", 6, 1, true, "/caf\xc3\xa9");	   /* WSGI bytes */
	conv("/caf\xc3\xa9", 6, 1, false, "/caf\xc3\x83\xc2\xa9"); /* as latin-1 text */
	conv(nihon, 4, 2, false, "\xe6\x97\xa5\xe6\x9c\xac");	   /* 日本 */
	conv(lone, 8, 2, false, "A" FFFD "B" FFFD);		   /* lone surrogates */
	conv(nihon, 3, 2, false, "\xe6\x97\xa5");		   /* odd byte dropped */
	conv(astral, 20, 4, false, "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf" FFFD FFFD "!");
	conv("abcd", 4, 3, false, "");
	conv("abcd", 4, 0, false, "");
	conv("abcdefgh", 8, 8, false, "");
}

Test(request, wsgi_invalid_utf8)
{
	conv("/a\xff"
	     "b\xfe",
	     5, 1, true, "/a" FFFD "b" FFFD);
	conv("\xc0\xaf", 2, 1, true, FFFD FFFD);		   /* overlong '/' */
	conv("\xed\xa0\x80", 3, 1, true, FFFD FFFD FFFD);	   /* encoded surrogate */
	conv("\xf4\x90\x80\x80", 4, 1, true, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
	conv("/\xc3", 2, 1, true, "/" FFFD);			   /* cut at the end */
	conv("\x80x", 2, 1, true, FFFD "x");			   /* stray continuation */
	conv("\xf0\x9f\x98\x80", 4, 1, true, "\xf0\x9f\x98\x80");
}

Test(request, pystr_output_truncates_on_code_points)
{
	static const uint16_t nihon[] = { 0x65e5, 0x672c };
	struct pbpf_str_hdr h2 = { .len = 2, .copied = 4, .kind = 2 };
	struct pbpf_str_hdr h1 = { .len = 6, .copied = 6, .kind = 1 };
	char out[8] = "XXXXXXX";

	cr_assert_eq(pystr_to_utf8(&h2, (const char *)nihon, 4, false, out, 4), 3);
	cr_assert_str_eq(out, "\xe6\x97\xa5");
	cr_assert_eq(pystr_to_utf8(&h2, (const char *)nihon, 4, false, out, 3), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(pystr_to_utf8(&h1, "/caf\xc3\xa9", 6, true, out, 6), 4);
	cr_assert_str_eq(out, "/caf");
	cr_assert_eq(pystr_to_utf8(&h1, "/caf\xc3\xa9", 6, true, out, 7), 6);
	out[0] = 'Q';
	cr_assert_eq(pystr_to_utf8(&h1, "/caf\xc3\xa9", 6, true, out, 0), 0);
	cr_assert_eq(out[0], 'Q', "out_size 0 writes nothing");
}

/* Room for a request event followed by an inaccessible page: any overread
 * faults. */
static char *guarded_end(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t data = (sizeof(struct pbpf_req_event) + pg - 1) / pg * pg;
	char *p = mmap(NULL, data + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(mprotect(p + data, pg, PROT_NONE), 0);
	return p + data;
}

Test(request, copied_is_clamped_to_data_size)
{
	char *data = guarded_end() - 8, out[64];
	struct pbpf_str_hdr h = { .len = 60000, .copied = 60000 };
	static const int kinds[] = { 1, 1, 2, 4 };
	static const char *const want[] = {
		"ABCDEFGH", "ABCDEFGH",
		"\xe4\x89\x81\xe4\x91\x83\xe4\x99\x85\xe4\xa1\x87", /* U+4241 ... */
		FFFD FFFD, /* 0x44434241 and 0x48474645 are past U+10FFFF */
	};

	memcpy(data, "ABCDEFGH", 8);
	for (int i = 0; i < 4; i++) {
		h.kind = kinds[i];
		cr_assert_eq(pystr_to_utf8(&h, data, 8, i == 1, out, sizeof(out)), strlen(want[i]),
			     "kind %d", kinds[i]);
		cr_assert_str_eq(out, want[i], "kind %d", kinds[i]);
	}
}

Test(request, event_lengths_clamped_to_fields)
{
	/* The event ends at the guard page; the hdrs claim 65535 bytes. */
	struct pbpf_req_event *e = (void *)(guarded_end() - sizeof(*e));
	struct request_record r;
	char path[PBPF_PATH_MAX + 1];

	base_event(e);
	memset(e->path, 'a', sizeof(e->path));
	memset(e->route, 'Z', sizeof(e->route)); /* right after path_hdr: must not leak */
	e->path_hdr.copied = 65535;
	e->flags &= ~PBPF_F_HAVE_RULE;
	set_traceparent(e, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	e->traceparent_hdr.copied = 65535;
	memset(e->exc_type, 'E', sizeof(e->exc_type)); /* no NUL: strnlen stops */
	e->flags |= PBPF_F_HAVE_EXC_TYPE;
	decode_ok(e, 0, &r);
	memset(path, 'a', PBPF_PATH_MAX);
	path[PBPF_PATH_MAX] = 0;
	cr_assert_str_eq(r.path, path);
	cr_assert_str_eq(r.route, path);
	cr_assert_eq(strlen(r.exception_type), PBPF_EXC_MAX);
	cr_assert_eq(strspn(r.exception_type, "E"), PBPF_EXC_MAX);
	cr_assert_str_eq(r.parent_span_id, "", "64 bytes of header are not a traceparent");
}

Test(request, exception_type)
{
	struct pbpf_req_event e;
	struct request_record r;

	base_event(&e);
	e.flags |= PBPF_F_ERROR | PBPF_F_HAVE_EXC_TYPE;
	strcpy(e.exc_type, "ZeroDivisionError");
	e.exc_type_len = 17;
	decode_ok(&e, 0, &r);
	cr_assert(r.error);
	cr_assert(r.has_exception_type);
	cr_assert_str_eq(r.exception_type, "ZeroDivisionError");
	strcpy(e.exc_type, "Caf\xe9"
			   "Error"); /* tp_name is UTF-8; invalid bytes are not */
	decode_ok(&e, 0, &r);
	cr_assert_str_eq(r.exception_type, "Caf" FFFD "Error");
	e.exc_type[0] = 0;
	decode_ok(&e, 0, &r);
	cr_assert(!r.has_exception_type);
	strcpy(e.exc_type, "ValueError");
	e.flags &= ~PBPF_F_HAVE_EXC_TYPE;
	decode_ok(&e, 0, &r);
	cr_assert(!r.has_exception_type);
}

/* Strict UTF-8 (Unicode table 3-7), written independently of request.c;
 * NUL is a character like any other (the text's length is n). */
static int valid_utf8_n(const unsigned char *s, size_t len)
{
	const unsigned char *end = s + len;

	while (s < end) {
		unsigned char c = *s++,
			      lo = c == 0xe0   ? 0xa0
				   : c == 0xf0 ? 0x90
					       : 0x80,
			      hi = c == 0xed   ? 0x9f
				   : c == 0xf4 ? 0x8f
					       : 0xbf;
		int n = c < 0x80   ? 0
			: c < 0xc2 ? -1
			: c < 0xe0 ? 1
			: c < 0xf0 ? 2
			: c < 0xf5 ? 3
				   : -1;

		for (int i = 0; i < n; i++, s++, lo = 0x80, hi = 0xbf)
			if (s >= end || *s < lo || *s > hi)
				return 0;
		if (n < 0)
			return 0;
	}
	return 1;
}

static int valid_utf8(const unsigned char *s)
{
	return valid_utf8_n((const unsigned char *)s, strlen((const char *)s));
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A decoded text: terminated right after its length, valid UTF-8 over all of
 * it (NULs included), and the same text after a JSON round trip. */
static void check_text(const char *name, const char *s, uint32_t len, size_t size, cJSON *j,
		       bool have)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

	cr_assert_lt(len, size, "%s: length %u", name, len);
	cr_assert_eq(s[len], 0, "%s not terminated at its length", name);
	cr_assert(valid_utf8_n((const unsigned char *)s, len), "%s is not UTF-8", name);
	if (!have)
		return;
	cr_assert(cJSON_IsString(v), "%s", name);
	/* cJSON's strings end at the first NUL: compare up to it. */
	cr_assert_eq(strlen(v->valuestring), strnlen(s, len), "%s does not round-trip", name);
	cr_assert_eq(memcmp(v->valuestring, s, strnlen(s, len)), 0, "%s does not round-trip", name);
}

Test(request, random_events)
{
	static const int kinds[] = { 1, 2, 4 };
	uint64_t seed = 0x5eed1234abcdULL;
	struct pbpf_req_event e;
	struct request_record r;
	char line[JSONL_LINE_MAX];

	/* The oracle itself must reject what it is there to catch. */
	cr_assert(valid_utf8((const unsigned char *)"a\xc3\xa9\xf4\x8f\xbf\xbf"));
	cr_assert(!valid_utf8((const unsigned char *)"\xc0\xaf"));
	cr_assert(!valid_utf8((const unsigned char *)"\xed\xa0\x80"));
	cr_assert(!valid_utf8((const unsigned char *)"\xf4\x90\x80\x80"));
	cr_assert(!valid_utf8((const unsigned char *)"\xe6\x97"));
	traceparent_seed(1);
	for (int it = 0; it < 1000; it++) {
		unsigned char *p = (unsigned char *)&e;

		for (size_t i = 0; i < sizeof(e); i++)
			p[i] = xorshift(&seed);
		e.kind = PBPF_EV_REQUEST;
		struct pbpf_str_hdr *h[] = { &e.method_hdr, &e.path_hdr, &e.route_hdr,
					     &e.endpoint_hdr, &e.traceparent_hdr };
		for (int k = 0; k < 5; k++)
			if (xorshift(&seed) % 4)
				h[k]->kind = kinds[xorshift(&seed) % 3];
		cr_assert_eq(request_decode(&e, 0, &r), 0, "iteration %d", it);
		cr_assert(r.status == -1 || (r.status >= 0 && r.status < 1000));
		cr_assert_eq(strspn(r.trace_id, "0123456789abcdef"), 32);
		cr_assert_eq(strspn(r.span_id, "0123456789abcdef"), 16);
		int n = jsonl_encode_request(&r, line, sizeof(line));

		cr_assert_gt(n, 0, "iteration %d: %d", it, n);
		cJSON *j = cJSON_Parse(line);

		cr_assert_not_null(j, "iteration %d: %s", it, line);
#define CHECK_TEXT(f) check_text(#f, r.f, r.f##_len, sizeof(r.f), j, r.has_##f)
		CHECK_TEXT(method);
		CHECK_TEXT(path);
		CHECK_TEXT(route);
		CHECK_TEXT(endpoint);
		check_text("exception_type", r.exception_type, r.exception_type_len,
			   sizeof(r.exception_type), j, r.has_exception_type);
		cJSON_Delete(j);
	}
}

/* The JSONL line of `e`, decoded. */
static void encode(const struct pbpf_req_event *e, struct request_record *r, char *line)
{
	decode_ok(e, 0, r);
	cr_assert_gt(jsonl_encode_request(r, line, JSONL_LINE_MAX), 0);
}

Test(request, truncation_is_read_from_the_str_header)
{
	static struct pbpf_req_event e;
	static struct request_record r;
	static char line[JSONL_LINE_MAX], want[2 * PBPF_PATH_MAX + 128];

	/* An 8 KiB path: the str says 8192 characters, BPF copied 2048 bytes. */
	base_event(&e);
	e.flags &= ~(PBPF_F_HAVE_RULE | PBPF_F_HAVE_ENDPOINT);
	memset(e.path, 'p', PBPF_PATH_MAX);
	e.path_hdr = (struct pbpf_str_hdr){ .len = 8192, .copied = PBPF_PATH_MAX, .kind = 1 };
	encode(&e, &r, line);
	cr_assert(r.path_truncated && r.route_truncated, "unmatched: route is the cut path");
	cr_assert_eq(r.path_len, PBPF_PATH_MAX);
	snprintf(want, sizeof(want),
		 "\"path\":\"%.*s\",\"path_truncated\":true,\"route\":\"%.*s\","
		 "\"route_truncated\":true,\"endpoint\":null,",
		 PBPF_PATH_MAX, e.path, PBPF_PATH_MAX, e.path);
	cr_assert_not_null(strstr(line, want), "%s", line);
	/* Exactly full is not cut: the header, not the full buffer, decides. */
	e.path_hdr.len = PBPF_PATH_MAX;
	encode(&e, &r, line);
	cr_assert(!r.path_truncated && !r.route_truncated);
	cr_assert_null(strstr(line, "_truncated"), "%s", line);
	/* A method of 40 characters keeps 32. */
	base_event(&e);
	memset(e.method, 'M', PBPF_METHOD_MAX);
	e.method_hdr = (struct pbpf_str_hdr){ .len = 40, .copied = PBPF_METHOD_MAX, .kind = 1 };
	encode(&e, &r, line);
	cr_assert_eq(r.method_len, PBPF_METHOD_MAX);
	snprintf(want, sizeof(want), "\"method\":\"%.*s\",\"method_truncated\":true,\"path\"",
		 PBPF_METHOD_MAX, e.method);
	cr_assert_not_null(strstr(line, want), "%s", line);
	/* A long endpoint and a long rule template are marked the same way. */
	memset(e.route, 'R', PBPF_ROUTE_MAX);
	e.route_hdr = (struct pbpf_str_hdr){ .len = 3000, .copied = PBPF_ROUTE_MAX, .kind = 1 };
	e.endpoint_hdr.len = 200;
	encode(&e, &r, line);
	cr_assert(r.route_truncated && r.endpoint_truncated && !r.path_truncated);
	cr_assert_not_null(strstr(line, "\"endpoint\":\"get_user\",\"endpoint_truncated\":true,"),
			   "%s", line);
}

Test(request, wide_paths_decode_their_kind_up_to_the_cap)
{
	static struct pbpf_req_event e;
	static struct request_record r;
	static char line[JSONL_LINE_MAX];
	uint32_t astral[PBPF_PATH_MAX / 4];
	uint16_t nihon[PBPF_PATH_MAX / 2];

	/* A UCS-4 str of 1000 characters: 512 fit in 2048 bytes. */
	for (size_t i = 0; i < PBPF_PATH_MAX / 4; i++)
		astral[i] = 0x1f600;
	base_event(&e);
	memcpy(e.path, astral, sizeof(astral));
	e.path_hdr = (struct pbpf_str_hdr){ .len = 1000, .copied = PBPF_PATH_MAX, .kind = 4 };
	encode(&e, &r, line);
	cr_assert(r.path_truncated);
	cr_assert_eq(r.path_len, 512 * 4, "512 characters of 4 UTF-8 bytes");
	for (size_t i = 0; i < 512; i++)
		cr_assert_eq(memcmp(r.path + 4 * i, "\xf0\x9f\x98\x80", 4), 0, "char %zu", i);
	/* UCS-2, whole: not marked. */
	for (size_t i = 0; i < 10; i++)
		nihon[i] = 0x65e5;
	SET_STR(&e, path, nihon, 20, 2);
	encode(&e, &r, line);
	cr_assert(!r.path_truncated);
	cr_assert_eq(r.path_len, 30);
	cr_assert_null(strstr(line, "path_truncated"), "%s", line);
}

Test(request, a_cut_inside_a_character_drops_it)
{
	static struct pbpf_req_event e;
	static struct request_record r;
	static char line[JSONL_LINE_MAX];

	/* WSGI bytes: "/" then 2-byte "é"s; the 2048-byte cut splits the last. */
	base_event(&e);
	e.path[0] = '/';
	for (size_t i = 1; i + 1 < PBPF_PATH_MAX; i += 2)
		memcpy(e.path + i, "\xc3\xa9", 2);
	e.path[PBPF_PATH_MAX - 1] = '\xc3';
	e.path_hdr = (struct pbpf_str_hdr){ .len = 4001, .copied = PBPF_PATH_MAX, .kind = 1 };
	encode(&e, &r, line);
	cr_assert(r.path_truncated);
	cr_assert_eq(r.path_len, PBPF_PATH_MAX - 1, "the half character is dropped");
	cr_assert_null(strstr(r.path, FFFD), "no U+FFFD for a cut");
	/* Not cut: an invalid last byte is still U+FFFD. */
	e.path_hdr.len = PBPF_PATH_MAX;
	encode(&e, &r, line);
	cr_assert(!r.path_truncated);
	cr_assert_eq(r.path_len, PBPF_PATH_MAX - 1 + 3);
}

Test(request, nul_is_kept_and_escaped)
{
	struct pbpf_req_event e;
	struct request_record r;
	static char line[JSONL_LINE_MAX];
	static const uint16_t wide[] = { '/', 'x', 0, 'y' };

	base_event(&e);
	e.flags &= ~(PBPF_F_HAVE_RULE | PBPF_F_HAVE_ENDPOINT);
	SET_STR(&e, path, "/a\0b/c", 6, 1); /* "/a%00b/c" after WSGI decoding */
	encode(&e, &r, line);
	cr_assert_eq(r.path_len, 6);
	cr_assert_eq(memcmp(r.path, "/a\0b/c", 7), 0);
	cr_assert_not_null(strstr(line, "\"path\":\"/a\\u0000b/c\",\"route\":\"/a\\u0000b/c\","),
			   "%s", line);
	SET_STR(&e, path, wide, sizeof(wide), 2);
	encode(&e, &r, line);
	cr_assert_not_null(strstr(line, "\"path\":\"/x\\u0000y\""), "%s", line);
}

Test(request, long_exception_names_are_marked)
{
	struct pbpf_req_event e;
	struct request_record r;
	static char line[JSONL_LINE_MAX], want[512];

	/* BPF reads PBPF_EXC_MAX + 1 bytes of tp_name: 129 means longer. */
	base_event(&e);
	e.flags |= PBPF_F_ERROR | PBPF_F_HAVE_EXC_TYPE;
	memset(e.exc_type, 'N', PBPF_EXC_MAX + 1);
	e.exc_type[PBPF_EXC_MAX + 1] = 0;
	e.exc_type_len = PBPF_EXC_MAX + 1;
	encode(&e, &r, line);
	cr_assert(r.exception_type_truncated);
	cr_assert_eq(r.exception_type_len, PBPF_EXC_MAX);
	snprintf(want, sizeof(want),
		 "\"exception_type\":\"%.*s\",\"exception_type_truncated\":true,", PBPF_EXC_MAX,
		 e.exc_type);
	cr_assert_not_null(strstr(line, want), "%s", line);
	/* Exactly 128: whole. */
	e.exc_type[PBPF_EXC_MAX] = 0;
	e.exc_type_len = PBPF_EXC_MAX;
	encode(&e, &r, line);
	cr_assert(!r.exception_type_truncated);
	cr_assert_eq(r.exception_type_len, PBPF_EXC_MAX);
	/* A UTF-8 name cut inside a character loses that character. */
	memset(e.exc_type, 'N', PBPF_EXC_MAX + 1);
	memcpy(e.exc_type + PBPF_EXC_MAX - 1, "\xc3\xa9", 2);
	e.exc_type[PBPF_EXC_MAX + 1] = 0;
	encode(&e, &r, line);
	cr_assert(r.exception_type_truncated);
	cr_assert_eq(r.exception_type_len, PBPF_EXC_MAX - 1);
}

Test(request, a_matched_rule_that_cannot_be_read_is_null)
{
	struct pbpf_req_event e;
	struct request_record r;
	static char line[JSONL_LINE_MAX];

	/* url_rule is an object but .rule is not a str: not the raw path. */
	base_event(&e);
	e.flags &= ~(PBPF_F_HAVE_RULE | PBPF_F_HAVE_ENDPOINT);
	e.flags |= PBPF_F_RULE_OBJ;
	encode(&e, &r, line);
	cr_assert(!r.has_route);
	cr_assert_not_null(strstr(line, "\"path\":\"/users/42\",\"route\":null,\"endpoint\":null,"),
			   "%s", line);
}

/* BPF reads a str's header and text in one read into the field: the text
 * starts `skip` bytes in, and may fill the field's text size from there. */
Test(request, text_after_the_str_header_bpf_read_with_it)
{
	struct pbpf_req_event e;
	struct request_record r;
	char want[PBPF_ROUTE_MAX + 1];

	base_event(&e);
	memset(e.path, 'H', sizeof(e.path)); /* a 40-byte str header, then text */
	memcpy(e.path + 40, "/users/42", 9);
	e.path_hdr = (struct pbpf_str_hdr){ .len = 9, .copied = 9, .kind = 1, .skip = 40 };
	memset(e.route, 'H', 48);
	memset(e.route + 48, 'r', sizeof(e.route) - 48);
	e.route_hdr = (struct pbpf_str_hdr){ .len = 5000, .copied = 65535, .kind = 1, .skip = 48 };
	decode_ok(&e, 0, &r);
	cr_assert_str_eq(r.path, "/users/42");
	memset(want, 'r', PBPF_ROUTE_MAX);
	want[PBPF_ROUTE_MAX] = 0;
	cr_assert_str_eq(r.route, want, "the text size, not the slack, bounds a field");
	cr_assert(r.route_truncated);
}

Test(request, skip_past_the_slack_is_no_text)
{
	struct pbpf_req_event e;
	struct request_record r;

	base_event(&e);
	e.endpoint_hdr.skip = PBPF_STR_SLACK + 1; /* no BPF writes this: hostile or corrupt */
	decode_ok(&e, 0, &r);
	cr_assert_str_eq(r.endpoint, "");
}

/* The collector copies only what decode reads (request_event_copy): a
 * decode of the copy, over a slot full of an older event's bytes, writes the
 * same line as a decode of the original, for random events too. */
Test(request, copy_keeps_everything_decode_reads)
{
	static struct pbpf_req_event e, slot;
	uint64_t seed = 0xc0ffee1234ULL;
	struct request_record r;
	char a[JSONL_LINE_MAX], b[JSONL_LINE_MAX];

	for (int it = 0; it < 2000; it++) {
		unsigned char *p = (unsigned char *)&e, *q = (unsigned char *)&slot;

		if (it % 2) {
			for (size_t i = 0; i < sizeof(e); i++)
				p[i] = xorshift(&seed);
			e.kind = PBPF_EV_REQUEST;
		} else {
			base_event(&e);
			e.path_hdr.skip = xorshift(&seed) % 2 ? 40 : 0;
			memmove(e.path + e.path_hdr.skip, "/users/42", 9);
			set_traceparent(&e,
					"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
		}
		for (size_t i = 0; i < sizeof(slot); i++)
			q[i] = xorshift(&seed);
		request_event_copy(&slot, &e);
		traceparent_seed(it + 1);
		decode_ok(&e, 0, &r);
		cr_assert_gt(jsonl_encode_request(&r, a, sizeof(a)), 0);
		traceparent_seed(it + 1);
		decode_ok(&slot, 0, &r);
		cr_assert_gt(jsonl_encode_request(&r, b, sizeof(b)), 0);
		cr_assert_str_eq(b, a, "iteration %d:\n%s\n%s", it, a, b);
	}
}
