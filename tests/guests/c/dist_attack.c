/*
 * dist_attack.c — a guest for tests/e2e/test_dist_attacks.py: a node's
 * processes under a hostile peer, and a hostile guest.
 *
 *   relay            register as "relay", print "ready NODE", then for
 *                    each message:
 *                      tag 1, payload "NODE\0NAME\0DATA": send {5, DATA}
 *                      to NAME on NODE, print "sent RC"
 *                      any other tag: print "got TAG PAYLOAD"
 *   flood NODE NAME COUNT SIZE
 *                    send COUNT messages of SIZE bytes to NAME on NODE,
 *                    print "flooded RC" (the last send's), then wait
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

static int relay(void)
{
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

int main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[1], "flood") == 0)
		return flood(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	if (argc >= 2 && strcmp(argv[1], "relay") == 0)
		return relay();
	fprintf(stderr, "usage: dist_attack relay | flood NODE NAME COUNT SIZE\n");
	return 2;
}
