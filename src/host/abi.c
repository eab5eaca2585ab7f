/*
 * abi.c — every host function, by address: the anchor array that pulls each
 * one out of libwisp.a.
 *
 * Generated code finds host functions only when a module is dlopen'ed,
 * which the static linker cannot see; nothing else in the program may call
 * them. So this array takes the address of every function of
 * src/common/abi.def: a function declared there but defined nowhere is an
 * undefined reference when the wisp binary links, and a program that
 * references host_functions gets all of them. The names travel with the
 * addresses so tests can check each one is exported under its wasm2c name.
 */
#include "host_abi.h"

#include <stddef.h>

const struct host_function host_functions[] = {
#define ABI_FN(module, name, params, result) \
	{ #module, #name, (void (*)(void))HOST_FN(module, name) },
#include "common/abi.def"
	{ NULL, NULL, NULL },
};
