/*
 * blob.c — a module's data segments as an ELF relocatable object.
 *
 * Data segments must not go through the C compiler as array literals:
 * wasm2c spells each byte as "0x2a, " and gcc -O2 needed 21.6 s and 2.6 GB
 * for one 16 MiB segment. Instead the bytes go, as they are, into the
 * .rodata of a small object file that the compiler only links; the
 * translation unit refers to them through one hidden symbol.
 *
 * Why an object written here and not `.incbin` in top-level asm: tcc 0.9.27's
 * assembler has no .incbin (gcc's has), and an object works with both.
 * Why not objcopy -I binary: one more process per compile, and its symbol
 * names depend on the file's path.
 *
 * Layout: ELF header; the bytes (.rodata, 16-aligned); .symtab with the
 * null symbol and `symbol` (global, hidden: it does not leave the module);
 * .strtab; .shstrtab; an empty .note.GNU-stack (without it, the linker
 * would ask for an executable stack); the section headers.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"

#if defined(__x86_64__)
#define BLOB_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define BLOB_MACHINE EM_AARCH64
#else
#error "blob.c: add this architecture's ELF machine"
#endif

static const char shstrtab[] = "\0.rodata\0.symtab\0.strtab\0.shstrtab\0.note.GNU-stack";
enum { SH_RODATA = 1, SH_SYMTAB = 9, SH_STRTAB = 17, SH_SHSTRTAB = 25, SH_NOTE = 35 };

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

int blob_write_object(const char *path, const char *symbol,
                      const struct blob_piece *pieces, size_t npieces)
{
	size_t size = 0;
	for (size_t i = 0; i < npieces; i++)
		size += pieces[i].len;
	size_t symlen = strlen(symbol);
	size_t data_off = sizeof(Elf64_Ehdr);                   /* 64: 16-aligned */
	size_t sym_off = align8(data_off + size);
	size_t str_off = sym_off + 2 * sizeof(Elf64_Sym);
	size_t strsz = symlen + 2;
	size_t shstr_off = str_off + strsz;
	size_t sh_off = align8(shstr_off + sizeof(shstrtab));

	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
		             EV_CURRENT, ELFOSABI_NONE },
		.e_type = ET_REL, .e_machine = BLOB_MACHINE, .e_version = EV_CURRENT,
		.e_shoff = sh_off, .e_ehsize = sizeof(Elf64_Ehdr),
		.e_shentsize = sizeof(Elf64_Shdr), .e_shnum = 6, .e_shstrndx = 4,
	};
	Elf64_Sym syms[2] = {
		{ 0 },
		{ .st_name = 1, .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT),
		  .st_other = STV_HIDDEN, .st_shndx = 1, .st_value = 0, .st_size = size },
	};
	Elf64_Shdr sh[6] = {
		{ 0 },
		{ .sh_name = SH_RODATA, .sh_type = SHT_PROGBITS, .sh_flags = SHF_ALLOC,
		  .sh_offset = data_off, .sh_size = size, .sh_addralign = 16 },
		{ .sh_name = SH_SYMTAB, .sh_type = SHT_SYMTAB, .sh_offset = sym_off,
		  .sh_size = sizeof(syms), .sh_link = 3, .sh_info = 1, .sh_addralign = 8,
		  .sh_entsize = sizeof(Elf64_Sym) },
		{ .sh_name = SH_STRTAB, .sh_type = SHT_STRTAB, .sh_offset = str_off,
		  .sh_size = strsz, .sh_addralign = 1 },
		{ .sh_name = SH_SHSTRTAB, .sh_type = SHT_STRTAB, .sh_offset = shstr_off,
		  .sh_size = sizeof(shstrtab), .sh_addralign = 1 },
		{ .sh_name = SH_NOTE, .sh_type = SHT_PROGBITS, .sh_offset = sh_off,
		  .sh_size = 0, .sh_addralign = 1 },
	};
	static const char zeros[8];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = write_all(fd, &eh, sizeof(eh));
	for (size_t i = 0; i < npieces && rc == 0; i++)
		rc = write_all(fd, pieces[i].data, pieces[i].len);
	if (rc == 0)
		rc = write_all(fd, zeros, sym_off - (data_off + size));
	if (rc == 0)
		rc = write_all(fd, syms, sizeof(syms));
	if (rc == 0)
		rc = write_all(fd, "", 1);
	if (rc == 0)
		rc = write_all(fd, symbol, symlen + 1);
	if (rc == 0)
		rc = write_all(fd, shstrtab, sizeof(shstrtab));
	if (rc == 0)
		rc = write_all(fd, zeros, sh_off - (shstr_off + sizeof(shstrtab)));
	if (rc == 0)
		rc = write_all(fd, sh, sizeof(sh));
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	return rc;
}
