/*
 * wasi_min.c — the smallest WASI preview 1 host that runs bench/kernels,
 * linked with a module that `wasm2c -n kernel` produced and with wabt's
 * reference runtime (wasm-rt-impl.c). It exists only for bench/run.py's
 * "wasm2c" column: the same wasm through wasm2c and cc -O2 with explicit bounds
 * checks like wisp, but with no reduction hook, no fibers and no scheduler.
 * The gap between that column and native is the price of wasm itself (bounds
 * checks, no SIMD, clang vs gcc); the gap between it and wisp is wisp's own.
 *
 * It implements exactly the imports the kernels use (clocks, writing to stdout
 * and stderr, exit) and nothing more: a kernel that needs another import fails
 * to link, which run.py reports. Not a sandbox; never use it for anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernel.h"
#include "wasm-rt-impl.h"

enum { WASI_OK = 0, WASI_EBADF = 8, WASI_EFAULT = 21, WASI_EINVAL = 28, WASI_ESPIPE = 70 };

struct Z_wasi_snapshot_preview1_instance_t {
    wasm_rt_memory_t *mem;
};

/* Returns guest memory at [ptr, ptr+len), or traps the guest when out of bounds. */
static uint8_t *guest(struct Z_wasi_snapshot_preview1_instance_t *w, u32 ptr, u64 len)
{
    if ((u64)ptr + len > w->mem->size)
        wasm_rt_trap(WASM_RT_TRAP_OOB);
    return w->mem->data + ptr;
}

u32 Z_wasi_snapshot_preview1Z_clock_time_get(struct Z_wasi_snapshot_preview1_instance_t *w,
                                             u32 id, u64 precision, u32 out)
{
    struct timespec ts;
    if (clock_gettime(id == 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts) != 0)
        return WASI_EINVAL;
    u64 ns = (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
    memcpy(guest(w, out, 8), &ns, 8);
    return WASI_OK;
}

u32 Z_wasi_snapshot_preview1Z_fd_write(struct Z_wasi_snapshot_preview1_instance_t *w,
                                       u32 fd, u32 iovs, u32 n, u32 nwritten)
{
    if (fd != 1 && fd != 2)
        return WASI_EBADF;
    u32 total = 0;
    for (u32 i = 0; i < n; i++) {
        u32 iov[2];
        memcpy(iov, guest(w, iovs + 8 * i, 8), 8);
        const uint8_t *p = guest(w, iov[0], iov[1]);
        for (u32 left = iov[1]; left > 0;) {
            ssize_t r = write((int)fd, p, left);
            if (r <= 0)
                return WASI_EBADF;
            p += r;
            left -= (u32)r;
            total += (u32)r;
        }
    }
    memcpy(guest(w, nwritten, 4), &total, 4);
    return WASI_OK;
}

u32 Z_wasi_snapshot_preview1Z_fd_fdstat_get(struct Z_wasi_snapshot_preview1_instance_t *w,
                                            u32 fd, u32 out)
{
    if (fd > 2)
        return WASI_EBADF;
    uint8_t st[24] = {2};               /* filetype: character device */
    memset(st + 8, 0xff, 16);           /* every right */
    memcpy(guest(w, out, 24), st, 24);
    return WASI_OK;
}

u32 Z_wasi_snapshot_preview1Z_fd_seek(struct Z_wasi_snapshot_preview1_instance_t *w,
                                      u32 fd, u64 off, u32 whence, u32 out)
{
    return fd > 2 ? WASI_EBADF : WASI_ESPIPE;
}

u32 Z_wasi_snapshot_preview1Z_fd_close(struct Z_wasi_snapshot_preview1_instance_t *w, u32 fd)
{
    return fd > 2 ? WASI_EBADF : WASI_OK;
}

void Z_wasi_snapshot_preview1Z_proc_exit(struct Z_wasi_snapshot_preview1_instance_t *w, u32 code)
{
    exit((int)code);
}

int main(void)
{
    static Z_kernel_instance_t inst;
    struct Z_wasi_snapshot_preview1_instance_t w = {0};
    wasm_rt_init();
    Z_kernel_init_module();
    Z_kernel_instantiate(&inst, &w);
    w.mem = Z_kernelZ_memory(&inst);
    wasm_rt_trap_t trap = wasm_rt_impl_try();
    if (trap != WASM_RT_TRAP_NONE) {
        fprintf(stderr, "wasi_min: trap: %s\n", wasm_rt_strerror(trap));
        return 134;
    }
    Z_kernelZ__start(&inst);
    return 0;
}
