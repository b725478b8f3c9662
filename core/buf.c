/* buf.c - ft_buf, a growable byte buffer that remembers running out of memory. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void ft_buf_free(ft_buf *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

int ft_buf_reserve(ft_buf *b, size_t extra) {
  if (b->len + extra <= b->cap)
    return 0;
  size_t n = b->cap ? b->cap : 4096;
  while (n < b->len + extra)
    n *= 2;
  char *p = realloc(b->data, n);
  if (!p) {
    b->oom = 1;
    return -1;
  }
  b->data = p;
  b->cap = n;
  return 0;
}

void ft_buf_put(ft_buf *b, const void *data, size_t n) {
  if (n == 0)
    return;
  if (ft_buf_reserve(b, n) != 0)
    return;
  memcpy(b->data + b->len, data, n);
  b->len += n;
}

void ft_buf_puts(ft_buf *b, const char *s) { ft_buf_put(b, s, strlen(s)); }

void ft_buf_putc_grow_(ft_buf *b, char c) {
  if (ft_buf_reserve(b, 1) != 0)
    return;
  b->data[b->len++] = c;
}

/* snprintf costs more than the rest of a record */
void ft_buf_put_u64(ft_buf *b, uint64_t v) {
  char d[20];
  size_t i = sizeof(d);
  do {
    d[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  ft_buf_put(b, d + i, sizeof(d) - i);
}

char *ft_bytes_dup(const void *p, size_t n) {
  char *c = malloc(n + 1);
  if (c != NULL) {
    if (n > 0)
      memcpy(c, p, n);
    c[n] = '\0';
  }
  return c;
}
