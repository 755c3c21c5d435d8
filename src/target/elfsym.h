/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ELF symbol lookup for the interpreter binary: a symbol's link-time address,
 * the file offset a uprobe needs, and reads of constant data (Py_Version).
 */
#ifndef PROFILIS_ELFSYM_H
#define PROFILIS_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

struct elf_file;

struct elf_load_seg {
	uint64_t vaddr, offset, filesz;
};

/* NULL with errno set when the file is not a readable 64-bit ELF. */
struct elf_file *elfsym__open(const char *path);
void elfsym__free(struct elf_file *ef);

/* Finds a defined symbol in .symtab or .dynsym; 0 or -ENOENT. */
int elfsym__symbol(struct elf_file *ef, const char *name, uint64_t *vaddr);
/* Converts a link-time address to a file offset through PT_LOAD; 0 or -ERANGE. */
int elfsym__vaddr_to_offset(struct elf_file *ef, uint64_t vaddr, uint64_t *offset);
/* Copies `len` bytes of file data at link-time address `vaddr`. */
int elfsym__read(struct elf_file *ef, uint64_t vaddr, void *buf, size_t len);
/* The PT_LOAD segment covering file offset `offset`; 0 or -ERANGE. */
int elfsym__seg_for_offset(struct elf_file *ef, uint64_t offset, struct elf_load_seg *seg);
int elfsym__is_pie_or_shared(struct elf_file *ef);

#endif
