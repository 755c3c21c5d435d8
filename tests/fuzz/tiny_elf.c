// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Source of the ELF seeds of fuzz_elfsym: the few symbols profilis-bpf looks
 * up in an interpreter (Py_Version as constant data, _PyRuntime as writable
 * data, a static function only in .symtab), in a file of a few KB, built
 * by tests/fuzz/fuzz.mk as a shared object and as a non-PIE executable.
 */
const unsigned long Py_Version = 0x030b07f0; /* 3.11.7 final */
char _PyRuntime[64] = { 1 };

static __attribute__((noinline)) int tiny_helper(int x)
{
	return x * 3 + (int)_PyRuntime[0];
}

int _PyEval_EvalFrameDefault(int x)
{
	return tiny_helper(x);
}

void tiny_start(void)
{
	for (;;)
		_PyEval_EvalFrameDefault(1);
}
