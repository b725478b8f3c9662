/* error.h - fetchtree's error codes: 0 for success, a negative ft_err for
 * failure. */
#ifndef FT_ERROR_H
#define FT_ERROR_H

/* ft_err (FT_OK, FT_ENOMEM, ...) and ft_strerror are public: they are
 * defined in fetchtree.h. */
#include "fetchtree.h"

#endif
