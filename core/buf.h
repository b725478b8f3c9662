/* buf.h - ft_buf, a growable byte buffer that remembers running out of memory. */
#ifndef FT_BUF_H
#define FT_BUF_H

#include <stddef.h>
#include <stdint.h>

/* Start from a zeroed struct ({0}); release with ft_buf_free. Writers never
 * fail loudly: out of memory sets oom, the write is dropped and the content
 * is cut from there on, so a caller checks oom once, after a whole record. */
typedef struct ft_buf {
  char *data;
  size_t len, cap;
  int oom; /* a write failed for lack of memory; the content is cut */
} ft_buf;

/* Frees the data and zeroes *b (it can be written to again). */
void ft_buf_free(ft_buf *b);

/* Makes room for extra more bytes past len (capacity doubles from 4096).
 * Returns 0, or -1 with b->oom set and b unchanged. For writers that fill
 * data + len themselves. */
int ft_buf_reserve(ft_buf *b, size_t extra);

void ft_buf_put(ft_buf *b, const void *data, size_t n);
void ft_buf_puts(ft_buf *b, const char *s);
/* A string literal, its length known at compile time. */
#define FT_BUF_LIT(b, lit) ft_buf_put((b), (lit), sizeof(lit) - 1)
void ft_buf_putc_grow_(ft_buf *b, char c);
static inline void ft_buf_putc(ft_buf *b, char c) {
  if (b->len < b->cap)
    b->data[b->len++] = c;
  else
    ft_buf_putc_grow_(b, c);
}
/* Append the decimal digits of v. */
void ft_buf_put_u64(ft_buf *b, uint64_t v);

/* A malloc'd copy of the n bytes at p (p may be NULL when n is 0) with a
 * NUL byte after them, or NULL when out of memory. */
char *ft_bytes_dup(const void *p, size_t n);

#endif
