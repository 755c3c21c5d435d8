// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Text exposition helpers.  Values follow what Prometheus's Go parser reads
 * (strconv.ParseFloat), in the shortest text that reads back exactly, and names what `promtool check metrics` accepts:
 * counters end in _total, units are base units (seconds), every family has
 * HELP and TYPE.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prom_text.h"

static bool grow(struct prom_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *s;

	if (b->oom)
		return false;
	while (cap < b->len + more + 1)
		cap *= 2;
	if (cap == b->cap)
		return true;
	s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void prom_buf_put(struct prom_buf *b, const char *s, size_t n)
{
	if (!grow(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

void prom_buf_puts(struct prom_buf *b, const char *s)
{
	prom_buf_put(b, s, strlen(s));
}

void prom_buf_printf(struct prom_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !grow(b, n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

void prom_buf_free(struct prom_buf *b)
{
	free(b->s);
	*b = (struct prom_buf){ 0 };
}

void prom_escape_label(struct prom_buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\'   ? "\\\\"
				  : *s == '"'  ? "\\\""
				  : *s == '\n' ? "\\n"
					       : NULL;

		if (!esc)
			continue;
		prom_buf_put(b, run, s - run);
		prom_buf_put(b, esc, 2);
		run = s + 1;
	}
	prom_buf_put(b, run, s - run);
}

void prom_label(struct prom_buf *b, const char *name, const char *value, bool first)
{
	if (!first)
		prom_buf_put(b, ",", 1);
	prom_buf_puts(b, name);
	prom_buf_put(b, "=\"", 2);
	prom_escape_label(b, value);
	prom_buf_put(b, "\"", 1);
}

void prom_format_value(double v, char out[32])
{
	if (isnan(v))
		snprintf(out, 32, "NaN");
	else if (isinf(v))
		snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		snprintf(out, 32, "%.0f", v);
	else
		for (int digits = 15; digits <= 17; digits++) {
			/* The shortest text that reads back as v. */
			snprintf(out, 32, "%.*g", digits, v);
			if (strtod(out, NULL) == v)
				break;
		}
}

void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	prom_buf_printf(b, "# HELP %s ", name);
	for (; *help; help++) {
		if (*help == '\\')
			prom_buf_put(b, "\\\\", 2);
		else if (*help == '\n')
			prom_buf_put(b, "\\n", 2);
		else
			prom_buf_put(b, help, 1);
	}
	prom_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* One unlabelled sample of its own family. */
static void single(struct prom_buf *b, const char *name, const char *type, const char *help,
		   double v)
{
	char num[32];

	prom_format_value(v, num);
	prom_family(b, name, type, help);
	prom_buf_printf(b, "%s %s\n", name, num);
}

static void reason(struct prom_buf *b, const char *family, const char *why, uint64_t n)
{
	prom_buf_printf(b, "%s{reason=\"%s\"} %llu\n", family, why, (unsigned long long)n);
}

static void lost(struct prom_buf *b, const char *why, uint64_t n)
{
	reason(b, "profilis_bpf_records_lost_total", why, n);
}

/* OTLP spans, sent and lost by reason, as the exit summary counts them. */
static void render_otlp(struct prom_buf *b, const struct prom_health *h)
{
	static const char *const family = "profilis_bpf_otlp_spans_lost_total";

	single(b, "profilis_bpf_otlp_spans_sent_total", "counter",
	       "OTLP spans the receiver accepted", (double)h->otlp_sent);
	prom_family(b, family, "counter",
		    "OTLP spans lost, by reason: sender queue full, refused by the receiver, "
		    "still failing after retries, unsent at exit, no memory to encode");
	reason(b, family, "queue_full", h->otlp_queue_full);
	reason(b, family, "rejected", h->otlp_rejected);
	reason(b, family, "gave_up", h->otlp_gave_up);
	reason(b, family, "at_exit", h->otlp_at_exit);
	reason(b, family, "unencodable", h->otlp_unencodable);
}

void prom_render_health(struct prom_buf *b, const struct prom_health *h,
			const struct prom_stats *st)
{
	prom_family(b, "profilis_bpf_build_info", "gauge",
		    "profilis-bpf build: its version in the label, value 1");
	prom_buf_puts(b, "profilis_bpf_build_info{");
	prom_label(b, "version", h->version ? h->version : "", true);
	prom_buf_puts(b, "} 1\n");
	single(b, "profilis_bpf_start_time_seconds", "gauge",
	       "When tracing began, in seconds since the Unix epoch", h->start_time_s);
	single(b, "profilis_bpf_events_total", "counter", "Request events received from the kernel",
	       (double)h->events);
	prom_family(b, "profilis_bpf_records_lost_total", "counter",
		    "Request records lost, by reason: kernel ring buffer full, in-flight table "
		    "full, userspace queue full (oldest dropped), failed writes, undecodable");
	lost(b, "ringbuf_full", h->lost_ringbuf);
	lost(b, "inflight_full", h->lost_inflight);
	lost(b, "queue_full", h->lost_queue);
	lost(b, "write_error", h->lost_write);
	lost(b, "malformed", h->malformed);
	single(b, "profilis_bpf_stack_samples_lost_total", "counter",
	       "Stack samples lost in a full kernel ring buffer", (double)h->stack_samples_lost);
	if (h->otlp)
		render_otlp(b, h);
	single(b, "profilis_bpf_queue_events", "gauge",
	       "Events waiting in the queue between the kernel and the exporters",
	       (double)h->queue_depth);
	single(b, "profilis_bpf_queue_capacity_events", "gauge", "The queue's size (--queue-size)",
	       (double)h->queue_size);
	single(b, "profilis_bpf_queue_fill_ratio", "gauge",
	       "Queue depth over its size, 0..1 (above 0.8 the exporters fall behind)",
	       h->queue_size ? (double)h->queue_depth / h->queue_size : 0);
	single(b, "profilis_bpf_traced_processes", "gauge", "Processes traced now",
	       h->traced_processes);
	single(b, "profilis_bpf_metrics_series", "gauge",
	       "Series of profilis_http_requests_total held now", (double)st->series);
	single(b, "profilis_bpf_metrics_dropped_total", "counter",
	       "Requests left out of the HTTP metrics because the series cap was reached",
	       (double)st->dropped);
	single(b, "profilis_bpf_metrics_series_expired_total", "counter",
	       "Series removed because their process had exited", (double)st->expired);
}
