/*
 * files.c — a plain WASI program (no wisp imports) that works with files
 * under a directory it is given, the way any command-line tool does; the
 * served-file tests (tests/e2e/test_served.py) run it with that directory
 * served by a process, and the bench with it real or served:
 *
 *   files report DIR       read DIR/config.txt (KEY=VALUE lines), write
 *                          DIR/report.txt, append twice to DIR/log.txt,
 *                          then print what stat, seek and readdir say
 *   files cat PATH         print the file (status 3 and the error if not)
 *   files big PATH         bytes and a checksum of a file read in 64 KiB
 *                          freads
 *   files openat DIR REL   open REL relative to the directory DIR
 *   files stat PATH        the size stat() gives
 *   files bench PATH N     N preads of 4 KiB: "ns/read X"
 *   files other PATH       what calls a served file does not serve say
 *   files write PATH TEXT  create or truncate PATH, write TEXT with one
 *                          write(2): "wrote N"
 * Errors print "error: " and strerror.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what)
{
	printf("error: %s: %s\n", what, strerror(errno));
	return 3;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir, sorted, on one line after label. */
static int list(const char *label, const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return fail(dir);
	char *names[64];
	int n = 0;
	for (struct dirent *e; n < 64 && (e = readdir(d)) != NULL;)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), by_name);
	printf("%s", label);
	for (int i = 0; i < n; i++) {
		printf(" %s", names[i]);
		free(names[i]);
	}
	printf("\n");
	return 0;
}

static int report(const char *dir)
{
	char path[256], line[256];
	snprintf(path, sizeof path, "%s/config.txt", dir);
	FILE *in = fopen(path, "r");
	if (in == NULL)
		return fail(path);
	snprintf(path, sizeof path, "%s/report.txt", dir);
	FILE *out = fopen(path, "w");
	if (out == NULL)
		return fail(path);
	int lines = 0;
	while (fgets(line, sizeof line, in) != NULL) {
		char *eq = strchr(line, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		fprintf(out, "%s is %s", line, eq + 1);
		lines++;
	}
	fprintf(out, "%d settings\n", lines);
	/* Seek to the end of the config: its size. */
	if (fseek(in, 0, SEEK_END) != 0)
		return fail("fseek");
	printf("config ends at %ld\n", ftell(in));
	fclose(in);
	if (fclose(out) != 0)
		return fail("fclose");
	struct stat st;
	if (stat(path, &st) != 0)
		return fail(path);
	printf("report is %lld bytes\n", (long long)st.st_size);
	snprintf(path, sizeof path, "%s/log.txt", dir);
	for (int i = 0; i < 2; i++) {
		FILE *log = fopen(path, "a");
		if (log == NULL)
			return fail(path);
		fprintf(log, "run %d\n", i);
		fclose(log);
	}
	int fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0)
		return fail(path);
	printf("log is %lld bytes\n", (long long)st.st_size);
	/* Seek back from the end, then read. */
	char tail[8] = { 0 };
	if (lseek(fd, -6, SEEK_END) < 0 || read(fd, tail, 6) != 6)
		return fail("tail");
	printf("log ends with %s", tail);
	close(fd);
	if (list("ls", dir) != 0)
		return 3;
	snprintf(path, sizeof path, "%s/sub", dir);
	return list("ls sub", path);
}

static int cat(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return fail(path);
	char buf[512];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, n, stdout);
	if (ferror(f))
		return fail("read");
	fclose(f);
	return 0;
}

static int big(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return fail(path);
	static unsigned char buf[65536];
	unsigned long total = 0, sum = 0;
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		for (size_t i = 0; i < n; i++, total++)
			sum = sum * 31 + buf[i];
	if (ferror(f))
		return fail("read");
	fclose(f);
	printf("%lu bytes, sum %lu\n", total, sum);
	return 0;
}

static int bench(const char *path, long n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail(path);
	static char buf[4096];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		if (pread(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
			return fail("pread");
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	printf("ns/read %.0f\n", ns / (double)n);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "report") == 0)
		return report(argv[2]);
	if (argc == 3 && strcmp(argv[1], "cat") == 0)
		return cat(argv[2]);
	if (argc == 3 && strcmp(argv[1], "big") == 0)
		return big(argv[2]);
	if (argc == 4 && strcmp(argv[1], "openat") == 0) {
		int d = open(argv[2], O_RDONLY | O_DIRECTORY);
		if (d < 0)
			return fail(argv[2]);
		int fd = openat(d, argv[3], O_RDONLY);
		if (fd < 0)
			return fail(argv[3]);
		char buf[64] = { 0 };
		ssize_t n = read(fd, buf, sizeof buf - 1);
		printf("read %zd: %s", n, buf);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "stat") == 0) {
		struct stat st;
		if (stat(argv[2], &st) != 0)
			return fail(argv[2]);
		printf("size %lld dir %d\n", (long long)st.st_size, S_ISDIR(st.st_mode));
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "other") == 0) {
		int fd = open(argv[2], O_RDWR);
		if (fd < 0)
			return fail(argv[2]);
		errno = 0;
		printf("fsync %d %s\n", fsync(fd), strerror(errno));
		errno = 0;
		printf("ftruncate %d %s\n", ftruncate(fd, 0), strerror(errno));
		errno = 0;
		printf("unlink %d %s\n", unlink(argv[2]), strerror(errno));
		errno = 0;
		printf("mkdir %d %s\n", mkdir("/data/newdir", 0777), strerror(errno));
		char c;
		printf("read %zd\n", read(fd, &c, 1));
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "write") == 0) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			return fail(argv[2]);
		ssize_t n = write(fd, argv[3], strlen(argv[3]));
		if (n < 0)
			return fail("write");
		if (close(fd) != 0)
			return fail("close");
		printf("wrote %zd\n", n);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "bench") == 0)
		return bench(argv[2], atol(argv[3]));
	return 2;
}
