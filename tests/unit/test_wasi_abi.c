/*
 * test_wasi_abi.c — the ABI definition's WASI part (src/common/abi.def)
 * against an independent restatement of the witx core signatures: all 46
 * wasi_snapshot_preview1 functions and the 45 of wasi_unstable (preview 0:
 * the same signatures, without sock_accept), and every one of them exported
 * from the binary under wasm2c's name. (test_abi.c checks the definition as a whole;
 * scripts/check-abi the guest-facing copies of it.)
 */
#include "unit.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/abi.h"
#include "engine/engine.h"
#include "host/host_abi.h"

__attribute__((weak)) _Noreturn void engine_exit(engine_instance *in, int code)
{
	(void)in;
	exit(code);
}

/* Independent restatement of the preview 1 signatures (pointers and sizes
 * are i32; filesize, timestamp, rights, device, dircookie are i64). */
static const struct { const char *name, *params, *results; } want[] = {
	{ "args_get", "ii", "i" }, { "args_sizes_get", "ii", "i" },
	{ "environ_get", "ii", "i" }, { "environ_sizes_get", "ii", "i" },
	{ "clock_res_get", "ii", "i" }, { "clock_time_get", "iIi", "i" },
	{ "fd_advise", "iIIi", "i" }, { "fd_allocate", "iII", "i" },
	{ "fd_close", "i", "i" }, { "fd_datasync", "i", "i" },
	{ "fd_fdstat_get", "ii", "i" }, { "fd_fdstat_set_flags", "ii", "i" },
	{ "fd_fdstat_set_rights", "iII", "i" }, { "fd_filestat_get", "ii", "i" },
	{ "fd_filestat_set_size", "iI", "i" },
	{ "fd_filestat_set_times", "iIIi", "i" }, { "fd_pread", "iiiIi", "i" },
	{ "fd_prestat_get", "ii", "i" }, { "fd_prestat_dir_name", "iii", "i" },
	{ "fd_pwrite", "iiiIi", "i" }, { "fd_read", "iiii", "i" },
	{ "fd_readdir", "iiiIi", "i" }, { "fd_renumber", "ii", "i" },
	{ "fd_seek", "iIii", "i" }, { "fd_sync", "i", "i" },
	{ "fd_tell", "ii", "i" }, { "fd_write", "iiii", "i" },
	{ "path_create_directory", "iii", "i" },
	{ "path_filestat_get", "iiiii", "i" },
	{ "path_filestat_set_times", "iiiiIIi", "i" },
	{ "path_link", "iiiiiii", "i" }, { "path_open", "iiiiiIIii", "i" },
	{ "path_readlink", "iiiiii", "i" },
	{ "path_remove_directory", "iii", "i" },
	{ "path_rename", "iiiiii", "i" }, { "path_symlink", "iiiii", "i" },
	{ "path_unlink_file", "iii", "i" }, { "poll_oneoff", "iiii", "i" },
	{ "proc_exit", "i", "" }, { "proc_raise", "i", "i" },
	{ "sched_yield", "", "i" }, { "random_get", "ii", "i" },
	{ "sock_accept", "iii", "i" }, { "sock_recv", "iiiiii", "i" },
	{ "sock_send", "iiiii", "i" }, { "sock_shutdown", "ii", "i" },
};
#define NWANT (sizeof(want) / sizeof(want[0]))

static void table_matches_spec(void **state)
{
	(void)state;
	assert_int_equal(NWANT, 46);
	for (size_t i = 0; i < NWANT; i++) {
		const struct host_import *h =
			host_import_find("wasi_snapshot_preview1", want[i].name);
		if (h == NULL)
			fail_msg("missing %s", want[i].name);
		assert_string_equal(h->module, "wasi_snapshot_preview1");
		assert_string_equal(h->name, want[i].name);
		assert_string_equal(h->params, want[i].params);
		assert_string_equal(h->results, want[i].results);
	}
	size_t n = 0;
	for (const struct host_import *h = host_imports; h->name; h++)
		n += strcmp(h->module, "wasi_snapshot_preview1") == 0;
	assert_int_equal(n, NWANT);
}

/* Preview 0's witx (legacy/preview0/witx/wasi_unstable.witx) has every
 * preview 1 function with the same core signature except sock_accept,
 * which preview 1 added. */
static void preview0_matches_spec(void **state)
{
	(void)state;
	size_t n = 0;
	for (size_t i = 0; i < NWANT; i++) {
		const struct host_import *h =
			host_import_find("wasi_unstable", want[i].name);
		if (strcmp(want[i].name, "sock_accept") == 0) {
			assert_null(h);
			continue;
		}
		if (h == NULL)
			fail_msg("missing wasi_unstable.%s", want[i].name);
		assert_string_equal(h->params, want[i].params);
		assert_string_equal(h->results, want[i].results);
		char sym[128];
		snprintf(sym, sizeof(sym), "Z_wasi_unstableZ_%s", want[i].name);
		if (dlsym(RTLD_DEFAULT, sym) == NULL)
			fail_msg("%s not exported", sym);
		n++;
	}
	assert_int_equal(n, 45);
	size_t all = 0;
	for (const struct host_import *h = host_imports; h->name; h++)
		all += strcmp(h->module, "wasi_unstable") == 0;
	assert_int_equal(all, n);
}

static void unknown_imports(void **state)
{
	(void)state;
	assert_null(host_import_find("wasi_snapshot_preview1", "fd_frobnicate"));
	assert_null(host_import_find("wasi_unstable", "fd_frobnicate"));
	assert_null(host_import_find("wasi", "fd_write"));
	assert_null(host_import_find("env", "fd_write"));
	assert_null(host_import_find("wasi_snapshot_preview1", ""));
	assert_null(host_import_find("wasi_snapshot_preview1", "fd_write2"));
}

static void symbols_exported(void **state)
{
	(void)state;
	/* The binary is linked with the engine's dynamic list, so generated
	 * code can find each function under wasm2c's mangled name. Referencing
	 * host_functions links them all in from libwisp.a. */
	assert_non_null(host_functions[0].fn);
	for (size_t i = 0; i < NWANT; i++) {
		char sym[128];
		snprintf(sym, sizeof(sym), "Z_wasi_snapshot_preview1Z_%s",
		         want[i].name);
		if (dlsym(RTLD_DEFAULT, sym) == NULL)
			fail_msg("%s not exported", sym);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_matches_spec),
		cmocka_unit_test(preview0_matches_spec),
		cmocka_unit_test(unknown_imports),
		cmocka_unit_test(symbols_exported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
