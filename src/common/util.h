/*
 * util.h — small helpers shared by the compile pipeline and the CLI:
 * whole-file I/O, directories, and running external tools.
 *
 * Error convention: 0 or a negative errno; messages go to a caller buffer.
 */
#ifndef WISP_UTIL_H
#define WISP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Read a whole file into a malloc'd buffer (NUL-terminated, not counted in
 * *len). Returns 0 or -errno. */
int util_read_file(const char *path, uint8_t **data, size_t *len);

/* Create a directory and its parents (mode 0700 for new ones). */
int util_mkdir_p(const char *path);

/* Remove a directory tree (files and subdirectories); best effort. */
void util_rm_rf(const char *path);

/* Run argv[0] (searched in PATH) with argv, stdin from /dev/null, stdout to
 * /dev/null unless `out` is given; stderr (and stdout if `out`) captured into
 * `out` (truncated to outlen-1 bytes, NUL-terminated). If `progress` is not
 * NULL it is called about every 250 ms with the elapsed seconds while the
 * tool runs. Returns the exit status (0..255), 128+signal if killed, or a
 * negative errno if it could not be started (ENOENT: no such program). */
int util_run(char *const argv[], char *out, size_t outlen,
             void (*progress)(void *arg, double secs), void *arg);

/* Copy a name that came from a guest (a module's name section, export
 * names) so that it is safe to print on a terminal: C0 control bytes, DEL
 * and the UTF-8 encodings of the C1 controls (which some terminals obey as
 * escape sequences) become \xNN, so a name can neither move the cursor nor
 * fake a line of wisp's own output. Truncated to cap - 1 bytes (never in
 * the middle of an escape); always NUL-terminated if cap > 0. */
void util_printable(char *dst, size_t cap, const char *src);

/* Monotonic time in seconds. */
double util_now(void);

#endif
