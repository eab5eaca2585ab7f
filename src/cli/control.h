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
struct metrics;
struct metrics;
struct control *control_new(const char *node_name, struct dist *dist);
/* The figures the "stats" request answers with (NULL: none). */
void control_set_metrics(struct control *c, struct metrics *m);
/* The figures the "stats" request answers with (NULL: none). */
void control_set_metrics(struct control *c, struct metrics *m);
const struct proc_control *control_hooks(struct control *c);
void control_free(struct control *c);

/* The control socket of the run whose OS pid is ospid, or the node named
 * node (neither: the only run), into path: true, or false with a message
 * on stderr ("wisp CMD: ...") that says what runs instead. */
bool control_find(const char *cmd, const char *ospid, const char *node, char *path, size_t cap);
/* A connection to the control socket at path, or -1 with a message. */
int control_connect(const char *cmd, const char *path);
/* For the commands that ask a run something (cmd names the command in
 * messages, e.g. "stats"): find the run as control_find does, send
 * request (one line, without its newline) and read the whole reply
 * (malloc'd, NUL-terminated, *len bytes). 0, or -1 with a message on
 * stderr that says what runs. */
int control_ask(const char *cmd, const char *pid, const char *node, const char *request,
                char **reply, size_t *len);
/* Whether s is an OS process id (digits, not 0). */
bool control_is_pid(const char *s);

/* `wisp reload [--node NAME | --pid PID] [--purge] FILE`. */
int cli_reload(int argc, char **argv);

/* The client side, for the commands that ask a run something (who names
 * the command in messages, e.g. "wisp stats"): find the run (by pid, by
 * node name, or the only one), send request (one line, without its
 * newline) and read the whole reply (malloc'd, NUL-terminated, *len
 * bytes). 0, or -1 with a message on stderr that says what runs. */
int control_ask(const char *who, const char *pid, const char *node, const char *request,
                char **reply, size_t *len);
/* Whether s is an OS process id (digits, not 0). */
bool control_is_pid(const char *s);

#endif
