// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The service-name ladder of k8smeta.h, pure: from the target's environment
 * block, command line and comm to one name and where it came from.  The
 * rules prefer what the operator declared (OTEL_SERVICE_NAME, gunicorn's
 * --name) over what the command line implies (the app module, the script),
 * and fall back to the comm; each candidate must pass the printable check
 * or the next rule is tried.
 */
#include <string.h>
#include "k8smeta.h"

#define MAX_ARGS 256

struct args {
	const char *v[MAX_ARGS];
	size_t n[MAX_ARGS];
	int c;
};

/* NUL-separated arguments; a final one without its NUL counts too (a
 * process may rewrite its command line without one). */
static void split_args(const char *cmd, size_t len, struct args *a)
{
	a->c = 0;
	for (size_t i = 0; i < len && a->c < MAX_ARGS;) {
		const char *nul = memchr(cmd + i, 0, len - i);
		size_t n = nul ? (size_t)(nul - cmd - i) : len - i;

		a->v[a->c] = cmd + i;
		a->n[a->c++] = n;
		i += n + 1;
	}
}

static int arg_is(const struct args *a, int i, const char *lit)
{
	return i < a->c && a->n[i] == strlen(lit) && !memcmp(a->v[i], lit, a->n[i]);
}

static int arg_prefix(const struct args *a, int i, const char *lit)
{
	return i < a->c && a->n[i] >= strlen(lit) && !memcmp(a->v[i], lit, strlen(lit));
}

/* The file name part of argument i, as (pointer, length). */
static const char *base_of(const char *s, size_t n, size_t *bn)
{
	const char *b = s;

	for (size_t i = 0; i < n; i++)
		if (s[i] == '/')
			b = s + i + 1;
	*bn = n - (b - s);
	return b;
}

static int ident_char(char ch, int first)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
	       (!first && ch >= '0' && ch <= '9');
}

/* Length of the identifier at s (0 if none). */
static size_t ident(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && ident_char(s[i], i == 0))
		i++;
	return i;
}

/* Length of a dotted module name "a.b.c" that spans all of s[0..n), or 0. */
static size_t dotted(const char *s, size_t n)
{
	size_t i = 0;

	for (;;) {
		size_t l = ident(s + i, n - i);

		if (!l)
			return 0;
		i += l;
		if (i == n)
			return n;
		if (s[i] != '.')
			return 0;
		i++;
	}
}

/* "module[.sub]:callable[(...)]" -> the module's length, else 0. */
static size_t app_spec(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t m, l;

	if (!colon || !(m = dotted(s, colon - s)))
		return 0;
	l = ident(colon + 1, n - m - 1);
	if (!l || (m + 1 + l != n && (colon[1 + l] != '(' || s[n - 1] != ')')))
		return 0;
	return m;
}

static int take(const char *s, size_t n, char out[K8SMETA_SERVICE_MAX + 1])
{
	if (!s || !k8smeta_printable(s, n, K8SMETA_SERVICE_MAX))
		return 0;
	memcpy(out, s, n);
	out[n] = 0;
	return 1;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static size_t trim(const char **s, size_t n)
{
	while (n && (**s == ' ' || **s == '\t'))
		(*s)++, n--;
	while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
		n--;
	return n;
}

/* Percent-decodes v into buf; its length, or -1 (bad escape, too long). */
static int pct_decode(const char *v, size_t n, char buf[K8SMETA_SERVICE_MAX + 1])
{
	size_t o = 0;

	for (size_t j = 0; j < n; j++, o++) {
		int hi, lo;

		if (o == K8SMETA_SERVICE_MAX + 1)
			return -1;
		buf[o] = v[j];
		if (v[j] != '%')
			continue;
		if (j + 2 >= n || (hi = hexval(v[j + 1])) < 0 || (lo = hexval(v[j + 2])) < 0)
			return -1;
		buf[o] = (char)(hi * 16 + lo);
		j += 2;
	}
	return (int)o;
}

/* service.name of OTEL_RESOURCE_ATTRIBUTES ("k=v,k=v", values
 * percent-encoded); the last one wins, as in the OpenTelemetry SDKs. */
static int otel_resource(const char *v, size_t n, char out[K8SMETA_SERVICE_MAX + 1])
{
	int found = 0;

	for (size_t i = 0; i < n;) {
		const char *e = v + i, *comma = memchr(e, ',', n - i), *eq, *val;
		size_t el = comma ? (size_t)(comma - e) : n - i, kl, vl;
		char buf[K8SMETA_SERVICE_MAX + 1];
		int dl;

		i += el + 1;
		if (!(eq = memchr(e, '=', el)))
			continue;
		val = eq + 1;
		vl = trim(&val, e + el - val);
		kl = trim(&e, eq - e);
		if (kl != strlen("service.name") || memcmp(e, "service.name", kl))
			continue;
		dl = pct_decode(val, vl, buf);
		if (dl >= 0 && take(buf, dl, out))
			found = 1;
	}
	return found;
}

static int is_gunicorn(const struct args *a)
{
	for (int i = 0; i < a->c && i < 3; i++) {
		size_t bn;
		const char *b = base_of(a->v[i], a->n[i], &bn);

		if ((bn == 8 && !memcmp(b, "gunicorn", 8)) ||
		    (arg_is(a, i, "-m") && arg_is(a, i + 1, "gunicorn")))
			return 1;
	}
	return 0;
}

/* gunicorn's proc_name: -n/--name, or setproctitle's "gunicorn: ROLE [NAME]". */
static int gunicorn_name(const struct args *a, char out[K8SMETA_SERVICE_MAX + 1])
{
	if (a->c >= 1 && arg_prefix(a, 0, "gunicorn: ")) {
		const char *s = a->v[0], *lb = memchr(s, '[', a->n[0]);
		size_t n = a->n[0];

		while (n && (s[n - 1] == ' ' || s[n - 1] == 0))
			n--;
		if (lb && n && s[n - 1] == ']') {
			size_t l = s + n - 1 - (lb + 1), m = app_spec(lb + 1, l);

			return take(lb + 1, m ? m : l, out);
		}
		return 0;
	}
	if (!is_gunicorn(a))
		return 0;
	for (int i = 1; i < a->c; i++) {
		if ((arg_is(a, i, "-n") || arg_is(a, i, "--name")) && i + 1 < a->c)
			return take(a->v[i + 1], a->n[i + 1], out);
		if (arg_prefix(a, i, "--name="))
			return take(a->v[i] + 7, a->n[i] - 7, out);
		if (arg_prefix(a, i, "-n") && a->n[i] > 2 && a->v[i][2] != '-')
			return take(a->v[i] + 2, a->n[i] - 2, out);
	}
	return 0;
}

/* Options whose values can look like module:callable (host:port, python:x). */
static int value_option(const struct args *a, int i)
{
	static const char *const opts[] = { "-b", "--bind", "-c",      "--config",
					    "-e", "--env",  "--paste", "--statsd-host",
					    "-n", "--name", "--app" };

	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
		if (arg_is(a, i, opts[k]))
			return 1;
	return 0;
}

static int app_module(const struct args *a, char out[K8SMETA_SERVICE_MAX + 1])
{
	for (int i = a->c - 1; i >= 1; i--) {
		size_t m = app_spec(a->v[i], a->n[i]);

		if (m && !value_option(a, i - 1))
			return take(a->v[i], m, out);
	}
	return 0;
}

/* Module part of a FLASK_APP-style value: "shop", "shop:create_app()",
 * "src/shop.py". */
static int flask_value(const char *v, size_t n, char out[K8SMETA_SERVICE_MAX + 1])
{
	const char *colon = memchr(v, ':', n);
	size_t bn;
	const char *b;

	if (colon)
		n = colon - v;
	if (n > 3 && !memcmp(v + n - 3, ".py", 3)) {
		b = base_of(v, n - 3, &bn);
		return ident(b, bn) == bn && bn && take(b, bn, out);
	}
	return dotted(v, n) == n && take(v, n, out);
}

static int flask_app(const char *env, size_t envlen, const struct args *a,
		     char out[K8SMETA_SERVICE_MAX + 1])
{
	size_t vl;
	const char *v = k8smeta_env_find(env, envlen, "FLASK_APP", &vl);

	if (v && flask_value(v, vl, out))
		return 1;
	for (int i = 1; i < a->c; i++) {
		if (arg_is(a, i, "--app") && i + 1 < a->c)
			return flask_value(a->v[i + 1], a->n[i + 1], out);
		if (arg_prefix(a, i, "--app="))
			return flask_value(a->v[i] + 6, a->n[i] - 6, out);
	}
	return 0;
}

static int is_server(const char *s, size_t n)
{
	static const char *const servers[] = { "gunicorn", "flask",	"waitress", "uwsgi",
					       "uvicorn",  "hypercorn", "werkzeug" };

	for (size_t k = 0; k < sizeof(servers) / sizeof(servers[0]); k++)
		if (n == strlen(servers[k]) && !memcmp(s, servers[k], n))
			return 1;
	return 0;
}

/* "python [opts] path/x.py" -> x; "python [opts] -m mod" -> mod. */
static int main_module(const struct args *a, char out[K8SMETA_SERVICE_MAX + 1])
{
	size_t bn;
	const char *b = a->c ? base_of(a->v[0], a->n[0], &bn) : NULL;

	if (!b || bn < 6 || memcmp(b, "python", 6))
		return 0;
	for (int i = 1; i < a->c; i++) {
		const char *v = a->v[i];
		size_t n = a->n[i];

		if (arg_is(a, i, "-c") || arg_is(a, i, "-") || arg_is(a, i, "--"))
			return 0;
		if (arg_prefix(a, i, "-m")) {
			v = n > 2 ? v + 2 : (i + 1 < a->c ? a->v[i + 1] : "");
			n = n > 2 ? n - 2 : (i + 1 < a->c ? a->n[i + 1] : 0);
			return dotted(v, n) == n && n && !is_server(v, n) && take(v, n, out);
		}
		if (arg_is(a, i, "-W") || arg_is(a, i, "-X") ||
		    arg_is(a, i, "--check-hash-based-pycs")) {
			i++;
			continue;
		}
		if (v[0] == '-' && n > 1)
			continue;
		b = base_of(v, n, &bn);
		if (bn > 3 && !memcmp(b + bn - 3, ".py", 3))
			bn -= 3;
		return !is_server(b, bn) && take(b, bn, out);
	}
	return 0;
}

enum k8smeta_service_source k8smeta_service_name(const char *env, size_t envlen,
						 const char *cmdline, size_t cmdlen,
						 const char *comm,
						 char out[K8SMETA_SERVICE_MAX + 1])
{
	struct args a;
	size_t vl = 0;
	const char *v = k8smeta_env_find(env, envlen, "OTEL_SERVICE_NAME", &vl);

	out[0] = 0;
	if (take(v, vl, out))
		return K8SMETA_SVC_OTEL_SERVICE_NAME;
	v = k8smeta_env_find(env, envlen, "OTEL_RESOURCE_ATTRIBUTES", &vl);
	if (v && otel_resource(v, vl, out))
		return K8SMETA_SVC_OTEL_RESOURCE;
	split_args(cmdline, cmdlen, &a);
	if (gunicorn_name(&a, out))
		return K8SMETA_SVC_GUNICORN_NAME;
	if (app_module(&a, out))
		return K8SMETA_SVC_APP_MODULE;
	if (flask_app(env, envlen, &a, out))
		return K8SMETA_SVC_FLASK_APP;
	if (main_module(&a, out))
		return K8SMETA_SVC_MAIN_MODULE;
	if (comm && take(comm, strlen(comm), out))
		return K8SMETA_SVC_COMM;
	out[0] = 0;
	return K8SMETA_SVC_NONE;
}

const char *k8smeta_service_source_name(enum k8smeta_service_source s)
{
	static const char *const names[] = {
		[K8SMETA_SVC_NONE] = "none",
		[K8SMETA_SVC_OTEL_SERVICE_NAME] = "OTEL_SERVICE_NAME",
		[K8SMETA_SVC_OTEL_RESOURCE] = "OTEL_RESOURCE_ATTRIBUTES",
		[K8SMETA_SVC_GUNICORN_NAME] = "gunicorn proc_name",
		[K8SMETA_SVC_APP_MODULE] = "app module",
		[K8SMETA_SVC_FLASK_APP] = "FLASK_APP",
		[K8SMETA_SVC_MAIN_MODULE] = "main module",
		[K8SMETA_SVC_COMM] = "comm",
	};

	return (unsigned int)s < sizeof(names) / sizeof(names[0]) ? names[s] : "none";
}
