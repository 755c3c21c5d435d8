// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The Prometheus exporter: label values escaped exactly as the text format
 * 0.0.4 asks, values that read back exactly, the bucket of every boundary
 * duration (le is inclusive), one series rendered byte for byte (a golden
 * text), cumulative buckets, the (unmatched) route for any number of raw
 * paths, methods outside the standard nine, --sample weights, the series
 * cap and its drop counter, expiry of an exited process's series after
 * expire_ns (injected clock and liveness), and the health families.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prom.h"

#define MS 1000000ULL

static char *escaped(const char *s)
{
	static char out[256];
	struct prom_buf b = { 0 };

	prom_escape_label(&b, s);
	snprintf(out, sizeof(out), "%s", b.s ? b.s : "");
	prom_buf_free(&b);
	return out;
}

Test(prom, label_values_are_escaped)
{
	cr_assert_str_eq(escaped("plain /users/<int:uid>"), "plain /users/<int:uid>");
	cr_assert_str_eq(escaped("a\\b"), "a\\\\b");
	cr_assert_str_eq(escaped("say \"hi\""), "say \\\"hi\\\"");
	cr_assert_str_eq(escaped("two\nlines"), "two\\nlines");
	cr_assert_str_eq(escaped("\\\"\n"), "\\\\\\\"\\n");
	/* UTF-8 and tabs pass as they are. */
	cr_assert_str_eq(escaped("/café\t"), "/café\t");
	cr_assert_str_eq(escaped(""), "");
}

Test(prom, help_text_is_escaped)
{
	struct prom_buf b = { 0 };

	prom_family(&b, "x_total", "counter", "back\\slash\nnewline \"quotes\" stay");
	cr_assert_str_eq(b.s, "# HELP x_total back\\\\slash\\nnewline \"quotes\" stay\n"
			      "# TYPE x_total counter\n");
	prom_buf_free(&b);
}

static const char *value(double v)
{
	static char out[32];

	prom_format_value(v, out);
	return out;
}

Test(prom, values_read_back_exactly)
{
	cr_assert_str_eq(value(0), "0");
	cr_assert_str_eq(value(42), "42");
	cr_assert_str_eq(value(-3), "-3");
	cr_assert_str_eq(value(0.1), "0.1");
	cr_assert_str_eq(value(0.100958758), "0.100958758");
	cr_assert_str_eq(value(1.0 / 3), "0.3333333333333333"); /* 16 digits */
	cr_assert_str_eq(value(1e300), "1e+300");
	cr_assert_str_eq(value(0.1 + 0.2), "0.30000000000000004"); /* 17 digits */
	cr_assert_str_eq(value(9007199254740992.0), "9007199254740992");
	cr_assert_str_eq(value(1.0 / 0.0), "+Inf");
	cr_assert_str_eq(value(-1.0 / 0.0), "-Inf");
	cr_assert_str_eq(value(0.0 / 0.0), "NaN");
	for (int i = 1; i < 1000; i++) {
		double v = i / 7.0;

		cr_assert_eq(strtod(value(v), NULL), v);
	}
}

Test(prom, buckets_are_inclusive_at_each_bound)
{
	cr_assert_eq(prom_bucket(0), 0);
	for (int i = 0; i < PROM_NBUCKETS; i++) {
		cr_assert_eq(prom_bucket(prom_bucket_ns[i]), i, "bound %d", i);
		cr_assert_eq(prom_bucket(prom_bucket_ns[i] + 1), i + 1, "bound %d + 1 ns", i);
		cr_assert_eq(strtod(prom_bucket_le[i], NULL) * 1e9, (double)prom_bucket_ns[i]);
	}
	cr_assert_eq(prom_bucket(50 * MS), 3);	   /* le="0.05" */
	cr_assert_eq(prom_bucket(50 * MS + 1), 4); /* le="0.1" */
	cr_assert_eq(prom_bucket(UINT64_MAX), PROM_NBUCKETS);
	/* Profilis's DEFAULT_BUCKETS, as its Python client writes them. */
	cr_assert_str_eq(prom_bucket_le[0], "0.005");
	cr_assert_str_eq(prom_bucket_le[7], "1.0");
	cr_assert_str_eq(prom_bucket_le[8], "2.0");
	cr_assert_str_eq(prom_bucket_le[10], "10.0");
}

Test(prom, methods_outside_the_nine_share_one_label)
{
	cr_assert_str_eq(prom_method("GET"), "GET");
	cr_assert_str_eq(prom_method("PATCH"), "PATCH");
	cr_assert_str_eq(prom_method("get"), PROM_METHOD_OTHER);
	cr_assert_str_eq(prom_method("PROPFIND"), PROM_METHOD_OTHER);
	cr_assert_str_eq(prom_method(""), PROM_METHOD_OTHER);
}

static struct request_record req(uint32_t pid, const char *method, const char *route, bool matched,
				 int status, uint64_t dur_ns)
{
	struct request_record r;

	memset(&r, 0, sizeof(r));
	r.pid = pid;
	r.status = status;
	r.dur_ns = dur_ns;
	r.sample_rate = 1.0;
	r.has_method = true;
	snprintf(r.method, sizeof(r.method), "%s", method);
	snprintf(r.route, sizeof(r.route), "%s", route);
	r.has_route = true;
	r.route_matched = matched;
	snprintf(r.meta.service_name, sizeof(r.meta.service_name), "shop");
	snprintf(r.meta.namespace, sizeof(r.meta.namespace), "prod");
	snprintf(r.meta.pod_name, sizeof(r.meta.pod_name), "shop-7d9f-abcde");
	request_text_lengths(&r);
	return r;
}

static char *render(struct prom *p, const struct prom_health *h)
{
	size_t len = 0;
	char *text = prom__render(p, h, &len);

	cr_assert_not_null(text);
	cr_assert_eq(strlen(text), len);
	return text;
}

static const char golden[] =
	"# HELP profilis_http_requests_total Total HTTP requests (weighted by 1/--sample), since "
	"profilis-bpf started\n"
	"# TYPE profilis_http_requests_total counter\n"
	"profilis_http_requests_total{service=\"shop\",instance=\"node-1\",worker=\"42\","
	"route=\"/slow\",status=\"200\",method=\"GET\"} 3\n"
	"# HELP profilis_http_request_duration_seconds HTTP request duration in seconds, since "
	"profilis-bpf started\n"
	"# TYPE profilis_http_request_duration_seconds histogram\n";

#define LBL \
	"service=\"shop\",instance=\"node-1\",worker=\"42\",route=\"/slow\",status=\"200\",method=\"GET\""

Test(prom, one_series_byte_for_byte)
{
	struct prom *p = prom__new(&(struct prom_opts){ .instance = "node-1" });
	static const char *const buckets[] = { "0", "0", "0", "1", "2", "2",
					       "2", "2", "2", "2", "2", "3" };
	struct request_record r;
	struct prom_buf want = { 0 };
	char *text;

	/* 50 ms exactly (le="0.05"), 50 ms + 1 ns (le="0.1"), 20 s (+Inf only). */
	r = req(42, "GET", "/slow", true, 200, 50 * MS);
	prom__push(p, &r);
	r.dur_ns = 50 * MS + 1;
	prom__push(p, &r);
	r.dur_ns = 20000 * MS;
	prom__push(p, &r);
	prom_buf_puts(&want, golden);
	for (int i = 0; i <= PROM_NBUCKETS; i++)
		prom_buf_printf(&want,
				"profilis_http_request_duration_seconds_bucket{" LBL
				",le=\"%s\"} %s\n",
				i < PROM_NBUCKETS ? prom_bucket_le[i] : "+Inf", buckets[i]);
	prom_buf_puts(&want, "profilis_http_request_duration_seconds_sum{" LBL "} 20.100000001\n"
			     "profilis_http_request_duration_seconds_count{" LBL "} 3\n");
	text = render(p, NULL);
	cr_assert_str_eq(text, want.s);
	free(text);
	prom_buf_free(&want);
	prom__free(p);
}

static int count_lines(const char *text, const char *prefix)
{
	int n = 0;

	for (const char *line = text; line && *line;
	     line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		n += strncmp(line, prefix, strlen(prefix)) == 0;
	return n;
}

Test(prom, unmatched_paths_make_one_series)
{
	struct prom *p = prom__new(&(struct prom_opts){ 0 });
	struct prom_stats st;
	char path[64], *text;

	for (int i = 0; i < 10000; i++) {
		struct request_record r;

		snprintf(path, sizeof(path), "/scan/%d/%x", i, i * 2654435761u);
		r = req(7, "GET", path, false, 404, MS);
		prom__push(p, &r);
	}
	prom__stats(p, &st);
	cr_assert_eq(st.series, 1);
	cr_assert_eq(st.dropped, 0);
	text = render(p, NULL);
	cr_assert_eq(count_lines(text, "profilis_http_requests_total{"), 1);
	cr_assert_not_null(
		strstr(text, "route=\"(unmatched)\",status=\"404\",method=\"GET\"} 10000\n"));
	cr_assert_null(strstr(text, "/scan/"));
	free(text);
	prom__free(p);
}

Test(prom, odd_methods_statuses_and_weights)
{
	struct prom *p = prom__new(&(struct prom_opts){ 0 });
	struct request_record r = req(1, "FOO", "/a\"b", true, -1, MS);
	char *text;

	prom__push(p, &r);
	r = req(1, "BAR", "/a\"b", true, -1, MS);
	r.sample_rate = 0.25; /* stands for 4 */
	prom__push(p, &r);
	text = render(p, NULL);
	cr_assert_not_null(strstr(text,
				  "route=\"/a\\\"b\",status=\"unknown\",method=\"_OTHER\"} 5\n"),
			   "%s", text);
	free(text);
	prom__free(p);
}

Test(prom, k8s_labels_only_with_all)
{
	struct prom *with = prom__new(&(struct prom_opts){ .k8s_labels = true });
	struct prom *without = prom__new(&(struct prom_opts){ 0 });
	struct request_record r = req(1, "GET", "/", true, 200, MS);
	char *a, *b;

	prom__push(with, &r);
	prom__push(without, &r);
	a = render(with, NULL);
	b = render(without, NULL);
	cr_assert_not_null(
		strstr(a, "method=\"GET\",namespace=\"prod\",pod=\"shop-7d9f-abcde\"} 1\n"));
	cr_assert_null(strstr(b, "namespace="));
	cr_assert_null(strstr(b, "pod="));
	free(a);
	free(b);
	prom__free(with);
	prom__free(without);
}

Test(prom, series_cap_counts_drops)
{
	struct prom *p = prom__new(&(struct prom_opts){ .max_series = 3 });
	struct prom_stats st;
	char route[32];

	for (int i = 0; i < 5; i++) {
		struct request_record r;

		snprintf(route, sizeof(route), "/r%d", i);
		r = req(1, "GET", route, true, 200, MS);
		prom__push(p, &r);
		prom__push(p, &r);
	}
	prom__stats(p, &st);
	cr_assert_eq(st.series, 3);
	cr_assert_eq(st.dropped, 4);
	prom__free(p);
}

static bool pid_alive(uint32_t pid, void *ctx)
{
	return pid != *(uint32_t *)ctx;
}

Test(prom, exited_process_series_expire)
{
	static uint32_t dead = 2;
	const uint64_t exp = 60ULL * 1000000000ULL, t0 = 1000ULL * 1000000000ULL;
	struct prom *p = prom__new(
		&(struct prom_opts){ .expire_ns = exp, .alive = pid_alive, .alive_ctx = &dead });
	struct request_record r1 = req(1, "GET", "/", true, 200, MS),
			      r2 = req(2, "GET", "/", true, 200, MS);
	struct prom_stats st;
	char *text;

	prom__push(p, &r1);
	prom__push(p, &r2);
	prom__push(p, &r2);
	prom__tick(p, t0); /* pid 2 seen gone */
	prom__tick(p, t0 + exp - PROM_CHECK_NS);
	prom__stats(p, &st);
	cr_assert_eq(st.series, 2, "kept until expire_ns after it was seen gone");
	prom__tick(p, t0 + exp);
	prom__stats(p, &st);
	cr_assert_eq(st.series, 1);
	cr_assert_eq(st.expired, 1);
	text = render(p, NULL);
	cr_assert_null(strstr(text, "worker=\"2\""));
	cr_assert_not_null(strstr(text, "worker=\"1\""));
	free(text);
	/* The table still finds what stayed, and takes a new series. */
	prom__push(p, &r1);
	prom__push(p, &r2);
	text = render(p, NULL);
	cr_assert_not_null(
		strstr(text, "worker=\"1\",route=\"/\",status=\"200\",method=\"GET\"} 2\n"));
	cr_assert_not_null(
		strstr(text, "worker=\"2\",route=\"/\",status=\"200\",method=\"GET\"} 1\n"));
	free(text);
	prom__free(p);
}

/* A process that comes back to life (a reused pid) is no longer gone. */
Test(prom, gone_mark_is_cleared_by_new_requests)
{
	static uint32_t dead = 2;
	const uint64_t exp = 60ULL * 1000000000ULL, t0 = 1000ULL * 1000000000ULL;
	struct prom *p = prom__new(
		&(struct prom_opts){ .expire_ns = exp, .alive = pid_alive, .alive_ctx = &dead });
	struct request_record r2 = req(2, "GET", "/", true, 200, MS);
	struct prom_stats st;

	prom__push(p, &r2);
	prom__tick(p, t0);
	dead = 0;
	prom__tick(p, t0 + PROM_CHECK_NS);
	dead = 2;
	prom__tick(p, t0 + exp);
	prom__stats(p, &st);
	cr_assert_eq(st.series, 1, "gone again only since t0 + exp");
	prom__free(p);
}

Test(prom, health_families)
{
	struct prom *p = prom__new(&(struct prom_opts){ 0 });
	struct prom_health h = { .version = "0.2",
				 .start_time_s = 1700000000.5,
				 .events = 10,
				 .lost_ringbuf = 1,
				 .lost_inflight = 2,
				 .lost_queue = 3,
				 .lost_write = 4,
				 .malformed = 5,
				 .queue_depth = 512,
				 .queue_size = 2048,
				 .traced_processes = 3 };
	char *text = render(p, &h);

	cr_assert_not_null(strstr(text, "\nprofilis_bpf_build_info{version=\"0.2\"} 1\n"));
	cr_assert_not_null(strstr(text, "\nprofilis_bpf_start_time_seconds 1700000000.5\n"));
	cr_assert_not_null(strstr(text,
				  "\nprofilis_bpf_records_lost_total{reason=\"ringbuf_full\"} 1\n"
				  "profilis_bpf_records_lost_total{reason=\"inflight_full\"} 2\n"
				  "profilis_bpf_records_lost_total{reason=\"queue_full\"} 3\n"
				  "profilis_bpf_records_lost_total{reason=\"write_error\"} 4\n"
				  "profilis_bpf_records_lost_total{reason=\"malformed\"} 5\n"));
	cr_assert_not_null(strstr(text, "\nprofilis_bpf_queue_fill_ratio 0.25\n"));
	cr_assert_not_null(strstr(text, "\nprofilis_bpf_traced_processes 3\n"));
	cr_assert_not_null(strstr(text, "\nprofilis_bpf_metrics_series 0\n"));
	/* Every family has its HELP and TYPE. */
	cr_assert_eq(count_lines(text, "# HELP "), count_lines(text, "# TYPE "));
	free(text);
	prom__free(p);
}

/* With --otlp-endpoint, the span losses are on /metrics too, by reason. */
Test(prom, otlp_families_only_with_otlp)
{
	struct prom *p = prom__new(&(struct prom_opts){ 0 });
	struct prom_health h = { .version = "0.2" };
	char *text = render(p, &h);

	cr_assert_null(strstr(text, "otlp"), "no OTLP families without OTLP");
	free(text);
	h = (struct prom_health){ .version = "0.2",
				  .otlp = true,
				  .otlp_sent = 100,
				  .otlp_queue_full = 1,
				  .otlp_rejected = 2,
				  .otlp_gave_up = 3,
				  .otlp_at_exit = 4,
				  .otlp_unencodable = 5 };
	text = render(p, &h);
	cr_assert_not_null(strstr(text, "\nprofilis_bpf_otlp_spans_sent_total 100\n"));
	cr_assert_not_null(strstr(text,
				  "\nprofilis_bpf_otlp_spans_lost_total{reason=\"queue_full\"} 1\n"
				  "profilis_bpf_otlp_spans_lost_total{reason=\"rejected\"} 2\n"
				  "profilis_bpf_otlp_spans_lost_total{reason=\"gave_up\"} 3\n"
				  "profilis_bpf_otlp_spans_lost_total{reason=\"at_exit\"} 4\n"
				  "profilis_bpf_otlp_spans_lost_total{reason=\"unencodable\"} 5\n"),
			   "%s", text);
	cr_assert_eq(count_lines(text, "# HELP "), count_lines(text, "# TYPE "));
	free(text);
	prom__free(p);
}
