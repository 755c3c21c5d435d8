// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A userspace twin of the BPF dict scan, for one question: is a module
 * imported?  _PyRuntime.interpreters.head -> modules (a dict) -> key table,
 * read in one go, keys compared as compact ASCII strings.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "pyinspect.h"

#define MAX_ENTRIES 65536

int pyinspect_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)addr, len };
	ssize_t n;

	if (!addr)
		return -EFAULT;
	n = process_vm_readv(pid, &l, 1, &r, 1, 0);
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EFAULT;
}

static int read_u64(pid_t pid, uint64_t addr, uint64_t *out)
{
	return pyinspect_read(pid, addr, out, sizeof(*out));
}

/* Whether the str at addr is the ASCII text `name`. */
static int str_is(pid_t pid, const struct pbpf_py_offsets *off, uint64_t addr, const char *name)
{
	size_t n = strlen(name);
	uint8_t buf[256];
	uint64_t len;
	uint32_t state;

	if (n + off->str_ascii_data > sizeof(buf) || pyinspect_read(pid, addr, buf, off->str_ascii_data + n))
		return 0;
	memcpy(&len, buf + off->str_length, 8);
	memcpy(&state, buf + off->str_state, 4);
	return len == n && ((state >> off->str_compact_bit) & 1) &&
	       ((state >> off->str_ascii_bit) & 1) &&
	       memcmp(buf + off->str_ascii_data, name, n) == 0;
}

int pyinspect_module_loaded(pid_t pid, const struct pbpf_py_offsets *off, uint64_t runtime,
			    const char *name)
{
	uint64_t interp, modules, keys, values, nentries = 0, *entries;
	uint8_t log2_index_bytes = 0, kind = 0;
	size_t words;
	int err, found = 0;

	if ((err = read_u64(pid, runtime + off->runtime_interpreters_head, &interp)) ||
	    (err = read_u64(pid, interp + off->interp_modules, &modules)) ||
	    (err = read_u64(pid, modules + off->dict_keys, &keys)) ||
	    (err = read_u64(pid, modules + off->dict_values, &values)) ||
	    (err = pyinspect_read(pid, keys + off->keys_log2_index_bytes, &log2_index_bytes, 1)) ||
	    (err = pyinspect_read(pid, keys + off->keys_kind, &kind, 1)) ||
	    (err = read_u64(pid, keys + off->keys_nentries, &nentries)))
		return err;
	if (nentries > MAX_ENTRIES || log2_index_bytes > 40)
		return -EINVAL;
	words = kind == 0 ? 3 : 2; /* {hash, key, value} or {key, value} */
	entries = calloc(nentries * words + 1, sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	err = pyinspect_read(pid, keys + off->keys_indices + (1ULL << log2_index_bytes), entries,
		    nentries * words * sizeof(*entries));
	for (uint64_t i = 0; !err && i < nentries && !found; i++) {
		uint64_t key = entries[i * words + (kind == 0 ? 1 : 0)];

		found = key && str_is(pid, off, key, name);
	}
	free(entries);
	return err ? err : found;
}
