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
#include "pystr.h"

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

int pyinspect_read_u64(pid_t pid, uint64_t addr, uint64_t *out)
{
	return pyinspect_read(pid, addr, out, sizeof(*out));
}

/* Whether the str at addr is the ASCII text `name`: one read, header and
 * text, as it is done for every key of sys.modules. */
static int str_is(pid_t pid, const struct pbpf_py_offsets *off, uint64_t addr, const char *name)
{
	size_t n = strlen(name);
	struct pystr_shape sh;
	uint8_t buf[256];

	if (n + off->str_ascii_data > sizeof(buf) ||
	    pyinspect_read(pid, addr, buf, off->str_ascii_data + n))
		return 0;
	return pystr_shape(off, buf, &sh) == 0 && sh.ascii && sh.len == n &&
	       memcmp(buf + sh.data, name, n) == 0;
}

/* Where a key table's entries start and how many words each has. */
static int keys_shape(pid_t pid, const struct pbpf_py_offsets *off, uint64_t keys,
		      uint64_t *entries_at, size_t *words)
{
	uint8_t log2_index_bytes = 0, kind = 0;
	uint64_t size = 0;
	int err;

	if (off->keys_layout == PBPF_KEYS_SIZE) {
		/* 3.9/3.10: dk_size slots of 1, 2, 4 or 8 bytes; entries all
		 * {hash, key, value}. */
		if ((err = pyinspect_read_u64(pid, keys + off->keys_size, &size)))
			return err;
		if (size >= 1ULL << 32)
			return -EINVAL;
		*entries_at = keys + off->keys_indices +
			      size * (size <= 0xff     ? 1
				      : size <= 0xffff ? 2
						       : 4);
		*words = 3;
		return 0;
	}
	if ((err = pyinspect_read(pid, keys + off->keys_log2_index_bytes, &log2_index_bytes, 1)) ||
	    (err = pyinspect_read(pid, keys + off->keys_kind, &kind, 1)))
		return err;
	if (log2_index_bytes > 40)
		return -EINVAL;
	*entries_at = keys + off->keys_indices + (1ULL << log2_index_bytes);
	*words = kind == 0 ? 3 : 2; /* {hash, key, value} or {key, value} */
	return 0;
}

int pyinspect_module_loaded(pid_t pid, const struct pbpf_py_offsets *off, uint64_t runtime,
			    const char *name)
{
	uint64_t interp, modules, keys, nentries = 0, entries_at = 0, *entries;
	size_t words = 3;
	int err, found = 0;

	if ((err = pyinspect_read_u64(pid, runtime + off->runtime_interpreters_head, &interp)) ||
	    (err = pyinspect_read_u64(pid, interp + off->interp_modules, &modules)) ||
	    (err = pyinspect_read_u64(pid, modules + off->dict_keys, &keys)) ||
	    (err = keys_shape(pid, off, keys, &entries_at, &words)) ||
	    (err = pyinspect_read_u64(pid, keys + off->keys_nentries, &nentries)))
		return err;
	if (nentries > MAX_ENTRIES)
		return -EINVAL;
	entries = calloc(nentries * words + 1, sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	err = pyinspect_read(pid, entries_at, entries, nentries * words * sizeof(*entries));
	for (uint64_t i = 0; !err && i < nentries && !found; i++) {
		uint64_t key = entries[i * words + (words == 3 ? 1 : 0)];

		found = key && str_is(pid, off, key, name);
	}
	free(entries);
	return err ? err : found;
}
