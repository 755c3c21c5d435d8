// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Request events to request records.  Everything that came from the target's
 * memory is treated as untrusted: lengths are clamped to what BPF copied,
 * kinds other than 1/2/4 are rejected, and invalid text becomes U+FFFD.
 */
#include <errno.h>
#include <string.h>
#include "request.h"

#include "traceparent.h"

_Static_assert(sizeof(((struct request_record *)0)->route) ==
		       sizeof(((struct request_record *)0)->path),
	       "route falls back to path");

static size_t put_utf8(uint32_t cp, char *out, size_t room)
{
	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd; /* lone surrogates (surrogateescape) are not text */
	if (cp > 0x10ffff)
		cp = 0xfffd;
	if (cp < 0x80 && room >= 1) {
		out[0] = cp;
		return 1;
	}
	if (cp < 0x800 && room >= 2) {
		out[0] = 0xc0 | (cp >> 6);
		out[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000 && cp >= 0x800 && room >= 3) {
		out[0] = 0xe0 | (cp >> 12);
		out[1] = 0x80 | ((cp >> 6) & 0x3f);
		out[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	if (cp >= 0x10000 && room >= 4) {
		out[0] = 0xf0 | (cp >> 18);
		out[1] = 0x80 | ((cp >> 12) & 0x3f);
		out[2] = 0x80 | ((cp >> 6) & 0x3f);
		out[3] = 0x80 | (cp & 0x3f);
		return 4;
	}
	return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_valid_seq(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

static size_t bytes_to_utf8(const unsigned char *b, size_t n, char *out, size_t out_size)
{
	size_t o = 0, i = 0;

	while (i < n) {
		size_t len = utf8_valid_seq(b + i, n - i), w;

		if (len) {
			if (o + len >= out_size)
				break;
			memcpy(out + o, b + i, len);
			o += len;
			i += len;
			continue;
		}
		w = put_utf8(0xfffd, out + o, out_size - o - 1);
		if (!w)
			break;
		o += w;
		i++;
	}
	out[o] = 0;
	return o;
}

size_t pystr_to_utf8(const struct pbpf_str_hdr *hdr, const char *data, size_t data_size,
		     bool wsgi_bytes, char *out, size_t out_size)
{
	size_t units, o = 0, copied = hdr->copied;
	unsigned int kind = hdr->kind;

	if (out_size == 0)
		return 0;
	out[0] = 0;
	if (kind != 1 && kind != 2 && kind != 4)
		return 0;
	if (copied > data_size)
		copied = data_size;
	units = copied / kind;
	if (kind == 1 && wsgi_bytes)
		return bytes_to_utf8((const unsigned char *)data, units, out, out_size);
	for (size_t i = 0; i < units; i++) {
		uint32_t cp = 0;
		size_t w;

		memcpy(&cp, data + i * kind, kind); /* little-endian code unit */
		w = put_utf8(cp, out + o, out_size - o - 1);
		if (!w)
			break;
		o += w;
	}
	out[o] = 0;
	return o;
}

static void decode_ids(const struct pbpf_req_event *e, struct request_record *r)
{
	char header[PBPF_TRACEPARENT_MAX * 4 + 1];
	size_t n;

	r->parent_span_id[0] = 0;
	if (e->flags & PBPF_F_HAVE_TRACEPARENT) {
		n = pystr_to_utf8(&e->traceparent_hdr, e->traceparent, sizeof(e->traceparent), true,
				  header, sizeof(header));
		if (traceparent_parse(header, n, r->trace_id, r->parent_span_id) == 0)
			goto span;
	}
	trace_new_trace_id(r->trace_id);
span:
	trace_new_span_id(r->span_id);
}

/* How many of the n bytes at b form whole UTF-8 sequences: a WSGI path cut
 * inside a character loses that character, not gains a U+FFFD. */
static size_t utf8_whole(const unsigned char *b, size_t n)
{
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned char c = b[n - back];
		size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: look further back */
		return need > back ? n - back : n;
	}
	return n;
}

/*
 * One text field: UTF-8 into `out`, its byte length into `*len`, and whether
 * the target's string was longer than what BPF copied (from the str header's
 * length, never from a full buffer).
 */
static void text_field(const struct pbpf_str_hdr *hdr, const char *data, size_t data_size,
		       bool wsgi_bytes, char *out, size_t out_size, uint32_t *len, bool *truncated)
{
	size_t copied = hdr->copied < data_size ? hdr->copied : data_size;

	*truncated = (uint64_t)hdr->len * hdr->kind > copied;
	if (*truncated && wsgi_bytes && hdr->kind == 1)
		data_size = utf8_whole((const unsigned char *)data, copied);
	*len = pystr_to_utf8(hdr, data, data_size, wsgi_bytes, out, out_size);
}

#define TEXT(e, r, f, field, wsgi)                                                                \
	text_field(&(e)->f##_hdr, (e)->f, sizeof((e)->f), (wsgi), (r)->field, sizeof((r)->field), \
		   &(r)->field##_len, &(r)->field##_truncated)

/* type(error).__name__: tp_name is a UTF-8 C string; BPF read one byte more
 * than it keeps, so a longer name is known to be cut. */
static void exception_field(const struct pbpf_req_event *e, struct request_record *r)
{
	size_t n = strnlen(e->exc_type, sizeof(e->exc_type));
	struct pbpf_str_hdr h = { .kind = 1 };

	r->exception_type_truncated = n > PBPF_EXC_MAX;
	if (r->exception_type_truncated)
		n = utf8_whole((const unsigned char *)e->exc_type, PBPF_EXC_MAX);
	h.copied = h.len = n;
	r->exception_type_len = pystr_to_utf8(&h, e->exc_type, n, true, r->exception_type,
					      sizeof(r->exception_type));
}

/* The route: the rule's template; the raw path only when no rule matched
 * (a matched rule whose template cannot be read is null, not the path). */
static void route_field(const struct pbpf_req_event *e, struct request_record *r)
{
	if (e->flags & PBPF_F_HAVE_RULE) {
		r->has_route = r->route_matched = true;
		TEXT(e, r, route, route, false);
	} else if (r->has_path && !(e->flags & PBPF_F_RULE_OBJ)) {
		r->has_route = true;
		memcpy(r->route, r->path, r->path_len + 1);
		r->route_len = r->path_len;
		r->route_truncated = r->path_truncated;
	}
}

int request_decode(const struct pbpf_req_event *e, int64_t realtime_offset_ns,
		   struct request_record *r)
{
	if (e->kind != PBPF_EV_REQUEST)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->ts_ns = e->end_ns;
	r->sample_rate = 1.0; /* the pipeline sets the configured rate */
	r->dur_ns = e->end_ns >= e->start_ns ? e->end_ns - e->start_ns : 0;
	r->time_unix_ns = e->end_ns + realtime_offset_ns;
	r->pid = e->pid;
	r->tid = e->tid;
	r->status = (e->flags & PBPF_F_HAVE_STATUS) && e->status >= 0 && e->status < 1000
			    ? (int)e->status
			    : -1;
	r->error = e->flags & PBPF_F_ERROR;
	r->has_method = e->flags & PBPF_F_HAVE_METHOD;
	if (r->has_method)
		TEXT(e, r, method, method, true);
	r->has_path = e->flags & PBPF_F_HAVE_PATH;
	if (r->has_path)
		TEXT(e, r, path, path, true);
	route_field(e, r);
	r->has_endpoint = e->flags & PBPF_F_HAVE_ENDPOINT;
	if (r->has_endpoint)
		TEXT(e, r, endpoint, endpoint, false);
	r->has_exception_type = (e->flags & PBPF_F_HAVE_EXC_TYPE) && e->exc_type[0];
	if (r->has_exception_type)
		exception_field(e, r);
	decode_ids(e, r);
	return 0;
}
