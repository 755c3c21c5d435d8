/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Real allocation failures on demand, for fault tests: the unit-test binary
 * interposes malloc, calloc and realloc (the code under test, linked into
 * it, calls them as it would libc's).  Disarmed they pass through to glibc;
 * armed, on the calling thread only, the nth call from then on returns NULL
 * with errno ENOMEM, once.
 */
#ifndef PROFILIS_TEST_FAILALLOC_H
#define PROFILIS_TEST_FAILALLOC_H

/* 0 in a sanitizer build, whose allocator cannot be interposed. */
int failalloc_available(void);
/* The nth allocation from now (0: the next) fails. */
void failalloc_arm(long nth);
/* Disarms; returns how many allocations were seen while armed. */
long failalloc_disarm(void);
/* Whether the armed failure has happened. */
int failalloc_fired(void);

#endif
