/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The HTTP endpoint's access check (--ui-token): an "Authorization: Bearer
 * TOKEN" header, or for the page only a ?token= query argument (a browser
 * cannot send a header when it opens a URL; the page then keeps the token
 * in sessionStorage and sends the header itself, as Profilis's page does).
 * The comparison takes a time that depends only on the length of what the
 * client sent, never on the token.  Pure, for the unit tests.
 */
#ifndef PROFILIS_HTTP_AUTH_H
#define PROFILIS_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_TOKEN_MAX 512

/* given == want, in a time that depends on glen only. */
bool http_token_equal(const char *given, size_t glen, const char *want, size_t wlen);
/* The credentials of an Authorization header value "Bearer TOKEN" (scheme
 * case-insensitive, spaces around the token ignored): the token and its
 * length, or NULL for another scheme or none. */
const char *http_bearer(const char *header, size_t *len);
/* Whether a request may pass: always when want is NULL or "", else when the
 * header's bearer token or, if given (the page), query_token equals want. */
bool http_authorized(const char *want, const char *auth_header, const char *query_token);
/* Whether a token can be used: 1..HTTP_TOKEN_MAX visible ASCII characters
 * (what a header carries unquoted).  0, or -EINVAL with msg set; msg never
 * contains the token. */
int http_check_token(const char *token, char *msg, size_t msglen);

#endif
