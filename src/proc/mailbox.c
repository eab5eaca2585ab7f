/*
 * mailbox.c — a process's mailbox: a lock-free multi-producer stack that
 * senders push to, drained by the owner into a private FIFO list that
 * selective receive scans.
 *
 * Push is a compare-and-swap onto `head` (a Treiber stack: push-only, so no
 * ABA); the owner takes the whole stack with one exchange and reverses it,
 * so messages from one sender keep their order, which is the only ordering
 * promise (as in Erlang). A dead process's head is MBOX_CLOSED: a push then
 * fails and the sender knows the addressee is gone — which is how a link or
 * monitor request to a process that is dying still gets its answer.
 *
 * Alternatives rejected: Vyukov's intrusive MPSC queue (one exchange per
 * push) cannot refuse a push into a closed mailbox; a mutex per mailbox
 * serialises senders on every message.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_impl.h"

struct msg *msg_new(uint32_t kind, uint64_t to, uint64_t from, uint64_t tag,
                    uint64_t ref, const void *data, uint32_t len)
{
	struct msg *m = malloc(sizeof(*m) + len);
	if (m == NULL)
		return NULL;
	m->next = NULL;
	m->acct = NULL;
	m->to = to;
	m->from = from;
	m->tag = tag;
	m->ref = ref;
	m->kind = kind;
	m->len = len;
	m->sock = NULL;
	if (len)
		memcpy(m->data, data, len);
	return m;
}

struct msg *msg_reason(uint32_t kind, uint64_t to, uint64_t from, uint64_t tag,
                       const struct reason *r)
{
	size_t tl = reason_text_len(r);
	unsigned char buf[sizeof(struct wisp_exit_reason) + sizeof(r->text)];
	struct wisp_exit_reason er = { r->kind, r->code };
	memcpy(buf, &er, sizeof(er));
	memcpy(buf + sizeof(er), r->text, tl);
	return msg_new(kind, to, from, tag, 0, buf, (uint32_t)(sizeof(er) + tl));
}

void msg_get_reason(const struct msg *m, struct reason *r)
{
	struct wisp_exit_reason er = { WISP_EXIT_NORMAL, 0 };
	memset(r, 0, sizeof(*r));
	if (m->len >= sizeof(er)) {
		memcpy(&er, m->data, sizeof(er));
		size_t tl = m->len - sizeof(er);
		size_t cap = er.kind == WISP_EXIT_TERM ? sizeof(r->text) : sizeof(r->text) - 1;
		if (tl > cap)
			tl = cap;
		memcpy(r->text, m->data + sizeof(er), tl);
		if (er.kind == WISP_EXIT_TERM)
			er.code = (int32_t)tl;
	}
	r->kind = er.kind;
	r->code = er.code;
}

size_t msg_bytes(const struct msg *m)
{
	return sizeof(*m) + m->len;
}

void msg_charged(struct proc *p, struct msg *m)
{
	m->acct = &p->usage;
	proc_count(p->rt, RT_MSG_BYTES_IN, msg_bytes(m));
}

void msg_uncharge(struct msg *m)
{
	if (m->acct == NULL)
		return;
	/* (acct is a process's usage: msg_charged.) */
	struct proc *p = (struct proc *)((char *)m->acct - offsetof(struct proc, usage));
	atomic_fetch_sub(m->acct, (int64_t)msg_bytes(m));
	m->acct = NULL;
	proc_count(p->rt, RT_MSG_BYTES_OUT, msg_bytes(m));
}

void msg_free(struct msg *m)
{
	if (m == NULL)
		return;
	msg_uncharge(m);
	struct msg_socket *s = m->sock;
	if (s != NULL) {
		if (s->extra != NULL)
			s->extra_free(s->extra);   /* before its socket closes */
		if (s->fd >= 0) {
			close(s->fd);   /* a socket nobody received: it closes */
			atomic_fetch_sub(s->acct, 1);
		}
		free(s);
	}
	free(m);
}

bool msg_has_socket(const struct msg *m)
{
	return m->sock != NULL && m->sock->fd >= 0;
}

int msg_take_socket(struct msg *m, void **extra)
{
	struct msg_socket *s = m->sock;
	*extra = NULL;
	if (s == NULL || s->fd < 0)
		return -1;
	int fd = s->fd;
	atomic_fetch_sub(s->acct, 1);
	*extra = s->extra;
	s->fd = -1;
	s->extra = NULL;
	return fd;
}

void msg_put_socket(struct msg *m, int fd, void *extra)
{
	struct msg_socket *s = m->sock;   /* (kept by the take) */
	atomic_fetch_add(s->acct, 1);
	s->fd = fd;
	s->extra = extra;
}

void mbox_init(struct mailbox *mb)
{
	atomic_store_explicit(&mb->head, NULL, memory_order_relaxed);
	mb->first = mb->last = NULL;
	mb->n = 0;
}

bool mbox_push(struct mailbox *mb, struct msg *m)
{
	struct msg *old = atomic_load_explicit(&mb->head, memory_order_relaxed);
	do {
		if (old == MBOX_CLOSED)
			return false;
		m->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&mb->head, &old, m,
	                                                memory_order_release,
	                                                memory_order_relaxed));
	return true;
}

static struct msg *reverse(struct msg *m)
{
	struct msg *out = NULL;
	while (m != NULL && m != MBOX_CLOSED) {
		struct msg *next = m->next;
		m->next = out;
		out = m;
		m = next;
	}
	return out;
}

struct msg *mbox_take_all(struct mailbox *mb)
{
	if (atomic_load_explicit(&mb->head, memory_order_relaxed) == NULL)
		return NULL;
	return reverse(atomic_exchange_explicit(&mb->head, NULL, memory_order_acquire));
}

struct msg *mbox_close(struct mailbox *mb)
{
	return reverse(atomic_exchange_explicit(&mb->head, MBOX_CLOSED,
	                                        memory_order_acq_rel));
}

void mbox_append(struct mailbox *mb, struct msg *m)
{
	m->next = NULL;
	if (mb->last)
		mb->last->next = m;
	else
		mb->first = m;
	mb->last = m;
	mb->n++;
}

void mbox_remove(struct mailbox *mb, struct msg *prev, struct msg *m)
{
	if (prev)
		prev->next = m->next;
	else
		mb->first = m->next;
	if (mb->last == m)
		mb->last = prev;
	m->next = NULL;
	mb->n--;
}

void mbox_clear(struct mailbox *mb)
{
	struct msg *m = mb->first;
	while (m) {
		struct msg *next = m->next;
		msg_free(m);
		m = next;
	}
	mb->first = mb->last = NULL;
	mb->n = 0;
}
