/*
 * wasi_stdio_flags — a guest that changes the flags of its stdio, which
 * belong to whoever ran it (tests/e2e/test_wasi.py checks the host's fds
 * afterwards). Reports go to stderr, one "name: value" per line.
 *
 *   wasi_stdio_flags flags      stdin: an empty pipe the test keeps open;
 *                               stdout: a log opened with O_APPEND (`>>`);
 *                               sets NONBLOCK on 0, 1 and 2, clears APPEND
 *                               on 1, seeks 1 to 0 and writes "GUEST\n"
 *   wasi_stdio_flags blockread  stdin: a pipe left O_NONBLOCK by someone
 *                               else, written to later: a blocking read
 *                               (the guest's default) waits for the data
 *
 * With PORTABLE=1 in the environment, "flags" leaves out what wisp does on
 * purpose and wasmtime refuses (tests/e2e/test_wasi_differential.py):
 * changing stdio's flags (wasmtime: EBADF) and seeking a stdout that is a
 * file (wasmtime: ESPIPE, stdio are streams to it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ENOTSUP: return "ENOTSUP";
	case ESPIPE: return "ESPIPE";
	default: return "other";
	}
}

static int setfl(int fd, int flags)
{
	return fcntl(fd, F_SETFL, flags) == 0 ? 0 : errno;
}

static int has(int fd, int flag)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : (fl & flag) != 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "flags") && getenv("PORTABLE")) {
		fprintf(stderr, "stdout append: %d\n", has(1, O_APPEND));
		fprintf(stderr, "stdin nonblock: %d\n", has(0, O_NONBLOCK));
		char b[8];
		ssize_t n = read(0, b, sizeof(b));
		fprintf(stderr, "stdin read: %zd\n", n);
		fprintf(stderr, "write stdout: %s\n",
		        ename(write(1, "GUEST\n", 6) == 6 ? 0 : errno));
		return 0;
	}
	if (!strcmp(mode, "flags")) {
		fprintf(stderr, "stdout append at start: %d\n", has(1, O_APPEND));
		fprintf(stderr, "stdin nonblock at start: %d\n", has(0, O_NONBLOCK));
		fprintf(stderr, "set stdin nonblock: %s\n", ename(setfl(0, O_NONBLOCK)));
		char b[8];
		ssize_t n = read(0, b, sizeof(b));
		fprintf(stderr, "stdin read: %s\n", n < 0 ? ename(errno) : "data");
		fprintf(stderr, "stdin nonblock now: %d\n", has(0, O_NONBLOCK));
		fprintf(stderr, "set stdout nonblock, no append: %s\n",
		        ename(setfl(1, O_NONBLOCK)));
		fprintf(stderr, "stdout append now: %d\n", has(1, O_APPEND));
		fprintf(stderr, "seek stdout: %s\n",
		        ename(lseek(1, 0, SEEK_SET) == 0 ? 0 : errno));
		fprintf(stderr, "write stdout: %s\n",
		        ename(write(1, "GUEST\n", 6) == 6 ? 0 : errno));
		fprintf(stderr, "set stderr nonblock: %s\n", ename(setfl(2, O_NONBLOCK)));
		fprintf(stderr, "stderr still writes: ok\n");
		return 0;
	}
	if (!strcmp(mode, "blockread")) {
		fprintf(stderr, "stdin nonblock: %d\n", has(0, O_NONBLOCK));
		char b[64];
		ssize_t n = read(0, b, sizeof(b) - 1);
		if (n < 0) {
			fprintf(stderr, "read: %s\n", ename(errno));
			return 1;
		}
		b[n] = '\0';
		b[strcspn(b, "\n")] = '\0';
		fprintf(stderr, "read: %s\n", b);
		return 0;
	}
	return 2;
}
