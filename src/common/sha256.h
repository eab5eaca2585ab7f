/*
 * sha256.h — SHA-256 of a buffer (sha256.c).
 */
#ifndef WISP_SHA256_H
#define WISP_SHA256_H

#include <stddef.h>

#define UTIL_SHA256_BYTES 32

void util_sha256(const void *data, size_t len, unsigned char out[UTIL_SHA256_BYTES]);

#endif
