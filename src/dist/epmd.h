/*
 * epmd.h — a client of EPMD, the Erlang Port Mapper Daemon: how a
 * distributed node publishes the port it accepts connections on, and finds
 * another node's (erts, "Distribution Protocol", section "EPMD Protocol").
 *
 * One EPMD runs per host, on TCP port 4369 unless the environment variable
 * ERL_EPMD_PORT says otherwise (as for erl). These functions take the port
 * as a parameter; the caller reads the environment (epmd_parse_port).
 *
 * Every request is bounded: connecting and each exchange together take at
 * most EPMD_TIMEOUT_MS, so a stuck EPMD returns -ETIMEDOUT instead of
 * hanging the caller (name resolution in epmd_port_please is the one step
 * that getaddrinfo bounds by the resolver's own timeouts). Sockets are
 * SOCK_CLOEXEC.
 *
 * Error convention: 0 or a negative errno, with a message in the caller's
 * buffer (err, errlen; may be NULL/0) that names the port, host or node.
 */
#ifndef WISP_DIST_EPMD_H
#define WISP_DIST_EPMD_H

#include <stddef.h>
#include <stdint.h>

#define EPMD_DEFAULT_PORT 4369
#define EPMD_TIMEOUT_MS   5000   /* one request: connect, send, answer */
#define EPMD_START_MS     2000   /* epmd_ensure_running: how long a new epmd may take to answer */

/* The EPMD port from the value of ERL_EPMD_PORT (text: getenv's result,
 * NULL or empty for the default 4369). -EINVAL if it is not a port number
 * 1..65535. */
int epmd_parse_port(const char *text, uint16_t *port);

/* Register node `alive` (the part of the node name before '@'; 1..255
 * printable ASCII bytes, no '@' or space) as accepting distribution
 * connections on dist_port, with the EPMD on 127.0.0.1:epmd_port
 * (ALIVE2_REQ: a normal node, TCP, distribution version 6 only).
 *
 * On success *fd_out is the open registration socket (non-blocking,
 * CLOEXEC) and *creation_out the creation EPMD assigned to this
 * incarnation (32 bits from ALIVE2_X_RESP, or 16 from an old EPMD's
 * ALIVE2_RESP). The registration lasts as long as that socket is open:
 * keep it for the node's life; closing it unregisters the name.
 *
 * Errors: -ECONNREFUSED (EPMD is not running on that port), -EADDRINUSE
 * (the name is registered already), -EPROTO (an answer that is not
 * EPMD's), -ETIMEDOUT, -EINVAL (a bad name or port). */
int epmd_register(uint16_t epmd_port, const char *alive, uint16_t dist_port,
                  int *fd_out, uint32_t *creation_out, char *err, size_t errlen);

/* The distribution port of node `alive` on `host` (a name or an IPv4/IPv6
 * address, resolved with getaddrinfo; every address is tried in turn),
 * asked of the EPMD on that host's epmd_port (PORT_PLEASE2_REQ).
 *
 * Errors: -ENOENT (no node of that name is registered there),
 * -EHOSTUNREACH (the host name does not resolve), -ECONNREFUSED (no EPMD
 * answers there), -EPROTONOSUPPORT (the node cannot speak distribution
 * version 6, i.e. is older than OTP 23), -EPROTO, -ETIMEDOUT, -EINVAL. */
int epmd_port_please(const char *host, uint16_t epmd_port, const char *alive,
                     uint16_t *port_out, char *err, size_t errlen);

/* Make sure an EPMD answers on 127.0.0.1:epmd_port, as erl does: if none
 * does, start one (epmd_start_daemon with the installed epmd). Returns 0
 * once an EPMD answers; -EPROTO if something else holds the port; the
 * errors of epmd_start_daemon. */
int epmd_ensure_running(uint16_t epmd_port, char *err, size_t errlen);

/* Start `program -daemon -port P` (program NULL: the epmd on PATH, else
 * /usr/bin/epmd, else /usr/lib/erlang/bin/epmd) with stdio on /dev/null,
 * and wait up to EPMD_START_MS until it answers on 127.0.0.1:P. The daemon
 * outlives the caller on purpose (one EPMD serves every node of the host,
 * as with erl). Errors: -ENOENT (epmd is not installed, or not at
 * `program`), -ETIMEDOUT (it did not answer in time), -ECHILD (it exited
 * with an error, e.g. the port is taken), -EPROTO. */
int epmd_start_daemon(const char *program, uint16_t epmd_port, char *err, size_t errlen);

#endif
