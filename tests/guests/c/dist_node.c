/*
 * dist_node.c — a guest for the distribution tests (tests/e2e/test_dist.py).
 *
 *   serve            register as "echo", print "ready NODE", then answer:
 *                      tag T (< 100)   reply tag T+1, same payload
 *                      100             link to the sender, reply 101
 *                      110             monitor the sender, reply 111
 *                      120             trap ("unreachable")
 *                      130             exit with the code in the 4-byte payload
 *                      140             reply the payload as it came (tag 141)
 *                      150             reply the term {pid, self()} (WISP_TAG_TERM)
 *                      99              end normally
 *                    and print every EXIT and DOWN it gets:
 *                      "exit|down NODE KIND HEX" (KIND the wisp reason kind,
 *                      HEX the reason's text bytes)
 *   client NODE      send {5, "hello"} to echo on NODE, print "reply T P";
 *                    link to it (tag 100), make it trap (120) and print the
 *                    EXIT it sends ("exit NODE KIND TEXT")
 *   lastwords NODE   send echo on NODE, by name and at once, 100 (link to
 *                    me) and 120 (trap); print "linked" when 101 comes,
 *                    then the EXIT as client does
 *   watch NODE       connect, learn echo's pid (tag 5), monitor it, print
 *                    "watching", then print the DOWN: "down KIND"
 *   rspawn NODE      spawn greet() on NODE, linked and monitored: it sends
 *                    back "hello from NODE-it-runs-on" and traps; print
 *                    "spawned RC", the greeting, the EXIT and the DOWN
 *                    ("exit KIND", "down KIND")
 *   nodemon NODE     monitor NODE itself: print "monitoring", then the DOWN:
 *                    "nodedown KIND NODE"
 *   reach NODE N     connect to NODE N times, one after the other: print
 *                    "connect RC" for each
 *   counter          register as "counter", print "ready NODE"; answer
 *                    requests tagged 60 with the count so far (8 bytes) and
 *                    its node's name, 62 with 63 (from = its pid); on 61
 *                    (payload: a node name) migrate there with its count
 *   stream NODE TO N [pause]  casts in order across a move (see stream())
 *   hammer NODE TO N  N requests to the counter on NODE by pid, asking it
 *                    to move to TO halfway: every reply must carry the next
 *                    count (none lost or repeated); print "hammer ok N FIRST
 *                    LAST" (the nodes of the first and last replies)
 *   sock NODE        try to move a listening socket to echo on NODE:
 *                    print "send_fd RC" and whether the socket is still
 *                    ours ("still mine 1")
 *   part PEER [MS]   (tests/e2e/test_dist_partition.py; PEER is
 *                    NAME@HOST or NAME@HOST:PORT, run on both nodes)
 *                    register as "part", wait MS milliseconds (0 if not
 *                    given), connect to PEER (retrying until
 *                    it listens; print "connected"), trade pids with its
 *                    "part", link to it and monitor it ("linked"), then
 *                    every 20 ms send it the next number of a stream
 *                    (tag 10, 8 bytes; "sent N"), and print what comes:
 *                      "got N"          a number of the peer's stream
 *                      "exit K"/"down K" an EXIT or DOWN (K the reason
 *                                       kind)
 *                    After an EXIT or DOWN, the first number heard from
 *                    the peer again makes it link and monitor anew
 *                    ("relinked"). A hello from another pid (the peer's
 *                    node restarted) makes that pid the peer: it links,
 *                    monitors, prints "met", and the stream goes on to
 *                    it. It runs until killed.
 *   ctl PEER         (tests/e2e/test_dist_partition.py) register as
 *                    "ctl", print "ready", then for each line "send TEXT"
 *                    on stdin send TEXT (tag 20) to "ctl" on node PEER and
 *                    print "sent TEXT"; print "got TEXT" for each such
 *                    message that comes. It runs until killed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>
#include <wisp/term.h>

static void hex(const unsigned char *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

static void print_reason(const char *what, const struct wisp_msg_info *info, const char *buf)
{
	struct wisp_exit_reason r;
	memcpy(&r, buf, sizeof r);
	char node[256];
	uint32_t nl = wisp_node_of(info->from, node, sizeof node);
	printf("%s %.*s %u ", what, (int)nl, node, r.kind);
	hex((const unsigned char *)buf + sizeof r, info->len - (uint32_t)sizeof r);
	printf("\n");
	fflush(stdout);
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int serve(void)
{
	char name[256];
	uint32_t n = wisp_node_name(name, sizeof name);
	if (wisp_register("echo", 4, wisp_self()) != WISP_OK)
		return 3;
	wisp_trap_exit(1);
	printf("ready %.*s\n", (int)n, name);
	fflush(stdout);
	for (;;) {
		struct wisp_msg_info info;
		static char buf[1 << 16];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		if (info.kind == WISP_MSG_EXIT) {
			print_reason("exit", &info, buf);
			continue;
		}
		if (info.kind == WISP_MSG_DOWN) {
			print_reason("down", &info, buf);
			continue;
		}
		uint64_t ref;
		switch (info.tag) {
		case 99:
			return 0;
		case 100:
			wisp_link(info.from);
			wisp_send(info.from, 101, "", 0);
			break;
		case 110:
			wisp_monitor(info.from, &ref);
			wisp_send(info.from, 111, "", 0);
			break;
		case 120:
			__builtin_trap();
		case 130: {
			int32_t code = 0;
			memcpy(&code, buf, info.len >= 4 ? 4 : 0);
			exit(code);
		}
		case 140:
			wisp_send(info.from, 141, buf, info.len);
			break;
		case 150: {
			/* {pid, self()}: the empty-node NEW_PID is the guest's form. */
			unsigned char t[64] = { 131, 104, 2, 119, 3, 'p', 'i', 'd', 88, 119, 0 };
			wisp_pid_t me = wisp_self();
			put32(t + 11, (uint32_t)me);
			put32(t + 15, (uint32_t)(me >> 32));
			put32(t + 19, 0);
			wisp_send(info.from, WISP_TAG_TERM, t, 23);
			break;
		}
		default:
			if (info.tag == WISP_TAG_TERM)
				wisp_send(info.from, WISP_TAG_TERM, buf, info.len);   /* terms echo as terms */
			else if (info.tag < 100)
				wisp_send(info.from, info.tag + 1, buf, info.len);
			break;
		}
	}
}

/* The next message with tag (any if 0), or exit 4 after 10 s. */
static void expect(uint64_t tag, struct wisp_msg_info *info, char *buf, uint32_t cap)
{
	uint64_t tags[1] = { tag };
	int32_t rc = wisp_receive(tag ? tags : NULL, tag ? 1 : 0, 10000000000LL, buf, cap, info);
	if (rc != WISP_OK) {
		printf("no message (tag %llu): %d\n", (unsigned long long)tag, rc);
		exit(4);
	}
}

/* Wait for an EXIT and print it: "exit NODE KIND TEXT". */
static int print_exit(void)
{
	struct wisp_msg_info info;
	char buf[4096];
	expect(0, &info, buf, sizeof buf);
	if (info.kind != WISP_MSG_EXIT)
		return 6;
	struct wisp_exit_reason r;
	memcpy(&r, buf, sizeof r);
	char nodename[256];
	uint32_t nl = wisp_node_of(info.from, nodename, sizeof nodename);
	printf("exit %.*s %u %.*s\n", (int)nl, nodename, r.kind, (int)(info.len - sizeof r),
	       buf + sizeof r);
	return 0;
}

static int client(const char *node)
{
	struct wisp_msg_info info;
	char buf[4096];
	wisp_trap_exit(1);
	if (wisp_node_send(node, (uint32_t)strlen(node), "echo", 4, 5, "hello", 5) != WISP_OK)
		return 5;
	expect(6, &info, buf, sizeof buf);
	printf("reply %llu %.*s\n", (unsigned long long)info.tag, (int)info.len, buf);
	wisp_pid_t echo = info.from;
	wisp_send(echo, 100, "", 0);
	expect(101, &info, buf, sizeof buf);
	wisp_send(echo, 120, "", 0);
	return print_exit();
}

/* Ask echo on node, by name and in one go, to link to us, reply and trap:
 * all of it happens while its node may still be bringing our connection
 * up (what it sends is held meanwhile), and its end ends its node. */
static int last_words(const char *node)
{
	struct wisp_msg_info info;
	char buf[256];
	wisp_trap_exit(1);
	uint32_t nl = (uint32_t)strlen(node);
	if (wisp_node_send(node, nl, "echo", 4, 100, "", 0) != WISP_OK ||
	    wisp_node_send(node, nl, "echo", 4, 120, "", 0) != WISP_OK)
		return 5;
	expect(101, &info, buf, sizeof buf);
	printf("linked\n");
	return print_exit();
}

static int watch(const char *node)
{
	struct wisp_msg_info info;
	char buf[4096];
	if (wisp_node_connect(node, (uint32_t)strlen(node)) != WISP_OK) {
		printf("cannot connect\n");
		return 7;
	}
	wisp_node_send(node, (uint32_t)strlen(node), "echo", 4, 5, "x", 1);
	expect(6, &info, buf, sizeof buf);
	uint64_t ref;
	wisp_monitor(info.from, &ref);
	printf("watching\n");
	fflush(stdout);
	expect(ref, &info, buf, sizeof buf);
	struct wisp_exit_reason r;
	memcpy(&r, buf, sizeof r);
	printf("down %u\n", r.kind);
	return 0;
}

static void greet(const void *arg, uint32_t len)
{
	wisp_pid_t parent;
	if (wisp_node_pid_decode(arg, len, &parent) != WISP_OK)
		__builtin_trap();
	char here[256], msg[300];
	uint32_t n = wisp_node_name(here, sizeof here);
	int k = snprintf(msg, sizeof msg, "hello from %.*s", (int)n, here);
#if defined(SHIPPED) && SHIPPED > 1
	k += snprintf(msg + k, sizeof msg - (size_t)k, " build %d", SHIPPED);
#endif
	wisp_send(parent, 42, msg, (uint32_t)k);
	wisp_trap_exit(0);
	/* Wait for the word to end (so the test sees the greeting first). */
	struct wisp_msg_info info;
	char b[8];
	uint64_t tags[1] = { 43 };
	wisp_receive(tags, 1, WISP_INFINITY, b, sizeof b, &info);
	__builtin_trap();
}

static int rspawn(const char *node)
{
	struct wisp_msg_info info;
	char buf[512];
	wisp_trap_exit(1);
	unsigned char me[300];
	uint32_t melen = wisp_node_pid_encode(wisp_self(), me, sizeof me);
	struct wisp_spawned out;
	int32_t rc = wisp_node_spawn(node, greet, me, melen,
	                             WISP_SPAWN_LINK | WISP_SPAWN_MONITOR, &out);
	printf("spawned %d\n", rc);
	fflush(stdout);
	if (rc != WISP_OK)
		return 0;
	char where[256];
	uint32_t wl = wisp_node_of(out.pid, where, sizeof where);
	printf("child on %.*s\n", (int)wl, where);
	expect(42, &info, buf, sizeof buf);
	printf("%.*s\n", (int)info.len, buf);
	wisp_send(out.pid, 43, "", 0);
	for (int got = 0; got < 2;) {
		expect(0, &info, buf, sizeof buf);
		struct wisp_exit_reason r;
		memcpy(&r, buf, sizeof r);
		if (info.kind == WISP_MSG_EXIT && info.from == out.pid) {
			printf("exit %u\n", r.kind);
			got++;
		} else if (info.kind == WISP_MSG_DOWN && info.tag == out.monitor) {
			printf("down %u\n", r.kind);
			got++;
		}
		fflush(stdout);
	}
	return 0;
}

static int nodemon(const char *node)
{
	uint64_t ref;
	int32_t rc = wisp_node_monitor(node, (uint32_t)strlen(node), &ref);
	if (rc != WISP_OK) {
		printf("monitor %d\n", rc);
		return 0;
	}
	printf("monitoring\n");
	fflush(stdout);
	struct wisp_msg_info info;
	char buf[256];
	expect(ref, &info, buf, sizeof buf);
	struct wisp_exit_reason r;
	memcpy(&r, buf, sizeof r);
	char where[256];
	uint32_t wl = wisp_node_of(info.from, where, sizeof where);
	printf("nodedown %u %.*s\n", r.kind, (int)wl, where);
	return 0;
}

/* The counter's state, which moves with it: requests counted, and the
 * casts of a stream (tag 64, an 8-byte sequence number): the last one and
 * how many came out of order. */
static struct counter_state {
	uint64_t count, last_seq, out_of_order;
} st;
static void counter_resume(const void *state, uint32_t len);

static void counter_loop(void)
{
	char here[256];
	uint32_t hl = wisp_node_name(here, sizeof here);
	for (;;) {
		struct wisp_msg_info info;
		char buf[512];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK ||
		    info.kind != WISP_MSG_DATA)
			continue;
		if (info.tag == 60) {
			char out[8 + 256];
			st.count++;
			memcpy(out, &st.count, 8);
			memcpy(out + 8, here, hl);
			wisp_send(info.from, info.ref, out, 8 + hl);
		} else if (info.tag == 62) {
			wisp_send(info.from, 63, "", 0);
		} else if (info.tag == 64 && info.len == 8) {
			uint64_t seq;
			memcpy(&seq, buf, 8);
			st.out_of_order += seq != st.last_seq + 1;
			st.last_seq = seq;
		} else if (info.tag == 65) {
			char out[16 + 256];
			memcpy(out, &st.last_seq, 8);
			memcpy(out + 8, &st.out_of_order, 8);
			memcpy(out + 16, here, hl);
			wisp_send(info.from, info.ref, out, 16 + hl);
		} else if (info.tag == 61 && info.len < sizeof buf) {
			buf[info.len] = '\0';
			struct counter_state state = st;
			int32_t rc = wisp_node_migrate(buf, counter_resume, &state, sizeof state);
			printf("migrate failed %d\n", rc);   /* (it returns only then) */
			fflush(stdout);
		}
	}
}

static void counter_resume(const void *state, uint32_t len)
{
	if (len != sizeof st)
		__builtin_trap();
	memcpy(&st, state, sizeof st);
	counter_loop();
}

static int counter_main(void)
{
	char name[256];
	uint32_t n = wisp_node_name(name, sizeof name);
	if (wisp_register("counter", 7, wisp_self()) != WISP_OK)
		return 3;
	printf("ready %.*s\n", (int)n, name);
	fflush(stdout);
	counter_loop();
	return 0;
}

static int hammer(const char *node, const char *to, long n)
{
	struct wisp_msg_info info;
	char buf[512], first[256] = "", last[256] = "";
	wisp_node_send(node, (uint32_t)strlen(node), "counter", 7, 62, "", 0);
	expect(63, &info, buf, sizeof buf);
	wisp_pid_t counter = info.from;
	for (long i = 1; i <= n; i++) {
		int32_t rc = wisp_request(counter, 60, "", 0, 30000000000LL, buf, sizeof buf, &info);
		uint64_t c = 0;
		if (rc != WISP_OK || info.len < 8) {
			printf("request %ld failed: %d\n", i, rc);
			return 9;
		}
		memcpy(&c, buf, 8);
		if (c != (uint64_t)i) {
			printf("request %ld got count %llu\n", i, (unsigned long long)c);
			return 10;
		}
		snprintf(i == 1 ? first : last, 256, "%.*s", (int)(info.len - 8), buf + 8);
		if (i == n / 2)
			wisp_send(counter, 61, to, (uint32_t)strlen(to));
	}
	printf("hammer ok %ld %s %s\n", n, first, last);
	return 0;
}

/* N casts numbered 1..N to the counter on NODE by its pid, a status
 * request every 100 (the last number it saw, none out of order), a move
 * to TO at N/2. With PAUSE, once a status comes from TO: wait 1 s (the
 * old node tells this one where the counter went), print "pause", wait
 * 2 s more (the test stops the old node meanwhile), go on: the rest must
 * reach the counter without the old node. "stream ok N FIRST LAST". */
static int stream(const char *node, const char *to, long n, bool pause)
{
	struct wisp_msg_info info;
	char buf[512], first[256] = "", last[256] = "";
	wisp_node_send(node, (uint32_t)strlen(node), "counter", 7, 62, "", 0);
	expect(63, &info, buf, sizeof buf);
	wisp_pid_t counter = info.from;
	bool paused = false;
	for (long i = 1; i <= n; i++) {
		uint64_t seq = (uint64_t)i;
		wisp_send(counter, 64, &seq, 8);
		if (i == n / 2)
			wisp_send(counter, 61, to, (uint32_t)strlen(to));
		if (i % 100 != 0 && i != n)
			continue;
		int32_t rc = wisp_request(counter, 65, "", 0, 10000000000LL, buf, sizeof buf, &info);
		uint64_t seen = 0, bad = 0;
		if (rc != WISP_OK || info.len < 16) {
			printf("status at %ld failed: %d\n", i, rc);
			return 9;
		}
		memcpy(&seen, buf, 8);
		memcpy(&bad, buf + 8, 8);
		if (seen != (uint64_t)i || bad != 0) {
			printf("status at %ld: saw %llu, %llu out of order\n", i,
			       (unsigned long long)seen, (unsigned long long)bad);
			return 10;
		}
		snprintf(i == 100 ? first : last, 256, "%.*s", (int)(info.len - 16), buf + 16);
		if (pause && !paused && strcmp(last, to) == 0) {
			paused = true;
			wisp_sleep(1000000000LL);
			printf("pause\n");
			fflush(stdout);
			wisp_sleep(2000000000LL);
		}
	}
	printf("stream ok %ld %s %s\n", n, first, last);
	return 0;
}

static int sock(const char *node)
{
	struct wisp_msg_info info;
	char buf[64];
	wisp_node_send(node, (uint32_t)strlen(node), "echo", 4, 5, "x", 1);
	expect(6, &info, buf, sizeof buf);
	int32_t fd;
	if (wisp_tcp_listen("127.0.0.1", 9, 0, 4, &fd) != 0)
		return 8;
	printf("send_fd %d\n", wisp_send_fd(info.from, 7, fd));
	char addr[64];
	uint32_t alen, port;
	printf("still mine %d\n", wisp_net_local_addr(fd, addr, sizeof addr, &alen, &port) == 0);
	return 0;
}

#define PART_HELLO 1
#define PART_ANSWER 2
#define PART_TICK 3
#define PART_NUMBER 10
#define PART_PERIOD_NS (20 * 1000000LL)

static void line(const char *what, unsigned long long v)
{
	printf("%s %llu\n", what, v);
	fflush(stdout);
}

/* The pid of the process named "part" on node (nlen bytes of name):
 * hello until its hello or its answer to ours comes. */
static wisp_pid_t part_meet(const char *node, uint32_t nlen)
{
	for (;;) {
		struct wisp_msg_info info;
		char buf[64];
		uint64_t tags[2] = { PART_HELLO, PART_ANSWER };
		wisp_node_send(node, nlen, "part", 4, PART_HELLO, "", 0);
		if (wisp_receive(tags, 2, 200 * 1000000LL, buf, sizeof buf, &info) != WISP_OK)
			continue;
		if (info.tag == PART_HELLO)
			wisp_send(info.from, PART_ANSWER, "", 0);
		return info.from;
	}
}

static int part(const char *peer, long wait_ms)
{
	const char *colon = strchr(peer, ':');
	uint32_t nlen = colon ? (uint32_t)(colon - peer) : (uint32_t)strlen(peer);
	if (wisp_register("part", 4, wisp_self()) != WISP_OK)
		return 3;
	wisp_trap_exit(1);
	wisp_sleep(wait_ms * 1000000LL);
	while (wisp_node_connect(peer, (uint32_t)strlen(peer)) != WISP_OK)
		wisp_sleep(100 * 1000000LL);
	printf("connected\n");
	fflush(stdout);
	wisp_pid_t other = part_meet(peer, nlen);
	uint64_t mon, timer;
	wisp_link(other);
	wisp_monitor(other, &mon);
	printf("linked\n");
	fflush(stdout);
	wisp_send_after(wisp_self(), PART_TICK, "", 0, PART_PERIOD_NS, &timer);
	uint64_t sent = 0;
	bool lost = false;
	for (;;) {
		struct wisp_msg_info info;
		char buf[256];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		if (info.kind != WISP_MSG_DATA) {
			struct wisp_exit_reason r;
			memcpy(&r, buf, sizeof r);
			bool is_exit = info.kind == WISP_MSG_EXIT;
			line(is_exit ? "exit" : "down", r.kind);
			if (is_exit ? info.from == other : info.tag == mon)
				lost = true;
		} else if (info.tag == PART_TICK) {
			sent++;
			wisp_send(other, PART_NUMBER, &sent, sizeof sent);
			line("sent", sent);
			wisp_send_after(wisp_self(), PART_TICK, "", 0, PART_PERIOD_NS, &timer);
		} else if (info.tag == PART_NUMBER && info.from == other && info.len == 8) {
			uint64_t n;
			memcpy(&n, buf, sizeof n);
			line("got", n);
			if (lost) {
				wisp_link(other);
				wisp_monitor(other, &mon);
				printf("relinked\n");
				fflush(stdout);
				lost = false;
			}
		} else if (info.tag == PART_HELLO) {
			wisp_send(info.from, PART_ANSWER, "", 0);
			if (info.from != other) {
				other = info.from;
				wisp_link(other);
				wisp_monitor(other, &mon);
				printf("met\n");
				fflush(stdout);
				lost = false;
			}
		}
	}
}

#define CTL_TEXT 20
#define CTL_LINE 21

/* Each line of stdin (without its newline) to the process in arg. */
static void ctl_reader(const void *arg, uint32_t len)
{
	(void)len;
	wisp_pid_t to;
	memcpy(&to, arg, sizeof to);
	char text[256];
	while (fgets(text, sizeof text, stdin) != NULL)
		wisp_send(to, CTL_LINE, text, (uint32_t)strcspn(text, "\n"));
}

static int ctl(const char *peer)
{
	if (wisp_register("ctl", 3, wisp_self()) != WISP_OK)
		return 3;
	wisp_pid_t me = wisp_self();
	if (wisp_spawn(ctl_reader, &me, sizeof me) == 0)
		return 3;
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct wisp_msg_info info;
		char buf[256];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK ||
		    info.kind != WISP_MSG_DATA)
			continue;
		if (info.tag == CTL_LINE && info.len > 5 && memcmp(buf, "send ", 5) == 0) {
			wisp_node_send(peer, (uint32_t)strlen(peer), "ctl", 3, CTL_TEXT, buf + 5,
			               info.len - 5);
			printf("sent %.*s\n", (int)info.len - 5, buf + 5);
		} else if (info.tag == CTL_TEXT) {
			printf("got %.*s\n", (int)info.len, buf);
		}
		fflush(stdout);
	}
}

static int reach(const char *node, long times)
{
	for (long i = 0; i < times; i++) {
		printf("connect %d\n", wisp_node_connect(node, (uint32_t)strlen(node)));
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve();
	if (argc >= 3 && strcmp(argv[1], "client") == 0)
		return client(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "lastwords") == 0)
		return last_words(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "watch") == 0)
		return watch(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "sock") == 0)
		return sock(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "rspawn") == 0)
		return rspawn(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "nodemon") == 0)
		return nodemon(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "counter") == 0)
		return counter_main();
	if (argc >= 5 && strcmp(argv[1], "hammer") == 0)
		return hammer(argv[2], argv[3], atol(argv[4]));
	if (argc >= 5 && strcmp(argv[1], "stream") == 0)
		return stream(argv[2], argv[3], atol(argv[4]), argc >= 6 && strcmp(argv[5], "pause") == 0);
	if (argc >= 3 && strcmp(argv[1], "part") == 0)
		return part(argv[2], argc >= 4 ? atol(argv[3]) : 0);
	if (argc >= 3 && strcmp(argv[1], "ctl") == 0)
		return ctl(argv[2]);
	if (argc >= 4 && strcmp(argv[1], "reach") == 0)
		return reach(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: dist_node serve | client NODE | lastwords NODE | watch NODE | rspawn NODE | sock NODE | "
	        "nodemon NODE | counter | hammer NODE TO N | stream NODE TO N [pause] | part PEER [MS] | "
	        "ctl PEER | reach NODE N\n");
	return 2;
}
