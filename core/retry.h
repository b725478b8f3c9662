/* retry.h - the retry policy: which failures to retry, and how long to wait
 * (pure). */
#ifndef FT_RETRY_H
#define FT_RETRY_H

#include <stdint.h>

/* ft_retry_policy, FT_RETRY_STATUS_MAX, ft_retry_policy_default and
 * ft_retry_parse_statuses are public: they are defined in fetchtree.h.
 * What follows is the machinery the engine uses. */
#include "fetchtree.h"

/* Why ft_retry_decide decided what it did. */
typedef enum ft_retry_reason {
  FT_RETRY_FINAL = 0,         /* success or a non-retryable outcome */
  FT_RETRY_AGAIN = 1,         /* retry after *delay_ns */
  FT_RETRY_EXHAUSTED = 2,     /* retryable, but max_retries are used up */
  FT_RETRY_AFTER_TOO_LONG = 3 /* Retry-After exceeds max_retry_after_ns */
} ft_retry_reason;

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
