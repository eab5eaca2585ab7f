/*
 * cache.c — trusting the compile cache.
 *
 * A cached module is native code that wisp loads into itself, so a file in
 * the cache is loaded only if it is certainly one this user's wisp wrote:
 *
 *   - the cache directory and its subdirectories are owned by the effective
 *     uid and writable by no one else (cache_dir_trusted; pipeline.c falls
 *     back to a private temporary cache otherwise), so no other user can
 *     plant or replace a file — a shared WISP_CACHE_DIR of mode 1777 is
 *     refused, and root never loads a file another user made;
 *   - the file itself is a regular file owned by the uid, writable by no
 *     one else, opened with O_NOFOLLOW (more links are allowed: perf's
 *     build-id cache and backup tools make them, and with that owner and
 *     mode they give no one else a way to change the file);
 *   - it ends with a trailer, "WISPMAC2" and an HMAC-SHA256 of everything
 *     before it, keyed by a secret of this cache (<cache>/key, 32 random
 *     bytes, mode 0600) bound to the entry's name (which is the hash of the
 *     module, wisp's version and ABI, the prelude, the tier and the tools)
 *     and to the running wisp's build id. A file changed by anything that
 *     does not hold the key — a guest that was given the cache directory, a
 *     disk error, another wisp build — fails the check and is rebuilt, with
 *     a warning. (The CLI also refuses to give a guest a directory that
 *     holds or lies inside the cache, unless --allow-cache-dir.)
 *
 * No window between check and use: the file is verified through an open
 * descriptor (mmap of that fd) and loaded through /proc/self/fd/N, which is
 * the same inode, whatever happens to its name meanwhile. What remains is
 * the same uid (or root) rewriting the file in place between the two: they
 * can run code as this user anyway.
 *
 * The trailer is appended to the shared object rather than kept in a file
 * beside it so that one rename publishes both; the dynamic loader ignores
 * bytes past the program headers' ranges.
 *
 * Cost: one HMAC over the .so per start from the cache: libcrypto's
 * SHA-256 (its assembly, with the CPU's SHA extensions where present: about
 * 1.2 GB/s here), linked statically, because loading the shared libcrypto
 * costs ~0.7 ms per process and its EVP layer another ~1 ms on first use.
 * Measured in docs/architecture.md.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
/* SHA256_Init & co. are deprecated in OpenSSL 3 in favour of EVP, whose
 * set-up costs a millisecond per process (see hmac_sha256). */
#define OPENSSL_API_COMPAT 0x10101000L
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"

#define TRAILER_MAGIC "WISPMAC2"
#define MAGIC_LEN 8
#define MAC_LEN 32
#define TRAILER_LEN (MAGIC_LEN + MAC_LEN)

int cache_dir_trusted(const char *dir, bool follow, char *why, size_t whylen)
{
	struct stat st;
	if ((follow ? stat(dir, &st) : lstat(dir, &st)) != 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "is not a directory%s", S_ISLNK(st.st_mode) ?
		         " (a symbolic link)" : "");
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, whylen, "is owned by uid %u, not by this user (uid %u)",
		         (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, whylen, "is writable by other users (mode %04o; chmod go-w it)",
		         (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* ---- the running wisp's build id -------------------------------------------- */

struct build_id {
	uint8_t bytes[64];
	size_t len;
};

static int find_build_id(struct dl_phdr_info *pi, size_t size, void *arg)
{
	(void)size;
	struct build_id *id = arg;
	for (int i = 0; i < pi->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &pi->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const uint8_t *p = (const uint8_t *)(pi->dlpi_addr + ph->p_vaddr);
		const uint8_t *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
			const uint8_t *name = p + sizeof(*nh);
			const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0 && nh->n_descsz <= sizeof(id->bytes)) {
				memcpy(id->bytes, desc, nh->n_descsz);
				id->len = nh->n_descsz;
				return 1;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 1;                 /* the first object is the program itself */
}

/* HMAC-SHA256 (RFC 2104) of the concatenation of parts, with a key of at
 * most one block. Built on libcrypto's SHA-256 block functions, which need
 * no initialisation: OpenSSL 3's EVP and HMAC() set up its provider tables
 * on first use, about 1 ms, on every start. */
struct part {
	const void *data;
	size_t len;
};

static void hmac_sha256(const uint8_t key[CACHE_KEY_BYTES], const struct part *parts,
                        size_t nparts, uint8_t out[MAC_LEN])
{
	uint8_t pad[SHA256_CBLOCK], inner[SHA256_DIGEST_LENGTH];
	SHA256_CTX c;
	_Static_assert(CACHE_KEY_BYTES <= SHA256_CBLOCK, "the key fits one block");
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < CACHE_KEY_BYTES; i++)
		pad[i] ^= key[i];
	SHA256_Init(&c);
	SHA256_Update(&c, pad, sizeof(pad));
	for (size_t i = 0; i < nparts; i++)
		SHA256_Update(&c, parts[i].data, parts[i].len);
	SHA256_Final(inner, &c);
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < CACHE_KEY_BYTES; i++)
		pad[i] ^= key[i];
	SHA256_Init(&c);
	SHA256_Update(&c, pad, sizeof(pad));
	SHA256_Update(&c, inner, sizeof(inner));
	SHA256_Final(out, &c);
	explicit_bzero(pad, sizeof(pad));
	explicit_bzero(&c, sizeof(c));
}

/* The MAC of data[0, len) as entry `entry` of this wisp build's cache:
 * HMAC(key, label | build id | entry name | NUL | data). */
static void mac_of(const uint8_t key[CACHE_KEY_BYTES], const char *entry,
                   const uint8_t *data, size_t len, uint8_t out[MAC_LEN])
{
	struct build_id id = { .len = 0 };
	dl_iterate_phdr(find_build_id, &id);
	uint8_t idlen = (uint8_t)id.len;
	const struct part parts[] = {
		{ "wisp-cache-v2", 14 }, { &idlen, 1 }, { id.bytes, id.len },
		{ entry, strlen(entry) + 1 }, { data, len },
	};
	hmac_sha256(key, parts, sizeof(parts) / sizeof(parts[0]), out);
}

/* Constant time: how long a comparison takes says nothing about the MAC. */
static bool same_mac(const uint8_t *a, const uint8_t *b)
{
	uint8_t diff = 0;
	for (size_t i = 0; i < MAC_LEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/* ---- the key ---------------------------------------------------------------- */

static int read_key(int fd, uint8_t key[CACHE_KEY_BYTES])
{
	size_t got = 0;
	while (got < CACHE_KEY_BYTES) {
		ssize_t r = read(fd, key + got, CACHE_KEY_BYTES - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		got += (size_t)r;
	}
	return 0;
}

/* A new key file beside path, published with link() (never a partial key:
 * concurrent runs either create it or read the winner's) or, to replace a
 * bad one, rename(). */
static int make_key(const char *dir, const char *path, bool replace,
                    uint8_t key[CACHE_KEY_BYTES], char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/key.XXXXXX", dir);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create the cache key in %s: %s", dir, strerror(errno));
		return -errno;
	}
	int rc = 0;
	if (getrandom(key, CACHE_KEY_BYTES, 0) != CACHE_KEY_BYTES ||
	    write(fd, key, CACHE_KEY_BYTES) != CACHE_KEY_BYTES || fsync(fd) != 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && (replace ? rename(tmp, path) : link(tmp, path)) != 0)
		rc = -errno;
	if (!replace || rc != 0)
		unlink(tmp);
	if (rc != 0 && rc != -EEXIST)
		snprintf(err, errlen, "cannot create the cache key %s: %s", path, strerror(-rc));
	return rc;
}

int cache_load_key(const char *dir, uint8_t key[CACHE_KEY_BYTES], char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/key", dir);
	for (int attempt = 0; attempt < 3; attempt++) {
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno != ENOENT && errno != ELOOP) {
			snprintf(err, errlen, "cannot read the cache key %s: %s", path, strerror(errno));
			return -errno;
		}
		bool bad = fd < 0 && errno == ELOOP;
		if (fd >= 0) {
			struct stat st;
			bad = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
			      (st.st_mode & 077) != 0 || st.st_size != CACHE_KEY_BYTES ||
			      read_key(fd, key) != 0;
			close(fd);
			if (!bad)
				return 0;
		}
		if (bad)
			fprintf(stderr, "wisp: warning: the cache key %s is not a private file of "
			        "this user; replacing it (every cached module will be rebuilt)\n", path);
		int rc = make_key(dir, path, bad, key, err, errlen);
		if (rc == 0)
			return 0;
		if (rc != -EEXIST)
			return rc;
		/* another run created it first: read theirs */
	}
	snprintf(err, errlen, "cannot settle on a cache key in %s", dir);
	return -EAGAIN;
}

/* ---- sealing and verifying ---------------------------------------------------- */

int cache_seal(const char *path, const char *entry, const uint8_t key[CACHE_KEY_BYTES],
               char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
		snprintf(err, errlen, "cannot seal %s: %s", path, fd < 0 ? strerror(errno) : "empty");
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	size_t len = (size_t)st.st_size;
	void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	uint8_t trailer[TRAILER_LEN];
	memcpy(trailer, TRAILER_MAGIC, MAGIC_LEN);
	int rc = 0;
	if (m == MAP_FAILED) {
		rc = -errno;
	} else {
		mac_of(key, entry, m, len, trailer + MAGIC_LEN);
		munmap(m, len);
	}
	if (rc == 0 && pwrite(fd, trailer, TRAILER_LEN, st.st_size) != TRAILER_LEN)
		rc = errno ? -errno : -EIO;
	/* Private, and on disk before the rename publishes it. */
	if (rc == 0 && (fchmod(fd, 0600) != 0 || fsync(fd) != 0))
		rc = -errno;
	close(fd);
	if (rc != 0)
		snprintf(err, errlen, "cannot seal %s: %s", path, strerror(-rc));
	return rc;
}

int cache_open_verified(const char *path, const char *entry,
                        const uint8_t key[CACHE_KEY_BYTES], char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return -ENOENT;
		snprintf(why, whylen, "%s", e == ELOOP ? "it is a symbolic link" : strerror(e));
		return -e;
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(why, whylen, "%s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EPERM;
		snprintf(why, whylen, "it is not a regular file");
	} else if (st.st_uid != geteuid()) {
		rc = -EPERM;
		snprintf(why, whylen, "it is owned by uid %u, not by this user (uid %u)",
		         (unsigned)st.st_uid, (unsigned)geteuid());
	} else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		rc = -EPERM;
		snprintf(why, whylen, "it is writable by other users (mode %04o)",
		         (unsigned)(st.st_mode & 07777));
	} else if (st.st_size <= TRAILER_LEN) {
		rc = -EBADMSG;
		snprintf(why, whylen, "it has no integrity trailer");
	}
	if (rc == 0) {
		size_t len = (size_t)st.st_size;
		const uint8_t *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		uint8_t mac[MAC_LEN];
		if (m == MAP_FAILED) {
			rc = -errno;
			snprintf(why, whylen, "%s", strerror(errno));
		} else {
			const uint8_t *t = m + len - TRAILER_LEN;
			bool ok = memcmp(t, TRAILER_MAGIC, MAGIC_LEN) == 0;
			if (ok) {
				mac_of(key, entry, m, len - TRAILER_LEN, mac);
				ok = same_mac(mac, t + MAGIC_LEN);
			}
			if (!ok) {
				rc = -EBADMSG;
				snprintf(why, whylen, "it fails its integrity check (changed since "
				         "this wisp built it, or built by another wisp)");
			}
			munmap((void *)m, len);
		}
	}
	if (rc != 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* ---- preopens against the cache ----------------------------------------------- */

bool cache_path_within(const char *dir, const char *anc)
{
	struct stat a, s;
	char real[PATH_MAX];
	if (stat(anc, &a) != 0 || realpath(dir, real) == NULL)
		return false;
	for (;;) {
		if (stat(real, &s) == 0 && s.st_dev == a.st_dev && s.st_ino == a.st_ino)
			return true;
		char *slash = strrchr(real, '/');
		if (slash == NULL || (slash == real && real[1] == '\0'))
			return false;
		if (slash == real)
			real[1] = '\0';
		else
			*slash = '\0';
	}
}
