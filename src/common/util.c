/*
 * util.c — see util.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

int util_read_file(const char *path, uint8_t **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (n + 1 >= cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	*data = buf;
	*len = n;
	return 0;
}

int util_mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (c == '\0')
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

void util_rm_rf(const char *path)
{
	DIR *d = opendir(path);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char sub[PATH_MAX];
			if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
				continue;
			struct stat st;
			if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
				util_rm_rf(sub);
			else
				unlink(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

void util_printable(char *dst, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	if (cap == 0)
		return;
	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		size_t bad = p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f ? 2 :
		             p[0] < 0x20 || p[0] == 0x7f ? 1 : 0;
		if (n + (bad ? 4 * bad : 1) + 1 > cap)
			break;
		if (bad == 0)
			dst[n++] = (char)*p;
		for (size_t k = 0; k < bad; k++) {
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[p[k] >> 4];
			dst[n++] = hex[p[k] & 15];
		}
		if (bad)
			p += bad - 1;
	}
	dst[n] = '\0';
}

double util_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int util_run(char *const argv[], char *out, size_t outlen,
             void (*progress)(void *arg, double secs), void *arg)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return -errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out != NULL)
		posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	/* The child must not inherit wisp's ignored SIGPIPE disposition. */
	posix_spawnattr_t sa;
	posix_spawnattr_init(&sa);
	sigset_t def;
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	posix_spawnattr_setsigdefault(&sa, &def);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, &sa, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&sa);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		return -rc;
	}
	size_t n = 0;
	double t0 = util_now();
	char sink[4096];
	for (;;) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		int pr = poll(&p, 1, progress ? 250 : -1);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr > 0) {
			char *dst = sink;
			size_t room = sizeof(sink);
			if (out != NULL && n + 1 < outlen) {
				dst = out + n;
				room = outlen - 1 - n;
			}
			ssize_t r = read(pipefd[0], dst, room);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			if (dst != sink)
				n += (size_t)r;
		}
		if (progress)
			progress(arg, util_now() - t0);
	}
	close(pipefd[0]);
	if (out != NULL && outlen > 0)
		out[n] = '\0';
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
