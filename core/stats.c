/* stats.c - run statistics: counts by status and error kind, a latency histogram, the summary. */
#include "stats.h"

#include <string.h>

int ft_hist_bucket_bits(uint64_t us, int bits, int nbuckets) {
  int sub_n = 1 << bits;
  if (us < (uint64_t)sub_n)
    return (int)us;
  int e = 63 - __builtin_clzll(us); /* us >= 2^bits, so e >= bits */
  int sub = (int)((us >> (e - bits)) & (uint64_t)(sub_n - 1));
  int b = sub_n + (e - bits) * sub_n + sub;
  return b < nbuckets ? b : nbuckets - 1;
}

uint64_t ft_hist_lower_bits(int b, int bits) {
  int sub_n = 1 << bits;
  if (b < sub_n)
    return (uint64_t)b;
  int e = (b - sub_n) / sub_n + bits;
  uint64_t sub = (uint64_t)((b - sub_n) % sub_n);
  return (1ull << e) | (sub << (e - bits));
}

int ft_hist_bucket(uint64_t us) {
  return ft_hist_bucket_bits(us, FT_HIST_BITS, FT_HIST_BUCKETS);
}

uint64_t ft_hist_lower(int b) { return ft_hist_lower_bits(b, FT_HIST_BITS); }

void ft_stats_add(ft_stats *s, const ft_response *res) {
  s->requests++;
  s->attempts += (uint64_t)res->attempts;
  s->bytes += res->body_len;
  if (res->error == FT_ERR_NONE)
    s->ok++;
  else if (res->error < FT_ERR_COUNT)
    s->by_error[res->error]++;
  if (res->status > 0 && res->status < 600)
    s->by_status[res->status]++;
  if (res->attempts > 0) {
    uint64_t us = (uint64_t)(res->elapsed_ms * 1000.0);
    s->hist[ft_hist_bucket(us)]++;
    if (us > s->max_us)
      s->max_us = us;
  }
}

double ft_stats_percentile(const ft_stats *s, double q) {
  uint64_t total = 0;
  for (int i = 0; i < FT_HIST_BUCKETS; i++)
    total += s->hist[i];
  if (total == 0)
    return 0;
  uint64_t want = (uint64_t)(q * (double)total);
  if (want >= total)
    want = total - 1;
  uint64_t seen = 0;
  for (int i = 0; i < FT_HIST_BUCKETS; i++) {
    seen += s->hist[i];
    if (seen > want)
      return (double)ft_hist_lower(i) / 1000.0;
  }
  return (double)s->max_us / 1000.0;
}

void ft_stats_print(const ft_stats *s, FILE *f, double seconds) {
  double rate = seconds > 0 ? (double)s->requests / seconds : 0;
  fprintf(f, "fetchtree: %llu requests in %.2f s, %.0f/s, %llu attempts\n",
          (unsigned long long)s->requests, seconds, rate,
          (unsigned long long)s->attempts);
  int any = 0;
  for (int i = 0; i < 600; i++) {
    if (!s->by_status[i])
      continue;
    fprintf(f, "%s  %d: %llu", any ? "" : "  status", i,
            (unsigned long long)s->by_status[i]);
    any = 1;
  }
  if (any)
    fputc('\n', f);
  any = 0;
  for (int i = 1; i < FT_ERR_COUNT; i++) {
    if (!s->by_error[i])
      continue;
    fprintf(f, "%s  %s: %llu", any ? "" : "  errors", ft_errkind_name(i),
            (unsigned long long)s->by_error[i]);
    any = 1;
  }
  if (any)
    fputc('\n', f);
  if (s->requests > s->by_error[FT_ERR_INPUT])
    fprintf(f, "  latency ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
            ft_stats_percentile(s, 0.50), ft_stats_percentile(s, 0.90),
            ft_stats_percentile(s, 0.99), (double)s->max_us / 1000.0);
}
