/*
 * stackcheck.c — how much native stack each function of a compiled module
 * needs, taken from what the compiler produced, not from the C text.
 *
 * Why after compilation: the entry check (WISP_ENTRY) runs only once a
 * function's frame exists, and wasm2c zeroes locals before it; so a frame
 * must be bounded for the check to mean anything (engine.h: the stack
 * budget). Counting declarations in the C text is not a bound: wasm2c
 * declares block-scoped temporaries (a struct per multi-value call site)
 * whose slots tcc never reuses, and gcc inlines. The compiler knows the
 * real number:
 *
 *   - tcc (fast tier) writes a fixed prologue at every function entry that
 *     reserves the whole frame at once: on x86-64 `push %rbp; mov %rsp,%rbp;
 *     sub $N,%rsp` (N a 32-bit immediate, always), on aarch64 `stp x29, x30,
 *     [sp, #-224]!; (argument spills); mov x29, sp` followed by two slots
 *     holding `sub sp, sp, #imm12` (shifted or not), nops, or `mov x16, #imm;
 *     sub sp, sp, x16, lsl #j` (tcc 0.9.27, arm64-gen.c gfunc_epilog).
 *     Every function of the module is found by scanning its executable
 *     segment for that prologue (tcc's own helpers included; a false match
 *     inside code or data can only make the check stricter), and every wasm
 *     function's entry (the module's table) must start with one, or the
 *     module is refused: an unrecognised prologue means an unknown compiler.
 *     tcc moves the stack pointer elsewhere only to pass arguments on the
 *     stack, at most 16 bytes per parameter of the widest function type in
 *     the module (a v128 takes 16) plus the instance pointer, so that much
 *     is added to every frame.
 *   - gcc (opt tier) reports each function's stack use itself
 *     (-fstack-usage: a .su file, "file:line:col:name<TAB>bytes<TAB>static"
 *     or "dynamic,bounded"); an unbounded ("dynamic") frame is refused. The
 *     numbers include the return address but not the 128-byte red zone a
 *     leaf may use below the stack pointer, which is added.
 *
 * Alternatives rejected: probing each frame from its bottom before use
 * (a store per page at every call, on the hottest path); guard pages per
 * stack (an mprotect per stack splits the slab mappings: a million fibers
 * would need two million mappings, over vm.max_map_count).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stackcheck.h"
#include "../common/util.h"

#define RED_ZONE 128          /* x86-64 System V; aarch64 has none, 128 is safe */

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int64_t stackcheck_tcc_x86_64(const uint8_t *code, size_t len, size_t *insn_len)
{
	static const uint8_t sig[7] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x81, 0xec };
	if (len < 11 || memcmp(code, sig, sizeof(sig)) != 0)
		return -1;
	int32_t n = (int32_t)rd32(code + 7);
	if (n < 0)
		return -1;
	*insn_len = 11;
	return (int64_t)n + 16;      /* + saved %rbp + return address */
}

/* One of the two instructions tcc patches after `mov x29, sp`: the bytes it
 * subtracts from sp, or -1 if it is none of tcc's forms. *pair is set when
 * it is the `mov x16, #imm` of a mov/sub pair (the sub follows). */
static int64_t aarch64_sub(uint32_t w, bool *pair)
{
	*pair = false;
	if (w == 0xd503201f)                         /* nop */
		return 0;
	if ((w & 0xffc003ff) == 0xd10003ff)          /* sub sp, sp, #imm12 */
		return (w >> 10) & 0xfff;
	if ((w & 0xffc003ff) == 0xd14003ff)          /* sub sp, sp, #imm12, lsl #12 */
		return (int64_t)((w >> 10) & 0xfff) << 12;
	if ((w & 0xff80001f) == 0xd2800010) {        /* mov x16, #imm16, lsl #16*hw */
		*pair = true;
		return (int64_t)((w >> 5) & 0xffff) << (16 * ((w >> 21) & 3));
	}
	return -1;
}

int64_t stackcheck_tcc_aarch64(const uint8_t *code, size_t len, size_t *insn_len)
{
	/* stp x29, x30, [sp, #-imm]! with a negative pre-index */
	if (len < 16 || (rd32(code) & 0xffc07fff) != 0xa9807bfd)
		return -1;
	int32_t imm7 = (int32_t)((rd32(code) >> 15) & 0x7f);
	int64_t saved = -(int64_t)((imm7 ^ 0x40) - 0x40) * 8;
	if (saved <= 0)
		return -1;
	/* tcc spills the argument registers (at most 64 words) before
	 * mov x29, sp; the two frame slots follow it. */
	for (size_t i = 4; i + 12 <= len && i <= 4 * 64; i += 4) {
		if (rd32(code + i) != 0x910003fd)
			continue;
		bool pair;
		int64_t lo = aarch64_sub(rd32(code + i + 4), &pair);
		if (lo < 0)
			return -1;
		if (pair) {
			uint32_t w = rd32(code + i + 8);
			if ((w & 0xffffe3ff) != 0xcb3063ff)  /* sub sp, sp, x16, lsl #j */
				return -1;
			*insn_len = i + 12;
			return saved + (lo << ((w >> 10) & 7));
		}
		int64_t hi = aarch64_sub(rd32(code + i + 8), &pair);
		if (hi < 0 || pair)
			return -1;
		*insn_len = i + 12;
		return saved + lo + hi;
	}
	return -1;
}

static int64_t tcc_prologue(const uint8_t *code, size_t len, size_t *insn_len)
{
#if defined(__x86_64__)
	return stackcheck_tcc_x86_64(code, len, insn_len);
#elif defined(__aarch64__)
	return stackcheck_tcc_aarch64(code, len, insn_len);
#else
	(void)code; (void)len; (void)insn_len;
	return -1;
#endif
}

/* A module function's name for a message (escaped: it is guest text). */
static void fn_label(const struct wisp_module_abi *abi, uintptr_t addr,
                     const char *cname, char *out, size_t outlen)
{
	for (uint32_t i = 0; i < abi->nfns; i++) {
		if ((uintptr_t)abi->fns[i].addr == addr) {
			char name[200], fallback[32];
			util_printable(name, sizeof(name), abi->fns[i].name);
			snprintf(fallback, sizeof(fallback), "func[%" PRIu32 "]", abi->fns[i].index);
			if (strcmp(name, fallback) == 0)
				snprintf(out, outlen, "%s", name);
			else
				snprintf(out, outlen, "%s (func[%" PRIu32 "])", name, abi->fns[i].index);
			return;
		}
	}
	if (cname != NULL)
		snprintf(out, outlen, "%s (generated code)", cname);
	else
		snprintf(out, outlen, "a helper of the generated code");
}

/* Bytes for the arguments a call may pass on the stack. */
static uint64_t outgoing_args(const struct wasm_info *info)
{
	uint32_t widest = 0;
	for (uint32_t i = 0; i < info->ntypes; i++)
		if (info->types[i].nparams > widest)
			widest = info->types[i].nparams;
	return 16 * ((uint64_t)widest + 2);
}

struct segment { uintptr_t lo, hi; };

struct find_seg {
	uintptr_t base;
	struct segment seg;
};

static int find_exec_segment(struct dl_phdr_info *pi, size_t size, void *arg)
{
	(void)size;
	struct find_seg *f = arg;
	if (pi->dlpi_addr != f->base)
		return 0;
	for (int i = 0; i < pi->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &pi->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			f->seg.lo = pi->dlpi_addr + ph->p_vaddr;
			f->seg.hi = f->seg.lo + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

static int too_big(char *err, size_t errlen, const char *label, uint64_t need,
                   uint32_t max_frame)
{
	snprintf(err, errlen, "function %s needs %" PRIu64 " bytes of native stack per "
	         "call; wisp allows at most %u KiB per function (its locals, operand "
	         "stack and the results of the calls it makes)", label, need,
	         max_frame / 1024);
	return -E2BIG;
}

static int check_tcc(void *dl, const struct wisp_module_abi *abi, uint64_t extra,
                     uint32_t max_frame, char *err, size_t errlen)
{
	struct link_map *lm = NULL;
	struct find_seg f = { 0 };
	if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL) {
		f.base = lm->l_addr;
		dl_iterate_phdr(find_exec_segment, &f);
	}
	if (f.seg.hi <= f.seg.lo) {
		snprintf(err, errlen, "cannot verify the native stack use of the compiled "
		         "module: its code segment was not found");
		return -EPROTO;
	}
	const uint8_t *lo = (const uint8_t *)f.seg.lo, *hi = (const uint8_t *)f.seg.hi;
	/* Every wasm function must start with a prologue this file knows. */
	for (uint32_t i = 0; i < abi->nfns; i++) {
		const uint8_t *at = abi->fns[i].addr;
		size_t n;
		if (at < lo || at >= hi || tcc_prologue(at, (size_t)(hi - at), &n) < 0) {
			char label[300];
			fn_label(abi, (uintptr_t)at, NULL, label, sizeof(label));
			snprintf(err, errlen, "cannot verify the native stack use of function "
			         "%s: its code does not start with the prologue of tcc 0.9.27 "
			         "(the fast tier needs tcc; set WISP_FAST_CC to it)", label);
			return -EPROTO;
		}
	}
	/* Every function there is, helpers included. */
	for (const uint8_t *p = lo; p < hi; p += 1) {
		size_t n;
		int64_t frame = tcc_prologue(p, (size_t)(hi - p), &n);
		if (frame < 0)
			continue;
		if ((uint64_t)frame + extra > max_frame) {
			char label[300];
			fn_label(abi, (uintptr_t)p, NULL, label, sizeof(label));
			return too_big(err, errlen, label, (uint64_t)frame + extra, max_frame);
		}
	}
	return 0;
}

/* The wasm function whose body holds tu.c line `line`, as a label. */
static void line_label(const struct wisp_module_abi *abi, unsigned long line,
                       const char *cname, char *out, size_t outlen)
{
	for (uint32_t i = 0; i < abi->nfns; i++) {
		if (abi->fns[i].line_first != 0 && line >= abi->fns[i].line_first &&
		    line <= abi->fns[i].line_last) {
			fn_label(abi, (uintptr_t)abi->fns[i].addr, NULL, out, outlen);
			return;
		}
	}
	fn_label(abi, 0, cname, out, outlen);
}

/* One .su line: "<file>:<line>:<col>:<name>\t<bytes>\t<kind>". */
static int check_su_line(char *s, const struct wisp_module_abi *abi, uint32_t max_frame,
                         char *err, size_t errlen)
{
	char *tab1 = strchr(s, '\t');
	char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
	if (tab2 == NULL)
		return -EPROTO;
	*tab1 = *tab2 = '\0';
	char *name = strrchr(s, ':');
	if (name == NULL)
		return -EPROTO;
	*name++ = '\0';
	char *col = strrchr(s, ':');
	if (col == NULL)
		return -EPROTO;
	*col = '\0';
	char *line = strrchr(s, ':');
	unsigned long lineno = line ? strtoul(line + 1, NULL, 10) : 0;
	char *end;
	unsigned long long bytes = strtoull(tab1 + 1, &end, 10);
	if (end == tab1 + 1)
		return -EPROTO;
	const char *kind = tab2 + 1;
	bool bounded = strcmp(kind, "static") == 0 || strstr(kind, "bounded") != NULL;
	char label[300];
	if (!bounded) {
		line_label(abi, lineno, name, label, sizeof(label));
		snprintf(err, errlen, "function %s has a frame whose size the C compiler "
		         "cannot bound (%s); wisp refuses it", label, kind);
		return -E2BIG;
	}
	if (bytes + RED_ZONE > max_frame) {
		line_label(abi, lineno, name, label, sizeof(label));
		return too_big(err, errlen, label, bytes + RED_ZONE, max_frame);
	}
	return 0;
}

/* One stack-usage file: its lines checked, *lines counted. */
static int check_su_file(const char *path, const struct wisp_module_abi *abi,
                         uint32_t max_frame, uint32_t *lines, char *err, size_t errlen)
{
	uint8_t *text = NULL;
	size_t len;
	int rc = util_read_file(path, &text, &len);
	if (rc != 0) {
		snprintf(err, errlen, "cannot verify the native stack use of the compiled "
		         "module: cannot read %s: %s", path, strerror(-rc));
		return -EPROTO;
	}
	uint32_t n = 0;
	char *save = NULL;
	for (char *s = strtok_r((char *)text, "\n", &save); s != NULL && rc == 0;
	     s = strtok_r(NULL, "\n", &save), n++) {
		rc = check_su_line(s, abi, max_frame, err, errlen);
		if (rc == -EPROTO)
			snprintf(err, errlen, "cannot verify the native stack use of the compiled "
			         "module: unexpected line %" PRIu32 " in %s", n + 1, path);
	}
	free(text);
	*lines += n;
	return rc;
}

/* Every stack-usage file gcc wrote in workdir: one per unit compiled (its
 * name depends on the gcc version: <output>-<input>.su or <input>.su). */
static int check_gcc(const struct wisp_module_abi *abi, const char *workdir,
                     uint32_t max_frame, char *err, size_t errlen)
{
	DIR *d = opendir(workdir);
	int rc = d == NULL ? -errno : 0;
	uint32_t files = 0, lines = 0;
	struct dirent *e;
	while (rc == 0 && d != NULL && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n <= 3 || strcmp(e->d_name + n - 3, ".su") != 0)
			continue;
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", workdir, e->d_name);
		rc = check_su_file(path, abi, max_frame, &lines, err, errlen);
		files++;
	}
	if (d != NULL)
		closedir(d);
	if (rc == 0 && files == 0)
		rc = -ENOENT;
	if (rc == -ENOENT || (rc < 0 && files == 0)) {
		snprintf(err, errlen, "cannot verify the native stack use of the compiled "
		         "module: the C compiler wrote no stack-usage file (-fstack-usage): %s",
		         strerror(-rc));
		return -EPROTO;
	}
	if (rc == 0 && lines == 0 && abi->nfns > 0) {
		/* gcc keeps at least the export functions: empty files are wrong */
		snprintf(err, errlen, "cannot verify the native stack use of the compiled "
		         "module: the stack-usage files in %s are empty", workdir);
		rc = -EPROTO;
	}
	return rc;
}

int stackcheck_module(void *dl, const struct wisp_module_abi *abi,
                      const struct wasm_info *info, const char *workdir,
                      uint32_t max_frame, char *err, size_t errlen)
{
	if (abi->flags & WISP_MODULE_FRAME_POINTERS)
		return check_tcc(dl, abi, outgoing_args(info), max_frame, err, errlen);
	return check_gcc(abi, workdir, max_frame, err, errlen);
}
