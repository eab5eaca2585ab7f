/*
 * fiber.c — setting up new fibers, and the sanitizer annotations around the
 * raw switch (fiber_*.S).
 *
 * The initial stack of a fiber is laid out as if fiber_switch_raw had saved
 * it: the callee-saved registers (with fn and arg in two of them) and a
 * return address pointing at fiber_trampoline, 16-byte aligned so that
 * fn is entered with the ABI's stack alignment.
 */
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "fiber.h"

#if defined(__SANITIZE_ADDRESS__)
#define WISP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WISP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WISP_TSAN 1
#endif

#ifdef WISP_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

#ifdef WISP_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
#endif

void fiber_trampoline(void);

/* A new fiber's first C code: completes the sanitizer's switch
 * bookkeeping (the switch that started us never returns to its caller). */
static void boot(void *arg)
{
	struct fiber *f = arg;
#ifdef WISP_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	f->fn(f->arg);
	abort();   /* fn must not return */
}

void fiber_init(struct fiber *f, void *stack_lo, size_t size,
                void (*fn)(void *), void *arg)
{
	uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
	f->stack_lo = stack_lo;
	f->stack_size = size;
	f->tsan = NULL;
	f->fn = fn;
	f->arg = arg;
#ifdef WISP_TSAN
	f->tsan = __tsan_create_fiber(0);
#endif
#if defined(__x86_64__)
	/* After the 6 pops and ret, rsp = top - 16: 16-byte aligned before
	 * the trampoline's call, as the ABI wants. */
	uintptr_t *sp = (uintptr_t *)(top - 16) - 7;
	sp[0] = 0;                      /* r15 */
	sp[1] = 0;                      /* r14 */
	sp[2] = (uintptr_t)boot;        /* r13 */
	sp[3] = (uintptr_t)f;           /* r12 */
	sp[4] = 0;                      /* rbx */
	sp[5] = 0;                      /* rbp: ends frame walks */
	sp[6] = (uintptr_t)fiber_trampoline;
	f->sp = sp;
#elif defined(__aarch64__)
	uintptr_t *sp = (uintptr_t *)(top - 160);
	memset(sp, 0, 160);
	sp[0] = (uintptr_t)boot;        /* x19 */
	sp[1] = (uintptr_t)f;           /* x20 */
	sp[10] = 0;                     /* x29 */
	sp[11] = (uintptr_t)fiber_trampoline;  /* x30 */
	f->sp = sp;
#else
#error "wisp's fibers support x86-64 and aarch64"
#endif
}

size_t fiber_saved_fp_offset(void)
{
#if defined(__x86_64__)
	return 5 * sizeof(uintptr_t);    /* sp[5]: rbp (see fiber_init) */
#else
	return 10 * sizeof(uintptr_t);   /* sp[10]: x29 */
#endif
}

void fiber_init_thread(struct fiber *f)
{
	pthread_attr_t attr;
	void *addr = NULL;
	size_t size = 0;
	memset(f, 0, sizeof(*f));
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstack(&attr, &addr, &size);
		pthread_attr_destroy(&attr);
	}
	f->stack_lo = addr;
	f->stack_size = size;
#ifdef WISP_TSAN
	f->tsan = __tsan_get_current_fiber();
#endif
}

void fiber_destroy(struct fiber *f)
{
#ifdef WISP_TSAN
	if (f->tsan)
		__tsan_destroy_fiber(f->tsan);
#endif
	f->tsan = NULL;
}

void fiber_switch(struct fiber *from, struct fiber *to)
{
#ifdef WISP_TSAN
	__tsan_switch_to_fiber(to->tsan, 0);
#endif
#ifdef WISP_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, to->stack_lo, to->stack_size);
	fiber_switch_raw(&from->sp, to->sp);
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
	fiber_switch_raw(&from->sp, to->sp);
#endif
}

_Noreturn void fiber_exit_to(struct fiber *from, struct fiber *to)
{
#ifdef WISP_TSAN
	__tsan_switch_to_fiber(to->tsan, 0);
#endif
#ifdef WISP_ASAN
	/* NULL: this fiber's fake stack can go. */
	__sanitizer_start_switch_fiber(NULL, to->stack_lo, to->stack_size);
#endif
	fiber_switch_raw(&from->sp, to->sp);
	abort();
}
