/* ft_trace.h - what tests that drive limiters with an injected clock share:
 * nanosecond units, a seeded PRNG, and the sliding-window check. */
#ifndef FT_TRACE_H
#define FT_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define MS 1000000ull
#define SEC 1000000000ull

static inline uint64_t rng_next(uint64_t *s) { /* xorshift64 */
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* The largest number of starts in any half-open interval [t, t + w) of the
 * sorted trace. The maximum is always reached by an interval that begins at
 * a start, so a two-pointer scan over every start covers all intervals. */
static inline size_t max_in_window(const uint64_t *t, size_t n, uint64_t w) {
  size_t best = 0, j = 0;
  for (size_t i = 0; i < n; i++) {
    if (j < i)
      j = i;
    while (j < n && t[j] - t[i] < w)
      j++;
    if (j - i > best)
      best = j - i;
  }
  return best;
}

#endif
