/*
 * wasi_fifo — plain POSIX opens of a named pipe ("fifo" in the preopen /d)
 * from a spawned process, while the main process goes on: the blocking
 * open, read and write park the process, never the scheduler thread (the
 * test runs this with --schedulers 1).
 *
 *   wasi_fifo read       a child opens /d/fifo for reading and prints what it reads
 *   wasi_fifo write      a child opens /d/fifo for writing and writes a line
 *   wasi_fifo nonblock   O_WRONLY|O_NONBLOCK with no reader: ENXIO, at once
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

static void reader(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	int fd = open("/d/fifo", O_RDONLY);
	if (fd < 0) {
		printf("open: %s\n", strerror(errno));
		return;
	}
	char buf[256];
	size_t got = 0;
	ssize_t n;
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	printf("child read: %s", buf);
	fflush(stdout);
	close(fd);
}

static void writer(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	int fd = open("/d/fifo", O_WRONLY);
	if (fd < 0) {
		printf("open: %s\n", strerror(errno));
		return;
	}
	const char line[] = "hello from the guest\n";
	printf("child wrote: %zd\n", write(fd, line, sizeof(line) - 1));
	fflush(stdout);
	close(fd);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "nonblock") == 0) {
		int fd = open("/d/fifo", O_WRONLY | O_NONBLOCK);
		printf("nonblocking open: %d %s\n", fd, fd < 0 ? strerror(errno) : "");
		return 0;
	}
	wisp_trap_exit(1);
	wisp_pid_t child = wisp_spawn_link(strcmp(mode, "read") == 0 ? reader : writer, NULL, 0);
	/* The child now waits in open(); this process still runs. */
	wisp_sleep(100 * 1000 * 1000);
	printf("main runs while the child waits\n");
	fflush(stdout);
	/* Wait for the child to end (its exit signal, trapped). */
	struct wisp_msg_info info;
	char sig[512];
	wisp_receive(NULL, 0, WISP_INFINITY, sig, sizeof(sig), &info);
	(void)child;
	return 0;
}
