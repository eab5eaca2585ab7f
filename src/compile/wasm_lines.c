/*
 * wasm_lines.c — a compact reader of DWARF line tables (.debug_line,
 * versions 2 to 5) in wasm modules: the source file and line where each
 * defined function's code starts, which a crash report prints beside the
 * function's name.
 *
 * In a wasm module DWARF addresses are offsets into the code section's
 * contents. Function i owns the addresses from the end of function i-1's
 * body to the end of its own (its size field included), so every row of
 * the table falls in at most one function; the row with the lowest address
 * in a function gives its file and line (the line of its opening, where
 * clang and rustc put the first row). Finer positions — the line of the
 * trapping instruction, of each call — would need the wasm offset of every
 * native return address, which wasm2c's C does not carry.
 *
 * Only what that needs is read: the header's file table (v5's entry
 * formats with inline strings, .debug_line_str and .debug_str offsets,
 * and the constant forms; a unit with any other form is skipped) and the
 * line-number program's rows. Everything comes from the guest: each read
 * is checked against its unit's end, counts against the bytes left, and
 * the program's every step consumes a byte, so the work is linear in the
 * section and nothing reads outside it. A malformed unit ends the reading.
 *
 * Alternatives rejected: libdw reads ELF only (a wasm module is not one),
 * and no Debian library reads DWARF in wasm; LLVM's own reader would mean
 * linking LLVM.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wasm_lines.h"

#define NO_FILE UINT32_MAX

/* A bounded cursor over [p, end). */
struct cur {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t take(struct cur *c, size_t n)
{
	uint64_t v = 0;
	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = true;
		c->p = c->end;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += n;
	return v;
}

static uint64_t uleb(struct cur *c)
{
	uint64_t v = 0;
	for (unsigned shift = 0; !c->bad; shift += 7) {
		uint8_t b = (uint8_t)take(c, 1);
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
	}
	return v;
}

static int64_t sleb(struct cur *c)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b = 0;
	do {
		b = (uint8_t)take(c, 1);
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while ((b & 0x80) && !c->bad);
	if (shift < 64 && (b & 0x40))
		v |= ~0ull << shift;
	return (int64_t)v;
}

static void skip(struct cur *c, uint64_t n)
{
	if (c->bad || (uint64_t)(c->end - c->p) < n) {
		c->bad = true;
		c->p = c->end;
		return;
	}
	c->p += n;
}

/* A NUL-terminated string inside the cursor's range (its bytes are the
 * section's: not copied), or NULL. */
static const char *cstr(struct cur *c, size_t *len)
{
	if (c->bad)
		return NULL;
	const uint8_t *nul = memchr(c->p, 0, (size_t)(c->end - c->p));
	if (nul == NULL) {
		c->bad = true;
		c->p = c->end;
		return NULL;
	}
	const char *s = (const char *)c->p;
	*len = (size_t)(nul - c->p);
	c->p = nul + 1;
	return s;
}

/* A string at offset off of a string section (v5's strp forms), or NULL. */
static const char *section_str(const uint8_t *sec, size_t seclen, uint64_t off, size_t *len)
{
	if (sec == NULL || off >= seclen)
		return NULL;
	struct cur c = { sec + off, sec + seclen, false };
	return cstr(&c, len);
}

/* ---- the file table of one unit ---- */

struct str {
	const char *p;
	size_t len;
};

struct unit_file {
	struct str name;
	uint64_t dir;
	uint32_t global;          /* index in the output's files, or NO_FILE */
};

struct unit {
	uint16_t version;
	bool dwarf64;
	uint8_t min_inst, line_base_raw, line_range, opcode_base;
	const uint8_t *std_lengths;   /* opcode_base - 1 of them */
	struct str *dirs;
	uint64_t ndirs;
	struct unit_file *files;
	uint64_t nfiles;
};

struct strings {                  /* the string sections (v5) */
	const uint8_t *line_str, *str;
	size_t line_str_len, str_len;
};

/* The output being built. */
struct out {
	struct engine_sources *s;
	uint32_t capfiles;
	/* s->files by name: 1 + index, 0 empty (open addressing; at most half
	 * full), so a table of many files costs no quadratic search */
	uint32_t *hash;
	uint32_t caphash;
	/* per defined function: its lowest row's address so far */
	uint32_t *best;
	/* the end of each function's range, ascending */
	uint32_t *ends;
};

/* One attribute value of v5's entry formats: a string (path), or a
 * number; false for a form this reader does not know (the unit is
 * skipped). */
static bool read_form(struct cur *c, uint64_t form, bool dwarf64, const struct strings *st,
                      struct str *s, uint64_t *num)
{
	size_t off = dwarf64 ? 8 : 4;
	s->p = NULL;
	s->len = 0;
	*num = 0;
	switch (form) {
	case 0x08: /* DW_FORM_string */
		s->p = cstr(c, &s->len);
		return !c->bad;
	case 0x1f: /* DW_FORM_line_strp */
		s->p = section_str(st->line_str, st->line_str_len, take(c, off), &s->len);
		return !c->bad;
	case 0x0e: /* DW_FORM_strp */
		s->p = section_str(st->str, st->str_len, take(c, off), &s->len);
		return !c->bad;
	case 0x0f: /* DW_FORM_udata */
		*num = uleb(c);
		return !c->bad;
	case 0x0b: *num = take(c, 1); return !c->bad;   /* data1 */
	case 0x05: *num = take(c, 2); return !c->bad;   /* data2 */
	case 0x06: *num = take(c, 4); return !c->bad;   /* data4 */
	case 0x07: *num = take(c, 8); return !c->bad;   /* data8 */
	case 0x1e: skip(c, 16); return !c->bad;         /* data16 (MD5) */
	case 0x09: skip(c, uleb(c)); return !c->bad;    /* block */
	}
	return false;
}

/* v5: directories or file names, each an entry of the given formats. */
static bool read_entries_v5(struct cur *c, const struct unit *u, const struct strings *st,
                            bool files, void **out, uint64_t *count)
{
	uint8_t nformats = (uint8_t)take(c, 1);
	uint64_t formats[2 * 255];
	for (unsigned i = 0; i < nformats; i++) {
		formats[2 * i] = uleb(c);
		formats[2 * i + 1] = uleb(c);
	}
	uint64_t n = uleb(c);
	if (c->bad || n > (uint64_t)(c->end - c->p))   /* each entry takes a byte */
		return false;
	size_t each = files ? sizeof(struct unit_file) : sizeof(struct str);
	void *v = calloc(n ? n : 1, each);
	if (v == NULL)
		return false;
	for (uint64_t k = 0; k < n; k++) {
		struct str path = { NULL, 0 };
		uint64_t dir = 0;
		for (unsigned i = 0; i < nformats; i++) {
			struct str s;
			uint64_t num;
			if (!read_form(c, formats[2 * i + 1], u->dwarf64, st, &s, &num)) {
				free(v);
				return false;
			}
			if (formats[2 * i] == 1)        /* DW_LNCT_path */
				path = s;
			else if (formats[2 * i] == 2)   /* DW_LNCT_directory_index */
				dir = num;
		}
		if (files)
			((struct unit_file *)v)[k] = (struct unit_file){ path, dir, NO_FILE };
		else
			((struct str *)v)[k] = path;
	}
	*out = v;
	*count = n;
	return true;
}

/* v2-v4: NUL-terminated lists ending with an empty string. */
static bool read_tables_v4(struct cur *c, struct unit *u)
{
	const uint8_t *start = c->p;
	uint64_t n = 0;
	size_t len;
	while (cstr(c, &len) != NULL && len > 0)
		n++;
	if (c->bad || (u->dirs = calloc(n + 1, sizeof(*u->dirs))) == NULL)
		return false;
	/* Directory 0 is the compilation directory, which v4 leaves out. */
	c->p = start;
	for (uint64_t i = 1; i <= n; i++)
		u->dirs[i].p = cstr(c, &u->dirs[i].len);
	cstr(c, &len);
	u->ndirs = n + 1;
	start = c->p;
	n = 0;
	while (cstr(c, &len) != NULL && len > 0) {
		uleb(c);
		uleb(c);
		uleb(c);
		n++;
	}
	if (c->bad || (u->files = calloc(n + 1, sizeof(*u->files))) == NULL)
		return false;
	/* Files are numbered from 1. */
	c->p = start;
	for (uint64_t i = 1; i <= n; i++) {
		u->files[i].name.p = cstr(c, &u->files[i].name.len);
		u->files[i].dir = uleb(c);
		u->files[i].global = NO_FILE;
		uleb(c);
		uleb(c);
	}
	u->files[0].global = NO_FILE;
	u->nfiles = n + 1;
	return !c->bad;
}

/* ---- the output's files ---- */

/* "dir/name" (name alone when absolute, or in the compilation
 * directory), as a new string. */
static char *file_path(const struct unit *u, const struct unit_file *f)
{
	struct str dir = { NULL, 0 };
	if (f->name.len > 0 && f->name.p[0] != '/' && f->dir > 0 && f->dir < u->ndirs)
		dir = u->dirs[f->dir];
	size_t n = dir.len + (dir.len ? 1 : 0) + f->name.len;
	char *p = malloc(n + 1);
	if (p == NULL)
		return NULL;
	if (dir.len)
		memcpy(p, dir.p, dir.len);
	if (dir.len)
		p[dir.len] = '/';
	memcpy(p + n - f->name.len, f->name.p, f->name.len);
	p[n] = '\0';
	return p;
}

static uint32_t name_hash(const char *p)
{
	uint32_t h = 2166136261u;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h;
}

/* The slot of the hash where path is, or the empty one where it goes. */
static uint32_t *hash_slot(struct out *o, const char *path)
{
	uint32_t mask = o->caphash - 1;
	for (uint32_t i = name_hash(path) & mask;; i = (i + 1) & mask)
		if (o->hash[i] == 0 || strcmp(o->s->files[o->hash[i] - 1], path) == 0)
			return &o->hash[i];
}

/* Room for one more file in s->files and the hash. */
static bool grow_files(struct out *o)
{
	struct engine_sources *s = o->s;
	if (s->nfiles == UINT32_MAX / 4)
		return false;
	if (s->nfiles == o->capfiles) {
		uint32_t cap = o->capfiles ? 2 * o->capfiles : 16;
		char **f = realloc(s->files, cap * sizeof(*f));
		if (f == NULL)
			return false;
		s->files = f;
		o->capfiles = cap;
	}
	if (2 * (s->nfiles + 1) > o->caphash) {
		uint32_t cap = o->caphash ? 2 * o->caphash : 32;
		uint32_t *old = o->hash, oldcap = o->caphash;
		if ((o->hash = calloc(cap, sizeof(*o->hash))) == NULL) {
			o->hash = old;
			return false;
		}
		o->caphash = cap;
		for (uint32_t i = 0; i < oldcap; i++)
			if (old[i] != 0)
				*hash_slot(o, s->files[old[i] - 1]) = old[i];
		free(old);
	}
	return true;
}

/* The output's index of the unit's file k (added, or found already
 * there), or NO_FILE. */
static uint32_t global_file(struct out *o, struct unit *u, uint64_t k)
{
	if (k >= u->nfiles || u->files[k].name.p == NULL)
		return NO_FILE;
	if (u->files[k].global != NO_FILE)
		return u->files[k].global;
	char *path = file_path(u, &u->files[k]);
	if (path == NULL || !grow_files(o)) {
		free(path);
		return NO_FILE;
	}
	struct engine_sources *s = o->s;
	uint32_t *slot = hash_slot(o, path);
	if (*slot != 0) {
		free(path);
		return u->files[k].global = *slot - 1;
	}
	s->files[s->nfiles] = path;
	*slot = s->nfiles + 1;
	return u->files[k].global = s->nfiles++;
}

/* A row: address addr is in file `file` at `line`. */
static void row(struct out *o, struct unit *u, uint64_t addr, uint64_t file, uint64_t line)
{
	struct engine_sources *s = o->s;
	if (line == 0 || line > UINT32_MAX || addr >= o->ends[s->nfuncs - 1])
		return;
	uint32_t lo = 0, hi = s->nfuncs - 1;   /* the first end above addr */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (o->ends[mid] > addr)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (s->line[lo] != 0 && o->best[lo] <= addr)
		return;
	uint32_t g = global_file(o, u, file);
	if (g == NO_FILE)
		return;
	o->best[lo] = (uint32_t)addr;
	s->file[lo] = g;
	s->line[lo] = (uint32_t)line;
}

/* ---- the line-number program ---- */

static void run_program(struct cur *c, struct unit *u, struct out *o)
{
	uint64_t addr = 0, file = 1, line = 1;
	int8_t line_base = (int8_t)u->line_base_raw;
	while (c->p < c->end && !c->bad) {
		uint8_t op = (uint8_t)take(c, 1);
		if (op >= u->opcode_base) {
			uint8_t adj = op - u->opcode_base;
			addr += (uint64_t)(adj / u->line_range) * u->min_inst;
			line += (uint64_t)(int64_t)(line_base + adj % u->line_range);
			row(o, u, addr, file, line);
			continue;
		}
		switch (op) {
		case 0: {                        /* extended */
			uint64_t len = uleb(c);
			if (len == 0 || len > (uint64_t)(c->end - c->p)) {
				c->bad = true;
				break;
			}
			const uint8_t *next = c->p + len;
			uint8_t sub = (uint8_t)take(c, 1);
			if (sub == 1) {              /* end_sequence */
				addr = 0;
				file = 1;
				line = 1;
			} else if (sub == 2 && len - 1 <= 8) {   /* set_address */
				addr = take(c, (size_t)(len - 1));
			}
			c->p = next;
			break;
		}
		case 1: row(o, u, addr, file, line); break;            /* copy */
		case 2: addr += uleb(c) * u->min_inst; break;          /* advance_pc */
		case 3: line += (uint64_t)sleb(c); break;              /* advance_line */
		case 4: file = uleb(c); break;                         /* set_file */
		case 8:                                                /* const_add_pc */
			addr += (uint64_t)((255 - u->opcode_base) / u->line_range) * u->min_inst;
			break;
		case 9: addr += take(c, 2); break;                     /* fixed_advance_pc */
		default:                         /* the rest: skip their operands */
			for (uint8_t i = 0; i < u->std_lengths[op - 1] && !c->bad; i++)
				uleb(c);
			break;
		}
	}
}

/* Read the unit at c (which it moves past); false when the section can be
 * read no further. */
static bool read_unit(struct cur *sec, const struct strings *st, struct out *o)
{
	struct unit u = { 0 };
	uint64_t length = take(sec, 4);
	if (length == 0xffffffffu) {
		u.dwarf64 = true;
		length = take(sec, 8);
	}
	if (sec->bad || length > (uint64_t)(sec->end - sec->p))
		return false;
	struct cur c = { sec->p, sec->p + length, false };
	sec->p += length;
	u.version = (uint16_t)take(&c, 2);
	if (u.version < 2 || u.version > 5)
		return true;                      /* a version not read: skip it */
	if (u.version >= 5)
		skip(&c, 2);                      /* address and selector sizes */
	uint64_t hlen = take(&c, u.dwarf64 ? 8 : 4);
	if (c.bad || hlen > (uint64_t)(c.end - c.p))
		return false;
	const uint8_t *program = c.p + hlen;
	u.min_inst = (uint8_t)take(&c, 1);
	if (u.version >= 4)
		take(&c, 1);                      /* max ops per instruction */
	take(&c, 1);                              /* default_is_stmt */
	u.line_base_raw = (uint8_t)take(&c, 1);
	u.line_range = (uint8_t)take(&c, 1);
	u.opcode_base = (uint8_t)take(&c, 1);
	if (c.bad || u.line_range == 0 || u.opcode_base == 0)
		return false;
	u.std_lengths = c.p;
	skip(&c, u.opcode_base - 1u);
	struct cur h = { c.p, program, c.bad };
	bool ok = u.version >= 5
	          ? read_entries_v5(&h, &u, st, false, (void **)&u.dirs, &u.ndirs) &&
	            read_entries_v5(&h, &u, st, true, (void **)&u.files, &u.nfiles)
	          : read_tables_v4(&h, &u);
	if (ok) {
		struct cur p = { program, c.end, false };
		run_program(&p, &u, o);
	}
	free(u.dirs);
	free(u.files);
	return true;
}

/* Each function's range ends where its body does, relative to the code
 * section's contents. */
static bool function_ends(const struct wasm_info *info, struct out *o)
{
	o->ends = malloc(info->nfuncs * sizeof(*o->ends));
	o->best = malloc(info->nfuncs * sizeof(*o->best));
	if (o->ends == NULL || o->best == NULL)
		return false;
	for (uint32_t i = 0; i < info->nfuncs; i++)
		o->ends[i] = info->bodies[i].at + info->bodies[i].len - info->code_section.at;
	return true;
}

static struct engine_sources *sources_new(const struct wasm_info *info)
{
	struct engine_sources *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	atomic_init(&s->refs, 1);
	s->first = info->nfunc_imports;
	s->nfuncs = info->nfuncs;
	s->file = malloc(info->nfuncs * sizeof(*s->file));
	s->line = calloc(info->nfuncs, sizeof(*s->line));
	if (s->file == NULL || s->line == NULL) {
		engine_sources_unref(s);
		return NULL;
	}
	for (uint32_t i = 0; i < info->nfuncs; i++)
		s->file[i] = NO_FILE;
	return s;
}

int wasm_source_lines(const uint8_t *bytes, size_t len, const struct wasm_info *info,
                      struct engine_sources **out)
{
	*out = NULL;
	const struct wasm_span *dl = &info->debug_line;
	if (dl->len == 0 || info->nfuncs == 0 || info->code_section.len == 0 ||
	    (uint64_t)dl->at + dl->len > len)
		return 0;
	struct strings st = { 0 };
	if (info->debug_line_str.len > 0 &&
	    (uint64_t)info->debug_line_str.at + info->debug_line_str.len <= len) {
		st.line_str = bytes + info->debug_line_str.at;
		st.line_str_len = info->debug_line_str.len;
	}
	if (info->debug_str.len > 0 && (uint64_t)info->debug_str.at + info->debug_str.len <= len) {
		st.str = bytes + info->debug_str.at;
		st.str_len = info->debug_str.len;
	}
	struct out o = { .s = sources_new(info) };
	if (o.s == NULL || !function_ends(info, &o)) {
		engine_sources_unref(o.s);
		free(o.ends);
		free(o.best);
		return -ENOMEM;
	}
	struct cur sec = { bytes + dl->at, bytes + dl->at + dl->len, false };
	while (sec.p < sec.end && read_unit(&sec, &st, &o))
		;
	free(o.ends);
	free(o.best);
	free(o.hash);
	bool any = false;
	for (uint32_t i = 0; i < o.s->nfuncs && !any; i++)
		any = o.s->line[i] != 0;
	if (!any) {
		engine_sources_unref(o.s);
		return 0;
	}
	*out = o.s;
	return 0;
}
