/* hash.h - fetchtree's one hash function: XXH3 from libxxhash, for the seen
 * set's keys, object table names, robots.txt origins and page links. */
#ifndef FT_HASH_H
#define FT_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

/* Why XXH3: it is a maintained library (Debian's libxxhash) rather than a
 * loop of our own, it is faster than byte-at-a-time FNV-1a on every length
 * (it reads words, and vectors on long inputs), and its 128-bit form is a
 * fingerprint good enough for the seen set (a collision among n keys has
 * probability about n^2 / 2^129). Its output is stable across versions and
 * platforms (XXH3 is frozen since 0.8.0), which the state database relies
 * on: it stores seen keys and names tables by these hashes. */

/* The 64-bit XXH3 of the n bytes at p (p may be NULL when n is 0). */
static inline uint64_t ft_hash64(const void *p, size_t n) {
  return XXH3_64bits(n > 0 ? p : "", n);
}

/* The 64-bit XXH3 of a NUL-terminated string. */
static inline uint64_t ft_hash_str(const char *s) {
  size_t n = 0;
  while (s[n] != '\0')
    n++;
  return XXH3_64bits(s, n);
}

#endif
