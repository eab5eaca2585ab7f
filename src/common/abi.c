/*
 * abi.c — the import table, built from src/common/abi.def, and its lookup.
 *
 * Module validation (wasm_check_wisp) refuses any function import not in
 * this table, or with another signature, before code is generated: the
 * generated code links to host functions by name, so a mismatched
 * signature would be undefined behaviour, not an error.
 *
 * The lookup is a linear scan of ~100 entries, once per import of a module
 * being loaded: not worth a hash table.
 */
#include "common/abi.h"

#include <string.h>

const struct host_import host_imports[] = {
#define ABI_FN(module, name, params, result) \
	{ #module, #name, "" ABI_SIG(params), "" ABI_LETTER(result) },
#include "common/abi.def"
	{ NULL, NULL, NULL, NULL },
};

const struct host_namespace host_namespaces[] = {
#define ABI_NAMESPACE(module, errors) { #module, ABI_ERRORS_##errors },
#include "common/abi.def"
	{ NULL, 0 },
};

const struct host_import *host_import_find(const char *module,
                                           const char *name)
{
	for (const struct host_import *e = host_imports; e->name; e++)
		if (strcmp(e->name, name) == 0 && strcmp(e->module, module) == 0)
			return e;
	return NULL;
}
