/* retry.h - the retry policy: which failures to retry, and how long to wait
 * (pure). */
#ifndef FT_RETRY_H
#define FT_RETRY_H

#include <stdint.h>

/* Size of ft_retry_policy.retry_status: HTTP statuses 0..599. */
#define FT_RETRY_STATUS_MAX 600

/* How a request is retried. Plain data: copy it, compare it, keep one per
 * crawl or per host. Statuses outside 100..599 are never retryable. */
typedef struct ft_retry_policy {
  int max_retries;             /* retries after the first attempt; default 5 */
  uint64_t base_ns;            /* backoff base; default 100 ms */
  uint64_t cap_ns;             /* backoff ceiling; default 10 s */
  uint64_t max_retry_after_ns; /* longest Retry-After obeyed; default 60 s */
  /* 1 = retryable HTTP status; default 408, 429, 500, 502, 503, 504 */
  uint8_t retry_status[FT_RETRY_STATUS_MAX];
} ft_retry_policy;

/* Why ft_retry_decide decided what it did. */
typedef enum ft_retry_reason {
  FT_RETRY_FINAL = 0,         /* success or a non-retryable outcome */
  FT_RETRY_AGAIN = 1,         /* retry after *delay_ns */
  FT_RETRY_EXHAUSTED = 2,     /* retryable, but max_retries are used up */
  FT_RETRY_AFTER_TOO_LONG = 3 /* Retry-After exceeds max_retry_after_ns */
} ft_retry_reason;

/* Fills *p with the defaults listed above. */
void ft_retry_policy_default(ft_retry_policy *p);

/* Replaces the retryable set with a comma-separated list such as "429,503"
 * (spaces around items allowed). Returns 0, or FT_EINVAL for NULL, an empty
 * item (so also ""), a non-number or a status outside 100..599; on error *p
 * is unchanged. */
int ft_retry_parse_statuses(ft_retry_policy *p, const char *list);

/* The backoff before retry k (k = 1 for the first retry; k < 1 counts as 1):
 * full jitter, uniform in [0, min(cap_ns, base_ns * 2^k)] ns, without
 * overflow for any k. Steps the splitmix64 generator *rng_state, so the same
 * seed gives the same sequence. rng_state NULL: no jitter, the upper bound. */
uint64_t ft_retry_backoff(const ft_retry_policy *p, int k, uint64_t *rng_state);

/* Parses a Retry-After value: delta-seconds ("120") or an HTTP-date (IMF-
 * fixdate, RFC 850 or asctime, parsed by libcurl's curl_getdate), with
 * surrounding spaces allowed. A date is taken relative to now_unix_s; one in
 * the past gives 0. Huge values saturate at UINT64_MAX ns. Returns 0 and sets
 * *out_ns, or FT_EINVAL when unparseable (*out_ns unchanged). */
int ft_retry_after_parse(const char *value, int64_t now_unix_s,
                         uint64_t *out_ns);

/* Decides what to do after attempt number attempts_done (1 = the first
 * attempt) ended with HTTP status `status` (0 = no response) and
 * transient_error (1 = connect failure, reset, timeout, temporary DNS).
 * Retries when the outcome is transient or its status is retryable and
 * attempts_done <= max_retries; the delay is backoff(k = attempts_done),
 * raised to Retry-After for 429 and 503 when retry_after parses.
 * Returns 1 (retry after *delay_ns, reason FT_RETRY_AGAIN), 0 (final:
 * FT_RETRY_FINAL, *delay_ns = 0) or -1 (give up: FT_RETRY_EXHAUSTED, or
 * FT_RETRY_AFTER_TOO_LONG when Retry-After exceeds max_retry_after_ns), and
 * FT_EINVAL (-2) for p or delay_ns NULL or attempts_done < 1. rng_state and
 * reason may be NULL. */
int ft_retry_decide(const ft_retry_policy *p, int attempts_done, long status,
                    int transient_error, const char *retry_after,
                    int64_t now_unix_s, uint64_t *rng_state, uint64_t *delay_ns,
                    int *reason);

/* A static name for a reason ("final", "again", "exhausted",
 * "retry-after too long"), for logs; "unknown" otherwise. */
const char *ft_retry_reason_name(int reason);

#endif
