/*
 * dist_sdk.c — the C SDK's distribution helpers (sdk/c/wisp.c), driven by
 * tests/e2e/test_dist_sdk.py:
 *
 *   serve          register "echo", print "ready NODE", then answer:
 *                    tag 1, payload = a packed pid (wisp_pid_pack) and
 *                      text: send the text, tag 2, to that pid
 *                    a term {ping, Pid}: send Pid the term {pong, Node}
 *                      (wisp_term_send)
 *                    tag 9: end
 *   client NODE    wisp_node_connect_name, then tag 1 to echo on NODE
 *                  with this process's packed pid (wisp_node_send_name),
 *                  and a term {ping, self()} (wisp_term_send_name); print
 *                  what comes back
 *   pack           pack and unpack pids here: "len N", "same 1", and
 *                  refusals of bytes that are no packed pid
 */
#include <stdio.h>
#include <string.h>

#include <wisp/guest.h>
#include <wisp/term.h>

static int serve(void)
{
	char name[256];
	uint32_t n = wisp_node_name(name, sizeof name);
	if (wisp_register_name("echo", wisp_self()) != WISP_OK)
		return 3;
	printf("ready %.*s\n", (int)n, name);
	fflush(stdout);
	for (;;) {
		static unsigned char buf[4096];
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		if (info.tag == 9)
			return 0;
		if (info.tag == 1 && info.len >= 1) {
			/* [pid length][packed pid][text] */
			uint32_t pl = buf[0];
			wisp_pid_t to;
			if (1 + pl > info.len || wisp_pid_unpack(buf + 1, pl, &to) != WISP_OK) {
				printf("serve: a bad pid\n");
				fflush(stdout);
				continue;
			}
			wisp_send(to, 2, buf + 1 + pl, info.len - 1 - pl);
		} else if (info.tag == WISP_TAG_TERM) {
			struct wisp_term_dec d;
			uint32_t arity;
			wisp_pid_t to;
			if (wisp_term_dec_init(&d, buf, info.len) != 0 || wisp_term_get_tuple(&d, &arity) != 0 ||
			    arity != 2 || wisp_term_match_atom(&d, "ping") != 1 ||
			    wisp_term_get_pid(&d, &to) != 0)
				continue;
			unsigned char out[512];
			struct wisp_term_enc e;
			wisp_term_enc_init(&e, out, sizeof out);
			wisp_term_put_tuple(&e, 2);
			wisp_term_put_atom(&e, "pong", 4);
			wisp_term_put_atom(&e, name, n);
			wisp_term_send(to, &e);
		}
	}
}

static int expect(uint64_t tag, unsigned char *buf, uint32_t cap, struct wisp_msg_info *info)
{
	uint64_t tags[1] = { tag };
	int32_t rc = wisp_receive(tags, 1, 20000000000LL, buf, cap, info);
	if (rc != WISP_OK)
		printf("no message with tag %llu: %d\n", (unsigned long long)tag, rc);
	return rc;
}

static int client(const char *node)
{
	printf("connect %d\n", wisp_node_connect_name(node));
	unsigned char msg[512];
	uint32_t pl = wisp_pid_pack(wisp_self(), msg + 1, sizeof msg - 1);
	printf("packed %d\n", pl > 8 && pl <= WISP_PID_PACK_MAX);
	msg[0] = (unsigned char)pl;
	memcpy(msg + 1 + pl, "hello", 5);
	printf("send %d\n", wisp_node_send_name(node, "echo", 1, msg, 1 + pl + 5));
	unsigned char buf[512];
	struct wisp_msg_info info;
	if (expect(2, buf, sizeof buf, &info) != WISP_OK)
		return 4;
	char where[256];
	uint32_t wl = wisp_node_of(info.from, where, sizeof where);
	printf("back %.*s from %.*s\n", (int)info.len, (const char *)buf, (int)wl, where);

	struct wisp_term_enc e;
	wisp_term_enc_init(&e, msg, sizeof msg);
	wisp_term_put_tuple(&e, 2);
	wisp_term_put_atom(&e, "ping", 4);
	wisp_term_put_pid(&e, wisp_self());
	printf("term send %d\n", wisp_term_send_name(node, "echo", &e));
	if (expect(WISP_TAG_TERM, buf, sizeof buf, &info) != WISP_OK)
		return 5;
	struct wisp_term_dec d;
	uint32_t arity;
	const char *a;
	size_t al;
	if (wisp_term_dec_init(&d, buf, info.len) != 0 || wisp_term_get_tuple(&d, &arity) != 0 ||
	    arity != 2 || wisp_term_match_atom(&d, "pong") != 1 || wisp_term_get_atom(&d, &a, &al) != 0)
		return 6;
	printf("pong from %.*s\n", (int)al, a);
	/* A term that overflowed its buffer is not sent. */
	unsigned char tiny[4];
	wisp_term_enc_init(&e, tiny, sizeof tiny);
	wisp_term_put_atom(&e, "too_long_for_it", 15);
	printf("overflow %d\n", wisp_term_send_name(node, "echo", &e));
	wisp_node_send_name(node, "echo", 9, "", 0);
	return 0;
}

static int pack(void)
{
	unsigned char b[WISP_PID_PACK_MAX];
	uint32_t n = wisp_pid_pack(wisp_self(), b, sizeof b);
	wisp_pid_t back = 0;
	printf("len %u\n", n);
	printf("same %d\n", wisp_pid_unpack(b, n, &back) == WISP_OK && back == wisp_self());
	printf("too small %u\n", wisp_pid_pack(wisp_self(), b, 2));
	printf("short %d\n", wisp_pid_unpack(b, n - 1, &back));
	unsigned char junk[8] = { 0 };
	printf("zero %d\n", wisp_pid_unpack(junk, sizeof junk, &back));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve();
	if (argc >= 3 && strcmp(argv[1], "client") == 0)
		return client(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "pack") == 0)
		return pack();
	fprintf(stderr, "usage: dist_sdk serve | client NODE | pack\n");
	return 2;
}
