/* fiber_aarch64.S — context switch for AArch64 AAPCS64 (see fiber.h). */
#if defined(__aarch64__)
	.text
	.globl fiber_switch_raw
	.hidden fiber_switch_raw
	.type fiber_switch_raw, %function
/* void fiber_switch_raw(void **save_sp (x0), void *load_sp (x1)) */
fiber_switch_raw:
	sub sp, sp, #160
	stp x19, x20, [sp, #0]
	stp x21, x22, [sp, #16]
	stp x23, x24, [sp, #32]
	stp x25, x26, [sp, #48]
	stp x27, x28, [sp, #64]
	stp x29, x30, [sp, #80]
	stp d8, d9, [sp, #96]
	stp d10, d11, [sp, #112]
	stp d12, d13, [sp, #128]
	stp d14, d15, [sp, #144]
	mov x2, sp
	str x2, [x0]
	mov sp, x1
	ldp x19, x20, [sp, #0]
	ldp x21, x22, [sp, #16]
	ldp x23, x24, [sp, #32]
	ldp x25, x26, [sp, #48]
	ldp x27, x28, [sp, #64]
	ldp x29, x30, [sp, #80]
	ldp d8, d9, [sp, #96]
	ldp d10, d11, [sp, #112]
	ldp d12, d13, [sp, #128]
	ldp d14, d15, [sp, #144]
	add sp, sp, #160
	ret
	.size fiber_switch_raw, . - fiber_switch_raw

	.globl fiber_trampoline
	.hidden fiber_trampoline
	.type fiber_trampoline, %function
/* First code of a new fiber: x19 = fn, x20 = arg (set by fiber_init). */
fiber_trampoline:
	mov x0, x20
	blr x19
	brk #0
	.size fiber_trampoline, . - fiber_trampoline
#endif
	.section .note.GNU-stack,"",%progbits
