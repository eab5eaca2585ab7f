/*
 * wasi_ro.c — a read-only preopen (argv[1]) next to a writable one
 * (argv[2]): reading works, every kind of write is refused with
 * ENOTCAPABLE, and nothing can be moved or linked out of it. With
 * PORTABLE=1 in the environment the steps where wisp knowingly differs
 * from wasmtime are left out (marked PORTABLE; see
 * tests/e2e/test_wasi_differential.py).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static const char *ro, *rw;

static const char *ename(int e)
{
	static char buf[32];
	if (e == ENOTCAPABLE)
		return "ENOTCAPABLE";
	if (e == EBADF)
		return "EBADF";
	if (e == ENOENT)
		return "ENOENT";
	if (e == EPERM)
		return "EPERM";
	snprintf(buf, sizeof(buf), "errno%d", e);
	return buf;
}

static char *P(const char *base, const char *rel)
{
	static char buf[4][256];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", base, rel);
	return buf[i];
}

#define CHECK(label, expr) do { \
	errno = 0; \
	long r_ = (long)(expr); \
	printf("%s: %s\n", label, r_ < 0 ? ename(errno) : "ok"); \
} while (0)

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	ro = argv[1];
	rw = argv[2];
	int portable = getenv("PORTABLE") != NULL;
	char buf[64] = { 0 };
	int fd = open(P(ro, "data.txt"), O_RDONLY);
	CHECK("open_read", fd);
	printf("content: %.*s\n", (int)read(fd, buf, sizeof(buf)), buf);
	struct stat st;
	CHECK("stat", stat(P(ro, "data.txt"), &st));
	DIR *d = opendir(ro);
	int n = 0;
	while (d && readdir(d))
		n++;
	printf("readdir: %d\n", n);
	CHECK("write_on_ro_fd", write(fd, "x", 1));
	CHECK("ftruncate_ro_fd", ftruncate(fd, 0));
	struct timespec ts[2] = { { 1, 0 }, { 1, 0 } };
	CHECK("futimens_ro_fd", futimens(fd, ts));
	/* PORTABLE: wasmtime has neither fd_allocate nor
	 * fd_fdstat_set_rights (ENOTSUP) */
	if (!portable) {
		printf("fallocate_ro_fd: %s\n", ename(posix_fallocate(fd, 0, 10)));
		__wasi_fdstat_t fs;
		if (__wasi_fd_fdstat_get(fd, &fs) != 0)
			printf("fdstat failed\n");
		printf("regain_write: %d\n", __wasi_fd_fdstat_set_rights(
		       fd, fs.fs_rights_base | __WASI_RIGHTS_FD_WRITE, 0));
	}
	close(fd);
	CHECK("open_write", open(P(ro, "data.txt"), O_WRONLY));
	CHECK("open_rdwr", open(P(ro, "data.txt"), O_RDWR));
	CHECK("open_append", open(P(ro, "data.txt"), O_WRONLY | O_APPEND));
	CHECK("open_trunc", open(P(ro, "data.txt"), O_RDONLY | O_TRUNC));
	CHECK("create", open(P(ro, "new.txt"), O_CREAT | O_WRONLY, 0644));
	CHECK("fopen_w", fopen(P(ro, "data.txt"), "w") ? 0 : -1);
	CHECK("mkdir", mkdir(P(ro, "d"), 0755));
	CHECK("rmdir", rmdir(P(ro, "sub")));
	CHECK("unlink", unlink(P(ro, "data.txt")));
	CHECK("rename_within", rename(P(ro, "data.txt"), P(ro, "moved.txt")));
	CHECK("rename_out", rename(P(ro, "data.txt"), P(rw, "moved.txt")));
	CHECK("rename_in", rename(P(rw, "mine.txt"), P(ro, "mine.txt")));
	CHECK("link_out", link(P(ro, "data.txt"), P(rw, "hard.txt")));
	CHECK("symlink", symlink("data.txt", P(ro, "s")));
	CHECK("utimensat", utimensat(AT_FDCWD, P(ro, "data.txt"), ts, 0));
	/* a directory opened below is read-only too */
	CHECK("create_in_subdir", open(P(ro, "sub/new.txt"), O_CREAT | O_WRONLY, 0644));
	/* the writable one still works */
	fd = open(P(rw, "ok.txt"), O_CREAT | O_WRONLY, 0644);
	CHECK("rw_create", fd);
	CHECK("rw_write", write(fd, "fine", 4));
	close(fd);
	return 0;
}
