/*
 * tierwatch.h — a running module moves onto its optimized build once the
 * background compile has made it (tierwatch.c).
 */
#ifndef WISP_CLI_TIERWATCH_H
#define WISP_CLI_TIERWATCH_H

#include "compile/pipeline.h"
#include "proc/proc.h"

struct tierwatch;
/* Watch for the optimized build of wf, the module named hash (the run
 * starts on its fast build): p and wf must outlive the watch. NULL: out
 * of memory. */
struct tierwatch *tierwatch_new(const struct pipeline *p, const struct wasm_file *wf,
                                const unsigned char hash[RT_HASH_BYTES]);
/* Start watching for rt; stop (before rt stops). */
void tierwatch_start(struct tierwatch *t, struct rt *rt);
void tierwatch_stop(struct tierwatch *t);
void tierwatch_free(struct tierwatch *t);

#endif
