/* lua_record.h - a Lua value written as JSON: the records a crawl's handlers
 * return, with the string rules of core/record.c's fetch records. */
#ifndef FT_LUA_RECORD_H
#define FT_LUA_RECORD_H

#include <stddef.h>

#include "record.h"

struct lua_State;

/* Append the value at idx as JSON to b. Strings as ft_json_string writes
 * them (invalid UTF-8 becomes U+FFFD, "/" is not escaped); numbers as
 * integers when they are whole and below 2^63, else in the fewest digits
 * that read back to the same double; nil and cjson.null (a NULL light
 * userdata) as null. A table whose keys are 1..n (holes allowed while
 * n <= 2 * keys, or n <= 10) is an array, any other an object with its
 * number keys written as strings; an empty table is {}. Returns 0, or
 * FT_EINVAL with a message in err for what JSON cannot hold (NaN, a
 * function, a boolean key, nesting past 100, which a cycle reaches); b
 * then holds a partial value. */
int ft_lua_record_encode(struct lua_State *L, int idx, ft_buf *b, char *err,
                         size_t errlen);

#endif
