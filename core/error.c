/* error.c - text for fetchtree's error codes. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

const char *ft_strerror(int code) {
  switch (code) {
  case FT_OK:
    return "success";
  case FT_ENOMEM:
    return "out of memory";
  case FT_EINVAL:
    return "invalid argument";
  case FT_EIO:
    return "i/o error";
  case FT_ECURL:
    return "libcurl error";
  case FT_EUV:
    return "libuv error";
  case FT_ELUA:
    return "lua error";
  case FT_ERANGE:
    return "value out of range";
  case FT_ENOTFOUND:
    return "not found";
  case FT_ESQL:
    return "sqlite error";
  case FT_EBUSY:
    return "resource busy or locked";
  default:
    return "unknown error";
  }
}

void ft_errf(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}
