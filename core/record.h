/* record.h - JSON Lines records: a growable buffer and the writer of fetch results. */
#ifndef FT_RECORD_H
#define FT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"

typedef struct ft_buf {
  char *data;
  size_t len, cap;
  int oom; /* a write failed for lack of memory; the content is cut */
} ft_buf;

void ft_buf_free(ft_buf *b);
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

/* Append s as a JSON string literal (quotes included). Invalid UTF-8 is
 * replaced by U+FFFD, so the output is always valid JSON. */
void ft_json_string(ft_buf *b, const char *s, size_t n);

/* Is s valid UTF-8 (no overlongs, no surrogates)? */
int ft_utf8_valid(const char *s, size_t n);

/* Append the standard base64 encoding of s (no quotes). */
void ft_base64(ft_buf *b, const void *s, size_t n);

/* Append the response headers headers[0..len) ("name\0value\0" pairs) as
 * one JSON object, the values of a name that repeats joined with ", " in
 * the place of its first line. Linear in len, however many lines there
 * are and however their names repeat. compares (NULL: not counted) is
 * incremented per name comparison made to find repeats: tests' measure of
 * that. Out of memory sets b->oom (lines may then stand alone). */
void ft_record_headers(ft_buf *b, const char *headers, size_t len,
                       size_t *compares);

enum {
  FT_RECORD_NO_BODY = 1,
  FT_RECORD_NO_HEADERS = 2,
};

/* Append one record line (with its newline) for req and its outcome res.
 * Field order: index, url, final_url (when redirected), status, headers,
 * body or body_base64 (none for too_large: its body was cut), attempts,
 * elapsed_ms, error, meta. */
void ft_record_write(ft_buf *b, const ft_request *req, const ft_response *res,
                     int flags);

#endif
