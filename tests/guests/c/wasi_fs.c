/*
 * wasi_fs.c — file-system WASI calls through wasi-libc, plus raw calls
 * where libc has no wrapper. argv[1] is the guest path of a writable
 * preopen (e.g. /sandbox). Prints one "label: result" line per step;
 * tests/e2e/test_wasi.py checks every line. With PORTABLE=1 in the
 * environment the steps where wisp knowingly differs from wasmtime are left
 * out (each is marked PORTABLE below and listed in docs/architecture.md),
 * for tests/e2e/test_wasi_differential.py.
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

static const char *root;
static int portable;

static const char *ename(int e)
{
	switch (e) {
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case ENOTCAPABLE: return "ENOTCAPABLE";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case ENOTEMPTY: return "ENOTEMPTY";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ELOOP: return "ELOOP";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EXDEV: return "EXDEV";
	default: {
		static char buf[32];
		snprintf(buf, sizeof(buf), "errno%d", e);
		return buf;
	}
	}
}

static char *P(const char *rel)
{
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", root, rel);
	return buf[i];
}

/* Print "label: ok" or "label: ERRNAME" for a -1/0 style result. */
static void check(const char *label, long r)
{
	printf("%s: %s\n", label, r < 0 ? ename(errno) : "ok");
}

#define CHECK(label, expr) do { errno = 0; check(label, (long)(expr)); } while (0)

static void files(void)
{
	FILE *f = fopen(P("a.txt"), "w");
	CHECK("fopen_w", f ? 0 : -1);
	fputs("hello\n", f);
	CHECK("fclose", fclose(f));
	char buf[64] = { 0 };
	int fd = open(P("a.txt"), O_RDWR);
	CHECK("open_rw", fd);
	printf("read: %zd %s", read(fd, buf, sizeof(buf) - 1), buf);
	struct stat st;
	CHECK("fstat", fstat(fd, &st));
	printf("size: %lld regular: %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
	printf("pwrite: %zd\n", pwrite(fd, "XY", 2, 1));
	memset(buf, 0, sizeof(buf));
	printf("pread: %zd %s\n", pread(fd, buf, 4, 0), buf);
	printf("lseek_end: %lld\n", (long long)lseek(fd, 0, SEEK_END));
	printf("lseek_set: %lld\n", (long long)lseek(fd, 2, SEEK_SET));
	__wasi_filesize_t pos = 0;
	printf("fd_tell: %d %llu\n", __wasi_fd_tell(fd, &pos), (unsigned long long)pos);
	errno = 0;
	printf("lseek_neg: %lld %s\n", (long long)lseek(fd, -10, SEEK_SET), ename(errno));
	CHECK("ftruncate", ftruncate(fd, 3));
	fstat(fd, &st);
	printf("size_after_truncate: %lld\n", (long long)st.st_size);
	/* PORTABLE: wasmtime has no fd_allocate (ENOTSUP). */
	if (!portable) {
		printf("fallocate: %d\n", posix_fallocate(fd, 0, 100));
		fstat(fd, &st);
		printf("size_after_allocate: %lld\n", (long long)st.st_size);
	}
	printf("fadvise: %d\n", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
	/* PORTABLE: wasmtime ends the guest for an out-of-range enum value;
	 * wisp answers EINVAL. */
	if (!portable)
		printf("fadvise_bad: %d\n", posix_fadvise(fd, 0, 0, 99) == EINVAL);
	CHECK("fsync", fsync(fd));
	CHECK("fdatasync", fdatasync(fd));
	printf("setfl_sync: %d\n",
	       __wasi_fd_fdstat_set_flags(fd, __WASI_FDFLAGS_SYNC) == __WASI_ERRNO_INVAL);
	CHECK("setfl_append", fcntl(fd, F_SETFL, O_APPEND));
	printf("getfl_append: %d\n", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
	lseek(fd, 0, SEEK_SET);
	write(fd, "Z", 1);
	fstat(fd, &st);
	printf("size_after_append: %lld\n", (long long)st.st_size);
	struct timespec ts[2] = { { 100, 0 }, { 200, 5 } };
	CHECK("futimens", futimens(fd, ts));
	fstat(fd, &st);
	printf("mtime: %lld %ld atime: %lld\n", (long long)st.st_mtim.tv_sec,
	       st.st_mtim.tv_nsec, (long long)st.st_atim.tv_sec);
	/* drop the write right, then writing is refused (PORTABLE: wasmtime
	 * has no fd_fdstat_set_rights, ENOTSUP) */
	__wasi_fdstat_t fs;
	printf("fdstat: %d\n", __wasi_fd_fdstat_get(fd, &fs));
	if (!portable) {
		printf("set_rights: %d\n", __wasi_fd_fdstat_set_rights(
		       fd, fs.fs_rights_base & ~__WASI_RIGHTS_FD_WRITE, 0));
		errno = 0;
		printf("write_without_right: %zd %s\n", write(fd, "Q", 1),
		       ename(errno));
		printf("regain_rights: %d\n", __wasi_fd_fdstat_set_rights(
		       fd, fs.fs_rights_base, 0) == __WASI_ERRNO_NOTCAPABLE);
	}
	CHECK("close", close(fd));
	CHECK("close_again", close(fd));
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void directories(void)
{
	CHECK("mkdir", mkdir(P("d"), 0755));
	CHECK("mkdir_again", mkdir(P("d"), 0755));
	int dfd = open(P("d"), O_RDONLY | O_DIRECTORY);
	printf("setfl_dir: %d\n", __wasi_fd_fdstat_set_flags(
	       dfd, __WASI_FDFLAGS_NONBLOCK) == __WASI_ERRNO_BADF);
	close(dfd);
	/* enough long names that readdir needs many fd_readdir calls */
	enum { N = 300 };
	char name[300];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "d/entry-%03d-%0*d", i, 20 + i % 200, 0);
		int fd = open(P(name), O_CREAT | O_WRONLY, 0644);
		if (fd < 0) {
			printf("create %s: %s\n", name, ename(errno));
			return;
		}
		close(fd);
	}
	DIR *d = opendir(P("d"));
	CHECK("opendir", d ? 0 : -1);
	char **names = calloc(N + 2, sizeof(char *));
	int n = 0, dots = 0;
	long mark = 0;
	char marked[300] = "";
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
			dots++;
			continue;
		}
		if (e->d_type != DT_REG)
			printf("bad type for %s\n", e->d_name);
		if (n == 150)
			mark = telldir(d);
		if (n == 151)
			strcpy(marked, e->d_name);
		if (n < N + 2)
			names[n] = strdup(e->d_name);
		n++;
	}
	printf("readdir: %d entries, %d dots\n", n, dots);
	qsort(names, (size_t)n, sizeof(char *), cmp);
	int good = n == N;
	for (int i = 0; good && i < N; i++) {
		snprintf(name, sizeof(name), "entry-%03d-%0*d", i, 20 + i % 200, 0);
		good = strcmp(names[i], name) == 0;
	}
	printf("readdir_names: %s\n", good ? "ok" : "MISMATCH");
	seekdir(d, mark);
	e = readdir(d);
	printf("seekdir: %s\n", e && strcmp(e->d_name, marked) == 0 ? "ok" : "MISMATCH");
	rewinddir(d);
	int again = 0;
	while (readdir(d) != NULL)
		again++;
	printf("rewinddir: %d\n", again);
	closedir(d);
	CHECK("rmdir_nonempty", rmdir(P("d")));
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "d/entry-%03d-%0*d", i, 20 + i % 200, 0);
		if (unlink(P(name)) != 0)
			printf("unlink %s: %s\n", name, ename(errno));
		free(names[i]);
	}
	free(names);
	CHECK("rmdir", rmdir(P("d")));
	CHECK("rmdir_gone", rmdir(P("d")));
	CHECK("rmdir_file", rmdir(P("a.txt")));
	CHECK("unlink_dir", (mkdir(P("d2"), 0755), unlink(P("d2"))));
	CHECK("rmdir_d2", rmdir(P("d2")));
}

static void names(void)
{
	struct stat st;
	CHECK("rename", rename(P("a.txt"), P("b.txt")));
	CHECK("stat_old", stat(P("a.txt"), &st));
	CHECK("stat_new", stat(P("b.txt"), &st));
	CHECK("symlink", symlink("b.txt", P("s")));
	char buf[64] = { 0 };
	printf("readlink: %zd %s\n", readlink(P("s"), buf, sizeof(buf)), buf);
	CHECK("readlink_file", readlink(P("b.txt"), buf, sizeof(buf)));
	CHECK("lstat", lstat(P("s"), &st));
	printf("lstat_is_link: %d\n", S_ISLNK(st.st_mode));
	CHECK("stat_through_link", stat(P("s"), &st));
	printf("stat_size: %lld\n", (long long)st.st_size);
	CHECK("link", link(P("b.txt"), P("h")));
	/* PORTABLE: wasmtime's path_link cannot follow a symlink (EINVAL) */
	if (!portable)
		CHECK("linkat_follow", linkat(AT_FDCWD, P("s"), AT_FDCWD, P("h2"),
		                              AT_SYMLINK_FOLLOW));
	stat(P("b.txt"), &st);
	printf("nlink: %d\n", (int)st.st_nlink);
	CHECK("link_exists", link(P("b.txt"), P("h")));
	struct timespec ts[2] = { { 300, 0 }, { 400, 0 } };
	CHECK("utimensat", utimensat(AT_FDCWD, P("s"), ts, 0));
	stat(P("b.txt"), &st);
	printf("utimensat_mtime: %lld\n", (long long)st.st_mtim.tv_sec);
	struct timespec ts2[2] = { { 500, 0 }, { 600, 0 } };
	CHECK("utimensat_nofollow", utimensat(AT_FDCWD, P("s"), ts2, AT_SYMLINK_NOFOLLOW));
	lstat(P("s"), &st);
	printf("link_mtime: %lld\n", (long long)st.st_mtim.tv_sec);
	stat(P("b.txt"), &st);
	printf("target_mtime: %lld\n", (long long)st.st_mtim.tv_sec);
	CHECK("unlink_link", unlink(P("s")));
	CHECK("unlink_h", unlink(P("h")));
	if (!portable)
		CHECK("unlink_h2", unlink(P("h2")));
	CHECK("unlink_missing", unlink(P("h2")));
	CHECK("open_missing", open(P("nope"), O_RDONLY));
	CHECK("open_excl", open(P("b.txt"), O_CREAT | O_EXCL | O_WRONLY, 0644));
	CHECK("open_dir_as_file_rw", open(root, O_RDWR));
	CHECK("open_notdir", open(P("b.txt/x"), O_RDONLY));
	CHECK("open_directory_flag", open(P("b.txt"), O_RDONLY | O_DIRECTORY));
	CHECK("open_directory_rw", open(root, O_RDWR | O_DIRECTORY));
	CHECK("open_directory_wronly", open(root, O_WRONLY | O_DIRECTORY));
	CHECK("open_directory_ro", close(open(root, O_RDONLY | O_DIRECTORY)));
}

static void escapes(void)
{
	struct stat st;
	CHECK("esc_open_dotdot", open(P("../outside.txt"), O_RDONLY));
	mkdir(P("sub"), 0755);
	CHECK("esc_open_deep", open(P("sub/../../outside.txt"), O_RDONLY));
	CHECK("esc_open_inside", open(P("sub/../b.txt"), O_RDONLY));
	CHECK("esc_create", open(P("../created.txt"), O_CREAT | O_WRONLY, 0644));
	CHECK("esc_stat", stat(P("../outside.txt"), &st));
	CHECK("esc_mkdir", mkdir(P("../newdir"), 0755));
	CHECK("esc_rename", rename(P("b.txt"), P("../stolen.txt")));
	CHECK("esc_link_in", link(P("../outside.txt"), P("hl")));
	CHECK("esc_unlink", unlink(P("../outside.txt")));
	/* symlinks pointing out can be made but not followed (PORTABLE:
	 * wasmtime refuses to make one with an absolute target, EPERM) */
	if (!portable)
		CHECK("esc_symlink_abs", symlink("/etc/passwd", P("abs")));
	CHECK("esc_symlink_up", symlink("../outside.txt", P("up")));
	if (!portable)
		CHECK("esc_follow_abs", open(P("abs"), O_RDONLY));
	CHECK("esc_follow_up", open(P("up"), O_RDONLY));
	CHECK("esc_follow_stat", stat(P("up"), &st));
	CHECK("esc_lstat_ok", lstat(P("up"), &st));
	if (!portable)
		CHECK("esc_link_follow", linkat(AT_FDCWD, P("up"), AT_FDCWD,
		                                P("hl2"), AT_SYMLINK_FOLLOW));
	CHECK("esc_chain", (symlink("up", P("chain")), open(P("chain"), O_RDONLY)));
	CHECK("esc_trunc_through_link", open(P("up"), O_WRONLY | O_TRUNC));
	if (!portable) {
		CHECK("esc_proc", symlink("/proc/self/root", P("proc")));
		CHECK("esc_proc_follow", open(P("proc/etc/passwd"), O_RDONLY));
	}
	CHECK("esc_unlink_link", unlink(P("up")));
	unlink(P("abs"));
	unlink(P("chain"));
	unlink(P("proc"));
	rmdir(P("sub"));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: wasi_fs DIR\n");
		return 2;
	}
	root = argv[1];
	portable = getenv("PORTABLE") != NULL;
	files();
	directories();
	names();
	escapes();
	printf("done\n");
	return 0;
}
