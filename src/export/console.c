// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Records on stdout.  Compact output is the JSONL line itself; pretty output
 * is the same encoder's indented layout, so both always carry the same
 * fields.  Request records are encoded straight into the output buffer (no
 * tree, no allocation, no copy); the rare other records (PROFILE) are
 * checked with cJSON and re-indented.  Output is buffered and written in
 * whole records.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "console.h"
#include "jsonl.h"

#define CBUF_SIZE (128 * 1024)

struct console_exporter {
	struct console_opts o;
	char *buf;
	size_t len;
	uint64_t pending;	/* request records buffered */
	uint64_t pending_other; /* other records buffered */
	bool closed;
	struct console_stats st;
};

/* Re-indents the compact text itself: parsing would turn 19-digit
 * nanosecond times into doubles and lose digits. */
char *console_pretty(const char *line)
{
	size_t n = strlen(line), o = 0, cap = n * 4 + 64;
	char *out = malloc(cap);
	bool in_str = false, esc = false;
	int depth = 0;

	cJSON *check = cJSON_Parse(line);

	if (!check || !out) {
		cJSON_Delete(check);
		free(out);
		return NULL; /* not one valid JSON document */
	}
	cJSON_Delete(check);
	for (size_t i = 0; i < n && o + 64 < cap; i++) {
		char c = line[i];

		if (in_str) {
			out[o++] = c;
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		switch (c) {
		case '"':
			in_str = true;
			out[o++] = c;
			break;
		case '{':
		case '[':
			out[o++] = c;
			out[o++] = '\n';
			depth++;
			for (int d = 0; d < depth * 2; d++)
				out[o++] = ' ';
			break;
		case '}':
		case ']':
			out[o++] = '\n';
			depth--;
			for (int d = 0; d < depth * 2; d++)
				out[o++] = ' ';
			out[o++] = c;
			break;
		case ',':
			out[o++] = ',';
			out[o++] = '\n';
			for (int d = 0; d < depth * 2; d++)
				out[o++] = ' ';
			break;
		case ':':
			out[o++] = ':';
			out[o++] = ' ';
			break;
		case '\n': break; /* the caller adds its own */
		default: out[o++] = c;
		}
	}
	out[o] = 0;
	return out;
}

struct console_exporter *console__new(const struct console_opts *o)
{
	struct console_exporter *x = calloc(1, sizeof(*x));

	if (!x || !(x->buf = malloc(CBUF_SIZE))) {
		free(x);
		errno = ENOMEM;
		return NULL;
	}
	x->o = *o;
	return x;
}

int console__flush(struct console_exporter *x)
{
	size_t off = 0;

	while (off < x->len && !x->closed) {
		ssize_t n = write(x->o.fd, x->buf + off, x->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			x->closed = n < 0 && errno == EPIPE;
			x->st.write_errors += x->pending;
			x->len = x->pending = x->pending_other = 0;
			return -(n < 0 ? errno : EIO);
		}
		off += n;
	}
	x->st.written += x->pending;
	x->len = x->pending = x->pending_other = 0;
	return 0;
}

static int append(struct console_exporter *x, const char *s, size_t n)
{
	if (x->len + n > CBUF_SIZE && console__flush(x) && x->closed)
		return -EPIPE; /* the reader is gone: this record is lost too */
	if (n > CBUF_SIZE)
		return -E2BIG;
	memcpy(x->buf + x->len, s, n);
	x->len += n;
	return 0;
}

/* Shows one encoded line; request records and other records are counted
 * apart, so the summary's "requests recorded" stays exact. */
static int show_line(struct console_exporter *x, const char *line, int n, bool request)
{
	char *pretty;
	int err;

	if (n < 0 || x->closed) {
		x->st.write_errors++;
		return n < 0 ? n : -EPIPE;
	}
	if (!x->o.pretty) {
		err = append(x, line, n);
	} else {
		pretty = console_pretty(line);
		if (!pretty) {
			x->st.write_errors++;
			return -EINVAL;
		}
		err = append(x, pretty, strlen(pretty));
		if (!err)
			err = append(x, "\n", 1);
		free(pretty);
	}
	if (err)
		x->st.write_errors++;
	else if (request)
		x->pending++;
	else
		x->pending_other++;
	return err;
}

/* Room a request record always finds in the buffer: its longest line, in
 * either layout (the pretty one adds a newline and indent to each field). */
#define RECORD_ROOM (JSONL_LINE_MAX + 1024)
_Static_assert(RECORD_ROOM < CBUF_SIZE, "a record fits the buffer");

int console__push(struct console_exporter *x, const struct request_record *r)
{
	char *at;
	int n;

	if (!x->closed && CBUF_SIZE - x->len <= RECORD_ROOM)
		console__flush(x);
	if (x->closed) {
		x->st.write_errors++; /* the reader is gone: this record is lost too */
		return -EPIPE;
	}
	/* Lines past JSONL_LINE_MAX are refused, as in the JSONL file. */
	at = x->buf + x->len;
	n = x->o.pretty ? jsonl_encode_request_pretty(r, at, RECORD_ROOM)
			: jsonl_encode_request(r, at, JSONL_LINE_MAX);
	if (n < 0) {
		x->st.write_errors++;
		return n;
	}
	x->len += n;
	x->pending++;
	return 0;
}

int console__push_line(struct console_exporter *x, const char *line, int n)
{
	return show_line(x, line, n, false);
}

void console__stats(const struct console_exporter *x, struct console_stats *out)
{
	*out = x->st;
}

bool console__closed(const struct console_exporter *x)
{
	return x->closed;
}

void console__free(struct console_exporter *x)
{
	if (!x)
		return;
	console__flush(x);
	free(x->buf);
	free(x);
}
