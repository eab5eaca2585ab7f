/* The prelude text, embedded so the wisp binary is self-contained:
 * vmctx.h followed by prelude.c.in, NUL-terminated. */
	.section .rodata
	.global wisp_prelude_text
	.hidden wisp_prelude_text
	.type wisp_prelude_text, @object
wisp_prelude_text:
	.incbin "src/engine/vmctx.h"
	.incbin "src/compile/prelude.c.in"
	.byte 0
	.size wisp_prelude_text, . - wisp_prelude_text
	.section .note.GNU-stack,"",@progbits
