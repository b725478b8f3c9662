/* stats.h - run statistics: counts by status and error kind, a latency histogram, the summary. */
#ifndef FT_STATS_H
#define FT_STATS_H

#include <stdint.h>
#include <stdio.h>

#include "request.h"

/* Log-linear histogram: 16 sub-buckets per power of two of microseconds,
 * so every percentile is within 1/16 (6.25%) of the true value. */
#define FT_HIST_BITS 4
#define FT_HIST_SUB (1 << FT_HIST_BITS)
#define FT_HIST_BUCKETS (FT_HIST_SUB * 40)

typedef struct ft_stats {
  uint64_t requests;
  uint64_t ok;                      /* no error (any status) */
  uint64_t attempts;
  uint64_t bytes;                   /* body bytes received */
  uint64_t by_status[600];          /* by HTTP status of final responses */
  uint64_t by_error[FT_ERR_COUNT];  /* by error kind */
  uint64_t hist[FT_HIST_BUCKETS];   /* latency in microseconds */
  uint64_t max_us;
} ft_stats;

void ft_stats_add(ft_stats *s, const ft_response *res);

/* The latency (ms) below which fraction q (0..1) of requests fall. */
double ft_stats_percentile(const ft_stats *s, double q);

/* Print the end-of-run summary, e.g.
 *   fetchtree: 10000 requests in 1.20 s, 8333/s, 10012 attempts
 *     status  200: 9990  404: 10
 *     errors  timeout: 2
 *     latency ms  p50 1.20  p90 2.10  p99 5.00  max 9.80          */
void ft_stats_print(const ft_stats *s, FILE *f, double seconds);

/* Bucket index for a value in microseconds, and the smallest value in a
 * bucket, for this histogram (exposed for tests). */
int ft_hist_bucket(uint64_t us);
uint64_t ft_hist_lower(int bucket);

/* The same for any log-linear histogram with 2^bits sub-buckets per power
 * of two (bits >= 1) and nbuckets buckets: values below 2^bits have a
 * bucket each, then each power of two is split by the bits after its
 * leading one; values past the last bucket land in it. (The object tree's
 * histogram uses these too.) */
int ft_hist_bucket_bits(uint64_t us, int bits, int nbuckets);
uint64_t ft_hist_lower_bits(int bucket, int bits);

#endif
