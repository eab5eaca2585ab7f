/*
 * blob.h — bytes as an ELF relocatable object the C compiler links
 * (see blob.c). Error convention: 0 or a negative errno.
 */
#ifndef WISP_BLOB_H
#define WISP_BLOB_H

#include <stddef.h>
#include <stdint.h>

struct blob_piece {
	const uint8_t *data;
	size_t len;
};

/* Write an object file at `path` whose .rodata holds the pieces, one after
 * the other, under the hidden global symbol `symbol` (16-byte aligned, no
 * relocations). For this host's architecture (x86-64 or aarch64). */
int blob_write_object(const char *path, const char *symbol,
                      const struct blob_piece *pieces, size_t npieces);

#endif
