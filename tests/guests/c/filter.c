/*
 * filter.c — a plain WASI command-line program (no wisp imports) that the
 * program tests start as a child process (tests/e2e/test_program.py):
 *
 *   filter upper           stdin to stdout, upper-cased
 *   filter wc              "LINES WORDS BYTES" of stdin
 *   filter slow-wc         the same, after a pause before the first read
 *   filter exit N          exit with status N (after writing "bye" to stderr)
 *   filter trap            trap (unreachable)
 *   filter env NAME        print NAME's value (or "unset")
 *   filter args            print each argument on a line
 *   filter cat PATH        print the file at PATH (status 3 if it cannot)
 *   filter spew N          "out I" to stdout and "err I" to stderr, I < N,
 *                          in turns (far more than a pipe holds, for N in
 *                          the thousands: a reader must drain both at once)
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int wc(void)
{
	long lines = 0, words = 0, bytes = 0;
	int c, in_word = 0;
	while ((c = getchar()) != EOF) {
		bytes++;
		lines += c == '\n';
		if (isspace(c))
			in_word = 0;
		else if (!in_word)
			in_word = 1, words++;
	}
	printf("%ld %ld %ld\n", lines, words, bytes);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "upper") == 0) {
		for (int c; (c = getchar()) != EOF;)
			putchar(toupper(c));
		return 0;
	}
	if (strcmp(argv[1], "wc") == 0)
		return wc();
	if (strcmp(argv[1], "slow-wc") == 0) {
		struct timespec ts = { 0, 300 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		return wc();
	}
	if (strcmp(argv[1], "exit") == 0 && argc == 3) {
		fputs("bye\n", stderr);
		return atoi(argv[2]);
	}
	if (strcmp(argv[1], "trap") == 0)
		__builtin_trap();
	if (strcmp(argv[1], "env") == 0 && argc == 3) {
		const char *v = getenv(argv[2]);
		printf("%s\n", v ? v : "unset");
		return 0;
	}
	if (strcmp(argv[1], "args") == 0) {
		for (int i = 0; i < argc; i++)
			printf("%s\n", argv[i]);
		return 0;
	}
	if (strcmp(argv[1], "cat") == 0 && argc == 3) {
		FILE *f = fopen(argv[2], "r");
		if (f == NULL) {
			perror(argv[2]);
			return 3;
		}
		for (int c; (c = fgetc(f)) != EOF;)
			putchar(c);
		fclose(f);
		return 0;
	}
	if (strcmp(argv[1], "spew") == 0 && argc == 3) {
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++) {
			printf("out %ld\n", i);
			fprintf(stderr, "err %ld\n", i);
		}
		return 0;
	}
	return 2;
}
