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

/* 31 random bits (bit 31 clear) from the kernel's generator, fetched
 * RANDOM_BATCH at a time per thread (one getrandom per 512 calls): what
 * makes refs and timer ids unguessable. */
uint32_t util_random31(void);

/* Read a whole file into a malloc'd buffer (NUL-terminated, not counted in
 * *len). Returns 0 or -errno. */
int util_read_file(const char *path, uint8_t **data, size_t *len);

/* Create a directory and its parents (mode 0700 for new ones). */
int util_mkdir_p(const char *path);

/* Remove a directory tree (files and subdirectories); best effort. */
void util_rm_rf(const char *path);

/* Limits on a tool that util_run() starts, applied to it and to every
 * process it starts in turn (0: no limit). */
struct util_limits {
	uint64_t cpu_seconds;     /* CPU time per process (RLIMIT_CPU) */
	uint64_t memory_bytes;    /* address space per process (RLIMIT_AS) */
	uint64_t wall_seconds;    /* the whole run, by the clock */
	int nice;                 /* niceness to add */
};

/* How a tool run by util_run() ended. */
struct util_run_status {
	int code;                 /* exit status 0..255, or -1 if killed */
	int signal;               /* the signal that killed it, or 0 */
	bool timed_out;           /* killed because wall_seconds ran out */
	double cpu_seconds;       /* user + system time of it and its children */
	uint64_t max_rss;         /* bytes: the largest resident size among them */
	bool stopped;             /* killed because `progress` asked for it */
};

/* The path of program `name` (searched in PATH unless it contains a '/'),
 * or -ENOENT. */
int util_find_program(const char *name, char *path, size_t pathlen);

/* Run argv[0] (searched in PATH) with argv, stdin from /dev/null, stdout to
 * /dev/null unless `out` is given; stderr (and stdout if `out`) captured into
 * `out` (truncated to outlen-1 bytes, NUL-terminated). If `progress` is not
 * NULL it is called about every 250 ms with the elapsed seconds while the
 * tool runs; if it returns true, the tool's whole group is killed (and
 * st->stopped set). Returns 0 with *st filled once the tool has run (whatever its
 * status), or a negative errno if it could not be started (ENOENT: no such
 * program).
 *
 * The tool runs under `lim` (may be NULL), in a process group of its own,
 * watched by a small supervisor process: when the tool ends, or wisp dies
 * (even by SIGKILL: the supervisor's parent-death signal), or the wall-clock
 * limit passes, the supervisor kills the whole group, so no process the tool
 * started (cc1, as, ld) outlives it. The caller's thread must stay alive
 * while the tool runs (the parent-death signal follows the thread). */
int util_run(char *const argv[], const struct util_limits *lim, char *out, size_t outlen,
             bool (*progress)(void *arg, double secs), void *arg,
             struct util_run_status *st);

/* Copy a name that came from a guest (a module's name section, export
 * names) so that it is safe to print on a terminal: C0 control bytes, DEL,
 * the UTF-8 encodings of the C1 controls (which some terminals obey as
 * escape sequences), of the line separators and of the bidi controls, and
 * every byte that is not part of well-formed UTF-8 (a lone 0x9b is CSI to
 * a terminal in an 8-bit encoding) become \xNN, so a name can neither move
 * the cursor, fake a line of wisp's own output nor show its text reordered. Truncated to cap - 1 bytes (never in
 * the middle of an escape); always NUL-terminated if cap > 0. */
void util_printable(char *dst, size_t cap, const char *src);
/* The UTF-8 sequence at p (NUL-terminated text): its length, with its code
 * point in *cp, or 0 if it is not well-formed (overlong, surrogate, past
 * U+10FFFF, cut short). */
size_t util_utf8_seq(const unsigned char *p, uint32_t *cp);
/* Whether util_printable escapes code point c: C0, DEL, C1, the line and
 * paragraph separators and the bidi controls. */
bool util_unprintable(uint32_t c);

/* Monotonic time in seconds. */
double util_now(void);

/* A growable text (NUL-terminated once anything is added). A failed
 * allocation sets oom and every later add is a no-op, so a caller checks
 * once at the end; free p. */
struct util_text {
	char *p;
	size_t len, cap;
	bool oom;
};
void util_text_add(struct util_text *t, const char *s, size_t n);
__attribute__((format(printf, 2, 3)))
void util_text_printf(struct util_text *t, const char *fmt, ...);

#endif
