/* lua_crawl.c - the crawl boundary: what the crawl driver (crawl.c) calls in fetchtree.crawl, and the hooks Lua calls back.
 *
 * In the manner of wrk's script.c, the crawl driver never touches the Lua
 * stack: it calls the flat list of ft_script_crawl_*, ft_script_alarm,
 * ft_script_journal_* and ft_script_checkpoint declared in script.h, which
 * call the functions of lua/fetchtree/crawl.lua (load, object_settings,
 * next, respond, failure, alarm, resume, checkpoint), each under a
 * protected call with a traceback (crawl_call). The other way,
 * fetchtree.core's set_limits, after and hold reach the host through the
 * tree and the functions the driver set here (ft_script_set_tree,
 * _set_alarm_fn, _set_hold_fn).
 *
 * The sections follow a run: loading the spec, a request's way (next,
 * done), the hooks, and the durable state (journal, checkpoint). */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lua_engine.h"
#include "lua_settings.h"
#include "robots.h"
#include "script_internal.h"
#include "settings.h"
#include "state.h"
#include "tree.h"

/* ---- calling fetchtree.crawl --------------------------------------------- */

/* What a call into fetchtree.crawl passes: args pushes the arguments (from
 * ud) and returns how many; NULL for none. It runs inside the protected
 * call, so a memory error while pushing (a large body) is an error of
 * that call, not a panic of the Lua state. */
typedef int (*crawl_args_fn)(lua_State *L, const void *ud);

typedef struct crawl_call_ctx {
  ft_script *s;
  int *ref; /* where fn is kept once looked up, or NULL */
  const char *fn;
  crawl_args_fn args;
  const void *ud;
  int nres;
} crawl_call_ctx;

/* Run under lua_pcall by crawl_call_ref, with the context as light
 * userdata: looks fetchtree.crawl[fn] up (once, with a ref), pushes the
 * arguments and calls it; returns its nres results. */
static int crawl_call_body(lua_State *L) {
  const crawl_call_ctx *c = lua_touserdata(L, 1);
  if (c->ref && *c->ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, *c->ref);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->s->crawl_ref);
    lua_getfield(L, -1, c->fn);
    lua_remove(L, -2);
    if (c->ref) {
      lua_pushvalue(L, -1);
      *c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  int nargs = c->args ? c->args(L, c->ud) : 0;
  lua_call(L, nargs, c->nres);
  return c->nres;
}

/* Run by lua_cpcall, once per script: debug.traceback and crawl_call_body
 * kept in the registry, so that every later call pushes both without
 * allocating anything outside a protected call. */
static int crawl_call_setup(lua_State *L) {
  ft_script *s = lua_touserdata(L, 1);
  if (s->tb_ref == LUA_NOREF) {
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    s->tb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pushcfunction(L, crawl_call_body);
  s->call_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* Calls fetchtree.crawl[fn] with the arguments args pushes from ud, under
 * pcall with a traceback, everything but two registry reads and a light
 * userdata inside the protected call; nres results are left on the stack.
 * With ref, the function is looked up once and kept in the registry.
 * Returns 0 or FT_ELUA (message in err, stack restored). */
static int crawl_call_ref(ft_script *s, int *ref, const char *fn,
                          crawl_args_fn args, const void *ud, int nres,
                          char *err, size_t errlen) {
  lua_State *L = s->L;
  int base = lua_gettop(L);
  if (s->call_ref == LUA_NOREF && lua_cpcall(L, crawl_call_setup, s) != 0) {
    ft_script_errmsg(L, -1, err, errlen);
    lua_settop(L, base);
    return FT_ELUA;
  }
  crawl_call_ctx c = {s, ref, fn, args, ud, nres};
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->tb_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->call_ref);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 1, nres, base + 1) != 0) {
    ft_script_errmsg(L, -1, err, errlen);
    lua_settop(L, base);
    return FT_ELUA;
  }
  lua_remove(L, base + 1); /* the traceback function */
  return 0;
}

static int crawl_call(ft_script *s, const char *fn, crawl_args_fn args,
                      const void *ud, int nres, char *err, size_t errlen) {
  return crawl_call_ref(s, NULL, fn, args, ud, nres, err, errlen);
}

/* Arguments of the calls: numbers (next's want, alarm's id, resume's
 * two), and a request's outcome (respond's fields, failure's error). */
typedef struct crawl_numbers {
  int n;
  lua_Number v[2];
} crawl_numbers;

static int push_numbers(lua_State *L, const void *ud) {
  const crawl_numbers *a = ud;
  for (int i = 0; i < a->n; i++)
    lua_pushnumber(L, a->v[i]);
  return a->n;
}

typedef struct crawl_outcome {
  const ft_request *req;
  const ft_response *res;
} crawl_outcome;

/* respond(index, status, url, body, raw_headers, attempts, elapsed_ms):
 * the fields as arguments, as Lua's table constructor is cheaper than
 * setting them one by one from here */
static int push_response(lua_State *L, const void *ud) {
  const crawl_outcome *o = ud;
  const ft_request *req = o->req;
  const ft_response *res = o->res;
  lua_pushnumber(L, (double)req->index);
  lua_pushnumber(L, (double)res->status);
  lua_pushstring(L, res->final_url ? res->final_url : req->url);
  lua_pushlstring(L, res->body ? res->body : "", res->body_len);
  lua_pushlstring(L, res->headers ? res->headers : "", res->headers_len);
  lua_pushnumber(L, res->attempts);
  lua_pushnumber(L, res->elapsed_ms);
  return 7;
}

/* failure(index, err): err with refused_url for kind robots */
static int push_failure(lua_State *L, const void *ud) {
  const crawl_outcome *o = ud;
  lua_pushnumber(L, (double)o->req->index);
  ft_lua_push_error(L, o->req, o->res);
  return 2;
}

/* ---- loading a crawl ----------------------------------------------------- */

typedef struct load_args {
  const char *path;
  char **args;
  int nargs;
  int with_meta;
} load_args;

/* load(path, args, {with_meta = ...}) */
static int push_load_args(lua_State *L, const void *ud) {
  const load_args *a = ud;
  lua_pushstring(L, a->path);
  lua_createtable(L, a->nargs, 0);
  for (int i = 0; i < a->nargs; i++) {
    lua_pushstring(L, a->args[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, 0, 1);
  lua_pushboolean(L, a->with_meta);
  lua_setfield(L, -2, "with_meta");
  return 3;
}

/* Run by lua_cpcall: require "fetchtree.crawl", kept in s->crawl_ref. */
static int require_crawl(lua_State *L) {
  ft_script *s = lua_touserdata(L, 1);
  lua_getglobal(L, "require");
  lua_pushstring(L, "fetchtree.crawl");
  lua_call(L, 1, 1);
  s->crawl_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* crawl.load(path, args, {with_meta = ...}): the spec at path loaded into
 * the crawl module (required here, and kept in s->crawl_ref). Pushes the
 * settings table load returns; returns 0, or -1 with err set (the caller
 * restores the stack). */
static int crawl_load_spec(ft_script *s, const char *path, char **args,
                           int nargs, int with_meta, char *err,
                           size_t errlen) {
  lua_State *L = s->L;
  if (lua_cpcall(L, require_crawl, s) != 0) {
    ft_script_errmsg(L, -1, err, errlen);
    return -1;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, s->next_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->respond_ref);
  s->next_ref = s->respond_ref = LUA_NOREF;
  /* a spec that does not load is the user's error, not fetchtree's: the
   * message alone, without a traceback through fetchtree's own frames
   * (crawl.lua runs the script's chunk under xpcall with a traceback:
   * that is cut too, its first line names the script's file and line) */
  load_args a = {path, args, nargs, with_meta};
  if (crawl_call(s, "load", push_load_args, &a, 1, err, errlen) != 0) {
    char *tb = strstr(err, "\nstack traceback:");
    if (tb)
      *tb = '\0';
    return -1;
  }
  return 0;
}

/* The settings table at stack index t (what crawl.load returns) into cfg
 * and info; s keeps the strings cfg points to. Returns 0, or -1 with err
 * set for a field out of range or no memory. Leaves the stack as it was. */
int ft_script_apply_crawl_settings(ft_script *s, int t, const char *path,
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
    rc = ft_script_apply_crawl_settings(s, lua_gettop(L), path, FT_PLACE_SPEC,
                                        cfg, info, err, errlen) == 0
             ? 0
             : FT_EINVAL;
  lua_settop(L, top);
  return rc;
}

int ft_script_crawl_objects(ft_script *s, ft_tree *tree, char *err,
                            size_t errlen) {
  lua_State *L = s->L;
  int top = lua_gettop(L);
  int rc = 0;
  if (crawl_call(s, "object_settings", NULL, NULL, 1, err, errlen) != 0)
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

/* ---- a request's way: next, then done ------------------------------------ */

int ft_script_crawl_next(ft_script *s, int want, ft_request **out, char *err,
                         size_t errlen) {
  lua_State *L = s->L;
  int top = lua_gettop(L);
  int rc;
  crawl_numbers a = {1, {want > 0 ? want : 1}};
  if (crawl_call_ref(s, &s->next_ref, "next", push_numbers, &a, 8, err,
                     errlen) != 0)
    return FT_ELUA;
  if (lua_isnil(L, top + 1)) {
    const char *what = lua_tostring(L, top + 2);
    if (what && strcmp(what, "wait") == 0) {
      rc = 0;
    } else if (what && strcmp(what, "error") == 0) {
      ft_script_errmsg(L, top + 3, err, errlen);
      rc = FT_ELUA;
    } else {
      rc = -1;
    }
    lua_settop(L, top);
    return rc;
  }
  ft_request *r = ft_request_new();
  int frc = r ? ft_script_fill_request(L, top + 2, r) : FT_ENOMEM;
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
      ft_tree_get_error(name, e, why, sizeof(why));
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
  ft_robots_cache *rules = ft_lua_robots_test(L, top + 8);
  if (rules)
    r->udata = rules;
  lua_settop(L, top);
  *out = r;
  return 1;
}

int ft_script_crawl_done(ft_script *s, const ft_request *req,
                         const ft_response *res, char *err, size_t errlen) {
  crawl_outcome o = {req, res};
  if (res->error == FT_ERR_NONE)
    return crawl_call_ref(s, &s->respond_ref, "respond", push_response, &o, 0,
                          err, errlen);
  return crawl_call(s, "failure", push_failure, &o, 0, err, errlen);
}

/* ---- the hooks: routing, limits, alarms, holds --------------------------- */

void ft_script_set_tree(ft_script *s, ft_tree *tree) { s->tree = tree; }

void ft_script_set_alarm_fn(ft_script *s, ft_alarm_fn fn, void *ud) {
  s->alarm_fn = fn;
  s->alarm_ud = ud;
}

void ft_script_set_hold_fn(ft_script *s, void (*fn)(void *ud, int delta),
                           void *ud) {
  s->hold_fn = fn;
  s->hold_ud = ud;
}

int ft_script_alarm(ft_script *s, uint64_t id, char *err, size_t errlen) {
  crawl_numbers a = {1, {(lua_Number)id}};
  return crawl_call(s, "alarm", push_numbers, &a, 0, err, errlen);
}

/* core.set_limits(name, { rps =, window =, concurrency =, retries = }) ->
 * true | nil, "set_limits: ..." (the limits checked by the settings table) */
static int core_set_limits(lua_State *L) {
  ft_script *s = ft_script_self(L);
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
  ft_script *s = ft_script_self(L);
  if (s->hold_fn)
    s->hold_fn(s->hold_ud, (int)luaL_checknumber(L, 1));
  return 0;
}

/* core.after(id, ms): ask the host to call fetchtree.crawl.alarm(id) */
static int core_after(lua_State *L) {
  ft_script *s = ft_script_self(L);
  lua_Number id = luaL_checknumber(L, 1);
  lua_Number ms = luaL_checknumber(L, 2);
  if (!s->alarm_fn)
    return luaL_error(L, "alarms are not available here");
  s->alarm_fn(s->alarm_ud, (uint64_t)id, ms < 0 ? 0 : (uint64_t)ms);
  return 0;
}

void ft_lua_crawl_register(lua_State *L, ft_script *s) {
  static const luaL_Reg fns[] = {{"set_limits", core_set_limits},
                                 {"after", core_after},
                                 {"hold", core_hold},
                                 {NULL, NULL}};
  ft_script_register(L, s, fns);
}

/* ---- durable runs (--state) ---------------------------------------------- */

int ft_script_set_state(ft_script *s, const char *path) {
  free(s->state.where);
  s->state.where = path ? strdup(path) : NULL;
  return path && !s->state.where ? FT_ENOMEM : 0;
}

int ft_script_commit(ft_script *s) {
  return s->state.state ? ft_state_commit(s->state.state) : 0;
}

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
  crawl_numbers a = {2, {(lua_Number)info->start_pos, (lua_Number)info->next_id}};
  return crawl_call(s, "resume", push_numbers, &a, 0, err, errlen);
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
  if (crawl_call(s, "checkpoint", NULL, NULL, 2, err, sizeof(err)) != 0)
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
