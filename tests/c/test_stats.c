/* test_stats.c - unit tests for core/stats.c: histogram buckets, counting,
 * percentiles and the printed summary. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ft_test.h"
#include "stats.h"

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------ */

/* A response with only the fields ft_stats_add reads. */
static ft_response resp(long status, ft_errkind err, int attempts,
                        double elapsed_ms, size_t body_len) {
  ft_response r = {0};
  r.status = status;
  r.error = err;
  r.attempts = attempts;
  r.elapsed_ms = elapsed_ms;
  r.body_len = body_len;
  r.body = "";
  r.message = "";
  return r;
}

/* Does v fall in bucket b's range: lower <= v < lower * (1 + 1/16) + 1? */
static int in_bucket_range(uint64_t v) {
  int b = ft_hist_bucket(v);
  if (b < 0 || b >= FT_HIST_BUCKETS)
    return 0;
  uint64_t lo = ft_hist_lower(b);
  return lo <= v && (long double)v < (long double)lo * 17 / 16 + 1;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The summary as a string (caller frees). */
static char *print_to_string(const ft_stats *s, double seconds) {
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  if (!f)
    return NULL;
  ft_stats_print(s, f, seconds);
  fclose(f);
  return out;
}

/* ---- histogram ---------------------------------------------------------- */

/* Buckets never go down as the value goes up, over 0..10^7 us one by one
 * and over the powers of two and their neighbours up to 2^63. */
FT_TEST(test_hist_bucket_monotonic) {
  int prev = ft_hist_bucket(0);
  FT_CHECK_EQ_INT(prev, 0);
  int bad = 0;
  for (uint64_t v = 1; v <= 10000000; v++) {
    int b = ft_hist_bucket(v);
    if (b < prev && bad++ < 5)
      fprintf(stderr, "  bucket(%llu) = %d < bucket(%llu) = %d\n",
              (unsigned long long)v, b, (unsigned long long)(v - 1), prev);
    prev = b;
  }
  FT_CHECK_EQ_INT(bad, 0);

  /* 2^e - 1, 2^e, 2^e + 1 for every e, in increasing order */
  uint64_t vals[3 * 64];
  size_t n = 0;
  for (int e = 0; e < 64; e++) {
    uint64_t p = 1ull << e;
    vals[n++] = p - 1;
    vals[n++] = p;
    vals[n++] = p + 1;
  }
  qsort(vals, n, sizeof(vals[0]), cmp_u64);
  prev = -1;
  for (size_t k = 0; k < n; k++) {
    int b = ft_hist_bucket(vals[k]);
    FT_CHECK(b >= 0 && b < FT_HIST_BUCKETS);
    if (b < prev) {
      fprintf(stderr, "  bucket(%llu) = %d went down from %d\n",
              (unsigned long long)vals[k], b, prev);
      ft_test_cur_failed_ = 1;
    }
    prev = b;
  }
  /* values past the last bucket's range land in the last bucket */
  FT_CHECK_EQ_INT(ft_hist_bucket(UINT64_MAX), FT_HIST_BUCKETS - 1);
  FT_CHECK_EQ_INT(ft_hist_bucket(1ull << 62), FT_HIST_BUCKETS - 1);
}

/* Each sampled value lies within 1/16 above its bucket's lower bound. */
FT_TEST(test_hist_lower_bound_precision) {
  int bad = 0;
  for (uint64_t v = 0; v <= 1000000; v++)
    if (!in_bucket_range(v) && bad++ < 5)
      fprintf(stderr, "  %llu outside its bucket\n", (unsigned long long)v);
  /* geometric sweep to 2^39, with powers of two and their neighbours */
  for (uint64_t v = 1000000; v <= (1ull << 39); v += v / 997 + 1)
    if (!in_bucket_range(v) && bad++ < 5)
      fprintf(stderr, "  %llu outside its bucket\n", (unsigned long long)v);
  for (int e = 1; e <= 39; e++) {
    uint64_t p = 1ull << e;
    uint64_t vals[4] = {p - 1, p, p + 1, p + p / 2};
    for (int k = 0; k < 4; k++)
      if (!in_bucket_range(vals[k]) && bad++ < 5)
        fprintf(stderr, "  %llu outside its bucket\n",
                (unsigned long long)vals[k]);
  }
  FT_CHECK_EQ_INT(bad, 0);

  /* small values are exact */
  for (uint64_t v = 0; v < FT_HIST_SUB; v++)
    FT_CHECK_EQ_INT(ft_hist_lower(ft_hist_bucket(v)), v);

  /* lower bounds strictly increase and each one maps back to its bucket */
  for (int b = 0; b < FT_HIST_BUCKETS; b++) {
    FT_CHECK_EQ_INT(ft_hist_bucket(ft_hist_lower(b)), b);
    if (b > 0)
      FT_CHECK(ft_hist_lower(b) > ft_hist_lower(b - 1));
  }
}

/* ---- counting ----------------------------------------------------------- */

FT_TEST(test_stats_add_counts) {
  ft_stats *s = calloc(1, sizeof(*s));
  static const struct {
    long status;
    ft_errkind err;
    int attempts;
    double ms;
    size_t bytes;
  } rows[] = {
      {200, FT_ERR_NONE, 1, 10, 100},
      {200, FT_ERR_NONE, 2, 20, 200},
      {404, FT_ERR_NONE, 1, 5, 7},
      {503, FT_ERR_RETRIES, 6, 900, 4},
      {0, FT_ERR_TIMEOUT, 3, 15000, 0},
      {0, FT_ERR_DNS, 1, 1, 0},
      {0, FT_ERR_DNS, 1, 2, 0},
      {0, FT_ERR_INPUT, 0, 0, 0}, /* never attempted: no latency */
      {200, FT_ERR_TOO_LARGE, 1, 30, 1000},
      {700, FT_ERR_NONE, 1, 3, 0}, /* a status out of range is not counted */
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    ft_response r = resp(rows[i].status, rows[i].err, rows[i].attempts,
                         rows[i].ms, rows[i].bytes);
    ft_stats_add(s, &r);
  }
  FT_CHECK_EQ_INT(s->requests, 10);
  FT_CHECK_EQ_INT(s->ok, 4);
  FT_CHECK_EQ_INT(s->attempts, 1 + 2 + 1 + 6 + 3 + 1 + 1 + 0 + 1 + 1);
  FT_CHECK_EQ_INT(s->bytes, 100 + 200 + 7 + 4 + 1000);
  FT_CHECK_EQ_INT(s->by_status[200], 3);
  FT_CHECK_EQ_INT(s->by_status[404], 1);
  FT_CHECK_EQ_INT(s->by_status[503], 1);
  FT_CHECK_EQ_INT(s->by_status[0], 0);
  uint64_t statuses = 0;
  for (int i = 0; i < 600; i++)
    statuses += s->by_status[i];
  FT_CHECK_EQ_INT(statuses, 5);
  FT_CHECK_EQ_INT(s->by_error[FT_ERR_NONE], 0);
  FT_CHECK_EQ_INT(s->by_error[FT_ERR_RETRIES], 1);
  FT_CHECK_EQ_INT(s->by_error[FT_ERR_TIMEOUT], 1);
  FT_CHECK_EQ_INT(s->by_error[FT_ERR_DNS], 2);
  FT_CHECK_EQ_INT(s->by_error[FT_ERR_INPUT], 1);
  FT_CHECK_EQ_INT(s->by_error[FT_ERR_TOO_LARGE], 1);
  FT_CHECK_EQ_INT(s->by_error[FT_ERR_CONNECT], 0);
  uint64_t hist = 0;
  for (int i = 0; i < FT_HIST_BUCKETS; i++)
    hist += s->hist[i];
  FT_CHECK_EQ_INT(hist, 9); /* everything but the input error */
  FT_CHECK_EQ_INT(s->max_us, 15000000);
  free(s);
}

/* ---- percentiles -------------------------------------------------------- */

/* Within 1/16 of the true value (and never above it: the histogram
 * reports lower bounds). */
static int near(double got, double want) {
  return got <= want * (1 + 1e-9) && got >= want * (1 - 0.0625);
}

FT_TEST(test_percentile_uniform) {
  ft_stats *s = calloc(1, sizeof(*s));
  for (int ms = 1; ms <= 1000; ms++) {
    ft_response r = resp(200, FT_ERR_NONE, 1, ms, 0);
    ft_stats_add(s, &r);
  }
  static const struct {
    double q, want;
  } rows[] = {
      {0.0, 1},    {0.10, 100}, {0.25, 250}, {0.50, 500},
      {0.90, 900}, {0.99, 990}, {0.999, 999}, {1.0, 1000},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    double got = ft_stats_percentile(s, rows[i].q);
    /* the rank may be either neighbour of q * n */
    if (!near(got, rows[i].want) && !near(got, rows[i].want + 1)) {
      fprintf(stderr, "  p%g: got %g, want about %g\n", rows[i].q * 100, got,
              rows[i].want);
      ft_test_cur_failed_ = 1;
    }
  }
  FT_CHECK(ft_stats_percentile(s, 0.5) <= ft_stats_percentile(s, 0.9));
  FT_CHECK(ft_stats_percentile(s, 0.9) <= ft_stats_percentile(s, 0.99));
  free(s);
}

FT_TEST(test_percentile_known_distributions) {
  /* all equal */
  ft_stats *s = calloc(1, sizeof(*s));
  for (int i = 0; i < 50; i++) {
    ft_response r = resp(200, FT_ERR_NONE, 1, 5, 0);
    ft_stats_add(s, &r);
  }
  FT_CHECK(near(ft_stats_percentile(s, 0.0), 5));
  FT_CHECK(near(ft_stats_percentile(s, 0.5), 5));
  FT_CHECK(near(ft_stats_percentile(s, 1.0), 5));
  free(s);

  /* bimodal: 90 fast (2 ms), 10 slow (800 ms) */
  s = calloc(1, sizeof(*s));
  for (int i = 0; i < 100; i++) {
    ft_response r = resp(200, FT_ERR_NONE, 1, i < 90 ? 2 : 800, 0);
    ft_stats_add(s, &r);
  }
  FT_CHECK(near(ft_stats_percentile(s, 0.5), 2));
  FT_CHECK(near(ft_stats_percentile(s, 0.89), 2));
  FT_CHECK(near(ft_stats_percentile(s, 0.90), 800));
  FT_CHECK(near(ft_stats_percentile(s, 0.99), 800));
  free(s);

  /* sub-16 us latencies are exact: 0.004 ms is bucket 4, and 4 us is 0.004 */
  s = calloc(1, sizeof(*s));
  ft_response r = resp(200, FT_ERR_NONE, 1, 0.0045, 0);
  ft_stats_add(s, &r);
  FT_CHECK(ft_stats_percentile(s, 0.5) == 0.004);
  free(s);

  /* empty, or only never-attempted requests: 0 */
  s = calloc(1, sizeof(*s));
  FT_CHECK(ft_stats_percentile(s, 0.5) == 0);
  FT_CHECK(ft_stats_percentile(s, 0.0) == 0);
  FT_CHECK(ft_stats_percentile(s, 1.0) == 0);
  r = resp(0, FT_ERR_INPUT, 0, 0, 0);
  ft_stats_add(s, &r);
  FT_CHECK(ft_stats_percentile(s, 0.99) == 0);
  free(s);
}

/* ---- summary ------------------------------------------------------------ */

FT_TEST(test_stats_print) {
  ft_stats *s = calloc(1, sizeof(*s));
  static const struct {
    long status;
    ft_errkind err;
    int attempts;
    double ms;
  } rows[] = {
      {200, FT_ERR_NONE, 1, 10},   {200, FT_ERR_NONE, 1, 10},
      {200, FT_ERR_NONE, 2, 10},   {404, FT_ERR_NONE, 1, 10},
      {0, FT_ERR_TIMEOUT, 3, 10},  {0, FT_ERR_DNS, 1, 10},
      {0, FT_ERR_DNS, 1, 10},      {503, FT_ERR_RETRIES, 6, 10},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    ft_response r = resp(rows[i].status, rows[i].err, rows[i].attempts,
                         rows[i].ms, 0);
    ft_stats_add(s, &r);
  }
  char *out = print_to_string(s, 2.0);
  FT_CHECK(out != NULL);
  static const char *const want[] = {
      "fetchtree: 8 requests in 2.00 s, 4/s, 16 attempts\n",
      "  status  200: 3  404: 1  503: 1\n",
      "  errors  dns: 2  timeout: 1  retries_exhausted: 1\n",
      "  latency ms  p50 ",
      " max 10.00\n",
  };
  for (size_t i = 0; out && i < N_ROWS(want); i++) {
    if (!strstr(out, want[i])) {
      fprintf(stderr, "  missing \"%s\" in:\n%s", want[i], out);
      ft_test_cur_failed_ = 1;
    }
  }
  /* the substrings the brief names, and the line order */
  FT_CHECK(out && strstr(out, "status  200: 3"));
  FT_CHECK(out && strstr(out, "errors  timeout: 1") == NULL); /* dns first */
  FT_CHECK(out && strstr(out, "timeout: 1"));
  FT_CHECK(out && strstr(out, "status") < strstr(out, "errors"));
  FT_CHECK(out && strstr(out, "errors") < strstr(out, "latency"));
  free(out);
  free(s);

  /* a single error kind: "errors  timeout: 1"; no statuses: no status line */
  s = calloc(1, sizeof(*s));
  ft_response r = resp(0, FT_ERR_TIMEOUT, 1, 5000, 0);
  ft_stats_add(s, &r);
  out = print_to_string(s, 0);
  FT_CHECK(out && strstr(out, "fetchtree: 1 requests in 0.00 s, 0/s, 1 attempts\n"));
  FT_CHECK(out && strstr(out, "  errors  timeout: 1\n"));
  FT_CHECK(out && !strstr(out, "status"));
  FT_CHECK(out && strstr(out, "max 5000.00\n"));
  free(out);
  free(s);

  /* only input errors: no latency line */
  s = calloc(1, sizeof(*s));
  r = resp(0, FT_ERR_INPUT, 0, 0, 0);
  ft_stats_add(s, &r);
  ft_stats_add(s, &r);
  out = print_to_string(s, 1.0);
  FT_CHECK(out && strcmp(out, "fetchtree: 2 requests in 1.00 s, 2/s, 0 attempts\n"
                              "  errors  input: 2\n") == 0);
  free(out);
  free(s);

  /* nothing at all: the first line only */
  s = calloc(1, sizeof(*s));
  out = print_to_string(s, 0.5);
  FT_CHECK(out && strcmp(out, "fetchtree: 0 requests in 0.50 s, 0/s, 0 attempts\n") == 0);
  free(out);
  free(s);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_hist_bucket_monotonic);
  FT_RUN(test_hist_lower_bound_precision);
  FT_RUN(test_stats_add_counts);
  FT_RUN(test_percentile_uniform);
  FT_RUN(test_percentile_known_distributions);
  FT_RUN(test_stats_print);
  return FT_DONE();
}
