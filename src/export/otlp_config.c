// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Parsing of the OTLP exporter's settings: key=value lists with percent-
 * decoded values, and the traces URL.  Strict where a mistake would be
 * silent later (a header with a newline would split the request; a base URL
 * without a host would fail every POST) and lenient where the specification
 * is (blanks, empty members, a '%' that is not an escape).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "otlp_config.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* [s, e) trimmed and percent-decoded into a new string; *nul is set when
 * it decoded a NUL ("%00"), which a C string cannot carry. */
static char *decode(const char *s, const char *e, bool *nul)
{
	char *out, *o;

	while (s < e && isblank((unsigned char)*s))
		s++;
	while (e > s && isblank((unsigned char)e[-1]))
		e--;
	out = o = malloc(e - s + 1);
	if (!out)
		return NULL;
	for (; s < e; s++) {
		int hi, lo;

		if (*s == '%' && e - s >= 3 && (hi = hexval(s[1])) >= 0 &&
		    (lo = hexval(s[2])) >= 0) {
			*o++ = (char)(hi << 4 | lo);
			*nul |= !(hi | lo);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
	return out;
}

/* HTTP's token characters (RFC 9110 5.6.2). */
static bool http_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
			return false;
	return true;
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
 * without control characters: what a JSON string and a protobuf string take. */
static bool clean_utf8(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s, n, cp;

		if (c < 0x20 || c == 0x7f)
			return false;
		n = c < 0x80		 ? 0
		    : (c & 0xe0) == 0xc0 ? 1
		    : (c & 0xf0) == 0xe0 ? 2
		    : (c & 0xf8) == 0xf0 ? 3
					 : 9;
		if (n == 9)
			return false;
		cp = n ? c & (0x3f >> n) : c;
		for (unsigned i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

static int add(struct otlp_kvlist *l, char *key, char *value)
{
	struct otlp_kv *kv;

	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->kv[i].key, key) == 0) {
			free(l->kv[i].value);
			free(key);
			l->kv[i].value = value;
			return 0;
		}
	}
	kv = realloc(l->kv, (l->n + 1) * sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	l->kv = kv;
	l->kv[l->n++] = (struct otlp_kv){ key, value };
	return 0;
}

/* One "key=value" member, [s, e). */
static int parse_member(const char *what, const char *s, const char *e, bool header,
			struct otlp_kvlist *out, char *msg, size_t msglen)
{
	const char *eq = memchr(s, '=', e - s);
	char *key, *value;
	bool nul = false;

	if (!eq) {
		snprintf(msg, msglen, "%s: '%.*s' is not key=value", what, (int)(e - s), s);
		return -EINVAL;
	}
	key = decode(s, eq, &nul);
	value = decode(eq + 1, e, &nul);
	if (!key || !value) {
		free(key);
		free(value);
		return -ENOMEM;
	}
	if (nul || !*key || (header ? !http_token(key) : !clean_utf8((unsigned char *)key)) ||
	    !clean_utf8((unsigned char *)value)) {
		/* The value may be a secret (an Authorization header): never shown. */
		snprintf(msg, msglen,
			 "%s: the entry with key '%.100s' has %s; keys are %s, values are UTF-8 "
			 "without control characters (percent-encode them)",
			 what, key, !*key ? "an empty key" : "a bad key or value",
			 header ? "HTTP header names" : "UTF-8");
		free(key);
		free(value);
		return -EINVAL;
	}
	if (add(out, key, value)) {
		free(key);
		free(value);
		return -ENOMEM;
	}
	return 0;
}

int otlp_kv_parse(const char *what, const char *text, bool header, struct otlp_kvlist *out,
		  char *msg, size_t msglen)
{
	const char *s = text;

	while (s && *s) {
		const char *e = strchr(s, ',');
		const char *p;
		int err;

		if (!e)
			e = s + strlen(s);
		for (p = s; p < e && isblank((unsigned char)*p); p++)
			;
		if (p < e && (err = parse_member(what, s, e, header, out, msg, msglen)))
			return err;
		s = *e ? e + 1 : e;
	}
	return 0;
}

const char *otlp_kv_get(const struct otlp_kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->kv[i].key, key) == 0)
			return l->kv[i].value;
	return NULL;
}

void otlp_kv_free(struct otlp_kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->kv[i].key);
		free(l->kv[i].value);
	}
	free(l->kv);
	l->kv = NULL;
	l->n = 0;
}

/* Length of "http://" or "https://" at the start of url, else 0. */
static size_t scheme_len(const char *url)
{
	if (strncasecmp(url, "http://", 7) == 0)
		return 7;
	if (strncasecmp(url, "https://", 8) == 0)
		return 8;
	return 0;
}

int otlp_traces_url(const char *what, const char *url, bool append, char out[OTLP_URL_MAX],
		    char *msg, size_t msglen)
{
	size_t sl = scheme_len(url), auth, path_end, n = strlen(url);
	size_t path_len, tl = strlen(OTLP_TRACES_PATH);

	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f) {
			snprintf(msg, msglen, "%s: the URL has a blank or control character", what);
			return -EINVAL;
		}
	}
	auth = sl ? strcspn(url + sl, "/?#") : 0;
	if (!sl || !auth) {
		snprintf(msg, msglen,
			 "%s: '%.200s' is not an http:// or https:// URL with a host (e.g. "
			 "http://otel-collector:4318)",
			 what, url);
		return -EINVAL;
	}
	path_end = sl + auth + strcspn(url + sl + auth, "?#");
	path_len = path_end - sl - auth;
	if (append && !(path_len >= tl && memcmp(url + path_end - tl, OTLP_TRACES_PATH, tl) == 0)) {
		/* base[/] + /v1/traces + ?query */
		size_t keep = path_end;

		if (path_len && url[keep - 1] == '/')
			keep--;
		if (snprintf(out, OTLP_URL_MAX, "%.*s%s%s", (int)keep, url, OTLP_TRACES_PATH,
			     url + path_end) >= OTLP_URL_MAX)
			goto too_long;
		return 0;
	}
	if (snprintf(out, OTLP_URL_MAX, "%s", url) >= OTLP_URL_MAX)
		goto too_long;
	return 0;
too_long:
	snprintf(msg, msglen, "%s: the URL is longer than %d bytes", what, OTLP_URL_MAX - 1);
	return -EINVAL;
}

void otlp_url_redacted(const char *url, char *out, size_t outlen)
{
	size_t sl = scheme_len(url), auth = sl ? strcspn(url + sl, "/?#") : 0;
	const char *at = auth ? memchr(url + sl, '@', auth) : NULL;

	if (at)
		snprintf(out, outlen, "%.*s%s", (int)sl, url, at + 1);
	else
		snprintf(out, outlen, "%s", url);
}
