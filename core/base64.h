/* base64.h - the standard base64 encoding (RFC 4648, section 4), into an ft_buf. */
#ifndef FT_BASE64_H
#define FT_BASE64_H

#include <stddef.h>

#include "buf.h"

/* Appends the encoding of the n bytes at s to b (padded with '=', no
 * quotes, no line breaks). Out of memory sets b->oom and appends nothing. */
void ft_base64_encode(ft_buf *b, const void *s, size_t n);

#endif
