/*
 * fiber.h — stackful coroutines: a saved stack pointer per fiber and a
 * switch that saves only the callee-saved registers (x86-64: rbx, rbp,
 * r12–r15; aarch64: x19–x30, d8–d15). No signal masks, no FPU control words:
 * wasm code cannot change rounding modes, and neither does wisp.
 *
 * A new fiber starts in a trampoline that calls fn(arg) on its own stack;
 * fn must never return (it switches away for the last time instead).
 */
#ifndef WISP_FIBER_H
#define WISP_FIBER_H

#include <stddef.h>

struct fiber {
	void *sp;          /* saved stack pointer while not running */
	void *stack_lo;    /* the stack's bounds (lo < hi), for sanitizers */
	size_t stack_size;
	void *tsan;        /* ThreadSanitizer's fiber handle (TSan builds) */
	void (*fn)(void *);/* first code of a new fiber, and its argument */
	void *arg;
};

/* Prepare `f` to run fn(arg) on [stack_lo, stack_lo + size) at its first
 * switch. */
void fiber_init(struct fiber *f, void *stack_lo, size_t size,
                void (*fn)(void *), void *arg);

/* Describe the calling thread's own context (its original stack) as a
 * fiber that others can switch back to. */
void fiber_init_thread(struct fiber *f);

/* Release what fiber_init allocated for sanitizers (nothing otherwise). */
void fiber_destroy(struct fiber *f);

/* Save the current context into `from` and continue `to`. Returns when
 * something switches back to `from`. */
void fiber_switch(struct fiber *from, struct fiber *to);

/* Leave a fiber for the last time (it is never resumed): lets sanitizers
 * free what they keep for its stack. */
_Noreturn void fiber_exit_to(struct fiber *from, struct fiber *to);

/* Where a switched-out fiber's frame pointer (rbp, x29) is saved: its
 * byte offset from f->sp. The frames of a fiber that is not running can
 * be walked from there (inspection: sched_task_frames). */
size_t fiber_saved_fp_offset(void);

/* The bare switch in assembly (fiber_*.S); fiber_switch adds sanitizer
 * annotations around it in sanitizer builds. */
void fiber_switch_raw(void **save_sp, void *load_sp);

#endif
