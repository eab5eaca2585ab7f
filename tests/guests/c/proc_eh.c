/*
 * proc_eh.c — exception handling (legacy encoding) in a real guest: the
 * try blocks are in eh_spin.s. argv[1]:
 *   catch   eh_spin(1000) throws after 1000 steps and catches it
 *   spin    argv[2] processes loop forever inside a try; an echo server
 *           must still answer 100 requests (the loop is preemptible)
 *   throw   an exception no try catches: the guest traps
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

int eh_spin(int stop);
void eh_throw(int v);

__attribute__((noinline)) int eh_step(int x)
{
	return x + 2;
}

static void spinner(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	eh_spin(-1);        /* x stays even: never */
}

static void echo(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	for (;;) {
		uint32_t v;
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, &v, sizeof v, &info) != WISP_OK)
			__builtin_trap();
		v += 1;
		wisp_send(info.from, info.ref, &v, sizeof v);
	}
}

static int spin(uint32_t spinners)
{
	wisp_pid_t pids[16];
	if (spinners > 16)
		spinners = 16;
	for (uint32_t i = 0; i < spinners; i++)
		pids[i] = wisp_spawn(spinner, NULL, 0);
	wisp_pid_t srv = wisp_spawn(echo, NULL, 0);
	uint32_t ok = 0;
	for (uint32_t i = 0; i < 100; i++) {
		uint32_t r = 0;
		struct wisp_msg_info info;
		int32_t rc = wisp_request(srv, 1, &i, sizeof i, 2000000000LL, &r, sizeof r, &info);
		ok += rc == WISP_OK && r == i + 1;
	}
	uint32_t alive = 0;
	for (uint32_t i = 0; i < spinners; i++)
		alive += wisp_alive(pids[i]);
	printf("replies: %u/100\nspinners alive: %u/%u\n", ok, alive, spinners);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "catch";
	if (!strcmp(mode, "catch")) {
		printf("caught: %d\n", eh_spin(1000));
		return 0;
	}
	if (!strcmp(mode, "spin"))
		return spin(argc > 2 ? (uint32_t)atoi(argv[2]) : 2);
	printf("throwing\n");
	fflush(stdout);
	eh_throw(5);
	printf("not reached\n");
	return 1;
}
