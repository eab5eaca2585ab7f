/*
 * proc_preempt.c — processes that never yield cannot starve the others.
 * argv[1] spinners run infinite loops (no calls, no host imports); an echo
 * server must still answer 100 requests from main, each within 2 s. Then
 * main returns: the runtime stops the spinners and wisp exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wisp/guest.h>

static void spin(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	volatile uint32_t x = 0;
	for (;;)
		x++;
}

/* The same, with calls in the loop (reductions at function entries). */
static __attribute__((noinline)) uint32_t step(uint32_t x)
{
	return x * 1103515245u + 12345u;
}

static void spin_calls(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	volatile uint32_t x = 1;
	for (;;)
		x = step(x);
}

/* Sleeps through WASI (poll_oneoff), as any libc program would. */
static void napper(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	for (;;) {
		usleep(200000);
		struct timespec ts = { 0, 100000000 };
		nanosleep(&ts, NULL);
	}
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

int main(int argc, char **argv)
{
	/* argv[1]: how many spinners; argv[2] "nap": nappers instead. */
	uint32_t spinners = argc > 1 ? (uint32_t)atoi(argv[1]) : 4;
	int nap = argc > 2 && !strcmp(argv[2], "nap");
	wisp_pid_t pids[64];
	if (spinners > 64)
		spinners = 64;
	for (uint32_t i = 0; i < spinners; i++)
		pids[i] = wisp_spawn(nap ? napper : i % 2 ? spin_calls : spin, NULL, 0);
	wisp_pid_t srv = wisp_spawn(echo, NULL, 0);
	uint32_t ok = 0;
	for (uint32_t i = 0; i < 100; i++) {
		uint32_t r = 0;
		struct wisp_msg_info info;
		int32_t rc = wisp_request(srv, 1, &i, sizeof i, 2000000000LL, &r, sizeof r, &info);
		if (rc == WISP_OK && r == i + 1)
			ok++;
		else
			printf("request %u: %d\n", i, rc);
	}
	uint32_t alive = 0;
	for (uint32_t i = 0; i < spinners; i++)
		alive += wisp_alive(pids[i]);
	printf("replies: %u/100\n", ok);
	printf("%s alive: %u/%u\n", nap ? "nappers" : "spinners", alive, spinners);
	return 0;
}
