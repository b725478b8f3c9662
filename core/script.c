/* script.c - the boundary between C and Lua: the only part of fetchtree that touches lua_State.
 *
 * fetchtree's Lua modules (lua/) are linked in as source (checked at build
 * time; see scripts/gen-lua-modules.sh for why not bytecode); they are
 * registered in package.preload, so require finds them with no file on
 * disk. Every call into Lua goes through
 * lua_pcall: a Lua error becomes an error message, never a crash. */
#include "script.h"

#include <curl/curl.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crawl.h"
#include "engine.h"
#include "error.h"
#include "html.h"
#include "lua_record.h"
#include "lua_engine.h"
#include "lua_settings.h"
#include "lua_state.h"
#include "lua_modules.h" /* generated: ft_lua_modules[] */
#include "robots.h"
#include "tree.h"
#include "url.h"

struct ft_script {
  lua_State *L;
  int parse_ref; /* fetchtree.request.from_json */
  int crawl_ref; /* fetchtree.crawl, once a crawl is loaded */
  FILE *out;
  char *user_agent;
  char *sensitive_headers; /* the spec's, comma-separated */
  int write_failed; /* errno of the first failed record write, or 0 */
  uint64_t records; /* record lines handed to out without an error */
  int record_flags; /* FT_RECORD_* for the default records written from Lua */
  ft_tree *tree;    /* the engine's object tree, for routing and limits */
  ft_lua_state state; /* the run's state (state.h), opened on first use:
                         memory, or the --state file */
  ft_alarm_fn alarm_fn;
  void *alarm_ud;
  int borrowed; /* L belongs to a host luajit (the Lua module) */
  int tb_ref;   /* debug.traceback, for crawl_call */
  int next_ref;    /* fetchtree.crawl.next and .respond, looked up once: */
  int respond_ref; /* they run for every request */
  void (*hold_fn)(void *ud, int delta);
  void *hold_ud;
  ft_buf json; /* core.write_record's line, reused */
  const struct ft_config *cfg; /* the run's, kept by crawl_load: its final
                                  user agent (after the command line) */
  int crawling; /* ft.run's crawl is bound (crawl_bind) */
};

/* ---- fetchtree.core: what Lua needs from C ------------------------------- */

static ft_script *core_self(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

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

/* The JSON of the value at 1 into s->json; raises on what JSON cannot hold. */
static void encode_arg(lua_State *L, ft_script *s) {
  char err[256];
  s->json.len = 0;
  if (ft_lua_record_encode(L, 1, &s->json, err, sizeof(err)) != 0)
    luaL_error(L, "%s", err);
  if (s->json.oom)
    luaL_error(L, "out of memory");
}

/* s->json, a record line, out to the run's output */
static void put_line(ft_script *s) {
  FILE *f = s->out ? s->out : stdout;
  errno = 0;
  if (fwrite(s->json.data, 1, s->json.len, f) != s->json.len) {
    /* the caller learns of it (ft_script_output_state): a durable run's
     * checkpoint then commits nothing more */
    if (!s->write_failed)
      s->write_failed = errno ? errno : EIO;
  } else {
    s->records++;
  }
}

/* core.write_record(rec): rec as one JSON line on the run's output */
static int core_write_record(lua_State *L) {
  ft_script *s = core_self(L);
  encode_arg(L, s);
  ft_buf_putc(&s->json, '\n');
  put_line(s);
  return 0;
}

/* core.write_default(index, url, meta_json, final_url, status, raw_headers,
 * body, attempts, elapsed_ms): the record of a response no handler takes,
 * written by fetch's record writer as fetchtree run writes it when the spec
 * has no handler at all (the same fields, order, flags and body_base64). */
static int core_write_default(lua_State *L) {
  ft_script *s = core_self(L);
  ft_request req = {0};
  ft_response res = {0};
  req.index = (uint64_t)luaL_checknumber(L, 1);
  req.url = (char *)luaL_checkstring(L, 2); /* read only */
  req.meta_json = (char *)luaL_optstring(L, 3, NULL);
  res.final_url = luaL_optstring(L, 4, NULL);
  res.status = (long)luaL_checknumber(L, 5);
  res.headers = luaL_checklstring(L, 6, &res.headers_len);
  res.body = luaL_checklstring(L, 7, &res.body_len);
  res.attempts = (int)luaL_checknumber(L, 8);
  res.elapsed_ms = luaL_checknumber(L, 9);
  s->json.len = 0;
  ft_record_write(&s->json, &req, &res, s->record_flags);
  put_line(s);
  return 0;
}

/* core.encode(v) -> v as JSON, as core.write_record writes it */
static int core_encode(lua_State *L) {
  ft_script *s = core_self(L);
  encode_arg(L, s);
  lua_pushlstring(L, s->json.data ? s->json.data : "", s->json.len);
  return 1;
}

/* core.set_limits(name, { rps =, window =, concurrency =, retries = }) ->
 * true | nil, "set_limits: ..." (the limits checked by the settings table) */
static int core_set_limits(lua_State *L) {
  ft_script *s = core_self(L);
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  ft_obj_settings st;
  char why[512];
  if (ft_lua_limits_table(L, 2, "set_limits", &st, why, sizeof(why)) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  int err = 0;
  ft_object *o = s->tree ? ft_tree_get(s->tree, name, &err) : NULL;
  if (!o) {
    lua_pushnil(L);
    lua_pushfstring(L, "set_limits: %s", s->tree ? ft_strerror(err) : "no run");
    return 2;
  }
  int rc = ft_object_set(o, &st);
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "set_limits: %s", ft_strerror(rc));
    return 2;
  }
  if (s->alarm_fn)
    s->alarm_fn(s->alarm_ud, 0, 0); /* limits changed: let the engine look */
  lua_pushboolean(L, 1);
  return 1;
}

/* core.hold(delta): a handler waits (+1) or is done waiting (-1): the run
 * must not end meanwhile */
static int core_hold(lua_State *L) {
  ft_script *s = core_self(L);
  if (s->hold_fn)
    s->hold_fn(s->hold_ud, (int)luaL_checknumber(L, 1));
  return 0;
}

/* core.after(id, ms): ask the host to call fetchtree.crawl.alarm(id) */
static int core_after(lua_State *L) {
  ft_script *s = core_self(L);
  lua_Number id = luaL_checknumber(L, 1);
  lua_Number ms = luaL_checknumber(L, 2);
  if (!s->alarm_fn)
    return luaL_error(L, "alarms are not available here");
  s->alarm_fn(s->alarm_ud, (uint64_t)id, ms < 0 ? 0 : (uint64_t)ms);
  return 0;
}

/* ---- robots.txt (core/robots.c): a cache of rules per origin ------------ */

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
  ft_script *s = core_self(L);
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

static int core_run(lua_State *L); /* ft.run's crawl, below */

static int open_core(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"resolve", core_resolve},
      {"links", core_links},
      {"xpath", core_xpath},
      {"write_record", core_write_record},
      {"write_default", core_write_default},
      {"encode", core_encode},
      {"set_limits", core_set_limits},
      {"after", core_after},
      {"hold", core_hold},
      {"robots_new", core_robots_new},
      {"robots_origin", core_robots_origin},
      {"robots_put", core_robots_put},
      {"robots_forget", core_robots_forget},
      {"robots_check", core_robots_check},
      {"run", core_run},
      {"check_settings", ft_lua_check_settings},
      {"settings", ft_lua_settings},
      {NULL, NULL}};
  lua_createtable(L, 0, 24);
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
  /* seen, journal_*, storage, store_*: lua_state.c */
  ft_lua_state_register(L, &core_self(L)->state);
  return 1;
}

/* package.preload's loader of an embedded module (upvalue 1): parse it
 * when first required, so a run does not parse the REPL's modules. */
static int load_embedded(lua_State *L) {
  const ft_lua_module *m = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, (const char *)m->code, m->size, m->chunk) != 0)
    return lua_error(L);
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
  return 1;
}

/* Register every embedded module in package.preload. */
static int preload_modules(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  for (const ft_lua_module *m = ft_lua_modules; m->name; m++) {
    lua_pushlightuserdata(L, (void *)m);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 2);
  return 0;
}

/* require "fetchtree" is the API module, fetchtree.api */
static int open_api(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushstring(L, "fetchtree.api");
  lua_call(L, 1, 1);
  return 1;
}

/* Make every fetchtree module loadable with require in L: the embedded
 * Lua modules, fetchtree.core (bound to s), fetchtree.engine and
 * fetchtree itself. */
static void preload_all(lua_State *L, ft_script *s) {
  preload_modules(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushlightuserdata(L, s);
  lua_pushcclosure(L, open_core, 1);
  lua_setfield(L, -2, "fetchtree.core");
  lua_pushcfunction(L, ft_lua_open_engine);
  lua_setfield(L, -2, "fetchtree.engine");
  lua_pushcfunction(L, open_api);
  lua_setfield(L, -2, "fetchtree");
  lua_pop(L, 2);
}

static int init_state(lua_State *L) {
  ft_script *s = lua_touserdata(L, 1);
  luaL_openlibs(L);
  preload_all(L, s);
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
  s->crawl_ref = LUA_NOREF;
  s->tb_ref = LUA_NOREF;
  s->next_ref = LUA_NOREF;
  s->respond_ref = LUA_NOREF;
  lua_pushcfunction(s->L, init_state);
  lua_pushlightuserdata(s->L, s);
  if (lua_pcall(s->L, 1, 1, 0) != 0) {
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
  if (!s->borrowed)
    lua_close(s->L);
  ft_buf_free(&s->json);
  ft_lua_state_close(&s->state);
  free(s->user_agent);
  free(s->sensitive_headers);
  free(s);
}

/* The request fields at stack slots base .. base+4 (url, method, headers
 * list, body, meta JSON) into r, a new request. Returns 0, FT_ENOMEM or
 * FT_EINVAL. */
static int fill_request(lua_State *L, int base, ft_request *r) {
  int rc = ft_lua_to_request(L, base, r);
  if (rc == 0 && lua_isstring(L, base + 4) &&
      !(r->meta_json = strdup(lua_tostring(L, base + 4))))
    rc = FT_ENOMEM;
  return rc;
}

/* ft_script_parse_request's call, handed to parse_line as a light
 * userdata. */
typedef struct parse_call {
  ft_script *s;
  const char *line;
  size_t len;
  ft_request *r;
  char *err;
  size_t errlen;
  int rc;
} parse_call;

/* Run by lua_cpcall: the line is pushed, parsed and turned into c->r
 * inside the protected call, so that a memory error while pushing it is
 * caught too. */
static int parse_line(lua_State *L) {
  parse_call *c = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->s->parse_ref);
  lua_pushlstring(L, c->line, c->len);
  lua_call(L, 1, 5); /* results at 2 .. 6 */
  if (lua_isnil(L, 2)) {
    snprintf(c->err, c->errlen, "%s", lua_tostring(L, 3));
    return 0;
  }
  c->rc = fill_request(L, 2, c->r);
  if (c->rc != 0)
    snprintf(c->err, c->errlen, "%s", ft_strerror(c->rc));
  else
    c->err[0] = '\0';
  return 0;
}

int ft_script_parse_request(ft_script *s, const char *line, size_t len,
                            ft_request *r, char *err, size_t errlen) {
  lua_State *L = s->L;
  int top = lua_gettop(L);
  parse_call c = {s, line, len, r, err, errlen, FT_EINVAL};
  if (lua_cpcall(L, parse_line, &c) != 0) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    c.rc = FT_EINVAL;
  }
  lua_settop(L, top);
  return c.rc;
}

/* ---- crawl scripts --------------------------------------------------------- */

void ft_script_set_output(ft_script *s, FILE *out, int record_flags) {
  s->out = out;
  s->record_flags = record_flags;
}

int ft_script_output_state(const ft_script *s, uint64_t *records) {
  if (records)
    *records = s->records;
  return s->write_failed;
}

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

void ft_script_interrupt(ft_script *s) {
  lua_sethook(s->L, interrupt_hook,
              LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Call fetchtree.crawl[fn] with the nargs values on the stack top, under
 * pcall with a traceback; nres results. With ref, the function is looked
 * up once and kept in the registry. Returns 0 or FT_ELUA (message in err,
 * stack restored). */
static int crawl_call_ref(ft_script *s, int *ref, const char *fn, int nargs,
                          int nres, char *err, size_t errlen) {
  lua_State *L = s->L;
  int base = lua_gettop(L) - nargs;
  if (s->tb_ref == LUA_NOREF) { /* debug.traceback, looked up once */
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    s->tb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->tb_ref);
  lua_insert(L, base + 1);
  if (ref && *ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, *ref);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->crawl_ref);
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    if (ref) {
      lua_pushvalue(L, -1);
      *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  lua_insert(L, base + 2);
  if (lua_pcall(L, nargs, nres, base + 1) != 0) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    lua_settop(L, base);
    return FT_ELUA;
  }
  lua_remove(L, base + 1); /* the traceback function */
  return 0;
}

static int crawl_call(ft_script *s, const char *fn, int nargs, int nres,
                      char *err, size_t errlen) {
  return crawl_call_ref(s, NULL, fn, nargs, nres, err, errlen);
}

/* crawl.load(path, args, {with_meta = ...}): the spec at path loaded into
 * the crawl module (required here, and kept in s->crawl_ref). Pushes the
 * settings table load returns; returns 0, or -1 with err set (the caller
 * restores the stack). */
static int crawl_load_spec(ft_script *s, const char *path, char **args,
                           int nargs, int with_meta, char *err,
                           size_t errlen) {
  lua_State *L = s->L;
  lua_getglobal(L, "require");
  lua_pushstring(L, "fetchtree.crawl");
  if (lua_pcall(L, 1, 1, 0) != 0) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    return -1;
  }
  s->crawl_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_unref(L, LUA_REGISTRYINDEX, s->next_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->respond_ref);
  s->next_ref = s->respond_ref = LUA_NOREF;

  lua_pushstring(L, path);
  lua_createtable(L, nargs, 0);
  for (int i = 0; i < nargs; i++) {
    lua_pushstring(L, args[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, 0, 1);
  lua_pushboolean(L, with_meta);
  lua_setfield(L, -2, "with_meta");
  /* a spec that does not load is the user's error, not fetchtree's: the
   * message alone, without a traceback through fetchtree's own frames
   * (crawl.lua runs the script's chunk under xpcall with a traceback:
   * that is cut too, its first line names the script's file and line) */
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->crawl_ref);
  lua_getfield(L, -1, "load");
  lua_remove(L, -2);
  lua_insert(L, -4);
  if (lua_pcall(L, 3, 1, 0) != 0) {
    const char *msg = lua_tostring(L, -1);
    if (!msg)
      msg = "the spec raised an error that is not a string";
    const char *tb = strstr(msg, "\nstack traceback:");
    snprintf(err, errlen, "%.*s", tb ? (int)(tb - msg) : (int)strlen(msg),
             msg);
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

/* The settings table at stack index t (what crawl.load returns) into cfg
 * and info; s keeps the strings cfg points to. Returns 0, or -1 with err
 * set for a field out of range or no memory. Leaves the stack as it was. */
static int apply_crawl_settings(ft_script *s, int t, const char *path,
                                ft_place place, ft_config *cfg,
                                ft_crawl_info *info, char *err,
                                size_t errlen) {
  lua_State *L = s->L;
  int rc = -1;
  int top = lua_gettop(L);
  /* the ft_config settings a spec has, checked (crawl.load checked the
   * spec's own fields already: this sees what load made of them, such as
   * the lists joined) and applied as every other place does */
  for (size_t i = 0; i < ft_settings_count; i++) {
    const ft_setting *st = &ft_settings[i];
    if (!(st->places & place) || st->type == FT_SETTING_STRING ||
        st->type == FT_SETTING_NAMES)
      continue; /* strings: copied below, cfg keeps pointers to them */
    lua_getfield(L, t, st->name);
    if (!lua_isnil(L, -1)) {
      ft_setting_value v;
      char why[512];
      if (ft_settings_from_lua(L, -1, st, place, &v, why,
                               sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: field '%s': %s", path, st->name, why);
        goto out;
      }
      ft_setting_apply(st, &v, cfg);
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, t, "user_agent");
  if (lua_isstring(L, -1)) {
    free(s->user_agent);
    s->user_agent = strdup(lua_tostring(L, -1));
    cfg->user_agent = s->user_agent;
  }
  lua_pop(L, 1);
  lua_getfield(L, t, "sensitive_headers");
  if (lua_isstring(L, -1)) {
    free(s->sensitive_headers);
    if (!(s->sensitive_headers = strdup(lua_tostring(L, -1)))) {
      snprintf(err, errlen, "out of memory");
      goto out;
    }
    cfg->sensitive_headers = s->sensitive_headers;
  }
  lua_pop(L, 1);
  lua_getfield(L, t, "state");
  if (lua_isstring(L, -1)) {
    if (ft_script_set_state(s, lua_tostring(L, -1)) != 0) {
      snprintf(err, errlen, "out of memory");
      goto out;
    }
    info->has_state = 1;
  }
  lua_pop(L, 1);
  lua_getfield(L, t, "has_on_response");
  info->has_on_response = lua_toboolean(L, -1);
  lua_getfield(L, t, "has_on_error");
  info->has_on_error = lua_toboolean(L, -1);
  lua_pop(L, 2);
  /* robots.txt (every outcome then goes through the crawl: has_on_response
   * says so): the engine asks the rules before each request curl sends, so
   * a redirect into a disallowed path is not followed */
  s->cfg = cfg;
  lua_getfield(L, t, "robots");
  if (lua_toboolean(L, -1)) {
    cfg->url_check = ft_robots_url_check;
    cfg->url_check_ud = NULL;
  }
  rc = 0;
out:
  lua_settop(L, top);
  return rc;
}

int ft_script_crawl_load(ft_script *s, const char *path, char **args,
                         int nargs, int with_meta, ft_config *cfg,
                         ft_crawl_info *info, char *err, size_t errlen) {
  lua_State *L = s->L;
  int top = lua_gettop(L);
  int rc = FT_ELUA;
  if (crawl_load_spec(s, path, args, nargs, with_meta, err, errlen) == 0)
    rc = apply_crawl_settings(s, lua_gettop(L), path, FT_PLACE_SPEC, cfg, info, err,
                              errlen) == 0 ? 0 : FT_EINVAL;
  lua_settop(L, top);
  return rc;
}

int ft_script_crawl_next(ft_script *s, int want, ft_request **out, char *err,
                         size_t errlen) {
  lua_State *L = s->L;
  int top = lua_gettop(L);
  int rc;
  lua_pushinteger(L, want > 0 ? want : 1);
  if (crawl_call_ref(s, &s->next_ref, "next", 1, 8, err, errlen) != 0)
    return FT_ELUA;
  if (lua_isnil(L, top + 1)) {
    const char *what = lua_tostring(L, top + 2);
    if (what && strcmp(what, "wait") == 0) {
      rc = 0;
    } else if (what && strcmp(what, "error") == 0) {
      snprintf(err, errlen, "%s", lua_tostring(L, top + 3));
      rc = FT_ELUA;
    } else {
      rc = -1;
    }
    lua_settop(L, top);
    return rc;
  }
  ft_request *r = ft_request_new();
  int frc = r ? fill_request(L, top + 2, r) : FT_ENOMEM;
  if (frc != 0) {
    ft_request_free(r);
    lua_settop(L, top);
    snprintf(err, errlen, "%s", ft_strerror(frc));
    return FT_ELUA; /* not FT_ENOMEM: -1 already means "done" here */
  }
  r->index = (uint64_t)lua_tonumber(L, top + 1);
  if (s->tree && lua_type(L, top + 7) == LUA_TSTRING) {
    int e = 0; /* ft_tree_get remembers its last answer: runs of one host are cheap */
    const char *name = lua_tostring(L, top + 7);
    r->obj = ft_tree_get(s->tree, name, &e);
    if (!r->obj) {
      /* not the root in its place: the request ends with this error */
      char why[512];
      snprintf(why, sizeof(why), "cannot make object '%.300s': %s", name,
               e == FT_EINVAL ? "not an object name such as /host/example.com"
                              : ft_strerror(e));
      if (ft_request_refuse(r, e == FT_ENOMEM ? FT_ERR_INTERNAL : FT_ERR_SCRIPT,
                            why) != 0) {
        ft_request_free(r);
        lua_settop(L, top);
        snprintf(err, errlen, "%s", why);
        return FT_ELUA;
      }
    }
  }
  /* a request that obeys robots.txt carries the crawl's cache of rules,
   * for ft_robots_url_check (the Lua value keeps it alive for the run) */
  robots_box *rb = luaL_testudata(L, top + 8, ROBOTS_MT);
  if (rb)
    r->udata = rb->cache;
  lua_settop(L, top);
  *out = r;
  return 1;
}

int ft_script_crawl_done(ft_script *s, const ft_request *req,
                         const ft_response *res, char *err, size_t errlen) {
  lua_State *L = s->L;
  lua_pushnumber(L, (double)req->index);
  if (res->error == FT_ERR_NONE) {
    /* the fields as arguments: Lua's table constructor is cheaper than
     * setting them one by one from here */
    lua_pushnumber(L, (double)res->status);
    lua_pushstring(L, res->final_url ? res->final_url : req->url);
    lua_pushlstring(L, res->body ? res->body : "", res->body_len);
    lua_pushlstring(L, res->headers ? res->headers : "", res->headers_len);
    lua_pushnumber(L, res->attempts);
    lua_pushnumber(L, res->elapsed_ms);
    return crawl_call_ref(s, &s->respond_ref, "respond", 7, 0, err, errlen);
  }
  ft_lua_push_error(L, req, res); /* with refused_url for kind robots */
  return crawl_call(s, "failure", 2, 0, err, errlen);
}

void ft_script_set_tree(ft_script *s, ft_tree *tree) { s->tree = tree; }

void ft_script_set_alarm_fn(ft_script *s, ft_alarm_fn fn, void *ud) {
  s->alarm_fn = fn;
  s->alarm_ud = ud;
}

int ft_script_set_state(ft_script *s, const char *path) {
  free(s->state.where);
  s->state.where = path ? strdup(path) : NULL;
  return path && !s->state.where ? FT_ENOMEM : 0;
}

int ft_script_crawl_objects(ft_script *s, ft_tree *tree, char *err,
                            size_t errlen) {
  lua_State *L = s->L;
  int top = lua_gettop(L);
  int rc = 0;
  if (crawl_call(s, "object_settings", 0, 1, err, errlen) != 0)
    return FT_ELUA;
  size_t n = lua_objlen(L, top + 1);
  for (size_t i = 1; i <= n && rc == 0; i++) {
    lua_rawgeti(L, top + 1, (int)i);
    int e = top + 2; /* the entry; its fields above it */
    lua_getfield(L, e, "pattern");
    const char *pattern = lua_tostring(L, -1);
    lua_getfield(L, e, "rps");
    if (lua_isnil(L, -1)) /* a pattern's window alone sets nothing, as before */
      lua_pushnil(L);
    else
      lua_getfield(L, e, "window");
    lua_getfield(L, e, "concurrency");
    lua_getfield(L, e, "retries");
    ft_obj_settings st; /* checked with the spec (place object) */
    if (ft_lua_limits_args(L, e + 2, pattern ? pattern : "objects", &st, err,
                           errlen) != 0) {
      lua_settop(L, top);
      return FT_EINVAL;
    }
    rc = ft_tree_configure(tree, pattern ? pattern : "", &st);
    /* the tree refuses a rate it cannot hold (FT_ERANGE) or one that is
     * not a finite number (FT_EINVAL, as for a bad pattern): say which */
    if (rc != 0 && st.has_rps &&
        (rc == FT_ERANGE || !isfinite(st.rps) || !isfinite(st.window_ms) ||
         st.window_ms < 0))
      snprintf(err, errlen, "objects: '%s': rps %g (window %g ms): %s",
               pattern ? pattern : "?", st.rps, st.window_ms,
               ft_strerror(rc));
    else if (rc != 0)
      snprintf(err, errlen, "objects: bad pattern '%s': %s",
               pattern ? pattern : "?", ft_strerror(rc));
    lua_settop(L, top + 1);
  }
  lua_settop(L, top);
  return rc;
}

int ft_script_alarm(ft_script *s, uint64_t id, char *err, size_t errlen) {
  lua_pushnumber(s->L, (lua_Number)id);
  return crawl_call(s, "alarm", 1, 0, err, errlen);
}

int ft_script_commit(ft_script *s) {
  return s->state.state ? ft_state_commit(s->state.state) : 0;
}

/* ---- durable runs ------------------------------------------------------ */

static int64_t meta_int(ft_state *st, const char *key) {
  char *v = NULL;
  int64_t n = 0;
  if (ft_state_meta_get(st, key, &v) == 0 && v)
    n = strtoll(v, NULL, 10);
  free(v);
  return n;
}

static int meta_put_int(ft_state *st, const char *key, int64_t v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%lld", (long long)v);
  return ft_state_meta_set(st, key, buf);
}

int ft_script_journal_open(ft_script *s, int restart, ft_journal_info *info,
                           char *err, size_t errlen) {
  memset(info, 0, sizeof(*info));
  if (!s->state.where) {
    snprintf(err, errlen, "no state database");
    return FT_EINVAL;
  }
  if (ft_lua_state_open(&s->state, err, errlen) != 0)
    return FT_EINVAL;
  ft_state *st = s->state.state;
  if (restart && (ft_state_reset(st) != 0 || ft_state_commit(st) != 0)) {
    snprintf(err, errlen, "%s", ft_state_errmsg(st));
    return FT_EIO;
  }
  info->finished = meta_int(st, "finished") != 0;
  info->resuming = meta_int(st, "started") != 0;
  info->out_offset = meta_int(st, "out_offset");
  char *tail = NULL;
  if (ft_state_meta_get(st, "out_tail", &tail) == 0 && tail)
    snprintf(info->out_tail, sizeof(info->out_tail), "%s", tail);
  free(tail);
  info->start_pos = meta_int(st, "start_pos");
  info->next_id = meta_int(st, "next_id");
  info->pending = ft_state_frontier_count(st);
  if (info->finished)
    return 0;
  /* the seen set is the state's own (the sqlite backend loads it) */
  if (ft_state_meta_set(st, "started", "1") != 0 || ft_state_commit(st) != 0) {
    snprintf(err, errlen, "%s", ft_state_errmsg(st));
    return FT_EIO;
  }
  s->state.journal = 1;
  lua_pushnumber(s->L, (lua_Number)info->start_pos);
  lua_pushnumber(s->L, (lua_Number)info->next_id);
  return crawl_call(s, "resume", 2, 0, err, errlen);
}

int ft_script_journal_done(ft_script *s, uint64_t id) {
  if (!s->state.journal)
    return 0;
  return ft_state_frontier_ack(s->state.state, (int64_t)id);
}

void ft_script_journal_abandon(ft_script *s, const char *why) {
  if (s->state.journal)
    ft_state_abandon(s->state.state, why);
}

const char *ft_script_journal_error(ft_script *s) {
  return s->state.state ? ft_state_errmsg(s->state.state) : "";
}

int ft_script_checkpoint(ft_script *s, int64_t out_offset,
                         const char *out_tail, int finished) {
  char err[512];
  lua_State *L = s->L;
  if (!s->state.journal)
    return ft_script_commit(s);
  int top = lua_gettop(L);
  if (crawl_call(s, "checkpoint", 0, 2, err, sizeof(err)) != 0)
    return FT_ELUA;
  int64_t start_pos = (int64_t)lua_tonumber(L, top + 1);
  int64_t next_id = (int64_t)lua_tonumber(L, top + 2);
  lua_settop(L, top);
  ft_state *st = s->state.state;
  if (meta_put_int(st, "out_offset", out_offset) != 0 ||
      ft_state_meta_set(st, "out_tail", out_tail ? out_tail : "") != 0 ||
      meta_put_int(st, "start_pos", start_pos) != 0 ||
      meta_put_int(st, "next_id", next_id) != 0 ||
      (finished && ft_state_meta_set(st, "finished", "1") != 0))
    return FT_EIO;
  return ft_state_commit(st);
}

/* ---- ft.run: a crawl instance of this state, run by ft_crawl --------------
 * fetchtree.core is bound to s, and what a run keeps in s (the crawl
 * module, the seen set, the state, the output counts) belongs to one run:
 * crawl_bind points s at the caller's crawl instance with all of that
 * fresh, and crawl_unbind puts back what was there (nothing, outside a
 * run), so that two ft.run calls share nothing. */

typedef struct crawl_binding {
  int crawl_ref, next_ref, respond_ref; /* s's, put back by unbind */
} crawl_binding;

static void crawl_bind(ft_script *s, int idx, crawl_binding *b) {
  lua_State *L = s->L;
  b->crawl_ref = s->crawl_ref;
  b->next_ref = s->next_ref;
  b->respond_ref = s->respond_ref;
  lua_pushvalue(L, idx);
  s->crawl_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  s->next_ref = s->respond_ref = LUA_NOREF;
  s->crawling = 1;
  s->records = 0;
  s->write_failed = 0;
  /* a state left by an earlier run goes: this one has its own */
  ft_lua_state_close(&s->state);
}

static void crawl_unbind(ft_script *s, const crawl_binding *b) {
  lua_State *L = s->L;
  luaL_unref(L, LUA_REGISTRYINDEX, s->crawl_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->next_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->respond_ref);
  s->crawl_ref = b->crawl_ref;
  s->next_ref = b->next_ref;
  s->respond_ref = b->respond_ref;
  s->crawling = 0;
  ft_lua_state_close(&s->state); /* abandons a durable run's open batch */
  s->cfg = NULL;
  s->tree = NULL;
}

typedef struct run_loader {
  ft_script *s;
  int settings; /* stack index of crawl.load_spec's settings table */
  int lua_out;  /* records go to a Lua function (the crawl writes all) */
} run_loader;

/* ft_crawl_spec.load of ft.run: the settings table into cfg and info. */
static int run_load(void *ud, ft_config *cfg, ft_crawl_info *info, char *err,
                    size_t errlen) {
  run_loader *rl = ud;
  if (apply_crawl_settings(rl->s, rl->settings, "ft.run", FT_PLACE_FT_RUN, cfg, info, err,
                           errlen) != 0)
    return FT_EINVAL;
  if (rl->lua_out) /* no record is written by C: the out function has all */
    info->has_on_response = info->has_on_error = 1;
  return 0;
}

static int run_interrupted(void *waker) { return ft_lua_engine_woken(waker); }

static void set_field_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

/* The stats table ft.run returns. */
static void push_run_stats(lua_State *L, const ft_crawl_stats *st) {
  lua_createtable(L, 0, 6);
  set_field_num(L, "requests", (double)st->stats.requests);
  set_field_num(L, "ok", (double)st->stats.ok);
  set_field_num(L, "errors", (double)(st->stats.requests - st->stats.ok));
  set_field_num(L, "records", (double)st->records);
  set_field_num(L, "elapsed_s", st->elapsed_s);
  lua_pushboolean(L, st->interrupted);
  lua_setfield(L, -2, "interrupted");
}

/* core.run(crawl, settings, opts) -> stats | nil, err, stats
 * Runs the crawl instance crawl (spec loaded by crawl.load_spec, whose
 * settings table, with ft.run's options over it, is settings) as an
 * ft_crawl on this state's loop. opts: out_path (records into that file;
 * nil: standard output, unless lua_out), lua_out (the crawl's out function
 * takes every record), no_body, no_headers, restart. A spec field out of
 * range, or a call from inside a crawl or a task, raises; a run that
 * failed returns nil, {kind=, message=}, stats; Ctrl-C raises
 * "interrupted". */
static int core_run(lua_State *L) {
  ft_script *s = core_self(L);
  char err[4096];
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (lua_pushthread(L) != 1)
    return luaL_error(L, "ft.run runs from top-level code, not inside a "
                         "task or handler");
  lua_pop(L, 1);
  if (s->crawling || s->L != L)
    return luaL_error(L, "ft.run: a crawl is running in this Lua state");
  uv_loop_t *loop = ft_lua_engine_enter_loop(L);
  if (!loop)
    return luaL_error(L, "ft.run cannot run inside a crawl or an event "
                         "loop step");

  ft_crawl_settings set;
  memset(&set, 0, sizeof(set));
  ft_config_default(&set.cfg);
  set.name = "ft.run";
  set.loop = loop;
  set.quiet = 1;
  lua_getfield(L, 3, "out_path");
  set.out_path = lua_tostring(L, -1); /* kept alive by opts */
  lua_getfield(L, 3, "restart");
  set.restart = lua_toboolean(L, -1);
  lua_getfield(L, 3, "no_body");
  if (lua_toboolean(L, -1))
    set.record_flags |= FT_RECORD_NO_BODY;
  lua_getfield(L, 3, "no_headers");
  if (lua_toboolean(L, -1))
    set.record_flags |= FT_RECORD_NO_HEADERS;
  lua_getfield(L, 3, "lua_out");
  run_loader rl = {s, 2, lua_toboolean(L, -1)};
  lua_pop(L, 5);
  set.script_records = rl.lua_out;
  set.interrupted = run_interrupted;
  set.interrupted_ud = ft_lua_engine_waker(L);

  ft_crawl_spec spec;
  memset(&spec, 0, sizeof(spec));
  spec.kind = FT_CRAWL_LOADED;
  spec.script = s;
  spec.load = run_load;
  spec.load_ud = &rl;

  crawl_binding b;
  crawl_bind(s, 1, &b);
  ft_crawl *c = NULL;
  int rc = ft_crawl_new(&c, &spec, &set, err, sizeof(err));
  int nres = 0, raise = 0;
  if (rc != 0) {
    raise = 1; /* a setting out of range: misuse */
  } else {
    rc = ft_crawl_run(c);
    ft_crawl_stats st;
    ft_crawl_get_stats(c, &st);
    if (st.interrupted) {
      raise = 1;
      snprintf(err, sizeof(err), "interrupted");
    } else if (rc == 0) {
      push_run_stats(L, &st);
      nres = 1;
    } else {
      const char *kind = "internal";
      if (st.start_error) {
        kind = "script";
        snprintf(err, sizeof(err), "%s", st.start_error);
      } else if (st.write_errno) {
        kind = "io";
        snprintf(err, sizeof(err), "writing records: %s",
                 strerror(st.write_errno));
      } else if (st.error) {
        kind = rc == FT_EINVAL ? "input" : "internal";
        snprintf(err, sizeof(err), "%s", st.error);
      } else {
        snprintf(err, sizeof(err), "the crawl failed: %s (said on stderr)",
                 ft_strerror(rc));
      }
      lua_pushnil(L);
      lua_createtable(L, 0, 2);
      lua_pushstring(L, kind);
      lua_setfield(L, -2, "kind");
      lua_pushstring(L, err);
      lua_setfield(L, -2, "message");
      push_run_stats(L, &st);
      nres = 3;
    }
  }
  ft_crawl_free(c);
  crawl_unbind(s, &b);
  ft_lua_engine_leave_loop(L);
  if (raise) {
    ft_lua_engine_unwake(set.interrupted_ud);
    return luaL_error(L, "%s", err);
  }
  return nres;
}

/* ---- the Lua module (build/fetchtree.so) --------------------------------- */

static int module_gc(lua_State *L) {
  ft_script **p = lua_touserdata(L, 1);
  ft_script_free(*p);
  *p = NULL;
  return 0;
}

int ft_script_open_module(lua_State *L) {
  ft_script *s = calloc(1, sizeof(*s));
  if (!s)
    return luaL_error(L, "out of memory");
  s->L = L;
  s->borrowed = 1;
  s->crawl_ref = LUA_NOREF;
  s->parse_ref = LUA_NOREF;
  s->tb_ref = LUA_NOREF;
  s->next_ref = LUA_NOREF;
  s->respond_ref = LUA_NOREF;
  /* the state owns s through a registry userdata that frees it */
  ft_script **p = lua_newuserdata(L, sizeof(*p));
  *p = s;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, module_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "fetchtree.module");
  preload_all(L, s);
  return open_api(L);
}

/* ---- the REPL ------------------------------------------------------------- */

struct lua_State *ft_script_lua(ft_script *s) { return s->L; }

/* ---- fetchtree lua FILE --------------------------------------------------- */

/* ft_script_exec's call, handed to exec_file as a light userdata. */
typedef struct exec_call {
  const char *path;
  char **args;
  int nargs;
  char *err;
  size_t errlen;
  int rc;
} exec_call;

/* Run by lua_cpcall: everything pushed for the script (ft, arg, its
 * arguments) is pushed inside the protected call; the script itself runs
 * under a nested pcall with a traceback. */
static int exec_file(lua_State *L) {
  exec_call *c = lua_touserdata(L, 1);
  lua_getglobal(L, "debug");
  lua_getfield(L, -1, "traceback");
  lua_remove(L, -2);
  int tb = lua_gettop(L);
  /* ft, as in the REPL */
  lua_getglobal(L, "require");
  lua_pushstring(L, "fetchtree");
  if (lua_pcall(L, 1, 1, tb) != 0)
    goto fail;
  lua_setglobal(L, "ft");
  lua_createtable(L, c->nargs, 1);
  lua_pushstring(L, c->path);
  lua_rawseti(L, -2, 0);
  for (int i = 0; i < c->nargs; i++) {
    lua_pushstring(L, c->args[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
  if (luaL_loadfile(L, c->path) != 0)
    goto fail;
  for (int i = 0; i < c->nargs; i++)
    lua_pushstring(L, c->args[i]);
  if (lua_pcall(L, c->nargs, 0, tb) != 0)
    goto fail;
  c->rc = 0;
  return 0;
fail:
  snprintf(c->err, c->errlen, "%s", lua_tostring(L, -1));
  return 0;
}

int ft_script_exec(ft_script *s, const char *path, char **args, int nargs,
                   char *err, size_t errlen) {
  lua_State *L = s->L;
  int top = lua_gettop(L);
  exec_call c = {path, args, nargs, err, errlen, FT_ELUA};
  if (lua_cpcall(L, exec_file, &c) != 0)
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
  lua_settop(L, top);
  return c.rc;
}

void ft_script_set_hold_fn(ft_script *s, void (*fn)(void *ud, int delta),
                           void *ud) {
  s->hold_fn = fn;
  s->hold_ud = ud;
}
