// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: ELF symbol reading (src/target/elfsym.c).  elfsym__open takes
 * a path, so each input is written to a memfd and opened as /proc/self/fd/N
 * (mapped exactly as a real file would be).  Differential: a second lookup
 * that reads every header field with memcpy and bounds-checks each byte must
 * find the same symbol at the same address, with the name matching whole
 * (NUL inside the string table); address translations must land on a PT_LOAD
 * segment that covers them, and reads must return the file's own bytes.
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "elfsym.h"

static const char *const names[] = {
	"Py_Version", "_PyRuntime",  "_PyEval_EvalFrameDefault", "tiny_helper", "Py_Versio",
	"",	      "_PyRuntimeX",
};

struct view {
	const uint8_t *d;
	size_t n;
};

static int inside(const struct view *v, uint64_t off, uint64_t len)
{
	return off <= v->n && len <= v->n - off;
}

/* Copies len bytes at off, or fails: no assumption about alignment or size. */
static int get(const struct view *v, uint64_t off, void *out, size_t len)
{
	if (!inside(v, off, len))
		return -1;
	memcpy(out, v->d + off, len);
	return 0;
}

static int shdr(const struct view *v, const Elf64_Ehdr *eh, unsigned int i, Elf64_Shdr *sh)
{
	return get(v, eh->e_shoff + (uint64_t)i * sizeof(*sh), sh, sizeof(*sh));
}

static int ref_lookup_in(const struct view *v, const Elf64_Ehdr *eh, uint32_t type,
			 const char *name, uint64_t *vaddr)
{
	size_t nlen = strlen(name);

	for (unsigned int i = 0; i < eh->e_shnum; i++) {
		Elf64_Shdr sh, str;

		/* a linker aligns the table: a misaligned one is skipped */
		if (shdr(v, eh, i, &sh) || sh.sh_type != type || sh.sh_link >= eh->e_shnum ||
		    sh.sh_entsize != sizeof(Elf64_Sym) || !inside(v, sh.sh_offset, sh.sh_size) ||
		    sh.sh_offset % 8 || shdr(v, eh, sh.sh_link, &str) ||
		    !inside(v, str.sh_offset, str.sh_size))
			continue;
		for (uint64_t j = 0; j < sh.sh_size / sizeof(Elf64_Sym); j++) {
			Elf64_Sym s;
			char c;

			get(v, sh.sh_offset + j * sizeof(s), &s, sizeof(s));
			if (s.st_shndx == SHN_UNDEF || s.st_name >= str.sh_size ||
			    nlen >= str.sh_size - s.st_name)
				continue;
			if (memcmp(v->d + str.sh_offset + s.st_name, name, nlen))
				continue;
			get(v, str.sh_offset + s.st_name + nlen, &c, 1);
			if (c == 0) {
				*vaddr = s.st_value;
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* What elfsym__symbol promises: .symtab first, then .dynsym. */
static int ref_symbol(const struct view *v, const char *name, uint64_t *vaddr)
{
	Elf64_Ehdr eh;

	if (get(v, 0, &eh, sizeof(eh)))
		abort(); /* elfsym__open accepted a file shorter than a header */
	if (ref_lookup_in(v, &eh, SHT_SYMTAB, name, vaddr) == 0)
		return 0;
	return ref_lookup_in(v, &eh, SHT_DYNSYM, name, vaddr);
}

/* vaddr_to_offset, read and seg_for_offset around one address. */
static void check_address(struct elf_file *ef, const struct view *v, uint64_t vaddr)
{
	struct elf_load_seg seg;
	uint8_t buf[16];
	uint64_t off;

	if (elfsym__vaddr_to_offset(ef, vaddr, &off) == 0) {
		if (elfsym__seg_for_offset(ef, off, &seg) == 0 &&
		    (off < seg.offset || off - seg.offset >= seg.filesz))
			abort();
	}
	if (elfsym__read(ef, vaddr, buf, sizeof(buf)) == 0) {
		if (elfsym__vaddr_to_offset(ef, vaddr, &off) || !inside(v, off, sizeof(buf)) ||
		    memcmp(buf, v->d + off, sizeof(buf)))
			abort();
	}
}

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct view v = { data, size };
	struct elf_file *ef;
	char path[64];

	if (memfd < 0 && (memfd = memfd_create("fuzz-elf", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(memfd, 0) || pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	ef = elfsym__open(path);
	if (!ef) {
		if (errno != ENOEXEC && errno != ENOMEM)
			abort(); /* an unusable file is ENOEXEC, nothing else */
		return 0;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint64_t got = 0, want = 0;
		int rc = elfsym__symbol(ef, names[i], &got);

		if (rc != ref_symbol(&v, names[i], &want) || (rc == 0 && got != want))
			abort();
		if (rc == 0) {
			check_address(ef, &v, got);
			check_address(ef, &v, got + 1);
		}
	}
	check_address(ef, &v, 0);
	check_address(ef, &v, UINT64_MAX - 8);
	elfsym__is_pie_or_shared(ef);
	elfsym__free(ef);
	return 0;
}
