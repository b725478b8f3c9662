/* error.h - fetchtree's error codes: 0 for success, a negative ft_err for
 * failure. */
#ifndef FT_ERROR_H
#define FT_ERROR_H

/* ft_err (FT_OK, FT_ENOMEM, ...) and ft_strerror are public: they are
 * defined in fetchtree.h. */
#include "fetchtree.h"

#include <stddef.h>

/* Write a printf-style message to err when there is room (err may be
 * NULL or errlen 0: then nothing is written). */
void ft_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
