/*
 * wasm_code.c — what the instructions of a module use, checked before
 * wasm2c sees them (see wasm_reader.h: wasm_check_code).
 *
 * wasm2c 1.0.32 as Debian ships it aborts without a word on any v128 (a
 * SIMD instruction, or the type in a signature, a local or a global),
 * refuses tail calls with "wasm2c currently only supports a limited set of
 * features", knows nothing of exception handling's 2023 encoding
 * (try_table, exnref), and overflows its own stack (SIGSEGV) on blocks
 * nested some 50,000 deep. It does translate exception handling's legacy
 * encoding (try, catch, catch_all, throw, rethrow, delegate) with
 * --enable-exceptions, which wisp passes: those are walked, not refused.
 * wisp therefore walks every function body once, at compile time only (the
 * cached start-up path never comes here), decoding each instruction's
 * immediates so that it can name the first instruction of a feature wisp
 * does not run, and the function it is in, and bound block nesting.
 *
 * The walk trusts nothing: every read is bounds-checked against the body,
 * every loop step consumes at least one byte, so time is linear in the
 * module. An opcode it does not know ends the walk with a message naming
 * it (wasm2c would refuse it too). Types, indices and stack shapes are left
 * to wasm2c's validator, which runs next.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "wasm_reader.h"
#include "../common/util.h"
#include "../engine/engine.h"

struct cur {
	const uint8_t *p, *end;
	bool bad;                /* ran off the end or a LEB128 is too long */
};

static uint8_t byte(struct cur *c)
{
	if (c->p >= c->end) {
		c->bad = true;
		return 0;
	}
	return *c->p++;
}

static uint64_t leb(struct cur *c, unsigned maxbytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < maxbytes; i++) {
		uint8_t b = byte(c);
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return v;
	}
	c->bad = true;
	return 0;
}

static uint32_t u32(struct cur *c)
{
	return (uint32_t)leb(c, 5);
}

static void skip(struct cur *c, size_t n)
{
	if ((size_t)(c->end - c->p) < n) {
		c->bad = true;
		c->p = c->end;
	} else {
		c->p += n;
	}
}

/* What kind of feature an opcode belongs to, when wisp does not run it. */
enum refusal { OK, SIMD, NEW_EXCEPTIONS, TAIL_CALLS, FUNC_REFS, GC, THREADS, UNKNOWN };

static const char *const feature_text[] = {
	[SIMD] = "SIMD (v128) is not supported yet",
	[NEW_EXCEPTIONS] = "exception handling's 2023 encoding (try_table, exnref) "
	                   "is not supported",
	[TAIL_CALLS] = "tail calls are not supported",
	[FUNC_REFS] = "typed function references are not supported",
	[GC] = "garbage collection (GC) instructions are not supported",
	[THREADS] = "threads (atomic instructions) are not supported",
};

/* What to do about it, after the message (wasm2c 1.0.32 translates none of
 * these: it aborts on any v128 and refuses tail calls; see
 * docs/architecture.md, "Proposals"). */
static const char *const feature_hint[] = {
	[SIMD] = "; build without -msimd128 (clang) or +simd128 (Rust)",
	[NEW_EXCEPTIONS] = "; wisp runs the legacy encoding (try, catch, delegate), "
	                   "which clang's -fwasm-exceptions emits",
	[TAIL_CALLS] = "; build without -mtail-call (clang) or +tail-call (Rust)",
	[FUNC_REFS] = "",
	[GC] = "",
	[THREADS] = "; build without -pthread or +atomics",
};

/* The name of a refused one-byte opcode, for messages. */
static const char *op_name(uint8_t op)
{
	switch (op) {
	case 0x0a: return "throw_ref";
	case 0x12: return "return_call";
	case 0x13: return "return_call_indirect";
	case 0x14: return "call_ref";
	case 0x15: return "return_call_ref";
	case 0x1f: return "try_table";
	case 0xd3: return "ref.as_non_null";
	case 0xd4: return "br_on_null";
	case 0xd5: return "ref.eq";
	case 0xd6: return "br_on_non_null";
	case 0xfb: return "a GC instruction";
	case 0xfd: return "a SIMD instruction";
	case 0xfe: return "an atomic instruction";
	default: return NULL;
	}
}

struct walk {
	const struct wasm_info *info;
	const uint8_t *base;     /* the module's first byte, for offsets */
	uint32_t func;           /* index space index */
	uint32_t max_depth;
	char *err;
	size_t errlen;
};

/* "function 3 (name)" for messages, Rust names demangled; the name is
 * guest text. */
static void fn_label(const struct wasm_info *info, uint32_t func, char *out, size_t outlen)
{
	const char *name = wasm_func_name(info, func);
	char esc[160];
	if (name == NULL) {
		snprintf(out, outlen, "function %" PRIu32, func);
		return;
	}
	char plain[160];
	engine_display_name(name, plain, sizeof(plain));
	util_printable(esc, sizeof(esc), plain);
	snprintf(out, outlen, "function %" PRIu32 " (%s)", func, esc);
}

__attribute__((format(printf, 2, 3)))
static int refuse(struct walk *w, const char *fmt, ...)
{
	va_list ap;
	if (w->errlen) {
		va_start(ap, fmt);
		vsnprintf(w->err, w->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int refuse_op(struct walk *w, enum refusal why, const char *what, size_t at)
{
	char label[220];
	fn_label(w->info, w->func, label, sizeof(label));
	if (why == UNKNOWN)
		return refuse(w, "%s uses an unknown %s at byte %zu", label, what, at);
	return refuse(w, "%s: %s uses %s at byte %zu%s", feature_text[why], label, what, at,
	              feature_hint[why]);
}

/* Immediates of the 0xfc prefix (saturating truncation, bulk memory,
 * tables); false for a sub-opcode wisp does not know. */
static bool misc_immediates(struct cur *c, uint32_t sub)
{
	switch (sub) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
		return true;                       /* trunc_sat */
	case 8: u32(c); u32(c); return true;       /* memory.init data mem */
	case 9: u32(c); return true;               /* data.drop */
	case 10: u32(c); u32(c); return true;      /* memory.copy */
	case 11: u32(c); return true;              /* memory.fill */
	case 12: u32(c); u32(c); return true;      /* table.init elem table */
	case 13: u32(c); return true;              /* elem.drop */
	case 14: u32(c); u32(c); return true;      /* table.copy */
	case 15: case 16: case 17: u32(c); return true;   /* table.grow/size/fill */
	default: return false;
	}
}

static void memarg(struct cur *c)
{
	uint32_t align = u32(c);
	if (align & 0x40)           /* multi-memory: a memory index follows */
		u32(c);
	leb(c, 10);                 /* offset (wasm2c refuses a 64-bit one) */
}

/* Classify one opcode and consume its immediates. *depth tracks block
 * nesting. Returns OK, or what it belongs to. */
static enum refusal instruction(struct cur *c, uint8_t op, uint32_t *depth)
{
	switch (op) {
	case 0x00: case 0x01: case 0x0f: case 0x1a: case 0x1b: case 0xd1:
		return OK;
	case 0x02: case 0x03: case 0x04:           /* block loop if: a block type */
		leb(c, 5);                         /* 0x40, a value type, or s33 */
		(*depth)++;
		return OK;
	case 0x05:
		return OK;                         /* else */
	case 0x0b:
		if (*depth > 0)
			(*depth)--;
		return OK;
	case 0x0c: case 0x0d: case 0x10:
	case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26:
	case 0x3f: case 0x40: case 0xd2:
		u32(c);
		return OK;
	case 0x0e: {                               /* br_table */
		uint32_t n = u32(c);
		for (uint32_t i = 0; i <= n && !c->bad; i++)
			u32(c);
		return OK;
	}
	case 0x11:                                 /* call_indirect type table */
		u32(c);
		u32(c);
		return OK;
	case 0x1c: {                               /* select with types */
		uint32_t n = u32(c);
		for (uint32_t i = 0; i < n && !c->bad; i++)
			leb(c, 5);
		return OK;
	}
	case 0x41: leb(c, 5); return OK;           /* i32.const */
	case 0x42: leb(c, 10); return OK;          /* i64.const */
	case 0x43: skip(c, 4); return OK;
	case 0x44: skip(c, 8); return OK;
	case 0xd0: leb(c, 5); return OK;           /* ref.null heap type */
	case 0x06:                                 /* try: a block type */
		leb(c, 5);
		(*depth)++;
		return OK;
	case 0x07: case 0x08:                      /* catch, throw: a tag */
		u32(c);
		return OK;
	case 0x09:                                 /* rethrow: a label */
		u32(c);
		return OK;
	case 0x18:                                 /* delegate: ends its try */
		u32(c);
		if (*depth > 0)
			(*depth)--;
		return OK;
	case 0x19:                                 /* catch_all */
		return OK;
	case 0x0a: case 0x1f:
		return NEW_EXCEPTIONS;             /* throw_ref, try_table */
	case 0x12: case 0x13:
		return TAIL_CALLS;                 /* return_call(_indirect) */
	case 0x14: case 0x15: case 0xd3: case 0xd4: case 0xd5: case 0xd6:
		return FUNC_REFS;                  /* call_ref, br_on_null ... */
	case 0xfb:
		return GC;
	case 0xfd:
		return SIMD;
	case 0xfe:
		return THREADS;
	default:
		if (op >= 0x28 && op <= 0x3e) {    /* loads and stores */
			memarg(c);
			return OK;
		}
		if (op >= 0x45 && op <= 0xc4)      /* numeric, sign extension */
			return OK;
		return UNKNOWN;
	}
}

/* One body: local declarations, then instructions up to the final end. */
static int walk_body(struct walk *w, struct wasm_span body)
{
	struct cur c = { w->base + body.at, w->base + body.at + body.len, false };
	uint32_t groups = u32(&c);
	for (uint32_t g = 0; g < groups && !c.bad; g++) {
		u32(&c);
		size_t at = (size_t)(c.p - w->base);
		if (byte(&c) == 0x7b) {
			char label[220];
			fn_label(w->info, w->func, label, sizeof(label));
			return refuse(w, "%s: %s has a v128 local (declared at byte %zu)%s",
			              feature_text[SIMD], label, at, feature_hint[SIMD]);
		}
	}
	uint32_t depth = 0;
	while (!c.bad && c.p < c.end) {
		size_t at = (size_t)(c.p - w->base);
		uint8_t op = byte(&c);
		char what[48];
		if (op == 0xfc) {
			uint32_t sub = u32(&c);
			if (!c.bad && !misc_immediates(&c, sub)) {
				snprintf(what, sizeof(what), "instruction 0xfc %" PRIu32, sub);
				return refuse_op(w, UNKNOWN, what, at);
			}
			continue;
		}
		enum refusal why = instruction(&c, op, &depth);
		if (why != OK) {
			const char *name = op_name(op);
			if (op == 0xfd || op == 0xfb || op == 0xfe)
				snprintf(what, sizeof(what), "instruction 0x%02x %" PRIu32 " (%s)",
				         op, u32(&c), name);
			else if (name != NULL)
				snprintf(what, sizeof(what), "instruction 0x%02x (%s)", op, name);
			else
				snprintf(what, sizeof(what), "instruction 0x%02x", op);
			return refuse_op(w, why, what, at);
		}
		if (depth > w->max_depth) {
			char label[220];
			fn_label(w->info, w->func, label, sizeof(label));
			return refuse(w, "%s nests blocks more than %" PRIu32 " deep (at byte "
			              "%zu); wisp's limit is %" PRIu32, label, w->max_depth, at,
			              w->max_depth);
		}
	}
	/* A body cut short is wasm2c's to report (it names the offset). */
	return 0;
}

/* A function type with a v128 parameter or result, if any function uses
 * one: named by the first such function. */
static int check_types(struct walk *w)
{
	uint32_t nspace = w->info->nfunc_imports + w->info->nfuncs;
	for (uint32_t f = 0; f < nspace; f++) {
		const struct wasm_functype *t = wasm_func_type(w->info, f);
		if (t == NULL || (strchr(t->params, 'V') == NULL && strchr(t->results, 'V') == NULL))
			continue;
		char label[220];
		fn_label(w->info, f, label, sizeof(label));
		return refuse(w, "%s: %s takes or returns v128%s", feature_text[SIMD], label,
		              feature_hint[SIMD]);
	}
	return 0;
}

int wasm_check_code(const uint8_t *bytes, size_t len, const struct wasm_info *info,
                    uint32_t max_depth, char *err, size_t errlen)
{
	struct walk w = { info, bytes, 0, max_depth, err, errlen };
	(void)len;            /* every span was checked against it by wasm_read */
	if (errlen)
		err[0] = '\0';
	if (info->max_tag_payload > ENGINE_EXCEPTION_MAX)
		return refuse(&w, "an exception tag of the module carries %" PRIu32 " bytes of "
		              "values; wisp's limit is %d", info->max_tag_payload,
		              ENGINE_EXCEPTION_MAX);
	if (info->v128_global != 0)
		return refuse(&w, "%s: global %" PRIu32 " has type v128%s", feature_text[SIMD],
		              info->v128_global - 1, feature_hint[SIMD]);
	int rc = check_types(&w);
	for (uint32_t i = 0; i < info->nfuncs && rc == 0; i++) {
		w.func = info->nfunc_imports + i;
		rc = walk_body(&w, info->bodies[i]);
	}
	return rc;
}
