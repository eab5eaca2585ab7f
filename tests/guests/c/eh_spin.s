# eh_spin.s — exception handling's legacy encoding as clang's assembler
# writes it (clang -mexception-handling), for proc_eh.c: a loop inside a
# try, and a throw out of a function with none.

	.tagtype	eh_tag i32
	.globl	eh_tag
eh_tag:

	.text
	.functype	eh_step (i32) -> (i32)

# int eh_spin(int stop): x = eh_step(x) from 0 until x == stop, then throw
# x and catch it: returns stop, or loops forever if x never equals it.
	.globl	eh_spin
	.type	eh_spin,@function
eh_spin:
	.functype	eh_spin (i32) -> (i32)
	.local	i32
	try i32
	loop
	local.get 1
	call eh_step
	local.tee 1
	local.get 0
	i32.eq
	if
	local.get 1
	throw eh_tag
	end_if
	br 0
	end_loop
	unreachable
	catch eh_tag
	end_try
	end_function

# void eh_throw(int v): throws with no try around it.
	.globl	eh_throw
	.type	eh_throw,@function
eh_throw:
	.functype	eh_throw (i32) -> ()
	local.get 0
	throw eh_tag
	drop                    # valid after throw; clang 14's checker wants it
	end_function
