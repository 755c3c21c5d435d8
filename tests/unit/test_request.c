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
#include "export_jsonl.h"
#include "request.h"
#include "traceparent.h"

#define FFFD "\xef\xbf\xbd"

#define SET_STR(e, f, bytes, n, k) \
	set_str(&(e)->f##_hdr, (e)->f, sizeof((e)->f), (bytes), (n), (k))

static void set_str(struct pbpf_str_hdr *h, char *field, size_t size, const void *bytes,
		    size_t n, int kind)
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
	} cases[] = { { 1, 200, 200 }, { 1, 404, 404 },	  { 1, 999, 999 },
		      { 1, 1000, -1 }, { 1, 5000, -1 },	  { 1, -1, -1 },
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
	cr_assert(!r.has_route);
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
	trace_seed(42);
	decode_ok(&e, 0, &r);
	cr_assert_str_eq(r.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_assert_str_eq(r.parent_span_id, "00f067aa0ba902b7");
	trace_seed(42);
	trace_new_span_id(span);
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
			SET_STR(&e, traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55, 1);
		trace_seed(42);
		decode_ok(&e, 0, &r);
		trace_seed(42);
		trace_new_trace_id(trace);
		trace_new_span_id(span);
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

	conv("caf\xe9", 4, 1, false, "caf\xc3\xa9");		      /* latin-1 é */
	conv("\xff\x80\x01", 3, 1, false, "\xc3\xbf\xc2\x80\x01");    /* U+00FF U+0080 U+0001 */
	conv("/caf\xc3\xa9", 6, 1, true, "/caf\xc3\xa9");	      /* WSGI bytes */
	conv("/caf\xc3\xa9", 6, 1, false, "/caf\xc3\x83\xc2\xa9");    /* as latin-1 text */
	conv(nihon, 4, 2, false, "\xe6\x97\xa5\xe6\x9c\xac");	      /* 日本 */
	conv(lone, 8, 2, false, "A" FFFD "B" FFFD);		      /* lone surrogates */
	conv(nihon, 3, 2, false, "\xe6\x97\xa5");		      /* odd byte dropped */
	conv(astral, 20, 4, false, "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf" FFFD FFFD "!");
	conv("abcd", 4, 3, false, "");
	conv("abcd", 4, 0, false, "");
	conv("abcdefgh", 8, 8, false, "");
}

Test(request, wsgi_invalid_utf8)
{
	conv("/a\xff" "b\xfe", 5, 1, true, "/a" FFFD "b" FFFD);
	conv("\xc0\xaf", 2, 1, true, FFFD FFFD);		/* overlong '/' */
	conv("\xed\xa0\x80", 3, 1, true, FFFD FFFD FFFD);	/* encoded surrogate */
	conv("\xf4\x90\x80\x80", 4, 1, true, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
	conv("/\xc3", 2, 1, true, "/" FFFD);			/* cut at the end */
	conv("\x80x", 2, 1, true, FFFD "x");			/* stray continuation */
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

/* A page of data followed by an inaccessible page: any overread faults. */
static char *guarded_end(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(mprotect(p + pg, pg, PROT_NONE), 0);
	return p + pg;
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
	strcpy(e.exc_type, "Caf\xe9" "Error"); /* tp_name is UTF-8; invalid bytes are not */
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

/* Strict UTF-8 (Unicode table 3-7), written independently of request.c. */
static int valid_utf8(const unsigned char *s)
{
	while (*s) {
		unsigned char c = *s++, lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80,
				  hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
		int n = c < 0x80 ? 0 : c < 0xc2 ? -1 : c < 0xe0 ? 1 : c < 0xf0 ? 2 : c < 0xf5 ? 3 : -1;

		for (int i = 0; i < n; i++, s++, lo = 0x80, hi = 0xbf)
			if (*s < lo || *s > hi)
				return 0;
		if (n < 0)
			return 0;
	}
	return 1;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void check_text(const char *name, const char *s, size_t size, cJSON *j, bool have)
{
	cr_assert_not_null(memchr(s, 0, size), "%s not terminated", name);
	cr_assert(valid_utf8((const unsigned char *)s), "%s is not UTF-8", name);
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

	if (!have)
		return;
	cr_assert(cJSON_IsString(v), "%s", name);
	cr_assert_str_eq(v->valuestring, s, "%s does not round-trip", name);
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
	trace_seed(1);
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
		check_text("method", r.method, sizeof(r.method), j, r.has_method);
		check_text("path", r.path, sizeof(r.path), j, r.has_path);
		check_text("route", r.route, sizeof(r.route), j, r.has_route || r.has_path);
		check_text("endpoint", r.endpoint, sizeof(r.endpoint), j, r.has_endpoint);
		check_text("exception_type", r.exception_type, sizeof(r.exception_type), j,
			   r.has_exception_type);
		cJSON_Delete(j);
	}
}
