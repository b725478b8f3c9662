/* retry.c - the retry policy: retryable outcomes, jittered backoff,
 * Retry-After. */

/* Design note.
 *
 * Why pure: the engine asks one question after each attempt - retry, stop,
 * or give up, and after how long - and the answer depends only on the
 * policy, the outcome, a clock reading and a random state. Keeping time and
 * randomness as arguments makes every branch testable without a network and
 * makes runs reproducible from a seed.
 *
 * Why full jitter: after an outage many requests fail together; waiting a
 * uniform random time in [0, min(cap, base * 2^k)] spreads their retries
 * over the whole interval instead of re-synchronising them, at a similar
 * expected total wait to plain exponential backoff. The generator is
 * splitmix64 (good output from any seed, including 0) and the range is drawn
 * without modulo bias.
 *
 * Retry-After is honoured only on 429 and 503, the statuses RFC 9110 gives
 * it meaning for when retrying, and never shortens our own backoff. A server
 * asking for more than max_retry_after_ns is treated as "not soon": we give
 * up instead of parking a request for an hour. HTTP-dates are parsed by
 * libcurl's curl_getdate (it handles IMF-fixdate, RFC 850 and asctime); this
 * is the only use of libcurl here, so the module still needs no handle. */

#include "retry.h"

#include <curl/curl.h>
#include <string.h>

#include "error.h"

#define FT_NS_PER_S 1000000000ull

void ft_retry_policy_default(ft_retry_policy *p) {
  static const int defaults[] = {408, 429, 500, 502, 503, 504};
  if (p == NULL)
    return;
  memset(p, 0, sizeof(*p));
  p->max_retries = 5;
  p->base_ns = 100ull * 1000000ull;
  p->cap_ns = 10ull * FT_NS_PER_S;
  p->max_retry_after_ns = 60ull * FT_NS_PER_S;
  for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
    p->retry_status[defaults[i]] = 1;
}

static int ft_is_space_(char c) { return c == ' ' || c == '\t'; }

static int ft_is_digit_(char c) { return c >= '0' && c <= '9'; }

int ft_retry_parse_statuses(ft_retry_policy *p, const char *list) {
  uint8_t set[FT_RETRY_STATUS_MAX];
  if (p == NULL || list == NULL)
    return FT_EINVAL;
  memset(set, 0, sizeof(set));
  const char *s = list;
  for (;;) {
    while (ft_is_space_(*s))
      s++;
    int value = 0, digits = 0;
    while (ft_is_digit_(*s)) {
      if (++digits > 3)
        return FT_EINVAL;
      value = value * 10 + (*s - '0');
      s++;
    }
    while (ft_is_space_(*s))
      s++;
    if (digits == 0 || value < 100 || value > 599)
      return FT_EINVAL; /* empty item, non-number or out of range */
    if (*s != ',' && *s != '\0')
      return FT_EINVAL;
    set[value] = 1;
    if (*s == '\0')
      break;
    s++; /* past ',' */
  }
  memcpy(p->retry_status, set, sizeof(set));
  return FT_OK;
}

/* splitmix64: steps *state and returns 64 well-mixed bits. */
static uint64_t ft_splitmix64_(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, upper], rejecting the few draws that would bias r % n. */
static uint64_t ft_uniform_(uint64_t *state, uint64_t upper) {
  uint64_t r = ft_splitmix64_(state);
  if (upper == UINT64_MAX)
    return r;
  uint64_t n = upper + 1;
  uint64_t reject_below = (0 - n) % n; /* 2^64 mod n */
  while (r < reject_below)
    r = ft_splitmix64_(state);
  return r % n;
}

uint64_t ft_retry_backoff(const ft_retry_policy *p, int k,
                          uint64_t *rng_state) {
  if (p == NULL)
    return 0;
  if (k < 1)
    k = 1;
  uint64_t upper = p->cap_ns;
  /* base * 2^k <= cap exactly when base <= floor(cap / 2^k) */
  if (k < 64 && p->base_ns <= (p->cap_ns >> k))
    upper = p->base_ns << k;
  if (rng_state == NULL)
    return upper;
  return ft_uniform_(rng_state, upper);
}

/* Seconds to nanoseconds, saturating at UINT64_MAX. */
static uint64_t ft_s_to_ns_(uint64_t s) {
  return s > UINT64_MAX / FT_NS_PER_S ? UINT64_MAX : s * FT_NS_PER_S;
}

int ft_retry_after_parse(const char *value, int64_t now_unix_s,
                         uint64_t *out_ns) {
  char buf[128];
  if (value == NULL || out_ns == NULL)
    return FT_EINVAL;
  while (ft_is_space_(*value))
    value++;
  size_t len = strlen(value);
  while (len > 0 && ft_is_space_(value[len - 1]))
    len--;
  if (len == 0 || len >= sizeof(buf))
    return FT_EINVAL;

  size_t i = 0;
  uint64_t secs = 0;
  while (i < len && ft_is_digit_(value[i])) {
    uint64_t d = (uint64_t)(value[i] - '0');
    secs = secs > (UINT64_MAX - d) / 10 ? UINT64_MAX : secs * 10 + d;
    i++;
  }
  if (i == len) { /* delta-seconds */
    *out_ns = ft_s_to_ns_(secs);
    return FT_OK;
  }

  memcpy(buf, value, len);
  buf[len] = '\0';
  time_t date = curl_getdate(buf, NULL);
  if (date == (time_t)-1)
    return FT_EINVAL;
  int64_t when = (int64_t)date;
  *out_ns = when <= now_unix_s ? 0 : ft_s_to_ns_((uint64_t)(when - now_unix_s));
  return FT_OK;
}

int ft_retry_decide(const ft_retry_policy *p, int attempts_done, long status,
                    int transient_error, const char *retry_after,
                    int64_t now_unix_s, uint64_t *rng_state, uint64_t *delay_ns,
                    int *reason) {
  int why = FT_RETRY_FINAL;
  int rc = 0;
  uint64_t delay = 0;
  if (p == NULL || delay_ns == NULL || attempts_done < 1)
    return FT_EINVAL;

  int retryable = transient_error != 0 ||
                  (status >= 100 && status <= 599 && p->retry_status[status]);
  if (!retryable) {
    why = FT_RETRY_FINAL;
    rc = 0;
  } else if (attempts_done > p->max_retries) {
    why = FT_RETRY_EXHAUSTED;
    rc = -1;
  } else {
    delay = ft_retry_backoff(p, attempts_done, rng_state);
    why = FT_RETRY_AGAIN;
    rc = 1;
    uint64_t ra;
    if ((status == 429 || status == 503) && retry_after != NULL &&
        ft_retry_after_parse(retry_after, now_unix_s, &ra) == FT_OK) {
      if (ra > p->max_retry_after_ns) {
        delay = 0;
        why = FT_RETRY_AFTER_TOO_LONG;
        rc = -1;
      } else if (ra > delay) {
        delay = ra;
      }
    }
  }
  *delay_ns = delay;
  if (reason != NULL)
    *reason = why;
  return rc;
}

const char *ft_retry_reason_name(int reason) {
  switch (reason) {
  case FT_RETRY_FINAL:
    return "final";
  case FT_RETRY_AGAIN:
    return "again";
  case FT_RETRY_EXHAUSTED:
    return "exhausted";
  case FT_RETRY_AFTER_TOO_LONG:
    return "retry-after too long";
  default:
    return "unknown";
  }
}
