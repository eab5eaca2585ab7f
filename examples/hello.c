/*
 * hello.c — the smallest wisp guest: a C program built for wasm32-wasi.
 *
 *   make -C examples          (clang --target=wasm32-wasi --sysroot=/usr -O2)
 *   ./wisp run examples/hello.wasm one two
 */
#include <stdio.h>

int main(int argc, char **argv)
{
	printf("Hello from wisp!\n");
	for (int i = 1; i < argc; i++)
		printf("arg %d: %s\n", i, argv[i]);
	return 0;
}
