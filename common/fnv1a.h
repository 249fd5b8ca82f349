/* FNV-1a, 64 bits: a stable, dependency-free hash for names and digests (not for security). */
#ifndef AW_FNV1A_H
#define AW_FNV1A_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_64_INIT 14695981039346656037ULL

static inline uint64_t fnv1a_64(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

#endif
