// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * See failalloc.h.  glibc exports its allocator as __libc_malloc & co., so
 * the interposers need no dlsym (which itself allocates).  An ASan build
 * brings its own allocator: there these are not defined and the fault tests
 * that need them say so instead of passing.
 */
#include <errno.h>
#include <stddef.h>
#include "failalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define FAILALLOC_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAILALLOC_OFF 1
#endif
#endif

static _Thread_local long countdown = -1, seen;
static _Thread_local int fired;

int failalloc_available(void)
{
#ifdef FAILALLOC_OFF
	return 0;
#else
	return 1;
#endif
}

void failalloc_arm(long nth)
{
	countdown = nth;
	seen = 0;
	fired = 0;
}

long failalloc_disarm(void)
{
	countdown = -1;
	return seen;
}

int failalloc_fired(void)
{
	return fired;
}

#ifndef FAILALLOC_OFF
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

static int fail_now(void)
{
	if (countdown < 0)
		return 0;
	seen++;
	if (countdown-- > 0)
		return 0;
	fired = 1;
	errno = ENOMEM;
	return 1;
}

void *malloc(size_t size)
{
	return fail_now() ? NULL : __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	return fail_now() ? NULL : __libc_realloc(p, size);
}
#endif
