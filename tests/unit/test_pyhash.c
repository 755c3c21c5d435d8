// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pyhash: the str hashes profilis-bpf computes for a target must equal what
 * the target's CPython computes.  Expected values were printed by the real
 * interpreters: `hash(s)` under PYTHONHASHSEED=0 (an all-zero secret) and
 * PYTHONHASHSEED=12345 (its secret read through ctypes from _Py_HashSecret).
 */
#include <criterion/criterion.h>
#include <string.h>
#include "../../src/python/pyhash.h"

static const uint8_t zero[16];
/* _Py_HashSecret of a CPython started with PYTHONHASHSEED=12345. */
static const uint8_t seed12345[16] = { 0xa0, 0xdc, 0xc3, 0x6d, 0xc4, 0x6d, 0x55, 0x25,
				       0x90, 0x6c, 0x6f, 0xd0, 0xdb, 0xe4, 0x3e, 0xfc };

static int64_t h(enum pyhash_alg alg, const uint8_t *secret, const char *s)
{
	return pyhash_ascii(alg, secret, s, strlen(s));
}

Test(pyhash, siphash13_equals_cpython_311_and_313)
{
	cr_expect_eq(h(PYHASH_SIPHASH13, zero, "PATH_INFO"), 5946884839383259373LL);
	cr_expect_eq(h(PYHASH_SIPHASH13, zero, "REQUEST_METHOD"), -8049471824997721322LL);
	cr_expect_eq(h(PYHASH_SIPHASH13, zero, "HTTP_TRACEPARENT"), -3849160228383842707LL);
	cr_expect_eq(h(PYHASH_SIPHASH13, seed12345, "PATH_INFO"), -6584992807748288050LL);
	cr_expect_eq(h(PYHASH_SIPHASH13, seed12345, "HTTP_TRACEPARENT"), 2492757708310188978LL);
	/* 1 byte, exactly one block, exactly two blocks */
	cr_expect_eq(h(PYHASH_SIPHASH13, seed12345, "a"), -8961251314296359281LL);
	cr_expect_eq(h(PYHASH_SIPHASH13, seed12345, "exactly8"), -7914483644191771623LL);
	cr_expect_eq(h(PYHASH_SIPHASH13, seed12345, "sixteen-bytes-ab"), -3144547561762359912LL);
}

Test(pyhash, siphash24_equals_cpython_39)
{
	cr_expect_eq(h(PYHASH_SIPHASH24, zero, "PATH_INFO"), -3802290941707612766LL);
	cr_expect_eq(h(PYHASH_SIPHASH24, zero, "REQUEST_METHOD"), -7616646575383395004LL);
	cr_expect_eq(h(PYHASH_SIPHASH24, zero, "HTTP_TRACEPARENT"), -9072105956658263905LL);
	cr_expect_eq(h(PYHASH_SIPHASH24, seed12345, "PATH_INFO"), 8237034762222761508LL);
	cr_expect_eq(h(PYHASH_SIPHASH24, seed12345, "HTTP_TRACEPARENT"), -7661225012807932648LL);
	cr_expect_eq(h(PYHASH_SIPHASH24, seed12345, "a"), -5496628277200339509LL);
	cr_expect_eq(h(PYHASH_SIPHASH24, seed12345, "exactly8"), 4612432192643195094LL);
	cr_expect_eq(h(PYHASH_SIPHASH24, seed12345, "sixteen-bytes-ab"), -7817433745726567793LL);
}

Test(pyhash, cpython_conventions)
{
	cr_expect_eq(h(PYHASH_SIPHASH13, seed12345, ""), 0);
	cr_expect_eq(pyhash_alg_for(9), PYHASH_SIPHASH24);
	cr_expect_eq(pyhash_alg_for(10), PYHASH_SIPHASH24);
	cr_expect_eq(pyhash_alg_for(11), PYHASH_SIPHASH13);
	cr_expect_eq(pyhash_alg_for(15), PYHASH_SIPHASH13);
}
