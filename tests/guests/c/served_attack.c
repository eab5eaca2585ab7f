/*
 * served_attack.c — a plain WASI program (no wisp imports) that attacks
 * the process serving its files: what a hostile child can ask of a
 * served directory with ordinary calls (tests/e2e/test_served_sdk.py runs
 * it against a Rust MemFs):
 *
 *   served_attack pwrite PATH OFFSET TEXT   pwrite TEXT at OFFSET (any
 *                                           64-bit number): "pwrite N"
 *   served_attack fill PATH                 write 64 KiB at a time until
 *                                           a write fails: "filled N: ERR"
 *   served_attack create DIR N LEN          create N files named by LEN
 *                                           characters in DIR until one
 *                                           fails: "created N[: ERR]", then
 *                                           count DIR
 *   served_attack readdir DIR COOKIE LEN    one fd_readdir of LEN bytes
 *                                           from COOKIE: "got N" and each
 *                                           entry's "d_next name"
 *   served_attack hold PATH N               open PATH N times, closing
 *                                           none: "held N[: ERR]"
 *   served_attack count DIR                 readdir DIR to its end:
 *                                           "count N" (without . and ..)
 * After pwrite and fill, PATH is written and read back: "then: ..." says
 * whether the server still answers. Errors print "error: " and strerror.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static int fail(const char *what)
{
	printf("error: %s: %s\n", what, strerror(errno));
	return 3;
}

/* Whether the server still answers: open path (created), write, read back. */
static int then(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	char buf[8] = { 0 };
	if (fd < 0 || pwrite(fd, "alive", 5, 0) != 5 || pread(fd, buf, 5, 0) != 5) {
		printf("then: error: %s\n", strerror(errno));
		return 3;
	}
	close(fd);
	printf("then: %s\n", buf);
	return 0;
}

static int do_pwrite(const char *path, const char *offset, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return fail(path);
	ssize_t n = pwrite(fd, text, strlen(text), (off_t)strtoull(offset, NULL, 0));
	if (n < 0)
		printf("error: pwrite: %s\n", strerror(errno));
	else
		printf("pwrite %zd\n", n);
	close(fd);
	return then(path);
}

static int fill(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fail(path);
	static char chunk[65536];
	memset(chunk, 'f', sizeof chunk);
	unsigned long long total = 0;
	for (;;) {
		ssize_t n = write(fd, chunk, sizeof chunk);
		if (n <= 0)
			break;
		total += (unsigned long long)n;
	}
	printf("filled %llu: %s\n", total, strerror(errno));
	close(fd);
	return then(path);
}

static int count(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return fail(dir);
	long n = 0;
	errno = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	if (errno != 0)
		return fail("readdir");
	closedir(d);
	printf("count %ld\n", n);
	return 0;
}

static int create(const char *dir, long n, long len)
{
	char *path = malloc(strlen(dir) + (size_t)len + 32);
	long i = 0;
	for (; i < n; i++) {
		int k = sprintf(path, "%s/%ld-", dir, i);
		memset(path + k, 'n', (size_t)len);
		path[k + len] = '\0';
		int fd = open(path, O_WRONLY | O_CREAT, 0644);
		if (fd < 0)
			break;
		close(fd);
	}
	if (i < n)
		printf("created %ld: %s\n", i, strerror(errno));
	else
		printf("created %ld\n", i);
	free(path);
	return count(dir);
}

static int readdir_raw(const char *dir, const char *cookie, long len)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fail(dir);
	uint8_t *buf = malloc((size_t)len);
	__wasi_size_t got = 0;
	__wasi_errno_t e = __wasi_fd_readdir(fd, buf, (__wasi_size_t)len,
	                                     (__wasi_dircookie_t)strtoull(cookie, NULL, 0), &got);
	if (e != 0) {
		errno = e;
		return fail("fd_readdir");
	}
	printf("got %u\n", (unsigned)got);
	for (size_t at = 0; at + sizeof(__wasi_dirent_t) <= got;) {
		__wasi_dirent_t d;
		memcpy(&d, buf + at, sizeof d);
		at += sizeof d;
		size_t namlen = d.d_namlen < got - at ? d.d_namlen : got - at;
		printf("%llu %.*s\n", (unsigned long long)d.d_next, (int)namlen, (const char *)buf + at);
		at += namlen;
	}
	return 0;
}

static int hold(const char *path, long n)
{
	long i = 0;
	for (; i < n; i++)
		if (open(path, O_RDONLY) < 0)
			break;
	if (i < n)
		printf("held %ld: %s\n", i, strerror(errno));
	else
		printf("held %ld\n", i);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "pwrite") == 0)
		return do_pwrite(argv[2], argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "fill") == 0)
		return fill(argv[2]);
	if (argc == 5 && strcmp(argv[1], "create") == 0)
		return create(argv[2], atol(argv[3]), atol(argv[4]));
	if (argc == 5 && strcmp(argv[1], "readdir") == 0)
		return readdir_raw(argv[2], argv[3], atol(argv[4]));
	if (argc == 3 && strcmp(argv[1], "count") == 0)
		return count(argv[2]);
	if (argc == 4 && strcmp(argv[1], "hold") == 0)
		return hold(argv[2], atol(argv[3]));
	return 2;
}
