/*
 * stackcheck.h — the native stack each function of a compiled module needs,
 * measured after compilation (see stackcheck.c).
 *
 * Error convention (compile pipeline): 0 or a negative errno with a message.
 */
#ifndef WISP_STACKCHECK_H
#define WISP_STACKCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "wasm_reader.h"
#include "../engine/vmctx.h"

/* Check that every function of a compiled module, loaded with dlopen as
 * `dl` (its descriptor `abi`), needs at most `max_frame` bytes of native
 * stack per call. How depends on the compiler that built it (abi->flags):
 *   - tcc (WISP_MODULE_FRAME_POINTERS): from the frame size in each
 *     function's prologue, found by scanning the module's code;
 *   - gcc: from the -fstack-usage file the compiler wrote in workdir.
 * `info` bounds the outgoing arguments of any call (the widest function
 * type). Returns 0; -E2BIG naming the function (escaped) and its need when
 * one is over; -EPROTO when the frames cannot be determined (unknown
 * prologue, no stack-usage file, an unbounded frame), which also refuses the
 * module: a frame that cannot be bounded could write past a fiber's stack. */
int stackcheck_module(void *dl, const struct wisp_module_abi *abi,
                      const struct wasm_info *info, const char *workdir,
                      uint32_t max_frame, char *err, size_t errlen);

/* Decoders of tcc's function prologues, for tests: if code[0, len) starts
 * with the prologue tcc 0.9.27 emits on this architecture, return the bytes
 * that prologue reserves (saved registers and return address included) and
 * set *insn_len to its length; else return -1. */
int64_t stackcheck_tcc_x86_64(const uint8_t *code, size_t len, size_t *insn_len);
int64_t stackcheck_tcc_aarch64(const uint8_t *code, size_t len, size_t *insn_len);

#endif
