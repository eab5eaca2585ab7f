/*
 * abi.c — the host ABI: every function wisp provides to guests, with its
 * exact wasm signature, so that module validation can refuse a module whose
 * imports wisp cannot satisfy before any code is generated.
 *
 * Each entry must match the C definition of Z_<module>Z_<name> (wasm2c maps
 * i32 to u32 and i64 to u64); tests/unit/test_wasi_abi.c checks the table
 * against the witx signatures.
 */
#include <string.h>

#include "host.h"

/* wasi_snapshot_preview1, in witx order of the spec's function list. */
const struct host_import wasi_imports[] = {
#define WASI(name, params, results) \
	{ "wasi_snapshot_preview1", #name, params, results }
	WASI(args_get, "ii", "i"),
	WASI(args_sizes_get, "ii", "i"),
	WASI(environ_get, "ii", "i"),
	WASI(environ_sizes_get, "ii", "i"),
	WASI(clock_res_get, "ii", "i"),
	WASI(clock_time_get, "iIi", "i"),
	WASI(fd_advise, "iIIi", "i"),
	WASI(fd_allocate, "iII", "i"),
	WASI(fd_close, "i", "i"),
	WASI(fd_datasync, "i", "i"),
	WASI(fd_fdstat_get, "ii", "i"),
	WASI(fd_fdstat_set_flags, "ii", "i"),
	WASI(fd_fdstat_set_rights, "iII", "i"),
	WASI(fd_filestat_get, "ii", "i"),
	WASI(fd_filestat_set_size, "iI", "i"),
	WASI(fd_filestat_set_times, "iIIi", "i"),
	WASI(fd_pread, "iiiIi", "i"),
	WASI(fd_prestat_get, "ii", "i"),
	WASI(fd_prestat_dir_name, "iii", "i"),
	WASI(fd_pwrite, "iiiIi", "i"),
	WASI(fd_read, "iiii", "i"),
	WASI(fd_readdir, "iiiIi", "i"),
	WASI(fd_renumber, "ii", "i"),
	WASI(fd_seek, "iIii", "i"),
	WASI(fd_sync, "i", "i"),
	WASI(fd_tell, "ii", "i"),
	WASI(fd_write, "iiii", "i"),
	WASI(path_create_directory, "iii", "i"),
	WASI(path_filestat_get, "iiiii", "i"),
	WASI(path_filestat_set_times, "iiiiIIi", "i"),
	WASI(path_link, "iiiiiii", "i"),
	WASI(path_open, "iiiiiIIii", "i"),
	WASI(path_readlink, "iiiiii", "i"),
	WASI(path_remove_directory, "iii", "i"),
	WASI(path_rename, "iiiiii", "i"),
	WASI(path_symlink, "iiiii", "i"),
	WASI(path_unlink_file, "iii", "i"),
	WASI(poll_oneoff, "iiii", "i"),
	WASI(proc_exit, "i", ""),
	WASI(proc_raise, "i", "i"),
	WASI(sched_yield, "", "i"),
	WASI(random_get, "ii", "i"),
	WASI(sock_accept, "iii", "i"),
	WASI(sock_recv, "iiiiii", "i"),
	WASI(sock_send, "iiiii", "i"),
	WASI(sock_shutdown, "ii", "i"),
#undef WASI
	{ NULL, NULL, NULL, NULL },
};

/* Every namespace wisp provides; add new tables here. */
static const struct host_import *const namespaces[] = {
	wasi_imports,
};

const struct host_import *host_import_find(const char *module,
                                           const char *name)
{
	size_t n = sizeof(namespaces) / sizeof(namespaces[0]);
	for (size_t i = 0; i < n; i++)
		for (const struct host_import *e = namespaces[i]; e->name; e++)
			if (strcmp(e->module, module) == 0 &&
			    strcmp(e->name, name) == 0)
				return e;
	return NULL;
}
