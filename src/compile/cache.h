/*
 * cache.h — what makes a file in the compile cache trustworthy enough to
 * load as native code (see cache.c).
 *
 * Error convention (compile pipeline): 0 or a negative errno, with a
 * message where the caller shows one.
 */
#ifndef WISP_CACHE_H
#define WISP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_KEY_BYTES 32

/* Is dir a directory this user may trust: owned by the effective uid and
 * writable by no one else? 0, or -EPERM/-ENOTDIR/-errno with the reason in
 * why ("is writable by other users (mode 0777)"). Symlinks are followed for
 * dir itself only if follow is true. */
int cache_dir_trusted(const char *dir, bool follow, char *why, size_t whylen);

/* Load the cache's secret key from <dir>/key, creating it (32 random bytes,
 * mode 0600) if it does not exist, replacing it if it is not a private file
 * of this user. 0 or a negative errno with a message. */
int cache_load_key(const char *dir, uint8_t key[CACHE_KEY_BYTES], char *err, size_t errlen);

/* Append the trailer (a MAC of the file's contents under key, bound to the
 * entry's name and wisp's build) to the finished shared object at path,
 * make it private (0600) and flush it to disk. `entry` is the file name it
 * will have in the cache ("<hash>.<tier>.so"). */
int cache_seal(const char *path, const char *entry, const uint8_t key[CACHE_KEY_BYTES],
               char *err, size_t errlen);

/* Open the cached shared object at path for loading, if it can be trusted:
 * a regular file (not a symlink), owned by this user, writable by no one
 * else, whose trailer verifies. Returns an open fd (O_CLOEXEC; the
 * object to dlopen through /proc/self/fd, so the file loaded is the file
 * verified), -ENOENT if there is no such file, or another negative errno
 * with the reason in why (the entry must then be rebuilt). */
int cache_open_verified(const char *path, const char *entry,
                        const uint8_t key[CACHE_KEY_BYTES], char *why, size_t whylen);

/* Is `dir` the directory `path` or one of its ancestors (by inode, so bind
 * mounts and symlinks count)? false when either does not exist. */
bool cache_path_within(const char *path, const char *dir);

#endif
