/* fiber_x86_64.S — context switch for x86-64 System V (see fiber.h). */
#if defined(__x86_64__)
	.text
	.globl fiber_switch_raw
	.hidden fiber_switch_raw
	.type fiber_switch_raw, @function
/* void fiber_switch_raw(void **save_sp (rdi), void *load_sp (rsi)) */
fiber_switch_raw:
	.cfi_startproc
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.cfi_endproc
	.size fiber_switch_raw, . - fiber_switch_raw

	.globl fiber_trampoline
	.hidden fiber_trampoline
	.type fiber_trampoline, @function
/* First code of a new fiber: r12 = arg, r13 = fn (set by fiber_init);
 * rbp = 0 ends frame-pointer walks here. */
fiber_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	movq %r12, %rdi
	callq *%r13
	ud2
	.cfi_endproc
	.size fiber_trampoline, . - fiber_trampoline
#endif
	.section .note.GNU-stack,"",@progbits
