/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The Prometheus text exposition format 0.0.4, piece by piece: a growable
 * text buffer, label values escaped as the format asks (backslash, double
 * quote and line feed), sample values as Go's parser reads them, the
 * HELP/TYPE heading of a family, and the agent's own health families.
 * Pure, so the unit tests check every byte.
 */
#ifndef PROFILIS_PROM_TEXT_H
#define PROFILIS_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Text that grows; after a failed allocation `oom` stays set and further
 * appends do nothing, so a caller checks once at the end. */
struct prom_buf {
	char *s;
	size_t len, cap;
	bool oom;
};

void prom_buf_put(struct prom_buf *b, const char *s, size_t n);
void prom_buf_puts(struct prom_buf *b, const char *s);
void prom_buf_printf(struct prom_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void prom_buf_free(struct prom_buf *b);

/* Appends s escaped for a label value: \ -> \\, " -> \", LF -> \n. */
void prom_escape_label(struct prom_buf *b, const char *s);
/* Appends `name="value"`, preceded by ',' unless first. */
void prom_label(struct prom_buf *b, const char *name, const char *value, bool first);
/* A sample value as text: integers without a fraction (exact below 2^53),
 * others in the fewest of 15..17 significant digits that read back
 * exactly, and +Inf, -Inf, NaN. */
void prom_format_value(double v, char out[32]);
/* "# HELP name help\n# TYPE name type\n" (help escaped: \ and LF). */
void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help);

/* The agent's health as main.c reads it from the loader and collector. */
struct prom_health {
	const char *version; /* build_info's version label */
	double start_time_s; /* unix time of attach */
	uint64_t events;     /* request events received from the kernel */
	/* Records lost, by reason (the exit summary's). */
	uint64_t lost_ringbuf, lost_inflight, lost_queue, lost_write, malformed;
	uint64_t stack_samples_lost;
	uint64_t queue_depth, queue_size;
	int traced_processes;
	/* OTLP spans (--otlp-endpoint; otlp false: none of these is shown). */
	bool otlp;
	uint64_t otlp_sent, otlp_queue_full, otlp_rejected, otlp_gave_up, otlp_at_exit,
		otlp_unencodable;
};

/* The exporter's own counters (prom.h). */
struct prom_stats {
	uint64_t series;  /* now */
	uint64_t dropped; /* requests not counted: the series cap was reached */
	uint64_t expired; /* series removed: their process was gone */
	size_t bytes;	  /* memory held by the series */
};

/* The profilis_bpf_* families. */
void prom_render_health(struct prom_buf *b, const struct prom_health *h,
			const struct prom_stats *st);

#endif
