/*
 * control.h — a running wisp's control socket, and the commands that use
 * it from another terminal (control.c).
 */
#ifndef WISP_CLI_CONTROL_H
#define WISP_CLI_CONTROL_H

#include "dist/dist.h"
#include "proc/proc.h"

/* The control socket of this run: set up when the runtime is up (as the
 * runtime's proc_control), named after the node (name, or NULL: after
 * the process's pid). */
struct control;
struct control *control_new(const char *node_name, struct dist *dist);
const struct proc_control *control_hooks(struct control *c);
void control_free(struct control *c);

/* The control socket of the run whose OS pid is ospid, or the node named
 * node (neither: the only run), into path: true, or false with a message
 * on stderr ("wisp CMD: ...") that says what runs instead. */
bool control_find(const char *cmd, const char *ospid, const char *node, char *path, size_t cap);
/* A connection to the control socket at path, or -1 with a message. */
int control_connect(const char *cmd, const char *path);

/* `wisp reload [--node NAME | --pid PID] [--purge] FILE`. */
int cli_reload(int argc, char **argv);

#endif
