/*
 * observe.h — the control socket's requests that look into the node:
 * ps, inspect, kill and trace (observe.c), and the client commands that
 * send them (ps.c).
 */
#ifndef WISP_CLI_OBSERVE_H
#define WISP_CLI_OBSERVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proc/proc.h"

/* How long a listing or a detail may take to write (a reader that takes
 * longer is cut off), and how long a trace's reader may read nothing
 * before it is dropped. */
#define OBSERVE_REPLY_TIMEOUT_S 120
#define OBSERVE_STALL_TIMEOUT_S 30

/* Serve request `line` (without its newline) on fd if it is one of
 * these: true (answered, or the reader went away), false if it is not.
 * Returns early, with the reply cut, once *stop is true (the node
 * ends). A trace lasts until the reader closes its end (or sends
 * anything), the process ends, or *stop. */
bool observe_serve(struct rt *rt, int fd, const char *line, const atomic_bool *stop);

/* A pid as the node writes it (hex, "0x" allowed) or as the Rust crate
 * prints it ("<A.B>": the high and low 32 bits in decimal): false if s is
 * none (0, or another node's). */
bool observe_parse_pid(const char *s, uint64_t *pid);

/* An exit reason as a person reads it: "normal", "killed", "code 3",
 * "trap: unreachable in f", "limit: cpu limit", an Erlang atom's name...
 * (text: the reason's bytes, len of them; printable, into buf). */
void observe_reason(uint32_t kind, int32_t code, const unsigned char *text, size_t len,
                    char *buf, size_t cap);

/* wisp ps, wisp inspect, wisp kill, wisp trace (ps.c). */
int cli_ps(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_kill(int argc, char **argv);
int cli_trace(int argc, char **argv);

#endif
