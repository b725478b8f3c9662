/* lua_run.c - ft.run's binding (fetchtree.core's run): a crawl instance of a Lua state, run by ft_crawl (crawl.c) on the state's loop.
 *
 * api.lua's ft.run loads its spec into a crawl instance of its own
 * (crawl.load_spec) and hands it to core.run, which runs it as an ft_crawl
 * of kind FT_CRAWL_LOADED: the driver of `fetchtree run`, not a second one.
 *
 * fetchtree.core is bound to s, and what a run keeps in s (the crawl
 * module, the seen set, the state, the output counts) belongs to one run:
 * crawl_bind points s at the caller's crawl instance with all of that
 * fresh, and crawl_unbind puts back what was there (nothing, outside a
 * run), so that two ft.run calls share nothing. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "crawl.h"
#include "error.h"
#include "lua_engine.h"
#include "record.h"
#include "script_internal.h"

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
  if (ft_script_apply_crawl_settings(rl->s, rl->settings, "ft.run",
                                     FT_PLACE_FT_RUN, cfg, info, err,
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

/* ft.run's options (the table at stack index 3: out_path, restart,
 * no_body, no_headers, lua_out) into set, on loop; rl learns lua_out.
 * Strings in set point into the options table, which outlives the run. */
static void run_settings(lua_State *L, uv_loop_t *loop, ft_crawl_settings *set,
                         run_loader *rl) {
  memset(set, 0, sizeof(*set));
  ft_config_default(&set->cfg);
  set->name = "ft.run";
  set->loop = loop;
  set->quiet = 1;
  lua_getfield(L, 3, "out_path");
  set->out_path = lua_tostring(L, -1);
  lua_getfield(L, 3, "restart");
  set->restart = lua_toboolean(L, -1);
  lua_getfield(L, 3, "no_body");
  if (lua_toboolean(L, -1))
    set->record_flags |= FT_RECORD_NO_BODY;
  lua_getfield(L, 3, "no_headers");
  if (lua_toboolean(L, -1))
    set->record_flags |= FT_RECORD_NO_HEADERS;
  lua_getfield(L, 3, "lua_out");
  rl->lua_out = lua_toboolean(L, -1);
  lua_pop(L, 5);
  set->script_records = rl->lua_out;
  set->interrupted = run_interrupted;
  set->interrupted_ud = ft_lua_engine_waker(L);
}

/* A run that failed (rc, not interrupted): pushes nil, { kind, message }
 * and its stats. The kind: "script" (start raised), "io" (writing
 * records), "input" (it could not start: a usage error), or "internal". */
static void push_run_failure(lua_State *L, int rc, const ft_crawl_stats *st) {
  char err[4096];
  const char *kind = "internal";
  if (st->start_error) {
    kind = "script";
    snprintf(err, sizeof(err), "%s", st->start_error);
  } else if (st->write_errno) {
    kind = "io";
    snprintf(err, sizeof(err), "writing records: %s",
             strerror(st->write_errno));
  } else if (st->error) {
    kind = rc == FT_EINVAL ? "input" : "internal";
    snprintf(err, sizeof(err), "%s", st->error);
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
  push_run_stats(L, st);
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
  ft_script *s = ft_script_self(L);
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
  run_loader rl = {s, 2, 0};
  run_settings(L, loop, &set, &rl);

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
      push_run_failure(L, rc, &st);
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

void ft_lua_run_register(lua_State *L, ft_script *s) {
  static const luaL_Reg fns[] = {{"run", core_run}, {NULL, NULL}};
  ft_script_register(L, s, fns);
}
