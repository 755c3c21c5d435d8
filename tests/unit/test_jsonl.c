// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The JSONL exporter: string escaping (quotes, backslash, every control
 * character, DEL) with UTF-8 passed through untouched, null fields, one exact
 * golden line, a cJSON round trip of every field, -ENOSPC at every too-small
 * buffer size with nothing partial left behind, and the buffered file writer
 * under normal output, stdout, a full device (/dev/full) and a short write
 * (RLIMIT_FSIZE), where the promise is whole lines or nothing.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "jsonl.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN "00f067aa0ba902b7"

static const char golden[] =
	"{\"kind\":\"REQ\",\"schema_version\":1,\"ts_ns\":1334176162672,"
	"\"time_unix_ns\":1795534628965004257,\"trace_id\":\"" TRACE "\","
	"\"span_id\":\"" SPAN "\",\"parent_span_id\":null,\"method\":\"GET\","
	"\"path\":\"/users/42\",\"route\":\"/users/<int:uid>\",\"endpoint\":\"get_user\","
	"\"status\":200,\"dur_ns\":1675230,\"error\":false,\"exception_type\":null,"
	"\"sample_rate\":1,\"pid\":3470,\"tid\":3471,\"service_name\":null,\"container_id\":null,"
	"\"k8s_pod_uid\":null,\"k8s_pod_name\":null,\"k8s_namespace\":null,\"host_name\":\"node-1\"}\n";

/* The node's name is read once per process: each test (a process of its
 * own) fixes it before its first record. */
static void fixed_host(void)
{
	setenv("PROFILIS_HOST_NAME", "node-1", 1);
}

static void sample(struct request_record *r)
{
	fixed_host();
	memset(r, 0, sizeof(*r));
	r->ts_ns = 1334176162672ULL;
	r->time_unix_ns = 1795534628965004257ULL;
	r->dur_ns = 1675230;
	r->pid = 3470;
	r->tid = 3471;
	r->status = 200;
	r->sample_rate = 1.0;
	r->has_method = r->has_path = r->has_route = r->has_endpoint = true;
	strcpy(r->method, "GET");
	strcpy(r->path, "/users/42");
	strcpy(r->route, "/users/<int:uid>");
	strcpy(r->endpoint, "get_user");
	strcpy(r->trace_id, TRACE);
	strcpy(r->span_id, SPAN);
	request_text_lengths(r);
}

Test(jsonl, golden_line)
{
	struct request_record r;
	char buf[JSONL_LINE_MAX];

	sample(&r);
	int n = jsonl_encode_request(&r, buf, sizeof(buf));

	cr_assert_str_eq(buf, golden);
	cr_assert_eq(n, (int)strlen(golden));
}

/* A process in a container: its PID there follows the host PID; a process
 * in the host's namespace has no ns_pid field (the golden line). */
Test(jsonl, ns_pid_after_pid)
{
	struct request_record r;
	char buf[JSONL_LINE_MAX], want[64];

	sample(&r);
	r.ns_pid = 1;
	cr_assert_gt(jsonl_encode_request(&r, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "\"pid\":%u,\"ns_pid\":1,\"tid\":%u,", r.pid, r.tid);
	cr_assert_not_null(strstr(buf, want), "%s", buf);
	r.ns_pid = 0;
	cr_assert_gt(jsonl_encode_request(&r, buf, sizeof(buf)), 0);
	cr_assert_null(strstr(buf, "ns_pid"), "%s", buf);
}

Test(jsonl, null_fields)
{
	static const char want[] =
		"{\"kind\":\"REQ\",\"schema_version\":1,\"ts_ns\":0,\"time_unix_ns\":0,"
		"\"trace_id\":\"" TRACE "\",\"span_id\":\"" SPAN "\",\"parent_span_id\":null,"
		"\"method\":null,\"path\":null,\"route\":null,\"endpoint\":null,"
		"\"status\":null,\"dur_ns\":0,\"error\":false,\"exception_type\":null,"
		"\"sample_rate\":1,\"pid\":0,\"tid\":0,\"service_name\":null,\"container_id\":null,"
		"\"k8s_pod_uid\":null,\"k8s_pod_name\":null,\"k8s_namespace\":null,"
		"\"host_name\":\"node-1\"}\n";
	struct request_record r = { .status = -1, .sample_rate = 1.0 };
	char buf[JSONL_LINE_MAX];

	fixed_host();
	/* Stale text behind has_* == false must not leak into the line. */
	strcpy(r.method, "POST");
	strcpy(r.path, "/x");
	strcpy(r.route, "/x");
	strcpy(r.endpoint, "x");
	strcpy(r.exception_type, "E");
	strcpy(r.trace_id, TRACE);
	strcpy(r.span_id, SPAN);
	int n = jsonl_encode_request(&r, buf, sizeof(buf));

	cr_assert_str_eq(buf, want);
	cr_assert_eq(n, (int)strlen(want));
}

Test(jsonl, escapes)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "\"\"" },
		{ "a\"b", "\"a\\\"b\"" },
		{ "a\\b", "\"a\\\\b\"" },
		{ "\n\t\r\b\f", "\"\\n\\t\\r\\b\\f\"" },
		{ "\x01", "\"\\u0001\"" },
		{ "x\x1fy", "\"x\\u001fy\"" },
		{ "\x7f", "\"\\u007f\"" },
		{ "\x1b[31m", "\"\\u001b[31m\"" },
		{ "/a/b?c=</script>", "\"/a/b?c=</script>\"" },
		{ "/caf\xc3\xa9", "\"/caf\xc3\xa9\"" },
		{ "/\xe6\x97\xa5\xe6\x9c\xac/\xe8\xb7\xaf\xe7\x94\xb1", /* /日本/路由 */
		  "\"/\xe6\x97\xa5\xe6\x9c\xac/\xe8\xb7\xaf\xe7\x94\xb1\"" },
		{ "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"" }, /* U+1F600 */
		{ "\xc2\x85", "\"\xc2\x85\"" }, /* U+0085 is not a JSON control char */
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(buf, "pre", 3);
		int n = jsonl_put_string(buf, sizeof(buf), 3, cases[i].in);

		cr_assert_eq(n, 3 + (int)strlen(cases[i].out), "case %zu: %d", i, n);
		cr_assert_eq(memcmp(buf, "pre", 3), 0, "case %zu: prefix clobbered", i);
		cr_assert_str_eq(buf + 3, cases[i].out, "case %zu", i);
	}
}

Test(jsonl, every_control_char_parses_back)
{
	char in[40], buf[512];
	cJSON *j;

	for (int c = 1; c < 32; c++)
		in[c - 1] = c;
	in[31] = 0x7f;
	in[32] = 0;
	cr_assert_gt(jsonl_put_string(buf, sizeof(buf), 0, in), 0);
	j = cJSON_Parse(buf);
	cr_assert(cJSON_IsString(j), "%s", buf);
	cr_assert_str_eq(j->valuestring, in);
	cJSON_Delete(j);
}

Test(jsonl, put_string_exact_room)
{
	/* "a\"\x01" -> "a\"\u0001" quoted: 1+1+2+6+1 = 11 bytes, plus the NUL. */
	char buf[32];

	cr_assert_eq(jsonl_put_string(buf, 12, 0, "a\"\x01"), 11);
	cr_assert_str_eq(buf, "\"a\\\"\\u0001\"");
	for (size_t size = 0; size < 12; size++)
		cr_assert_eq(jsonl_put_string(buf, size, 0, "a\"\x01"), -ENOSPC, "size %zu", size);
}

Test(jsonl, sample_rate_is_a_json_number)
{
	static const struct {
		double rate;
		const char *text;
	} cases[] = { { 1.0, "1" },	  { 0.5, "0.5" },	{ 0.1, "0.1" },
		      { 0.001, "0.001" }, { 0.00001, "1e-05" }, { 0.0, "0" } };
	struct request_record r;
	char buf[JSONL_LINE_MAX], want[64];

	sample(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r.sample_rate = cases[i].rate;
		cr_assert_gt(jsonl_encode_request(&r, buf, sizeof(buf)), 0);
		snprintf(want, sizeof(want), ",\"sample_rate\":%s,\"pid\":", cases[i].text);
		cr_assert(strstr(buf, want) != NULL, "%g: %s", cases[i].rate, buf);
		cJSON *j = cJSON_Parse(buf);

		cr_assert_not_null(j, "%s", buf);
		cr_assert_eq(cJSON_GetObjectItem(j, "sample_rate")->valuedouble, cases[i].rate);
		cJSON_Delete(j);
	}
}

static const char *json_str(cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert(cJSON_IsString(v), "%s is not a string", key);
	return v->valuestring;
}

/* cJSON reads numbers as doubles; 64-bit values are checked on the text. */
static unsigned long long json_u64(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	cr_assert(p != NULL, "no %s in %s", key, line);
	return strtoull(p + strlen(pat), NULL, 10);
}

Test(jsonl, cjson_round_trip)
{
	struct request_record r;
	char buf[JSONL_LINE_MAX];
	cJSON *j;

	sample(&r);
	r.ts_ns = UINT64_MAX;
	r.time_unix_ns = 1795534628965004257ULL;
	r.dur_ns = 9007199254740993ULL; /* 2^53 + 1: not a double */
	r.pid = 4294967295U;
	r.status = 503;
	r.sample_rate = 0.125;
	r.error = true;
	r.has_exception_type = true;
	strcpy(r.exception_type, "Payment\"Declined\\");
	strcpy(r.method, "M\tX");
	strcpy(r.path, "/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac\n\x01\x7f\xf0\x9f\x98\x80");
	strcpy(r.route, "/caf\xc3\xa9/<name>");
	strcpy(r.endpoint, "api.\"q\"");
	strcpy(r.parent_span_id, "b7ad6b7169203331");
	request_text_lengths(&r);

	int n = jsonl_encode_request(&r, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_assert_eq(buf[n - 1], '\n');
	cr_assert_eq(strchr(buf, '\n'), buf + n - 1, "exactly one newline, at the end");
	j = cJSON_Parse(buf);
	cr_assert_not_null(j, "does not parse: %s", buf);
	cr_assert_str_eq(json_str(j, "kind"), "REQ");
	cr_assert_eq(cJSON_GetObjectItem(j, "schema_version")->valueint, 1);
	cr_assert_str_eq(json_str(j, "trace_id"), r.trace_id);
	cr_assert_str_eq(json_str(j, "span_id"), r.span_id);
	cr_assert_str_eq(json_str(j, "parent_span_id"), r.parent_span_id);
	cr_assert_str_eq(json_str(j, "method"), r.method);
	cr_assert_str_eq(json_str(j, "path"), r.path);
	cr_assert_str_eq(json_str(j, "route"), r.route);
	cr_assert_str_eq(json_str(j, "endpoint"), r.endpoint);
	cr_assert_str_eq(json_str(j, "exception_type"), r.exception_type);
	cr_assert_eq(cJSON_GetObjectItem(j, "status")->valueint, 503);
	cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "error")));
	cr_assert_eq(cJSON_GetObjectItem(j, "sample_rate")->valuedouble, 0.125);
	cr_assert_eq(json_u64(buf, "ts_ns"), UINT64_MAX);
	cr_assert_eq(json_u64(buf, "time_unix_ns"), 1795534628965004257ULL);
	cr_assert_eq(json_u64(buf, "dur_ns"), 9007199254740993ULL);
	cr_assert_eq(json_u64(buf, "pid"), 4294967295ULL);
	cr_assert_eq(json_u64(buf, "tid"), 3471);
	cr_assert_eq(cJSON_GetArraySize(j), 24, "unexpected field count");
	cJSON_Delete(j);
}

/* A record from a pod: where it ran, from k8smeta, escaped like any text. */
Test(jsonl, metadata_fields)
{
	struct request_record r;
	char buf[JSONL_LINE_MAX];
	cJSON *j;

	sample(&r);
	strcpy(r.meta.service_name, "check\"out");
	strcpy(r.meta.container_id,
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	strcpy(r.meta.pod_uid, "5c6d7e8f-0000-4000-8000-00000000a1b2");
	strcpy(r.meta.pod_name, "shop-a-5d8f7c-x2x9q");
	strcpy(r.meta.namespace, "team-a");
	cr_assert_gt(jsonl_encode_request(&r, buf, sizeof(buf)), 0);
	j = cJSON_Parse(buf);
	cr_assert_not_null(j, "%s", buf);
	cr_assert_str_eq(json_str(j, "service_name"), "check\"out");
	cr_assert_str_eq(json_str(j, "container_id"), r.meta.container_id);
	cr_assert_str_eq(json_str(j, "k8s_pod_uid"), r.meta.pod_uid);
	cr_assert_str_eq(json_str(j, "k8s_pod_name"), "shop-a-5d8f7c-x2x9q");
	cr_assert_str_eq(json_str(j, "k8s_namespace"), "team-a");
	cr_assert_str_eq(json_str(j, "host_name"), "node-1");
	cJSON_Delete(j);
}

Test(jsonl, too_small_buffer_leaves_nothing)
{
	struct request_record r;
	char full[JSONL_LINE_MAX], buf[JSONL_LINE_MAX];
	int n;

	sample(&r);
	r.has_exception_type = true;
	strcpy(r.exception_type, "E\x01\"");
	n = jsonl_encode_request(&r, full, sizeof(full));
	cr_assert_gt(n, 0);
	for (int size = 1; size <= n; size++) {
		memset(buf, 'X', sizeof(buf));
		cr_assert_eq(jsonl_encode_request(&r, buf, size), -ENOSPC, "size %d", size);
		cr_assert_eq(buf[0], 0, "size %d left \"%.*s\"", size, size, buf);
	}
	cr_assert_eq(jsonl_encode_request(&r, buf, 0), -ENOSPC);
	cr_assert_eq(jsonl_encode_request(&r, buf, n + 1), n);
	cr_assert_str_eq(buf, full);
}

static char tmp[] = "/tmp/pbpf-jsonl-XXXXXX";

static char *temp_path(void)
{
	int fd = mkstemp(tmp);

	cr_assert_geq(fd, 0);
	close(fd);
	return tmp;
}

static void remove_tmp(void)
{
	if (!strstr(tmp, "XXXXXX"))
		unlink(tmp);
}

TestSuite(jsonl, .fini = remove_tmp);

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *s = calloc(1, 4 << 20);

	cr_assert(f && s);
	*len = fread(s, 1, (4 << 20) - 1, f);
	fclose(f);
	return s;
}

Test(jsonl, file_gets_n_whole_lines)
{
	/* ~1000 * 330 bytes crosses the 256 KiB write buffer: a mid-push flush. */
	enum { N = 1000 };
	const char *path = temp_path();
	struct request_record r;
	struct jsonl_exporter *x;
	struct jsonl_stats st;
	char *data, *line, *save = NULL;
	size_t len;
	int i = 0;
	FILE *f = fopen(path, "w");

	fputs("existing\n", f); /* -o appends */
	fclose(f);
	x = jsonl__new(&(struct jsonl_opts){ .path = path });
	cr_assert_not_null(x);
	sample(&r);
	for (int k = 0; k < N; k++) {
		r.pid = 100000 + k;
		cr_assert_eq(jsonl__push(x, &r), 0);
	}
	cr_assert_eq(jsonl__flush(x), 0);
	jsonl__stats(x, &st);
	cr_assert_eq(st.written, N);
	cr_assert_eq(st.write_errors, 0);
	jsonl__free(x);
	data = slurp(path, &len);
	cr_assert_eq(st.bytes, len - strlen("existing\n"));
	cr_assert_eq(data[len - 1], '\n');
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
		if (i == 0) {
			cr_assert_str_eq(line, "existing");
			continue;
		}
		cJSON *j = cJSON_Parse(line);

		cr_assert_not_null(j, "line %d: %s", i, line);
		cr_assert_eq(cJSON_GetObjectItem(j, "pid")->valueint, 100000 + i - 1);
		cJSON_Delete(j);
	}
	cr_assert_eq(i, N + 1);
	free(data);
}

Test(jsonl, stdout_when_no_path, .init = cr_redirect_stdout)
{
	struct request_record r;
	struct jsonl_exporter *x = jsonl__new(&(struct jsonl_opts){ .path = "-" });

	cr_assert_not_null(x);
	sample(&r);
	jsonl__push(x, &r);
	jsonl__free(x); /* flushes */
	fflush(stdout);
	cr_assert_stdout_eq_str(golden);
}

Test(jsonl, open_failure_sets_errno)
{
	errno = 0;
	cr_assert_null(jsonl__new(&(struct jsonl_opts){ .path = "/nonexistent-dir/x.jsonl" }));
	cr_assert_eq(errno, ENOENT);
}

Test(jsonl, dev_full_counts_every_record, .init = cr_redirect_stderr)
{
	struct request_record r;
	struct jsonl_exporter *x = jsonl__new(&(struct jsonl_opts){ .path = "/dev/full" });
	struct jsonl_stats st;

	cr_assert_not_null(x);
	sample(&r);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(jsonl__push(x, &r), 0);
	cr_assert_eq(jsonl__flush(x), -ENOSPC);
	jsonl__stats(x, &st);
	cr_assert_eq(st.write_errors, 3);
	cr_assert_eq(st.written, 0);
	cr_assert_eq(st.bytes, 0);
	/* Still running: later records are counted the same way. */
	jsonl__push(x, &r);
	jsonl__push(x, &r);
	cr_assert_eq(jsonl__flush(x), -ENOSPC);
	jsonl__stats(x, &st);
	cr_assert_eq(st.write_errors, 5);
	cr_assert_eq(st.written, 0);
	cr_assert_eq(jsonl__flush(x), 0, "nothing pending after a failed flush");
	jsonl__free(x);
}

Test(jsonl, short_write_leaves_only_whole_lines, .init = cr_redirect_stderr)
{
	/* RLIMIT_FSIZE makes write(2) short, then EFBIG: the disk-full shape. */
	const char *path = temp_path();
	struct rlimit lim = { 1000, 1000 };
	struct request_record r;
	struct jsonl_exporter *x;
	struct jsonl_stats st;
	char line[JSONL_LINE_MAX], *data;
	size_t len, L;

	signal(SIGXFSZ, SIG_IGN);
	sample(&r);
	L = jsonl_encode_request(&r, line, sizeof(line));
	cr_assert_neq(1000 % L, 0, "the limit must split a line");
	x = jsonl__new(&(struct jsonl_opts){ .path = path });
	cr_assert_not_null(x);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (int i = 0; i < 5; i++)
		jsonl__push(x, &r);
	cr_assert_eq(jsonl__flush(x), -EFBIG);
	jsonl__stats(x, &st);
	cr_assert_eq(st.written + st.write_errors, 5);
	jsonl__free(x);
	data = slurp(path, &len);
	/* Whatever survives is whole lines, and exactly the ones counted. */
	cr_expect_eq(len % L, 0,
		     "file holds %zu bytes: %zu whole lines and %zu bytes of half a record", len,
		     len / L, len % L);
	cr_expect(len == 0 || data[len - 1] == '\n', "file ends inside a record");
	cr_expect_eq(st.written, len / L, "written says %lu, the file has %zu lines", st.written,
		     len / L);
	cr_expect_eq(st.bytes, len, "bytes counts what is in the file");
	free(data);
}
