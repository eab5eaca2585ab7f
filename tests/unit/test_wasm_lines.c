/*
 * test_wasm_lines.c — source lines of functions from a module's DWARF
 * line table (src/compile/wasm_lines.c).
 *
 * The module and its .debug_line are written byte by byte here, so each
 * test shows what it feeds in; inputs live in heap blocks of their exact
 * size, so ASan catches a read past the end (the truncation and
 * corruption sweeps).
 */
#include "unit.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compile/wasm_lines.h"
#include "compile/wasm_reader.h"

struct buf {
	size_t n;
	uint8_t b[1024];
};

static void put(struct buf *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->b));
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void byte(struct buf *b, uint8_t x)
{
	put(b, &x, 1);
}

static void str(struct buf *b, const char *s)
{
	put(b, s, strlen(s) + 1);
}

static void custom(struct buf *m, const char *name, const struct buf *contents)
{
	size_t nl = strlen(name);
	size_t size = 1 + nl + contents->n;
	assert_true(size < 16384);
	byte(m, 0);
	byte(m, (uint8_t)(0x80 | (size & 0x7f)));   /* two-byte LEB, always */
	byte(m, (uint8_t)(size >> 7));
	byte(m, (uint8_t)nl);
	put(m, name, nl);
	put(m, contents->b, contents->n);
}

/* Two functions () -> (): body 0 is [no locals, end], body 1 [no locals,
 * nop, nop, end]. In the code section's contents (the addresses DWARF
 * uses): the count at 0, body 0 at 2..4, body 1 at 5..9; function 0 owns
 * [0, 4), function 1 [4, 9). */
static void module(struct buf *m)
{
	static const uint8_t head[] = {
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00,         /* type */
		0x03, 0x03, 0x02, 0x00, 0x00,               /* function */
		0x0a, 0x09, 0x02, 0x02, 0x00, 0x0b, 0x04, 0x00, 0x01, 0x01, 0x0b,   /* code */
	};
	m->n = 0;
	put(m, head, sizeof(head));
}

/* The header's standard opcode lengths for opcode_base 13. */
static const uint8_t std_lengths[12] = { 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1 };

/* A version 4 unit: files "a.c" in "src" (1) and "/abs/b.c" (2). Rows:
 * address 5 line 10 in file 1, address 7 line 12 (not the lowest of its
 * function); address 2 line 3 in file 2. */
static void unit_v4(struct buf *u)
{
	struct buf h = { 0 }, prog = { 0 };
	byte(&h, 1);                        /* min_inst_length */
	byte(&h, 1);                        /* max ops */
	byte(&h, 1);                        /* default_is_stmt */
	byte(&h, (uint8_t)-5);              /* line_base */
	byte(&h, 14);                       /* line_range */
	byte(&h, 13);                       /* opcode_base */
	put(&h, std_lengths, sizeof(std_lengths));
	str(&h, "src");
	byte(&h, 0);
	str(&h, "a.c");
	byte(&h, 1); byte(&h, 0); byte(&h, 0);
	str(&h, "/abs/b.c");
	byte(&h, 0); byte(&h, 0); byte(&h, 0);
	byte(&h, 0);
	static const uint8_t rows[] = {
		0x00, 0x05, 0x02, 0x05, 0x00, 0x00, 0x00,   /* set_address 5 */
		0x03, 0x09,                                 /* advance_line +9: 10 */
		0x01,                                       /* copy */
		0x02, 0x02, 0x03, 0x02, 0x01,               /* advance_pc 2, line +2, copy */
		0x00, 0x01, 0x01,                           /* end_sequence */
		0x00, 0x05, 0x02, 0x02, 0x00, 0x00, 0x00,   /* set_address 2 */
		0x04, 0x02,                                 /* set_file 2 */
		0x03, 0x02,                                 /* line 3 */
		0x01,
		0x00, 0x01, 0x01,
	};
	put(&prog, rows, sizeof(rows));
	uint32_t hlen = (uint32_t)h.n;
	uint32_t total = 2 + 4 + hlen + (uint32_t)prog.n;
	u->n = 0;
	put(u, &total, 4);
	uint16_t version = 4;
	put(u, &version, 2);
	put(u, &hlen, 4);
	put(u, h.b, h.n);
	put(u, prog.b, prog.n);
}

static struct engine_sources *lines_of(const struct buf *m)
{
	uint8_t *copy = malloc(m->n);
	assert_non_null(copy);
	memcpy(copy, m->b, m->n);
	struct wasm_info info;
	char err[256];
	assert_int_equal(wasm_read(copy, m->n, &info, err, sizeof(err)), 0);
	struct engine_sources *s = NULL;
	assert_int_equal(wasm_source_lines(copy, m->n, &info, &s), 0);
	wasm_info_free(&info);
	free(copy);
	return s;
}

static void check(const struct engine_sources *s, uint32_t fn, const char *file, uint32_t line)
{
	assert_true(fn < s->nfuncs);
	assert_true(s->file[fn] < s->nfiles);
	assert_string_equal(s->files[s->file[fn]], file);
	assert_int_equal(s->line[fn], line);
}

static void version_4_units(void **state)
{
	(void)state;
	struct buf m, u;
	module(&m);
	unit_v4(&u);
	custom(&m, ".debug_line", &u);
	struct engine_sources *s = lines_of(&m);
	assert_non_null(s);
	assert_int_equal(s->first, 0);
	assert_int_equal(s->nfuncs, 2);
	check(s, 0, "/abs/b.c", 3);
	check(s, 1, "src/a.c", 10);
	engine_sources_unref(s);
}

/* Version 5: directories and files with entry formats; the directory's
 * name in .debug_line_str, the file's inline; file 0 is the first. */
static void version_5_units(void **state)
{
	(void)state;
	struct buf m, u = { 0 }, h = { 0 }, strs = { 0 };
	module(&m);
	str(&strs, "/comp/dir");
	str(&strs, "lib");
	byte(&h, 1); byte(&h, 1); byte(&h, 1); byte(&h, (uint8_t)-5); byte(&h, 14); byte(&h, 13);
	put(&h, std_lengths, sizeof(std_lengths));
	byte(&h, 1);                        /* directory formats: */
	byte(&h, 1); byte(&h, 0x1f);        /*   path, line_strp */
	byte(&h, 2);                        /* two directories */
	uint32_t off0 = 0, off1 = 10;
	put(&h, &off0, 4);
	put(&h, &off1, 4);
	byte(&h, 3);                        /* file formats: */
	byte(&h, 1); byte(&h, 0x08);        /*   path, string */
	byte(&h, 2); byte(&h, 0x0b);        /*   directory index, data1 */
	byte(&h, 5); byte(&h, 0x1e);        /*   MD5, data16 */
	byte(&h, 1);                        /* one file */
	str(&h, "c.rs");
	byte(&h, 1);
	for (int i = 0; i < 16; i++)
		byte(&h, 0xaa);
	static const uint8_t rows[] = {
		0x00, 0x05, 0x02, 0x04, 0x00, 0x00, 0x00,   /* set_address 4 */
		0x04, 0x00,                                 /* file 0 */
		0x03, 0x29,                                 /* line 42 */
		0x01, 0x00, 0x01, 0x01,
	};
	uint32_t hlen = (uint32_t)h.n;
	uint32_t total = 2 + 2 + 4 + hlen + (uint32_t)sizeof(rows);
	put(&u, &total, 4);
	uint16_t version = 5;
	put(&u, &version, 2);
	byte(&u, 4);                        /* address size */
	byte(&u, 0);                        /* selector size */
	put(&u, &hlen, 4);
	put(&u, h.b, h.n);
	put(&u, rows, sizeof(rows));
	custom(&m, ".debug_line", &u);
	custom(&m, ".debug_line_str", &strs);
	struct engine_sources *s = lines_of(&m);
	assert_non_null(s);
	assert_int_equal(s->line[0], 0);    /* no row of function 0 */
	check(s, 1, "lib/c.rs", 42);
	engine_sources_unref(s);
}

static void no_line_table_no_sources(void **state)
{
	(void)state;
	struct buf m;
	module(&m);
	assert_null(lines_of(&m));
}

/* Every truncation and every single corrupted byte of the unit: an answer
 * or none, never a read outside the section (ASan) or a crash. */
static void hostile_tables_are_survived(void **state)
{
	(void)state;
	struct buf m, u, cut;
	unit_v4(&u);
	for (size_t n = 0; n < u.n; n++) {
		module(&m);
		cut = u;
		cut.n = n;
		custom(&m, ".debug_line", &cut);
		engine_sources_unref(lines_of(&m));
	}
	static const uint8_t values[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	for (size_t i = 0; i < u.n; i++)
		for (size_t v = 0; v < sizeof(values); v++) {
			module(&m);
			cut = u;
			cut.b[i] = values[v];
			custom(&m, ".debug_line", &cut);
			engine_sources_unref(lines_of(&m));
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(version_4_units),
		cmocka_unit_test(version_5_units),
		cmocka_unit_test(no_line_table_no_sources),
		cmocka_unit_test(hostile_tables_are_survived),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
