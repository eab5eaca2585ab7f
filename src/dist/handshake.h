/*
 * handshake.h — the Erlang distribution handshake, version 6 (OTP 23 and
 * later), in both roles (erts, "Distribution Protocol", section
 * "Distribution Handshake").
 *
 * Two nodes that share a cookie prove it to each other over a connected
 * stream: each sends a random 32-bit challenge and checks the other's
 * answer, MD5(cookie ++ decimal(challenge)). The cookie itself never
 * crosses the wire. The handshake also exchanges the nodes' full names,
 * distribution flags (what each implements) and creations (which
 * incarnation of the node this is). After it succeeds, the stream carries
 * distribution messages framed by a 4-byte length (a zero length is a
 * tick); that is for the caller, which these functions never read ahead
 * of: the stream is left exactly at the first byte after the handshake.
 *
 * Both functions work on a blocking or non-blocking connected fd (they
 * never change its flags and never close it; on failure the caller closes
 * it), and finish within timeout_ms in all (Erlang's net_setuptime
 * default is 7 s). Messages are capped at DIST_HANDSHAKE_MAX bytes.
 *
 * Error convention: 0 or a negative errno, with a message naming the peer
 * (escaped for the terminal) in the caller's buffer (err, errlen; may be
 * NULL/0). The cookie never appears in a message.
 *   -EACCES          the cookies differ (a wrong digest; or, connecting,
 *                    the peer hung up on our challenge reply, which is how
 *                    erl refuses one)
 *   -EPROTONOSUPPORT the peer lacks flags OTP 25 makes mandatory
 *                    (DIST_FLAGS_MANDATORY), speaks only the old version
 *                    5 messages, or asks to be given a name
 *   -EPERM           refused: status not_allowed
 *   -EALREADY        refused: status nok (a simultaneous connection wins)
 *   -EISCONN         status alive answered false: the old connection lives
 *                    (accept role: the peer's answer; connect role: ours)
 *   -EPROTO          a malformed or unexpected message, or a peer whose
 *                    name is not the one we connected to
 *   -EMSGSIZE        a message longer than DIST_HANDSHAKE_MAX
 *   -ECONNRESET      the peer closed the stream (also in mid-message)
 *   -ETIMEDOUT       the time ran out
 *   -EINVAL          a bad argument (a name that is not "alive@host", an
 *                    unknown status from the callback)
 */
#ifndef WISP_DIST_HANDSHAKE_H
#define WISP_DIST_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Distribution flags (the spec's DFLAG_* names; OTP 25's dist.hrl). */
#define DIST_FLAG_PUBLISHED           0x1ull
#define DIST_FLAG_ATOM_CACHE          0x2ull
#define DIST_FLAG_EXTENDED_REFERENCES 0x4ull
#define DIST_FLAG_DIST_MONITOR        0x8ull
#define DIST_FLAG_FUN_TAGS            0x10ull
#define DIST_FLAG_DIST_MONITOR_NAME   0x20ull
#define DIST_FLAG_HIDDEN_ATOM_CACHE   0x40ull
#define DIST_FLAG_NEW_FUN_TAGS        0x80ull
#define DIST_FLAG_EXTENDED_PIDS_PORTS 0x100ull
#define DIST_FLAG_EXPORT_PTR_TAG      0x200ull
#define DIST_FLAG_BIT_BINARIES        0x400ull
#define DIST_FLAG_NEW_FLOATS          0x800ull
#define DIST_FLAG_UNICODE_IO          0x1000ull
#define DIST_FLAG_DIST_HDR_ATOM_CACHE 0x2000ull
#define DIST_FLAG_SMALL_ATOM_TAGS     0x4000ull
#define DIST_FLAG_UTF8_ATOMS          0x10000ull
#define DIST_FLAG_MAP_TAG             0x20000ull
#define DIST_FLAG_BIG_CREATION        0x40000ull
#define DIST_FLAG_SEND_SENDER         0x80000ull
#define DIST_FLAG_BIG_SEQTRACE_LABELS 0x100000ull
#define DIST_FLAG_EXIT_PAYLOAD        0x400000ull
#define DIST_FLAG_FRAGMENTS           0x800000ull
#define DIST_FLAG_HANDSHAKE_23        0x1000000ull
#define DIST_FLAG_UNLINK_ID           0x2000000ull
#define DIST_FLAG_MANDATORY_25_DIGEST 0x4000000ull
#define DIST_FLAG_SPAWN               (1ull << 32)
#define DIST_FLAG_NAME_ME             (1ull << 33)
#define DIST_FLAG_V4_NC               (1ull << 34)
#define DIST_FLAG_ALIAS               (1ull << 35)

/* What OTP 25 requires of every peer; a peer may instead send
 * DIST_FLAG_MANDATORY_25_DIGEST, which stands for all of them (OTP 25+). */
#define DIST_FLAGS_MANDATORY                                                 \
	(DIST_FLAG_EXTENDED_REFERENCES | DIST_FLAG_FUN_TAGS |                    \
	 DIST_FLAG_EXTENDED_PIDS_PORTS | DIST_FLAG_NEW_FUN_TAGS |                \
	 DIST_FLAG_EXPORT_PTR_TAG | DIST_FLAG_BIT_BINARIES |                     \
	 DIST_FLAG_NEW_FLOATS | DIST_FLAG_UTF8_ATOMS | DIST_FLAG_MAP_TAG |       \
	 DIST_FLAG_BIG_CREATION | DIST_FLAG_HANDSHAKE_23)

/* What wisp advertises: a visible node (PUBLISHED) with the mandatory set
 * (and its OTP 25 digest bit, which OTP 27 and later look for), monitors
 * (by pid and by name: a BEAM sends no MONITOR_P at all to a node lacking
 * either bit, and its monitors then only watch the connection),
 * the sender in sends, exit payloads, unlink ids, big sequential-trace
 * labels and 4-word pids/ports. No atom cache (every atom travels as
 * text), no fragments, no spawn requests, no aliases. */
#define DIST_FLAGS_WISP                                                      \
	(DIST_FLAGS_MANDATORY | DIST_FLAG_MANDATORY_25_DIGEST |                 \
	 DIST_FLAG_PUBLISHED | DIST_FLAG_DIST_MONITOR | DIST_FLAG_DIST_MONITOR_NAME | \
	 DIST_FLAG_SEND_SENDER |                                                \
	 DIST_FLAG_BIG_SEQTRACE_LABELS | DIST_FLAG_EXIT_PAYLOAD |                \
	 DIST_FLAG_UNLINK_ID | DIST_FLAG_V4_NC)

#define DIST_HANDSHAKE_MAX 1024          /* bytes of one handshake message */
#define DIST_NAME_MAX      255           /* bytes of a full node name */

/* One side of a connection. name: the full node name "alive@host"
 * (NUL-terminated, at most DIST_NAME_MAX bytes). flags: DIST_FLAG_*; a
 * peer's as it sent them, with DIST_FLAGS_MANDATORY added when it sent the
 * digest bit instead. creation: the incarnation. */
struct dist_id {
	char name[DIST_NAME_MAX + 1];
	uint64_t flags;
	uint32_t creation;
};

/* Connect role: we opened fd to the node peer_name and introduce ourselves
 * as `self` (self->flags are the flags we advertise, normally
 * DIST_FLAGS_WISP). On success *peer holds the peer's name (equal to
 * peer_name), flags and creation. Should the peer answer status "alive"
 * (it has a connection from a node of our name), stale(ctx) decides the
 * answer: true, "true" (the peer drops that connection for this one: the
 * caller has none, so the peer's is stale); false, "false" and -EISCONN
 * (the caller holds a connection to the peer already: both sides
 * connected at once, and the one the peer's attempt made, accepted here
 * meanwhile, is the one the peer holds). stale may be NULL: "true". */
int dist_handshake_connect(int fd, const struct dist_id *self, const char *cookie,
                           const char *peer_name, bool (*stale)(void *ctx), void *ctx,
                           struct dist_id *peer, int timeout_ms, char *err, size_t errlen);

/* Accept role: a peer connected to us. Once its name, flags and creation
 * are known (and its flags pass), status(ctx, peer) decides the answer:
 *   "ok"              go on
 *   "ok_simultaneous" go on; we had a connection attempt of our own to this
 *                     peer, which the caller abandons
 *   "nok"             refuse: our own attempt to the peer wins (-EALREADY)
 *   "not_allowed"     refuse (-EPERM)
 *   "alive"           we have a connection from that name already: the
 *                     peer says whether it is stale ("true": go on, and the
 *                     caller replaces it) or not ("false": -EISCONN)
 * The callback runs on the calling thread, once, and may be NULL for
 * "ok". On success *peer holds the peer's name, flags and creation. */
int dist_handshake_accept(int fd, const struct dist_id *self, const char *cookie,
                          const char *(*status)(void *ctx, const struct dist_id *peer),
                          void *ctx, struct dist_id *peer, int timeout_ms,
                          char *err, size_t errlen);

/* The digest both sides compute: MD5 of the cookie followed by the
 * challenge as unsigned decimal text. */
void dist_handshake_digest(uint32_t challenge, const char *cookie, uint8_t out[16]);

#endif
