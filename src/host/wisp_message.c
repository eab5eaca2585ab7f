/*
 * wisp_message.c — the wisp_message namespace: send, selective receive and
 * request/reply. Payloads are copied out of the sender's memory at send and
 * into the receiver's memory at receive; nothing is shared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"
#include "wasi_impl.h"
#include "wisp_api.h"
#include "proc/caps.h"
#include "proc/mailbox.h"

#define NS(name) Z_wisp_messageZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)
#define MAX_TAGS 4096

u32 NS(send)(void *self, u64 pid, u64 tag, u32 data, u32 len)
{
	SELF;
	if (len > proc_max_message(hp->proc))
		return WISP_ETOOBIG;
	api_work(hp, len);
	const void *d = api_ptr(hp, data, len, "wisp_send");
	if (!node_may_reach(hp, pid, "wisp_send"))
		return WISP_EPERM;
	return wisp_code(proc_send(hp->proc, pid, tag, 0, d, len));
}

/* Copy the message out to the guest (or tell it the size), fill info. A
 * socket travelling with it joins the receiver's fd table now; its new fd
 * is the payload. */
static u32 deliver_to_guest(struct host_proc *hp, struct msg *m, u32 buf,
                            u32 buf_len, u32 info, const char *call)
{
	api_work(hp, m->len);
	if (msg_has_socket(m) && m->len == 4 && buf_len >= 4) {
		uint32_t slot;
		void *tls;
		int fd = msg_take_socket(m, &tls);   /* no longer its sender's */
		uint16_t err = net_adopt_socket(hp, fd, tls, &slot);
		if (err != 0) {  /* the message stays queued, its TLS state in it */
			msg_put_socket(m, fd, tls);
			return err == WASI_EMFILE || err == WASI_ENFILE ? WISP_ELIMIT : WISP_ENOMEM;
		}
		memcpy(m->data, &slot, 4);
	}
	struct wisp_msg_info mi = { m->tag, m->from, m->ref, m->len, m->kind };
	memcpy(api_ptr(hp, info, sizeof(mi), call), &mi, sizeof(mi));
	if (m->len > buf_len)
		return WISP_ETOOSMALL;
	if (m->len)
		memcpy(api_ptr(hp, buf, m->len, call), m->data, m->len);
	proc_take(hp->proc, m);
	msg_free(m);
	return WISP_OK;
}

/* The tag set, copied out of the guest's memory: while parked in receive
 * a hibernated process's memory may wake in another place
 * (proc_park_may_move). Up to LOCAL_TAGS in the caller's `local`, more in
 * scratch (*heap, which the process's exit frees if a kill unwinds the
 * receive; the caller frees it otherwise). NULL with ntags > 0: no memory. */
#define LOCAL_TAGS 16

static const uint64_t *copy_tags(struct host_proc *hp, u32 tags, u32 ntags, uint64_t *local,
                                 uint64_t **heap, const char *call)
{
	*heap = NULL;
	if (ntags == 0)
		return NULL;
	const void *src = api_ptr(hp, tags, (uint64_t)ntags * 8, call);
	uint64_t *t = local;
	if (ntags > LOCAL_TAGS && (t = *heap = host_scratch_alloc(hp, (size_t)ntags * 8)) == NULL)
		return NULL;
	memcpy(t, src, (size_t)ntags * 8);
	return t;
}

u32 NS(receive)(void *self, u32 tags, u32 ntags, u64 timeout, u32 buf, u32 buf_len,
                u32 info)
{
	SELF;
	if (ntags > MAX_TAGS)
		return WISP_EINVAL;
	api_ptr(hp, info, sizeof(struct wisp_msg_info), "wisp_receive");
	api_ptr(hp, buf, buf_len, "wisp_receive");
	uint64_t local[LOCAL_TAGS], *heap;
	const uint64_t *t = copy_tags(hp, tags, ntags, local, &heap, "wisp_receive");
	if (ntags > 0 && t == NULL)
		return WISP_ENOMEM;
	struct msg *m;
	proc_park_may_move(hp->proc, true);
	int rc = proc_receive(hp->proc, t, ntags, (int64_t)timeout, &m);
	proc_park_may_move(hp->proc, false);
	host_scratch_free(hp, heap);
	if (rc != 0)
		return wisp_code(rc);
	return deliver_to_guest(hp, m, buf, buf_len, info, "wisp_receive");
}

u32 NS(request)(void *self, u64 pid, u64 tag, u32 data, u32 len, u64 timeout,
                u32 buf, u32 buf_len, u32 info)
{
	SELF;
	if (len > proc_max_message(hp->proc))
		return WISP_ETOOBIG;
	api_work(hp, len);
	const void *d = api_ptr(hp, data, len, "wisp_request");
	api_ptr(hp, info, sizeof(struct wisp_msg_info), "wisp_request");
	api_ptr(hp, buf, buf_len, "wisp_request");
	if (!node_may_reach(hp, pid, "wisp_request"))
		return WISP_EPERM;
	struct msg *m;
	/* (d is copied into the request before it parks.) */
	proc_park_may_move(hp->proc, true);
	int rc = proc_request(hp->proc, pid, tag, d, len, (int64_t)timeout, &m);
	proc_park_may_move(hp->proc, false);
	if (rc != 0)
		return wisp_code(rc);
	return deliver_to_guest(hp, m, buf, buf_len, info, "wisp_request");
}

u32 NS(send_fd)(void *self, u64 pid, u64 tag, u32 fd)
{
	SELF;
	/* A socket is this host's: it cannot move to another node (and stays
	 * the caller's). */
	if (proc_pid_is_remote(pid)) {
		if (hp->caps != NULL)
			caps_log_denied(hp->caps, proc_pid(hp->proc),
			                "wisp_send_fd: a socket cannot move to a process of another node");
		return WISP_EINVAL;
	}
	struct tls_stream *tls;
	int host = net_give_socket(hp, fd, &tls);
	if (host < 0)
		return WISP_EINVAL;
	return wisp_code(proc_send_fd(hp->proc, pid, tag, host, tls, tls_stream_free));
}

u32 NS(receive_fd)(void *self, u32 tags, u32 ntags, u32 fd, u64 timeout, u32 buf,
                   u32 buf_len, u32 info)
{
	SELF;
	if (ntags > MAX_TAGS)
		return WISP_EINVAL;
	api_ptr(hp, info, sizeof(struct wisp_msg_info), "wisp_receive_fd");
	api_ptr(hp, buf, buf_len, "wisp_receive_fd");
	bool edge;
	int host = net_socket_to_wait(hp, fd, &edge);
	if (host < 0)
		return WISP_EINVAL;
	uint16_t e;
	struct wasi_fd *f = wasi_fd_lookup(wasi_ctx_of(hp), fd, 0, &e);
	if (f != NULL && tls_pending(f))
		return WISP_EREADY;   /* plaintext waits in its TLS stream already */
	uint64_t local[LOCAL_TAGS], *heap;
	const uint64_t *t = copy_tags(hp, tags, ntags, local, &heap, "wisp_receive_fd");
	if (ntags > 0 && t == NULL)
		return WISP_ENOMEM;
	struct msg *m;
	proc_park_may_move(hp->proc, true);
	int rc = proc_receive_fd(hp->proc, t, ntags, host, edge, (int64_t)timeout, &m);
	proc_park_may_move(hp->proc, false);
	host_scratch_free(hp, heap);
	if (rc != 0)
		return wisp_code(rc);
	return deliver_to_guest(hp, m, buf, buf_len, info, "wisp_receive_fd");
}
