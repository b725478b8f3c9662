/* limiter.c - an exact sliding-window rate limiter (sliding log). */

/* Design note.
 *
 * Why a sliding log: a fixed-window counter lets 2K starts through around a
 * window boundary, and a token bucket lets a full bucket burst on top of the
 * refill; neither bounds *every* interval of length W. Keeping the times of
 * the last K starts does: a start at `now` is allowed iff fewer than K starts
 * are recorded or the oldest of the last K is <= now - W. Then any interval
 * [t, t + W) that held K + 1 starts would contain a start whose K-th
 * predecessor lies less than W before it, which the rule refused. A caller
 * that starts exactly when allowed gets full rate: N starts take
 * (ceil(N / K) - 1) * W. Memory is K timestamps in a ring buffer; delay() and
 * take() are O(1).
 *
 * K = floor(R * W / 1e9), computed with a relative tolerance of 1e-12 so that
 * products such as 0.1 * 10 s still give 1. When K < 1 the window is
 * stretched to 1e9 / R ns (rounded up, never faster than R) with K = 1.
 *
 * Live changes (ft_limiter_set) keep history. Lowering K keeps the newest K'
 * starts, which is all the new rule reads, so it is exact. Raising K needs
 * starts the old ring already forgot; rather than pretend they never
 * happened (that would allow a burst of K' - K at once), the ring is padded
 * with upper bounds on their times. Upper bounds only ever make the limiter
 * stricter, so the guarantee holds against real history. The bounds are
 * tight for a caller who kept to the old rule: a start s_m made under the
 * current (K, W) proves s_{m-K} <= s_m - W; for starts made under an older
 * configuration we only use s_{m-1} <= s_m. `total` counts real starts so we
 * never pad more entries than history really had.
 *
 * Unlimited limiters record nothing, so switching to or from unlimited
 * starts with an empty history. */

#include "limiter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct ft_limiter {
  double rps;      /* configured rate; 0 = unlimited */
  uint64_t window; /* effective window W in ns; 0 when unlimited */
  uint32_t cap;    /* K, the ring size; 0 when unlimited */
  uint32_t head;   /* ring index of the oldest recorded start */
  uint32_t count;  /* recorded starts, <= cap */
  uint64_t *ring;  /* start times, chronological from head */
  uint64_t total;  /* real starts in history; count < cap => total == count */
  uint64_t since_set; /* starts recorded under the current (K, W) */
};

/* Relative tolerance for turning R * W / 1e9 into an integer K. */
#define FT_LIMITER_EPS 1e-12

/* Rounds a finite x in [0, 2^64) down (up when `up`) to an integer, except
 * that a value within a relative FT_LIMITER_EPS of an integer is taken as
 * that integer. Plain casts, so no libm is needed. */
static uint64_t ft_limiter_snap_(double x, int up) {
  uint64_t t = (uint64_t)x; /* floor for x >= 0 */
  double frac = x - (double)t;
  if (frac <= x * FT_LIMITER_EPS)
    return t;
  if (1.0 - frac <= x * FT_LIMITER_EPS)
    return t + 1;
  return up ? t + 1 : t;
}

/* Computes K and W for (rps, window_ns). Unlimited (rps <= 0) gives K = 0,
 * W = 0. Returns 0, FT_EINVAL for a NaN or infinite rps, or FT_ERANGE when
 * K exceeds FT_LIMITER_MAX_CAPACITY or W does not fit in 64 bits. */
static int ft_limiter_config_(double rps, uint64_t window_ns, uint32_t *k,
                              uint64_t *w) {
  if (isnan(rps) || isinf(rps))
    return FT_EINVAL;
  if (rps <= 0) {
    *k = 0;
    *w = 0;
    return FT_OK;
  }
  double kd = rps * (double)window_ns / 1e9;
  if (kd >= (double)FT_LIMITER_MAX_CAPACITY + 1.0)
    return FT_ERANGE;
  uint64_t kk = ft_limiter_snap_(kd, 0);
  if (kk > FT_LIMITER_MAX_CAPACITY)
    return FT_ERANGE;
  if (kk >= 1) {
    *k = (uint32_t)kk;
    *w = window_ns;
    return FT_OK;
  }
  double wd = 1e9 / rps;
  if (wd >= 18446744073709551615.0) /* 2^64: not representable */
    return FT_ERANGE;
  uint64_t ww = ft_limiter_snap_(wd, 1);
  *k = 1;
  *w = ww < 1 ? 1 : ww;
  return FT_OK;
}

int ft_limiter_check(double rps, uint64_t window_ns) {
  uint32_t k;
  uint64_t w;
  return ft_limiter_config_(rps, window_ns, &k, &w);
}

int ft_limiter_new(ft_limiter **out, double rps, uint64_t window_ns) {
  uint32_t k;
  uint64_t w;
  if (out == NULL)
    return FT_EINVAL;
  int rc = ft_limiter_config_(rps, window_ns, &k, &w);
  if (rc < 0)
    return rc;
  ft_limiter *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return FT_ENOMEM;
  if (k > 0) {
    l->ring = malloc((size_t)k * sizeof(uint64_t));
    if (l->ring == NULL) {
      free(l);
      return FT_ENOMEM;
    }
  }
  l->rps = k > 0 ? rps : 0.0;
  l->window = w;
  l->cap = k;
  *out = l;
  return FT_OK;
}

void ft_limiter_free(ft_limiter *l) {
  if (l == NULL)
    return;
  free(l->ring);
  free(l);
}

uint64_t ft_limiter_delay(const ft_limiter *l, uint64_t now_ns) {
  if (l == NULL || l->cap == 0 || l->count < l->cap)
    return 0;
  uint64_t oldest = l->ring[l->head];
  if (now_ns >= oldest) {
    uint64_t elapsed = now_ns - oldest;
    return elapsed >= l->window ? 0 : l->window - elapsed;
  }
  /* now is before the oldest start (clock misuse): wait for it, saturating */
  uint64_t ahead = oldest - now_ns;
  return ahead > UINT64_MAX - l->window ? UINT64_MAX : ahead + l->window;
}

void ft_limiter_take(ft_limiter *l, uint64_t now_ns) {
  if (l == NULL || l->cap == 0)
    return;
  if (l->count > 0) {
    uint64_t last = l->ring[(l->head + l->count - 1) % l->cap];
    if (now_ns < last)
      now_ns = last; /* keep the log sorted; a later time is only stricter */
  }
  if (l->count < l->cap) {
    l->ring[(l->head + l->count) % l->cap] = now_ns;
    l->count++;
  } else {
    l->ring[l->head] = now_ns;
    l->head = (l->head + 1) % l->cap;
  }
  l->total++;
  l->since_set++;
}

/* Returns the i-th recorded start, 0 = oldest. */
static uint64_t ft_limiter_at_(const ft_limiter *l, uint32_t i) {
  return l->ring[(l->head + i) % l->cap];
}

/* Builds the history for a new ring of capacity k into nr (chronological):
 * the newest min(count, k) recorded starts, preceded when k > count by upper
 * bounds for forgotten starts (see the design note). Returns the number of
 * entries written. */
static uint32_t ft_limiter_rebuild_(const ft_limiter *l, uint64_t *nr,
                                    uint32_t k) {
  uint32_t keep = l->count < k ? l->count : k;
  uint64_t forgotten = l->total - l->count;
  uint32_t pad = 0;
  if (k > l->count)
    pad = (uint64_t)(k - l->count) < forgotten ? k - l->count
                                               : (uint32_t)forgotten;
  for (uint32_t i = 0; i < keep; i++)
    nr[pad + i] = ft_limiter_at_(l, l->count - keep + i);
  /* pad > 0 implies a full old ring: keep == l->count == l->cap. Entry
   * nr[pad - j] stands for s_{-j}; s_{K-j} sits at nr[pad + K - j]. */
  for (uint32_t j = 1; j <= pad; j++) {
    uint64_t bound = nr[pad - j + 1]; /* s_{-j} <= s_{-j+1} */
    if (j <= l->since_set) {
      /* s_{K-j} was allowed under the current (K, W) */
      uint64_t later = nr[pad + l->cap - j];
      uint64_t b2 = later > l->window ? later - l->window : 0;
      if (b2 < bound)
        bound = b2;
    }
    nr[pad - j] = bound;
  }
  return pad + keep;
}

int ft_limiter_set(ft_limiter *l, double rps, uint64_t window_ns) {
  uint32_t k;
  uint64_t w;
  if (l == NULL)
    return FT_EINVAL;
  int rc = ft_limiter_config_(rps, window_ns, &k, &w);
  if (rc < 0)
    return rc;
  if (k == 0 || l->cap == 0) {
    /* to or from unlimited: no usable history */
    uint64_t *nr = NULL;
    if (k > 0) {
      nr = malloc((size_t)k * sizeof(uint64_t));
      if (nr == NULL)
        return FT_ENOMEM;
    }
    free(l->ring);
    l->ring = nr;
    l->head = l->count = 0;
    l->total = l->since_set = 0;
  } else if (k != l->cap) {
    uint64_t *nr = malloc((size_t)k * sizeof(uint64_t));
    if (nr == NULL)
      return FT_ENOMEM;
    uint32_t n = ft_limiter_rebuild_(l, nr, k);
    free(l->ring);
    l->ring = nr;
    l->head = 0;
    l->count = n; /* n < k only when n == total: all of history is kept */
    l->since_set = 0;
  } else if (w != l->window) {
    l->since_set = 0;
  }
  l->rps = k > 0 ? rps : 0.0;
  l->window = w;
  l->cap = k;
  return FT_OK;
}

size_t ft_limiter_saved_words(const ft_limiter *l) {
  return l != NULL ? 6 + (size_t)l->count : 0;
}

void ft_limiter_save(const ft_limiter *l, uint64_t *words) {
  memcpy(&words[0], &l->rps, sizeof l->rps);
  words[1] = l->window;
  words[2] = l->cap;
  words[3] = l->count;
  words[4] = l->total;
  words[5] = l->since_set;
  for (uint32_t i = 0; i < l->count; i++)
    words[6 + i] = ft_limiter_at_(l, i);
}

int ft_limiter_load(ft_limiter **out, const uint64_t *words, size_t n) {
  if (out == NULL || words == NULL || n < 6)
    return FT_EINVAL;
  double rps;
  memcpy(&rps, &words[0], sizeof rps);
  uint64_t cap = words[2], count = words[3];
  /* what a save writes: unlimited has no ring, K and W agree with it */
  if (isnan(rps) || isinf(rps) || rps < 0 || cap > FT_LIMITER_MAX_CAPACITY ||
      count > cap || n != 6 + count || words[4] < count ||
      (count < cap && words[4] != count) || words[5] > words[4] ||
      (cap == 0) != (rps == 0) || (cap == 0) != (words[1] == 0))
    return FT_EINVAL;
  for (uint64_t i = 1; i < count; i++)
    if (words[6 + i] < words[5 + i])
      return FT_EINVAL; /* starts are recorded in order */
  ft_limiter *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return FT_ENOMEM;
  if (cap > 0 && (l->ring = malloc((size_t)cap * sizeof(uint64_t))) == NULL) {
    free(l);
    return FT_ENOMEM;
  }
  l->rps = rps;
  l->window = words[1];
  l->cap = (uint32_t)cap;
  l->count = (uint32_t)count;
  l->total = words[4];
  l->since_set = words[5];
  if (count > 0)
    memcpy(l->ring, words + 6, (size_t)count * sizeof(uint64_t));
  *out = l;
  return FT_OK;
}

double ft_limiter_rps(const ft_limiter *l) { return l ? l->rps : 0.0; }

uint64_t ft_limiter_window(const ft_limiter *l) { return l ? l->window : 0; }

uint32_t ft_limiter_capacity(const ft_limiter *l) { return l ? l->cap : 0; }

int ft_limiter_grant(ft_limiter *l, double rps, uint64_t *last,
                     uint64_t now_ns, uint64_t horizon_ns, int want,
                     uint64_t *starts) {
  uint64_t end =
      now_ns + horizon_ns < now_ns ? UINT64_MAX : now_ns + horizon_ns;
  int n = 0;
  for (; rps <= 0 && n < want; n++)
    starts[n] = now_ns; /* unlimited */
  for (; n < want; n++) {
    uint64_t t = now_ns > *last ? now_ns : *last;
    uint64_t d = ft_limiter_delay(l, t);
    if (d > end - t)
      break;
    t += d;
    ft_limiter_take(l, t);
    *last = t;
    starts[n] = t;
  }
  return n;
}

uint64_t ft_limiter_delay_all(ft_limiter *const *ls, size_t n,
                              uint64_t now_ns) {
  uint64_t worst = 0;
  if (ls == NULL)
    return 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t d = ft_limiter_delay(ls[i], now_ns);
    if (d > worst)
      worst = d;
  }
  return worst;
}

void ft_limiter_take_all(ft_limiter *const *ls, size_t n, uint64_t now_ns) {
  if (ls == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    ft_limiter_take(ls[i], now_ns);
}
