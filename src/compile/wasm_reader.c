/*
 * wasm_reader.c — reading a WebAssembly binary module without trusting it.
 *
 * One cursor (struct rd) walks the bytes. It always has a current region
 * [pos, end): the whole file, then one section, then possibly one function
 * body; no read goes past `end`, and a region is left only after checking
 * that its contents used exactly its declared size.
 *
 * Errors are sticky: the first failure formats the message, sets `failed`
 * and moves pos to end; from then on every read returns 0 and every loop
 * (all of the form `i < n && !r->failed`) stops. So the parsers read
 * straight through without testing each read, and cannot loop forever:
 * each loop step consumes at least one byte or fails, and every count is
 * checked against the bytes left in its region (times the smallest encoding
 * of one element) before the loop or any allocation, so time and memory
 * are linear in the input.
 *
 * Everything a wasm_info points to lives in one arena it owns, so a failure
 * anywhere just drops the arena.
 *
 * Alternatives rejected: setjmp/longjmp out of deep reads (shorter, but it
 * hides control flow and the sticky flag costs one test per loop); mapping
 * the input and returning pointers into it (the caller would have to keep
 * the bytes alive, and names must be NUL-terminated anyway).
 *
 * The name section is located during the main pass but parsed after it,
 * because it may precede the sections that size the function index space;
 * it gets its own cursor, so its errors are recorded in names_error instead
 * of rejecting the module.
 */
#include "compile/wasm_reader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/abi.h"

/* ---- arena ------------------------------------------------------------- */

#define ARENA_CHUNK ((size_t)64 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

/* Zeroed, max_align_t-aligned memory from the arena, or NULL when out of
 * memory. Requests larger than a chunk get a chunk of their own, linked
 * behind the current one so its free space stays in use. */
static void *arena_alloc(struct arena_chunk **arena, size_t n)
{
	const size_t align = _Alignof(max_align_t);
	struct arena_chunk *c = *arena;

	if (n > SIZE_MAX / 2)
		return NULL;
	n = (n + align - 1) & ~(align - 1);
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		struct arena_chunk *nc = malloc(sizeof(*nc) + cap);
		if (!nc)
			return NULL;
		nc->used = 0;
		nc->cap = cap;
		if (c && n > ARENA_CHUNK) {
			nc->next = c->next;
			c->next = nc;
		} else {
			nc->next = c;
			*arena = nc;
		}
		c = nc;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

static void arena_free(struct arena_chunk *c)
{
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
}

/* ---- the cursor ---------------------------------------------------------- */

struct rd {
	const uint8_t *buf;
	size_t len;              /* of the whole module */
	size_t pos, end;         /* cursor and end of the current region */
	const char *region;      /* e.g. "section 'type'"; NULL for the file */
	char region_buf[64];     /* storage for a formatted region name */
	bool failed;
	int status;              /* -EINVAL or -ENOMEM once failed */
	char *err;
	size_t errlen;
	struct arena_chunk **arena;
};

struct region_save {
	size_t start, end;
	const char *region;
};

__attribute__((format(printf, 2, 3)))
static void fail(struct rd *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = true;
	if (!r->status)
		r->status = -EINVAL;
	if (r->errlen) {
		va_start(ap, fmt);
		vsnprintf(r->err, r->errlen, fmt, ap);
		va_end(ap);
	}
	r->pos = r->end;
}

static void fail_oom(struct rd *r)
{
	if (!r->failed)
		r->status = -ENOMEM;
	fail(r, "out of memory while reading the module");
}

/* A read of `what`, starting at byte `at`, ran into the end of the current
 * region. */
static void fail_eof(struct rd *r, size_t at, const char *what)
{
	if (!r->region)
		fail(r, "truncated module: %s at byte %zu is cut off "
		     "(the file has %zu bytes)", what, at, r->len);
	else
		fail(r, "unexpected end of %s at byte %zu while reading %s",
		     r->region, r->end, what);
}

static void *rd_alloc(struct rd *r, size_t n)
{
	void *p;

	if (r->failed)
		return NULL;
	p = arena_alloc(r->arena, n);
	if (!p)
		fail_oom(r);
	return p;
}

/* Room for n elements of size sz; NULL for n == 0 or after a failure.
 * n was bounded by the input size, so n * sz cannot overflow on a 64-bit
 * host; the check keeps 32-bit hosts honest. */
static void *rd_array(struct rd *r, uint32_t n, size_t sz)
{
	if (n == 0)
		return NULL;
	if (n > SIZE_MAX / sz) {
		fail_oom(r);
		return NULL;
	}
	return rd_alloc(r, (size_t)n * sz);
}

/* Make the next `size` bytes (already known to fit) the current region. */
static struct region_save enter(struct rd *r, size_t size, const char *name)
{
	struct region_save s = { r->pos, r->end, r->region };

	r->end = r->pos + size;
	r->region = name;
	return s;
}

/* Back to the enclosing region; the contents must have filled this one. */
static void leave(struct rd *r, struct region_save s)
{
	if (!r->failed && r->pos != r->end)
		fail(r, "%s is %zu bytes long but its contents end after %zu "
		     "bytes (at byte %zu)", r->region, r->end - s.start,
		     r->pos - s.start, r->pos);
	if (r->failed)
		r->pos = s.end;
	r->end = s.end;
	r->region = s.region;
}

static uint8_t rd_byte(struct rd *r, const char *what)
{
	if (r->failed)
		return 0;
	if (r->pos >= r->end) {
		fail_eof(r, r->pos, what);
		return 0;
	}
	return r->buf[r->pos++];
}

static void rd_skip(struct rd *r, size_t n, const char *what)
{
	if (r->failed)
		return;
	if (n > r->end - r->pos) {
		fail_eof(r, r->pos, what);
		return;
	}
	r->pos += n;
}

/* Does the last byte b of a maximal-length LEB128 encode a value that fits,
 * given that only `used` of its 7 payload bits belong to the value? The
 * rest must be zero (unsigned) or copies of the sign bit (signed). */
static bool leb_last_fits(uint8_t b, unsigned used, bool is_signed)
{
	if (!is_signed)
		return (b >> used) == 0;
	uint8_t mask = (uint8_t)(0x7f & ~((1u << (used - 1)) - 1));
	return (b & mask) == 0 || (b & mask) == mask;
}

/* An unsigned or signed LEB128 of at most `bits` (32 or 64) bits, in the
 * minimal number of bytes the spec allows ((bits + 6) / 7 at most). */
static uint64_t rd_leb(struct rd *r, unsigned bits, bool is_signed,
                       const char *what)
{
	const unsigned maxlen = (bits + 6) / 7;
	size_t at = r->pos;
	uint64_t v = 0;

	if (r->failed)
		return 0;
	for (unsigned i = 0; i < maxlen; i++) {
		unsigned shift = 7 * i;
		if (r->pos >= r->end) {
			fail_eof(r, at, what);
			return 0;
		}
		uint8_t b = r->buf[r->pos++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (b & 0x80)
			continue;
		if (i == maxlen - 1 && !leb_last_fits(b, bits - shift, is_signed)) {
			fail(r, "malformed LEB128 at byte %zu (%s): the value does "
			     "not fit in %u bits", at, what, bits);
			return 0;
		}
		if (is_signed && shift + 7 < 64 && (b & 0x40))
			v |= ~(uint64_t)0 << (shift + 7);
		return v;
	}
	fail(r, "malformed LEB128 at byte %zu (%s): longer than %u bytes",
	     at, what, maxlen);
	return 0;
}

static uint32_t rd_u32(struct rd *r, const char *what)
{
	return (uint32_t)rd_leb(r, 32, false, what);
}

/* A vector length: at most the bytes left divided by the smallest encoding
 * of one element, and at most `limit`. */
static uint32_t rd_count(struct rd *r, const char *what, size_t min_size,
                         uint32_t limit)
{
	char label[64];
	size_t at = r->pos;

	snprintf(label, sizeof(label), "number of %s", what);
	uint32_t n = rd_u32(r, label);
	if (r->failed)
		return 0;
	if (n > (r->end - r->pos) / min_size) {
		fail(r, "%s declares %" PRIu32 " %s at byte %zu, but only %zu "
		     "bytes are left for them", r->region, n, what, at,
		     r->end - r->pos);
		return 0;
	}
	if (n > limit) {
		fail(r, "too many %s: %" PRIu32 " at byte %zu (wisp's limit is "
		     "%" PRIu32 ")", what, n, at, limit);
		return 0;
	}
	return n;
}

/* Add n to an index space's size, keeping it within limit. */
static void add_count(struct rd *r, uint32_t *total, uint32_t n,
                      uint32_t limit, const char *what)
{
	if (n > limit - *total) {
		fail(r, "too many %s: the module has more than %" PRIu32
		     " (wisp's limit)", what, limit);
		return;
	}
	*total += n;
}

/* Length of the longest valid UTF-8 prefix of s[0, n): no overlong forms,
 * no surrogates, nothing above U+10FFFF. */
static size_t utf8_valid_prefix(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t len;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return i;
		}
		if (len > n - i)
			return i;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += len;
	}
	return n;
}

/* A byte vector that must fit in the current region; returns its start. */
static const uint8_t *rd_bytes(struct rd *r, uint32_t *len, const char *what)
{
	size_t at = r->pos;

	*len = rd_u32(r, what);
	if (r->failed)
		return NULL;
	if (*len > r->end - r->pos) {
		fail(r, "%s at byte %zu is %" PRIu32 " bytes long, but %s ends "
		     "at byte %zu", what, at, *len, r->region ? r->region :
		     "the file", r->end);
		return NULL;
	}
	const uint8_t *p = r->buf + r->pos;
	r->pos += *len;
	return p;
}

/* A name: a byte vector of valid UTF-8. Returns its bytes (not copied). */
static const uint8_t *rd_name_span(struct rd *r, uint32_t *len,
                                   const char *what)
{
	size_t at = r->pos;
	const uint8_t *p = rd_bytes(r, len, what);

	if (!p)
		return NULL;
	size_t ok = utf8_valid_prefix(p, *len);
	if (ok < *len) {
		fail(r, "%s at byte %zu is not valid UTF-8 (byte 0x%02x at "
		     "byte %zu)", what, at, p[ok], (size_t)(p - r->buf) + ok);
		return NULL;
	}
	return p;
}

static char *arena_strndup(struct rd *r, const uint8_t *p, size_t n)
{
	char *s = rd_alloc(r, n + 1);

	if (s && n)
		memcpy(s, p, n);
	return s;
}

/* An import, export or module name, copied and NUL-terminated. Names with
 * a NUL inside are rejected: as C strings they would silently mean another
 * name (an import "env\0x" would match wisp's "env"). */
static char *rd_name(struct rd *r, const char *what)
{
	size_t at = r->pos;
	uint32_t len;
	const uint8_t *p = rd_name_span(r, &len, what);

	if (!p)
		return NULL;
	if (memchr(p, 0, len)) {
		fail(r, "%s at byte %zu contains a NUL character, which wisp "
		     "does not support", what, at);
		return NULL;
	}
	return arena_strndup(r, p, len);
}

/* ---- types, limits, constant expressions --------------------------------- */

static char valtype_letter(uint8_t b)
{
	switch (b) {
	case 0x7f: return 'i';
	case 0x7e: return 'I';
	case 0x7d: return 'f';
	case 0x7c: return 'F';
	case 0x7b: return 'V';
	case 0x70: return 'r';
	case 0x6f: return 'e';
	default: return 0;
	}
}

static char rd_valtype(struct rd *r, const char *what)
{
	size_t at = r->pos;
	uint8_t b = rd_byte(r, what);
	char c = valtype_letter(b);

	if (!r->failed && b == 0x69)
		fail(r, "exception handling's exnref type (its 2023 encoding, "
		     "try_table) at byte %zu (%s) is not supported: wisp runs the "
		     "legacy encoding (try, catch, delegate) only", at, what);
	else if (!r->failed && !c)
		fail(r, "unsupported value type 0x%02x at byte %zu (%s)",
		     b, at, what);
	return c;
}

/* A reference type: whether it is funcref. */
static bool rd_reftype(struct rd *r, const char *what)
{
	size_t at = r->pos;
	uint8_t b = rd_byte(r, what);

	if (!r->failed && b != 0x70 && b != 0x6f)
		fail(r, "unsupported reference type 0x%02x at byte %zu (%s)",
		     b, at, what);
	return b == 0x70;
}

/* A result type as a NUL-terminated string of letters. */
static char *rd_valtypes(struct rd *r, uint32_t *count, const char *what,
                         uint32_t limit)
{
	uint32_t n = rd_count(r, what, 1, limit);
	char *s = rd_alloc(r, (size_t)n + 1);

	for (uint32_t i = 0; i < n && !r->failed; i++)
		s[i] = rd_valtype(r, what);
	*count = n;
	return s;
}

static uint32_t rd_typeidx(struct rd *r, const struct wasm_info *m,
                           const char *what)
{
	size_t at = r->pos;
	uint32_t idx = rd_u32(r, what);

	if (!r->failed && idx >= m->ntypes)
		fail(r, "%s at byte %zu is type %" PRIu32 ", but the module has "
		     "%" PRIu32 " types", what, at, idx, m->ntypes);
	return idx;
}

static bool rd_mutability(struct rd *r)
{
	size_t at = r->pos;
	uint8_t b = rd_byte(r, "global mutability");

	if (!r->failed && b > 1)
		fail(r, "malformed global mutability 0x%02x at byte %zu", b, at);
	return b == 1;
}

/* Limits flags: bit 0 has-maximum, bit 1 shared (threads), bit 2 64-bit
 * (memory64, table64), bit 3 custom page size. Only bit 0 is supported. */
static void rd_limits(struct rd *r, bool memory, struct wasm_limits *lim)
{
	const char *what = memory ? "memory" : "table";
	size_t at = r->pos;
	uint8_t flags = rd_byte(r, "limits flags");

	if (r->failed)
		return;
	if ((flags & ~0x0f) || (!memory && (flags & 0x0a))) {
		fail(r, "malformed %s limits at byte %zu: unknown flags 0x%02x",
		     what, at, flags);
		return;
	}
	if (flags & 0x04) {
		if (memory)
			fail(r, "memory64 is not supported (memory at byte %zu)", at);
		else
			fail(r, "64-bit tables are not supported (table at byte %zu)",
			     at);
		return;
	}
	if (flags & 0x08) {
		fail(r, "custom page sizes are not supported (memory at byte %zu)",
		     at);
		return;
	}
	if (flags & 0x02) {
		fail(r, "shared memory is not supported (memory at byte %zu)", at);
		return;
	}
	lim->min = rd_u32(r, "minimum size");
	lim->has_max = flags & 1;
	if (lim->has_max)
		lim->max = rd_u32(r, "maximum size");
	if (r->failed)
		return;
	if (memory && lim->min > WASM_MAX_PAGES)
		fail(r, "memory at byte %zu has a minimum of %" PRIu64 " pages, "
		     "over the limit of %u pages (4 GiB)", at, lim->min,
		     WASM_MAX_PAGES);
	else if (memory && lim->has_max && lim->max > WASM_MAX_PAGES)
		fail(r, "memory at byte %zu has a maximum of %" PRIu64 " pages, "
		     "over the limit of %u pages (4 GiB)", at, lim->max,
		     WASM_MAX_PAGES);
	else if (lim->has_max && lim->max < lim->min)
		fail(r, "%s at byte %zu has a maximum size (%" PRIu64 ") below "
		     "its minimum (%" PRIu64 ")", what, at, lim->max, lim->min);
}

/* A constant expression, up to and including its `end`. Only framing: the
 * opcodes constant expressions may hold and their immediates are read;
 * types and indices are left to wasm2c's validator. */
static void rd_const_expr(struct rd *r, const char *what)
{
	while (!r->failed) {
		size_t at = r->pos;
		uint8_t op = rd_byte(r, what);
		if (r->failed)
			return;
		switch (op) {
		case 0x0b: /* end */
			return;
		case 0x41: /* i32.const */
			rd_leb(r, 32, true, "i32.const immediate");
			break;
		case 0x42: /* i64.const */
			rd_leb(r, 64, true, "i64.const immediate");
			break;
		case 0x43: /* f32.const */
			rd_skip(r, 4, "f32.const immediate");
			break;
		case 0x44: /* f64.const */
			rd_skip(r, 8, "f64.const immediate");
			break;
		case 0x23: /* global.get */
			rd_u32(r, "global index");
			break;
		case 0xd0: /* ref.null */
			rd_reftype(r, "ref.null type");
			break;
		case 0xd2: /* ref.func */
			rd_u32(r, "function index");
			break;
		case 0x6a: case 0x6b: case 0x6c: /* i32.add, sub, mul */
		case 0x7c: case 0x7d: case 0x7e: /* i64.add, sub, mul */
			break;
		case 0xfd: { /* v128.const */
			size_t sub_at = r->pos;
			uint32_t sub = rd_u32(r, "SIMD opcode");
			if (!r->failed && sub != 12)
				fail(r, "SIMD instruction 0xfd %" PRIu32 " at byte %zu is "
				     "not allowed in a constant expression (%s)",
				     sub, sub_at, what);
			rd_skip(r, 16, "v128.const immediate");
			break;
		}
		default:
			fail(r, "instruction 0x%02x at byte %zu is not allowed in a "
			     "constant expression (%s)", op, at, what);
		}
	}
}

/* ---- sections ------------------------------------------------------------ */

static const char *const kind_names[] = {
	"function", "table", "memory", "global", "tag",
};

static void note_memory(struct rd *r, struct wasm_info *m,
                        const struct wasm_limits *lim, bool imported)
{
	if (m->nmemories == 0) {
		m->memory_imported = imported;
		m->mem_min = lim->min;
		m->mem_max = lim->max;
		m->mem_has_max = lim->has_max;
	}
	add_count(r, &m->nmemories, 1, WASM_LIMIT_MEMORIES, "memories");
}

static void read_type_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "types", 3, WASM_LIMIT_TYPES);

	m->types = rd_array(r, n, sizeof(*m->types));
	for (uint32_t i = 0; i < n && !r->failed; i++) {
		struct wasm_functype *t = &m->types[i];
		size_t at = r->pos;
		uint8_t form = rd_byte(r, "type form");
		if (r->failed)
			break;
		if (form >= 0x4e && form <= 0x5f) {
			fail(r, "GC types are not supported (type %" PRIu32 " at byte "
			     "%zu has form 0x%02x)", i, at, form);
		} else if (form != 0x60) {
			fail(r, "malformed type %" PRIu32 " at byte %zu: expected 0x60 "
			     "(function type), found 0x%02x", i, at, form);
		}
		t->params = rd_valtypes(r, &t->nparams, "parameters",
		                        WASM_LIMIT_PARAMS);
		t->results = rd_valtypes(r, &t->nresults, "results",
		                         WASM_LIMIT_RESULTS);
	}
	m->ntypes = n;
}

static void read_import(struct rd *r, struct wasm_info *m,
                        struct wasm_import *im, uint32_t i)
{
	im->module = rd_name(r, "import module name");
	im->name = rd_name(r, "import name");
	size_t at = r->pos;
	im->kind = rd_byte(r, "import kind");
	if (r->failed)
		return;
	switch (im->kind) {
	case WASM_KIND_FUNC:
		im->type_index = rd_typeidx(r, m, "imported function's type");
		add_count(r, &m->nfunc_imports, 1, WASM_LIMIT_FUNCS, "functions");
		break;
	case WASM_KIND_TABLE:
		rd_reftype(r, "table element type");
		rd_limits(r, false, &im->limits);
		add_count(r, &m->ntables, 1, WASM_LIMIT_TABLES, "tables");
		break;
	case WASM_KIND_MEMORY:
		rd_limits(r, true, &im->limits);
		note_memory(r, m, &im->limits, true);
		break;
	case WASM_KIND_GLOBAL:
		im->global_type = rd_valtype(r, "global type");
		im->global_mutable = rd_mutability(r);
		if (im->global_type == 'V' && m->v128_global == 0)
			m->v128_global = m->nglobals + 1;
		add_count(r, &m->nglobals, 1, WASM_LIMIT_GLOBALS, "globals");
		break;
	case WASM_KIND_TAG: {
		size_t attr_at = r->pos;
		uint8_t attr = rd_byte(r, "tag attribute");
		if (!r->failed && attr != 0)
			fail(r, "malformed tag at byte %zu: attribute %u", attr_at, attr);
		im->type_index = rd_typeidx(r, m, "imported tag's type");
		add_count(r, &m->ntags, 1, WASM_LIMIT_TAGS, "tags");
		break;
	}
	default:
		fail(r, "import %" PRIu32 " at byte %zu has unknown kind 0x%02x",
		     i, at, im->kind);
	}
}

static void read_import_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "imports", 4, WASM_LIMIT_IMPORTS);

	m->imports = rd_array(r, n, sizeof(*m->imports));
	for (uint32_t i = 0; i < n && !r->failed; i++)
		read_import(r, m, &m->imports[i], i);
	m->nimports = n;
}

static void read_function_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "functions", 1, WASM_LIMIT_FUNCS);
	uint32_t total = m->nfunc_imports;

	add_count(r, &total, n, WASM_LIMIT_FUNCS, "functions");
	m->func_types = rd_array(r, n, sizeof(*m->func_types));
	for (uint32_t i = 0; i < n && !r->failed; i++)
		m->func_types[i] = rd_typeidx(r, m, "function's type");
	m->nfuncs = n;
}

static void read_table_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "tables", 3, WASM_LIMIT_TABLES);
	struct wasm_limits lim;

	bool first = m->ntables == 0;   /* (no table imported) */
	add_count(r, &m->ntables, n, WASM_LIMIT_TABLES, "tables");
	for (uint32_t i = 0; i < n && !r->failed; i++) {
		bool funcref = rd_reftype(r, "table element type");
		if (i == 0 && first)
			m->table0_defined_funcref = funcref;
		rd_limits(r, false, &lim);
	}
}

static void read_memory_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "memories", 2, WASM_LIMIT_MEMORIES);

	for (uint32_t i = 0; i < n && !r->failed; i++) {
		struct wasm_limits lim = { 0 };
		rd_limits(r, true, &lim);
		if (!r->failed)
			note_memory(r, m, &lim, false);
	}
}

/* A tag's values are copied into the instance when thrown: each at most
 * 8 bytes, but a funcref is wasm2c's struct of pointers (bound it by 32). */
static void note_tag(struct wasm_info *m, const struct wasm_functype *t)
{
	uint32_t bytes = 0;
	for (uint32_t i = 0; i < t->nparams; i++)
		bytes += t->params[i] == 'i' || t->params[i] == 'f' ? 4
		         : t->params[i] == 'r' ? 32 : 8;
	if (bytes > m->max_tag_payload)
		m->max_tag_payload = bytes;
}

static void read_tag_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "tags", 2, WASM_LIMIT_TAGS);

	add_count(r, &m->ntags, n, WASM_LIMIT_TAGS, "tags");
	for (uint32_t i = 0; i < n && !r->failed; i++) {
		size_t at = r->pos;
		uint8_t attr = rd_byte(r, "tag attribute");
		if (!r->failed && attr != 0)
			fail(r, "malformed tag at byte %zu: attribute %u", at, attr);
		uint32_t t = rd_typeidx(r, m, "tag's type");
		if (!r->failed)
			note_tag(m, &m->types[t]);
	}
}

static void read_global_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "globals", 3, WASM_LIMIT_GLOBALS);

	uint32_t first = m->nglobals;
	add_count(r, &m->nglobals, n, WASM_LIMIT_GLOBALS, "globals");
	if (!r->failed && (m->global_mut_i32 = rd_array(r, m->nglobals, sizeof(bool))))
		memset(m->global_mut_i32, 0, m->nglobals);
	for (uint32_t i = 0; i < n && !r->failed; i++) {
		char t = rd_valtype(r, "global type");
		if (t == 'V' && m->v128_global == 0)
			m->v128_global = first + i + 1;
		bool mut = rd_mutability(r);
		if (m->global_mut_i32)
			m->global_mut_i32[first + i] = t == 'i' && mut;
		size_t init_at = r->pos;
		rd_const_expr(r, "global initializer");
		/* Unnamed, global 0 is taken for LLVM's stack pointer when it
		 * is a mutable i32 that starts at a 16-byte aligned address
		 * past the first page (a counter starting at 0 is not). */
		if (first + i == 0 && t == 'i' && mut && !r->failed &&
		    r->buf[init_at] == 0x41 && r->buf[r->pos - 1] == 0x0b) {
			struct rd c = *r;
			c.pos = init_at + 1;
			int32_t v = (int32_t)rd_leb(&c, 32, true, "i32.const immediate");
			if (c.pos == r->pos - 1 && v >= 4096 && v % 16 == 0)
				m->stack_pointer = 1;  /* unless the name section differs */
		}
	}
}

/* Copy of a name for a message: quoted, escaped, shortened; always fits in
 * QUOTE_MAX bytes (at most 48 input bytes, each at most 4 output bytes). */
#define QUOTE_MAX 256
#define QUOTE_INPUT 48

static void quote(char out[QUOTE_MAX], const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	out[o++] = '"';
	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i >= QUOTE_INPUT && (c & 0xc0) != 0x80)
			break;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	if (s[i]) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = 0;
}

static int cmp_export_names(const void *a, const void *b)
{
	const struct wasm_export *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Export names must be unique: sort pointers to them, compare neighbours. */
static void check_unique_exports(struct rd *r, struct wasm_info *m)
{
	const struct wasm_export **v;
	char q[QUOTE_MAX];

	if (r->failed || m->nexports < 2)
		return;
	v = rd_array(r, m->nexports, sizeof(*v));
	if (!v)
		return;
	for (uint32_t i = 0; i < m->nexports; i++)
		v[i] = &m->exports[i];
	qsort(v, m->nexports, sizeof(*v), cmp_export_names);
	for (uint32_t i = 1; i < m->nexports; i++) {
		if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
			quote(q, v[i]->name);
			fail(r, "duplicate export name %s", q);
			return;
		}
	}
}

static uint32_t index_space_size(const struct wasm_info *m, uint8_t kind)
{
	switch (kind) {
	case WASM_KIND_FUNC: return m->nfunc_imports + m->nfuncs;
	case WASM_KIND_TABLE: return m->ntables;
	case WASM_KIND_MEMORY: return m->nmemories;
	case WASM_KIND_GLOBAL: return m->nglobals;
	default: return m->ntags;
	}
}

static void read_export(struct rd *r, struct wasm_info *m,
                        struct wasm_export *e)
{
	char q[QUOTE_MAX];

	e->name = rd_name(r, "export name");
	size_t at = r->pos;
	e->kind = rd_byte(r, "export kind");
	if (!r->failed && e->kind > WASM_KIND_TAG) {
		fail(r, "export at byte %zu has unknown kind 0x%02x", at, e->kind);
		return;
	}
	e->index = rd_u32(r, "export index");
	if (r->failed)
		return;
	uint32_t space = index_space_size(m, e->kind);
	if (e->index >= space) {
		quote(q, e->name);
		fail(r, "export %s at byte %zu refers to %s %" PRIu32 ", but the "
		     "module has %" PRIu32 " of them", q, at, kind_names[e->kind],
		     e->index, space);
	}
}

static void read_export_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "exports", 3, WASM_LIMIT_EXPORTS);

	m->exports = rd_array(r, n, sizeof(*m->exports));
	for (uint32_t i = 0; i < n && !r->failed; i++)
		read_export(r, m, &m->exports[i]);
	m->nexports = n;
	check_unique_exports(r, m);
}

static void read_start_section(struct rd *r, struct wasm_info *m)
{
	size_t at = r->pos;
	uint32_t nfuncs = m->nfunc_imports + m->nfuncs;

	m->has_start_section = true;
	m->start_func = rd_u32(r, "start function index");
	if (!r->failed && m->start_func >= nfuncs)
		fail(r, "start function %" PRIu32 " at byte %zu does not exist "
		     "(the module has %" PRIu32 " functions)", m->start_func, at,
		     nfuncs);
}

/* Element segment flags: bit 0 passive or declarative (else active), bit 1
 * explicit table index (active) or declarative (otherwise), bit 2 elements
 * are expressions (else function indices). */
static void read_elem_segment(struct rd *r, uint32_t i)
{
	size_t at = r->pos;
	uint32_t flags = rd_u32(r, "element segment flags");

	if (r->failed)
		return;
	if (flags > 7) {
		fail(r, "element segment %" PRIu32 " at byte %zu has unknown flags "
		     "%" PRIu32, i, at, flags);
		return;
	}
	bool active = !(flags & 1), exprs = flags & 4;
	if (active && (flags & 2))
		rd_u32(r, "table index");
	if (active)
		rd_const_expr(r, "element segment offset");
	if (flags & 3) {
		if (exprs) {
			rd_reftype(r, "element type");
		} else {
			size_t kind_at = r->pos;
			uint8_t kind = rd_byte(r, "element kind");
			if (!r->failed && kind != 0)
				fail(r, "malformed element kind 0x%02x at byte %zu",
				     kind, kind_at);
		}
	}
	uint32_t n = rd_count(r, "elements", 1, UINT32_MAX);
	for (uint32_t j = 0; j < n && !r->failed; j++) {
		if (exprs)
			rd_const_expr(r, "element expression");
		else
			rd_u32(r, "element function index");
	}
}

static void read_element_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "element segments", 3, WASM_LIMIT_ELEM_SEGS);

	for (uint32_t i = 0; i < n && !r->failed; i++)
		read_elem_segment(r, i);
	m->nelem_segments = n;
}

static void read_datacount_section(struct rd *r, struct wasm_info *m)
{
	size_t at = r->pos;

	m->has_data_count = true;
	m->data_count = rd_u32(r, "data count");
	if (!r->failed && m->data_count > WASM_LIMIT_DATA_SEGS)
		fail(r, "too many data segments: %" PRIu32 " at byte %zu (wisp's "
		     "limit is %u)", m->data_count, at, WASM_LIMIT_DATA_SEGS);
}

/* One function body: framed, its locals declared sanely, ending in `end`. */
static void read_body(struct rd *r, struct wasm_info *m, uint32_t i)
{
	uint32_t func = m->nfunc_imports + i;
	size_t at = r->pos;
	uint32_t size = rd_u32(r, "function body size");
	uint64_t nlocals = 0;

	if (r->failed)
		return;
	if (size > r->end - r->pos) {
		fail(r, "body of function %" PRIu32 " at byte %zu is %" PRIu32
		     " bytes long, but section 'code' ends at byte %zu", func, at,
		     size, r->end);
		return;
	}
	if (size > WASM_LIMIT_BODY_BYTES) {
		fail(r, "body of function %" PRIu32 " at byte %zu is %" PRIu32
		     " bytes long (wisp's limit is %u)", func, at, size,
		     WASM_LIMIT_BODY_BYTES);
		return;
	}
	snprintf(r->region_buf, sizeof(r->region_buf), "body of function %"
	         PRIu32, func);
	m->bodies[i].at = (uint32_t)r->pos;
	m->bodies[i].len = size;
	struct region_save s = enter(r, size, r->region_buf);
	uint32_t ngroups = rd_count(r, "local declarations", 2, UINT32_MAX);
	for (uint32_t g = 0; g < ngroups && !r->failed; g++) {
		size_t lat = r->pos;
		nlocals += rd_u32(r, "local count");
		rd_valtype(r, "local type");
		if (!r->failed && nlocals > WASM_LIMIT_LOCALS)
			fail(r, "function %" PRIu32 " declares more than %u locals "
			     "(at byte %zu)", func, WASM_LIMIT_LOCALS, lat);
	}
	if (!r->failed) {
		if (r->pos == r->end || r->buf[r->end - 1] != 0x0b)
			fail(r, "body of function %" PRIu32 " at byte %zu does not end "
			     "with 'end' (0x0b)", func, at);
		r->pos = r->end;
	}
	leave(r, s);
}

static void read_code_section(struct rd *r, struct wasm_info *m)
{
	size_t at = r->pos;
	uint32_t n = rd_count(r, "function bodies", 3, WASM_LIMIT_FUNCS);

	if (!r->failed && n != m->nfuncs)
		fail(r, "section 'code' has %" PRIu32 " function bodies (count at "
		     "byte %zu), but section 'function' declares %" PRIu32
		     " functions", n, at, m->nfuncs);
	m->bodies = rd_array(r, n, sizeof(*m->bodies));
	for (uint32_t i = 0; i < n && !r->failed; i++)
		read_body(r, m, i);
}

/* Data segment flags: 0 active in memory 0, 1 passive, 2 active with an
 * explicit memory index. */
static void read_data_segment(struct rd *r, struct wasm_data_segment *d, uint32_t i)
{
	size_t at = r->pos;
	uint32_t flags = rd_u32(r, "data segment flags");
	uint32_t len;

	d->at = (uint32_t)at;
	if (r->failed)
		return;
	if (flags > 2) {
		fail(r, "data segment %" PRIu32 " at byte %zu has unknown flags "
		     "%" PRIu32, i, at, flags);
		return;
	}
	if (flags == 2)
		rd_u32(r, "memory index");
	if (flags != 1)
		rd_const_expr(r, "data segment offset");
	d->passive = flags == 1;
	d->len_at = (uint32_t)r->pos;
	const uint8_t *data = rd_bytes(r, &len, "data segment contents");
	if (data != NULL) {
		d->data_at = (uint32_t)(data - r->buf);
		d->len = len;
	}
}

static void read_data_section(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "data segments", 2, WASM_LIMIT_DATA_SEGS);

	m->data_segments = rd_array(r, n, sizeof(*m->data_segments));
	for (uint32_t i = 0; i < n && !r->failed; i++) {
		read_data_segment(r, &m->data_segments[i], i);
		m->data_bytes += m->data_segments[i].len;
	}
	m->ndata_segments = n;
}

/* Where the first "name" custom section is, if any. */
struct name_loc {
	bool found;
	size_t start, end;
};

/* The span from here to the end of the section, if *span is still empty
 * and the custom section's name is want. */
static void keep_custom(const struct rd *r, const uint8_t *name, uint32_t len,
                        const char *want, struct wasm_span *span)
{
	if (span->len == 0 && len == strlen(want) && memcmp(name, want, len) == 0) {
		span->at = (uint32_t)r->pos;
		span->len = (uint32_t)(r->end - r->pos);
	}
}

static void read_custom_section(struct rd *r, struct wasm_info *m, struct name_loc *names)
{
	uint32_t len;
	const uint8_t *name = rd_name_span(r, &len, "custom section name");

	if (r->failed)
		return;
	if (len == 4 && memcmp(name, "name", 4) == 0 && !names->found) {
		names->found = true;
		names->start = r->pos;
		names->end = r->end;
	}
	keep_custom(r, name, len, ".debug_line", &m->debug_line);
	keep_custom(r, name, len, ".debug_line_str", &m->debug_line_str);
	keep_custom(r, name, len, ".debug_str", &m->debug_str);
	r->pos = r->end;
}

enum {
	SEC_CUSTOM = 0, SEC_CODE = 10, SEC_DATA = 11, SEC_COUNT = 14,
};

/* Sections by id; rank is the position the spec requires (the tag section,
 * id 13, sits between memory and global; datacount, id 12, before code). */
static const struct section_desc {
	const char *name;
	const char *region;
	uint8_t rank;
	void (*read)(struct rd *, struct wasm_info *);
} sections[SEC_COUNT] = {
	[0] = { "custom", "custom section", 0, NULL },
	[1] = { "type", "section 'type'", 1, read_type_section },
	[2] = { "import", "section 'import'", 2, read_import_section },
	[3] = { "function", "section 'function'", 3, read_function_section },
	[4] = { "table", "section 'table'", 4, read_table_section },
	[5] = { "memory", "section 'memory'", 5, read_memory_section },
	[13] = { "tag", "section 'tag'", 6, read_tag_section },
	[6] = { "global", "section 'global'", 7, read_global_section },
	[7] = { "export", "section 'export'", 8, read_export_section },
	[8] = { "start", "section 'start'", 9, read_start_section },
	[9] = { "element", "section 'element'", 10, read_element_section },
	[12] = { "datacount", "section 'datacount'", 11, read_datacount_section },
	[10] = { "code", "section 'code'", 12, read_code_section },
	[11] = { "data", "section 'data'", 13, read_data_section },
};

/* Which non-custom sections were seen, for the checks that span sections. */
struct seen {
	unsigned rank;           /* of the last one */
	const char *last_name;
	size_t last_at;
	bool code;
};

static bool check_order(struct rd *r, struct seen *seen, uint8_t id,
                        size_t at)
{
	const struct section_desc *d = &sections[id];

	if (d->rank == seen->rank) {
		fail(r, "section '%s' at byte %zu appears a second time (the first "
		     "is at byte %zu)", d->name, at, seen->last_at);
		return false;
	}
	if (d->rank < seen->rank) {
		fail(r, "section '%s' at byte %zu is out of order: it must come "
		     "before section '%s' (at byte %zu)", d->name, at,
		     seen->last_name, seen->last_at);
		return false;
	}
	seen->rank = d->rank;
	seen->last_name = d->name;
	seen->last_at = at;
	seen->code |= id == SEC_CODE;
	return true;
}

static void read_sections(struct rd *r, struct wasm_info *m,
                          struct name_loc *names, struct seen *seen)
{
	while (r->pos < r->len && !r->failed) {
		size_t at = r->pos;
		uint8_t id = rd_byte(r, "section id");
		if (!r->failed && id >= SEC_COUNT) {
			fail(r, "unknown section id %u at byte %zu", id, at);
			return;
		}
		uint32_t size = rd_u32(r, "section size");
		if (r->failed)
			return;
		if (size > r->len - r->pos) {
			fail(r, "truncated module: section '%s' ends at byte %" PRIu64
			     " but the file has %zu bytes", sections[id].name,
			     (uint64_t)r->pos + size, r->len);
			return;
		}
		if (id != SEC_CUSTOM && !check_order(r, seen, id, at))
			return;
		if (id == SEC_DATA) {
			m->data_section.at = (uint32_t)at;
			m->data_section.len = (uint32_t)(r->pos + size - at);
		}
		if (id == SEC_CODE) {
			m->code_section.at = (uint32_t)r->pos;
			m->code_section.len = size;
		}
		struct region_save s = enter(r, size, sections[id].region);
		if (id == SEC_CUSTOM)
			read_custom_section(r, m, names);
		else
			sections[id].read(r, m);
		leave(r, s);
	}
}

/* The checks that need the whole module. */
static void check_module(struct rd *r, const struct wasm_info *m,
                         const struct seen *seen)
{
	if (m->nfuncs > 0 && !seen->code)
		fail(r, "section 'function' declares %" PRIu32 " functions, but "
		     "the module has no section 'code'", m->nfuncs);
	else if (m->has_data_count && m->data_count != m->ndata_segments)
		fail(r, "section 'datacount' declares %" PRIu32 " data segments, "
		     "but section 'data' has %" PRIu32, m->data_count,
		     m->ndata_segments);
}

/* Does a file that failed the magic check look like the text format? */
static bool looks_like_text(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
	                   p[i] == '\r'))
		i++;
	return (i < len && p[i] == '(') ||
	       (len - i >= 2 && p[i] == ';' && p[i + 1] == ';');
}

static void read_header(struct rd *r)
{
	static const uint8_t magic[4] = { 0x00, 0x61, 0x73, 0x6d };
	const uint8_t *p = r->buf;

	if (r->len == 0) {
		fail(r, "not a WebAssembly module (the file is empty)");
		return;
	}
	if (memcmp(p, magic, r->len < 4 ? r->len : 4) != 0) {
		if (looks_like_text(p, r->len))
			fail(r, "not a WebAssembly module (bad magic): this looks "
			     "like the text format; convert it with wat2wasm first");
		else
			fail(r, "not a WebAssembly module (bad magic)");
		return;
	}
	if (r->len < 8) {
		fail(r, "truncated module: the 8-byte header is cut off at byte "
		     "%zu", r->len);
		return;
	}
	if (r->len > WASM_LIMIT_MODULE_BYTES) {
		fail(r, "module is %zu bytes long (wisp's limit is %u bytes)",
		     r->len, WASM_LIMIT_MODULE_BYTES);
		return;
	}
	uint32_t version = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
	                   (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
	if (version == 0x0001000d)
		fail(r, "unsupported wasm version 0x1000d: this is a WebAssembly "
		     "component, and wisp runs only core modules");
	else if (version != 1)
		fail(r, "unsupported wasm version %" PRIu32, version);
	r->pos = 8;
}

/* ---- the name section ------------------------------------------------------ */

static void read_module_name(struct rd *r, struct wasm_info *m)
{
	uint32_t len;
	const uint8_t *p = rd_name_span(r, &len, "module name");

	if (p && !m->module_name && !memchr(p, 0, len))
		m->module_name = arena_strndup(r, p, len);
}

/* Global names (subsection 7): only "__stack_pointer" matters to wisp. */
static void read_global_names(struct rd *r, struct wasm_info *m)
{
	uint32_t n = rd_count(r, "global names", 2, UINT32_MAX);

	if (n > 0)
		m->stack_pointer = 0;   /* named globals: believe the names */
	for (uint32_t i = 0; i < n && !r->failed; i++) {
		uint32_t idx = rd_u32(r, "global index"), len;
		const uint8_t *p = rd_name_span(r, &len, "global name");
		if (p && len == 15 && memcmp(p, "__stack_pointer", 15) == 0 &&
		    idx < m->nglobals && m->global_mut_i32 && m->global_mut_i32[idx])
			m->stack_pointer = idx + 1;
	}
}

static void read_function_names(struct rd *r, struct wasm_info *m,
                                uint32_t *named)
{
	uint32_t nspace = m->nfunc_imports + m->nfuncs;
	uint32_t n = rd_count(r, "function names", 2, UINT32_MAX);

	if (!m->func_names && n > 0)
		m->func_names = rd_array(r, nspace, sizeof(*m->func_names));
	for (uint32_t i = 0; i < n && !r->failed; i++) {
		uint32_t idx = rd_u32(r, "function index"), len;
		const uint8_t *p = rd_name_span(r, &len, "function name");
		if (!p || idx >= nspace || m->func_names[idx] || memchr(p, 0, len))
			continue;
		m->func_names[idx] = arena_strndup(r, p, len);
		(*named)++;
	}
}

/* Parse the name section at [start, end) leniently: any error drops all
 * names and is recorded in names_error; only running out of memory fails
 * the outer read. */
static void read_name_section(struct rd *outer, struct wasm_info *m,
                              const struct name_loc *loc)
{
	char msg[256];
	struct rd r = {
		.buf = outer->buf, .len = outer->len, .pos = loc->start,
		.end = loc->end, .region = "section 'name'", .err = msg,
		.errlen = sizeof(msg), .arena = outer->arena,
	};
	uint32_t named = 0;

	while (r.pos < r.end && !r.failed) {
		size_t at = r.pos;
		uint8_t id = rd_byte(&r, "name subsection id");
		uint32_t len;
		const uint8_t *p = rd_bytes(&r, &len, "name subsection");
		if (!p)
			break;
		r.pos = (size_t)(p - r.buf);   /* now read it as a region */
		snprintf(r.region_buf, sizeof(r.region_buf), "name subsection %u "
		         "at byte %zu", id, at);
		struct region_save s = enter(&r, len, r.region_buf);
		if (id == 0)
			read_module_name(&r, m);
		else if (id == 1)
			read_function_names(&r, m, &named);
		else if (id == 7)
			read_global_names(&r, m);
		else
			r.pos = r.end;
		leave(&r, s);
	}
	if (r.status == -ENOMEM) {
		fail_oom(outer);
		return;
	}
	if (!named)
		m->func_names = NULL;
	if (r.failed) {
		m->module_name = NULL;
		m->func_names = NULL;
		m->names_error = arena_strndup(outer, (const uint8_t *)msg,
		                               strlen(msg));
	}
}

/* ---- the API --------------------------------------------------------------- */

int wasm_read(const uint8_t *bytes, size_t len, struct wasm_info *out,
              char *err, size_t errlen)
{
	struct arena_chunk *arena = NULL;
	struct rd r = {
		.buf = bytes, .len = len, .pos = 0, .end = len,
		.err = err, .errlen = errlen, .arena = &arena,
	};
	struct name_loc names = { 0 };
	struct seen seen = { 0 };

	memset(out, 0, sizeof(*out));
	if (errlen)
		err[0] = 0;
	read_header(&r);
	read_sections(&r, out, &names, &seen);
	if (!r.failed)
		check_module(&r, out, &seen);
	if (!r.failed && names.found)
		read_name_section(&r, out, &names);
	if (r.failed) {
		arena_free(arena);
		memset(out, 0, sizeof(*out));
		return r.status;
	}
	out->arena_ = arena;
	return 0;
}

void wasm_info_free(struct wasm_info *info)
{
	if (!info)
		return;
	arena_free(info->arena_);
	memset(info, 0, sizeof(*info));
}

const struct wasm_export *wasm_find_export(const struct wasm_info *info,
                                           const char *name, uint8_t kind)
{
	for (uint32_t i = 0; i < info->nexports; i++) {
		const struct wasm_export *e = &info->exports[i];
		if (strcmp(e->name, name) == 0)
			return e->kind == kind ? e : NULL;
	}
	return NULL;
}

const char *wasm_func_name(const struct wasm_info *info, uint32_t func_index)
{
	if (!info->func_names ||
	    func_index >= info->nfunc_imports + info->nfuncs)
		return NULL;
	return info->func_names[func_index];
}

const struct wasm_functype *wasm_func_type(const struct wasm_info *info,
                                           uint32_t func_index)
{
	if (func_index >= info->nfunc_imports) {
		uint32_t i = func_index - info->nfunc_imports;
		return i < info->nfuncs ? &info->types[info->func_types[i]] : NULL;
	}
	for (uint32_t i = 0; i < info->nimports; i++) {
		const struct wasm_import *im = &info->imports[i];
		if (im->kind == WASM_KIND_FUNC && func_index-- == 0)
			return &info->types[im->type_index];
	}
	return NULL;
}

/* ---- wisp's checks ---------------------------------------------------------- */

static const char *letter_name(char c)
{
	switch (c) {
	case 'i': return "i32";
	case 'I': return "i64";
	case 'f': return "f32";
	case 'F': return "f64";
	case 'V': return "v128";
	case 'r': return "funcref";
	case 'e': return "externref";
	default: return "?";
	}
}

/* Append s to buf (capacity cap, current length *n), truncating. */
static void cat(char *buf, size_t cap, size_t *n, const char *s)
{
	size_t len = strlen(s);

	if (*n + 1 >= cap)
		return;
	if (len > cap - 1 - *n)
		len = cap - 1 - *n;
	memcpy(buf + *n, s, len);
	*n += len;
	buf[*n] = 0;
}

/* "(i32, i64) -> (f32)" from letters; truncated to cap. */
static void format_type(char *buf, size_t cap, const char *params,
                        const char *results)
{
	const char *lists[2] = { params ? params : "", results ? results : "" };
	size_t n = 0;

	buf[0] = 0;
	for (int k = 0; k < 2; k++) {
		cat(buf, cap, &n, k ? " -> (" : "(");
		for (const char *c = lists[k]; *c; c++) {
			if (c != lists[k])
				cat(buf, cap, &n, ", ");
			cat(buf, cap, &n, letter_name(*c));
		}
		cat(buf, cap, &n, ")");
	}
}

void wasm_format_type(const struct wasm_functype *t, char *buf, size_t cap)
{
	format_type(buf, cap, t->params, t->results);
}

__attribute__((format(printf, 3, 4)))
static int reject(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int check_import(const struct wasm_info *info,
                        const struct wasm_import *im, char *err, size_t errlen)
{
	static const char *const why[] = {
		[WASM_KIND_TABLE] = "wisp modules must define their own tables",
		[WASM_KIND_MEMORY] = "wisp modules must define their own memory",
		[WASM_KIND_GLOBAL] = "wisp provides no globals",
		[WASM_KIND_TAG] = "wisp provides no tags",
	};
	char mod[QUOTE_MAX], name[QUOTE_MAX], have[256], want[256];

	quote(mod, im->module);
	quote(name, im->name);
	if (im->kind != WASM_KIND_FUNC)
		return reject(err, errlen, "module imports %s %s.%s; %s",
		              kind_names[im->kind], mod, name, why[im->kind]);
	const struct host_import *h = host_import_find(im->module, im->name);
	if (!h)
		return reject(err, errlen, "module imports function %s.%s, which "
		              "wisp does not provide", mod, name);
	const struct wasm_functype *t = &info->types[im->type_index];
	const char *hp = h->params ? h->params : "";
	const char *hr = h->results ? h->results : "";
	if (strcmp(t->params, hp) == 0 && strcmp(t->results, hr) == 0)
		return 0;
	format_type(have, sizeof(have), t->params, t->results);
	format_type(want, sizeof(want), hp, hr);
	return reject(err, errlen, "import %s.%s has type %s but wisp provides "
	              "%s", mod, name, have, want);
}

int wasm_check_wisp(const struct wasm_info *info, char *err, size_t errlen)
{
	if (errlen)
		err[0] = 0;
	for (uint32_t i = 0; i < info->nimports; i++) {
		int rc = check_import(info, &info->imports[i], err, errlen);
		if (rc)
			return rc;
	}
	if (info->nmemories > 1)
		return reject(err, errlen, "module has %" PRIu32 " memories; wisp "
		              "supports at most one", info->nmemories);
	/* wasm2c copies export names raw into C comments: a name holding a
	 * comment end or a line break could inject code into the translation
	 * unit. Such names are refused (valid UTF-8 text is otherwise fine). */
	for (uint32_t i = 0; i < info->nexports; i++) {
		const unsigned char *n = (const unsigned char *)info->exports[i].name;
		for (size_t k = 0; n[k]; k++) {
			if (n[k] < 0x20 || n[k] == 0x7f || (n[k] == '*' && n[k + 1] == '/') ||
			    (n[k] == '/' && n[k + 1] == '*') || n[k] == '\\')
				return reject(err, errlen, "export name at index %" PRIu32 " contains "
				              "a control character, a backslash or a C comment "
				              "delimiter, which wisp does not accept", i);
		}
	}
	return 0;
}
