/*
 * wisp_api.h — shared by the host functions of the wisp_* namespaces
 * (wisp_process.c, wisp_message.c, wisp_timer.c, wisp_registry.c).
 *
 * Error convention: the layers below return 0 or a negative errno; the
 * wisp_process, wisp_message, wisp_timer, wisp_registry and wisp_caps calls
 * give the guest WISP_* codes (wisp_code() below is the one mapping), while
 * wisp_net gives WASI errno values like WASI's own socket calls. A pointer
 * or length outside the caller's memory traps the caller (it broke the
 * ABI's contract), never the host.
 */
#ifndef WISP_API_H
#define WISP_API_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "host.h"
#include "host_abi.h"
#include "proc/proc.h"

typedef uint32_t u32;
typedef uint64_t u64;

/* A lower layer's 0 / -errno as the guest's WISP_* code. */
static inline u32 wisp_code(int rc)
{
	switch (rc) {
	case 0: return WISP_OK;
	case PROC_READY: return WISP_EREADY;
	case -ESRCH: return WISP_ENOPROC;
	case -ETIMEDOUT: return WISP_ETIMEDOUT;
	case -ENOBUFS: return WISP_ETOOSMALL;
	case -EEXIST: return WISP_EEXIST;
	case -EMSGSIZE: return WISP_ETOOBIG;
	case -ENOMEM: return WISP_ENOMEM;
	case -ENOENT: return WISP_ENOTFOUND;
	case -EPERM: return WISP_EPERM;
	case -EAGAIN: return WISP_ELIMIT;
	default: return WISP_EINVAL;
	}
}

/* Charge a call's work (bytes moved) to the calling process's CPU budget;
 * may end it (CPU limit), so call it holding nothing. */
static inline void api_work(struct host_proc *hp, uint64_t bytes)
{
	if (hp->proc != NULL)
		proc_charge_work(hp->proc, bytes);
}

/* The guest bytes [addr, addr+len) or a trap naming the call. */
static inline void *api_ptr(struct host_proc *hp, u32 addr, uint64_t len,
                            const char *call)
{
	void *p = engine_guest_ptr(hp->mem, addr, len);
	if (p == NULL) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%s: pointer outside memory", call);
		engine_trap_msg(engine_current(), WASM_RT_TRAP_OOB, msg);
	}
	return p;
}

static inline void api_put_u64(struct host_proc *hp, u32 addr, uint64_t v,
                               const char *call)
{
	memcpy(api_ptr(hp, addr, 8, call), &v, 8);
}

static inline void api_put_u32(struct host_proc *hp, u32 addr, uint32_t v,
                               const char *call)
{
	memcpy(api_ptr(hp, addr, 4, call), &v, 4);
}

/* Whether the caller may aim a message or signal at pid (wisp_node.c): a
 * pid of another node needs the capability of using other nodes, which a
 * send to it uses (it may connect); a denial is logged (-v) naming call. */
bool node_may_reach(struct host_proc *hp, uint64_t pid, const char *call);

/* The capability set behind the caller's wisp_caps handle h, frozen from
 * now (children will hold it), or NULL (no such handle; out of memory). */
struct caps *host_caps_take(struct host_proc *hp, u32 h);

/* Sockets moving between processes (wisp_net.c): take socket `fd` out of
 * the caller's table (its host fd, or -1 if fd is not a wisp socket; its
 * TLS stream, uncharged from the caller, or NULL in *tls), and put a host
 * socket (with its TLS stream, or NULL, charged to the receiver) into a
 * table (a WASI errno, nothing taken; the new fd in *slot). */
struct tls_stream;
int net_give_socket(struct host_proc *hp, uint32_t fd, struct tls_stream **tls);
/* The host fd of socket `fd` in the caller's table, or -1. */
int wasi_socket_host_fd(struct host_proc *hp, uint32_t fd);
uint16_t net_adopt_socket(struct host_proc *hp, int sock, struct tls_stream *tls,
                          uint32_t *slot);
/* Park the caller until its socket f (its own table slot, which keeps the
 * socket's reactor registration and ticket) is ready for ev (REACTOR_READ
 * or REACTOR_WRITE) or timeout ns pass (< 0: no limit): 0 to retry, a
 * WASI errno (ETIMEDOUT). Guest memory may move meanwhile (wisp_net.c). */
struct wasi_fd;
uint16_t net_wait_fd(struct host_proc *hp, struct wasi_fd *f, uint32_t ev, int64_t timeout);
/* The host fd of socket `fd` in the caller's table (or -1), registering
 * the socket with the reactor if it is the caller's own (*edge: it is;
 * proc_receive_fd's `edge`). */
int net_socket_to_wait(struct host_proc *hp, uint32_t fd, bool *edge);

#endif
