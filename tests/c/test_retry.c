/* test_retry.c - unit tests for core/retry.c: statuses, backoff, Retry-After,
 * decide(). */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "ft_test.h"
#include "ft_trace.h"
#include "retry.h"


/* 2015-10-21 07:28:00 UTC, the instant in the RFC 9110 examples. */
#define DATE_S 1445412480

/* min(cap, base * 2^k) computed without shifts, for comparison. */
static uint64_t expect_upper(uint64_t base, uint64_t cap, int k) {
  uint64_t v = base;
  for (int i = 0; i < k; i++) {
    if (v > cap / 2)
      return cap;
    v *= 2;
  }
  return v < cap ? v : cap;
}

static int count_set(const ft_retry_policy *p) {
  int n = 0;
  for (int s = 0; s < 600; s++)
    n += p->retry_status[s] != 0;
  return n;
}

FT_TEST(test_defaults) {
  ft_retry_policy p;
  memset(&p, 0xAB, sizeof(p));
  ft_retry_policy_default(&p);
  FT_CHECK_EQ_INT(p.max_retries, 5);
  FT_CHECK_EQ_INT(p.base_ns, 100 * MS);
  FT_CHECK_EQ_INT(p.cap_ns, 10 * SEC);
  FT_CHECK_EQ_INT(p.max_retry_after_ns, 60 * SEC);
  FT_CHECK_EQ_INT(count_set(&p), 6);
  FT_CHECK(p.retry_status[408] && p.retry_status[429] && p.retry_status[500] &&
           p.retry_status[502] && p.retry_status[503] && p.retry_status[504]);
}

FT_TEST(test_parse_statuses) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  FT_CHECK_EQ_INT(ft_retry_parse_statuses(&p, "429,503"), FT_OK);
  FT_CHECK_EQ_INT(count_set(&p), 2);
  FT_CHECK(p.retry_status[429] && p.retry_status[503]);
  FT_CHECK_EQ_INT(ft_retry_parse_statuses(&p, " 100 ,\t599 , 418,418"), FT_OK);
  FT_CHECK_EQ_INT(count_set(&p), 3);
  FT_CHECK(p.retry_status[100] && p.retry_status[599] && p.retry_status[418]);

  static const char *bad[] = {"",     " ",        ",",       "429,",    ",429",
                              "abc",  "429;503",  "99",      "600",     "4290",
                              "0429", "429,,503", "-429",    "+429",    "42 9",
                              "429x", "1e3",      "503, 42", "429 503", "5O3"};
  ft_retry_policy before = p;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = ft_retry_parse_statuses(&p, bad[i]);
    if (rc != FT_EINVAL)
      fprintf(stderr, "  accepted bad list \"%s\"\n", bad[i]);
    FT_CHECK_EQ_INT(rc, FT_EINVAL);
  }
  FT_CHECK_EQ_INT(ft_retry_parse_statuses(&p, NULL), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_retry_parse_statuses(NULL, "429"), FT_EINVAL);
  FT_CHECK(memcmp(&p, &before, sizeof(p)) == 0); /* unchanged on error */
}

/* Every draw is within [0, min(cap, base * 2^k)], the draws cover the range
 * (min near 0, max near the bound, mean near the middle) for k = 1..60. */
FT_TEST(test_backoff_bounds_and_spread) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  uint64_t rng = 42;
  for (int k = 1; k <= 60; k++) {
    uint64_t upper = expect_upper(p.base_ns, p.cap_ns, k);
    uint64_t lo = UINT64_MAX, hi = 0;
    double sum = 0;
    enum { DRAWS = 1000 };
    for (int i = 0; i < DRAWS; i++) {
      uint64_t d = ft_retry_backoff(&p, k, &rng);
      FT_CHECK(d <= upper);
      lo = d < lo ? d : lo;
      hi = d > hi ? d : hi;
      sum += (double)d;
    }
    FT_CHECK(lo < upper / 50);
    FT_CHECK(hi > upper - upper / 50);
    double mean = sum / DRAWS / (double)upper;
    FT_CHECK(mean > 0.45 && mean < 0.55);
  }
  FT_CHECK_EQ_INT(expect_upper(p.base_ns, p.cap_ns, 1), 200 * MS);
  FT_CHECK_EQ_INT(expect_upper(p.base_ns, p.cap_ns, 6), 6400 * MS);
  FT_CHECK_EQ_INT(expect_upper(p.base_ns, p.cap_ns, 7), 10 * SEC);
  /* without a generator: the bound itself */
  FT_CHECK_EQ_INT(ft_retry_backoff(&p, 1, NULL), 200 * MS);
  FT_CHECK_EQ_INT(ft_retry_backoff(&p, 0, NULL), 200 * MS); /* k < 1 -> 1 */
  FT_CHECK_EQ_INT(ft_retry_backoff(&p, 5, NULL), 3200 * MS);
  FT_CHECK_EQ_INT(ft_retry_backoff(&p, 63, NULL), 10 * SEC);
  FT_CHECK_EQ_INT(ft_retry_backoff(&p, 64, NULL), 10 * SEC);
  FT_CHECK_EQ_INT(ft_retry_backoff(&p, INT_MAX, NULL), 10 * SEC);
  /* huge base and cap: no overflow */
  p.base_ns = UINT64_MAX / 3;
  p.cap_ns = UINT64_MAX;
  FT_CHECK_EQ_INT(ft_retry_backoff(&p, 1, NULL), (UINT64_MAX / 3) * 2);
  FT_CHECK(ft_retry_backoff(&p, 2, NULL) == UINT64_MAX);
  (void)ft_retry_backoff(&p, 100, &rng); /* full 64-bit range */
  p.base_ns = 0;
  FT_CHECK_EQ_INT(ft_retry_backoff(&p, 3, &rng), 0);
}

/* Uniform over a tiny range (every value, nothing above the bound) and over
 * ten equal bins of a large one. */
FT_TEST(test_backoff_uniform) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  p.base_ns = 1;
  p.cap_ns = 1000;
  uint64_t rng = 7;
  int seen[3] = {0, 0, 0};
  for (int i = 0; i < 3000; i++) {
    uint64_t d = ft_retry_backoff(&p, 1, &rng); /* [0, 2] */
    FT_CHECK(d <= 2);
    if (d <= 2)
      seen[d]++;
  }
  for (int v = 0; v < 3; v++)
    FT_CHECK(seen[v] > 850 && seen[v] < 1150);

  ft_retry_policy_default(&p);
  int bins[10] = {0};
  for (int i = 0; i < 20000; i++) {
    uint64_t d = ft_retry_backoff(&p, 10, &rng); /* [0, 10 s] */
    bins[d >= 10 * SEC ? 9 : d / SEC]++;
  }
  for (int b = 0; b < 10; b++)
    FT_CHECK(bins[b] > 1800 && bins[b] < 2200);
}

FT_TEST(test_backoff_deterministic) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  uint64_t a = 12345, b = 12345, c = 12346;
  int differs = 0;
  for (int k = 1; k <= 60; k++) {
    uint64_t da = ft_retry_backoff(&p, k, &a);
    FT_CHECK_EQ_INT(da, ft_retry_backoff(&p, k, &b));
    differs += da != ft_retry_backoff(&p, k, &c);
  }
  FT_CHECK_EQ_INT(a, b);
  FT_CHECK(differs > 50);
  uint64_t zero = 0; /* seed 0 works too */
  FT_CHECK(ft_retry_backoff(&p, 7, &zero) != ft_retry_backoff(&p, 7, &zero));
}

FT_TEST(test_retry_after_parse) {
  static const struct {
    const char *in;
    uint64_t ns;
  } ok[] = {
      {"120", 120 * SEC},
      {"0", 0},
      {"  120  ", 120 * SEC},
      {"\t7\t", 7 * SEC},
      {"007", 7 * SEC},
      {"99999999999999999999999", UINT64_MAX},
      {"Wed, 21 Oct 2015 07:28:30 GMT", 30 * SEC},     /* IMF-fixdate */
      {"  Wed, 21 Oct 2015 07:29:00 GMT ", 60 * SEC},  /* spaces */
      {"Wednesday, 21-Oct-15 07:28:45 GMT", 45 * SEC}, /* RFC 850 */
      {"Wed Oct 21 07:28:10 2015", 10 * SEC},          /* asctime */
      {"Wed Oct 21  7:28:10 2015", 10 * SEC},          /* asctime, 1 digit */
      {"Wed, 21 Oct 2015 07:28:00 GMT", 0},            /* now */
      {"Tue, 20 Oct 2015 07:28:00 GMT", 0},            /* past */
      {"Sun, 06 Nov 1994 08:49:37 GMT", 0},            /* long past */
      {"Thu, 22 Oct 2015 07:28:00 GMT", 86400 * SEC},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    uint64_t out = 12345;
    int rc = ft_retry_after_parse(ok[i].in, DATE_S, &out);
    if (rc != FT_OK || out != ok[i].ns)
      fprintf(stderr, "  Retry-After \"%s\"\n", ok[i].in);
    FT_CHECK_EQ_INT(rc, FT_OK);
    FT_CHECK(out == ok[i].ns);
  }
  static const char *bad[] = {"",    "   ",     "soon",
                              "12s", "-5",      "+5",
                              "1.5", "1 2",     "Wed, 32 Oct 2015 07:28:00 GMT",
                              "Oct", "07:28:00"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint64_t out = 777;
    int rc = ft_retry_after_parse(bad[i], DATE_S, &out);
    if (rc != FT_EINVAL)
      fprintf(stderr, "  accepted Retry-After \"%s\"\n", bad[i]);
    FT_CHECK_EQ_INT(rc, FT_EINVAL);
    FT_CHECK_EQ_INT(out, 777); /* untouched */
  }
  uint64_t out = 0;
  FT_CHECK_EQ_INT(ft_retry_after_parse(NULL, DATE_S, &out), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_retry_after_parse("5", DATE_S, NULL), FT_EINVAL);
}

/* With the default set, exactly 408, 429, 500, 502, 503 and 504 retry. */
FT_TEST(test_decide_default_statuses) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  uint64_t rng = 1, delay;
  int reason, retried = 0;
  for (long s = 100; s <= 599; s++) {
    int rc = ft_retry_decide(&p, 1, s, 0, NULL, DATE_S, &rng, &delay, &reason);
    int want =
        s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
    FT_CHECK_EQ_INT(rc, want);
    FT_CHECK_EQ_INT(reason, want ? FT_RETRY_AGAIN : FT_RETRY_FINAL);
    if (!want)
      FT_CHECK_EQ_INT(delay, 0);
    retried += rc;
  }
  FT_CHECK_EQ_INT(retried, 6);
  /* success, no response without a transient error, odd statuses: final */
  long finals[] = {200, 0, -1, 600, 1000};
  for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
    FT_CHECK_EQ_INT(ft_retry_decide(&p, 1, finals[i], 0, NULL, DATE_S, &rng,
                                    &delay, &reason),
                    0);
    FT_CHECK_EQ_INT(reason, FT_RETRY_FINAL);
  }
}

FT_TEST(test_decide_custom_statuses) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  uint64_t rng = 1, delay;
  int reason;
  FT_CHECK_EQ_INT(ft_retry_parse_statuses(&p, "418, 425"), FT_OK);
  FT_CHECK_EQ_INT(
      ft_retry_decide(&p, 1, 418, 0, NULL, 0, &rng, &delay, &reason), 1);
  FT_CHECK_EQ_INT(
      ft_retry_decide(&p, 1, 425, 0, NULL, 0, &rng, &delay, &reason), 1);
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 1, 503, 0, "5", 0, &rng, &delay, &reason),
                  0);
  FT_CHECK_EQ_INT(reason, FT_RETRY_FINAL);
  FT_CHECK_EQ_INT(ft_retry_parse_statuses(&p, "418,"), FT_EINVAL);
  FT_CHECK(p.retry_status[418] && p.retry_status[425] && count_set(&p) == 2);
}

/* Transient errors retry whatever the status, including none. */
FT_TEST(test_decide_transient) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  uint64_t rng = 9, delay;
  int reason;
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 1, 0, 1, NULL, 0, &rng, &delay, &reason),
                  1);
  FT_CHECK_EQ_INT(reason, FT_RETRY_AGAIN);
  FT_CHECK(delay <= 200 * MS);
  FT_CHECK_EQ_INT(
      ft_retry_decide(&p, 3, 404, 1, NULL, 0, &rng, &delay, &reason), 1);
  FT_CHECK(delay <= 800 * MS);
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 6, 0, 1, NULL, 0, &rng, &delay, &reason),
                  -1);
  FT_CHECK_EQ_INT(reason, FT_RETRY_EXHAUSTED);
}

/* A request that keeps failing makes exactly max_retries retries, i.e.
 * max_retries + 1 attempts, with delays bounded by backoff(k = attempts). */
FT_TEST(test_decide_attempts_accounting) {
  for (int max = 0; max <= 8; max++) {
    ft_retry_policy p;
    ft_retry_policy_default(&p);
    p.max_retries = max;
    uint64_t rng = 100 + (uint64_t)max, delay;
    int reason = -99, attempts = 0, retries = 0, rc;
    do {
      attempts++;
      rc =
          ft_retry_decide(&p, attempts, 503, 0, NULL, 0, &rng, &delay, &reason);
      if (rc == 1) {
        retries++;
        FT_CHECK(delay <= expect_upper(p.base_ns, p.cap_ns, attempts));
      }
    } while (rc == 1 && attempts < 100);
    FT_CHECK_EQ_INT(retries, max);
    FT_CHECK_EQ_INT(attempts, max + 1);
    FT_CHECK_EQ_INT(rc, -1);
    FT_CHECK_EQ_INT(reason, FT_RETRY_EXHAUSTED);
    FT_CHECK_EQ_INT(delay, 0);
  }
  /* the delay of retry k is exactly backoff(k) from the same state */
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  for (int k = 1; k <= 5; k++) {
    uint64_t r1 = 555, r2 = 555, delay;
    FT_CHECK_EQ_INT(ft_retry_decide(&p, k, 500, 0, NULL, 0, &r1, &delay, NULL),
                    1);
    FT_CHECK_EQ_INT(delay, ft_retry_backoff(&p, k, &r2));
    FT_CHECK_EQ_INT(r1, r2);
  }
}

/* Retry-After counts only on 429 and 503, as max(backoff, Retry-After). */
FT_TEST(test_decide_retry_after) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  uint64_t delay;
  int reason;
  /* no generator: backoff is its bound, 3.2 s for k = 5 */
  FT_CHECK_EQ_INT(
      ft_retry_decide(&p, 5, 429, 0, "30", 0, NULL, &delay, &reason), 1);
  FT_CHECK_EQ_INT(delay, 30 * SEC);
  FT_CHECK_EQ_INT(reason, FT_RETRY_AGAIN);
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 5, 503, 0, "1", 0, NULL, &delay, &reason),
                  1);
  FT_CHECK_EQ_INT(delay, 3200 * MS); /* backoff wins */
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 5, 503, 0, "5", 0, NULL, &delay, &reason),
                  1);
  FT_CHECK_EQ_INT(delay, 5 * SEC);
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 5, 503, 0,
                                  "Wed, 21 Oct 2015 07:28:20 GMT", DATE_S, NULL,
                                  &delay, &reason),
                  1);
  FT_CHECK_EQ_INT(delay, 20 * SEC);
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 5, 503, 1, "7", 0, NULL, &delay, &reason),
                  1);
  FT_CHECK_EQ_INT(delay, 7 * SEC); /* with a transient error too */
  /* other retryable statuses ignore it, even when it is too long */
  long others[] = {408, 500, 502, 504};
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
    FT_CHECK_EQ_INT(
        ft_retry_decide(&p, 5, others[i], 0, "30", 0, NULL, &delay, &reason),
        1);
    FT_CHECK_EQ_INT(delay, 3200 * MS);
    FT_CHECK_EQ_INT(
        ft_retry_decide(&p, 5, others[i], 0, "3600", 0, NULL, &delay, &reason),
        1);
  }
  /* unparseable: ignored. With jitter, RA 0 leaves the backoff as drawn */
  FT_CHECK_EQ_INT(
      ft_retry_decide(&p, 5, 429, 0, "later", 0, NULL, &delay, &reason), 1);
  FT_CHECK_EQ_INT(delay, 3200 * MS);
  uint64_t r1 = 31, r2 = 31;
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 2, 429, 0, "0", 0, &r1, &delay, NULL), 1);
  FT_CHECK_EQ_INT(delay, ft_retry_backoff(&p, 2, &r2));
  /* when out of retries, Retry-After does not bring one back */
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 6, 429, 0, "1", 0, NULL, &delay, &reason),
                  -1);
  FT_CHECK_EQ_INT(reason, FT_RETRY_EXHAUSTED);
}

/* A Retry-After beyond max_retry_after_ns gives up instead of waiting. */
FT_TEST(test_decide_retry_after_too_long) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  uint64_t rng = 3, delay = 99;
  int reason;
  FT_CHECK_EQ_INT(
      ft_retry_decide(&p, 1, 429, 0, "61", 0, &rng, &delay, &reason), -1);
  FT_CHECK_EQ_INT(reason, FT_RETRY_AFTER_TOO_LONG);
  FT_CHECK_EQ_INT(delay, 0);
  FT_CHECK_EQ_INT(
      ft_retry_decide(&p, 1, 429, 0, "60", 0, &rng, &delay, &reason), 1);
  FT_CHECK_EQ_INT(delay, 60 * SEC); /* the limit itself is fine */
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 1, 503, 0,
                                  "Wed, 21 Oct 2015 07:30:00 GMT", DATE_S, &rng,
                                  &delay, &reason),
                  -1);
  FT_CHECK_EQ_INT(reason, FT_RETRY_AFTER_TOO_LONG);
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 1, 503, 0, "99999999999999999999", 0,
                                  &rng, &delay, &reason),
                  -1);
  p.max_retry_after_ns = 5 * SEC;
  FT_CHECK_EQ_INT(
      ft_retry_decide(&p, 1, 503, 0, " 6 ", 0, &rng, &delay, &reason), -1);
  FT_CHECK_EQ_INT(reason, FT_RETRY_AFTER_TOO_LONG);
}

FT_TEST(test_decide_invalid_and_names) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  uint64_t delay;
  FT_CHECK_EQ_INT(ft_retry_decide(NULL, 1, 503, 0, NULL, 0, NULL, &delay, NULL),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 0, 503, 0, NULL, 0, NULL, &delay, NULL),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(ft_retry_decide(&p, 1, 503, 0, NULL, 0, NULL, NULL, NULL),
                  FT_EINVAL);
  FT_CHECK(strcmp(ft_retry_reason_name(FT_RETRY_FINAL), "final") == 0);
  FT_CHECK(strcmp(ft_retry_reason_name(FT_RETRY_AGAIN), "again") == 0);
  FT_CHECK(strcmp(ft_retry_reason_name(FT_RETRY_EXHAUSTED), "exhausted") == 0);
  FT_CHECK(strcmp(ft_retry_reason_name(FT_RETRY_AFTER_TOO_LONG),
                  "retry-after too long") == 0);
  FT_CHECK(strcmp(ft_retry_reason_name(42), "unknown") == 0);
  FT_CHECK(strcmp(ft_strerror(FT_EINVAL), "invalid argument") == 0);
  FT_CHECK(strcmp(ft_strerror(FT_ENOTFOUND), "not found") == 0);
  FT_CHECK(strcmp(ft_strerror(-999), "unknown error") == 0);
}

int main(void) {
  FT_RUN(test_defaults);
  FT_RUN(test_parse_statuses);
  FT_RUN(test_backoff_bounds_and_spread);
  FT_RUN(test_backoff_uniform);
  FT_RUN(test_backoff_deterministic);
  FT_RUN(test_retry_after_parse);
  FT_RUN(test_decide_default_statuses);
  FT_RUN(test_decide_custom_statuses);
  FT_RUN(test_decide_transient);
  FT_RUN(test_decide_attempts_accounting);
  FT_RUN(test_decide_retry_after);
  FT_RUN(test_decide_retry_after_too_long);
  FT_RUN(test_decide_invalid_and_names);
  return FT_DONE();
}
