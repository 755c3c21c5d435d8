// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --stats-json: the document for a fixed snapshot, parsed back with cJSON,
 * is a superset of Profilis's metrics.json (rps, error_pct, p50, p95, spark)
 * with p99, the window, one object per route and the recent errors in the
 * shape of Profilis's errors.json (ts_ns, method, route, status,
 * exception_type), every latency in milliseconds and every value the one
 * fed in; and the writer replaces the file whole, leaves no temporary file
 * behind, and reports a missing directory as a negative errno.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "stats_json.h"

#define MS 1000000ULL

static const char odd_route[] = "/café/\"quoted\"\\<name>";

static struct agg_row mkrow(const char *method, const char *route, double count, double rps,
			    double p5, double p4, uint64_t p50, uint64_t p95, uint64_t p99,
			    uint64_t max)
{
	struct agg_row r;

	memset(&r, 0, sizeof(r));
	snprintf(r.method, sizeof(r.method), "%s", method);
	snprintf(r.route, sizeof(r.route), "%s", route);
	r.count = count;
	r.rps = rps;
	r.pct_5xx = p5;
	r.pct_4xx = p4;
	r.p50_ns = p50;
	r.p95_ns = p95;
	r.p99_ns = p99;
	r.max_ns = max;
	for (int i = 0; i < AGG_SPARK; i++)
		r.spark[i] = count > 0 ? (i * 7 % 11) * 1.5 : 0;
	return r;
}

static void fixture(struct agg_snapshot *s)
{
	static struct agg_row rows[2];
	static struct agg_error errs[2] = {
		{ 1700003725123456789ULL, "POST", "/api/orders", 500, "ValueError", "" },
		{ 1700003720000000001ULL, "DELETE", "/x", 503, "", "" },
	};

	memset(s, 0, sizeof(*s));
	s->window = AGG_WINDOW_LONG;
	s->window_secs = 900;
	s->total = mkrow("", "(all)", 11106, 12.34, 1.5, 2.5, 1234 * 1000, 15600 * 1000, 245 * MS,
			 2500 * MS);
	rows[0] = mkrow("GET", "/api/users/<int:id>", 9000, 10.0, 0, 3.0, 850 * 1000, 1234 * 1000,
			12340 * 1000, 1200 * MS);
	rows[1] = mkrow("POST", odd_route, 2106, 2.34, 7.9, 0.5, 35 * MS, 120 * MS, 480 * MS,
			1750 * MS);
	s->rows = rows;
	s->nrows = 2;
	s->errors = errs;
	s->nerrors = 2;
	s->errors_total = 17;
}

static cJSON *parse(const struct agg_snapshot *s, int window_minutes, char **text)
{
	cJSON *doc;

	*text = stats_json_render(s, window_minutes);
	cr_assert_not_null(*text);
	doc = cJSON_Parse(*text);
	cr_assert_not_null(doc, "not JSON: %s", *text);
	cr_assert(cJSON_IsObject(doc));
	return doc;
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert(cJSON_IsNumber(v), "\"%s\" is missing or not a number", key);
	return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert(cJSON_IsString(v), "\"%s\" is missing or not a string", key);
	return v->valuestring;
}

/* Latencies in ms, shares in %, rates in req/s, the spark as given. */
static void check_stats(const cJSON *o, const struct agg_row *r, const char *what)
{
	const cJSON *spark = cJSON_GetObjectItemCaseSensitive(o, "spark");

	cr_assert_eq(num(o, "count"), r->count, "%s count", what);
	cr_assert_eq(num(o, "rps"), r->rps, "%s rps", what);
	cr_assert_eq(num(o, "error_pct"), r->pct_5xx, "%s error_pct", what);
	cr_assert_eq(num(o, "pct_5xx"), r->pct_5xx, "%s pct_5xx", what);
	cr_assert_eq(num(o, "pct_4xx"), r->pct_4xx, "%s pct_4xx", what);
	cr_assert_eq(num(o, "p50"), r->p50_ns / 1e6, "%s p50 %g ms", what, num(o, "p50"));
	cr_assert_eq(num(o, "p95"), r->p95_ns / 1e6, "%s p95", what);
	cr_assert_eq(num(o, "p99"), r->p99_ns / 1e6, "%s p99", what);
	cr_assert_eq(num(o, "max"), r->max_ns / 1e6, "%s max", what);
	cr_assert(cJSON_IsArray(spark), "%s spark is not an array", what);
	cr_assert_eq(cJSON_GetArraySize(spark), AGG_SPARK, "%s spark has %d values", what,
		     cJSON_GetArraySize(spark));
	for (int i = 0; i < AGG_SPARK; i++) {
		const cJSON *v = cJSON_GetArrayItem(spark, i);

		cr_assert(cJSON_IsNumber(v));
		cr_assert_eq(v->valuedouble, r->spark[i], "%s spark[%d]", what, i);
	}
}

Test(stats_json, profilis_metrics_superset)
{
	struct agg_snapshot s;
	char *text;
	cJSON *doc;

	fixture(&s);
	doc = parse(&s, 15, &text);
	/* The fields a Profilis metrics.json reader looks for, at the top level. */
	cr_assert_eq(num(doc, "rps"), 12.34);
	cr_assert_eq(num(doc, "error_pct"), 1.5);
	cr_assert_eq(num(doc, "p50"), 1.234);
	cr_assert_eq(num(doc, "p95"), 15.6);
	cr_assert_eq(num(doc, "p99"), 245);
	check_stats(doc, &s.total, "total");
	cr_assert_str_eq(str(doc, "window"), "long");
	cr_assert_eq(num(doc, "window_minutes"), 15);
	cr_assert_eq(num(doc, "window_secs"), 900);
	cr_assert_eq(num(doc, "errors_total"), 17);
	cJSON_Delete(doc);
	free(text);
}

Test(stats_json, one_object_per_route)
{
	struct agg_snapshot s;
	const cJSON *routes, *r;
	char *text;
	cJSON *doc;

	fixture(&s);
	doc = parse(&s, 15, &text);
	routes = cJSON_GetObjectItemCaseSensitive(doc, "routes");
	cr_assert(cJSON_IsArray(routes));
	cr_assert_eq(cJSON_GetArraySize(routes), 2);
	r = cJSON_GetArrayItem(routes, 0);
	cr_assert_str_eq(str(r, "method"), "GET");
	cr_assert_str_eq(str(r, "route"), "/api/users/<int:id>");
	check_stats(r, &s.rows[0], "GET /api/users");
	r = cJSON_GetArrayItem(routes, 1);
	cr_assert_str_eq(str(r, "method"), "POST");
	cr_assert_str_eq(str(r, "route"), odd_route, "UTF-8, quotes and backslashes round-trip");
	check_stats(r, &s.rows[1], "POST odd");
	cJSON_Delete(doc);
	free(text);
}

Test(stats_json, errors_in_profilis_shape)
{
	struct agg_snapshot s;
	const cJSON *errors, *e;
	char *text;
	cJSON *doc;

	fixture(&s);
	doc = parse(&s, 15, &text);
	errors = cJSON_GetObjectItemCaseSensitive(doc, "errors");
	cr_assert(cJSON_IsArray(errors));
	cr_assert_eq(cJSON_GetArraySize(errors), 2);
	e = cJSON_GetArrayItem(errors, 0);
	cr_assert_str_eq(str(e, "method"), "POST");
	cr_assert_str_eq(str(e, "route"), "/api/orders");
	cr_assert_eq(num(e, "status"), 500);
	cr_assert_str_eq(str(e, "exception_type"), "ValueError");
	cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "ts_ns")));
	e = cJSON_GetArrayItem(errors, 1);
	cr_assert_str_eq(str(e, "method"), "DELETE");
	cr_assert_eq(num(e, "status"), 503);
	cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(e, "exception_type")),
		  "no exception: exception_type is null");
	cJSON_Delete(doc);
	free(text);
}

/* A nanosecond timestamp is an integer and must survive to the last digit,
 * as time_unix_ns does in the JSONL export; a double keeps only ~16 digits. */
Test(stats_json, error_ts_ns_is_exact)
{
	struct agg_snapshot s;
	char *text;

	fixture(&s);
	text = stats_json_render(&s, 15);
	cr_assert_not_null(text);
	cr_expect_not_null(strstr(text, "\"ts_ns\":1700003725123456789,"),
			   "ts_ns 1700003725123456789 not written exactly: %s",
			   strstr(text, "\"ts_ns\""));
	cr_expect_not_null(strstr(text, "\"ts_ns\":1700003720000000001,"),
			   "ts_ns 1700003720000000001 not written exactly");
	free(text);
}

Test(stats_json, now_window_and_empty_snapshot)
{
	struct agg_snapshot s = { 0 };
	const cJSON *spark;
	char *text;
	cJSON *doc;

	s.window = AGG_WINDOW_NOW;
	s.window_secs = 1;
	snprintf(s.total.route, sizeof(s.total.route), "(all)");
	doc = parse(&s, 5, &text);
	cr_assert_str_eq(str(doc, "window"), "10s");
	cr_assert_eq(num(doc, "window_minutes"), 5);
	cr_assert_eq(num(doc, "rps"), 0);
	cr_assert_eq(num(doc, "p50"), 0);
	cr_assert_eq(num(doc, "p99"), 0);
	spark = cJSON_GetObjectItemCaseSensitive(doc, "spark");
	cr_assert_eq(cJSON_GetArraySize(spark), AGG_SPARK);
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "routes")), 0);
	cr_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "errors")));
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "errors")), 0);
	cr_assert_eq(num(doc, "errors_total"), 0);
	cJSON_Delete(doc);
	free(text);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_geq(getdelim(&buf, &cap, 0, f), 0);
	fclose(f);
	return buf;
}

/* Names in dir, one "name\n" each, sorted. */
static void list_dir(const char *dir, char *out, size_t len)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort);
	size_t o = 0;

	cr_assert_geq(n, 0);
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, ".."))
			o += snprintf(out + o, len - o, "%s\n", ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
}

static void rm_dir(const char *dir)
{
	struct dirent **ents;
	char p[512];
	int n = scandir(dir, &ents, NULL, NULL);

	for (int i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", dir, ents[i]->d_name);
			if (unlink(p) != 0)
				rmdir(p);
		}
		free(ents[i]);
	}
	free(ents);
	rmdir(dir);
}

Test(stats_json, write_replaces_whole_file)
{
	char dir[] = "/tmp/pbpf-statsjson-XXXXXX", path[256], names[512];
	struct agg_snapshot s;
	char *text, *want;
	cJSON *doc;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/stats.json", dir);
	fixture(&s);
	cr_assert_eq(stats_json_write(path, &s, 15), 0);
	text = slurp(path);
	want = stats_json_render(&s, 15);
	cr_assert_eq(strlen(text), strlen(want) + 1);
	cr_assert_eq(strncmp(text, want, strlen(want)), 0, "the file is not the document");
	cr_assert_eq(text[strlen(want)], '\n', "the document ends with a newline");
	doc = cJSON_Parse(text);
	cr_assert_not_null(doc);
	cr_assert_eq(num(doc, "rps"), 12.34);
	cJSON_Delete(doc);
	free(text);
	free(want);
	list_dir(dir, names, sizeof(names));
	cr_assert_str_eq(names, "stats.json\n", "left behind: %s", names);

	/* A second write replaces the first completely. */
	s.window = AGG_WINDOW_NOW;
	s.nrows = 0;
	s.nerrors = 0;
	cr_assert_eq(stats_json_write(path, &s, 15), 0);
	text = slurp(path);
	doc = cJSON_Parse(text);
	cr_assert_not_null(doc, "not JSON after rewrite: %s", text);
	cr_assert_str_eq(str(doc, "window"), "10s");
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "routes")), 0);
	cJSON_Delete(doc);
	free(text);
	list_dir(dir, names, sizeof(names));
	cr_assert_str_eq(names, "stats.json\n", "left behind: %s", names);
	rm_dir(dir);
}

Test(stats_json, write_failures_are_negative_errno_and_leave_nothing)
{
	char dir[] = "/tmp/pbpf-statsjson-XXXXXX", path[256], names[512];
	struct agg_snapshot s;

	cr_assert_not_null(mkdtemp(dir));
	fixture(&s);
	snprintf(path, sizeof(path), "%s/missing/stats.json", dir);
	cr_assert_eq(stats_json_write(path, &s, 15), -ENOENT);
	list_dir(dir, names, sizeof(names));
	cr_assert_str_eq(names, "", "created: %s", names);

	/* The target is a directory: rename fails, the temporary file goes. */
	snprintf(path, sizeof(path), "%s/sub", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	cr_assert_eq(stats_json_write(path, &s, 15), -EISDIR);
	list_dir(dir, names, sizeof(names));
	cr_assert_str_eq(names, "sub\n", "left behind: %s", names);
	rm_dir(dir);
}

/* --- Several services (a node agent) --- */

/* The fixture's rows in two services, plus per-service totals, one of them
 * an unknown service. */
static void fixture_services(struct agg_snapshot *s)
{
	static struct agg_row svcs[3];

	fixture(s);
	snprintf(s->rows[0].service, sizeof(s->rows[0].service), "alpha");
	snprintf(s->rows[1].service, sizeof(s->rows[1].service), "beta");
	snprintf(s->errors[0].service, sizeof(s->errors[0].service), "beta");
	svcs[0] = mkrow("", "(all)", 9000, 10.0, 0, 3.0, 850 * 1000, 1234 * 1000, 12340 * 1000,
			1200 * MS);
	svcs[1] = mkrow("", "(all)", 2100, 2.33, 7.9, 0.5, 35 * MS, 120 * MS, 480 * MS, 1750 * MS);
	svcs[2] = mkrow("", "(all)", 6, 0.01, 50, 0, 2 * MS, 3 * MS, 3 * MS, 3 * MS);
	snprintf(svcs[0].service, sizeof(svcs[0].service), "alpha");
	snprintf(svcs[1].service, sizeof(svcs[1].service), "beta");
	s->services = svcs;
	s->nservices = 3;
}

/* The keys of an object, sorted, comma-separated. */
static void keys_of(const cJSON *o, char *out, size_t len)
{
	const char *k[32];
	size_t n = 0, off = 0;
	const cJSON *c;

	cJSON_ArrayForEach(c, o)
	{
		cr_assert_lt(n, 32);
		k[n++] = c->string;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(k[j - 1], k[j]) > 0; j--) {
			const char *t = k[j];

			k[j] = k[j - 1];
			k[j - 1] = t;
		}
	out[0] = 0;
	for (size_t i = 0; i < n; i++)
		off += snprintf(out + off, len - off, "%s%s", i ? "," : "", k[i]);
}

Test(stats_json, one_object_per_service)
{
	static const char *const names[3] = { "alpha", "beta", NULL };
	struct agg_snapshot s;
	const cJSON *services, *o, *name;
	char *text, keys[512];
	cJSON *doc;

	fixture_services(&s);
	doc = parse(&s, 15, &text);
	services = cJSON_GetObjectItemCaseSensitive(doc, "services");
	cr_assert(cJSON_IsArray(services), "no \"services\" array: %s", text);
	cr_assert_eq(cJSON_GetArraySize(services), 3);
	for (int i = 0; i < 3; i++) {
		o = cJSON_GetArrayItem(services, i);
		name = cJSON_GetObjectItemCaseSensitive(o, "service");
		if (names[i])
			cr_assert_str_eq(str(o, "service"), names[i]);
		else
			cr_assert(cJSON_IsNull(name), "an unknown service is null");
		check_stats(o, &s.services[i], names[i] ? names[i] : "(unknown)");
		/* The total's statistics and the name: nothing of a route. */
		keys_of(o, keys, sizeof(keys));
		cr_assert_str_eq(keys,
				 "count,error_pct,max,p50,p95,p99,pct_4xx,pct_5xx,rps,service,"
				 "spark");
	}
	cr_assert_eq(num(cJSON_GetArrayItem(services, 1), "pct_5xx"), 7.9);
	cr_assert_eq(num(cJSON_GetArrayItem(services, 1), "p99"), 480);
	cJSON_Delete(doc);
	free(text);
}

/* Every route and error names its service (null when unknown); the
 * document keeps every key it had, with "services" added. */
Test(stats_json, routes_and_errors_name_their_service)
{
	struct agg_snapshot s;
	const cJSON *routes, *errors;
	char *text, keys[512];
	cJSON *doc;

	fixture_services(&s);
	doc = parse(&s, 15, &text);
	routes = cJSON_GetObjectItemCaseSensitive(doc, "routes");
	cr_assert_str_eq(str(cJSON_GetArrayItem(routes, 0), "service"), "alpha");
	cr_assert_str_eq(str(cJSON_GetArrayItem(routes, 0), "route"), "/api/users/<int:id>");
	cr_assert_str_eq(str(cJSON_GetArrayItem(routes, 1), "service"), "beta");
	check_stats(cJSON_GetArrayItem(routes, 1), &s.rows[1], "beta POST");
	keys_of(cJSON_GetArrayItem(routes, 0), keys, sizeof(keys));
	cr_assert_str_eq(keys, "count,error_pct,max,method,p50,p95,p99,pct_4xx,pct_5xx,route,rps,"
			       "service,spark");
	errors = cJSON_GetObjectItemCaseSensitive(doc, "errors");
	cr_assert_str_eq(str(cJSON_GetArrayItem(errors, 0), "service"), "beta");
	cr_assert(cJSON_IsNull(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errors, 1), "service")));
	keys_of(cJSON_GetArrayItem(errors, 0), keys, sizeof(keys));
	cr_assert_str_eq(keys, "exception_type,method,route,service,status,ts_ns");
	keys_of(doc, keys, sizeof(keys));
	cr_assert_str_eq(keys,
			 "count,error_pct,errors,errors_total,max,p50,p95,p99,pct_4xx,"
			 "pct_5xx,routes,rps,services,spark,window,window_minutes,window_secs");
	cJSON_Delete(doc);
	free(text);
	/* With no service known, the route's key is there, null. */
	fixture(&s);
	doc = parse(&s, 15, &text);
	routes = cJSON_GetObjectItemCaseSensitive(doc, "routes");
	cr_assert(cJSON_IsNull(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(routes, 0), "service")));
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "services")), 0);
	cJSON_Delete(doc);
	free(text);
}
