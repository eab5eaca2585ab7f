/*
 * wisp_program.h — what a program's spawn hands its child's host state
 * (wisp_program.c): the host fds of its stdio, and its served directories.
 */
#ifndef WISP_HOST_PROGRAM_H
#define WISP_HOST_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "host.h"

/* The child's fds 0-2 (-1: none, or what its capability set says). The
 * spawn's host init is this struct followed by nmounts records, each a
 * struct program_mount then its path's bytes. */
struct program_stdio {
	int fd[3];
	uint32_t nmounts;
};
struct program_mount {
	uint64_t server;
	uint32_t path_len;
	uint32_t pad;
};

/* Build hp's WASI state from the host init ps (len bytes): ps's fds as its
 * stdio, which it owns from now on (closed when it ends; non-blocking ones
 * park), then its served directories. 0 or -errno (message in err; the fds
 * are still the caller's). */
int program_stdio_adopt(struct host_proc *hp, const struct program_stdio *ps, size_t len,
                        char *err, size_t errlen);
/* Close the fds ps holds. */
void program_stdio_close(struct program_stdio *ps);

#endif
