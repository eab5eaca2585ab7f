/*
 * abi.h — the guest ABI as data: the import table module validation checks
 * imports against, built from the one definition in src/common/abi.def.
 *
 * It lives in common, the bottom layer, because both the compiler (which
 * refuses a module whose imports wisp cannot satisfy, before generating
 * code) and the host (whose functions are declared from the same lines,
 * src/host/host_abi.h) need it, and compile may not include host headers.
 *
 * Signature strings use one letter per wasm value: i = i32, I = i64,
 * f = f32, F = f64; "" for none (the letters wasm_reader.c uses for a
 * module's function types, so a type compares with strcmp).
 *
 * The macros below turn an ABI_FN line into those strings and into C
 * types; they are the only preprocessor machinery of the ABI, kept here
 * so that abi.def stays a plain list.
 */
#ifndef WISP_COMMON_ABI_H
#define WISP_COMMON_ABI_H

#include <stddef.h>
#include <stdint.h>

/* What a namespace's status-returning functions return. */
enum abi_errors {
	ABI_ERRORS_WASI = 1,    /* a WASI errno: 0 success, 73 ETIMEDOUT, ... */
	ABI_ERRORS_WISP = 2,    /* WISP_OK or a WISP_E* code (wisp/guest.h) */
};

/* One function the host provides to guests. */
struct host_import {
	const char *module;
	const char *name;
	const char *params;     /* signature letters, "" for none */
	const char *results;
};

/* One import namespace. */
struct host_namespace {
	const char *module;
	enum abi_errors errors;
};

/* Look up an import; NULL if wisp does not provide it. */
const struct host_import *host_import_find(const char *module, const char *name);

/* Every function (terminated by an entry with name == NULL), in the order
 * of abi.def, and every namespace (likewise terminated by module == NULL). */
extern const struct host_import host_imports[];
extern const struct host_namespace host_namespaces[];

/* ---- turning abi.def's types into strings and C types ------------------ */

/* ABI_MAP(f, a, b, c) is f(a) f(b) f(c), for 1 to 12 arguments. */
#define ABI_CAT(a, b) ABI_CAT_(a, b)
#define ABI_CAT_(a, b) a##b
#define ABI_NARGS(...) \
	ABI_NARGS_(__VA_ARGS__, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define ABI_NARGS_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, n, ...) n
#define ABI_MAP(f, ...) ABI_CAT(ABI_MAP_, ABI_NARGS(__VA_ARGS__))(f, __VA_ARGS__)
#define ABI_MAP_1(f, a) f(a)
#define ABI_MAP_2(f, a, ...) f(a) ABI_MAP_1(f, __VA_ARGS__)
#define ABI_MAP_3(f, a, ...) f(a) ABI_MAP_2(f, __VA_ARGS__)
#define ABI_MAP_4(f, a, ...) f(a) ABI_MAP_3(f, __VA_ARGS__)
#define ABI_MAP_5(f, a, ...) f(a) ABI_MAP_4(f, __VA_ARGS__)
#define ABI_MAP_6(f, a, ...) f(a) ABI_MAP_5(f, __VA_ARGS__)
#define ABI_MAP_7(f, a, ...) f(a) ABI_MAP_6(f, __VA_ARGS__)
#define ABI_MAP_8(f, a, ...) f(a) ABI_MAP_7(f, __VA_ARGS__)
#define ABI_MAP_9(f, a, ...) f(a) ABI_MAP_8(f, __VA_ARGS__)
#define ABI_MAP_10(f, a, ...) f(a) ABI_MAP_9(f, __VA_ARGS__)
#define ABI_MAP_11(f, a, ...) f(a) ABI_MAP_10(f, __VA_ARGS__)
#define ABI_MAP_12(f, a, ...) f(a) ABI_MAP_11(f, __VA_ARGS__)
#define ABI_UNPAREN(...) __VA_ARGS__

/* A wasm type's signature letter (a string literal; "" for void). */
#define ABI_LETTER(t) ABI_LETTER_##t
#define ABI_LETTER_i32 "i"
#define ABI_LETTER_i64 "I"
#define ABI_LETTER_f32 "f"
#define ABI_LETTER_f64 "F"
#define ABI_LETTER_void ""
/* The signature string of a parenthesised type list: "iiI". */
#define ABI_SIG(params) ABI_MAP(ABI_LETTER, ABI_UNPAREN params)

/* A wasm type's C type as wasm2c declares imports. */
#define ABI_CTYPE(t) ABI_CTYPE_##t
#define ABI_CTYPE_i32 uint32_t
#define ABI_CTYPE_i64 uint64_t
#define ABI_CTYPE_f32 float
#define ABI_CTYPE_f64 double
#define ABI_CTYPE_void void
/* ", T" for each parameter (nothing for void): follows the instance
 * pointer in a host function's parameter list. */
#define ABI_CPARAM(t) ABI_CPARAM_##t
#define ABI_CPARAM_i32 , uint32_t
#define ABI_CPARAM_i64 , uint64_t
#define ABI_CPARAM_f32 , float
#define ABI_CPARAM_f64 , double
#define ABI_CPARAM_void
#define ABI_CPARAMS(params) ABI_MAP(ABI_CPARAM, ABI_UNPAREN params)

/* Named parameters and their names, for a forwarding wrapper (an ABI_SAME
 * line): ABI_CNAMED((i32, i64)) is ", uint32_t a2, uint64_t a1" and
 * ABI_CNAMES((i32, i64)) is ", a2, a1" (numbered from the end, the same
 * way in both). ABI_RETURN(result) is `return` unless result is void. */
#define ABI_MAPN(f, ...) ABI_CAT(ABI_MAPN_, ABI_NARGS(__VA_ARGS__))(f, __VA_ARGS__)
#define ABI_MAPN_1(f, a) f(a, 1)
#define ABI_MAPN_2(f, a, ...) f(a, 2) ABI_MAPN_1(f, __VA_ARGS__)
#define ABI_MAPN_3(f, a, ...) f(a, 3) ABI_MAPN_2(f, __VA_ARGS__)
#define ABI_MAPN_4(f, a, ...) f(a, 4) ABI_MAPN_3(f, __VA_ARGS__)
#define ABI_MAPN_5(f, a, ...) f(a, 5) ABI_MAPN_4(f, __VA_ARGS__)
#define ABI_MAPN_6(f, a, ...) f(a, 6) ABI_MAPN_5(f, __VA_ARGS__)
#define ABI_MAPN_7(f, a, ...) f(a, 7) ABI_MAPN_6(f, __VA_ARGS__)
#define ABI_MAPN_8(f, a, ...) f(a, 8) ABI_MAPN_7(f, __VA_ARGS__)
#define ABI_MAPN_9(f, a, ...) f(a, 9) ABI_MAPN_8(f, __VA_ARGS__)
#define ABI_MAPN_10(f, a, ...) f(a, 10) ABI_MAPN_9(f, __VA_ARGS__)
#define ABI_MAPN_11(f, a, ...) f(a, 11) ABI_MAPN_10(f, __VA_ARGS__)
#define ABI_MAPN_12(f, a, ...) f(a, 12) ABI_MAPN_11(f, __VA_ARGS__)
#define ABI_CNAMED1(t, n) ABI_CNAMED_##t(a##n)
#define ABI_CNAMED_i32(a) , uint32_t a
#define ABI_CNAMED_i64(a) , uint64_t a
#define ABI_CNAMED_f32(a) , float a
#define ABI_CNAMED_f64(a) , double a
#define ABI_CNAMED_void(a)
#define ABI_CNAMED(params) ABI_MAPN(ABI_CNAMED1, ABI_UNPAREN params)
#define ABI_CNAME1(t, n) ABI_CNAME_##t(a##n)
#define ABI_CNAME_i32(a) , a
#define ABI_CNAME_i64(a) , a
#define ABI_CNAME_f32(a) , a
#define ABI_CNAME_f64(a) , a
#define ABI_CNAME_void(a)
#define ABI_CNAMES(params) ABI_MAPN(ABI_CNAME1, ABI_UNPAREN params)
#define ABI_RETURN(result) ABI_RETURN_##result
#define ABI_RETURN_i32 return
#define ABI_RETURN_i64 return
#define ABI_RETURN_f32 return
#define ABI_RETURN_f64 return
#define ABI_RETURN_void

#endif
