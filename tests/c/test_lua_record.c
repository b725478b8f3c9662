/* test_lua_record.c - unit tests for core/lua_record.c: Lua values written as
 * JSON, as tables of Lua expressions and the exact text expected. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ft_test.h"
#include "lua_record.h"

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

/* Evaluates "return <expr>" and writes the value; returns
 * ft_lua_record_encode's code, the text in *out (malloc'd) or the message
 * in err. The stack is checked to be as it was. */
static int json_of(lua_State *L, const char *expr, char **out, char *err,
                   size_t errlen) {
  char chunk[512];
  snprintf(chunk, sizeof(chunk), "local null = ... return %s", expr);
  int top = lua_gettop(L);
  if (luaL_loadstring(L, chunk) != 0) {
    snprintf(err, errlen, "bad test chunk: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    return -1000;
  }
  lua_pushlightuserdata(L, NULL); /* what cjson.null is */
  lua_call(L, 1, 1);
  ft_buf b = {0};
  int rc = ft_lua_record_encode(L, -1, &b, err, errlen);
  FT_CHECK_EQ_INT(lua_gettop(L), top + 1);
  lua_settop(L, top);
  ft_buf_putc(&b, '\0');
  *out = b.data;
  return rc;
}

typedef struct json_row {
  const char *expr, *want; /* the JSON, or with want_rc != 0 the message */
} json_row;

/* Each row's expression written, against its JSON (want_rc 0) or its
 * error message (want_rc FT_EINVAL). */
static void check_rows(const json_row *rows, size_t n, int want_rc) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  for (size_t i = 0; i < n; i++) {
    char err[256] = "", *out = NULL;
    int rc = json_of(L, rows[i].expr, &out, err, sizeof(err));
    const char *got = want_rc == 0 ? (out ? out : "") : err;
    if (rc != want_rc || strcmp(got, rows[i].want) != 0) {
      fprintf(stderr, "  %s: want %d \"%s\", got %d \"%s\" (%s)\n",
              rows[i].expr, want_rc, rows[i].want, rc, out ? out : "", err);
      ft_test_cur_failed_ = 1;
    }
    free(out);
  }
  lua_close(L);
}

FT_TEST(test_values) {
  static const json_row rows[] = {
      {"nil", "null"},
      {"null", "null"},
      {"true", "true"},
      {"false", "false"},
      {"0", "0"},
      {"-0.0", "0"},
      {"-5", "-5"},
      {"2^53 - 1", "9007199254740991"},
      {"-(2^53 - 1)", "-9007199254740991"},
      {"2^53", "9007199254740992"},
      {"123456789012345678", "123456789012345680"}, /* the double's value */
      {"2^63", "9.223372036854776e+18"},
      {"0.1", "0.1"},
      {"1/3", "0.3333333333333333"},
      {"-2.5e-7", "-2.5e-07"},
      {"1e300", "1e+300"},
      {"'a/b \"q\" \\\\'", "\"a/b \\\"q\\\" \\\\\""},
      {"'caf\\195\\169'", "\"caf\xc3\xa9\""},
      {"'\\255x'", "\"\\ufffdx\""},
      {"'line\\n\\0'", "\"line\\n\\u0000\""},
      {"{}", "{}"},
      {"{1, 2, 'three'}", "[1,2,\"three\"]"},
      {"{1, nil, 3}", "[1,null,3]"},
      {"{[1] = 1, [10] = 10}", "[1,null,null,null,null,null,null,null,null,10]"},
      {"{[20] = 2}", "{\"20\":2}"},
      {"{[1.5] = 'x'}", "{\"1.5\":\"x\"}"},
      {"{a = {b = {1, {c = true}}}}", "{\"a\":{\"b\":[1,{\"c\":true}]}}"},
      {"{id = 2^60}", "{\"id\":1152921504606846976}"},
      {"{k = null}", "{\"k\":null}"},
  };
  check_rows(rows, N_ROWS(rows), 0);
}

FT_TEST(test_errors) {
  static const json_row rows[] = {
      {"0/0", "cannot write NaN as JSON"},
      {"{x = 1/0}", "cannot write an infinite number as JSON"},
      {"print", "cannot write a function as JSON"},
      {"{f = coroutine.create(print)}", "cannot write a thread as JSON"},
      {"{[true] = 1}", "cannot write a table with a boolean key as JSON"},
      {"(function() local t = {} t.self = t return t end)()",
       "cannot write a table nested more than 100 deep (or a table that "
       "contains itself) as JSON"},
      {"{1, {2, {a = io.stdout}}}", "cannot write a userdata as JSON"},
  };
  check_rows(rows, N_ROWS(rows), FT_EINVAL);
}

/* Doubles read back from what was written are the same doubles. */
FT_TEST(test_numbers_round_trip) {
  lua_State *L = luaL_newstate();
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double d;
    uint64_t bits = x;
    memcpy(&d, &bits, sizeof(d));
    if (d != d || d - d != 0) /* NaN, infinities */
      continue;
    if (i % 2)
      d = (double)(int64_t)(x >> 8) / 1000.0; /* ordinary decimals too */
    lua_pushnumber(L, d);
    ft_buf b = {0};
    char err[128];
    FT_CHECK(ft_lua_record_encode(L, -1, &b, err, sizeof(err)) == 0);
    lua_pop(L, 1);
    ft_buf_putc(&b, '\0');
    if (strtod(b.data, NULL) != d) {
      fprintf(stderr, "  %.17g written as %s\n", d, b.data);
      ft_test_cur_failed_ = 1;
      ft_buf_free(&b);
      break;
    }
    ft_buf_free(&b);
  }
  lua_close(L);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_values);
  FT_RUN(test_errors);
  FT_RUN(test_numbers_round_trip);
  return FT_DONE();
}
