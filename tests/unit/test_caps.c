/*
 * test_caps.c — capability sets (src/proc/caps.c): directories opened once
 * and shared by narrowed sets, narrowing that only lowers, stdio mapping,
 * limits and quotas.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc/caps.h"

static void tmp_dir(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");
	snprintf(buf, len, "%s/%s-XXXXXX", t && *t ? t : "/tmp", "wisp-caps");
	assert_non_null(mkdtemp(buf));
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* A directory is opened when added; a narrowed set refers to the same fd,
 * which only the set that opened it closes, when its last reference goes. */
static void dirs_are_opened_once_and_shared(void **state)
{
	(void)state;
	char a[512], b[512], moved[600];
	tmp_dir(a, sizeof(a));
	tmp_dir(b, sizeof(b));
	struct caps *root = caps_new();
	assert_int_equal(caps_add_dir(root, a, "/a", false), 0);
	assert_int_equal(caps_add_dir(root, b, "/b", false), 0);
	int fa = root->dirs[0].fd, fb = root->dirs[1].fd;
	assert_true(root->dirs[0].owned);
	/* the fd names the directory, not the path: move it, it follows */
	snprintf(moved, sizeof(moved), "%s.moved", a);
	assert_int_equal(rename(a, moved), 0);
	struct stat st1, st2;
	assert_int_equal(fstat(fa, &st1), 0);
	assert_int_equal(stat(moved, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);

	struct caps *child = caps_derive(root);
	assert_non_null(child);
	assert_int_equal(child->ndirs, 2);
	assert_int_equal(child->dirs[0].fd, fa);
	assert_false(child->dirs[0].owned);
	/* dropping keeps the order of the others (preopen numbering) */
	caps_drop_dir(child, 0);
	assert_int_equal(child->ndirs, 1);
	assert_int_equal(child->dirs[0].fd, fb);
	assert_string_equal(child->dirs[0].guest, "/b");
	assert_true(fd_open(fa));          /* the child did not own it */
	caps_unref(root);                  /* the child still holds the root */
	assert_true(fd_open(fa) && fd_open(fb));
	caps_unref(child);                 /* last reference: closed now */
	assert_false(fd_open(fa));
	assert_false(fd_open(fb));
	rmdir(moved);
	rmdir(b);
}

static void add_dir_refuses_what_is_not_a_directory(void **state)
{
	(void)state;
	struct caps *c = caps_new();
	assert_int_equal(caps_add_dir(c, "/nonexistent/wisp", "/x", false), -ENOENT);
	assert_int_equal(caps_add_dir(c, "/dev/null", "/x", false), -ENOTDIR);
	assert_int_equal(c->ndirs, 0);
	caps_unref(c);
}

/* A guest name keeps no trailing slash (a guest's libc would match "d/x"
 * against "d/" but not "d" itself); "/" stays "/". */
static void guest_names_lose_trailing_slashes(void **state)
{
	(void)state;
	assert_int_equal(caps_dir_name_len("/data/", 6), 5);
	assert_int_equal(caps_dir_name_len("data//", 6), 4);
	assert_int_equal(caps_dir_name_len("/data", 5), 5);
	assert_int_equal(caps_dir_name_len("/", 1), 1);
	assert_int_equal(caps_dir_name_len("///", 3), 1);
	assert_int_equal(caps_dir_name_len(".", 1), 1);
	struct caps *c = caps_new();
	assert_int_equal(caps_add_dir(c, "/tmp", "/scratch//", false), 0);
	assert_string_equal(c->dirs[0].guest, "/scratch");
	caps_unref(c);
}

static void stdio_mapping(void **state)
{
	(void)state;
	struct caps *c = caps_new();
	c->stdio[1] = CAP_STDIO_NULL;
	c->stdio[2] = CAP_STDIO_CLOSED;
	assert_int_equal(caps_finish(c), 0);
	assert_true(c->null_fd >= 0);
	bool parks;
	assert_int_equal(caps_stdio_fd(c, 1, NULL, &parks), c->null_fd);
	assert_false(parks);
	assert_int_equal(caps_stdio_fd(c, 2, NULL, &parks), -1);
	const int inherit[3] = { 40, 41, 42 };
	assert_int_equal(caps_stdio_fd(c, 0, inherit, &parks), 40);
	assert_false(parks);
	caps_unref(c);
}

static void limits_are_copied_and_default(void **state)
{
	(void)state;
	struct caps *root = caps_new();
	assert_int_equal(root->max_fds, CAPS_DEFAULT_MAX_FDS);
	assert_int_equal(root->max_memory, UINT64_MAX);
	root->max_fds = 64;
	root->max_memory = 1 << 20;
	struct caps *child = caps_derive(root);
	assert_int_equal(child->max_fds, 64);
	assert_int_equal(child->max_memory, 1 << 20);
	/* a narrowed set's process quota is its own; its parents' apply too */
	root->max_processes = 1;
	assert_true(caps_charge(child));
	assert_false(caps_charge(child));   /* the root's quota is full */
	caps_uncharge(child);
	assert_true(caps_charge(child));
	caps_uncharge(child);
	caps_unref(child);
	caps_unref(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dirs_are_opened_once_and_shared),
		cmocka_unit_test(add_dir_refuses_what_is_not_a_directory),
		cmocka_unit_test(guest_names_lose_trailing_slashes),
		cmocka_unit_test(stdio_mapping),
		cmocka_unit_test(limits_are_copied_and_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
