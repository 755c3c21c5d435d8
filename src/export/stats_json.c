// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Snapshot to JSON with cJSON.  A reader polling the file sees either the
 * previous document or the new one, never a mix: safefile.c writes a new
 * temporary file with a random name, fsyncs it and renames it over the
 * final name, which must be absent or a regular file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "safefile.h"
#include "stats_json.h"

static double ms(uint64_t ns)
{
	return ns / 1e6;
}

/* "service": the name, or null when unknown. */
static void add_service(cJSON *o, const char *service)
{
	if (service[0])
		cJSON_AddStringToObject(o, "service", service);
	else
		cJSON_AddNullToObject(o, "service");
}

static cJSON *row_json(const struct agg_row *r, bool with_service)
{
	cJSON *o = cJSON_CreateObject(), *spark;

	if (with_service)
		add_service(o, r->service);
	spark = cJSON_AddArrayToObject(o, "spark");

	if (r->method[0])
		cJSON_AddStringToObject(o, "method", r->method);
	if (r->route[0] && r->method[0])
		cJSON_AddStringToObject(o, "route", r->route);
	cJSON_AddNumberToObject(o, "count", r->count);
	cJSON_AddNumberToObject(o, "rps", r->rps);
	cJSON_AddNumberToObject(o, "error_pct", r->pct_5xx);
	cJSON_AddNumberToObject(o, "pct_5xx", r->pct_5xx);
	cJSON_AddNumberToObject(o, "pct_4xx", r->pct_4xx);
	cJSON_AddNumberToObject(o, "p50", ms(r->p50_ns));
	cJSON_AddNumberToObject(o, "p95", ms(r->p95_ns));
	cJSON_AddNumberToObject(o, "p99", ms(r->p99_ns));
	cJSON_AddNumberToObject(o, "max", ms(r->max_ns));
	for (int i = 0; i < AGG_SPARK; i++)
		cJSON_AddItemToArray(spark, cJSON_CreateNumber(r->spark[i]));
	return o;
}

/* The recent errors, in the shape of Profilis's errors.json entries. */
static cJSON *errors_json(const struct agg_snapshot *s)
{
	cJSON *errors = cJSON_CreateArray();

	for (size_t i = 0; errors && i < s->nerrors; i++) {
		const struct agg_error *e = &s->errors[i];
		cJSON *o = cJSON_CreateObject();

		char ts[32];

		/* A double cannot hold 19 digits: write the integer as it is. */
		snprintf(ts, sizeof(ts), "%llu", (unsigned long long)e->time_unix_ns);
		cJSON_AddRawToObject(o, "ts_ns", ts);
		cJSON_AddStringToObject(o, "method", e->method);
		cJSON_AddStringToObject(o, "route", e->route);
		cJSON_AddNumberToObject(o, "status", e->status);
		if (e->exception_type[0])
			cJSON_AddStringToObject(o, "exception_type", e->exception_type);
		else
			cJSON_AddNullToObject(o, "exception_type");
		add_service(o, e->service);
		cJSON_AddItemToArray(errors, o);
	}
	return errors;
}

static char *print_free(cJSON *doc)
{
	char *text = cJSON_PrintUnformatted(doc);

	cJSON_Delete(doc);
	return text;
}

char *stats_json_render(const struct agg_snapshot *s, int window_minutes)
{
	cJSON *doc = row_json(&s->total, false), *routes, *services;

	if (!doc)
		return NULL;
	cJSON_AddStringToObject(doc, "window", s->window == AGG_WINDOW_NOW ? "10s" : "long");
	cJSON_AddNumberToObject(doc, "window_minutes", window_minutes);
	cJSON_AddNumberToObject(doc, "window_secs", s->window_secs);
	routes = cJSON_AddArrayToObject(doc, "routes");
	for (size_t i = 0; i < s->nrows; i++)
		cJSON_AddItemToArray(routes, row_json(&s->rows[i], true));
	services = cJSON_AddArrayToObject(doc, "services");
	for (size_t i = 0; i < s->nservices; i++)
		cJSON_AddItemToArray(services, row_json(&s->services[i], true));
	cJSON_AddNumberToObject(doc, "errors_total", s->errors_total);
	cJSON_AddItemToObject(doc, "errors", errors_json(s));
	return print_free(doc);
}

char *stats_json_render_errors(const struct agg_snapshot *s)
{
	cJSON *doc = cJSON_CreateObject();

	if (!doc)
		return NULL;
	cJSON_AddItemToObject(doc, "errors", errors_json(s));
	cJSON_AddNumberToObject(doc, "errors_total", s->errors_total);
	return print_free(doc);
}

int stats_json_write(const char *path, const struct agg_snapshot *s, int window_minutes)
{
	struct safefile_out out;
	char *text = stats_json_render(s, window_minutes);
	int err;

	if (!text)
		return -ENOMEM;
	err = safefile_begin(&out, path);
	if (!err) {
		fputs(text, out.f);
		fputc('\n', out.f);
		err = safefile_commit(&out);
	}
	free(text);
	return err;
}
