/* record.h - JSON Lines records: JSON string escaping and the writer of fetch results. */
#ifndef FT_RECORD_H
#define FT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "request.h"

/* Append s as a JSON string literal (quotes included). Invalid UTF-8 is
 * replaced by U+FFFD, so the output is always valid JSON. */
void ft_json_string(ft_buf *b, const char *s, size_t n);

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
