/*
 * listen.h — the TCP listening sockets of the CLI's servers (`wisp serve
 * --listen`, `--metrics`): one reading of ADDRESS:PORT, one way to listen
 * and one way to say where (listen.c).
 */
#ifndef WISP_CLI_LISTEN_H
#define WISP_CLI_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#define LISTEN_MAX_HOST 128   /* the longest ADDRESS of an ADDRESS:PORT */

/* Whether spec has the form ADDRESS:PORT ("[v6]:PORT" too) with a decimal
 * port of 0 to 65535 (getaddrinfo would take "70000" and listen on its
 * low 16 bits): true, or false with what is wrong in why, for the option
 * opt, whose example is example ("127.0.0.1:7000"). */
bool listen_form_ok(const char *opt, const char *example, const char *spec, char *why,
                    size_t whylen);
/* A listening TCP socket (SO_REUSEADDR, close-on-exec; extra_flags:
 * SOCK_NONBLOCK or 0) bound to spec (as listen_form_ok accepts it); or -1
 * with "PREFIXcannot listen on SPEC: why" in err. */
int listen_tcp(const char *spec, int backlog, int extra_flags, const char *prefix, char *err,
               size_t errlen);
/* What fd listens on, as bound ("127.0.0.1:7000", "[::1]:7000"; port 0
 * picked one: this says which), into buf. */
void listen_where(int fd, char *buf, size_t cap);

#endif
