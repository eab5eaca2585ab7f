/*
 * distbench.c — wisp's side of the distribution benchmark (bench/dist_run.py).
 *
 *   server            register as "pong"; answer every message with the same
 *                     tag and payload to its sender; a message tagged 2
 *                     (flood data) is only counted; tag 3 (flood end) is
 *                     answered with the count so far (8 bytes)
 *   pingpong NODE N   N round trips of an 8-byte message with pong on NODE:
 *                     RESULT pingpong <microseconds per round trip>
 *   flood NODE N      N one-way 8-byte messages to pong on NODE, then an end
 *                     marker; waits for the count: RESULT flood <messages per
 *                     second> (the count must be N)
 * Both clients learn pong's pid from a first round trip by name and then
 * send by pid, as an Erlang client would after its first reply.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/guest.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int server(void)
{
	wisp_register("pong", 4, wisp_self());
	printf("READY\n");
	fflush(stdout);
	uint64_t count = 0;
	for (;;) {
		struct wisp_msg_info info;
		char buf[256];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK ||
		    info.kind != WISP_MSG_DATA)
			continue;
		if (info.tag == 2) {
			count++;
		} else if (info.tag == 3) {
			wisp_send(info.from, 3, &count, sizeof count);
			count = 0;
		} else {
			wisp_send(info.from, info.tag, buf, info.len);
		}
	}
}

static wisp_pid_t find_pong(const char *node)
{
	uint64_t v = 0;
	if (wisp_node_send(node, (uint32_t)strlen(node), "pong", 4, 1, &v, 8) != WISP_OK)
		exit(3);
	struct wisp_msg_info info;
	char buf[64];
	uint64_t tags[1] = { 1 };
	if (wisp_receive(tags, 1, 30000000000LL, buf, sizeof buf, &info) != WISP_OK)
		exit(4);
	return info.from;
}

static int pingpong(const char *node, long n)
{
	wisp_pid_t pong = find_pong(node);
	uint64_t tags[1] = { 1 };
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		uint64_t v = (uint64_t)i;
		wisp_send(pong, 1, &v, 8);
		struct wisp_msg_info info;
		char buf[64];
		if (wisp_receive(tags, 1, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			return 5;
	}
	printf("RESULT pingpong %.3f\n", (double)(now_ns() - t0) / 1000.0 / (double)n);
	return 0;
}

static int flood(const char *node, long n)
{
	wisp_pid_t pong = find_pong(node);
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		uint64_t v = (uint64_t)i;
		wisp_send(pong, 2, &v, 8);
	}
	wisp_send(pong, 3, "", 0);
	struct wisp_msg_info info;
	uint64_t count = 0, tags[1] = { 3 };
	if (wisp_receive(tags, 1, WISP_INFINITY, &count, sizeof count, &info) != WISP_OK)
		return 5;
	double s = (double)(now_ns() - t0) / 1e9;
	if (count != (uint64_t)n) {
		printf("ERROR flood: %" PRIu64 " of %ld arrived\n", count, n);
		return 6;
	}
	printf("RESULT flood %.0f\n", (double)n / s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "server") == 0)
		return server();
	if (argc >= 4 && strcmp(argv[1], "pingpong") == 0)
		return pingpong(argv[2], atol(argv[3]));
	if (argc >= 4 && strcmp(argv[1], "flood") == 0)
		return flood(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: distbench server | pingpong NODE N | flood NODE N\n");
	return 2;
}
