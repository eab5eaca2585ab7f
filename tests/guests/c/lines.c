/*
 * lines.c — a line-oriented WASI program for `wisp serve` tests: for each
 * line read from stdin, "N LINE" upper-cased (N counts this connection's
 * lines), flushed at once; "trap" traps, "quit" ends with status 0, "big"
 * writes 1 MiB then a line "done", "shut" shuts the socket's sending side
 * down (shutdown(SHUT_WR): the client reads end of file) and goes on
 * reading, answering nothing (a lingering close).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(void)
{
	char line[4096];
	bool shut = false;
	for (int n = 1; fgets(line, sizeof line, stdin) != NULL; n++) {
		line[strcspn(line, "\r\n")] = '\0';
		if (shut)
			continue;
		if (strcmp(line, "shut") == 0) {
			fflush(stdout);
			shut = shutdown(1, SHUT_WR) == 0;
			continue;
		}
		if (strcmp(line, "trap") == 0)
			__builtin_trap();
		if (strcmp(line, "quit") == 0)
			return 0;
		if (strcmp(line, "big") == 0) {
			static char chunk[65536];
			memset(chunk, 'b', sizeof chunk);
			for (int i = 0; i < 16; i++)
				fwrite(chunk, 1, sizeof chunk, stdout);
			printf("\ndone\n");
			fflush(stdout);
			continue;
		}
		for (char *p = line; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		printf("%d %s\n", n, line);
		fflush(stdout);
	}
	return 0;
}
