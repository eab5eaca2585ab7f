/*
 * wisp_program.h — what a program's spawn hands its child's host state
 * (wisp_program.c): the host fds of its stdio.
 */
#ifndef WISP_HOST_PROGRAM_H
#define WISP_HOST_PROGRAM_H

#include <stddef.h>

#include "host.h"

/* The child's fds 0-2 (-1: none, or what its capability set says). */
struct program_stdio {
	int fd[3];
};

/* Build hp's WASI state with ps's fds as its stdio, which it owns from now
 * on (closed when it ends; non-blocking ones park). 0 or -errno (message
 * in err; the fds are still the caller's). */
int program_stdio_adopt(struct host_proc *hp, const struct program_stdio *ps, char *err,
                        size_t errlen);
/* Close the fds ps holds. */
void program_stdio_close(struct program_stdio *ps);

#endif
