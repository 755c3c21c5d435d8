/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --stats-json: a snapshot as a JSON document, a superset of Profilis's
 * metrics.json (rps, error_pct, p50, p95, spark) with p99, per-route rows
 * (each with its "service", null when unknown), per-service totals
 * ("services": the total's fields and the service's name) and the recent
 * errors in the shape of Profilis's errors.json (plus "service").  Latencies are in
 * milliseconds, as in Profilis.  The file is replaced atomically.
 */
#ifndef PROFILIS_STATS_JSON_H
#define PROFILIS_STATS_JSON_H

#include "aggregator.h"

/* The document, malloc'ed; NULL on allocation failure. */
char *stats_json_render(const struct agg_snapshot *s, int window_minutes);
/* Profilis's errors.json: {"errors": [...], "errors_total": N}, the
 * entries exactly as in the full document; NULL on allocation failure. */
char *stats_json_render_errors(const struct agg_snapshot *s);
/* Writes it to path via a new temporary file renamed over path (safefile.c:
 * a symlink or non-regular file at path is refused); 0 or -errno. */
int stats_json_write(const char *path, const struct agg_snapshot *s, int window_minutes);

#endif
