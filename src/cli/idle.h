/*
 * idle.h — how long `wisp serve`'s connections have been idle, from the
 * kernel's books (idle.c): the sweep behind --idle-timeout.
 */
#ifndef WISP_CLI_IDLE_H
#define WISP_CLI_IDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct idle;

/* Called by a sweep for a connection idle for idle_ms (at least the
 * timeout): true if it was dealt with (never called for it again), false
 * to be called again at the next sweep. */
typedef bool idle_cut_fn(void *ctx, uint64_t pid, uint32_t idle_ms);

/* Watch connections accepted on TCP listener `listen_fd` (not taken):
 * NULL with a message if the kernel cannot report them (no sock_diag). */
struct idle *idle_new(int listen_fd, char *err, size_t errlen);
/* The kernel's name for connection fd (never reused), taken before the
 * fd is handed on; 0 if it has none (the connection goes unwatched). */
uint64_t idle_cookie(int fd);
/* Watch the connection with cookie (not 0) whose program is pid, from
 * now (its idle time never counts from before: from its accept, say): 0
 * or -ENOMEM (it goes unwatched). */
int idle_add(struct idle *w, uint64_t cookie, uint64_t pid);
/* One sweep: cut(ctx, ...) for each connection no data has crossed in
 * either direction for at least timeout_ms since it was added, and not
 * yet dealt with (cut's answer); forget those that ended (their socket
 * is closed on the server's side: no fd holds it). 0, or a negative errno
 * if the kernel's report failed (then nothing is cut or forgotten). */
int idle_sweep(struct idle *w, uint32_t timeout_ms, idle_cut_fn *cut, void *ctx);
/* Connections watched. */
size_t idle_count(const struct idle *w);
void idle_free(struct idle *w);

#endif
