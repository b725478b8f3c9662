/* test_limiter.c - unit tests for core/limiter.c with an injected clock. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "ft_test.h"
#include "ft_trace.h"
#include "limiter.h"


/* ---- helpers ------------------------------------------------------------ */

/* A limiter under test, behind function pointers so the same caller and the
 * same checker can drive the sliding log and two flawed designs. */
typedef struct sim_lim {
  uint64_t (*delay)(void *ctx, uint64_t now);
  void (*take)(void *ctx, uint64_t now);
  void *ctx;
} sim_lim;

static uint64_t log_delay(void *c, uint64_t now) {
  return ft_limiter_delay(c, now);
}
static void log_take(void *c, uint64_t now) { ft_limiter_take(c, now); }

/* Fixed-window counter: at most k starts per aligned window [i*w, (i+1)*w). */
typedef struct fixed_win {
  uint64_t w, k, win, used;
} fixed_win;
static uint64_t fw_delay(void *c, uint64_t now) {
  fixed_win *f = c;
  if (now / f->w != f->win || f->used < f->k)
    return 0;
  return (f->win + 1) * f->w - now;
}
static void fw_take(void *c, uint64_t now) {
  fixed_win *f = c;
  if (now / f->w != f->win) {
    f->win = now / f->w;
    f->used = 0;
  }
  f->used++;
}

/* Token bucket of k tokens refilled at k per w, as GCRA (exact integers;
 * w must be a multiple of k). */
typedef struct bucket {
  uint64_t t, tau, tat;
} bucket;
static uint64_t tb_delay(void *c, uint64_t now) {
  bucket *b = c;
  return b->tat > now + b->tau ? b->tat - b->tau - now : 0;
}
static void tb_take(void *c, uint64_t now) {
  bucket *b = c;
  b->tat = (b->tat > now ? b->tat : now) + b->t;
}

/* Bursty demand: n arrival times (sorted), bursts of 1..3k requests separated
 * by gaps of 0..2w, so idle periods and backlogs both occur. */
static void make_arrivals(uint64_t *a, size_t n, uint32_t k, uint64_t w,
                          uint64_t seed) {
  uint64_t s = seed, now = 1000;
  size_t i = 0;
  while (i < n) {
    size_t burst = 1 + rng_next(&s) % (3 * (uint64_t)k);
    for (size_t b = 0; b < burst && i < n; b++)
      a[i++] = now;
    now += rng_next(&s) % (2 * w + 1);
  }
}

/* A greedy caller: it starts a pending request whenever delay() == 0. When
 * blocked it advances time by exactly the returned delay (random_steps 0) or
 * by a random step in [1, delay] (random_steps 1). Start times go to out. */
static void run_greedy(sim_lim *lim, const uint64_t *arr, size_t n,
                       int random_steps, uint64_t seed, uint64_t *out) {
  uint64_t s = seed | 1, now = 0;
  size_t started = 0;
  while (started < n) {
    if (arr[started] > now) {
      now = arr[started];
      continue;
    }
    uint64_t d = lim->delay(lim->ctx, now);
    if (d == 0) {
      lim->take(lim->ctx, now);
      out[started++] = now;
    } else {
      now += random_steps ? 1 + rng_next(&s) % d : d;
    }
  }
}

/* ---- tests -------------------------------------------------------------- */

/* K starts are allowed at once; then delay is exactly the time until the
 * oldest start leaves the window, and it follows the log start by start. */
FT_TEST(test_burst_then_exact_delay) {
  ft_limiter *l = NULL;
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 10.0, SEC), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_capacity(l), 10);
  FT_CHECK_EQ_INT(ft_limiter_window(l), SEC);
  for (int i = 0; i < 10; i++) {
    FT_CHECK_EQ_INT(ft_limiter_delay(l, 5000 + i * MS), 0);
    ft_limiter_take(l, 5000 + i * MS); /* starts at 5000 + 0..9 ms */
  }
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 5000 + 9 * MS), SEC - 9 * MS);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 5000 + 300 * MS), 700 * MS);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 5000 + SEC - 1), 1);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 5000 + SEC), 0);
  ft_limiter_take(l, 5000 + SEC);
  /* the oldest is now the start at 5000 + 1 ms */
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 5000 + SEC), MS);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 5000 + SEC + MS), 0);
  /* a clock before the oldest start waits for it plus the window */
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 4000 + MS), 1000 + SEC);
  ft_limiter_free(l);
}

/* The brute-force property: over many (R, W), a greedy caller facing bursty
 * demand never puts more than K starts in any interval [t, t + W), and the
 * limiter is not over-cautious: some interval holds exactly K. */
FT_TEST(test_greedy_sliding_property) {
  static const double rps[] = {0.5, 1, 3, 7, 10, 33.3, 100, 1000, 123456};
  static const uint64_t win[] = {MS, 100 * MS, SEC, 2500 * MS, 10 * SEC};
  enum { N = 2000 };
  uint64_t *arr = malloc(N * sizeof(*arr)), *out = malloc(N * sizeof(*out));
  int combos = 0;
  for (size_t r = 0; r < sizeof(rps) / sizeof(rps[0]); r++) {
    for (size_t w = 0; w < sizeof(win) / sizeof(win[0]); w++) {
      ft_limiter *l = NULL;
      FT_CHECK_EQ_INT(ft_limiter_new(&l, rps[r], win[w]), FT_OK);
      uint32_t k = ft_limiter_capacity(l);
      uint64_t wn = ft_limiter_window(l);
      if (k > N / 5) { /* too few starts to fill the window many times */
        ft_limiter_free(l);
        continue;
      }
      for (int mode = 0; mode < 2; mode++) {
        ft_limiter_free(l);
        FT_CHECK_EQ_INT(ft_limiter_new(&l, rps[r], win[w]), FT_OK);
        make_arrivals(arr, N, k, wn, 7 + r * 31 + w);
        sim_lim sl = {log_delay, log_take, l};
        run_greedy(&sl, arr, N, mode, 99 + r + w, out);
        FT_CHECK_EQ_INT(max_in_window(out, N, wn), k);
        combos++;
      }
      ft_limiter_free(l);
    }
  }
  FT_CHECK(combos >= 60);
  free(arr);
  free(out);
}

/* The same caller and demand against a fixed-window counter and a token
 * bucket with the same K and W: the checker above finds intervals with more
 * than K starts, so it is a meaningful check (the sliding log passes it). */
FT_TEST(test_checker_catches_fixed_window_and_bucket) {
  enum { N = 2000 };
  const uint32_t k = 10;
  const uint64_t w = SEC;
  uint64_t *arr = malloc(N * sizeof(*arr)), *out = malloc(N * sizeof(*out));
  make_arrivals(arr, N, k, w, 4242);
  for (int mode = 0; mode < 2; mode++) {
    fixed_win f = {w, k, 0, 0};
    sim_lim sf = {fw_delay, fw_take, &f};
    run_greedy(&sf, arr, N, mode, 5, out);
    FT_CHECK(max_in_window(out, N, w) > k);
    /* the fixed window does honour its own aligned windows */
    size_t per_window = 0, best = 0;
    for (size_t i = 0; i < N; i++) {
      per_window = (i > 0 && out[i] / w == out[i - 1] / w) ? per_window + 1 : 1;
      best = per_window > best ? per_window : best;
    }
    FT_CHECK_EQ_INT(best, k);

    bucket b = {w / k, (k - 1) * (w / k), 0};
    sim_lim sb = {tb_delay, tb_take, &b};
    run_greedy(&sb, arr, N, mode, 5, out);
    FT_CHECK(max_in_window(out, N, w) > k);

    ft_limiter *l = NULL;
    FT_CHECK_EQ_INT(ft_limiter_new(&l, 10.0, w), FT_OK);
    sim_lim sl = {log_delay, log_take, l};
    run_greedy(&sl, arr, N, mode, 5, out);
    FT_CHECK_EQ_INT(max_in_window(out, N, w), k);
    ft_limiter_free(l);
  }
  free(arr);
  free(out);
}

/* Full rate: a greedy caller with N requests ready at once makes N starts in
 * exactly (ceil(N / K) - 1) * W. */
FT_TEST(test_ideal_time) {
  static const struct {
    double rps;
    uint64_t w;
    uint64_t n;
  } c[] = {{10, SEC, 1},      {10, SEC, 10},        {10, SEC, 11},
           {10, SEC, 1000},   {7, 3 * SEC, 1000},   {0.5, SEC, 7},
           {3, 100 * MS, 50}, {1000, 50 * MS, 999}, {200000, SEC, 1000001}};
  for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    ft_limiter *l = NULL;
    FT_CHECK_EQ_INT(ft_limiter_new(&l, c[i].rps, c[i].w), FT_OK);
    uint64_t k = ft_limiter_capacity(l), w = ft_limiter_window(l);
    uint64_t t0 = 777, now = t0, last = 0;
    for (uint64_t s = 0; s < c[i].n;) {
      uint64_t d = ft_limiter_delay(l, now);
      if (d == 0) {
        ft_limiter_take(l, now);
        last = now;
        s++;
      } else {
        now += d;
      }
    }
    FT_CHECK_EQ_INT(last - t0, ((c[i].n + k - 1) / k - 1) * w);
    ft_limiter_free(l);
  }
}

/* K < 1: rps 0.5 gives one start per 2 s whatever window was asked for. */
FT_TEST(test_fractional_rate) {
  ft_limiter *l = NULL;
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 0.5, SEC), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_capacity(l), 1);
  FT_CHECK_EQ_INT(ft_limiter_window(l), 2 * SEC);
  FT_CHECK(ft_limiter_rps(l) == 0.5);
  ft_limiter_take(l, 10 * SEC);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 10 * SEC), 2 * SEC);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 11500 * MS), 500 * MS);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 12 * SEC), 0);
  ft_limiter_free(l);
  /* 3 rps over 100 ms is 0.3 starts: one per ceil(1e9 / 3) ns */
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 3.0, 100 * MS), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_capacity(l), 1);
  FT_CHECK_EQ_INT(ft_limiter_window(l), 333333334);
  ft_limiter_free(l);
  /* a zero window falls back to the same rule */
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 4.0, 0), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_capacity(l), 1);
  FT_CHECK_EQ_INT(ft_limiter_window(l), 250 * MS);
  ft_limiter_free(l);
}

/* K is floor(R * W / 1e9) without floating-point surprises. */
FT_TEST(test_capacity_rounding_and_errors) {
  static const struct {
    double rps;
    uint64_t w;
    uint32_t k;
  } c[] = {{0.1, 10 * SEC, 1}, {3.3, 10 * SEC, 33}, {0.7, 10 * SEC, 7},
           {1.9, SEC, 1},      {100, 10 * MS, 1},   {1e6, SEC, 1000000}};
  for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    ft_limiter *l = NULL;
    FT_CHECK_EQ_INT(ft_limiter_new(&l, c[i].rps, c[i].w), FT_OK);
    FT_CHECK_EQ_INT(ft_limiter_capacity(l), c[i].k);
    FT_CHECK_EQ_INT(ft_limiter_window(l), c[i].w);
    ft_limiter_free(l);
  }
  ft_limiter *l = NULL; /* must stay untouched on error */
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 50000001.0, SEC), FT_ERANGE);
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 1.0, UINT64_MAX), FT_ERANGE);
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 1e-12, SEC), FT_ERANGE);
  FT_CHECK_EQ_INT(ft_limiter_new(&l, NAN, SEC), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_limiter_new(&l, INFINITY, SEC), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_limiter_new(NULL, 1.0, SEC), FT_EINVAL);
  FT_CHECK(l == NULL);
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 1e-6, SEC), FT_OK); /* 1 per 11.6 days */
  FT_CHECK_EQ_INT(ft_limiter_window(l), 1000000 * SEC);
  FT_CHECK_EQ_INT(ft_limiter_set(l, 1e8, SEC), FT_ERANGE);
  FT_CHECK_EQ_INT(ft_limiter_window(l), 1000000 * SEC); /* unchanged */
  ft_limiter_free(l);
  ft_limiter_free(NULL);
}

/* ft_limiter_check says what ft_limiter_new would, at the edges too: K
 * rounded up to the maximum + 1, W of 2^64 ns, NaN and infinity. */
FT_TEST(test_check_agrees_with_new) {
  const double max = (double)FT_LIMITER_MAX_CAPACITY;
  const double rps[] = {0,         -1,  1e-12,          1e-6,
                        1,         max, max + 0.999999, max + 0.999,
                        max + 1.0, NAN, INFINITY};
  static const uint64_t w[] = {0, 1, MS, SEC, 10 * SEC, UINT64_MAX};
  for (size_t i = 0; i < sizeof(rps) / sizeof(rps[0]); i++) {
    for (size_t j = 0; j < sizeof(w) / sizeof(w[0]); j++) {
      ft_limiter *l = NULL;
      int want = ft_limiter_new(&l, rps[i], w[j]);
      FT_CHECK_EQ_INT(ft_limiter_check(rps[i], w[j]), want);
      ft_limiter_free(l);
    }
  }
  /* K within the rounding tolerance of max + 1 is max + 1; further off,
   * it rounds down to max */
  FT_CHECK_EQ_INT(ft_limiter_check(max + 0.999999, SEC), FT_ERANGE);
  FT_CHECK_EQ_INT(ft_limiter_check(max + 0.999, SEC), FT_OK);
}

/* Unlimited limiters (rps <= 0) and NULL always allow. */
FT_TEST(test_unlimited) {
  ft_limiter *a = NULL, *b = NULL;
  FT_CHECK_EQ_INT(ft_limiter_new(&a, 0.0, SEC), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_new(&b, -3.0, SEC), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_capacity(a), 0);
  FT_CHECK(ft_limiter_rps(b) == 0.0);
  for (int i = 0; i < 100000; i++) {
    FT_CHECK_EQ_INT(ft_limiter_delay(a, 5) + ft_limiter_delay(b, 5), 0);
    ft_limiter_take(a, 5);
    ft_limiter_take(b, 5);
  }
  FT_CHECK_EQ_INT(ft_limiter_delay(NULL, 5), 0);
  ft_limiter_take(NULL, 5);
  ft_limiter *const all[] = {a, NULL, b};
  FT_CHECK_EQ_INT(ft_limiter_delay_all(all, 3, 5), 0);
  ft_limiter_take_all(all, 3, 5);
  /* from unlimited to limited: starts with an empty history */
  FT_CHECK_EQ_INT(ft_limiter_set(a, 2.0, SEC), FT_OK);
  ft_limiter_take(a, 5);
  ft_limiter_take(a, 5);
  FT_CHECK_EQ_INT(ft_limiter_delay(a, 5), SEC);
  FT_CHECK_EQ_INT(ft_limiter_set(a, 0.0, SEC), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_delay(a, 5), 0);
  ft_limiter_free(a);
  ft_limiter_free(b);
}

/* Lowering the limit is enforced against the starts already made. */
FT_TEST(test_live_lower) {
  ft_limiter *l = NULL;
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 100.0, SEC), FT_OK);
  for (uint64_t i = 0; i < 100; i++)
    ft_limiter_take(l, i * MS); /* 100 starts at 0..99 ms */
  FT_CHECK_EQ_INT(ft_limiter_set(l, 10.0, SEC), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_capacity(l), 10);
  /* the 10 newest are 90..99 ms, so the next start is at 1.09 s */
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 500 * MS), 590 * MS);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 1090 * MS), 0);
  /* lower the window to 1 per 2 s: waits for the newest start + 2 s */
  FT_CHECK_EQ_INT(ft_limiter_set(l, 0.5, 0), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 1090 * MS), 2099 * MS - 1090 * MS);
  ft_limiter_free(l);
}

/* Raising the limit does not forget the starts the smaller ring dropped:
 * 200 starts at 1 rps, then 100 per 100 s allows the next start at 200 s
 * (the real history holds 100 starts in [100 s, 200 s)), not a burst. */
FT_TEST(test_live_raise) {
  ft_limiter *l = NULL;
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 1.0, SEC), FT_OK);
  for (uint64_t i = 0; i < 200; i++) {
    FT_CHECK_EQ_INT(ft_limiter_delay(l, i * SEC), 0);
    ft_limiter_take(l, i * SEC);
  }
  FT_CHECK_EQ_INT(ft_limiter_set(l, 1.0, 100 * SEC), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_capacity(l), 100);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 199500 * MS), 500 * MS);
  FT_CHECK_EQ_INT(ft_limiter_delay(l, 200 * SEC), 0);
  ft_limiter_free(l);

  /* short history: only the real number of forgotten starts is padded */
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 2.0, SEC), FT_OK);
  for (int i = 0; i < 3; i++)
    ft_limiter_take(l, 0); /* third start breaks the rule on purpose */
  FT_CHECK_EQ_INT(ft_limiter_set(l, 10.0, SEC), FT_OK);
  for (int i = 0; i < 7; i++) {
    FT_CHECK_EQ_INT(ft_limiter_delay(l, SEC / 2), 0);
    ft_limiter_take(l, SEC / 2);
  }
  FT_CHECK(ft_limiter_delay(l, SEC / 2) > 0);
  ft_limiter_free(l);
}

/* Random live changes, up and down, in the middle of greedy traffic. Every
 * start s made under (K, W) must see at most K starts of the real history
 * (its own included) in (s - W, s]: this is the sliding check for every
 * interval whose last start was made under that configuration. */
FT_TEST(test_live_changes_random) {
  static const struct {
    double rps;
    uint64_t w;
  } cfg[] = {{100, SEC},     {10, SEC},      {1, SEC},       {50, 200 * MS},
             {1, 100 * SEC}, {0.5, 0},       {200, 2 * SEC}, {20, 5 * SEC},
             {3, 10 * SEC},  {1000, 10 * MS}};
  enum { N = 6000, CFGS = sizeof(cfg) / sizeof(cfg[0]) };
  uint64_t *t = malloc(N * sizeof(*t)), *cw = malloc(N * sizeof(*cw));
  uint32_t *ck = malloc(N * sizeof(*ck));
  for (uint64_t seed = 1; seed <= 4; seed++) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ull, now = 0;
    ft_limiter *l = NULL;
    FT_CHECK_EQ_INT(ft_limiter_new(&l, cfg[0].rps, cfg[0].w), FT_OK);
    for (size_t i = 0; i < N;) {
      if (rng_next(&s) % 97 == 0) { /* a live change, sometimes twice */
        size_t c = rng_next(&s) % CFGS;
        FT_CHECK_EQ_INT(ft_limiter_set(l, cfg[c].rps, cfg[c].w), FT_OK);
        continue;
      }
      uint64_t d = ft_limiter_delay(l, now);
      if (d == 0) {
        ft_limiter_take(l, now);
        t[i] = now;
        ck[i] = ft_limiter_capacity(l);
        cw[i] = ft_limiter_window(l);
        i++;
      } else {
        now += (seed & 1) ? d : 1 + rng_next(&s) % d;
      }
      if (rng_next(&s) % 50 == 0)
        now += rng_next(&s) % (3 * SEC); /* idle now and then */
    }
    size_t bad = 0, tight = 0;
    for (size_t i = 0; i < N; i++) {
      size_t a = 0, b = i + 1; /* first index with t[a] > t[i] - cw[i] */
      while (a < b) {
        size_t m = a + (b - a) / 2;
        if (t[i] - t[m] < cw[i])
          b = m;
        else
          a = m + 1;
      }
      bad += (i + 1 - a) > ck[i];
      tight += (i + 1 - a) == ck[i];
    }
    FT_CHECK_EQ_INT(bad, 0);
    /* the limits were actually reached (less often with random overshoot) */
    FT_CHECK(tight > ((seed & 1) ? N / 10 : N / 25));
    ft_limiter_free(l);
  }
  free(t);
  free(cw);
  free(ck);
}

/* Stacking a global limiter (10 per 1 s) and two per-host limiters (4 per
 * 100 ms and 3 per 250 ms): the combined trace satisfies every limiter, and
 * delay_all is the largest single delay. */
FT_TEST(test_stacking) {
  ft_limiter *g = NULL, *h[2] = {NULL, NULL};
  FT_CHECK_EQ_INT(ft_limiter_new(&g, 10.0, SEC), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_new(&h[0], 40.0, 100 * MS), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_new(&h[1], 12.0, 250 * MS), FT_OK);
  enum { N = 3000 };
  uint64_t *all = malloc(N * sizeof(*all));
  uint64_t *per[2] = {malloc(N * sizeof(uint64_t)),
                      malloc(N * sizeof(uint64_t))};
  size_t nper[2] = {0, 0};
  uint64_t s = 12345, now = 0;
  for (size_t i = 0; i < N;) {
    int host = (int)(rng_next(&s) % 2);
    ft_limiter *const set[] = {g, NULL, h[host]};
    uint64_t d = ft_limiter_delay_all(set, 3, now);
    uint64_t dg = ft_limiter_delay(g, now), dh = ft_limiter_delay(h[host], now);
    FT_CHECK_EQ_INT(d, dg > dh ? dg : dh);
    if (d == 0) {
      ft_limiter_take_all(set, 3, now);
      all[i++] = now;
      per[host][nper[host]++] = now;
    } else {
      now += 1 + rng_next(&s) % d;
    }
  }
  FT_CHECK_EQ_INT(max_in_window(all, N, SEC), 10);
  FT_CHECK(max_in_window(per[0], nper[0], 100 * MS) <= 4);
  FT_CHECK(max_in_window(per[1], nper[1], 250 * MS) <= 3);
  FT_CHECK(nper[0] > N / 4 && nper[1] > N / 4);
  ft_limiter_free(g);
  ft_limiter_free(h[0]);
  ft_limiter_free(h[1]);
  free(all);
  free(per[0]);
  free(per[1]);
}

/* Saved and loaded (a shared store keeps limiters so): the loaded limiter
 * answers delay() as the saved one did at every step, takes and live
 * changes included (a raise reads the history's counts, which a save
 * keeps); words no save wrote are refused. */
/* A grant hands out the earliest starts in order, never back in time,
 * none past the horizon; unlimited grants are all now. */
FT_TEST(test_grant) {
  ft_limiter *l = NULL;
  FT_CHECK_EQ_INT(ft_limiter_new(&l, 2.0, SEC), FT_OK); /* 2 per second */
  uint64_t last = 0, starts[8];
  int n = ft_limiter_grant(l, 2.0, &last, 10 * SEC, 2 * SEC, 8, starts);
  /* 2 at 10 s, 2 at 11 s, 2 at 12 s: the horizon (12 s) is inclusive */
  FT_CHECK_EQ_INT(n, 6);
  static const uint64_t want[] = {10, 10, 11, 11, 12, 12};
  for (int i = 0; i < n && i < 6; i++)
    FT_CHECK_EQ_INT(starts[i], want[i] * SEC);
  FT_CHECK_EQ_INT(last, 12 * SEC);
  /* asked again "earlier" (another clock reading): never before last */
  n = ft_limiter_grant(l, 2.0, &last, 5 * SEC, 10 * SEC, 2, starts);
  FT_CHECK_EQ_INT(n, 2);
  FT_CHECK_EQ_INT(starts[0], 13 * SEC);
  FT_CHECK_EQ_INT(starts[1], 13 * SEC);
  /* a zero horizon grants only what is free now */
  n = ft_limiter_grant(l, 2.0, &last, 20 * SEC, 0, 4, starts);
  FT_CHECK_EQ_INT(n, 2);
  ft_limiter_free(l);
  /* no limit: all now, no limiter needed */
  last = 0;
  n = ft_limiter_grant(NULL, 0, &last, 7, 0, 3, starts);
  FT_CHECK_EQ_INT(n, 3);
  FT_CHECK_EQ_INT(starts[0], 7);
  FT_CHECK_EQ_INT(starts[2], 7);
}

FT_TEST(test_save_load) {
  const uint64_t W = 1000000000ull;
  ft_limiter *a = NULL;
  FT_CHECK_EQ_INT(ft_limiter_new(&a, 3, W), 0);
  if (a == NULL)
    return;
  uint64_t now = 10 * W, words[64];
  static const double rates[] = {3, 3, 2, 5, 0, 4, 4};
  for (int step = 0; step < 7 * 40; step++) {
    if (step % 40 == 0)
      FT_CHECK_EQ_INT(ft_limiter_set(a, rates[step / 40], W), 0);
    size_t n = ft_limiter_saved_words(a);
    FT_CHECK(n <= 64);
    ft_limiter_save(a, words);
    ft_limiter *b = NULL;
    FT_CHECK_EQ_INT(ft_limiter_load(&b, words, n), 0);
    if (b == NULL)
      break;
    FT_CHECK_EQ_INT(ft_limiter_delay(b, now), ft_limiter_delay(a, now));
    FT_CHECK_EQ_INT(ft_limiter_capacity(b), ft_limiter_capacity(a));
    /* a raise on the copy pads as it would on the original */
    FT_CHECK_EQ_INT(ft_limiter_set(b, 9, W), 0);
    ft_limiter *c = NULL;
    FT_CHECK_EQ_INT(ft_limiter_load(&c, words, n), 0);
    FT_CHECK_EQ_INT(ft_limiter_set(a, 9, W), 0);
    FT_CHECK_EQ_INT(ft_limiter_delay(b, now), ft_limiter_delay(a, now));
    ft_limiter_free(a);
    a = c;
    ft_limiter_free(b);
    uint64_t d = ft_limiter_delay(a, now);
    now += d;
    ft_limiter_take(a, now);
    now += W / 7;
  }
  size_t n = ft_limiter_saved_words(a);
  ft_limiter_save(a, words);
  ft_limiter *b = NULL;
  FT_CHECK_EQ_INT(ft_limiter_load(&b, words, n - 1), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_limiter_load(&b, words, 5), FT_EINVAL);
  words[2] = 0; /* K 0 with a rate */
  FT_CHECK_EQ_INT(ft_limiter_load(&b, words, n), FT_EINVAL);
  FT_CHECK(b == NULL);
  ft_limiter_free(a);
}

int main(void) {
  FT_RUN(test_burst_then_exact_delay);
  FT_RUN(test_greedy_sliding_property);
  FT_RUN(test_checker_catches_fixed_window_and_bucket);
  FT_RUN(test_ideal_time);
  FT_RUN(test_fractional_rate);
  FT_RUN(test_capacity_rounding_and_errors);
  FT_RUN(test_check_agrees_with_new);
  FT_RUN(test_unlimited);
  FT_RUN(test_live_lower);
  FT_RUN(test_live_raise);
  FT_RUN(test_live_changes_random);
  FT_RUN(test_stacking);
  FT_RUN(test_save_load);
  FT_RUN(test_grant);
  return FT_DONE();
}
