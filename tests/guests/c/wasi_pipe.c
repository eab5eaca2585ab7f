/*
 * wasi_pipe.c — writes to stdout until a write fails (the reader went
 * away), then reports the error on stderr. The host must return EPIPE, not
 * die of SIGPIPE.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	static char line[4096];
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	for (long i = 0; i < 1000000; i++) {
		if (write(1, line, sizeof(line)) < 0) {
			fprintf(stderr, "write failed: %s\n",
			        errno == EPIPE ? "EPIPE" : strerror(errno));
			return 3;
		}
	}
	fprintf(stderr, "never failed\n");
	return 0;
}
