/*
 * pthread_stubs.c — the pthread functions Rust's std references on
 * wasm32-wasip1, for a wasi-libc that has none (Debian 12's, from 2022).
 *
 * std's thread::Builder::spawn calls pthread_attr_init, _setstacksize,
 * pthread_create and pthread_attr_destroy; JoinHandle uses pthread_join and
 * pthread_detach. Without definitions, any program that mentions std::thread
 * fails to link. These stubs make thread creation fail cleanly: spawn returns
 * Err(ENOTSUP) ("Not supported"), which is the truth for a single-threaded
 * wasip1 guest. The attr functions must succeed, because std asserts on them.
 *
 * scripts/setup-rust-wasm.sh compiles this file for wasm32-wasi and adds it to
 * the Rust sysroot's own copy of libc.a; Debian's wasi-libc is left untouched.
 * The signatures match the libc crate's declarations exactly (all i32 on
 * wasm32): a mismatch would make wasm-ld replace the call with a trap.
 */
#include <errno.h>
#include <stddef.h>

typedef struct wisp_pthread_attr wisp_pthread_attr;
typedef unsigned long wisp_pthread_t;

int pthread_attr_init(wisp_pthread_attr *attr)
{
	return 0;
}

int pthread_attr_destroy(wisp_pthread_attr *attr)
{
	return 0;
}

int pthread_attr_setstacksize(wisp_pthread_attr *attr, size_t size)
{
	return 0;
}

int pthread_create(wisp_pthread_t *thread, const wisp_pthread_attr *attr,
		   void *(*start)(void *), void *arg)
{
	return ENOTSUP;
}

int pthread_join(wisp_pthread_t thread, void **retval)
{
	return ESRCH;
}

int pthread_detach(wisp_pthread_t thread)
{
	return ESRCH;
}
