/*
 * test_abi.c — the ABI definition (src/common/abi.def) as the C side sees
 * it: the import table validation uses (src/common/abi.c) and the host
 * functions (src/host/abi.c) describe the same functions, every one is
 * exported under wasm2c's name, the table is well formed, and lookups find
 * exactly its entries. (Whether guest.h, sys.rs and docs/abi.md agree with
 * the definition is tests/e2e/test_abi.py's job.)
 */
#include "unit.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/abi.h"
#include "host/host_abi.h"

static size_t count_imports(void)
{
	size_t n = 0;
	while (host_imports[n].name)
		n++;
	return n;
}

/* Both arrays come from abi.def: same functions, same order. */
static void imports_and_functions_agree(void **state)
{
	(void)state;
	size_t n = count_imports();
	assert_true(n > 90);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(host_functions[i].fn);
		assert_string_equal(host_functions[i].module, host_imports[i].module);
		assert_string_equal(host_functions[i].name, host_imports[i].name);
	}
	assert_null(host_functions[n].fn);
}

/* Generated code links to Z_<module>Z_<name> through the executable's
 * dynamic symbols (src/engine/exports.list): each must resolve, to the
 * very function the anchor array holds. */
static void every_function_is_exported(void **state)
{
	(void)state;
	for (const struct host_function *f = host_functions; f->fn; f++) {
		char sym[128];
		snprintf(sym, sizeof(sym), "Z_%sZ_%s", f->module, f->name);
		void *p = dlsym(RTLD_DEFAULT, sym);
		if (p == NULL)
			fail_msg("%s is not exported (src/engine/exports.list)", sym);
		if (p != (void *)f->fn)
			fail_msg("%s resolves elsewhere than the host function", sym);
	}
}

static const struct host_namespace *namespace_of(const char *module)
{
	for (const struct host_namespace *ns = host_namespaces; ns->module; ns++)
		if (strcmp(ns->module, module) == 0)
			return ns;
	return NULL;
}

/* Each function belongs to a declared namespace with an error space; each
 * namespace has functions; signatures use only the four value letters;
 * no (module, name) appears twice, so a lookup finds each entry itself. */
static void table_is_well_formed(void **state)
{
	(void)state;
	for (const struct host_import *e = host_imports; e->name; e++) {
		const struct host_namespace *ns = namespace_of(e->module);
		if (ns == NULL)
			fail_msg("%s.%s: no ABI_NAMESPACE line for %s", e->module,
			         e->name, e->module);
		assert_true(ns->errors == ABI_ERRORS_WASI || ns->errors == ABI_ERRORS_WISP);
		assert_true(strspn(e->params, "iIfF") == strlen(e->params));
		assert_true(strlen(e->results) <= 1);
		assert_true(strspn(e->results, "iIfF") == strlen(e->results));
		if (host_import_find(e->module, e->name) != e)
			fail_msg("%s.%s is defined twice", e->module, e->name);
	}
	for (const struct host_namespace *ns = host_namespaces; ns->module; ns++) {
		bool used = false;
		for (const struct host_import *e = host_imports; e->name && !used; e++)
			used = strcmp(e->module, ns->module) == 0;
		if (!used)
			fail_msg("namespace %s has no functions", ns->module);
	}
}

/* Spot checks of what the macros make of abi.def lines: a void result, no
 * parameters, i64 parameters, and the namespaces' error spaces. */
static void entries_read_as_written(void **state)
{
	(void)state;
	const struct host_import *e = host_import_find("wisp_process", "spawn");
	assert_non_null(e);
	assert_string_equal(e->params, "iiiii");
	assert_string_equal(e->results, "i");
	e = host_import_find("wisp_process", "yield");
	assert_string_equal(e->params, "");
	assert_string_equal(e->results, "");
	e = host_import_find("wisp_message", "request");
	assert_string_equal(e->params, "IIiiIiii");
	e = host_import_find("wisp_net", "udp_recv_from");
	assert_string_equal(e->params, "iiiIiiiii");
	assert_int_equal(namespace_of("wisp_net")->errors, ABI_ERRORS_WASI);
	assert_int_equal(namespace_of("wasi_snapshot_preview1")->errors, ABI_ERRORS_WASI);
	assert_int_equal(namespace_of("wisp_message")->errors, ABI_ERRORS_WISP);
	assert_int_equal(namespace_of("wisp_caps")->errors, ABI_ERRORS_WISP);
}

static void unknown_imports_are_not_found(void **state)
{
	(void)state;
	assert_null(host_import_find("wisp_process", "spawn2"));
	assert_null(host_import_find("wisp_process", "spaw"));
	assert_null(host_import_find("wisp_net", "spawn"));       /* right name, wrong module */
	assert_null(host_import_find("wisp_processes", "spawn"));
	assert_null(host_import_find("", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(imports_and_functions_agree),
		cmocka_unit_test(every_function_is_exported),
		cmocka_unit_test(table_is_well_formed),
		cmocka_unit_test(entries_read_as_written),
		cmocka_unit_test(unknown_imports_are_not_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
