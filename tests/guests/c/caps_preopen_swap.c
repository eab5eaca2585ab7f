/*
 * caps_preopen_swap — a hostile guest given nested preopens
 * (--dir OUTER::/outer and --dir[-ro] OUTER/inner::/inner). It moves
 * /outer/inner away and puts something else at that path, then spawns a
 * child and has it use /inner: if the runtime opened preopens again by host
 * path for the child, the child would reach whatever now stands there.
 *
 *   caps_preopen_swap swap OUTSIDE      inner -> symlink to "/"
 *   caps_preopen_swap narrowed OUTSIDE  the same, child spawned with a set
 *                                       narrowed by wisp_caps (/outer
 *                                       dropped, /inner read-only)
 *   caps_preopen_swap nested OUTSIDE    inner -> a fresh, empty directory
 *
 * OUTSIDE is a host directory outside both preopens (absolute): the child
 * tries to create a file there through /inner and through the swapped path.
 * Each probe prints "name: ok", "name: <errno name>", or for `marker` the
 * content of /inner/marker as the child sees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wisp/guest.h>

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case ENOENT: return "ENOENT";
	case ENOTCAPABLE: return "ENOTCAPABLE";
	case EACCES: return "EACCES";
	case ENOTDIR: return "ENOTDIR";
	case ELOOP: return "ELOOP";
	case EXDEV: return "EXDEV";
	case EPERM: return "EPERM";
	case EBADF: return "EBADF";
	default: return "other";
	}
}

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags, 0644);
	if (fd < 0)
		return errno;
	if (flags & O_CREAT)
		write(fd, "pwned\n", 6);
	close(fd);
	return 0;
}

/* The child: every way to the host's root or to OUTSIDE must fail; the
 * directory /inner was opened on must still be what it sees. */
static void probe(const void *arg, uint32_t len)
{
	char outside[512], path[700];
	snprintf(outside, sizeof(outside), "%.*s", (int)len, (const char *)arg);
	printf("read root via /inner: %s\n",
	       ename(try_open("/inner/etc/hostname", O_RDONLY)));
	snprintf(path, sizeof(path), "/inner%s/pwned-inner", outside);
	printf("write outside via /inner: %s\n",
	       ename(try_open(path, O_WRONLY | O_CREAT)));
	printf("read root via swapped path: %s\n",
	       ename(try_open("/outer/inner/etc/hostname", O_RDONLY)));
	snprintf(path, sizeof(path), "/outer/inner%s/pwned-outer", outside);
	printf("write outside via swapped path: %s\n",
	       ename(try_open(path, O_WRONLY | O_CREAT)));
	printf("dotdot out of /inner: %s\n",
	       ename(try_open("/inner/../../etc/hostname", O_RDONLY)));
	char buf[64] = "";
	int fd = open("/inner/marker", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		close(fd);
	} else {
		snprintf(buf, sizeof(buf), "%s", ename(errno));
	}
	printf("marker: %s\n", buf);
	fflush(stdout);
}

static void wait_down(uint64_t ref)
{
	struct wisp_msg_info info;
	char b[64];
	wisp_receive(&ref, 1, WISP_INFINITY, b, sizeof(b), &info);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	const char *mode = argv[1], *outside = argv[2];
	/* The swap, done by this process through its own (legitimate)
	 * write access to /outer. */
	printf("rename inner away: %s\n",
	       ename(rename("/outer/inner", "/outer/moved") == 0 ? 0 : errno));
	if (!strcmp(mode, "nested")) {
		printf("new inner: %s\n",
		       ename(mkdir("/outer/inner", 0755) == 0 ? 0 : errno));
	} else {
		printf("symlink inner -> /: %s\n",
		       ename(symlink("/", "/outer/inner") == 0 ? 0 : errno));
	}
	fflush(stdout);
	uint32_t len = (uint32_t)strlen(outside);
	struct wisp_spawned s;
	int rc;
	if (!strcmp(mode, "narrowed")) {
		int32_t h;
		wisp_caps_new(&h);
		wisp_caps_drop_dir(h, "/outer", 6);
		wisp_caps_read_only(h, "/inner", 6);
		rc = wisp_spawn_with(h, (uint32_t)(uintptr_t)probe, outside, len,
		                     WISP_SPAWN_MONITOR, &s);
	} else {
		rc = wisp_spawn_raw((uint32_t)(uintptr_t)probe, outside, len,
		                    WISP_SPAWN_MONITOR, &s);
	}
	if (rc != WISP_OK) {
		printf("spawn: %d\n", rc);
		return 1;
	}
	wait_down(s.monitor);
	return 0;
}
