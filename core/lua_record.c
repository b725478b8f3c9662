/* lua_record.c - records encoded from Lua values: a Lua value written as JSON (see lua_record.h). */

/* Design note.
 *
 * A crawl's records used to go through lua-cjson's encoder, and lua-cjson
 * stays the decoder (res:json(), the journal). The records have their own
 * writer for three reasons, measured or seen:
 *  - one set of string rules for every record fetchtree writes: cjson
 *    passes invalid UTF-8 through (an invalid JSON line) and escapes "/",
 *    which the crawl then undid with a gsub per record;
 *  - numbers: cjson writes 14 significant digits, so an id past 10^14 came
 *    out changed; here a whole number below 2^63 is written as an integer
 *    and any other double in the fewest digits that read back the same;
 *  - cost: cjson formats every number with snprintf("%.14g"), 2,000
 *    instructions each, and with the gsub a small record cost 7,000
 *    instructions, a twentieth of a whole request in `fetchtree run`.
 * Array or object follows cjson's rule (keys 1..n, not too sparse), so a
 * handler's records look as they did. */

#include "lua_record.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define FT_JSON_MAX_DEPTH 100

static void put_int(ft_buf *b, int64_t v) {
  if (v < 0)
    ft_buf_putc(b, '-');
  ft_buf_put_u64(b, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

/* A finite double: whole ones below 2^63 as integers (each is exactly
 * some integer), the rest in the fewest of 15, 16 or 17 significant digits
 * that read back unchanged. */
static void put_double(ft_buf *b, double d) {
  if (d == floor(d) && fabs(d) < 9223372036854775808.0) {
    put_int(b, (int64_t)d);
    return;
  }
  char tmp[32];
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
    if (strtod(tmp, NULL) == d)
      break;
  }
  ft_buf_put(b, tmp, (size_t)n);
}

/* How the table at idx is written: 0 an object, or 1 an array of *len
 * elements (keys 1..*len, holes written as null). */
static int array_len(lua_State *L, int idx, size_t *len) {
  size_t keys = 0;
  double max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    keys++;
    double k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    if (!(k >= 1 && k == floor(k) && k < 4294967296.0)) {
      lua_pop(L, 1); /* an object: no need to see the other keys */
      return 0;
    }
    if (k > max)
      max = k;
  }
  if (keys == 0 || (max > 2.0 * (double)keys && max > 10))
    return 0;
  *len = (size_t)max;
  return 1;
}

static int encode(lua_State *L, int idx, ft_buf *b, int depth, char *err,
                  size_t errlen) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    FT_BUF_LIT(b, "null");
    return 0;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx))
      FT_BUF_LIT(b, "true");
    else
      FT_BUF_LIT(b, "false");
    return 0;
  case LUA_TNUMBER: {
    double d = lua_tonumber(L, idx);
    if (!isfinite(d)) {
      ft_errf(err, errlen, "cannot write %s as JSON",
              isnan(d) ? "NaN" : "an infinite number");
      return FT_EINVAL;
    }
    put_double(b, d);
    return 0;
  }
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    ft_json_string(b, s, n);
    return 0;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) { /* cjson.null */
      FT_BUF_LIT(b, "null");
      return 0;
    }
    break;
  case LUA_TTABLE: {
    if (depth >= FT_JSON_MAX_DEPTH) {
      ft_errf(err, errlen, "cannot write a table nested more than %d deep "
                           "(or a table that contains itself) as JSON",
              FT_JSON_MAX_DEPTH);
      return FT_EINVAL;
    }
    if (!lua_checkstack(L, 3)) {
      ft_errf(err, errlen, "out of Lua stack");
      return FT_EINVAL;
    }
    size_t len = 0;
    if (array_len(L, idx, &len)) {
      ft_buf_putc(b, '[');
      for (size_t i = 1; i <= len; i++) {
        if (i > 1)
          ft_buf_putc(b, ',');
        lua_rawgeti(L, idx, (int)i);
        int rc = encode(L, lua_gettop(L), b, depth + 1, err, errlen);
        lua_pop(L, 1);
        if (rc != 0)
          return rc;
      }
      ft_buf_putc(b, ']');
      return 0;
    }
    ft_buf_putc(b, '{');
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      int kt = lua_type(L, -2);
      if (!first)
        ft_buf_putc(b, ',');
      first = 0;
      if (kt == LUA_TSTRING) {
        size_t n;
        const char *k = lua_tolstring(L, -2, &n);
        ft_json_string(b, k, n);
      } else if (kt == LUA_TNUMBER && isfinite(lua_tonumber(L, -2))) {
        ft_buf_putc(b, '"');
        put_double(b, lua_tonumber(L, -2));
        ft_buf_putc(b, '"');
      } else {
        ft_errf(err, errlen, "cannot write a table with a %s key as JSON",
                lua_typename(L, kt));
        lua_pop(L, 2);
        return FT_EINVAL;
      }
      ft_buf_putc(b, ':');
      int rc = encode(L, lua_gettop(L), b, depth + 1, err, errlen);
      lua_pop(L, 1);
      if (rc != 0) {
        lua_pop(L, 1);
        return rc;
      }
    }
    ft_buf_putc(b, '}');
    return 0;
  }
  default:
    break;
  }
  ft_errf(err, errlen, "cannot write a %s as JSON",
          lua_typename(L, lua_type(L, idx)));
  return FT_EINVAL;
}

int ft_lua_record_encode(lua_State *L, int idx, ft_buf *b, char *err,
                         size_t errlen) {
  if (idx < 0 && idx > LUA_REGISTRYINDEX)
    idx = lua_gettop(L) + idx + 1;
  return encode(L, idx, b, 0, err, errlen);
}
