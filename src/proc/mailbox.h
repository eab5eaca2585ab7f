/*
 * mailbox.h — see mailbox.c.
 */
#ifndef WISP_MAILBOX_H
#define WISP_MAILBOX_H

#include "proc.h"

#define MBOX_CLOSED ((struct msg *)1)

struct msg *msg_new(uint32_t kind, uint64_t to, uint64_t from, uint64_t tag,
                    uint64_t ref, const void *data, uint32_t len);
/* An EXIT or DOWN message (or exit signal) carrying a reason. */
struct msg *msg_reason(uint32_t kind, uint64_t to, uint64_t from, uint64_t tag,
                       const struct reason *r);
/* What a message costs its holder's account. */
size_t msg_bytes(const struct msg *m);
/* Free a message (uncharging its account); a socket travelling with it is
 * closed. */
void msg_free(struct msg *m);
/* Whether m carries a socket. */
bool msg_has_socket(const struct msg *m);
/* The socket m carries (-1: none) and its host state (*extra, or NULL),
 * no longer in flight for its sender: the caller owns both now.
 * msg_put_socket gives them back (the receiver could not take them). */
int msg_take_socket(struct msg *m, void **extra);
void msg_put_socket(struct msg *m, int fd, void *extra);
/* The reason in an EXIT/DOWN message or exit signal. */
void msg_get_reason(const struct msg *m, struct reason *r);

void mbox_init(struct mailbox *mb);
/* Push (any thread). Returns false if the mailbox is closed: the process is
 * dead and m was not consumed. */
bool mbox_push(struct mailbox *mb, struct msg *m);
/* Owner: take everything pushed so far, oldest first (NULL if none). */
struct msg *mbox_take_all(struct mailbox *mb);
/* Owner, at death: close and take what was pushed (oldest first). */
struct msg *mbox_close(struct mailbox *mb);
/* Owner: append to / unlink from the private list. */
void mbox_append(struct mailbox *mb, struct msg *m);
void mbox_remove(struct mailbox *mb, struct msg *prev, struct msg *m);
/* Free everything in the private list. */
void mbox_clear(struct mailbox *mb);

#endif
