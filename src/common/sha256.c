/*
 * sha256.c — SHA-256 of a buffer: how modules are named between nodes (a
 * module shipped by another node must be the one its hash names; a
 * collision-resistant hash is what makes that check mean something).
 *
 * OpenSSL's SHA256_* block functions, as cache.c uses them: the EVP
 * interface OpenSSL 3 prefers costs a millisecond to set up per process.
 */
#define OPENSSL_API_COMPAT 0x10101000L
#include <openssl/sha.h>

#include "sha256.h"

void util_sha256(const void *data, size_t len, unsigned char out[UTIL_SHA256_BYTES])
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, data, len);
	SHA256_Final(out, &c);
}
