/* Unit tests for src/compile/stackcheck.c (tcc's prologues, decoded) and
 * src/sched/stack.c (the guard below each slab). */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "compile/stackcheck.h"
#include "sched/stack.h"

static void put32(uint8_t *p, uint32_t w)
{
	p[0] = (uint8_t)w;
	p[1] = (uint8_t)(w >> 8);
	p[2] = (uint8_t)(w >> 16);
	p[3] = (uint8_t)(w >> 24);
}

static void x86_64_prologue(void **state)
{
	/* push %rbp; mov %rsp,%rbp; sub $0x42a20,%rsp (from a real tcc module) */
	uint8_t code[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x81, 0xec, 0x20, 0x2a, 0x04, 0x00, 0x90 };
	size_t n = 0;
	assert_int_equal(stackcheck_tcc_x86_64(code, sizeof(code), &n), 0x42a20 + 16);
	assert_int_equal(n, 11);
	/* cut off, or another instruction: not a prologue */
	assert_int_equal(stackcheck_tcc_x86_64(code, 10, &n), -1);
	code[6] = 0xed;
	assert_int_equal(stackcheck_tcc_x86_64(code, sizeof(code), &n), -1);
	/* a negative frame is nonsense, not a small frame */
	code[6] = 0xec;
	code[10] = 0x80;
	assert_int_equal(stackcheck_tcc_x86_64(code, sizeof(code), &n), -1);
}

/* tcc 0.9.27's arm64 prologue: stp x29,x30,[sp,#-224]!, eight argument
 * spills, mov x29,sp, then the two slots gfunc_epilog patches. */
static size_t arm64_prologue(uint8_t *code, uint32_t slot1, uint32_t slot2)
{
	static const uint32_t head[] = { 0xa9b27bfd, 0xad0087e0, 0xad018fe2, 0xad0297e4,
	                                 0xad039fe6, 0xa90923e8, 0xa90a07e0, 0xa90b0fe2,
	                                 0xa90c17e4, 0xa90d1fe6, 0x910003fd };
	size_t n = 0;
	for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++, n += 4)
		put32(code + n, head[i]);
	put32(code + n, slot1);
	put32(code + n + 4, slot2);
	put32(code + n + 8, 0xd503201f);
	return n + 12;
}

static void aarch64_prologue(void **state)
{
	uint8_t code[128];
	size_t len, n = 0;
	/* no locals: both slots stay nops */
	len = arm64_prologue(code, 0xd503201f, 0xd503201f);
	assert_int_equal(stackcheck_tcc_aarch64(code, len, &n), 224);
	assert_int_equal(n, 13 * 4);
	/* 0x12340 bytes: sub sp,sp,#0x340 and sub sp,sp,#0x12,lsl #12 */
	len = arm64_prologue(code, 0xd10003ff | 0x340 << 10, 0xd14003ff | 0x12 << 10);
	assert_int_equal(stackcheck_tcc_aarch64(code, len, &n), 224 + 0x12340);
	/* only the high part */
	len = arm64_prologue(code, 0xd503201f, 0xd14003ff | 0x5 << 10);
	assert_int_equal(stackcheck_tcc_aarch64(code, len, &n), 224 + 0x5000);
	/* >= 16 MiB: mov x16,#0x120,lsl #16; sub sp,sp,x16,lsl #3 */
	len = arm64_prologue(code, 0xd2800010 | 0x120 << 5 | 1 << 21, 0xcb3063ff | 3 << 10);
	assert_int_equal(stackcheck_tcc_aarch64(code, len, &n), 224 + ((int64_t)0x120 << 16 << 3));
	/* anything else in a slot: not tcc's */
	len = arm64_prologue(code, 0xd10003ff | 0x340 << 10, 0xd2800010);
	assert_int_equal(stackcheck_tcc_aarch64(code, len, &n), -1);
	len = arm64_prologue(code, 0x8b000000, 0xd503201f);
	assert_int_equal(stackcheck_tcc_aarch64(code, len, &n), -1);
	/* a positive pre-index is not a frame */
	len = arm64_prologue(code, 0xd503201f, 0xd503201f);
	put32(code, 0xa9827bfd);
	assert_int_equal(stackcheck_tcc_aarch64(code, len, &n), -1);
	/* x86 code is not arm64 code */
	uint8_t x86[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x81, 0xec, 0x20, 0x2a, 0x04, 0x00, 0x90,
	                  0x90, 0x90, 0x90, 0x90 };
	assert_int_equal(stackcheck_tcc_aarch64(x86, sizeof(x86), &n), -1);
}

/* The permissions /proc/self/maps gives the mapping holding addr ("rw-p"). */
static void perms_at(uintptr_t addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	strcpy(perms, "none");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		char p[5];
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && addr >= lo && addr < hi) {
			memcpy(perms, p, 5);
			break;
		}
	}
	if (f != NULL)
		fclose(f);
}

static void slab_bottom_is_a_guard(void **state)
{
	struct stack_pool pool;
	char perms[5];
	stack_pool_init(&pool, 256 * 1024);
	char *first = stack_alloc(&pool);
	char *second = stack_alloc(&pool);
	assert_non_null(first);
	assert_ptr_equal(second, first + pool.stack_size);   /* lowest first */
	first[0] = 1;                                          /* usable */
	second[pool.stack_size - 1] = 1;
	perms_at((uintptr_t)first, perms);
	assert_string_equal(perms, "rw-p");
	/* just below the lowest stack of the slab: a whole stack of guard */
	perms_at((uintptr_t)first - 1, perms);
	assert_string_equal(perms, "---p");
	perms_at((uintptr_t)first - pool.stack_size, perms);
	assert_string_equal(perms, "---p");
	stack_free(&pool, second);
	stack_free(&pool, first);
	stack_pool_destroy(&pool);
}

static void printable_escapes_controls(void **state)
{
	char out[64];
	util_printable(out, sizeof(out), "ok\x1b[31mred\n\x7f");
	assert_string_equal(out, "ok\\x1b[31mred\\x0a\\x7f");
	/* U+009B (CSI in C1) is escaped byte by byte; other UTF-8 stays */
	util_printable(out, sizeof(out), "a\xc2\x9b" "1m \xc3\xa9");
	assert_string_equal(out, "a\\xc2\\x9b1m \xc3\xa9");
	/* bytes outside well-formed UTF-8 (a lone 0x9b is CSI in an 8-bit
	 * terminal; overlong, surrogate, truncated) and the bidi overrides */
	util_printable(out, sizeof(out), "a\x9b" "1m\xc0\xafx\xed\xa0\x80\xe2\x80");
	assert_string_equal(out, "a\\x9b1m\\xc0\\xafx\\xed\\xa0\\x80\\xe2\\x80");
	util_printable(out, sizeof(out), "f\xe2\x80\xaemoor \xf0\x9f\x98\x80");
	assert_string_equal(out, "f\\xe2\\x80\\xaemoor \xf0\x9f\x98\x80");
	/* truncation never splits an escape nor a character */
	util_printable(out, 4, "ab\xc3\xa9");
	assert_string_equal(out, "ab");
	util_printable(out, 6, "ab\x01");
	assert_string_equal(out, "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(x86_64_prologue),
		cmocka_unit_test(aarch64_prologue),
		cmocka_unit_test(slab_bottom_is_a_guard),
		cmocka_unit_test(printable_escapes_controls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
