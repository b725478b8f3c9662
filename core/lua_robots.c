/* lua_robots.c - the robots.txt cache as a Lua value (fetchtree.core's robots_*): rules per origin, from core/robots.c.
 *
 * robots.lua fetches each origin's robots.txt and keeps its rules in one of
 * these per crawl. Requests carry it (crawl_next, lua_engine.c's submit) so
 * that the engine asks it before every request curl sends, redirects too. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "fetchtree.h" /* ft_config: the run's user agent */
#include "lua_engine.h" /* FT_LUA_ROBOTS_MT */
#include "robots.h"
#include "script_internal.h"

#define ROBOTS_MT FT_LUA_ROBOTS_MT

typedef struct robots_box {
  ft_robots_cache *cache; /* first: lua_engine.c's submit reads it */
  char agent[64]; /* the product token rules are parsed for */
} robots_box;

static int robots_gc(lua_State *L) {
  robots_box *b = luaL_checkudata(L, 1, ROBOTS_MT);
  ft_robots_cache_free(b->cache);
  b->cache = NULL;
  return 0;
}

/* core.robots_new(user_agent) -> a cache whose rules are for the product
 * token of user_agent (nil: the run's user agent, else "fetchtree") */
static int core_robots_new(lua_State *L) {
  ft_script *s = ft_script_self(L);
  const char *ua = luaL_optstring(L, 1, NULL);
  if (!ua && s->cfg && s->cfg->user_agent)
    ua = s->cfg->user_agent;
  robots_box *b = lua_newuserdata(L, sizeof(*b));
  memset(b, 0, sizeof(*b));
  ft_robots_product(ua ? ua : "fetchtree", b->agent, sizeof(b->agent));
  if (luaL_newmetatable(L, ROBOTS_MT)) {
    lua_pushcfunction(L, robots_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  if (!(b->cache = ft_robots_cache_new()))
    return luaL_error(L, "out of memory");
  lua_pushstring(L, b->agent);
  return 2;
}

/* core.robots_origin(url) -> "scheme://host[:port]", path | nil */
static int core_robots_origin(lua_State *L) {
  char origin[1024];
  const char *path;
  size_t plen;
  if (ft_robots_origin(luaL_checkstring(L, 1), origin, sizeof(origin), &path,
                       &plen) != 0)
    return 0;
  lua_pushstring(L, origin);
  lua_pushlstring(L, path, plen);
  return 2;
}

/* core.robots_put(cache, origin, status, body): the rules of origin from a
 * fetch of its robots.txt that ended with status (0: unreachable; see
 * ft_robots_from_status). Returns the Crawl-delay (0: none). */
static int core_robots_put(lua_State *L) {
  robots_box *b = luaL_checkudata(L, 1, ROBOTS_MT);
  const char *origin = luaL_checkstring(L, 2);
  long status = (long)luaL_checknumber(L, 3);
  size_t len = 0;
  const char *body = luaL_optlstring(L, 4, NULL, &len);
  ft_robots *r = NULL;
  if (!b->cache || ft_robots_from_status(status, body, len, b->agent, &r) != 0)
    return luaL_error(L, "out of memory");
  double delay = ft_robots_crawl_delay(r);
  if (ft_robots_cache_put(b->cache, origin, r) != 0)
    return luaL_error(L, "out of memory");
  lua_pushnumber(L, delay);
  return 1;
}

/* core.robots_forget(cache, origin): its rules are unknown again */
static int core_robots_forget(lua_State *L) {
  robots_box *b = luaL_checkudata(L, 1, ROBOTS_MT);
  if (b->cache)
    ft_robots_cache_put(b->cache, luaL_checkstring(L, 2), NULL);
  return 0;
}

/* core.robots_check(cache, url) -> "allow" | "disallow" | "unknown" */
static int core_robots_check(lua_State *L) {
  robots_box *b = luaL_checkudata(L, 1, ROBOTS_MT);
  int v = b->cache ? ft_robots_cache_check(b->cache, luaL_checkstring(L, 2))
                   : FT_ROBOTS_UNKNOWN;
  lua_pushstring(L, v == FT_ROBOTS_ALLOW      ? "allow"
                    : v == FT_ROBOTS_DISALLOW ? "disallow"
                                              : "unknown");
  return 1;
}

ft_robots_cache *ft_lua_robots_test(lua_State *L, int idx) {
  robots_box *b = luaL_testudata(L, idx, ROBOTS_MT);
  return b ? b->cache : NULL;
}

void ft_lua_robots_register(lua_State *L, ft_script *s) {
  static const luaL_Reg fns[] = {{"robots_new", core_robots_new},
                                 {"robots_origin", core_robots_origin},
                                 {"robots_put", core_robots_put},
                                 {"robots_forget", core_robots_forget},
                                 {"robots_check", core_robots_check},
                                 {NULL, NULL}};
  ft_script_register(L, s, fns);
}
