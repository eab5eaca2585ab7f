/*
 * split.c — tu.c cut into units the optimizing tier compiles in parallel.
 *
 * gcc -O2 takes seconds on the one translation unit of a Rust program
 * (4.2 s of CPU for the 32,000 lines of a 100 KB module) and uses one
 * core. Debian's wasm2c 1.0.32 has no --num-outputs, so wisp cuts its
 * output itself, along what wasm2c 1.0.32 writes (codegen.c checks the
 * anchors and reports unexpected output):
 *
 *   head    lines 1 .. head_end-1: the prelude, wasm2c's macros, inline
 *           helpers and types; every unit includes it (head.h), then the
 *           module's functions declared hidden instead of static, and its
 *           tables (func_types, element segments) and exception tags'
 *           ids declared extern;
 *   units   the function bodies, contiguous runs in index order of about
 *           equal length (unit<K>.c): wasm functions that call each other
 *           tend to be neighbours, and gcc inlines only within a unit;
 *   main    everything else, in place (main.c): the module's state
 *           (func_types, segments, init_*), the exports, instantiation,
 *           the end-of-code sentinel and wisp's epilogue. It is linked last,
 *           so the sentinel still follows every function.
 *
 * Every unit keeps tu.c's line numbers (#line N "tu.c"; main.c blanks what
 * it does not hold), so the DWARF line tables, gcc's stack-usage lines and
 * the epilogue's body lines (symbolize.c, stackcheck.c) mean what they mean
 * with one unit. The functions become hidden globals rather than statics:
 * the epilogue takes every one's address anyway, so gcc already kept each
 * out of line, and nothing outside the module can see them.
 *
 * Rejected: splitting wasm2c's input instead (a module per group of
 * functions would need the imports, tables and memories re-plumbed between
 * instances); -flto with parallel partitions (whole-program inlining back,
 * but gcc's LTO streaming costs more CPU than the split saves on 2 cores).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "split.h"
#include "../common/util.h"

#define HIDDEN "__attribute__((visibility(\"hidden\"))) "

uint32_t split_units_for(const struct split_layout *layout)
{
	uint64_t lines = 0;
	for (uint32_t i = 0; i < layout->nfuncs; i++)
		lines += layout->lines[2 * i + 1] - layout->lines[2 * i] + 1;
	uint64_t n = lines / SPLIT_LINES_PER_UNIT;
	/* an even count: units of equal length keep 2 or 4 compilers busy to
	 * the end (5 units on 2 cores left one core idle for a fifth) */
	n += n > 1 && n % 2 == 1;
	if (n > SPLIT_MAX_UNITS)
		n = SPLIT_MAX_UNITS;
	if (n > layout->nfuncs)
		n = layout->nfuncs;
	return n > 1 ? (uint32_t)n : 1;
}

/* tu.c as lines: line L (from 1) is text[at[L-1], at[L]) without its '\n'. */
struct lines {
	const char *text;
	size_t len;
	size_t *at;
	uint32_t n;
};

static int index_lines(struct lines *ls, const char *text, size_t len)
{
	uint32_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	ls->text = text;
	ls->len = len;
	ls->n = n + (len > 0 && text[len - 1] != '\n');
	if ((ls->at = malloc(((size_t)ls->n + 1) * sizeof(*ls->at))) == NULL)
		return -ENOMEM;
	uint32_t k = 0;
	ls->at[k++] = 0;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\n' && k <= ls->n)
			ls->at[k++] = i + 1;
	if (k <= ls->n)
		ls->at[k] = len + 1;
	return 0;
}

static const char *line_at(const struct lines *ls, uint32_t l, size_t *len)
{
	*len = ls->at[l] - ls->at[l - 1] - 1;
	return ls->text + ls->at[l - 1];
}

static bool starts(const char *p, size_t len, const char *s)
{
	size_t n = strlen(s);
	return len >= n && memcmp(p, s, n) == 0;
}

static bool ends(const char *p, size_t len, const char *s)
{
	size_t n = strlen(s);
	return len >= n && memcmp(p + len - n, s, n) == 0;
}

/* The kinds of line between the head and the first body that the split
 * rewrites (wasm2c 1.0.32's spelling). */
enum state_line { OTHER, FN_DECL, FUNC_TYPES, TABLE_DEF, DATA_DECL, TAG_DECL };

static enum state_line classify(const char *p, size_t len)
{
	if (starts(p, len, "static ") && ends(p, len, ");") && memmem(p, len, " w2c_", 5) &&
	    !memchr(p, '=', len) && !memchr(p, '{', len))
		return FN_DECL;
	if (starts(p, len, "static u32 func_types[") && ends(p, len, "];"))
		return FUNC_TYPES;
	/* an exception tag's id, "static u32 w2c_e<N>_<M>;" (set by init_tags) */
	if (starts(p, len, "static u32 w2c_e") && ends(p, len, ";") && !memchr(p, '=', len) &&
	    !memchr(p, '(', len) && !memchr(p, '[', len))
		return TAG_DECL;
	if (starts(p, len, "static const ") && ends(p, len, "[] = {"))
		return TABLE_DEF;
	if (starts(p, len, "extern const u8 wisp_data[]") ||
	    starts(p, len, "#define data_segment_data_w2c_d"))
		return DATA_DECL;
	return OTHER;
}

/* A line without its leading "static ". */
static void put_unstatic(FILE *f, const char *p, size_t len)
{
	fwrite(p + 7, 1, len - 7, f);
	fputc('\n', f);
}

/* head.h: the head as it is, then what the units need of the state. */
static void write_head(FILE *f, const struct lines *ls, uint32_t head_end, uint32_t first_body)
{
	fputs("#line 1 \"tu.c\"\n", f);
	fwrite(ls->text, 1, ls->at[head_end - 1], f);
	fputs("/* --- split.c: the module's functions and tables, for every unit --- */\n", f);
	for (uint32_t l = head_end; l < first_body; l++) {
		size_t len;
		const char *p = line_at(ls, l, &len);
		switch (classify(p, len)) {
		case FN_DECL:
			fputs(HIDDEN, f);
			put_unstatic(f, p, len);
			break;
		case FUNC_TYPES:
		case TAG_DECL:
			fputs("extern ", f);
			put_unstatic(f, p, len);
			break;
		case TABLE_DEF:
			/* "static const T name[] = {" -> "extern const T name[];" */
			fputs("extern ", f);
			fwrite(p + 7, 1, len - 7 - 4, f);
			fputs(";\n", f);
			break;
		case DATA_DECL:
			fwrite(p, 1, len, f);
			fputc('\n', f);
			break;
		case OTHER:
			break;
		}
	}
}

/* main.c: every line that is not a body or a declaration in head.h, in
 * place (blank lines stand for the others). */
static void write_main(FILE *f, const struct lines *ls, const struct split_layout *lay)
{
	uint32_t first_body = lay->lines[0], fn = 0;
	fprintf(f, "#include \"head.h\"\n#line %u \"tu.c\"\n", lay->head_end);
	for (uint32_t l = lay->head_end; l <= ls->n; l++) {
		size_t len;
		const char *p = line_at(ls, l, &len);
		while (fn < lay->nfuncs && l > lay->lines[2 * fn + 1])
			fn++;
		if (fn < lay->nfuncs && l >= lay->lines[2 * fn]) {
			fputc('\n', f);          /* a body: in its unit */
			continue;
		}
		enum state_line k = l < first_body ? classify(p, len) : OTHER;
		if (k == FN_DECL)
			fputc('\n', f);
		else if (k == FUNC_TYPES || k == TABLE_DEF || k == TAG_DECL)
			put_unstatic(f, p, len);
		else {
			fwrite(p, 1, len, f);
			fputc('\n', f);
		}
	}
}

/* unit<K>.c: functions [from, to), each at its own lines. */
static void write_unit(FILE *f, const struct lines *ls, const struct split_layout *lay,
                       uint32_t from, uint32_t to)
{
	fputs("#include \"head.h\"\n", f);
	for (uint32_t i = from; i < to; i++) {
		uint32_t first = lay->lines[2 * i], last = lay->lines[2 * i + 1];
		size_t len;
		const char *p = line_at(ls, first, &len);
		fprintf(f, "#line %u \"tu.c\"\n", first);
		put_unstatic(f, p, len);
		size_t end = ls->at[last] < ls->len ? ls->at[last] : ls->len;
		fwrite(ls->text + ls->at[first], 1, end - ls->at[first], f);
		if (end == ls->len)
			fputc('\n', f);
	}
}

static int write_file(const char *workdir, const char *name, char *err, size_t errlen,
                      void (*body)(FILE *, const void *), const void *arg)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", workdir, name);
	FILE *f = fopen(path, "we");
	if (f == NULL) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -errno;
	}
	body(f, arg);
	bool bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		int e = errno ? errno : EIO;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

struct job {
	const struct lines *ls;
	const struct split_layout *lay;
	uint32_t from, to;
};

static void head_body(FILE *f, const void *arg)
{
	const struct job *j = arg;
	write_head(f, j->ls, j->lay->head_end, j->lay->lines[0]);
}

static void main_body(FILE *f, const void *arg)
{
	const struct job *j = arg;
	write_main(f, j->ls, j->lay);
}

static void unit_body(FILE *f, const void *arg)
{
	const struct job *j = arg;
	write_unit(f, j->ls, j->lay, j->from, j->to);
}

/* Is the layout one this file can cut: bodies in order, after the head? */
static bool layout_ok(const struct split_layout *lay, uint32_t nlines)
{
	if (lay->nfuncs == 0 || lay->head_end < 2 || lay->lines[0] <= lay->head_end)
		return false;
	for (uint32_t i = 0; i < lay->nfuncs; i++) {
		uint32_t first = lay->lines[2 * i], last = lay->lines[2 * i + 1];
		if (first > last || last > nlines || (i > 0 && first <= lay->lines[2 * i - 1]))
			return false;
	}
	return true;
}

int split_write(const char *tu_c, const char *workdir, const struct split_layout *lay,
                uint32_t nunits, char *err, size_t errlen)
{
	uint8_t *text = NULL;
	size_t len;
	int rc = util_read_file(tu_c, &text, &len);
	if (rc != 0) {
		snprintf(err, errlen, "cannot read %s: %s", tu_c, strerror(-rc));
		return rc;
	}
	struct lines ls = { 0 };
	if ((rc = index_lines(&ls, (const char *)text, len)) != 0) {
		snprintf(err, errlen, "out of memory");
		free(text);
		return rc;
	}
	if (!layout_ok(lay, ls.n) || nunits < 2 || nunits > lay->nfuncs) {
		snprintf(err, errlen, "unexpected wasm2c output: cannot split its functions "
		         "into %u units (wisp expects wabt 1.0.32's wasm2c)", nunits);
		rc = -EPROTO;
		goto out;
	}
	struct job j = { &ls, lay, 0, 0 };
	rc = write_file(workdir, "head.h", err, errlen, head_body, &j);
	if (rc == 0)
		rc = write_file(workdir, "main.c", err, errlen, main_body, &j);
	/* Cut where the running length passes each k/nunits of the whole,
	 * leaving at least a function for every unit still to come. */
	uint64_t total = 0, acc = 0;
	for (uint32_t i = 0; i < lay->nfuncs; i++)
		total += lay->lines[2 * i + 1] - lay->lines[2 * i] + 1;
	uint32_t k = 0;
	for (uint32_t i = 0; i < lay->nfuncs && rc == 0; i++) {
		acc += lay->lines[2 * i + 1] - lay->lines[2 * i] + 1;
		uint32_t left = lay->nfuncs - (i + 1), units_left = nunits - (k + 1);
		bool last = i + 1 == lay->nfuncs;
		if (last || (units_left > 0 &&
		             (acc * nunits >= total * (k + 1) || left <= units_left))) {
			char name[32];
			snprintf(name, sizeof(name), "unit%u.c", k);
			j.to = i + 1;
			rc = write_file(workdir, name, err, errlen, unit_body, &j);
			j.from = i + 1;
			k++;
		}
	}
	if (rc == 0 && k != nunits) {
		snprintf(err, errlen, "internal error: %u of %u units written", k, nunits);
		rc = -EPROTO;
	}
out:
	free(ls.at);
	free(text);
	return rc;
}
