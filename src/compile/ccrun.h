/*
 * ccrun.h — the C compiler over a build's units: one, or several in
 * parallel and then linked (see ccrun.c).
 */
#ifndef WISP_CCRUN_H
#define WISP_CCRUN_H

#include <stdbool.h>
#include <stddef.h>

#include "codegen.h"
#include "../common/util.h"

/* The optimizing tier's flags, after the compiler's name (also hashed into
 * the cache key: a change here is a new key). */
extern const char *const ccrun_opt_flags[];

struct ccrun {
	const char *cc;                  /* the compiler (gcc, tcc, ...) */
	bool opt;                        /* ccrun_opt_flags, else tcc's */
	const struct util_limits *lim;   /* per compiler process */
	unsigned jobs;                   /* compilers at a time, >= 1 */
	const char *display;             /* the module's name, for progress */
	bool progress;                   /* a line on stderr (a terminal) while
	                                    a build takes more than a second */
};

/* Compile files (codegen.c's output in workdir) into the shared object
 * out_so: tu.c alone, or files->nunits units and main.c, at most c->jobs at
 * a time, each under c->lim, then linked. On the first failure no further
 * unit starts and those running are killed. Returns 0, or a negative errno with a
 * message naming the compiler (-E2BIG: a limit stopped it, naming the limit
 * and its flag; -EIO: it failed on the generated code, with its first
 * lines of output). */
int ccrun_build(const struct ccrun *c, const char *workdir, const struct codegen_files *files,
                const char *out_so, char *err, size_t errlen);

/* How many compilers to run at once: the CPUs this process may use,
 * halved for a niced (background) build so the other half stays free. */
unsigned ccrun_default_jobs(bool background);

#endif
