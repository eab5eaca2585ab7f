/*
 * fuzz_fault.c — a small guest for fault injection runs (tests/e2e/
 * test_fault.py): spawns monitored workers that exchange messages, grows its
 * memory, writes and reads a file in the preopen (if any), and prints "OK"
 * only if every step worked. A step the host refuses (WISP_ENOMEM, a WASI
 * error) makes it print "FAILED <step>" and exit 3: under injected faults
 * that is a clean outcome; a signal or a hang is not.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

static void fail(const char *step)
{
	printf("FAILED %s\n", step);
	exit(3);
}

static void worker(const void *arg, uint32_t len)
{
	wisp_pid_t parent;
	if (len != sizeof parent)
		return;
	memcpy(&parent, arg, sizeof parent);
	char buf[256];
	struct wisp_msg_info info;
	for (int i = 0; i < 10; i++) {
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			return;
		if (wisp_send(parent, info.tag + 1, buf, info.len) != WISP_OK)
			return;
	}
}

int main(void)
{
	wisp_pid_t self = wisp_self();
	enum { N = 20 };
	wisp_pid_t kids[N];
	uint64_t refs[N];
	for (int i = 0; i < N; i++) {
		kids[i] = wisp_spawn_monitor(worker, &self, sizeof self, &refs[i]);
		if (!kids[i])
			fail("spawn");
	}
	char payload[200];
	memset(payload, 'x', sizeof payload);
	unsigned replies = 0;
	for (int round = 0; round < 10; round++)
		for (int i = 0; i < N; i++)
			if (wisp_send(kids[i], (uint64_t)round * 2, payload, sizeof payload) != WISP_OK)
				fail("send");
	char buf[256];
	struct wisp_msg_info info;
	unsigned downs = 0;
	while (downs < N) {
		if (wisp_receive(NULL, 0, 5000000000ll, buf, sizeof buf, &info) != WISP_OK)
			fail("receive");
		if (info.kind == WISP_MSG_DATA)
			replies++;
		else if (info.kind == WISP_MSG_DOWN)
			downs++;
	}
	if (replies != 10 * N)
		fail("replies");
	void *big = malloc(3 << 20);   /* grows linear memory */
	if (!big)
		fail("grow");
	memset(big, 1, 3 << 20);
	free(big);
	int fd = open("/d/f.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, payload, sizeof payload) != (ssize_t)sizeof payload)
			fail("write");
		if (lseek(fd, 0, SEEK_SET) != 0 || read(fd, buf, sizeof buf) != (ssize_t)sizeof payload)
			fail("read");
		close(fd);
	}
	printf("OK %u replies\n", replies);
	return 0;
}
