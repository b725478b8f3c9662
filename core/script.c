/* script.c - the boundary between C and Lua: the only part of fetchtree that touches lua_State.
 *
 * fetchtree's Lua modules (lua/) are compiled to LuaJIT bytecode at build
 * time and linked in; they are registered in package.preload, so require
 * finds them with no file on disk. Every call into Lua goes through
 * lua_pcall: a Lua error becomes an error message, never a crash. */
#include "script.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lua_modules.h" /* generated: ft_lua_modules[] */

struct ft_script {
  lua_State *L;
  int parse_ref; /* fetchtree.request.from_json */
};

/* Register every embedded module in package.preload. */
static int preload_modules(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  for (const ft_lua_module *m = ft_lua_modules; m->name; m++) {
    if (luaL_loadbuffer(L, (const char *)m->code, m->size, m->name) != 0)
      return lua_error(L);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 2);
  return 0;
}

static int init_state(lua_State *L) {
  luaL_openlibs(L);
  preload_modules(L);
  lua_getglobal(L, "require");
  lua_pushstring(L, "fetchtree.request");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "from_json");
  return 1;
}

int ft_script_new(ft_script **out, char *err, size_t errlen) {
  *out = NULL;
  ft_script *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return FT_ENOMEM;
  }
  s->L = luaL_newstate();
  if (!s->L) {
    free(s);
    snprintf(err, errlen, "cannot create a Lua state");
    return FT_ENOMEM;
  }
  lua_pushcfunction(s->L, init_state);
  if (lua_pcall(s->L, 0, 1, 0) != 0) {
    snprintf(err, errlen, "%s", lua_tostring(s->L, -1));
    lua_close(s->L);
    free(s);
    return FT_ELUA;
  }
  s->parse_ref = luaL_ref(s->L, LUA_REGISTRYINDEX);
  *out = s;
  return 0;
}

void ft_script_free(ft_script *s) {
  if (!s)
    return;
  lua_close(s->L);
  free(s);
}

static char *dup_lstring(lua_State *L, int idx, size_t *len) {
  size_t n;
  const char *p = lua_tolstring(L, idx, &n);
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, p, n);
    d[n] = '\0';
  }
  if (len)
    *len = n;
  return d;
}

int ft_script_parse_request(ft_script *s, const char *line, size_t len,
                            ft_request *r, char *err, size_t errlen) {
  lua_State *L = s->L;
  int rc = FT_EINVAL;
  int top = lua_gettop(L);
  char *url = NULL, *method = NULL, *body = NULL, *meta = NULL;
  size_t body_len = 0;
  struct curl_slist *headers = NULL;

  lua_rawgeti(L, LUA_REGISTRYINDEX, s->parse_ref);
  lua_pushlstring(L, line, len);
  if (lua_pcall(L, 1, 5, 0) != 0) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    goto cleanup;
  }
  if (lua_isnil(L, top + 1)) {
    snprintf(err, errlen, "%s", lua_tostring(L, top + 2));
    goto cleanup;
  }
  rc = FT_ENOMEM;
  snprintf(err, errlen, "out of memory");
  url = dup_lstring(L, top + 1, NULL);
  if (!url)
    goto cleanup;
  if (lua_isstring(L, top + 2) && !(method = dup_lstring(L, top + 2, NULL)))
    goto cleanup;
  size_t nh = lua_objlen(L, top + 3);
  for (size_t i = 1; i <= nh; i++) {
    lua_rawgeti(L, top + 3, (int)i);
    struct curl_slist *h = curl_slist_append(headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!h)
      goto cleanup;
    headers = h;
  }
  if (lua_isstring(L, top + 4) &&
      !(body = dup_lstring(L, top + 4, &body_len)))
    goto cleanup;
  if (lua_isstring(L, top + 5) && !(meta = dup_lstring(L, top + 5, NULL)))
    goto cleanup;

  free(r->url);
  free(r->method);
  curl_slist_free_all(r->headers);
  free(r->body);
  free(r->meta_json);
  r->url = url;
  r->method = method;
  r->headers = headers;
  r->body = body;
  r->body_len = body_len;
  r->meta_json = meta;
  url = method = body = meta = NULL;
  headers = NULL;
  err[0] = '\0';
  rc = 0;
cleanup:
  lua_settop(L, top);
  free(url);
  free(method);
  free(body);
  free(meta);
  curl_slist_free_all(headers);
  return rc;
}
