/* test_lua_calls.c - C calling into Lua outside the crawl driver stays
 * protected when memory runs out while the call's arguments are made: the
 * completion dispatch of core/lua_engine.c, and ft_script_parse_request and
 * ft_script_exec of core/script.c. An unprotected memory error there would
 * unwind through C frames that do not expect it, or abort in Lua's panic.
 *
 * The Lua states run on an allocator the test can make fail. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fetchtree.h"
#include "ft_test.h"
#include "lua_engine.h"
#include "request.h"
#include "script.h"

static int fail_allocs; /* refuse every allocation that grows */

static void *test_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  if (fail_allocs && nsize > osize)
    return NULL;
  return realloc(p, nsize);
}

/* For a state made by ft_script_new: its own allocator, wrapped so that
 * from the fail_after-th growing allocation on (counting from 1; 0: never)
 * every one fails. */
static lua_Alloc real_alloc;
static void *real_ud;
static long allocs, fail_after;

static void *wrapped_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize > osize && fail_after > 0 && ++allocs >= fail_after)
    return NULL;
  return real_alloc(real_ud, p, osize, nsize);
}

static ft_script *new_script(void) {
  char err[256];
  ft_script *s = NULL;
  if (ft_script_new(&s, err, sizeof(err)) != 0) {
    fprintf(stderr, "  %s\n", err);
    return NULL;
  }
  lua_State *L = ft_script_lua(s);
  real_alloc = lua_getallocf(L, &real_ud);
  lua_setallocf(L, wrapped_alloc, NULL);
  if (luaL_dostring(L, "jit.off()") != 0)
    lua_pop(L, 1);
  return s;
}

/* Makes the n-th growing allocation from now on fail, and every later one. */
static void fail_from(long n) {
  allocs = 0;
  fail_after = n;
}

/* A state with fetchtree.engine as the global E, an engine as the global
 * eng, and an on_done that keeps its arguments in the global got. */
static lua_State *new_state(void) {
  lua_State *L = lua_newstate(test_alloc, NULL);
  if (!L)
    return NULL;
  luaL_openlibs(L);
  lua_pushcfunction(L, ft_lua_open_engine);
  lua_call(L, 0, 1);
  lua_setglobal(L, "E");
  if (luaL_dostring(L, "jit.off() -- the compiler allocates as it pleases\n"
                       "E.on_done(function(id, res, err)\n"
                       "  got = {id = id, kind = err and err.kind}\n"
                       "end)\n"
                       "eng = E.new{}") != 0) {
    fprintf(stderr, "  %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

/* eng:submit(id, url) under lua_pcall, the allocator failing from the call
 * on when fail is set. Returns lua_pcall's code; *ok is what submit
 * returned (1 for true). */
static int submit(lua_State *L, int id, const char *url, int fail, int *ok) {
  int top = lua_gettop(L);
  lua_getglobal(L, "eng");
  lua_getfield(L, -1, "submit");
  lua_insert(L, -2);
  lua_pushnumber(L, id);
  lua_pushstring(L, url);
  fail_allocs = fail;
  int rc = lua_pcall(L, 3, 1, 0);
  fail_allocs = 0;
  *ok = rc == 0 && lua_toboolean(L, -1);
  lua_settop(L, top);
  return rc;
}

/* The outcome table on_done would get cannot be made: the memory error is
 * caught in the dispatch (it once unwound through the engine, leaking the
 * request and leaving the engine marked busy), submit returns normally,
 * and the next completion is reported as usual. */
FT_TEST(test_done_dispatch_out_of_memory) {
  lua_State *L = new_state();
  FT_CHECK(L != NULL);
  if (!L)
    return;
  int ok = 0;
  FT_CHECK_EQ_INT(submit(L, 1, "ftp://127.0.0.1/x", 1, &ok), 0);
  FT_CHECK_EQ_INT(ok, 1);
  lua_getglobal(L, "got");
  FT_CHECK(lua_isnil(L, -1)); /* on_done could not be called */
  lua_pop(L, 1);
  /* and all is well afterwards */
  FT_CHECK_EQ_INT(submit(L, 2, "ftp://127.0.0.1/y", 0, &ok), 0);
  FT_CHECK_EQ_INT(ok, 1);
  FT_CHECK_EQ_INT(luaL_dostring(L, "assert(got.id == 2 and got.kind == 'url',"
                                   " tostring(got.id) .. ' ' .. tostring(got.kind))"
                                   "; assert(eng:pending() == 0)"),
                  0);
  lua_close(L);
}

/* ft_script_parse_request with memory running out at its first
 * allocations (the call's own, then the line's string, which was pushed
 * unprotected before, and Lua panicked): an error comes back, never a
 * crash; with memory, the line is parsed. (Later failure points are inside
 * lua-cjson, which leaks its buffer when Lua raises under it.) */
FT_TEST(test_parse_request_out_of_memory) {
  static const char line[] =
      "{\"url\":\"http://127.0.0.1/a-url-not-interned-yet\",\"method\":\"PUT\","
      "\"headers\":{\"X-A\":\"b\"},\"body\":\"data\",\"meta\":{\"k\":[1,2]}}";
  int failed = 0, parsed = 0;
  for (long n = 1; n <= 3; n++) {
    ft_script *s = new_script();
    FT_CHECK(s != NULL);
    if (!s)
      return;
    ft_request *r = ft_request_new();
    char err[256] = "";
    fail_from(n < 3 ? n : 0); /* the last round: all the memory it wants */
    int rc = ft_script_parse_request(s, line, sizeof(line) - 1, r, err,
                                     sizeof(err));
    fail_from(0);
    if (rc == 0) {
      parsed = 1;
      FT_CHECK_EQ_STR(r->url, "http://127.0.0.1/a-url-not-interned-yet");
      FT_CHECK_EQ_STR(r->method, "PUT");
    } else {
      failed++;
      FT_CHECK_EQ_INT(rc, FT_EINVAL);
      FT_CHECK(err[0] != '\0');
    }
    ft_request_free(r);
    ft_script_free(s);
  }
  FT_CHECK(parsed);
  FT_CHECK_EQ_INT(failed, 2);
}

/* ft_script_exec likewise: FT_ELUA with a message while memory is short,
 * then the script runs and sees its arguments. */
FT_TEST(test_exec_out_of_memory) {
  char path[] = "/tmp/test_lua_calls_XXXXXX";
  int fd = mkstemp(path);
  FT_CHECK(fd >= 0);
  if (fd < 0)
    return;
  static const char code[] =
      "assert(type(ft) == 'table')\n"
      "local a, b = ...\n"
      "assert(arg[1] == a and arg[2] == b and arg[0]:find('test_lua_calls'))\n"
      "ran = a .. b\n";
  FT_CHECK(write(fd, code, sizeof(code) - 1) == (ssize_t)(sizeof(code) - 1));
  close(fd);
  char a1[] = "first-argument-of-the-script", a2[] = "second-argument";
  char *args[] = {a1, a2};
  int failed = 0, ran = 0;
  for (long n = 1; n < 20000 && !ran; n += (n < 200 ? 1 : 37)) {
    ft_script *s = new_script();
    FT_CHECK(s != NULL);
    if (!s)
      break;
    char err[512] = "";
    fail_from(n);
    int rc = ft_script_exec(s, path, args, 2, err, sizeof(err));
    fail_from(0);
    if (rc == 0) {
      ran = 1;
      lua_State *L = ft_script_lua(s);
      lua_getglobal(L, "ran");
      FT_CHECK_EQ_STR(lua_tostring(L, -1) ? lua_tostring(L, -1) : "",
                      "first-argument-of-the-scriptsecond-argument");
      lua_pop(L, 1);
    } else {
      failed++;
      FT_CHECK_EQ_INT(rc, FT_ELUA);
      FT_CHECK(err[0] != '\0');
    }
    ft_script_free(s);
  }
  unlink(path);
  FT_CHECK(ran);
  FT_CHECK(failed > 0);
}

/* The crawl driver's calls into fetchtree.crawl (lua_crawl.c): a response
 * whose body cannot be made into a Lua string (memory has run out) fails
 * that call with FT_ELUA and a message; pushed before the protected call,
 * as they once were, the body's string made Lua panic (abort). */
FT_TEST(test_crawl_done_out_of_memory) {
  char path[] = "/tmp/test_lua_calls_XXXXXX";
  int fd = mkstemp(path);
  FT_CHECK(fd >= 0);
  if (fd < 0)
    return;
  static const char code[] =
      "return { start = function(emit) emit { url = 'http://127.0.0.1:9/a' } end,\n"
      "  on_response = function(res) return { n = #res.body } end }\n";
  FT_CHECK(write(fd, code, sizeof(code) - 1) == (ssize_t)(sizeof(code) - 1));
  close(fd);
  ft_script *s = new_script();
  FT_CHECK(s != NULL);
  if (!s) {
    unlink(path);
    return;
  }
  FILE *out = tmpfile();
  ft_script_set_output(s, out, 0);
  ft_config cfg;
  ft_config_default(&cfg);
  ft_crawl_info info;
  char err[512] = "";
  int rc = ft_script_crawl_load(s, path, NULL, 0, 0, &cfg, &info, err,
                                sizeof(err));
  FT_CHECK_EQ_INT(rc, 0);
  ft_request *req = NULL;
  if (rc == 0)
    FT_CHECK_EQ_INT(ft_script_crawl_next(s, 1, &req, err, sizeof(err)), 1);
  if (req) {
    size_t n = 8u << 20; /* a body no failing allocator can hold */
    char *body = malloc(n);
    FT_CHECK(body != NULL);
    if (body) {
      memset(body, 'x', n);
      ft_response res = {0};
      res.status = 200;
      res.body = body;
      res.body_len = n;
      err[0] = '\0';
      fail_from(1);
      rc = ft_script_crawl_done(s, req, &res, err, sizeof(err));
      fail_from(0);
      FT_CHECK_EQ_INT(rc, FT_ELUA);
      FT_CHECK(strstr(err, "memory") != NULL);
      free(body);
    }
    ft_request_free(req);
  }
  ft_script_free(s);
  if (out)
    fclose(out);
  unlink(path);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_done_dispatch_out_of_memory);
  FT_RUN(test_parse_request_out_of_memory);
  FT_RUN(test_exec_out_of_memory);
  FT_RUN(test_crawl_done_out_of_memory);
  return FT_DONE();
}
