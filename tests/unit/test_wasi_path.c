/*
 * test_wasi_path.c — path_* functions and their confinement to preopens.
 *
 * Layout of each test's temporary tree (only pre/ and ro/ are preopened):
 *
 *   root/secret.txt            outside: must never be reached
 *   root/outdir/               outside
 *   root/pre/   = fd 3 "/sandbox" (read-write)
 *       file.txt "hello world", sub/, sub/inner.txt
 *       link_out -> ../secret.txt     link_abs -> /etc/passwd
 *       chain1 -> chain2 -> sub/../../secret.txt
 *       link_in -> file.txt           link_dir -> ../outdir
 *       link_proc -> /proc/self/root  link_sib -> sub/../file.txt
 *   root/ro/    = fd 4 "/ro" (read-only)
 *       data.txt "readonly", dir/
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/wasi_impl.h"
#include "proc/caps.h"

__attribute__((weak)) _Noreturn void engine_exit(engine_instance *in, int code)
{
	(void)in;
	exit(code);
}

/* A mkdtemp template under $TMPDIR (the test runner gives each binary its
 * own), or /tmp. */
static void tmp_template(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");
	snprintf(buf, len, "%s/%s-XXXXXX", t && *t ? t : "/tmp", "wisp-wasip");
}

#define MEMSZ 65536u
#define SELF ((struct Z_wasi_snapshot_preview1_instance_t *)(void *)&fx->hp)
#define FOLLOW WASI_LOOKUP_SYMLINK_FOLLOW
#define RW WASI_RIGHTS_FILE
#define RO (WASI_RIGHTS_FILE & ~(WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ALLOCATE | \
                                 WASI_RIGHT_FD_FILESTAT_SET_SIZE))

enum { A_OUT = 256, A_P1 = 1024, A_P2 = 2048, A_IOV = 3072, A_BUF = 4096 };

struct fx {
	char root[512];
	uint8_t *data;
	wasm_rt_memory_t mem;
	struct host_proc hp;
	struct caps *caps;
	struct wasi_ctx *w;
};

static char *hp(struct fx *fx, const char *rel)
{
	static char buf[4][600];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", fx->root, rel);
	return buf[i];
}

static void host_write(struct fx *fx, const char *rel, const char *text)
{
	FILE *f = fopen(hp(fx, rel), "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	tmp_template(fx->root, sizeof(fx->root));
	assert_non_null(mkdtemp(fx->root));
	host_write(fx, "secret.txt", "SECRET");
	mkdir(hp(fx, "outdir"), 0755);
	mkdir(hp(fx, "pre"), 0755);
	mkdir(hp(fx, "pre/sub"), 0755);
	mkdir(hp(fx, "ro"), 0755);
	mkdir(hp(fx, "ro/dir"), 0755);
	host_write(fx, "pre/file.txt", "hello world");
	host_write(fx, "pre/sub/inner.txt", "inner");
	host_write(fx, "ro/data.txt", "readonly");
	assert_int_equal(symlink("../secret.txt", hp(fx, "pre/link_out")), 0);
	assert_int_equal(symlink("/etc/passwd", hp(fx, "pre/link_abs")), 0);
	assert_int_equal(symlink("chain2", hp(fx, "pre/chain1")), 0);
	assert_int_equal(symlink("sub/../../secret.txt", hp(fx, "pre/chain2")), 0);
	assert_int_equal(symlink("file.txt", hp(fx, "pre/link_in")), 0);
	assert_int_equal(symlink("../outdir", hp(fx, "pre/link_dir")), 0);
	assert_int_equal(symlink("/proc/self/root", hp(fx, "pre/link_proc")), 0);
	assert_int_equal(symlink("sub/../file.txt", hp(fx, "pre/link_sib")), 0);
	fx->data = calloc(1, MEMSZ);
	fx->mem.data = fx->data;
	fx->mem.size = MEMSZ;
	fx->caps = caps_new();
	assert_int_equal(caps_add_dir(fx->caps, hp(fx, "pre"), "/sandbox", false), 0);
	assert_int_equal(caps_add_dir(fx->caps, hp(fx, "ro"), "/ro", true), 0);
	for (int i = 0; i < 3; i++)
		fx->caps->stdio[i] = CAP_STDIO_CLOSED;
	char err[256];
	assert_int_equal(wasi_ctx_new(fx->caps, NULL, &fx->w, err, sizeof(err)), 0);
	fx->hp.mem = &fx->mem;
	fx->hp.wasi = fx->w;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	/* nothing outside the preopens was touched */
	char got[16] = { 0 };
	int h = open(hp(fx, "secret.txt"), O_RDONLY);
	assert_true(h >= 0);
	assert_int_equal(read(h, got, sizeof(got)), 6);
	close(h);
	assert_string_equal(got, "SECRET");
	struct stat st;
	assert_int_equal(stat(hp(fx, "secret.txt"), &st), 0);
	assert_int_equal(st.st_nlink, 1);
	wasi_ctx_free(fx->w);
	caps_unref(fx->caps);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
	assert_int_equal(system(cmd), 0);
	free(fx->data);
	free(fx);
	return 0;
}

/* Put a path at a guest address; returns its length. */
static uint32_t P(struct fx *fx, uint32_t a, const char *s)
{
	memcpy(fx->data + a, s, strlen(s));
	return (uint32_t)strlen(s);
}

static uint32_t popen_(struct fx *fx, uint32_t dir, uint32_t lookup,
                       const char *path, uint32_t oflags, uint64_t rights,
                       uint32_t *fd)
{
	uint32_t n = P(fx, A_P1, path);
	wasi_st32(fx->data + A_OUT, 0xdeadbeef);
	uint32_t r = Z_wasi_snapshot_preview1Z_path_open(SELF, dir, lookup, A_P1, n,
	                                                  oflags, rights, WASI_RIGHTS_ALL,
	                                                  0, A_OUT);
	if (fd)
		*fd = wasi_ld32(fx->data + A_OUT);
	return r;
}

static uint32_t stat_(struct fx *fx, uint32_t dir, uint32_t lookup,
                      const char *path)
{
	uint32_t n = P(fx, A_P1, path);
	return Z_wasi_snapshot_preview1Z_path_filestat_get(SELF, dir, lookup, A_P1, n, A_BUF);
}

static uint32_t mkdir_(struct fx *fx, uint32_t dir, const char *path)
{
	return Z_wasi_snapshot_preview1Z_path_create_directory(SELF, dir, A_P1, P(fx, A_P1, path));
}

static uint32_t rmdir_(struct fx *fx, uint32_t dir, const char *path)
{
	return Z_wasi_snapshot_preview1Z_path_remove_directory(SELF, dir, A_P1, P(fx, A_P1, path));
}

static uint32_t unlink_(struct fx *fx, uint32_t dir, const char *path)
{
	return Z_wasi_snapshot_preview1Z_path_unlink_file(SELF, dir, A_P1, P(fx, A_P1, path));
}

static uint32_t rename_(struct fx *fx, uint32_t d1, const char *a, uint32_t d2,
                        const char *b)
{
	uint32_t n1 = P(fx, A_P1, a), n2 = P(fx, A_P2, b);
	return Z_wasi_snapshot_preview1Z_path_rename(SELF, d1, A_P1, n1, d2, A_P2, n2);
}

static uint32_t link_(struct fx *fx, uint32_t d1, uint32_t flags, const char *a,
                      uint32_t d2, const char *b)
{
	uint32_t n1 = P(fx, A_P1, a), n2 = P(fx, A_P2, b);
	return Z_wasi_snapshot_preview1Z_path_link(SELF, d1, flags, A_P1, n1, d2, A_P2, n2);
}

static uint32_t symlink_(struct fx *fx, const char *target, uint32_t dir,
                         const char *path)
{
	uint32_t n1 = P(fx, A_P1, target), n2 = P(fx, A_P2, path);
	return Z_wasi_snapshot_preview1Z_path_symlink(SELF, A_P1, n1, dir, A_P2, n2);
}

static uint32_t readlink_(struct fx *fx, uint32_t dir, const char *path,
                          uint32_t buflen)
{
	uint32_t n = P(fx, A_P1, path);
	return Z_wasi_snapshot_preview1Z_path_readlink(SELF, dir, A_P1, n, A_BUF, buflen, A_OUT);
}

static uint32_t times_(struct fx *fx, uint32_t dir, uint32_t lookup,
                       const char *path, uint64_t mtim)
{
	uint32_t n = P(fx, A_P1, path);
	return Z_wasi_snapshot_preview1Z_path_filestat_set_times(SELF, dir, lookup, A_P1, n,
	                                                          0, mtim, WASI_FST_MTIM);
}

static bool host_exists(struct fx *fx, const char *rel)
{
	struct stat st;
	return lstat(hp(fx, rel), &st) == 0;
}

static void open_inside(void **state)
{
	struct fx *fx = *state;
	uint32_t fd;
	assert_int_equal(popen_(fx, 3, FOLLOW, "file.txt", 0, RO, &fd), 0);
	wasi_st32(fx->data + A_IOV, A_BUF);
	wasi_st32(fx->data + A_IOV + 4, 64);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_read(SELF, fd, A_IOV, 1, A_OUT), 0);
	assert_int_equal(wasi_ld32(fx->data + A_OUT), 11);
	assert_memory_equal(fx->data + A_BUF, "hello world", 11);
	/* ".." that stays inside, symlinks that stay inside */
	assert_int_equal(popen_(fx, 3, FOLLOW, "sub/../file.txt", 0, RO, NULL), 0);
	assert_int_equal(popen_(fx, 3, FOLLOW, "./sub/./inner.txt", 0, RO, NULL), 0);
	assert_int_equal(popen_(fx, 3, FOLLOW, "link_in", 0, RO, NULL), 0);
	assert_int_equal(popen_(fx, 3, FOLLOW, "link_sib", 0, RO, NULL), 0);
	/* directories, and opening relative to an opened directory */
	uint32_t dfd;
	assert_int_equal(popen_(fx, 3, FOLLOW, "sub", WASI_O_DIRECTORY,
	                        WASI_RIGHTS_DIR, &dfd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, dfd, A_BUF), 0);
	assert_int_equal(fx->data[A_BUF], WASI_FILETYPE_DIRECTORY);
	assert_int_equal(popen_(fx, dfd, FOLLOW, "inner.txt", 0, RO, NULL), 0);
	assert_int_equal(popen_(fx, dfd, FOLLOW, "../file.txt", 0, RO, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(popen_(fx, 3, FOLLOW, "file.txt", WASI_O_DIRECTORY, RO, NULL), WASI_ENOTDIR);
	/* not following a final symlink */
	assert_int_equal(popen_(fx, 3, 0, "link_in", 0, RO, NULL), WASI_ELOOP);
	/* plain errors */
	assert_int_equal(popen_(fx, 3, FOLLOW, "missing", 0, RO, NULL), WASI_ENOENT);
	assert_int_equal(popen_(fx, 3, FOLLOW, "", 0, RO, NULL), WASI_ENOENT);
	assert_int_equal(popen_(fx, 3, FOLLOW, "file.txt", WASI_O_CREAT | WASI_O_EXCL, RW, NULL), WASI_EEXIST);
	assert_int_equal(popen_(fx, 3, FOLLOW, "file.txt", 0x10, RO, NULL), WASI_EINVAL);
	assert_int_equal(popen_(fx, 9, FOLLOW, "file.txt", 0, RO, NULL), WASI_EBADF);
	assert_int_equal(popen_(fx, fd, FOLLOW, "x", 0, RO, NULL), WASI_ENOTCAPABLE);
	/* new fd's rights never exceed the type's */
	assert_int_equal(popen_(fx, 3, FOLLOW, "file.txt", 0, WASI_RIGHTS_ALL, &fd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, fd, A_BUF), 0);
	assert_int_equal(wasi_ld64(fx->data + A_BUF + 8), RW);
}

static void open_escapes(void **state)
{
	struct fx *fx = *state;
	static const char *bad[] = {
		"..", "../secret.txt", "/etc/passwd", "/", "./sub/../../secret.txt",
		"sub/../../pre/file.txt", "link_out", "link_abs", "chain1",
		"chain2", "link_dir/x", "link_proc/etc/passwd",
		"/proc/self/root/etc/passwd", "/proc/self/fd/0",
		"link_dir", "sub/../../../../../../etc/passwd",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t r = popen_(fx, 3, FOLLOW, bad[i], 0, RO, NULL);
		if (r != WASI_ENOTCAPABLE)
			fail_msg("path_open(%s) = %u, want ENOTCAPABLE", bad[i], r);
		r = stat_(fx, 3, FOLLOW, bad[i]);
		if (r != WASI_ENOTCAPABLE)
			fail_msg("path_filestat_get(%s) = %u, want ENOTCAPABLE", bad[i], r);
	}
	/* creating through an escaping path never creates outside */
	assert_int_equal(popen_(fx, 3, FOLLOW, "../created", WASI_O_CREAT, RW, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(popen_(fx, 3, FOLLOW, "link_dir/created", WASI_O_CREAT, RW, NULL), WASI_ENOTCAPABLE);
	assert_false(host_exists(fx, "created"));
	assert_false(host_exists(fx, "outdir/created"));
	/* truncating through a symlink to the secret */
	assert_int_equal(popen_(fx, 3, FOLLOW, "link_out", WASI_O_TRUNC, RW, NULL), WASI_ENOTCAPABLE);
	/* embedded NUL; out-of-bounds and wrapping path pointers */
	memcpy(fx->data + A_P1, "file.txt\0x", 10);
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_open(SELF, 3, 0, A_P1, 10, 0, RO, 0, 0, A_OUT), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_open(SELF, 3, 0, MEMSZ - 4, 5, 0, RO, 0, 0, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_open(SELF, 3, 0, 0xfffffff0u, 0x20, 0, RO, 0, 0, A_OUT), WASI_EFAULT);
	P(fx, A_P1, "file.txt");
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_open(SELF, 3, 0, A_P1, 8, 0, RO, 0, 0, MEMSZ - 2), WASI_EFAULT);
}

static void filestat(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(stat_(fx, 3, FOLLOW, "file.txt"), 0);
	assert_int_equal(fx->data[A_BUF + 16], WASI_FILETYPE_REGULAR_FILE);
	assert_int_equal(wasi_ld64(fx->data + A_BUF + 32), 11);
	struct stat st;
	assert_int_equal(stat(hp(fx, "pre/file.txt"), &st), 0);
	assert_int_equal(wasi_ld64(fx->data + A_BUF + 8), st.st_ino);
	assert_int_equal(wasi_ld64(fx->data + A_BUF), st.st_dev);
	/* without follow a symlink is itself, even one pointing outside */
	assert_int_equal(stat_(fx, 3, 0, "link_out"), 0);
	assert_int_equal(fx->data[A_BUF + 16], WASI_FILETYPE_SYMBOLIC_LINK);
	assert_int_equal(stat_(fx, 3, 0, "link_abs"), 0);
	assert_int_equal(stat_(fx, 3, FOLLOW, "link_in"), 0);
	assert_int_equal(fx->data[A_BUF + 16], WASI_FILETYPE_REGULAR_FILE);
	assert_int_equal(stat_(fx, 3, FOLLOW, "sub/.."), 0);
	assert_int_equal(fx->data[A_BUF + 16], WASI_FILETYPE_DIRECTORY);
	assert_int_equal(stat_(fx, 3, FOLLOW, "."), 0);
	assert_int_equal(stat_(fx, 3, FOLLOW, "nope"), WASI_ENOENT);
	assert_int_equal(stat_(fx, 3, FOLLOW, "file.txt/x"), WASI_ENOTDIR);
	P(fx, A_P1, "file.txt");
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_filestat_get(SELF, 3, 0, A_P1, 8, MEMSZ - 63), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_filestat_get(SELF, 3, 0, MEMSZ, 1, A_BUF), WASI_EFAULT);
}

static void directories(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(mkdir_(fx, 3, "newdir"), 0);
	assert_true(host_exists(fx, "pre/newdir"));
	assert_int_equal(mkdir_(fx, 3, "newdir"), WASI_EEXIST);
	assert_int_equal(mkdir_(fx, 3, "newdir/deeper/"), 0);
	assert_int_equal(mkdir_(fx, 3, "missing/x"), WASI_ENOENT);
	assert_int_equal(rmdir_(fx, 3, "newdir"), WASI_ENOTEMPTY);
	assert_int_equal(rmdir_(fx, 3, "newdir/deeper/"), 0);
	assert_int_equal(rmdir_(fx, 3, "newdir"), 0);
	assert_false(host_exists(fx, "pre/newdir"));
	assert_int_equal(rmdir_(fx, 3, "file.txt"), WASI_ENOTDIR);
	/* escapes */
	assert_int_equal(mkdir_(fx, 3, "../made"), WASI_ENOTCAPABLE);
	assert_int_equal(mkdir_(fx, 3, "link_dir/made"), WASI_ENOTCAPABLE);
	assert_int_equal(mkdir_(fx, 3, "/tmp/made"), WASI_ENOTCAPABLE);
	assert_int_equal(mkdir_(fx, 3, "sub/.."), WASI_ENOTCAPABLE);
	assert_int_equal(mkdir_(fx, 3, ".."), WASI_ENOTCAPABLE);
	assert_false(host_exists(fx, "made"));
	assert_false(host_exists(fx, "outdir/made"));
	assert_int_equal(rmdir_(fx, 3, "../outdir"), WASI_ENOTCAPABLE);
	assert_int_equal(rmdir_(fx, 3, ".."), WASI_ENOTCAPABLE);
	assert_int_equal(rmdir_(fx, 3, "sub/../.."), WASI_ENOTCAPABLE);
	/* a trailing slash would make the kernel follow link_dir outside */
	assert_int_equal(rmdir_(fx, 3, "link_dir/"), WASI_ENOTCAPABLE);
	assert_int_equal(rmdir_(fx, 3, "link_dir"), WASI_ENOTDIR);
	assert_true(host_exists(fx, "outdir"));
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_create_directory(SELF, 3, MEMSZ - 1, 2), WASI_EFAULT);
	assert_int_equal(mkdir_(fx, 42, "x"), WASI_EBADF);
}

static void unlink_files(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(unlink_(fx, 3, "../secret.txt"), WASI_ENOTCAPABLE);
	assert_int_equal(unlink_(fx, 3, "link_dir/../secret.txt"), WASI_ENOTCAPABLE);
	assert_int_equal(unlink_(fx, 3, "/etc/passwd"), WASI_ENOTCAPABLE);
	/* unlinking a symlink removes the link, not its target */
	assert_int_equal(unlink_(fx, 3, "link_out"), 0);
	assert_false(host_exists(fx, "pre/link_out"));
	assert_int_equal(unlink_(fx, 3, "sub/inner.txt"), 0);
	assert_int_equal(unlink_(fx, 3, "sub/inner.txt"), WASI_ENOENT);
	assert_int_equal(unlink_(fx, 3, "sub"), WASI_EISDIR);
	assert_int_equal(unlink_(fx, 3, "file.txt/"), WASI_ENOTDIR);
	assert_true(host_exists(fx, "pre/file.txt"));
}

static void renames(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(rename_(fx, 3, "file.txt", 3, "sub/moved.txt"), 0);
	assert_true(host_exists(fx, "pre/sub/moved.txt"));
	assert_false(host_exists(fx, "pre/file.txt"));
	assert_int_equal(rename_(fx, 3, "sub/moved.txt", 3, "../stolen.txt"), WASI_ENOTCAPABLE);
	assert_int_equal(rename_(fx, 3, "sub/moved.txt", 3, "link_dir/stolen.txt"), WASI_ENOTCAPABLE);
	assert_int_equal(rename_(fx, 3, "../secret.txt", 3, "got.txt"), WASI_ENOTCAPABLE);
	assert_int_equal(rename_(fx, 3, "link_dir/", 3, "x"), WASI_ENOTCAPABLE);
	assert_false(host_exists(fx, "stolen.txt"));
	assert_false(host_exists(fx, "outdir/stolen.txt"));
	/* renaming a symlink moves the link only */
	assert_int_equal(rename_(fx, 3, "link_abs", 3, "sub/link_moved"), 0);
	assert_int_equal(popen_(fx, 3, FOLLOW, "sub/link_moved", 0, RO, NULL), WASI_ENOTCAPABLE);
	/* out of the read-only preopen, or into it */
	assert_int_equal(rename_(fx, 4, "data.txt", 3, "taken.txt"), WASI_ENOTCAPABLE);
	assert_int_equal(rename_(fx, 3, "sub/moved.txt", 4, "put.txt"), WASI_ENOTCAPABLE);
	assert_true(host_exists(fx, "ro/data.txt"));
	assert_int_equal(rename_(fx, 3, "nope", 3, "x"), WASI_ENOENT);
	assert_int_equal(rename_(fx, 3, "sub/moved.txt", 9, "x"), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_rename(SELF, 3, A_P1, 3, 3, MEMSZ, 1), WASI_EFAULT);
}

static void links(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(link_(fx, 3, 0, "file.txt", 3, "hard.txt"), 0);
	struct stat st;
	assert_int_equal(stat(hp(fx, "pre/file.txt"), &st), 0);
	assert_int_equal(st.st_nlink, 2);
	/* hard links to outside files */
	assert_int_equal(link_(fx, 3, 0, "../secret.txt", 3, "h1"), WASI_ENOTCAPABLE);
	assert_int_equal(link_(fx, 3, FOLLOW, "link_out", 3, "h2"), WASI_ENOTCAPABLE);
	assert_int_equal(link_(fx, 3, FOLLOW, "chain1", 3, "h3"), WASI_ENOTCAPABLE);
	assert_int_equal(link_(fx, 3, FOLLOW, "link_abs", 3, "h4"), WASI_ENOTCAPABLE);
	assert_int_equal(link_(fx, 3, 0, "file.txt", 3, "../h5"), WASI_ENOTCAPABLE);
	assert_false(host_exists(fx, "pre/h1") || host_exists(fx, "pre/h2") ||
	             host_exists(fx, "pre/h3") || host_exists(fx, "pre/h4") ||
	             host_exists(fx, "h5"));
	/* without follow, the symlink itself is linked (harmless) */
	assert_int_equal(link_(fx, 3, 0, "link_out", 3, "h6"), 0);
	assert_int_equal(popen_(fx, 3, FOLLOW, "h6", 0, RO, NULL), WASI_ENOTCAPABLE);
	/* with follow, a symlink that stays inside gives its target,
	 * even when it goes through a sibling of its own directory */
	assert_int_equal(link_(fx, 3, FOLLOW, "link_sib", 3, "sub/h7"), 0);
	assert_int_equal(lstat(hp(fx, "pre/sub/h7"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_nlink, 3);
	/* the read-only preopen on either side */
	assert_int_equal(link_(fx, 4, 0, "data.txt", 3, "h8"), WASI_ENOTCAPABLE);
	assert_int_equal(link_(fx, 3, 0, "file.txt", 4, "h9"), WASI_ENOTCAPABLE);
	assert_int_equal(link_(fx, 3, 0, "file.txt", 3, "hard.txt"), WASI_EEXIST);
	assert_int_equal(link_(fx, 3, 0, "sub", 3, "subdir_link"), WASI_EPERM);
}

static void symlinks_and_readlink(void **state)
{
	struct fx *fx = *state;
	/* escaping targets may be created, never followed */
	assert_int_equal(symlink_(fx, "/etc/shadow", 3, "new_abs"), 0);
	assert_int_equal(symlink_(fx, "../../../secret.txt", 3, "sub/new_up"), 0);
	assert_int_equal(popen_(fx, 3, FOLLOW, "new_abs", 0, RO, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(popen_(fx, 3, FOLLOW, "sub/new_up", 0, RO, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(symlink_(fx, "file.txt", 3, "good"), 0);
	assert_int_equal(popen_(fx, 3, FOLLOW, "good", 0, RO, NULL), 0);
	assert_int_equal(symlink_(fx, "x", 3, "good"), WASI_EEXIST);
	assert_int_equal(symlink_(fx, "x", 3, "../evil"), WASI_ENOTCAPABLE);
	assert_int_equal(symlink_(fx, "x", 3, "link_dir/evil"), WASI_ENOTCAPABLE);
	assert_false(host_exists(fx, "evil") || host_exists(fx, "outdir/evil"));
	/* readlink */
	assert_int_equal(readlink_(fx, 3, "new_abs", 64), 0);
	assert_int_equal(wasi_ld32(fx->data + A_OUT), 11);
	assert_memory_equal(fx->data + A_BUF, "/etc/shadow", 11);
	assert_int_equal(readlink_(fx, 3, "new_abs", 4), 0);
	assert_int_equal(wasi_ld32(fx->data + A_OUT), 4);
	assert_int_equal(readlink_(fx, 3, "file.txt", 64), WASI_EINVAL);
	assert_int_equal(readlink_(fx, 3, "../outdir", 64), WASI_ENOTCAPABLE);
	assert_int_equal(readlink_(fx, 3, "link_dir/", 64), WASI_ENOTCAPABLE);
	/* a link inside the read-only preopen can be read */
	assert_int_equal(symlink("data.txt", hp(fx, "ro/l")), 0);
	assert_int_equal(readlink_(fx, 4, "l", 64), 0);
	assert_int_equal(wasi_ld32(fx->data + A_OUT), 8);
	P(fx, A_P1, "new_abs");
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_readlink(SELF, 3, A_P1, 7, MEMSZ - 4, 5, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_readlink(SELF, 3, A_P1, 7, A_BUF, 5, MEMSZ - 1), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_symlink(SELF, MEMSZ - 1, 5, 3, A_P2, 1), WASI_EFAULT);
}

static void set_times(void **state)
{
	struct fx *fx = *state;
	struct stat st;
	assert_int_equal(times_(fx, 3, FOLLOW, "file.txt", 123000000000ull), 0);
	assert_int_equal(stat(hp(fx, "pre/file.txt"), &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 123);
	/* through a symlink inside: the target changes */
	assert_int_equal(times_(fx, 3, FOLLOW, "link_in", 456000000000ull), 0);
	assert_int_equal(stat(hp(fx, "pre/file.txt"), &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 456);
	/* without follow: the link itself */
	assert_int_equal(times_(fx, 3, 0, "link_out", 789000000000ull), 0);
	assert_int_equal(lstat(hp(fx, "pre/link_out"), &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 789);
	/* never the outside target */
	assert_int_equal(times_(fx, 3, FOLLOW, "link_out", 1000000000ull), WASI_ENOTCAPABLE);
	assert_int_equal(times_(fx, 3, FOLLOW, "../secret.txt", 1000000000ull), WASI_ENOTCAPABLE);
	assert_int_equal(stat(hp(fx, "secret.txt"), &st), 0);
	assert_true(st.st_mtim.tv_sec > 1000);
	P(fx, A_P1, "file.txt");
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_filestat_set_times(SELF, 3, 0, A_P1, 8, 0, 0, WASI_FST_ATIM | WASI_FST_ATIM_NOW), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_filestat_set_times(SELF, 3, 0, A_P1, 8, 0, 0, WASI_FST_ATIM_NOW | WASI_FST_MTIM_NOW), 0);
}

static void read_only_preopen(void **state)
{
	struct fx *fx = *state;
	uint32_t fd;
	/* reading is fine */
	assert_int_equal(popen_(fx, 4, FOLLOW, "data.txt", 0, RO, &fd), 0);
	wasi_st32(fx->data + A_IOV, A_BUF);
	wasi_st32(fx->data + A_IOV + 4, 64);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_read(SELF, fd, A_IOV, 1, A_OUT), 0);
	assert_int_equal(wasi_ld32(fx->data + A_OUT), 8);
	assert_int_equal(stat_(fx, 4, FOLLOW, "data.txt"), 0);
	/* the read-only fd cannot write, truncate or touch */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, fd, A_IOV, 1, A_OUT), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_pwrite(SELF, fd, A_IOV, 1, 0, A_OUT), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_size(SELF, fd, 0), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_times(SELF, fd, 0, 0, WASI_FST_MTIM_NOW), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_allocate(SELF, fd, 0, 100), WASI_ENOTCAPABLE);
	/* nor can it regain rights */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(SELF, fd, RW, 0), WASI_ENOTCAPABLE);
	/* opens that would write */
	assert_int_equal(popen_(fx, 4, FOLLOW, "data.txt", 0, RW, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(popen_(fx, 4, FOLLOW, "data.txt", 0, WASI_RIGHT_FD_WRITE, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(popen_(fx, 4, FOLLOW, "data.txt", WASI_O_TRUNC, RO, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(popen_(fx, 4, FOLLOW, "new.txt", WASI_O_CREAT, RO, NULL), WASI_ENOTCAPABLE);
	P(fx, A_P1, "data.txt");
	assert_int_equal(Z_wasi_snapshot_preview1Z_path_open(SELF, 4, 0, A_P1, 8, 0, RO, 0, WASI_FDFLAG_APPEND, A_OUT), WASI_ENOTCAPABLE);
	/* every mutation of the tree */
	assert_int_equal(mkdir_(fx, 4, "d"), WASI_ENOTCAPABLE);
	assert_int_equal(rmdir_(fx, 4, "dir"), WASI_ENOTCAPABLE);
	assert_int_equal(unlink_(fx, 4, "data.txt"), WASI_ENOTCAPABLE);
	assert_int_equal(rename_(fx, 4, "data.txt", 4, "x"), WASI_ENOTCAPABLE);
	assert_int_equal(symlink_(fx, "data.txt", 4, "s"), WASI_ENOTCAPABLE);
	assert_int_equal(link_(fx, 4, 0, "data.txt", 4, "h"), WASI_ENOTCAPABLE);
	assert_int_equal(times_(fx, 4, FOLLOW, "data.txt", 5), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_times(SELF, 4, 0, 0, WASI_FST_MTIM_NOW), WASI_ENOTCAPABLE);
	/* a directory opened below it is read-only too, whatever it asks */
	uint32_t dfd;
	assert_int_equal(popen_(fx, 4, FOLLOW, "dir", WASI_O_DIRECTORY, WASI_RIGHTS_DIR, &dfd), 0);
	assert_int_equal(popen_(fx, dfd, FOLLOW, "f", WASI_O_CREAT, RW, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(mkdir_(fx, dfd, "d"), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, dfd, A_BUF), 0);
	assert_int_equal(wasi_ld64(fx->data + A_BUF + 8) & WASI_RIGHTS_WRITING, 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, 4, A_BUF), 0);
	assert_int_equal(wasi_ld64(fx->data + A_BUF + 8) & WASI_RIGHT_PATH_CREATE_FILE, 0);
	/* even after renumbering it over a writable slot */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_renumber(SELF, 4, 3), 0);
	assert_int_equal(mkdir_(fx, 3, "d"), WASI_ENOTCAPABLE);
	assert_false(host_exists(fx, "ro/d") || host_exists(fx, "ro/new.txt") ||
	             host_exists(fx, "ro/x") || host_exists(fx, "ro/s") ||
	             host_exists(fx, "ro/h") || host_exists(fx, "ro/dir/f"));
	assert_true(host_exists(fx, "ro/dir"));
	struct stat st;
	assert_int_equal(stat(hp(fx, "ro/data.txt"), &st), 0);
	assert_int_equal(st.st_size, 8);
}

static void missing_rights(void **state)
{
	struct fx *fx = *state;
	uint32_t dfd;
	/* a directory fd limited to opening and reading */
	assert_int_equal(popen_(fx, 3, FOLLOW, "sub", WASI_O_DIRECTORY,
	                        WASI_RIGHT_PATH_OPEN | WASI_RIGHT_FD_READDIR, &dfd), 0);
	assert_int_equal(mkdir_(fx, dfd, "d"), WASI_ENOTCAPABLE);
	assert_int_equal(unlink_(fx, dfd, "inner.txt"), WASI_ENOTCAPABLE);
	assert_int_equal(popen_(fx, dfd, FOLLOW, "new", WASI_O_CREAT, RW, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(popen_(fx, dfd, FOLLOW, "inner.txt", WASI_O_TRUNC, RW, NULL), WASI_ENOTCAPABLE);
	assert_int_equal(stat_(fx, dfd, FOLLOW, "inner.txt"), WASI_ENOTCAPABLE);
	assert_int_equal(popen_(fx, dfd, FOLLOW, "inner.txt", 0, RO, NULL), 0);
	assert_true(host_exists(fx, "pre/sub/inner.txt"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(open_inside), T(open_escapes), T(filestat), T(directories),
		T(unlink_files), T(renames), T(links), T(symlinks_and_readlink),
		T(set_times), T(read_only_preopen), T(missing_rights),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
