/* script_internal.h - what the files of the Lua half share: ft_script's fields and the helpers between them (not for the rest of fetchtree: script.h is its boundary).
 *
 * fetchtree.core is one Lua table assembled by script.c (open_core) from the
 * functions of several files, one concern each; every one of them is a
 * closure whose upvalue 1 is the ft_script it serves (ft_script_self). */
#ifndef FT_SCRIPT_INTERNAL_H
#define FT_SCRIPT_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "lua_state.h"
#include "script.h"
#include "settings.h" /* ft_place */

struct ft_tree;
struct ft_config;

/* One Lua state and what fetchtree keeps beside it, grouped by the file
 * that owns each field. */
struct ft_script {
  /* the Lua state (script.c) */
  lua_State *L;
  int borrowed;  /* L belongs to a host luajit (the Lua module) */
  int parse_ref; /* fetchtree.request.from_json */

  /* the crawl loaded in it (lua_crawl.c) */
  int crawl_ref;   /* fetchtree.crawl, once a crawl is loaded */
  int tb_ref;      /* debug.traceback, for crawl_call */
  int call_ref;    /* crawl_call_body, for crawl_call */
  int next_ref;    /* fetchtree.crawl.next and .respond, looked up once: */
  int respond_ref; /* they run for every request */
  const struct ft_config *cfg; /* the run's, kept by crawl_load: its final
                                  user agent (after the command line) */
  char *user_agent;        /* the spec's, which cfg points to */
  char *sensitive_headers; /* the spec's, comma-separated */
  struct ft_tree *tree;    /* the engine's object tree, for routing and
                              limits */
  ft_alarm_fn alarm_fn;
  void *alarm_ud;
  void (*hold_fn)(void *ud, int delta);
  void *hold_ud;
  ft_lua_state state; /* the run's state (state.h), opened on first use:
                         memory, or the --state file (lua_state.c binds it) */

  /* the records Lua writes (lua_output.c) */
  FILE *out;
  int record_flags; /* FT_RECORD_* for the default records written from Lua */
  int write_failed; /* errno of the first failed record write, or 0 */
  uint64_t records; /* record lines handed to out without an error */
  ft_buf json;      /* core.write_record's line, reused */

  /* ft.run (lua_run.c) */
  int crawling; /* ft.run's crawl is bound (crawl_bind) */
};

/* The ft_script a fetchtree.core function is bound to (its upvalue 1). */
static inline ft_script *ft_script_self(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* Writes the error value at idx into err as a message: a string as it is,
 * a number as a number, anything else as lua.c says it ("(error object is
 * a table value)"). Allocates nothing, so it is safe after any failed
 * protected call. */
static inline void ft_script_errmsg(lua_State *L, int idx, char *err,
                                    size_t errlen) {
  if (lua_type(L, idx) == LUA_TSTRING)
    snprintf(err, errlen, "%s", lua_tostring(L, idx));
  else if (lua_type(L, idx) == LUA_TNUMBER)
    snprintf(err, errlen, "%.14g", (double)lua_tonumber(L, idx));
  else
    snprintf(err, errlen, "(error object is a %s value)",
             luaL_typename(L, idx));
}

/* Sets fns into the table at the top of L's stack, each as a closure with
 * s as its upvalue (for ft_script_self). */
void ft_script_register(lua_State *L, ft_script *s, const luaL_Reg *fns);

/* ---- the files of fetchtree.core ---------------------------------------- */

/* lua_html.c: resolve, links, xpath into the table at the top of L's
 * stack. */
void ft_lua_html_register(lua_State *L, ft_script *s);

/* lua_output.c: write_record, write_default, encode into the table at the
 * top of L's stack. */
void ft_lua_output_register(lua_State *L, ft_script *s);

/* lua_robots.c: robots_new, robots_origin, robots_put, robots_forget,
 * robots_check into the table at the top of L's stack. */
void ft_lua_robots_register(lua_State *L, ft_script *s);

/* The rules cache of the robots value at idx (core.robots_new's), or NULL
 * when that is not one (or its cache is gone). */
struct ft_robots_cache *ft_lua_robots_test(lua_State *L, int idx);

/* lua_crawl.c: set_limits, after, hold into the table at the top of L's
 * stack. */
void ft_lua_crawl_register(lua_State *L, ft_script *s);

/* lua_run.c: run (ft.run's crawl) into the table at the top of L's stack. */
void ft_lua_run_register(lua_State *L, ft_script *s);

/* ---- shared between the files ------------------------------------------- */

/* script.c: the request fields at stack slots base .. base+4 (url, method,
 * headers list, body, meta JSON) into r, a new request. Returns 0,
 * FT_ENOMEM or FT_EINVAL. */
int ft_script_fill_request(lua_State *L, int base, ft_request *r);

/* lua_crawl.c: a crawl's settings table (at stack index t) into cfg and
 * info, as fields of the place given; the contract is above its
 * definition. crawl_load applies a spec's (FT_PLACE_SPEC), core.run
 * ft.run's (FT_PLACE_FT_RUN). */
int ft_script_apply_crawl_settings(ft_script *s, int t, const char *path,
                                   ft_place place, struct ft_config *cfg,
                                   ft_crawl_info *info, char *err,
                                   size_t errlen);

#endif
