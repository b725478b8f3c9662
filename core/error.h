/* error.h - fetchtree's error codes: 0 for success, a negative ft_err for
 * failure. */
#ifndef FT_ERROR_H
#define FT_ERROR_H

/* Every fetchtree function that can fail returns FT_OK (0) or one of these
 * negative codes, in the manner of libuv. The values are stable: new codes
 * are appended, existing ones never renumbered. */
typedef enum ft_err {
  FT_OK = 0,
  FT_ENOMEM = -1,    /* out of memory */
  FT_EINVAL = -2,    /* invalid argument or unparseable input */
  FT_EIO = -3,       /* I/O error */
  FT_ECURL = -4,     /* libcurl reported an error */
  FT_EUV = -5,       /* libuv reported an error */
  FT_ELUA = -6,      /* a Lua error */
  FT_ERANGE = -7,    /* value out of the supported range */
  FT_ENOTFOUND = -8, /* no such item */
  FT_ESQL = -9,      /* SQLite reported an error */
  FT_EBUSY = -10     /* the resource is locked by someone else */
} ft_err;

/* Returns a static, human-readable description of `code`. Never NULL: an
 * unknown code yields "unknown error". */
const char *ft_strerror(int code);

#endif
