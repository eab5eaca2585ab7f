/*
 * demangle.c — function names as people read them: Rust's two symbol
 * manglings undone, for trap messages and crash reports' backtraces.
 *
 * Names come from the guest's name section: any bytes. Both readers stop
 * at the name's NUL and write at most cap bytes, and give up (the caller
 * shows the raw name, escaped) on anything outside the forms they know.
 *
 * - Legacy (_ZN...E): what crates compiled with rustc's default mangling
 *   use; read whole.
 * - v0 (_R...): what Rust's own standard library uses when built with
 *   -C symbol-mangling-version=v0 (the wasm32-wasip1 sysroot here is).
 *   Only paths are read — crate roots, nested names, closures and shims,
 *   backreferences — which is what std's frames of a panic are; a path
 *   with generic arguments is shown up to them, and impl paths (M, X, Y),
 *   whose types would need the whole type grammar, are given up on.
 *   Rejected: the full grammar (types, consts, punycode) in C for names
 *   that are only ever shown.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"

/* Rust's legacy mangling: _ZN, then length-prefixed path segments, the
 * last one h<16 hex digits> (a hash), then E (and maybe a suffix LLVM
 * added, ".llvm.<digits>"); "$LT$"-style escapes and ".." for "::" inside
 * segments. Writes
 * "crate::module::fn" to out (truncated) and returns true; false if name
 * is not of that form (C++'s _ZN names lack the hash). */
static bool demangle_rust(const char *name, char *out, size_t cap)
{
	static const struct { const char *esc, *ch; } escapes[] = {
		{ "$LT$", "<" }, { "$GT$", ">" }, { "$RF$", "&" }, { "$BP$", "*" },
		{ "$C$", "," }, { "$SP$", "@" }, { "$u20$", " " }, { "$u27$", "'" },
		{ "$u5b$", "[" }, { "$u5d$", "]" }, { "$u7b$", "{" }, { "$u7d$", "}" },
		{ "$u7e$", "~" }, { "$u3b$", ";" }, { "$u2b$", "+" }, { "$u22$", "\"" },
	};
	if (strncmp(name, "_ZN", 3) != 0)
		return false;
	const char *p = name + 3;
	size_t n = 0;
	bool hashed = false;
	while (*p >= '0' && *p <= '9') {
		char *end;
		unsigned long len = strtoul(p, &end, 10);
		if (len == 0 || strnlen(end, len) < len)
			return false;
		if (len == 17 && end[0] == 'h' && strspn(end + 1, "0123456789abcdef") >= 16 &&
		    end[len] == 'E' && (end[len + 1] == '\0' || end[len + 1] == '.')) {
			hashed = true;
			break;
		}
		if (n > 0 && n + 2 < cap) {
			memcpy(out + n, "::", 2);
			n += 2;
		}
		for (const char *q = end; q < end + len && n + 1 < cap; ) {
			if (q == end && q[0] == '_' && q[1] == '$') { q++; continue; }
			if (q + 1 < end + len && q[0] == '.' && q[1] == '.') {
				if (n + 2 < cap) { memcpy(out + n, "::", 2); n += 2; }
				q += 2;
				continue;
			}
			const char *rep = NULL;
			size_t skip = 1;
			for (size_t k = 0; *q == '$' && k < sizeof(escapes) / sizeof(escapes[0]); k++)
				if (strncmp(q, escapes[k].esc, strlen(escapes[k].esc)) == 0) {
					rep = escapes[k].ch;
					skip = strlen(escapes[k].esc);
				}
			out[n++] = rep ? rep[0] : *q;
			q += skip;
		}
		p = end + len;
	}
	if (!hashed || n == 0)
		return false;
	out[n] = '\0';
	return true;
}


/* ---- v0 ---- */

struct v0 {
	const char *s;           /* the symbol, after "_R" */
	size_t len;
	size_t pos;
	char *out;
	size_t n, cap;
	int depth;               /* backreferences followed (bounded) */
	bool bad;
};

static void v0_put(struct v0 *d, const char *p, size_t n)
{
	for (size_t i = 0; i < n && d->n + 1 < d->cap; i++)
		d->out[d->n++] = p[i];
}

static bool v0_base62(struct v0 *d, uint64_t *v)
{
	if (d->pos < d->len && d->s[d->pos] == '_') {
		d->pos++;
		*v = 0;
		return true;
	}
	uint64_t x = 0;
	while (d->pos < d->len && d->s[d->pos] != '_') {
		char c = d->s[d->pos++];
		int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10
		            : c >= 'A' && c <= 'Z' ? c - 'A' + 36 : -1;
		if (digit < 0 || x > (UINT64_MAX - 63) / 62)
			return false;
		x = x * 62 + (uint64_t)digit;
	}
	if (d->pos >= d->len)
		return false;
	d->pos++;
	*v = x + 1;
	return true;
}

/* [s<base62>] ["u"] <decimal> ["_"] <bytes>: the bytes in *p, *n; the
 * disambiguator (0 without one) in *dis. */
static bool v0_ident(struct v0 *d, const char **p, size_t *n, uint64_t *dis)
{
	*dis = 0;
	if (d->pos < d->len && d->s[d->pos] == 's') {
		d->pos++;
		if (!v0_base62(d, dis))
			return false;
		(*dis)++;
	}
	if (d->pos < d->len && d->s[d->pos] == 'u')
		return false;                    /* punycode: not read */
	size_t len = 0;
	if (d->pos >= d->len || d->s[d->pos] < '0' || d->s[d->pos] > '9')
		return false;
	while (d->pos < d->len && d->s[d->pos] >= '0' && d->s[d->pos] <= '9') {
		len = len * 10 + (size_t)(d->s[d->pos++] - '0');
		if (len > d->len)
			return false;
	}
	if (d->pos < d->len && d->s[d->pos] == '_')
		d->pos++;
	if (len > d->len - d->pos)
		return false;
	*p = d->s + d->pos;
	*n = len;
	d->pos += len;
	return true;
}

static bool v0_path(struct v0 *d);

static bool v0_backref(struct v0 *d)
{
	uint64_t at;
	if (!v0_base62(d, &at) || at >= d->pos || ++d->depth > 64)
		return false;
	size_t back = d->pos;
	d->pos = (size_t)at;
	bool ok = v0_path(d);
	d->pos = back;
	return ok;
}

static bool v0_path(struct v0 *d)
{
	if (d->pos >= d->len)
		return false;
	char tag = d->s[d->pos++];
	const char *p;
	size_t n;
	uint64_t dis;
	switch (tag) {
	case 'C':
		if (!v0_ident(d, &p, &n, &dis))
			return false;
		v0_put(d, p, n);
		return true;
	case 'N': {
		if (d->pos >= d->len)
			return false;
		char ns = d->s[d->pos++];
		if (!v0_path(d) || !v0_ident(d, &p, &n, &dis))
			return false;
		v0_put(d, "::", 2);
		if (ns >= 'a' && ns <= 'z') {
			v0_put(d, p, n);
			return true;
		}
		/* Special namespaces: {closure#N}, {shim:name#N}. */
		char buf[64];
		int k = ns == 'C'
		        ? snprintf(buf, sizeof(buf), "{closure#%llu}", (unsigned long long)dis)
		        : snprintf(buf, sizeof(buf), "{shim:%.*s#%llu}", (int)(n > 32 ? 32 : n), p,
		                   (unsigned long long)dis);
		v0_put(d, buf, (size_t)(k < (int)sizeof(buf) ? k : (int)sizeof(buf) - 1));
		return true;
	}
	case 'I':
		/* The path; its generic arguments are not read (types). */
		return v0_path(d) && (d->pos = d->len, true);
	case 'B':
		return v0_backref(d);
	default:
		return false;                    /* impl paths (M, X, Y) */
	}
}

/* Rust's v0 mangling ("_R"): see the top. */
static bool demangle_v0(const char *name, char *out, size_t cap)
{
	if (strncmp(name, "_R", 2) != 0 || cap == 0)
		return false;
	struct v0 d = { .s = name + 2, .len = strlen(name + 2), .out = out, .cap = cap };
	/* (a version number: none is version 0, the only one there is) */
	if (d.len > 0 && d.s[0] >= '0' && d.s[0] <= '9')
		return false;
	if (!v0_path(&d) || d.n == 0)
		return false;
	out[d.n] = '\0';
	return true;
}

void engine_display_name(const char *raw, char *out, size_t cap)
{
	if (!demangle_rust(raw, out, cap) && !demangle_v0(raw, out, cap))
		snprintf(out, cap, "%s", raw);
}
