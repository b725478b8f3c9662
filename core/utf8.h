/* utf8.h - UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
#ifndef FT_UTF8_H
#define FT_UTF8_H

#include <stddef.h>

/* Length (1 to 4) of the valid UTF-8 sequence at s, which has n > 0 bytes
 * left, or 0 when the sequence there is invalid or cut by the end. */
size_t ft_utf8_seq(const unsigned char *s, size_t n);

/* Is s (n bytes, NUL bytes allowed) valid UTF-8? 1 or 0. */
int ft_utf8_valid(const char *s, size_t n);

#endif
