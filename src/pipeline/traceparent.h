/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * W3C Trace Context: parsing an incoming `traceparent` header and making
 * fresh trace and span ids.
 */
#ifndef PROFILIS_TRACEPARENT_H
#define PROFILIS_TRACEPARENT_H

#include <stddef.h>
#include <stdint.h>

/* Parses "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>".  On success
 * returns 0 and copies the ids (lowercase, NUL terminated); -EINVAL for any
 * malformed or forbidden value (all-zero ids, version ff, upper case). */
int traceparent_parse(const char *s, size_t len, char trace_id[33], char parent_id[17]);

/* Fresh random ids, lowercase hex, never all zero. */
void traceparent_new_trace_id(char out[33]);
void traceparent_new_span_id(char out[17]);

/* Seeds the id generator (tests pass a fixed seed; 0 = from getrandom). */
void traceparent_seed(uint64_t seed);

#endif
