/*
 * test_wasm_reader.c — the binary reader and wisp's module checks.
 *
 * Modules are assembled byte by byte with the small builder below, so each
 * test shows exactly the bytes it feeds in. Inputs are always copied into a
 * heap block of their exact size, so AddressSanitizer (make unit
 * SANITIZE=address) catches any read past the end.
 *
 * This file defines host_import_find() itself, with a tiny table: the test
 * uses no other symbol of src/common/abi.c, so the archive's abi.o is never
 * pulled in and the two definitions never meet.
 */
#include "unit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile/wasm_reader.h"
#include "common/abi.h"

static const struct host_import test_imports[] = {
	{ "wasi_snapshot_preview1", "fd_write", "iiii", "i" },
	{ "wasi_snapshot_preview1", "proc_exit", "i", "" },
	{ "env", "ticks", "", "I" },
};

const struct host_import *host_import_find(const char *module, const char *name)
{
	for (size_t i = 0; i < sizeof(test_imports) / sizeof(test_imports[0]); i++)
		if (!strcmp(test_imports[i].module, module) &&
		    !strcmp(test_imports[i].name, name))
			return &test_imports[i];
	return NULL;
}

/* ---- module builder ------------------------------------------------------ */

struct buf {
	size_t n;
	uint8_t b[4096];
};

static void put(struct buf *b, uint8_t x)
{
	assert_true(b->n < sizeof(b->b));
	b->b[b->n++] = x;
}

static void put_bytes(struct buf *b, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(b, ((const uint8_t *)p)[i]);
}

static void put_u32(struct buf *b, uint32_t v)
{
	do {
		uint8_t x = v & 0x7f;
		v >>= 7;
		put(b, x | (v ? 0x80 : 0));
	} while (v);
}

static void put_str(struct buf *b, const char *s)
{
	put_u32(b, (uint32_t)strlen(s));
	put_bytes(b, s, strlen(s));
}

static void put_header(struct buf *m)
{
	put_bytes(m, "\0asm\1\0\0\0", 8);
}

static void put_section(struct buf *m, uint8_t id, const struct buf *c)
{
	put(m, id);
	put_u32(m, (uint32_t)c->n);
	put_bytes(m, c->b, c->n);
}

static void put_section_bytes(struct buf *m, uint8_t id, const uint8_t *p,
                              size_t n)
{
	put(m, id);
	put_u32(m, (uint32_t)n);
	put_bytes(m, p, n);
}

/* A section from literal bytes: SEC(&m, 1, 0x01, 0x60, 0x00, 0x00). */
#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ }, \
	sizeof((const uint8_t[]){ __VA_ARGS__ })
#define SEC(m, id, ...) put_section_bytes((m), (id), BYTES(__VA_ARGS__))

/* Import section content with one function import of type `type`. */
static void one_func_import(struct buf *m, const char *mod, const char *name,
                            uint32_t type)
{
	struct buf c = { 0 };

	put_u32(&c, 1);
	put_str(&c, mod);
	put_str(&c, name);
	put(&c, 0x00);
	put_u32(&c, type);
	put_section(m, 2, &c);
}

/*
 * A module with every standard section, roughly what a small WASI program
 * looks like, plus a leading custom section and a name section:
 *   types     0: (i32 i32 i32 i32) -> (i32)   1: (i32) -> ()   2: () -> ()
 *   imports   fd_write (func 0), proc_exit (func 1)
 *   functions 2: _start (type 2), 3: compute (type 0)
 *   table, memory 1..2 pages, one global, three exports, start = func 2,
 *   an element segment, datacount, code, one data segment,
 *   names: module "demo", functions 0, 2, 3.
 * bounds[] gets the offset after the header and after each section.
 */
static void full_module(struct buf *m, size_t *bounds, int *nbounds)
{
	struct buf c;
	int nb = 0;

#define BOUND() (bounds ? (void)(bounds[nb++] = m->n) : (void)0)
	m->n = 0;
	put_header(m);
	BOUND();
	c = (struct buf){ 0 };
	put_str(&c, "producers");
	put_bytes(&c, "\x01\x02\x03", 3);
	put_section(m, 0, &c);
	BOUND();
	SEC(m, 1, 0x03,
	    0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f,
	    0x60, 0x01, 0x7f, 0x00,
	    0x60, 0x00, 0x00);
	BOUND();
	c = (struct buf){ 0 };
	put_u32(&c, 2);
	put_str(&c, "wasi_snapshot_preview1");
	put_str(&c, "fd_write");
	put(&c, 0x00);
	put_u32(&c, 0);
	put_str(&c, "wasi_snapshot_preview1");
	put_str(&c, "proc_exit");
	put(&c, 0x00);
	put_u32(&c, 1);
	put_section(m, 2, &c);
	BOUND();
	SEC(m, 3, 0x02, 0x02, 0x00);                     /* function */
	BOUND();
	SEC(m, 4, 0x01, 0x70, 0x01, 0x01, 0x01);         /* table */
	BOUND();
	SEC(m, 5, 0x01, 0x01, 0x01, 0x02);               /* memory 1..2 */
	BOUND();
	SEC(m, 6, 0x01, 0x7f, 0x01, 0x41, 0x08, 0x0b);   /* global */
	BOUND();
	c = (struct buf){ 0 };
	put_u32(&c, 3);
	put_str(&c, "_start");
	put(&c, 0x00);
	put_u32(&c, 2);
	put_str(&c, "memory");
	put(&c, 0x02);
	put_u32(&c, 0);
	put_str(&c, "compute");
	put(&c, 0x00);
	put_u32(&c, 3);
	put_section(m, 7, &c);
	BOUND();
	SEC(m, 8, 0x02);                                 /* start */
	BOUND();
	SEC(m, 9, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01, 0x03);   /* element */
	BOUND();
	SEC(m, 12, 0x01);                                /* datacount */
	BOUND();
	SEC(m, 10, 0x02,
	    0x02, 0x00, 0x0b,
	    0x06, 0x01, 0x02, 0x7e, 0x41, 0x00, 0x0b);
	BOUND();
	SEC(m, 11, 0x01, 0x00, 0x41, 0x10, 0x0b, 0x02, 'h', 'i');
	BOUND();
	c = (struct buf){ 0 };
	put_str(&c, "name");
	put(&c, 0x00);
	put_u32(&c, 5);
	put_str(&c, "demo");
	put(&c, 0x01);
	struct buf f = { 0 };
	put_u32(&f, 3);
	put_u32(&f, 0);
	put_str(&f, "fd_write");
	put_u32(&f, 2);
	put_str(&f, "_start");
	put_u32(&f, 3);
	put_str(&f, "compute");
	put_u32(&c, (uint32_t)f.n);
	put_bytes(&c, f.b, f.n);
	put_section(m, 0, &c);
	BOUND();
#undef BOUND
	if (nbounds)
		*nbounds = nb;
}

/* ---- reading helpers ------------------------------------------------------ */

static char err[512];

/* Read a copy of p[0, n) in a block of exactly n bytes (for ASan). */
static int read_exact(const uint8_t *p, size_t n, struct wasm_info *info)
{
	uint8_t *copy = malloc(n ? n : 1);
	int rc;

	assert_non_null(copy);
	if (n)
		memcpy(copy, p, n);
	rc = wasm_read(copy, n, info, err, sizeof(err));
	free(copy);
	return rc;
}

static void expect_contains(const char *s, const char *needle)
{
	if (!strstr(s, needle)) {
		print_error("message: %s\nexpected to contain: %s\n", s, needle);
		fail();
	}
}

/* The module must be rejected by the reader with a message containing
 * needle, and leave the info zeroed. */
static void expect_error(const struct buf *m, const char *needle)
{
	struct wasm_info info;
	int rc = read_exact(m->b, m->n, &info);

	if (rc != -EINVAL)
		print_error("accepted (rc %d), expected: %s\n", rc, needle);
	assert_int_equal(rc, -EINVAL);
	expect_contains(err, needle);
	assert_null(info.types);
	assert_null(info.arena_);
	assert_int_equal(info.nimports, 0);
	wasm_info_free(&info);
}

static void expect_read_ok(const struct buf *m, struct wasm_info *info)
{
	int rc = read_exact(m->b, m->n, info);

	if (rc)
		print_error("rejected: %s\n", err);
	assert_int_equal(rc, 0);
}

/* The reader accepts the module but wasm_check_wisp rejects it with
 * exactly this message. */
static void expect_wisp_error(const struct buf *m, const char *msg)
{
	struct wasm_info info;

	expect_read_ok(m, &info);
	assert_int_equal(wasm_check_wisp(&info, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, msg);
	wasm_info_free(&info);
}

/* ---- valid modules -------------------------------------------------------- */

static void test_minimal_module(void **state)
{
	struct buf m = { 0 };
	struct wasm_info info;

	put_header(&m);
	expect_read_ok(&m, &info);
	assert_int_equal(info.ntypes, 0);
	assert_int_equal(info.nfuncs, 0);
	assert_int_equal(info.nmemories, 0);
	assert_false(info.has_start_section);
	assert_null(info.func_names);
	assert_null(info.module_name);
	assert_null(info.names_error);
	assert_null(wasm_find_export(&info, "_start", WASM_KIND_FUNC));
	assert_null(wasm_func_name(&info, 0));
	assert_null(wasm_func_type(&info, 0));
	assert_int_equal(wasm_check_wisp(&info, err, sizeof(err)), 0);
	wasm_info_free(&info);
	assert_null(info.arena_);
	wasm_info_free(&info);          /* twice: a no-op on a zeroed struct */
	wasm_info_free(NULL);
}

static void test_full_module_reads_back(void **state)
{
	struct buf m;
	struct wasm_info info;

	full_module(&m, NULL, NULL);
	expect_read_ok(&m, &info);

	assert_int_equal(info.ntypes, 3);
	assert_string_equal(info.types[0].params, "iiii");
	assert_string_equal(info.types[0].results, "i");
	assert_int_equal(info.types[0].nparams, 4);
	assert_int_equal(info.types[0].nresults, 1);
	assert_string_equal(info.types[1].params, "i");
	assert_string_equal(info.types[1].results, "");
	assert_string_equal(info.types[2].params, "");

	assert_int_equal(info.nimports, 2);
	assert_int_equal(info.nfunc_imports, 2);
	assert_string_equal(info.imports[0].module, "wasi_snapshot_preview1");
	assert_string_equal(info.imports[0].name, "fd_write");
	assert_int_equal(info.imports[0].kind, WASM_KIND_FUNC);
	assert_int_equal(info.imports[0].type_index, 0);
	assert_string_equal(info.imports[1].name, "proc_exit");
	assert_int_equal(info.imports[1].type_index, 1);

	assert_int_equal(info.nfuncs, 2);
	assert_int_equal(info.func_types[0], 2);
	assert_int_equal(info.func_types[1], 0);

	assert_int_equal(info.ntables, 1);
	assert_int_equal(info.nmemories, 1);
	assert_false(info.memory_imported);
	assert_int_equal(info.mem_min, 1);
	assert_true(info.mem_has_max);
	assert_int_equal(info.mem_max, 2);
	assert_int_equal(info.nglobals, 1);
	assert_int_equal(info.nelem_segments, 1);
	assert_true(info.has_data_count);
	assert_int_equal(info.data_count, 1);
	assert_int_equal(info.ndata_segments, 1);
	assert_true(info.has_start_section);
	assert_int_equal(info.start_func, 2);

	assert_int_equal(info.nexports, 3);
	const struct wasm_export *e = wasm_find_export(&info, "_start",
	                                               WASM_KIND_FUNC);
	assert_non_null(e);
	assert_int_equal(e->index, 2);
	e = wasm_find_export(&info, "memory", WASM_KIND_MEMORY);
	assert_non_null(e);
	assert_int_equal(e->index, 0);
	assert_null(wasm_find_export(&info, "memory", WASM_KIND_FUNC));
	assert_null(wasm_find_export(&info, "nope", WASM_KIND_FUNC));

	assert_string_equal(info.module_name, "demo");
	assert_null(info.names_error);
	assert_non_null(info.func_names);
	assert_string_equal(wasm_func_name(&info, 0), "fd_write");
	assert_null(wasm_func_name(&info, 1));
	assert_string_equal(wasm_func_name(&info, 2), "_start");
	assert_string_equal(wasm_func_name(&info, 3), "compute");
	assert_null(wasm_func_name(&info, 4));
	assert_null(wasm_func_name(&info, UINT32_MAX));

	assert_ptr_equal(wasm_func_type(&info, 0), &info.types[0]);
	assert_ptr_equal(wasm_func_type(&info, 1), &info.types[1]);
	assert_ptr_equal(wasm_func_type(&info, 2), &info.types[2]);
	assert_ptr_equal(wasm_func_type(&info, 3), &info.types[0]);
	assert_null(wasm_func_type(&info, 4));

	assert_int_equal(wasm_check_wisp(&info, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	wasm_info_free(&info);
}

/* Section kinds the full module does not use: tags (between memory and
 * global), passive and declarative segments, expression elements, SIMD and
 * extended constant expressions, non-minimal LEB128 (allowed). */
static void test_other_valid_forms(void **state)
{
	struct buf m = { 0 };
	struct wasm_info info;

	put_header(&m);
	SEC(&m, 1, 0x81, 0x80, 0x00,     /* 1 type, count in 3 bytes */
	    0x60, 0x02, 0x7b, 0x6f, 0x00);
	SEC(&m, 5, 0x01, 0x00, 0x80, 0x80, 0x04);         /* min 65536 */
	SEC(&m, 13, 0x01, 0x00, 0x00);                     /* tag of type 0 */
	SEC(&m, 6, 0x02,
	    0x7b, 0x00, 0xfd, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
	    13, 14, 15, 16, 0x0b,
	    0x7e, 0x00, 0x42, 0x7f, 0x42, 0x01, 0x7c, 0x0b);
	SEC(&m, 7, 0x01, 0x01, 't', 0x04, 0x00);           /* export tag */
	SEC(&m, 9, 0x03,
	    0x01, 0x00, 0x00,                              /* passive, none */
	    0x05, 0x70, 0x01, 0xd0, 0x70, 0x0b,            /* ref.null exprs */
	    0x07, 0x6f, 0x00);                             /* declarative */
	SEC(&m, 11, 0x02, 0x01, 0x00, 0x02, 0x00, 0x41, 0x00, 0x0b, 0x00);
	expect_read_ok(&m, &info);
	assert_string_equal(info.types[0].params, "Ve");
	assert_int_equal(info.ntags, 1);
	assert_int_equal(info.nglobals, 2);
	assert_int_equal(info.mem_min, 65536);
	assert_false(info.mem_has_max);
	assert_int_equal(info.nelem_segments, 3);
	assert_int_equal(info.ndata_segments, 2);
	assert_false(info.has_data_count);
	assert_non_null(wasm_find_export(&info, "t", WASM_KIND_TAG));
	wasm_info_free(&info);
}

/* ---- header ------------------------------------------------------------ */

static void test_bad_magic(void **state)
{
	struct buf m = { 0 };

	expect_error(&m, "not a WebAssembly module (the file is empty)");
	put_bytes(&m, "\x7f" "ELF\1\0\0\0", 8);
	expect_error(&m, "not a WebAssembly module (bad magic)");
	m.n = 0;
	put_bytes(&m, "  (module)\n", 11);
	expect_error(&m, "(bad magic): this looks like the text format");
	m.n = 0;
	put_bytes(&m, "\0as", 3);
	expect_error(&m, "truncated module: the 8-byte header is cut off");
}

static void test_bad_version(void **state)
{
	struct buf m = { 0 };

	put_bytes(&m, "\0asm\2\0\0\0", 8);
	expect_error(&m, "unsupported wasm version 2");
	m.n = 0;
	put_bytes(&m, "\0asm\x0d\0\1\0", 8);
	expect_error(&m, "this is a WebAssembly component");
}

/* ---- framing -------------------------------------------------------------- */

/* Every strict prefix of a valid module is rejected with a "truncated"
 * message, except prefixes that end exactly at a section boundary, which
 * are modules in their own right (possibly rejected for other reasons). */
static void test_truncated_at_every_byte(void **state)
{
	struct buf m;
	size_t bounds[32];
	int nb;
	struct wasm_info info;

	full_module(&m, bounds, &nb);
	for (size_t len = 0; len < m.n; len++) {
		bool at_bound = false;
		for (int i = 0; i < nb; i++)
			at_bound |= bounds[i] == len;
		int rc = read_exact(m.b, len, &info);
		if (at_bound) {
			assert_true(rc == 0 || rc == -EINVAL);
			if (rc)
				assert_null(strstr(err, "truncated"));
		} else {
			if (rc != -EINVAL)
				print_error("prefix of %zu bytes accepted\n", len);
			assert_int_equal(rc, -EINVAL);
			expect_contains(err, len ? "truncated module" :
			                "not a WebAssembly module");
		}
		wasm_info_free(&info);
	}
}

static void test_truncated_section_message(void **state)
{
	struct buf m = { 0 };

	put_header(&m);
	put(&m, 10);
	put_u32(&m, 100);
	put_bytes(&m, "\x01\x02\x00\x0b", 4);
	expect_error(&m, "truncated module: section 'code' ends at byte 110 but "
	             "the file has 14 bytes");
	m.n = 9;
	put(&m, 0x80);
	expect_error(&m, "truncated module: section size at byte 9 is cut off");
}

static void test_section_size_mismatch(void **state)
{
	struct buf m = { 0 };

	/* Declared 5 bytes, contents take 4. */
	put_header(&m);
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00, 0x00);
	expect_error(&m, "section 'type' is 5 bytes long but its contents end "
	             "after 4 bytes (at byte 14)");
	/* Declared 3 bytes, contents need 4. */
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x01, 0x7f);
	put(&m, 0x00);
	expect_error(&m, "unexpected end of section 'type' at byte 14 while "
	             "reading number of results");
	/* A function body larger than the code section. */
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 3, 0x01, 0x00);
	SEC(&m, 10, 0x01, 0x09, 0x00, 0x0b);
	expect_error(&m, "body of function 0 at byte 21 is 9 bytes long, but "
	             "section 'code' ends at byte 24");
}

static void test_bad_leb128(void **state)
{
	struct buf m = { 0 };

	put_header(&m);
	SEC(&m, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00);
	expect_error(&m, "malformed LEB128 at byte 10 (number of types): "
	             "longer than 5 bytes");
	m.n = 8;
	SEC(&m, 1, 0xff, 0xff, 0xff, 0xff, 0x1f);
	expect_error(&m, "malformed LEB128 at byte 10 (number of types): the "
	             "value does not fit in 32 bits");
	m.n = 8;
	SEC(&m, 1, 0x80);
	expect_error(&m, "unexpected end of section 'type' at byte 11 while "
	             "reading number of types");
	/* Signed: the unused bits of the 5th byte must copy the sign bit. */
	m.n = 8;
	SEC(&m, 6, 0x01, 0x7f, 0x00, 0x41, 0x80, 0x80, 0x80, 0x80, 0x48, 0x0b);
	expect_error(&m, "malformed LEB128 at byte 14 (i32.const immediate)");
	m.n = 8;
	SEC(&m, 6, 0x01, 0x7f, 0x00, 0x41, 0x80, 0x80, 0x80, 0x80, 0x70, 0x0b);
	expect_error(&m, "(i32.const immediate): the value does not fit");
	/* ... and these are fine: -2^31 and 2^31 - 1. */
	struct wasm_info info;
	m.n = 8;
	SEC(&m, 6, 0x02, 0x7f, 0x00, 0x41, 0x80, 0x80, 0x80, 0x80, 0x78, 0x0b,
	    0x7f, 0x00, 0x41, 0xff, 0xff, 0xff, 0xff, 0x07, 0x0b);
	expect_read_ok(&m, &info);
	wasm_info_free(&info);
	/* i64: ten bytes at most, the last one only sign bits. */
	m.n = 8;
	SEC(&m, 6, 0x01, 0x7e, 0x00, 0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	    0x80, 0x80, 0x80, 0x7f, 0x0b);
	expect_read_ok(&m, &info);
	wasm_info_free(&info);
	m.n = 8;
	SEC(&m, 6, 0x01, 0x7e, 0x00, 0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	    0x80, 0x80, 0x80, 0x80, 0x00, 0x0b);
	expect_error(&m, "longer than 10 bytes");
}

static void test_huge_counts(void **state)
{
	struct buf m = { 0 };

	put_header(&m);
	SEC(&m, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x60);
	expect_error(&m, "section 'type' declares 4294967295 types at byte 10, "
	             "but only 1 bytes are left for them");
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0xff, 0xff, 0xff, 0xff, 0x0f);
	expect_error(&m, "declares 4294967295 parameters");
	m.n = 8;
	SEC(&m, 2, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f);
	expect_error(&m, "import module name at byte 11 is 4294967295 bytes "
	             "long, but section 'import' ends at byte 16");
	m.n = 8;
	SEC(&m, 11, 0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f);
	expect_error(&m, "data segment contents at byte 12 is 4294967295 bytes");
	m.n = 8;
	SEC(&m, 12, 0xa1, 0x8d, 0x06);
	expect_error(&m, "too many data segments: 100001 at byte 10");

	/* Over a wisp limit while within the bytes: 1001 parameters. */
	struct buf c = { 0 };
	put_u32(&c, 1);
	put(&c, 0x60);
	put_u32(&c, 1001);
	for (int i = 0; i < 1001; i++)
		put(&c, 0x7f);
	put(&c, 0x00);
	m.n = 8;
	put_section(&m, 1, &c);
	expect_error(&m, "too many parameters: 1001 at byte 13 (wisp's limit "
	             "is 1000)");
	/* 50001 locals in two declarations. */
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 3, 0x01, 0x00);
	SEC(&m, 10, 0x01, 0x08, 0x02, 0xd0, 0x86, 0x03, 0x7f, 0x01, 0x7e,
	    0x0b);
	expect_error(&m, "function 0 declares more than 50000 locals");
}

static void test_invalid_utf8(void **state)
{
	static const struct { const char *bytes; } bad[] = {
		{ "\xc0\x80" },              /* overlong NUL */
		{ "\xe0\x80\xaf" },          /* overlong '/' */
		{ "\xed\xa0\x80" },          /* surrogate U+D800 */
		{ "\xf4\x90\x80\x80" },      /* U+110000 */
		{ "a\xe2\x82" },             /* cut-off sequence */
		{ "\xff" },
		{ "\x80" },                  /* lone continuation */
	};
	struct buf m = { 0 };
	struct wasm_info info;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m.n = 0;
		put_header(&m);
		SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
		one_func_import(&m, "env", bad[i].bytes, 0);
		expect_error(&m, "import name at byte 21 is not valid UTF-8");
	}
	/* Valid multi-byte names are fine (and come back byte for byte). */
	m.n = 0;
	put_header(&m);
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	one_func_import(&m, "env", "h\xc3\xa9llo\xf0\x9f\x98\x80", 0);
	expect_read_ok(&m, &info);
	assert_string_equal(info.imports[0].name, "h\xc3\xa9llo\xf0\x9f\x98\x80");
	wasm_info_free(&info);
	/* A NUL inside a name would make it another name as a C string. */
	m.n = 0;
	put_header(&m);
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 2, 0x01, 0x05, 'e', 'n', 'v', 0x00, 'x', 0x03, 'f', 'o', 'o',
	    0x00, 0x00);
	expect_error(&m, "import module name at byte 17 contains a NUL");
	/* Custom section names must be UTF-8 too. */
	m.n = 0;
	put_header(&m);
	SEC(&m, 0, 0x01, 0xff);
	expect_error(&m, "custom section name at byte 10 is not valid UTF-8");
}

static void test_section_order(void **state)
{
	struct buf m = { 0 };
	struct wasm_info info;

	put_header(&m);
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 3, 0x00);
	SEC(&m, 2, 0x00);
	expect_error(&m, "section 'import' at byte 17 is out of order: it must "
	             "come before section 'function' (at byte 14)");
	m.n = 8;
	SEC(&m, 1, 0x00);
	SEC(&m, 1, 0x00);
	expect_error(&m, "section 'type' at byte 11 appears a second time (the "
	             "first is at byte 8)");
	/* Tag comes after memory and before global; datacount before code. */
	m.n = 8;
	SEC(&m, 6, 0x00);
	SEC(&m, 13, 0x00);
	expect_error(&m, "section 'tag' at byte 11 is out of order: it must "
	             "come before section 'global'");
	m.n = 8;
	SEC(&m, 10, 0x00);
	SEC(&m, 12, 0x00);
	expect_error(&m, "section 'datacount' at byte 11 is out of order");
	m.n = 8;
	SEC(&m, 14, 0x00);
	expect_error(&m, "unknown section id 14 at byte 8");
	/* Custom sections may go anywhere, even between ordered ones. */
	m.n = 8;
	SEC(&m, 0, 0x01, 'a');
	SEC(&m, 1, 0x00);
	SEC(&m, 0, 0x01, 'b', 0xff, 0xff);
	SEC(&m, 3, 0x00);
	SEC(&m, 0, 0x00);
	expect_read_ok(&m, &info);
	wasm_info_free(&info);
}

static void test_function_code_mismatch(void **state)
{
	struct buf m = { 0 };

	put_header(&m);
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 3, 0x02, 0x00, 0x00);
	SEC(&m, 10, 0x01, 0x02, 0x00, 0x0b);
	expect_error(&m, "section 'code' has 1 function bodies (count at byte "
	             "21), but section 'function' declares 2 functions");
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 3, 0x01, 0x00);
	expect_error(&m, "section 'function' declares 1 functions, but the "
	             "module has no section 'code'");
	m.n = 8;
	SEC(&m, 10, 0x01, 0x02, 0x00, 0x0b);
	expect_error(&m, "has 1 function bodies (count at byte 10), but "
	             "section 'function' declares 0 functions");
	/* A body must end with `end`. */
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 3, 0x01, 0x00);
	SEC(&m, 10, 0x01, 0x02, 0x00, 0x01);
	expect_error(&m, "body of function 0 at byte 21 does not end with "
	             "'end'");
	/* datacount must match the data section. */
	m.n = 8;
	SEC(&m, 12, 0x02);
	SEC(&m, 11, 0x01, 0x01, 0x00);
	expect_error(&m, "section 'datacount' declares 2 data segments, but "
	             "section 'data' has 1");
}

static void test_limits_flags(void **state)
{
	struct buf m = { 0 };

	put_header(&m);
	SEC(&m, 5, 0x01, 0x04, 0x01);
	expect_error(&m, "memory64 is not supported (memory at byte 11)");
	m.n = 8;
	SEC(&m, 5, 0x01, 0x05, 0x01, 0x02);
	expect_error(&m, "memory64 is not supported");
	m.n = 8;
	SEC(&m, 5, 0x01, 0x03, 0x01, 0x02);
	expect_error(&m, "shared memory is not supported (memory at byte 11)");
	m.n = 8;
	SEC(&m, 5, 0x01, 0x08, 0x01, 0x10);
	expect_error(&m, "custom page sizes are not supported");
	m.n = 8;
	SEC(&m, 5, 0x01, 0x10, 0x01);
	expect_error(&m, "malformed memory limits at byte 11: unknown flags 0x10");
	m.n = 8;
	SEC(&m, 5, 0x01, 0x00, 0x81, 0x80, 0x04);
	expect_error(&m, "memory at byte 11 has a minimum of 65537 pages");
	m.n = 8;
	SEC(&m, 5, 0x01, 0x01, 0x02, 0x01);
	expect_error(&m, "memory at byte 11 has a maximum size (1) below its "
	             "minimum (2)");
	m.n = 8;
	SEC(&m, 4, 0x01, 0x70, 0x04, 0x01);
	expect_error(&m, "64-bit tables are not supported");
	m.n = 8;
	SEC(&m, 4, 0x01, 0x70, 0x03, 0x01, 0x01);
	expect_error(&m, "malformed table limits at byte 12: unknown flags 0x03");
	m.n = 8;
	SEC(&m, 4, 0x01, 0x64, 0x00, 0x01);
	expect_error(&m, "unsupported reference type 0x64 at byte 11");
	/* The same checks apply to imported memories. */
	m.n = 8;
	SEC(&m, 2, 0x01, 0x03, 'e', 'n', 'v', 0x03, 'm', 'e', 'm', 0x02, 0x03,
	    0x01, 0x01);
	expect_error(&m, "shared memory is not supported (memory at byte 20)");
}

static void test_other_malformations(void **state)
{
	struct buf m = { 0 };

	put_header(&m);
	SEC(&m, 1, 0x01, 0x5f, 0x00, 0x00);
	expect_error(&m, "GC types are not supported (type 0 at byte 11 has "
	             "form 0x5f)");
	m.n = 8;
	SEC(&m, 1, 0x01, 0x61, 0x00, 0x00);
	expect_error(&m, "malformed type 0 at byte 11: expected 0x60");
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x01, 0x63, 0x00);
	expect_error(&m, "unsupported value type 0x63 at byte 13 (parameters)");
	m.n = 8;
	SEC(&m, 3, 0x01, 0x00);
	expect_error(&m, "function's type at byte 11 is type 0, but the module "
	             "has 0 types");
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	one_func_import(&m, "env", "f", 1);
	expect_error(&m, "imported function's type at byte 24 is type 1");
	m.n = 8;
	SEC(&m, 2, 0x01, 0x00, 0x00, 0x05, 0x00);
	expect_error(&m, "import 0 at byte 13 has unknown kind 0x05");
	m.n = 8;
	SEC(&m, 6, 0x01, 0x7f, 0x02, 0x41, 0x00, 0x0b);
	expect_error(&m, "malformed global mutability 0x02 at byte 12");
	m.n = 8;
	SEC(&m, 6, 0x01, 0x7f, 0x00, 0x20, 0x00, 0x0b);
	expect_error(&m, "instruction 0x20 at byte 13 is not allowed in a "
	             "constant expression (global initializer)");
	m.n = 8;
	SEC(&m, 6, 0x01, 0x7f, 0x00, 0x41, 0x00);
	expect_error(&m, "unexpected end of section 'global' at byte 15 while "
	             "reading global initializer");
	m.n = 8;
	SEC(&m, 7, 0x01, 0x01, 'f', 0x00, 0x00);
	expect_error(&m, "export \"f\" at byte 13 refers to function 0, but the "
	             "module has 0 of them");
	m.n = 8;
	SEC(&m, 7, 0x01, 0x01, 'f', 0x05, 0x00);
	expect_error(&m, "export at byte 13 has unknown kind 0x05");
	m.n = 8;
	SEC(&m, 5, 0x01, 0x00, 0x01);
	SEC(&m, 7, 0x02, 0x01, 'm', 0x02, 0x00, 0x01, 'm', 0x02, 0x00);
	expect_error(&m, "duplicate export name \"m\"");
	m.n = 8;
	SEC(&m, 8, 0x00);
	expect_error(&m, "start function 0 at byte 10 does not exist (the "
	             "module has 0 functions)");
	m.n = 8;
	SEC(&m, 9, 0x01, 0x08, 0x00, 0x00);
	expect_error(&m, "element segment 0 at byte 11 has unknown flags 8");
	m.n = 8;
	SEC(&m, 9, 0x01, 0x01, 0x01, 0x00);
	expect_error(&m, "malformed element kind 0x01 at byte 12");
	m.n = 8;
	SEC(&m, 11, 0x01, 0x03, 0x00);
	expect_error(&m, "data segment 0 at byte 11 has unknown flags 3");
	m.n = 8;
	SEC(&m, 13, 0x01, 0x01, 0x00);
	expect_error(&m, "malformed tag at byte 11: attribute 1");
}

/* ---- the name section ------------------------------------------------------ */

/* A module with two defined functions and the given name section body. */
static void names_module(struct buf *m, const struct buf *names)
{
	struct buf c = { 0 };

	m->n = 0;
	put_header(m);
	put_str(&c, "name");
	put_bytes(&c, names->b, names->n);
	put_section(m, 0, &c);          /* before everything: still fine */
	SEC(m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(m, 3, 0x02, 0x00, 0x00);
	SEC(m, 10, 0x02, 0x02, 0x00, 0x0b, 0x02, 0x00, 0x0b);
}

/* A module with two globals: global 0 (mut i32) starting at `sp0` (3
 * LEB128 bytes), global 1 an immutable i32; then a name section naming
 * global `named` "__stack_pointer" (none if named < 0) and global 1 "g". */
static void sp_module(struct buf *m, const uint8_t sp0[3], int named)
{
	struct buf g = { 0 }, c = { 0 }, sub = { 0 };

	m->n = 0;
	put_header(m);
	put_u32(&g, 2);
	put_bytes(&g, "\x7f\x01\x41", 3);
	put_bytes(&g, sp0, 3);
	put(&g, 0x0b);
	put_bytes(&g, "\x7f\x00\x41\x00\x0b", 5);
	put_section(m, 6, &g);
	if (named >= 0) {
		put_u32(&sub, 2);
		put_u32(&sub, (uint32_t)named);
		put_str(&sub, "__stack_pointer");
		put_u32(&sub, named == 1 ? 0 : 1);
		put_str(&sub, "g");
		put_str(&c, "name");
		put(&c, 0x07);
		put_u32(&c, (uint32_t)sub.n);
		put_bytes(&c, sub.b, sub.n);
		put_section(m, 0, &c);
	}
}

static void test_stack_pointer_global(void **state)
{
	static const uint8_t at64k[3] = { 0x80, 0x80, 0x04 };   /* 65536 */
	static const uint8_t at0[3] = { 0x80, 0x80, 0x00 };     /* 0, padded */
	static const uint8_t odd[3] = { 0x81, 0x80, 0x04 };     /* 65537 */
	struct buf m = { 0 };
	struct wasm_info info;

	(void)state;
	sp_module(&m, at64k, -1);       /* no names: LLVM's global 0 */
	expect_read_ok(&m, &info);
	assert_int_equal(info.stack_pointer, 1);
	wasm_info_free(&info);
	sp_module(&m, at0, -1);         /* a counter from 0 is not one */
	expect_read_ok(&m, &info);
	assert_int_equal(info.stack_pointer, 0);
	wasm_info_free(&info);
	sp_module(&m, odd, -1);         /* nor an unaligned start */
	expect_read_ok(&m, &info);
	assert_int_equal(info.stack_pointer, 0);
	wasm_info_free(&info);
	sp_module(&m, at0, 0);          /* named: believed, whatever its start */
	expect_read_ok(&m, &info);
	assert_int_equal(info.stack_pointer, 1);
	wasm_info_free(&info);
	sp_module(&m, at64k, 1);        /* the name on an immutable global: none */
	expect_read_ok(&m, &info);
	assert_int_equal(info.stack_pointer, 0);
	wasm_info_free(&info);
}

static void test_name_section_lenient(void **state)
{
	struct buf m, n = { 0 };
	struct wasm_info info;

	/* Duplicates: the first name wins; out-of-range entries are skipped;
	 * a name with a NUL is skipped; a second subsection 0 is ignored. */
	struct buf f = { 0 }, mn = { 0 };
	put_u32(&f, 5);
	put_u32(&f, 1);
	put_str(&f, "first");
	put_u32(&f, 1);
	put_str(&f, "second");
	put_u32(&f, 7);
	put_str(&f, "nope");
	put_u32(&f, 0);
	put_bytes(&f, "\x02z\0", 3);
	put_u32(&f, 0);
	put_str(&f, "zero");
	put_section(&n, 0x01, &f);
	put_str(&mn, "m1");
	put_section(&n, 0x00, &mn);
	mn.n = 0;
	put_str(&mn, "m2");
	put_section(&n, 0x00, &mn);
	put(&n, 0x20);                  /* unknown subsection: skipped */
	put_u32(&n, 2);
	put_bytes(&n, "\xff\xff", 2);
	names_module(&m, &n);
	expect_read_ok(&m, &info);
	assert_null(info.names_error);
	assert_string_equal(wasm_func_name(&info, 1), "first");
	assert_string_equal(wasm_func_name(&info, 0), "zero");
	assert_string_equal(info.module_name, "m1");
	wasm_info_free(&info);

	/* Malformed framing: the whole section is ignored, the module is not. */
	n.n = 0;
	put(&n, 0x00);
	put_u32(&n, 3);
	put_str(&n, "m1");
	put(&n, 0x01);
	put_u32(&n, 50);
	put_u32(&n, 1);
	names_module(&m, &n);
	expect_read_ok(&m, &info);
	assert_null(info.module_name);
	assert_null(info.func_names);
	assert_non_null(info.names_error);
	expect_contains(info.names_error, "name subsection at byte");
	assert_int_equal(wasm_check_wisp(&info, err, sizeof(err)), 0);
	wasm_info_free(&info);

	/* Invalid UTF-8 in a function name: ignored as a whole as well. */
	n.n = 0;
	put(&n, 0x01);
	put_u32(&n, 5);
	put_bytes(&n, "\x01\x00\x02\xc0\x80", 5);
	names_module(&m, &n);
	expect_read_ok(&m, &info);
	assert_null(info.func_names);
	expect_contains(info.names_error, "not valid UTF-8");
	wasm_info_free(&info);

	/* Leftover bytes in a subsection, and an empty map: no names at all. */
	n.n = 0;
	put(&n, 0x01);
	put_u32(&n, 2);
	put_bytes(&n, "\x00\x00", 2);
	names_module(&m, &n);
	expect_read_ok(&m, &info);
	assert_null(info.func_names);
	expect_contains(info.names_error, "is 2 bytes long but its contents "
	                "end after 1 bytes");
	wasm_info_free(&info);

	/* A custom section called "name" that is empty. */
	n.n = 0;
	names_module(&m, &n);
	expect_read_ok(&m, &info);
	assert_null(info.names_error);
	assert_null(info.func_names);
	wasm_info_free(&info);
}

/* ---- wisp's checks ------------------------------------------------------- */

static void test_unknown_import(void **state)
{
	struct buf m = { 0 };

	put_header(&m);
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	one_func_import(&m, "env", "foo", 0);
	expect_wisp_error(&m, "module imports function \"env\".\"foo\", which "
	                  "wisp does not provide");
	/* Names in messages are escaped. */
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	one_func_import(&m, "a\"b\x01", "\\", 0);
	expect_wisp_error(&m, "module imports function \"a\\\"b\\x01\".\"\\\\\", "
	                  "which wisp does not provide");
	/* ... and shortened. */
	char longname[200];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	one_func_import(&m, "env", longname, 0);
	struct wasm_info info;
	expect_read_ok(&m, &info);
	assert_int_equal(wasm_check_wisp(&info, err, sizeof(err)), -EINVAL);
	expect_contains(err, "xxxxxxxx...\", which wisp does not provide");
	assert_true(strlen(err) < 150);
	wasm_info_free(&info);
}

static void test_import_signature(void **state)
{
	struct buf m = { 0 };

	put_header(&m);
	SEC(&m, 1, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f);
	one_func_import(&m, "wasi_snapshot_preview1", "fd_write", 0);
	expect_wisp_error(&m, "import \"wasi_snapshot_preview1\".\"fd_write\" has "
	                  "type (i32) -> (i32) but wisp provides (i32, i32, i32, "
	                  "i32) -> (i32)");
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x01, 0x7e);
	one_func_import(&m, "env", "ticks", 0);
	struct wasm_info info;
	expect_read_ok(&m, &info);
	assert_int_equal(wasm_check_wisp(&info, err, sizeof(err)), 0);
	wasm_info_free(&info);
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x02, 0x6f, 0x7b, 0x00);
	one_func_import(&m, "env", "ticks", 0);
	expect_wisp_error(&m, "import \"env\".\"ticks\" has type (externref, v128) "
	                  "-> () but wisp provides () -> (i64)");
}

static void test_non_function_imports(void **state)
{
	struct buf m = { 0 };

	put_header(&m);
	SEC(&m, 2, 0x01, 0x03, 'e', 'n', 'v', 0x06, 'm', 'e', 'm', 'o', 'r', 'y',
	    0x02, 0x00, 0x01);
	struct wasm_info info;
	expect_read_ok(&m, &info);
	assert_true(info.memory_imported);
	assert_int_equal(info.nmemories, 1);
	assert_int_equal(info.mem_min, 1);
	assert_int_equal(info.imports[0].kind, WASM_KIND_MEMORY);
	assert_int_equal(info.imports[0].limits.min, 1);
	wasm_info_free(&info);
	expect_wisp_error(&m, "module imports memory \"env\".\"memory\"; wisp "
	                  "modules must define their own memory");
	m.n = 8;
	SEC(&m, 2, 0x01, 0x01, 'e', 0x01, 't', 0x01, 0x70, 0x00, 0x00);
	expect_wisp_error(&m, "module imports table \"e\".\"t\"; wisp modules "
	                  "must define their own tables");
	m.n = 8;
	SEC(&m, 2, 0x01, 0x01, 'e', 0x01, 'g', 0x03, 0x7f, 0x01);
	expect_read_ok(&m, &info);
	assert_int_equal(info.imports[0].global_type, 'i');
	assert_true(info.imports[0].global_mutable);
	wasm_info_free(&info);
	expect_wisp_error(&m, "module imports global \"e\".\"g\"; wisp provides "
	                  "no globals");
	m.n = 8;
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 2, 0x01, 0x01, 'e', 0x01, 'x', 0x04, 0x00, 0x00);
	expect_wisp_error(&m, "module imports tag \"e\".\"x\"; wisp provides no "
	                  "tags");
}

static void test_two_memories(void **state)
{
	struct buf m = { 0 };
	struct wasm_info info;

	put_header(&m);
	SEC(&m, 5, 0x02, 0x00, 0x03, 0x00, 0x01);
	expect_read_ok(&m, &info);
	assert_int_equal(info.nmemories, 2);
	assert_int_equal(info.mem_min, 3);      /* memory 0 */
	wasm_info_free(&info);
	expect_wisp_error(&m, "module has 2 memories; wisp supports at most one");
}

static void test_error_buffer(void **state)
{
	struct buf m = { 0 };
	struct wasm_info info;
	char small[8];

	put_bytes(&m, "\0asm\2\0\0\0", 8);
	assert_int_equal(wasm_read(m.b, m.n, &info, NULL, 0), -EINVAL);
	memset(small, 'z', sizeof(small));
	assert_int_equal(wasm_read(m.b, m.n, &info, small, sizeof(small)),
	                 -EINVAL);
	assert_string_equal(small, "unsuppo");
	m.n = 0;
	put_header(&m);
	SEC(&m, 5, 0x02, 0x00, 0x03, 0x00, 0x01);
	expect_read_ok(&m, &info);
	assert_int_equal(wasm_check_wisp(&info, NULL, 0), -EINVAL);
	wasm_info_free(&info);
}

/* ---- robustness ------------------------------------------------------------- */

/* Everything a caller may do with a result, so ASan sees it all. */
static void exercise(const uint8_t *p, size_t n)
{
	struct wasm_info info;
	char e2[256];

	if (read_exact(p, n, &info) == 0) {
		uint32_t nspace = info.nfunc_imports + info.nfuncs;
		wasm_check_wisp(&info, e2, sizeof(e2));
		for (uint32_t i = 0; i <= nspace; i++) {
			wasm_func_name(&info, i);
			wasm_func_type(&info, i);
		}
		for (uint32_t i = 0; i < info.nexports; i++)
			assert_ptr_equal(wasm_find_export(&info, info.exports[i].name,
			                                  info.exports[i].kind),
			                 &info.exports[i]);
	} else {
		assert_true(strlen(err) > 0);
	}
	wasm_info_free(&info);
}

static void test_bit_flips(void **state)
{
	struct buf m;

	full_module(&m, NULL, NULL);
	for (size_t i = 0; i < m.n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			m.b[i] ^= (uint8_t)(1u << bit);
			exercise(m.b, m.n);
			m.b[i] ^= (uint8_t)(1u << bit);
		}
	}
}

/* Deterministic random edits: overwrite, insert, delete, truncate. */
static void test_random_mutations(void **state)
{
	struct buf orig, m;
	uint64_t seed = 0x9e3779b97f4a7c15u;

	full_module(&orig, NULL, NULL);
	for (int iter = 0; iter < 20000; iter++) {
		m = orig;
		int edits = 1 + (int)(seed >> 60) % 4;
		for (int k = 0; k < edits; k++) {
			seed = seed * 6364136223846793005u + 1442695040888963407u;
			size_t at = (size_t)(seed >> 33) % (m.n ? m.n : 1);
			uint8_t v = (uint8_t)(seed >> 20);
			static const uint8_t special[] = { 0x00, 0x7f, 0x80, 0xff };
			switch ((seed >> 13) % 5) {
			case 0: m.b[at] = v; break;
			case 1: m.b[at] = special[v % 4]; break;
			case 2:
				if (m.n < sizeof(m.b)) {
					memmove(m.b + at + 1, m.b + at, m.n - at);
					m.b[at] = v;
					m.n++;
				}
				break;
			case 3:
				if (m.n > 0) {
					memmove(m.b + at, m.b + at + 1, m.n - at - 1);
					m.n--;
				}
				break;
			default: m.n = at; break;
			}
		}
		exercise(m.b, m.n);
	}
}

/* ---- where things are, and the code check (wasm_code.c) ------------------ */

static void test_spans_of_data_and_bodies(void **state)
{
	struct buf m;
	struct wasm_info info;

	full_module(&m, NULL, NULL);
	expect_read_ok(&m, &info);
	assert_int_equal(info.ndata_segments, 1);
	const struct wasm_data_segment *d = &info.data_segments[0];
	assert_false(d->passive);
	assert_int_equal(d->len, 2);
	assert_int_equal(info.data_bytes, 2);
	assert_memory_equal(m.b + d->data_at, "hi", 2);
	assert_int_equal(m.b[d->len_at], 2);                /* the length's LEB */
	assert_int_equal(m.b[d->at], 0x00);                 /* flags: active */
	assert_int_equal(m.b[info.data_section.at], 11);   /* section id */
	assert_true(d->data_at + d->len <= info.data_section.at + info.data_section.len);
	/* bodies: after their size, local declarations included */
	assert_int_equal(info.bodies[0].len, 2);
	assert_memory_equal(m.b + info.bodies[0].at, "\x00\x0b", 2);
	assert_int_equal(info.bodies[1].len, 6);
	assert_memory_equal(m.b + info.bodies[1].at, "\x01\x02\x7e\x41\x00\x0b", 6);
	wasm_info_free(&info);
}

/* One function of type () -> () with body bytes (local declarations
 * first), checked by wasm_check_code on an exact-size copy. */
static int check_body(const uint8_t *body, size_t n, uint32_t max_depth)
{
	struct buf m = { 0 }, c = { 0 };
	put_header(&m);
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 3, 0x01, 0x00);
	put_u32(&c, 1);
	put_u32(&c, (uint32_t)n);
	put_bytes(&c, body, n);
	put_section(&m, 10, &c);
	uint8_t *copy = malloc(m.n);
	assert_non_null(copy);
	memcpy(copy, m.b, m.n);
	struct wasm_info info;
	int rc = wasm_read(copy, m.n, &info, err, sizeof(err));
	assert_int_equal(rc, 0);
	rc = wasm_check_code(copy, m.n, &info, max_depth, err, sizeof(err));
	wasm_info_free(&info);
	free(copy);
	return rc;
}

#define CHECK_BODY(depth, ...) check_body(BYTES(__VA_ARGS__), (depth))

static void test_code_check(void **state)
{
	/* valid: nested blocks, br_table, memory ops, a long i64.const */
	assert_int_equal(CHECK_BODY(10, 0x00, 0x02, 0x40, 0x03, 0x40, 0x41, 0x00, 0x0e, 0x01,
	                            0x00, 0x01, 0x0b, 0x0b, 0x41, 0x00, 0x28, 0x02, 0x00, 0x1a,
	                            0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	                            0x7f, 0x1a, 0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x0b,
	                            0x00, 0x0b), 0);
	assert_string_equal(err, "");
	/* SIMD, tail call, exceptions, threads, GC, unknown */
	assert_int_equal(CHECK_BODY(10, 0x00, 0x41, 0x00, 0xfd, 0x11, 0x1a, 0x0b), -EINVAL);
	expect_contains(err, "SIMD (v128) is not supported yet: function 0 uses instruction 0xfd 17 "
	                "(a SIMD instruction) at byte");
	assert_int_equal(CHECK_BODY(10, 0x00, 0x12, 0x00, 0x0b), -EINVAL);
	expect_contains(err, "tail calls are not supported: function 0 uses instruction 0x12 "
	                "(return_call)");
	/* exception handling: the legacy encoding walks (try, throw 0, catch 0,
	 * catch_all, rethrow, delegate), the 2023 one (try_table) is refused */
	assert_int_equal(CHECK_BODY(10, 0x00, 0x06, 0x40, 0x41, 0x00, 0x08, 0x00, 0x07, 0x00,
	                            0x1a, 0x19, 0x09, 0x00, 0x0b, 0x06, 0x40, 0x18, 0x00,
	                            0x0b), 0);
	assert_int_equal(CHECK_BODY(10, 0x00, 0x1f, 0x40, 0x00, 0x0b, 0x0b), -EINVAL);
	expect_contains(err, "exception handling's 2023 encoding (try_table, exnref) is not "
	                "supported: function 0 uses instruction 0x1f (try_table)");
	assert_int_equal(CHECK_BODY(10, 0x00, 0xfe, 0x03, 0x00, 0x0b), -EINVAL);
	expect_contains(err, "threads (atomic instructions) are not supported");
	assert_int_equal(CHECK_BODY(10, 0x00, 0xfb, 0x01, 0x0b), -EINVAL);
	expect_contains(err, "garbage collection");
	assert_int_equal(CHECK_BODY(10, 0x00, 0xfc, 0x12, 0x0b), -EINVAL);
	expect_contains(err, "function 0 uses an unknown instruction 0xfc 18 at byte");
	assert_int_equal(CHECK_BODY(10, 0x00, 0x27, 0x0b), -EINVAL);
	expect_contains(err, "unknown instruction 0x27");
	/* a v128 local */
	assert_int_equal(CHECK_BODY(10, 0x01, 0x02, 0x7b, 0x0b), -EINVAL);
	expect_contains(err, "function 0 has a v128 local");
	/* nesting: 3 deep is fine with a limit of 3, 4 is not */
	assert_int_equal(CHECK_BODY(3, 0x00, 0x02, 0x40, 0x02, 0x40, 0x02, 0x40, 0x0b, 0x0b,
	                            0x0b, 0x0b), 0);
	assert_int_equal(CHECK_BODY(3, 0x00, 0x02, 0x40, 0x02, 0x40, 0x02, 0x40, 0x02, 0x40,
	                            0x0b, 0x0b, 0x0b, 0x0b, 0x0b), -EINVAL);
	expect_contains(err, "nests blocks more than 3 deep");
	/* if/else/end keep the depth right: two sibling ifs at depth 1 */
	assert_int_equal(CHECK_BODY(1, 0x00, 0x41, 0x00, 0x04, 0x40, 0x05, 0x0b, 0x41, 0x00,
	                            0x04, 0x40, 0x0b, 0x0b), 0);
	/* cut short inside an immediate: no read past the body (ASan), left
	 * to wasm2c's validator */
	assert_int_equal(CHECK_BODY(10, 0x00, 0x41, 0x80, 0x0b), 0);
	assert_int_equal(CHECK_BODY(10, 0x00, 0x0e, 0xff, 0xff, 0x0b), 0);
	assert_int_equal(CHECK_BODY(10, 0x00, 0x44, 0x00, 0x0b), 0);
}

static void test_code_check_types_and_tags(void **state)
{
	struct buf m = { 0 };
	struct wasm_info info;

	put_header(&m);
	SEC(&m, 1, 0x01, 0x60, 0x00, 0x00);
	SEC(&m, 13, 0x01, 0x00, 0x00);                       /* one tag: runs */
	expect_read_ok(&m, &info);
	assert_int_equal(wasm_check_code(m.b, m.n, &info, 10, err, sizeof(err)), 0);
	wasm_info_free(&info);

	/* a tag of 65 f64 (520 bytes) is over ENGINE_EXCEPTION_MAX */
	m.n = 0;
	put_header(&m);
	{
		uint8_t t[4 + 65 + 1] = { 0x01, 0x60, 0x41 };
		memset(t + 3, 0x7c, 65);
		t[3 + 65] = 0x00;
		put_section_bytes(&m, 1, t, 3 + 65 + 1);
	}
	SEC(&m, 13, 0x01, 0x00, 0x00);
	expect_read_ok(&m, &info);
	assert_int_equal(wasm_check_code(m.b, m.n, &info, 10, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "an exception tag of the module carries 520 bytes of values; "
	                    "wisp's limit is 256");
	wasm_info_free(&info);

	m.n = 0;
	put_header(&m);
	SEC(&m, 6, 0x01, 0x7b, 0x00, 0xfd, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0, 0x0b);                                       /* a v128 global */
	expect_read_ok(&m, &info);
	assert_int_equal(wasm_check_code(m.b, m.n, &info, 10, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "SIMD (v128) is not supported yet: global 0 has type v128; "
	                    "build without -msimd128 (clang) or +simd128 (Rust)");
	wasm_info_free(&info);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_module),
		cmocka_unit_test(test_full_module_reads_back),
		cmocka_unit_test(test_other_valid_forms),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_truncated_at_every_byte),
		cmocka_unit_test(test_truncated_section_message),
		cmocka_unit_test(test_section_size_mismatch),
		cmocka_unit_test(test_bad_leb128),
		cmocka_unit_test(test_huge_counts),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_section_order),
		cmocka_unit_test(test_function_code_mismatch),
		cmocka_unit_test(test_limits_flags),
		cmocka_unit_test(test_other_malformations),
		cmocka_unit_test(test_name_section_lenient),
		cmocka_unit_test(test_stack_pointer_global),
		cmocka_unit_test(test_unknown_import),
		cmocka_unit_test(test_import_signature),
		cmocka_unit_test(test_non_function_imports),
		cmocka_unit_test(test_two_memories),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_random_mutations),
		cmocka_unit_test(test_spans_of_data_and_bodies),
		cmocka_unit_test(test_code_check),
		cmocka_unit_test(test_code_check_types_and_tags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
