// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * ELF symbol lookup against the two real interpreters on this machine:
 * Debian's non-PIE, stripped /usr/bin/python3.11 (C API in .dynsym) and
 * pyenv's shared libpython3.11.so.1.0 (full .symtab).  Every address and
 * offset is compared with what nm and readelf print (oracle.c), Py_Version is
 * read out of the file, and broken inputs (not ELF, missing, empty, truncated,
 * 32-bit, hostile section headers) must fail with the right errno, not crash.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elfsym.h"
#include "oracle.h"
#include "target.h"

static char tmp[] = "/tmp/pbpf-elf-XXXXXX";

static void make_tmp(void)
{
	int fd = mkstemp(tmp);

	cr_assert_geq(fd, 0);
	close(fd);
}

static void remove_tmp(void)
{
	if (!strstr(tmp, "XXXXXX"))
		unlink(tmp);
}

TestSuite(elfsym, .fini = remove_tmp);

static const char *const api_syms[] = { "PyContextVar_Set", "PyContextVar_Reset", "_PyRuntime",
					"_Py_NoneStruct", "Py_Version" };

static struct elf_file *open_ok(const char *path)
{
	struct elf_file *ef = elfsym__open(path);

	cr_assert_not_null(ef, "%s: %s", path, strerror(errno));
	return ef;
}

static void check_symbols_against_nm(const char *path, int dynamic)
{
	struct elf_file *ef = open_ok(path);

	for (size_t i = 0; i < sizeof(api_syms) / sizeof(api_syms[0]); i++) {
		uint64_t got = 0, want = 0;

		cr_assert_eq(oracle_nm(path, dynamic, api_syms[i], &want), 1,
			     "nm lists %s once in %s", api_syms[i], path);
		cr_assert_eq(elfsym__symbol(ef, api_syms[i], &got), 0, "%s", api_syms[i]);
		cr_assert_eq(got, want, "%s: %#lx, nm says %#lx", api_syms[i], got, want);
	}
	elfsym__free(ef);
}

Test(elfsym, debian_dynsym_matches_nm)
{
	check_symbols_against_nm(DEBIAN_PY, 1);
}

Test(elfsym, libpython_symtab_matches_nm)
{
	check_symbols_against_nm(PYENV_LIB, 0);
}

Test(elfsym, static_function_found_in_symtab_only)
{
	/* contextvar_set is static in Python/context.c: not exported. */
	struct elf_file *ef = open_ok(PYENV_LIB);
	uint64_t got = 0, want = 0, unused;

	cr_assert_eq(oracle_nm(PYENV_LIB, 1, "contextvar_set", &unused), 0);
	cr_assert_eq(oracle_nm(PYENV_LIB, 0, "contextvar_set", &want), 1);
	cr_assert_eq(elfsym__symbol(ef, "contextvar_set", &got), 0);
	cr_assert_eq(got, want);
	elfsym__free(ef);
}

Test(elfsym, missing_symbol_and_prefixes)
{
	static const char *const absent[] = { "PyNoSuchSymbol_Xyz", "PyContextVar_Se",
					      "PyContextVar_SetX", "_PyRuntim" };
	const char *paths[] = { DEBIAN_PY, PYENV_LIB };

	for (int p = 0; p < 2; p++) {
		struct elf_file *ef = open_ok(paths[p]);

		for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
			uint64_t v = 0x1234;

			cr_assert_eq(elfsym__symbol(ef, absent[i], &v), -ENOENT, "%s in %s",
				     absent[i], paths[p]);
			cr_assert_eq(v, 0x1234, "output touched on failure");
		}
		elfsym__free(ef);
	}
}

static void check_offsets_against_readelf(const char *path, int dynamic)
{
	struct oracle_seg segs[16];
	struct elf_file *ef = open_ok(path);
	int n = oracle_load_segs(path, segs, 16);

	cr_assert_geq(n, 2, "readelf found %d PT_LOAD rows", n);
	for (size_t i = 0; i < sizeof(api_syms) / sizeof(api_syms[0]); i++) {
		uint64_t vaddr = 0, got = 0, want = 0;

		cr_assert_eq(oracle_nm(path, dynamic, api_syms[i], &vaddr), 1);
		cr_assert_eq(oracle_vaddr_to_offset(segs, n, vaddr, &want), 0);
		cr_assert_eq(elfsym__vaddr_to_offset(ef, vaddr, &got), 0, "%s", api_syms[i]);
		cr_assert_eq(got, want, "%s: offset %#lx, readelf math %#lx", api_syms[i], got,
			     want);
	}
	/* Past the end of file data in the last segment (.bss or beyond): no offset. */
	uint64_t off = 0x55, end = segs[n - 1].vaddr + segs[n - 1].filesz;

	cr_assert_eq(elfsym__vaddr_to_offset(ef, end, &off), -ERANGE);
	cr_assert_eq(elfsym__vaddr_to_offset(ef, segs[n - 1].vaddr + segs[n - 1].memsz + 0x100000,
					     &off),
		     -ERANGE);
	cr_assert_eq(off, 0x55);
	/* Every segment is found again from its own file offset. */
	for (int i = 0; i < n; i++) {
		struct elf_load_seg seg;

		cr_assert_eq(elfsym__seg_for_offset(ef, segs[i].offset + segs[i].filesz - 1, &seg),
			     0);
		cr_assert_eq(seg.vaddr, segs[i].vaddr, "segment %d", i);
		cr_assert_eq(seg.offset, segs[i].offset, "segment %d", i);
		cr_assert_eq(seg.filesz, segs[i].filesz, "segment %d", i);
	}
	elfsym__free(ef);
}

Test(elfsym, debian_offsets_match_readelf)
{
	check_offsets_against_readelf(DEBIAN_PY, 1);
}

Test(elfsym, libpython_offsets_match_readelf)
{
	check_offsets_against_readelf(PYENV_LIB, 0);
}

Test(elfsym, debian_below_first_segment_is_out_of_range)
{
	struct elf_file *ef = open_ok(DEBIAN_PY);
	uint64_t off;

	cr_assert_eq(elfsym__vaddr_to_offset(ef, 0x1000, &off), -ERANGE);
	cr_assert_eq(elfsym__read(ef, 0x1000, &off, sizeof(off)), -ERANGE);
	elfsym__free(ef);
}

static void check_version(const char *path, uint32_t want, unsigned int micro)
{
	struct elf_file *ef = open_ok(path);
	unsigned int ma, mi, mc;
	uint64_t addr;
	uint32_t hex = 0;

	cr_assert_eq(elfsym__symbol(ef, "Py_Version", &addr), 0);
	cr_assert_eq(elfsym__read(ef, addr, &hex, sizeof(hex)), 0);
	cr_assert_eq(hex, want, "%s: Py_Version %#x", path, hex);
	target_decode_version(hex, &ma, &mi, &mc);
	cr_assert_eq(ma, 3);
	cr_assert_eq(mi, 11);
	cr_assert_eq(mc, micro);
	elfsym__free(ef);
}

Test(elfsym, py_version_debian)
{
	check_version(DEBIAN_PY, 0x030b02f0, 2); /* 3.11.2 final */
}

Test(elfsym, py_version_pyenv)
{
	check_version(PYENV_LIB, 0x030b07f0, 7); /* 3.11.7 final */
}

Test(elfsym, pie_or_shared)
{
	struct elf_file *deb = open_ok(DEBIAN_PY), *lib = open_ok(PYENV_LIB),
			*pie = open_ok(PYENV_PY);

	cr_assert_eq(elfsym__is_pie_or_shared(deb), 0);
	cr_assert_eq(elfsym__is_pie_or_shared(lib), 1);
	cr_assert_eq(elfsym__is_pie_or_shared(pie), 1);
	elfsym__free(deb);
	elfsym__free(lib);
	elfsym__free(pie);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void expect_rejected(const char *path, int err)
{
	errno = EBADF; /* stale errno from an earlier call must not leak through */
	struct elf_file *ef = elfsym__open(path);

	cr_assert_null(ef, "%s opened", path);
	cr_assert_eq(errno, err, "%s: errno %d (%s), want %d (%s)", path, errno, strerror(errno),
		     err, strerror(err));
}

Test(elfsym, not_elf_or_missing)
{
	expect_rejected("/etc/passwd", ENOEXEC);
	expect_rejected("/nonexistent/python3.11", ENOENT);
}

Test(elfsym, truncated_and_32bit)
{
	char buf[4096], *path = tmp;
	int in = open("/bin/true", O_RDONLY);

	cr_assert_geq(in, 0);
	cr_assert_eq(read(in, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(in);
	make_tmp();
	for (size_t len = 1; len <= 100; len += 33) {
		write_file(path, buf, len);
		expect_rejected(path, ENOEXEC);
	}
	write_file(path, buf, sizeof(Elf64_Ehdr)); /* header only, no phdrs */
	expect_rejected(path, ENOEXEC);
	buf[EI_CLASS] = ELFCLASS32;
	write_file(path, buf, sizeof(buf));
	expect_rejected(path, ENOEXEC);
}

Test(elfsym, empty_file_is_enoexec)
{
	make_tmp();
	expect_rejected(tmp, ENOEXEC);
}

Test(elfsym, hostile_section_offsets_do_not_crash)
{
	/*
	 * A valid header and one SHT_DYNSYM whose sh_offset + sh_size wraps
	 * past 2^64 to a small number: a bounds check written as an addition
	 * accepts it and the symbol loop reads from a non-canonical address.
	 */
	struct {
		Elf64_Ehdr eh;
		Elf64_Shdr sh[2];
	} f = { 0 };
	char *path = tmp;
	uint64_t v;

	make_tmp();
	memcpy(f.eh.e_ident, ELFMAG, SELFMAG);
	f.eh.e_ident[EI_CLASS] = ELFCLASS64;
	f.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	f.eh.e_ident[EI_VERSION] = EV_CURRENT;
	f.eh.e_type = ET_DYN;
	f.eh.e_machine = EM_X86_64;
	f.eh.e_ehsize = sizeof(Elf64_Ehdr);
	f.eh.e_shoff = offsetof(typeof(f), sh);
	f.eh.e_shentsize = sizeof(Elf64_Shdr);
	f.eh.e_shnum = 2;
	f.sh[1].sh_type = SHT_DYNSYM;
	f.sh[1].sh_offset = 1ULL << 63;
	f.sh[1].sh_size = (1ULL << 63) + 2 * sizeof(Elf64_Sym);
	f.sh[1].sh_entsize = sizeof(Elf64_Sym);
	f.sh[1].sh_link = 0;
	write_file(path, &f, sizeof(f));
	struct elf_file *ef = open_ok(path);

	unlink(path); /* mapped already; nothing left behind if the lookup crashes */
	cr_assert_eq(elfsym__symbol(ef, "_PyRuntime", &v), -ENOENT);
	elfsym__free(ef);
}

/*
 * A forged file: header, a .symtab with one defined symbol at index 1 and
 * its .strtab holding `strs` (strs_len bytes, maybe without a final NUL).
 */
struct forged_elf {
	Elf64_Ehdr eh;
	Elf64_Shdr sh[3];
	Elf64_Sym sym[2];
	char strs[32];
};

static void forge(struct forged_elf *f, const char *strs, size_t strs_len)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->eh.e_ident, ELFMAG, SELFMAG);
	f->eh.e_ident[EI_CLASS] = ELFCLASS64;
	f->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	f->eh.e_ident[EI_VERSION] = EV_CURRENT;
	f->eh.e_type = ET_DYN;
	f->eh.e_machine = EM_X86_64;
	f->eh.e_ehsize = sizeof(Elf64_Ehdr);
	f->eh.e_shoff = offsetof(struct forged_elf, sh);
	f->eh.e_shentsize = sizeof(Elf64_Shdr);
	f->eh.e_shnum = 3;
	f->sh[1].sh_type = SHT_SYMTAB;
	f->sh[1].sh_offset = offsetof(struct forged_elf, sym);
	f->sh[1].sh_size = sizeof(f->sym);
	f->sh[1].sh_entsize = sizeof(Elf64_Sym);
	f->sh[1].sh_link = 2;
	f->sh[2].sh_type = SHT_STRTAB;
	f->sh[2].sh_offset = offsetof(struct forged_elf, strs);
	f->sh[2].sh_size = strs_len;
	memcpy(f->strs, strs, strs_len);
	f->sym[1].st_name = 1;
	f->sym[1].st_shndx = 1;
	f->sym[1].st_value = 0x1234;
}

static int forged_lookup(const void *f, const char *name, uint64_t *v)
{
	struct elf_file *ef;
	int rc;

	if (strstr(tmp, "XXXXXX"))
		make_tmp();
	write_file(tmp, f, sizeof(struct forged_elf));
	ef = open_ok(tmp);
	rc = elfsym__symbol(ef, name, v);
	elfsym__free(ef);
	return rc;
}

/* Found by fuzz_elfsym: a string table cut inside a name matched every
 * longer name with that prefix (strncmp bounded by the table's end). */
Test(elfsym, cut_string_table_matches_no_prefix)
{
	struct forged_elf f;
	uint64_t v = 0;

	forge(&f, "\0Py_Version", 12); /* whole, terminated: the control */
	cr_assert_eq(forged_lookup(&f, "Py_Version", &v), 0);
	cr_assert_eq(v, 0x1234);
	cr_assert_eq(forged_lookup(&f, "Py_Ver", &v), -ENOENT);
	forge(&f, "\0Py_Ver", 7); /* cut: no NUL after "Py_Ver" */
	cr_assert_eq(forged_lookup(&f, "Py_Version", &v), -ENOENT);
	cr_assert_eq(forged_lookup(&f, "Py_Ver", &v), -ENOENT);
}

/* Found by fuzz_elfsym (UBSan: misaligned Elf64_Phdr/Shdr/Sym loads): a
 * linker aligns these tables; a file that does not is refused. */
Test(elfsym, misaligned_tables_are_refused)
{
	size_t at = offsetof(struct forged_elf, sym) + 20;
	unsigned char raw[sizeof(struct forged_elf)];
	struct forged_elf f;
	uint64_t v = 0;

	forge(&f, "\0Py_Version", 12);
	cr_assert_eq(forged_lookup(&f, "Py_Version", &v), 0, "the control opens");
	f.eh.e_shoff += 1;
	write_file(tmp, &f, sizeof(f));
	expect_rejected(tmp, ENOEXEC);
	forge(&f, "\0Py_Version", 12);
	f.eh.e_phoff = 4;
	write_file(tmp, &f, sizeof(f));
	expect_rejected(tmp, ENOEXEC);
	/* A one-symbol .symtab at an offset 4 bytes off alignment: skipped. */
	forge(&f, "\0Py_Version", 12);
	f.sh[1].sh_offset = at;
	f.sh[1].sh_size = sizeof(Elf64_Sym);
	memcpy(raw, &f, sizeof(f));
	memcpy(raw + at, &f.sym[1], sizeof(Elf64_Sym));
	cr_assert_eq(forged_lookup(raw, "Py_Version", &v), -ENOENT);
}
