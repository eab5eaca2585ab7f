/*
 * dist_attack.c — a guest for tests/e2e/test_dist_attacks.py: a node's
 * processes under a hostile peer, and a hostile guest.
 *
 *   relay            register as "relay", print "ready NODE", then for
 *                    each message:
 *                      tag 1, payload "NODE\0NAME\0DATA": send {5, DATA}
 *                      to NAME on NODE, print "sent RC"
 *                      a term (WISP_TAG_TERM): keep the first pid in the
 *                      first one that holds one, print "saved"
 *                      tag 4: send {5, PAYLOAD} to the pid kept, print
 *                      "sent-saved RC"
 *                      any other tag: print "got TAG PAYLOAD"
 *   flood NODE NAME COUNT SIZE
 *                    send COUNT messages of SIZE bytes to NAME on NODE,
 *                    print "flooded RC" (the last send's), then wait
 *   names COUNT HOST send to "echo" on COUNT distinct nodes nI@HOST; print
 *                    "names I RC" at the first send that is not WISP_OK
 *                    (or "names COUNT 0"), then serve as relay
 *   deny             print "ready NODE", take a message from another node,
 *                    then a child without WISP_DENY_NODES's capability
 *                    aims each call at its sender ("child-CALL RC"), and
 *                    this process sends it {8, "parent"} ("parent-send RC")
 *   odd NODE         the calls with what they must refuse, each printed
 *                    "NAME RC": node names that are not names, spawning on
 *                    this very node, pids that are not pids
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>
#include <wisp/term.h>

/* The first pid in the guest's form in term bytes, or 0. */
static wisp_pid_t first_pid(const unsigned char *p, uint32_t n)
{
	for (uint32_t i = 0; i + 15 <= n; i++)
		if (p[i] == 88 && p[i + 1] == 119 && p[i + 2] == 0) {
			const unsigned char *q = p + i + 3;
			uint32_t id = (uint32_t)q[0] << 24 | q[1] << 16 | q[2] << 8 | q[3];
			uint32_t serial = (uint32_t)q[4] << 24 | q[5] << 16 | q[6] << 8 | q[7];
			return (wisp_pid_t)serial << 32 | id;
		}
	return 0;
}

static int relay(void)
{
	wisp_pid_t saved = 0;
	char name[256];
	uint32_t n = wisp_node_name(name, sizeof name);
	if (wisp_register("relay", 5, wisp_self()) != WISP_OK)
		return 3;
	printf("ready %.*s\n", (int)n, name);
	fflush(stdout);
	for (;;) {
		struct wisp_msg_info info;
		static char buf[1 << 16];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf - 1, &info) != WISP_OK)
			continue;
		if (info.kind != WISP_MSG_DATA)
			continue;
		buf[info.len] = '\0';
		if (info.tag == 1) {
			const char *node = buf, *to = node + strlen(node) + 1;
			const char *data = to + strlen(to) + 1;
			uint32_t dlen = info.len - (uint32_t)(data - buf);
			int32_t rc = wisp_node_send(node, (uint32_t)strlen(node), to, (uint32_t)strlen(to),
			                            5, data, dlen);
			printf("sent %d\n", rc);
		} else if (info.tag == WISP_TAG_TERM) {
			if (saved == 0 && (saved = first_pid((unsigned char *)buf, info.len)) != 0)
				printf("saved\n");
		} else if (info.tag == 4) {
			printf("sent-saved %d\n", wisp_send(saved, 5, buf, info.len));
		} else {
			printf("got %llu %.*s\n", (unsigned long long)info.tag, (int)info.len, buf);
		}
		fflush(stdout);
	}
}

static int flood(const char *node, const char *name, int count, int size)
{
	char *data = calloc(1, (size_t)size);
	if (data == NULL)
		return 3;
	int32_t rc = WISP_OK;
	for (int i = 0; i < count; i++)
		rc = wisp_node_send(node, (uint32_t)strlen(node), name, (uint32_t)strlen(name), 5, data,
		                    (uint32_t)size);
	printf("flooded %d\n", rc);
	fflush(stdout);
	struct wisp_msg_info info;
	char buf[16];
	wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
	return 0;
}

static int names(int count, const char *host)
{
	int i = 0;
	int32_t rc = WISP_OK;
	for (; i < count && rc == WISP_OK; i++) {
		char node[300];
		int n = snprintf(node, sizeof node, "n%d@%s", i, host);
		rc = wisp_node_send(node, (uint32_t)n, "echo", 4, 5, "x", 1);
	}
	printf("names %d %d\n", rc == WISP_OK ? count : i - 1, rc);
	fflush(stdout);
	return relay();
}

static void child(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
}

static void say(const char *what, int32_t rc)
{
	printf("%s %d\n", what, rc);
	fflush(stdout);
}

static void denied_child(const void *arg, uint32_t len)
{
	wisp_pid_t to;
	if (len != sizeof to)
		__builtin_trap();
	memcpy(&to, arg, sizeof to);
	uint64_t ref;
	say("child-send", wisp_send(to, 7, "child", 5));
	say("child-link", wisp_link(to));
	say("child-monitor", wisp_monitor(to, &ref));
	say("child-exit_signal", wisp_exit_signal(to, 3));
	say("child-kill", wisp_kill(to));
	say("child-send_after", wisp_send_after(to, 7, "child", 5, 0, &ref));
	say("child-node_send", wisp_node_send("x@y", 3, "echo", 4, 7, "child", 5));
}

static int deny(void)
{
	char name[256];
	uint32_t n = wisp_node_name(name, sizeof name);
	if (wisp_register("relay", 5, wisp_self()) != WISP_OK)
		return 3;
	printf("ready %.*s\n", (int)n, name);
	fflush(stdout);
	struct wisp_msg_info info;
	char buf[64];
	wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
	wisp_pid_t peer = info.from;
	int32_t h;
	if (wisp_caps_new(&h) != WISP_OK || wisp_caps_deny(h, WISP_DENY_NODES) != WISP_OK)
		return 4;
	struct wisp_spawned out;
	uint64_t tags[1];
	if (wisp_spawn_with(h, (uint32_t)(uintptr_t)denied_child, &peer, sizeof peer,
	                    WISP_SPAWN_MONITOR, &out) != WISP_OK)
		return 5;
	tags[0] = out.monitor;
	wisp_receive(tags, 1, WISP_INFINITY, buf, sizeof buf, &info);   /* its end */
	say("parent-send", wisp_send(peer, 8, "parent", 6));
	wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
	return 0;
}

static int odd(const char *node)
{
	static const char *const bad[] = { "noat", "@host", "name@", "a\x1b[31m@b", "a b@c",
	                                   "\xe2\x80\xae@x" };
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		say("send-bad-name", wisp_node_send(bad[i], (uint32_t)strlen(bad[i]), "echo", 4, 5,
		                                    "x", 1));
		say("connect-bad-name", wisp_node_connect(bad[i], (uint32_t)strlen(bad[i])));
	}
	char me[257];
	uint32_t mlen = wisp_node_name(me, sizeof me - 1);
	me[mlen] = '\0';
	struct wisp_spawned out;
	say("spawn-self", wisp_node_spawn(me, child, "", 0, 0, &out));
	unsigned char junk[64];
	for (unsigned i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)(i * 37 + 88);
	wisp_pid_t pid = 0;
	say("decode-junk", wisp_node_pid_decode(junk, sizeof junk, &pid));
	unsigned char esc[] = { 88, 119, 5, 'a', 27, '@', 'b', 'c', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1 };
	say("decode-escape", wisp_node_pid_decode(esc, sizeof esc, &pid));
	wisp_pid_t forged = 0x8000000000000000ull | 12345ull << 40 | 77;
	say("encode-forged", (int32_t)wisp_node_pid_encode(forged, junk, sizeof junk));
	say("of-forged", (int32_t)wisp_node_of(forged, me, sizeof me));
	say("send-forged", wisp_send(forged, 5, "x", 1));
	uint64_t ref;
	say("monitor-forged", wisp_monitor(forged, &ref));
	say("node-ok", wisp_node_send(node, (uint32_t)strlen(node), "echo", 4, 5, "hi", 2));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "deny") == 0)
		return deny();
	if (argc >= 3 && strcmp(argv[1], "odd") == 0)
		return odd(argv[2]);
	if (argc >= 4 && strcmp(argv[1], "names") == 0)
		return names(atoi(argv[2]), argv[3]);
	if (argc >= 6 && strcmp(argv[1], "flood") == 0)
		return flood(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	if (argc >= 2 && strcmp(argv[1], "relay") == 0)
		return relay();
	fprintf(stderr, "usage: dist_attack relay | flood NODE NAME COUNT SIZE | names COUNT HOST | "
	        "odd NODE\n");
	return 2;
}
