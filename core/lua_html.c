/* lua_html.c - fetchtree.core's functions on pages: resolve a URL (core/url.c), a page's links and XPath queries (core/html.c).
 *
 * Pure functions of their arguments: they read nothing of the run. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "script_internal.h"
#include "strlist.h"
#include "url.h"

/* core.resolve(url [, base]) -> normalised absolute URL, its host | nil, err
 * A URL already in normal form (absolute: the base does not matter) comes
 * back as it is, without curl. A NUL byte inside url or base is an error,
 * not the end of the URL. */
static int core_resolve(lua_State *L) {
  size_t n = 0, bn = 0;
  const char *url = luaL_checklstring(L, 1, &n);
  const char *base = luaL_optlstring(L, 2, NULL, &bn);
  size_t off = 0, len = 0;
  if (strlen(url) != n || (base && strlen(base) != bn)) {
    lua_pushnil(L);
    lua_pushstring(L, "invalid URL: it contains a NUL byte");
    return 2;
  }
  if (lua_type(L, 1) == LUA_TSTRING &&
      ft_url_is_normal(url, n, &off, &len)) {
    lua_pushvalue(L, 1);
    lua_pushlstring(L, url + off, len);
    return 2;
  }
  char err[256];
  char *out = NULL;
  if (ft_url_resolve(base, url, &out, err, sizeof(err)) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  ft_url_host_span(out, &off, &len);
  lua_pushstring(L, out);
  lua_pushlstring(L, out + off, len);
  free(out);
  return 2;
}

static void push_strlist(lua_State *L, ft_strlist *l) {
  lua_createtable(L, (int)l->n, 0);
  for (size_t i = 0; i < l->n; i++) {
    lua_pushstring(L, l->items[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  ft_strlist_free(l);
}

/* core.links(html, page_url) -> list of absolute URLs */
static int core_links(lua_State *L) {
  size_t len;
  const char *body = luaL_checklstring(L, 1, &len);
  const char *url = luaL_checkstring(L, 2);
  ft_strlist l = {0};
  if (ft_html_links(body, len, url, &l) != 0) {
    ft_strlist_free(&l);
    return luaL_error(L, "out of memory");
  }
  push_strlist(L, &l);
  return 1;
}

/* core.xpath(doc, is_xml, expr) -> list of strings | nil, err */
static int core_xpath(lua_State *L) {
  size_t len;
  const char *body = luaL_checklstring(L, 1, &len);
  int is_xml = lua_toboolean(L, 2);
  const char *expr = luaL_checkstring(L, 3);
  ft_strlist l = {0};
  char err[256];
  if (ft_xpath(body, len, is_xml, expr, &l, err, sizeof(err)) != 0) {
    ft_strlist_free(&l);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  push_strlist(L, &l);
  return 1;
}

void ft_lua_html_register(lua_State *L, ft_script *s) {
  static const luaL_Reg fns[] = {{"resolve", core_resolve},
                                 {"links", core_links},
                                 {"xpath", core_xpath},
                                 {NULL, NULL}};
  ft_script_register(L, s, fns);
}
