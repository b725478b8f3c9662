/* script.c - the Lua state of fetchtree: its making and freeing, the embedded Lua modules, fetchtree.core assembled, and running a Lua file.
 *
 * The Lua half of fetchtree is this file and the lua_*.c files, behind one
 * boundary, script.h: the rest of the C calls its flat list of ft_script_*
 * functions and never touches a lua_State (wrk's script.c, split by
 * concern). fetchtree.core, the table of C functions fetchtree's Lua
 * modules call, is assembled here (open_core) from one file per concern:
 *
 *   lua_html.c     resolve, links, xpath: functions of a page
 *   lua_output.c   write_record, write_default, encode: records to the output
 *   lua_robots.c   robots_*: the robots.txt cache, a Lua-visible type
 *   lua_crawl.c    set_limits, after, hold, and the crawl boundary: what
 *                  crawl.c calls in fetchtree.crawl, journal, checkpoint
 *   lua_run.c      run: ft.run's binding to ft_crawl
 *   lua_state.c    seen, journal_*, storage, store_*: the run's state
 *   lua_settings.c check_settings, settings
 * (lua_engine.c is fetchtree.engine, a module of its own.) What those files
 * share of ft_script is in script_internal.h.
 *
 * fetchtree's Lua modules (lua/) are linked in as source (checked at build
 * time; see scripts/gen-lua-modules.sh for why not bytecode); they are
 * registered in package.preload, so require finds them with no file on
 * disk. Every call into Lua goes through lua_pcall: a Lua error becomes an
 * error message, never a crash. */
#include "script_internal.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lua_engine.h"
#include "lua_modules.h" /* generated: ft_lua_modules[] */
#include "lua_settings.h"
#include "lua_state.h"

/* ---- fetchtree.core, assembled ------------------------------------------- */

void ft_script_register(lua_State *L, ft_script *s, const luaL_Reg *fns) {
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
}

static int open_core(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"check_settings", ft_lua_check_settings},
      {"settings", ft_lua_settings},
      {NULL, NULL}};
  ft_script *s = ft_script_self(L);
  lua_createtable(L, 0, 24);
  ft_script_register(L, s, fns);
  ft_lua_html_register(L, s);   /* resolve, links, xpath: lua_html.c */
  ft_lua_output_register(L, s); /* write_record, write_default, encode:
                                   lua_output.c */
  ft_lua_robots_register(L, s); /* robots_*: lua_robots.c */
  ft_lua_crawl_register(L, s);  /* set_limits, after, hold: lua_crawl.c */
  ft_lua_run_register(L, s);    /* run: lua_run.c */
  /* seen, journal_*, storage, store_*: lua_state.c */
  ft_lua_state_register(L, &s->state);
  return 1;
}

/* ---- a Lua state and its modules ----------------------------------------- */

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
  s->parse_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
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
  s->call_ref = LUA_NOREF;
  s->next_ref = LUA_NOREF;
  s->respond_ref = LUA_NOREF;
  s->parse_ref = LUA_NOREF;
  /* lua_cpcall: the whole set-up, the C function's own allocation too,
   * runs protected */
  if (lua_cpcall(s->L, init_state, s) != 0) {
    ft_script_errmsg(s->L, -1, err, errlen);
    lua_close(s->L);
    free(s);
    return FT_ELUA;
  }
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

/* ---- JSON request lines (`fetchtree fetch`) ------------------------------ */

/* The request fields at stack slots base .. base+4 (url, method, headers
 * list, body, meta JSON) into r, a new request. Returns 0, FT_ENOMEM or
 * FT_EINVAL. */
int ft_script_fill_request(lua_State *L, int base, ft_request *r) {
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
    ft_script_errmsg(L, 3, c->err, c->errlen);
    return 0;
  }
  c->rc = ft_script_fill_request(L, 2, c->r);
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
    ft_script_errmsg(L, -1, err, errlen);
    c.rc = FT_EINVAL;
  }
  lua_settop(L, top);
  return c.rc;
}

/* ---- interrupting Lua (Ctrl-C) ------------------------------------------- */

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

void ft_script_interrupt(ft_script *s) {
  lua_sethook(s->L, interrupt_hook,
              LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
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
  s->call_ref = LUA_NOREF;
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

/* ---- the REPL ------------------------------------------------------------ */

struct lua_State *ft_script_lua(ft_script *s) { return s->L; }

/* ---- fetchtree lua FILE -------------------------------------------------- */

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
  ft_script_errmsg(L, -1, c->err, c->errlen);
  return 0;
}

int ft_script_exec(ft_script *s, const char *path, char **args, int nargs,
                   char *err, size_t errlen) {
  lua_State *L = s->L;
  int top = lua_gettop(L);
  exec_call c = {path, args, nargs, err, errlen, FT_ELUA};
  if (lua_cpcall(L, exec_file, &c) != 0)
    ft_script_errmsg(L, -1, err, errlen);
  lua_settop(L, top);
  return c.rc;
}
