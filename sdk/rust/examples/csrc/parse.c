/*
 * parse.c — C code linked into the echo_c example (build.rs compiles it
 * for wasm32 with clang). A line handler with a bug on purpose: a line
 * starting with "segv" makes it write far outside the module's memory,
 * which traps — in C, in the handler's process only.
 */
#include <stddef.h>
#include <stdint.h>

/* Upper-case `len` bytes of `line` in place; returns how many were
 * letters. The bug: "segv" lines store through a wild pointer. */
int32_t parse_shout(uint8_t *line, int32_t len)
{
	if (len >= 4 && line[0] == 's' && line[1] == 'e' && line[2] == 'g' && line[3] == 'v') {
		volatile uint8_t *wild = (volatile uint8_t *)(uintptr_t)0xfffffff0u;
		*wild = 1; /* out of bounds of linear memory: a trap */
	}
	int32_t letters = 0;
	for (int32_t i = 0; i < len; i++) {
		if (line[i] >= 'a' && line[i] <= 'z') {
			line[i] = (uint8_t)(line[i] - 'a' + 'A');
			letters++;
		} else if (line[i] >= 'A' && line[i] <= 'Z') {
			letters++;
		}
	}
	return letters;
}
