/* stats_json.c - the object tree's stats as JSON (what --stats writes).
 *
 * The tree keeps the counters and knows the order of its objects
 * (ft_tree_walk); this file alone knows the JSON shape. */
#include "stats_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

static void ft_put_fmt_u64_(ft_buf *b, const char *key, uint64_t v) {
  char tmp[64];
  snprintf(tmp, sizeof(tmp), "\"%s\":%llu", key, (unsigned long long)v);
  ft_buf_puts(b, tmp);
}

static void ft_put_fmt_dbl_(ft_buf *b, const char *key, const char *fmt,
                            double v) {
  char tmp[64];
  int n = snprintf(tmp, sizeof(tmp), "\"%s\":", key);
  snprintf(tmp + n, sizeof(tmp) - (size_t)n, fmt, v);
  ft_buf_puts(b, tmp);
}

static int ft_cmp_status_(const void *x, const void *y) {
  int a = *(const int *)x, b = *(const int *)y;
  return (a > b) - (a < b);
}

/* Appends one object's fields, up to and including "children":[ */
static void ft_object_json_open_(const ft_object *o, ft_buf *b) {
  const ft_obj_stats *s = &o->stats;
  ft_buf_puts(b, "{\"name\":");
  ft_json_string(b, o->name, strlen(o->name));
  ft_buf_putc(b, ',');
  ft_put_fmt_u64_(b, "requests", s->requests);
  ft_buf_putc(b, ',');
  ft_put_fmt_u64_(b, "ok", s->ok);
  ft_buf_putc(b, ',');
  ft_put_fmt_u64_(b, "attempts", s->attempts);
  ft_buf_putc(b, ',');
  ft_put_fmt_u64_(b, "retries", s->retries);
  ft_buf_putc(b, ',');
  ft_put_fmt_u64_(b, "bytes", s->bytes);

  ft_buf_puts(b, ",\"statuses\":{");
  int idx[FT_OBJ_STATUSES * 2] = {0}, k = 0; /* pairs (code, slot) */
  for (int i = 0; i < FT_OBJ_STATUSES && s->status_code[i]; i++) {
    idx[2 * k] = s->status_code[i];
    idx[2 * k + 1] = i;
    k++;
  }
  qsort(idx, (size_t)k, 2 * sizeof(int), ft_cmp_status_);
  for (int i = 0; i < k; i++) {
    char key[8];
    snprintf(key, sizeof(key), "%d", idx[2 * i]);
    ft_put_fmt_u64_(b, key, s->status_count[idx[2 * i + 1]]);
    ft_buf_putc(b, ',');
  }
  ft_put_fmt_u64_(b, "other", s->status_other);

  ft_buf_puts(b, "},\"errors\":{");
  int any = 0;
  for (int i = 1; i < FT_ERR_COUNT; i++) {
    if (s->by_error[i] == 0)
      continue;
    if (any)
      ft_buf_putc(b, ',');
    ft_put_fmt_u64_(b, ft_errkind_name((ft_errkind)i), s->by_error[i]);
    any = 1;
  }

  ft_buf_puts(b, "},\"latency_ms\":{");
  ft_put_fmt_dbl_(b, "p50", "%.3f", ft_obj_stats_percentile(s, 0.50));
  ft_buf_putc(b, ',');
  ft_put_fmt_dbl_(b, "p90", "%.3f", ft_obj_stats_percentile(s, 0.90));
  ft_buf_putc(b, ',');
  ft_put_fmt_dbl_(b, "p99", "%.3f", ft_obj_stats_percentile(s, 0.99));
  ft_buf_putc(b, ',');
  ft_put_fmt_dbl_(b, "max", "%.3f", (double)s->max_us / 1000.0);

  ft_buf_puts(b, "},\"limits\":{");
  any = 0;
  double rps, window_ms;
  if (ft_object_rate(o, &rps, &window_ms)) {
    ft_put_fmt_dbl_(b, "rps", "%.15g", rps);
    ft_buf_putc(b, ',');
    ft_put_fmt_dbl_(b, "window_ms", "%.15g", window_ms);
    any = 1;
  }
  if (o->concurrency > 0) {
    if (any)
      ft_buf_putc(b, ',');
    ft_put_fmt_u64_(b, "concurrency", (uint64_t)o->concurrency);
  }
  ft_buf_puts(b, "},\"children\":[");
}

typedef struct ft_stats_json_ {
  ft_buf *out;
  int sibling; /* an object was closed at this level: the next needs ',' */
} ft_stats_json_;

static void ft_stats_json_enter_(ft_object *o, void *ud) {
  ft_stats_json_ *w = ud;
  if (w->sibling)
    ft_buf_putc(w->out, ',');
  ft_object_json_open_(o, w->out);
  w->sibling = 0; /* its first child, if any, comes next */
}

static void ft_stats_json_leave_(ft_object *o, void *ud) {
  ft_stats_json_ *w = ud;
  (void)o;
  ft_buf_puts(w->out, "]}");
  w->sibling = 1;
}

void ft_stats_tree_json(ft_tree *t, ft_buf *out) {
  if (t == NULL || out == NULL)
    return;
  ft_stats_json_ w = {out, 0};
  ft_tree_walk(t, ft_stats_json_enter_, ft_stats_json_leave_, &w);
}
