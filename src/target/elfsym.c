// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A small reader over a mapped ELF file.  Symbols are looked up in .symtab
 * first (the pyenv builds keep it) and then .dynsym (Debian's stripped
 * python3.11 exports the C API there).  Only 64-bit little-endian files are
 * accepted, which is every interpreter this tool supports.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "elfsym.h"

struct elf_file {
	const uint8_t *data;
	size_t size;
	const Elf64_Ehdr *eh;
};

static int check_header(const uint8_t *data, size_t size)
{
	const Elf64_Ehdr *eh = (const void *)data;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return -ENOEXEC;
	if (eh->e_phoff > size || eh->e_phnum > (size - eh->e_phoff) / sizeof(Elf64_Phdr) ||
	    eh->e_shoff > size || eh->e_shnum > (size - eh->e_shoff) / sizeof(Elf64_Shdr))
		return -ENOEXEC;
	/* The tables are read in place as structs: a linker aligns them, a
	 * misaligned one is a forged file (and undefined behaviour to read). */
	if (eh->e_phoff % _Alignof(Elf64_Phdr) || eh->e_shoff % _Alignof(Elf64_Shdr))
		return -ENOEXEC;
	return 0;
}

struct elf_file *elfsym__open(const char *path)
{
	struct elf_file *ef = NULL;
	struct stat st;
	void *map;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		err = errno;
		goto cleanup;
	}
	if (st.st_size == 0) {
		err = ENOEXEC;
		goto cleanup;
	}
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		err = errno;
		goto cleanup;
	}
	err = -check_header(map, st.st_size);
	if (err || !(ef = calloc(1, sizeof(*ef)))) {
		err = err ? err : ENOMEM;
		munmap(map, st.st_size);
		goto cleanup;
	}
	ef->data = map;
	ef->size = st.st_size;
	ef->eh = map;
cleanup:
	close(fd);
	if (!ef)
		errno = err;
	return ef;
}

void elfsym__free(struct elf_file *ef)
{
	if (!ef)
		return;
	munmap((void *)ef->data, ef->size);
	free(ef);
}

static int in_file(const struct elf_file *ef, uint64_t off, uint64_t len)
{
	return off <= ef->size && len <= ef->size - off;
}

static const Elf64_Shdr *section(struct elf_file *ef, unsigned int i)
{
	return (const Elf64_Shdr *)(ef->data + ef->eh->e_shoff) + i;
}

static int lookup_in(struct elf_file *ef, uint32_t type, const char *name, uint64_t *vaddr)
{
	size_t len = strlen(name);

	for (unsigned int i = 0; i < ef->eh->e_shnum; i++) {
		const Elf64_Shdr *sh = section(ef, i), *strsh;
		const Elf64_Sym *syms;
		const char *strs;
		size_t n;

		/* Written so that hostile offsets cannot wrap around 2^64. */
		if (sh->sh_type != type || sh->sh_link >= ef->eh->e_shnum ||
		    !in_file(ef, sh->sh_offset, sh->sh_size) ||
		    sh->sh_entsize != sizeof(Elf64_Sym) || sh->sh_offset % _Alignof(Elf64_Sym))
			continue;
		strsh = section(ef, sh->sh_link);
		if (!in_file(ef, strsh->sh_offset, strsh->sh_size))
			continue;
		syms = (const void *)(ef->data + sh->sh_offset);
		strs = (const char *)ef->data + strsh->sh_offset;
		n = sh->sh_size / sizeof(Elf64_Sym);
		for (size_t j = 0; j < n; j++) {
			if (syms[j].st_shndx == SHN_UNDEF || syms[j].st_name >= strsh->sh_size)
				continue;
			/* The whole name and its NUL inside the table: a table cut
			 * short must not make "Py_Ver" match "Py_Version". */
			if (len < strsh->sh_size - syms[j].st_name &&
			    memcmp(strs + syms[j].st_name, name, len + 1) == 0) {
				*vaddr = syms[j].st_value;
				return 0;
			}
		}
	}
	return -ENOENT;
}

int elfsym__symbol(struct elf_file *ef, const char *name, uint64_t *vaddr)
{
	if (lookup_in(ef, SHT_SYMTAB, name, vaddr) == 0)
		return 0;
	return lookup_in(ef, SHT_DYNSYM, name, vaddr);
}

static const Elf64_Phdr *load_seg_for(struct elf_file *ef, uint64_t addr, int by_offset)
{
	const Elf64_Phdr *ph = (const void *)(ef->data + ef->eh->e_phoff);

	for (unsigned int i = 0; i < ef->eh->e_phnum; i++) {
		uint64_t base = by_offset ? ph[i].p_offset : ph[i].p_vaddr;

		if (ph[i].p_type == PT_LOAD && addr >= base && addr < base + ph[i].p_filesz)
			return &ph[i];
	}
	return NULL;
}

int elfsym__vaddr_to_offset(struct elf_file *ef, uint64_t vaddr, uint64_t *offset)
{
	const Elf64_Phdr *ph = load_seg_for(ef, vaddr, 0);

	if (!ph)
		return -ERANGE;
	*offset = vaddr - ph->p_vaddr + ph->p_offset;
	return 0;
}

int elfsym__read(struct elf_file *ef, uint64_t vaddr, void *buf, size_t len)
{
	uint64_t off;

	if (elfsym__vaddr_to_offset(ef, vaddr, &off) || !in_file(ef, off, len))
		return -ERANGE;
	memcpy(buf, ef->data + off, len);
	return 0;
}

int elfsym__seg_for_offset(struct elf_file *ef, uint64_t offset, struct elf_load_seg *seg)
{
	const Elf64_Phdr *ph = load_seg_for(ef, offset, 1);

	if (!ph)
		return -ERANGE;
	seg->vaddr = ph->p_vaddr;
	seg->offset = ph->p_offset;
	seg->filesz = ph->p_filesz;
	return 0;
}

int elfsym__is_pie_or_shared(struct elf_file *ef)
{
	return ef->eh->e_type == ET_DYN;
}
