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
#include "wasi_impl.h"

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

/* The functions themselves, referenced so that linking abi.o (module
 * validation always does) pulls every WASI object out of libwisp.a: the
 * generated code finds them only at dlopen time, which the static linker
 * cannot see. */
__attribute__((used)) static void (*const wasi_anchor[])(void) = {
	(void (*)(void))WASI_FN(args_get),
	(void (*)(void))WASI_FN(args_sizes_get),
	(void (*)(void))WASI_FN(environ_get),
	(void (*)(void))WASI_FN(environ_sizes_get),
	(void (*)(void))WASI_FN(clock_res_get),
	(void (*)(void))WASI_FN(clock_time_get),
	(void (*)(void))WASI_FN(fd_advise),
	(void (*)(void))WASI_FN(fd_allocate),
	(void (*)(void))WASI_FN(fd_close),
	(void (*)(void))WASI_FN(fd_datasync),
	(void (*)(void))WASI_FN(fd_fdstat_get),
	(void (*)(void))WASI_FN(fd_fdstat_set_flags),
	(void (*)(void))WASI_FN(fd_fdstat_set_rights),
	(void (*)(void))WASI_FN(fd_filestat_get),
	(void (*)(void))WASI_FN(fd_filestat_set_size),
	(void (*)(void))WASI_FN(fd_filestat_set_times),
	(void (*)(void))WASI_FN(fd_pread),
	(void (*)(void))WASI_FN(fd_prestat_get),
	(void (*)(void))WASI_FN(fd_prestat_dir_name),
	(void (*)(void))WASI_FN(fd_pwrite),
	(void (*)(void))WASI_FN(fd_read),
	(void (*)(void))WASI_FN(fd_readdir),
	(void (*)(void))WASI_FN(fd_renumber),
	(void (*)(void))WASI_FN(fd_seek),
	(void (*)(void))WASI_FN(fd_sync),
	(void (*)(void))WASI_FN(fd_tell),
	(void (*)(void))WASI_FN(fd_write),
	(void (*)(void))WASI_FN(path_create_directory),
	(void (*)(void))WASI_FN(path_filestat_get),
	(void (*)(void))WASI_FN(path_filestat_set_times),
	(void (*)(void))WASI_FN(path_link),
	(void (*)(void))WASI_FN(path_open),
	(void (*)(void))WASI_FN(path_readlink),
	(void (*)(void))WASI_FN(path_remove_directory),
	(void (*)(void))WASI_FN(path_rename),
	(void (*)(void))WASI_FN(path_symlink),
	(void (*)(void))WASI_FN(path_unlink_file),
	(void (*)(void))WASI_FN(poll_oneoff),
	(void (*)(void))WASI_FN(proc_exit),
	(void (*)(void))WASI_FN(proc_raise),
	(void (*)(void))WASI_FN(sched_yield),
	(void (*)(void))WASI_FN(random_get),
	(void (*)(void))WASI_FN(sock_accept),
	(void (*)(void))WASI_FN(sock_recv),
	(void (*)(void))WASI_FN(sock_send),
	(void (*)(void))WASI_FN(sock_shutdown),
};

/* Every namespace wisp provides; add new tables here. */
/* The wisp namespaces (include/wisp/guest.h, docs/abi.md). */
const struct host_import wisp_imports[] = {
#define P(name, params, results) { "wisp_process", #name, params, results }
	P(abi_version, "", "i"),
	P(self, "", "I"),
	P(spawn, "iiiii", "i"),
	P(spawn_arg, "ii", "i"),
	P(kill, "I", "i"),
	P(exit_signal, "Ii", "i"),
	P(link, "I", "i"),
	P(unlink, "I", "i"),
	P(monitor, "Ii", "i"),
	P(demonitor, "I", "i"),
	P(trap_exit, "i", "i"),
	P(alive, "I", "i"),
	P(yield, "", ""),
	P(spawn_with, "iiiiii", "i"),
#undef P
#define M(name, params, results) { "wisp_message", #name, params, results }
	M(send, "IIii", "i"),
	M(receive, "iiIiii", "i"),
	M(request, "IIiiIiii", "i"),
	M(send_fd, "IIi", "i"),
	M(receive_fd, "iiiIiii", "i"),
#undef M
#define T(name, params, results) { "wisp_timer", #name, params, results }
	T(sleep, "I", ""),
	T(send_after, "IIiiIi", "i"),
	T(cancel, "I", "i"),
#undef T
#define C(name, params, results) { "wisp_caps", #name, params, results }
	C(new, "i", "i"),
	C(free, "i", "i"),
	C(drop_dir, "iii", "i"),
	C(read_only, "iii", "i"),
	C(clear_env, "i", "i"),
	C(set_stdio, "iii", "i"),
	C(drop_network, "i", "i"),
	C(limit, "iiI", "i"),
	C(deny, "ii", "i"),
#undef C
#define N(name, params, results) { "wisp_net", #name, params, results }
	N(tcp_listen, "iiiii", "i"),
	N(tcp_accept, "iIi", "i"),
	N(tcp_connect, "iiiIi", "i"),
	N(read, "iiiIi", "i"),
	N(write, "iiiIi", "i"),
	N(set_nodelay, "ii", "i"),
	N(local_addr, "iiiii", "i"),
	N(peer_addr, "iiiii", "i"),
	N(resolve, "iiiiii", "i"),
	N(udp_bind, "iiii", "i"),
	N(udp_connect, "iiii", "i"),
	N(udp_send_to, "iiiiiiIi", "i"),
	N(udp_recv_from, "iiiIiiiii", "i"),
#undef N
#define R(name, params, results) { "wisp_registry", #name, params, results }
	R(register, "iiI", "i"),
	R(unregister, "ii", "i"),
	R(whereis, "iii", "i"),
#undef R
	{ NULL, NULL, NULL, NULL },
};

static const struct host_import *const namespaces[] = {
	wisp_imports,
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
