/*
 * wasi_unstable.c — WASI preview 0 (the `wasi_unstable` import namespace,
 * still produced by older toolchains), served by the preview 1 host code.
 *
 * The two previews share one per-process state (the fd table, preopens,
 * args, environment) and one implementation. Preview 0 differs only in a
 * few layouts and constants (from the witx of both, WASI repository,
 * legacy/preview0 and legacy/preview1; docs/abi.md has the table):
 *
 *   - whence: CUR = 0, END = 1, SET = 2 (preview 1: SET, CUR, END);
 *   - filestat: `nlink` is a u32 at offset 20 (preview 1: a u64 at 24),
 *     so size, atim, mtim and ctim lie 8 bytes lower and the record is
 *     56 bytes, not 64;
 *   - subscription_clock begins with a u64 `identifier`, so a clock
 *     subscription's id, timeout, precision and flags lie 8 bytes further
 *     and every subscription is 56 bytes, not 48 (events are the same);
 *   - rights end at sock_shutdown (bit 28): preview 1 added sock_accept
 *     (bit 29), and the function sock_accept.
 *
 * Everything else (errno values, every other enum, flag set and record,
 * dirent included, and every other signature) is identical. So abi.def
 * lists each preview 0 function either as ABI_SAME, which becomes a
 * forwarding wrapper here, or as ABI_FN, defined below: fd_seek translates
 * its whence; fd_filestat_get, path_filestat_get and poll_oneoff call the
 * shared code with WASI_PREVIEW0, which writes or reads the preview 0
 * layout; fd_fdstat_get shows only preview 0's rights, and
 * fd_fdstat_set_rights keeps the one right preview 0 cannot name, so that
 * a guest writing back what it read loses nothing it did not ask to lose.
 * Capabilities are the same code, so they hold the same way.
 *
 * A module may import both namespaces (old objects linked into a newer
 * program): each call uses its own namespace's layouts, on the same fds.
 *
 * Rejected: a second copy of the WASI layer, or a preview flag in the
 * per-process state (a module importing both namespaces would make it
 * wrong for one of them); rewriting the module's imports to preview 1 at
 * compile time (the layouts differ, so the generated code would still need
 * these translations, only hidden in the compiler).
 */
#include "wasi_impl.h"

#define NS(name) Z_wasi_unstableZ_##name
#define W(self) wasi_ctx_of(HOST_PROC(self))

/* The ABI_SAME functions: each forwards to its preview 1 namesake. */
#define ABI_SAME(module, name, params, result, as) \
	ABI_CTYPE(result) HOST_FN(module, name)(HOST_SELF_##module self \
	                                         ABI_CNAMED(params)) \
	{ \
		ABI_RETURN(result) HOST_FN(as, name)(self ABI_CNAMES(params)); \
	}
#include "common/abi.def"

uint32_t NS(fd_seek)(WASI_SELF, uint32_t fd, uint64_t offset, uint32_t whence,
                     uint32_t newoffset)
{
	/* Preview 0 CUR, END, SET as preview 1's; anything else stays out of
	 * range (EINVAL there). */
	static const uint32_t p1[] = { 1, 2, 0 };
	return WASI_FN(fd_seek)(self, fd, offset, whence < 3 ? p1[whence] : whence,
	                        newoffset);
}

uint32_t NS(fd_filestat_get)(WASI_SELF, uint32_t fd, uint32_t buf)
{
	return wasi_fd_filestat_get(self, fd, buf, WASI_PREVIEW0);
}

uint32_t NS(path_filestat_get)(WASI_SELF, uint32_t fd, uint32_t flags,
                               uint32_t path, uint32_t path_len, uint32_t buf)
{
	return wasi_path_filestat_get(self, fd, flags, path, path_len, buf,
	                              WASI_PREVIEW0);
}

uint32_t NS(poll_oneoff)(WASI_SELF, uint32_t in, uint32_t out,
                         uint32_t nsubscriptions, uint32_t nevents)
{
	return wasi_poll_oneoff(self, in, out, nsubscriptions, nevents,
	                        WASI_PREVIEW0);
}

uint32_t NS(fd_fdstat_get)(WASI_SELF, uint32_t fd, uint32_t buf)
{
	return wasi_fd_fdstat_get(self, fd, buf, WASI_PREVIEW0);
}

uint32_t NS(fd_fdstat_set_rights)(WASI_SELF, uint32_t fd, uint64_t base,
                                  uint64_t inheriting)
{
	/* Rights preview 0 has no name for are not the guest's to drop:
	 * fd_fdstat_get hid them. */
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(W(self), fd, 0, &err);
	if (f != NULL) {
		base |= f->rights_base & ~WASI_P0_RIGHTS_ALL;
		inheriting |= f->rights_inheriting & ~WASI_P0_RIGHTS_ALL;
	}
	return WASI_FN(fd_fdstat_set_rights)(self, fd, base, inheriting);
}
