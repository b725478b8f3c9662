/* lua_engine.c - the engine bound to Lua (fetchtree.engine): what ft.get, ft.fetch_all and tasks stand on.
 *
 * Each Lua state gets one libuv loop (created on first use) that every
 * engine made from Lua shares. A Lua engine submits requests under ids the
 * Lua side chooses and reports each completion by calling the function
 * given to engine.on_done(fn) with (id, res) or (id, nil, err), through a
 * protected call. The loop runs only when Lua asks (engine.step): at top
 * level ft.get steps until its answer is in; a task yields instead, and
 * whoever steps the loop resumes it. Stepping from inside a step (a
 * completion callback that calls ft.get at top level) is refused rather
 * than nesting uv_run, which libuv does not allow. */
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "error.h"
#include "lua_engine.h"
#include "lua_settings.h"
#include "request.h"
#include "robots.h"
#include "tree.h"

#define LOOP_KEY "fetchtree.loop"
#define ENGINE_MT "fetchtree.engine"
#define DONE_KEY "fetchtree.on_done"

/* The per-state loop: a userdata in the registry, closed by its __gc. */
typedef struct lua_loop {
  uv_loop_t own;
  uv_loop_t *loop; /* &own, or a host's (fetchtree run) */
  int borrowed;    /* the host runs the loop: never step it here */
  lua_State *L;    /* the state to call back into */
  int stepping;
  int busy;        /* engine code is on the C stack (a step, a submit) */
  int reaping;
  uv_timer_t timer;
  uv_async_t wake; /* ends a step early: Ctrl-C in the REPL */
  volatile sig_atomic_t interrupted; /* set with wake: the step raises */
  uv_check_t reaper; /* a borrowed loop: frees closed engines (reap) */
  struct lua_engine *list; /* open engines */
  struct lua_engine *dead; /* closed, to be freed by reap */
} lua_loop;

/* A Lua engine lives in its userdata. Closing one from inside engine code
 * (a done callback resumes a task that calls eng:close(), or the engine
 * is collected there) must not free it under that code: it is then only
 * marked closed, kept alive by a registry reference, and freed by reap
 * once the loop's callbacks have returned. */
typedef struct lua_engine {
  ft_engine *engine;
  lua_loop *ll;
  int pending;     /* submitted, not yet reported */
  int closed;      /* closed from Lua: completions are dropped */
  int ref;         /* registry reference while on ll->dead */
  struct lua_engine *prev, *next; /* in ll->list, or ll->dead once closed */
} lua_engine;

static void unlink_engine(lua_engine *le, lua_engine **head) {
  if (le->prev)
    le->prev->next = le->next;
  else
    *head = le->next;
  if (le->next)
    le->next->prev = le->prev;
  le->prev = le->next = NULL;
}

static void push_engine(lua_engine *le, lua_engine **head) {
  le->prev = NULL;
  le->next = *head;
  if (*head)
    (*head)->prev = le;
  *head = le;
}

/* Free the closed engines on ll->dead: only where no engine code is
 * running (after a step or submit on our own loop; on a host's loop, in
 * the reaper's check callback; at the loop's end). ft_engine_free runs
 * the loop for its close callbacks, and that can call back into Lua and
 * close more engines: they join the list. */
static void reap(lua_loop *ll) {
  if (ll->reaping || ll->busy)
    return;
  ll->reaping = 1;
  while (ll->dead) {
    lua_engine *le = ll->dead;
    unlink_engine(le, &ll->dead);
    ft_engine_free(le->engine); /* requests still held are dropped */
    le->engine = NULL;
    if (ll->L && le->ref != LUA_NOREF)
      luaL_unref(ll->L, LUA_REGISTRYINDEX, le->ref);
    le->ref = LUA_NOREF;
  }
  ll->reaping = 0;
  if (ll->borrowed && ll->L)
    uv_check_stop(&ll->reaper);
}

static void on_reaper(uv_check_t *c) { reap(c->data); }

/* The end of engine code called from Lua (a step, a submit, a recheck),
 * begun with ll->busy++: the engines closed inside it are freed now on our own
 * loop (on a host's, the reaper frees them). */
static void leave(lua_loop *ll) {
  ll->busy--;
  if (!ll->borrowed)
    reap(ll);
}

/* Close le (the userdata at stack index idx): at once when no engine code
 * is running, else marked closed and freed later by reap. Either way its
 * pending requests are never reported. */
static void engine_close(lua_State *L, lua_engine *le, int idx) {
  if (le->closed || !le->engine)
    return;
  lua_loop *ll = le->ll;
  le->closed = 1;
  unlink_engine(le, &ll->list);
  if (!ll->borrowed && !ll->busy && !ll->reaping) {
    ft_engine_free(le->engine);
    le->engine = NULL;
    return;
  }
  lua_pushvalue(L, idx);
  le->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  push_engine(le, &ll->dead);
  if (ll->borrowed)
    uv_check_start(&ll->reaper, on_reaper);
}

static void on_loop_timer(uv_timer_t *t) { (void)t; }
static void on_wake(uv_async_t *a) { (void)a; }

static void loop_gc_close(lua_loop *ll);

static int loop_gc(lua_State *L) {
  loop_gc_close(lua_touserdata(L, 1));
  return 0;
}

/* Close the engines on the loop, then the loop (a host's: only our
 * handles on it). */
static void loop_gc_close(lua_loop *ll) {
  if (!ll->L)
    return;
  while (ll->list) {
    lua_engine *le = ll->list;
    unlink_engine(le, &ll->list);
    le->closed = 1;
    ft_engine_free(le->engine);
    le->engine = NULL;
  }
  ll->busy = 0;
  reap(ll);
  uv_close((uv_handle_t *)&ll->timer, NULL);
  uv_close((uv_handle_t *)&ll->wake, NULL);
  uv_close((uv_handle_t *)&ll->reaper, NULL);
  if (ll->borrowed) {
    uv_run(ll->loop, UV_RUN_NOWAIT); /* our close callbacks */
  } else {
    uv_run(ll->loop, UV_RUN_DEFAULT);
    uv_loop_close(ll->loop);
  }
  ll->L = NULL;
}

static lua_loop *make_loop(lua_State *L, uv_loop_t *host) {
  lua_loop *ll = lua_newuserdata(L, sizeof(*ll));
  memset(ll, 0, sizeof(*ll));
  if (host) {
    ll->loop = host;
    ll->borrowed = 1;
  } else {
    ll->loop = &ll->own;
    if (uv_loop_init(ll->loop) != 0) {
      luaL_error(L, "fetchtree: cannot create an event loop");
      return NULL;
    }
  }
  uv_timer_init(ll->loop, &ll->timer);
  uv_unref((uv_handle_t *)&ll->timer);
  uv_async_init(ll->loop, &ll->wake, on_wake);
  uv_unref((uv_handle_t *)&ll->wake);
  uv_check_init(ll->loop, &ll->reaper);
  uv_unref((uv_handle_t *)&ll->reaper);
  ll->reaper.data = ll;
  ll->L = L;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
  return ll;
}

static lua_loop *get_loop(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
  lua_loop *ll = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return ll ? ll : make_loop(L, NULL);
}

int ft_lua_engine_use_loop(lua_State *L, uv_loop_t *loop) {
  lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
  int exists = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (exists)
    return -1;
  make_loop(L, loop);
  return 0;
}

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v) {
  if (!v)
    return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

void ft_lua_push_outcome(lua_State *L, const ft_request *req,
                         const ft_response *res) {
  if (res->error == FT_ERR_NONE) {
    /* the response; its headers are parsed only if asked for (Res) */
    lua_createtable(L, 0, 8);
    set_num(L, "status", (double)res->status);
    set_str(L, "url", res->final_url ? res->final_url : req->url);
    lua_pushlstring(L, res->body ? res->body : "", res->body_len);
    lua_setfield(L, -2, "body");
    lua_pushlstring(L, res->headers ? res->headers : "", res->headers_len);
    lua_setfield(L, -2, "_h");
    set_num(L, "attempts", res->attempts);
    set_num(L, "elapsed_ms", res->elapsed_ms);
    lua_pushnil(L);
    return;
  }
  lua_pushnil(L);
  ft_lua_push_error(L, req, res);
}

void ft_lua_push_error(lua_State *L, const ft_request *req,
                       const ft_response *res) {
  lua_createtable(L, 0, 6);
  set_str(L, "kind", ft_errkind_name(res->error));
  set_str(L, "message", res->message ? res->message : "");
  if (res->cause != FT_ERR_NONE)
    set_str(L, "cause", ft_errkind_name(res->cause));
  if (res->status > 0)
    set_num(L, "status", (double)res->status);
  set_num(L, "attempts", res->attempts);
  set_str(L, "url", req->url);
  if (res->error == FT_ERR_ROBOTS && res->final_url)
    set_str(L, "refused_url", res->final_url); /* a redirect's target */
}

/* What call_on_done reports, handed over as a light userdata. */
typedef struct done_args {
  const ft_request *req;
  const ft_response *res;
} done_args;

/* Run by lua_cpcall: on_done(id, res | nil, err), looked up and its
 * arguments made here, inside the protected call, so that running out of
 * memory while making them is caught like an error in the callback, and
 * never unwinds through the engine's and libuv's C frames. */
static int call_on_done(lua_State *L) {
  const done_args *a = lua_touserdata(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, DONE_KEY);
  if (!lua_isfunction(L, -1))
    return 0;
  lua_pushnumber(L, (lua_Number)a->req->index);
  ft_lua_push_outcome(L, a->req, a->res);
  lua_call(L, 3, 0);
  return 0;
}

/* A completion: call on_done(id, res | nil, err). */
static void on_done(void *ud, ft_request *req, const ft_response *res) {
  lua_engine *le = ud;
  lua_loop *ll = le->ll;
  lua_State *L = ll->L;
  le->pending--;
  if (!L || le->closed) {
    ft_request_free(req);
    return;
  }
  int top = lua_gettop(L);
  done_args a = {req, res};
  /* on_done protects its own callbacks; this catches only its own bugs
   * and a memory error */
  if (lua_cpcall(L, call_on_done, &a) != 0)
    fprintf(stderr, "fetchtree: %s\n", lua_tostring(L, -1));
  lua_settop(L, top);
  ft_request_free(req);
}

static lua_engine *check_engine(lua_State *L, int idx) {
  lua_engine *le = luaL_checkudata(L, idx, ENGINE_MT);
  if (!le->engine || le->closed)
    luaL_error(L, "fetchtree: this engine is closed");
  return le;
}

/* engine.new([opts [, label]]): an engine with the settings in opts, each
 * checked as every other place checks it (lua_settings.h); label names the
 * caller in messages ("ft.fetch_all"; default "engine.new"). */
static int l_new(lua_State *L) {
  lua_loop *ll = get_loop(L);
  ft_config cfg;
  ft_config_default(&cfg);
  if (!lua_isnoneornil(L, 1)) {
    const char *label = luaL_optstring(L, 2, "engine.new");
    char err[1024];
    /* strings in cfg point into opts' strings: ft_engine_new copies them */
    if (ft_settings_check_table(L, 1, FT_PLACE_ENGINE, &cfg, label, err,
                                sizeof(err)) != 0)
      return luaL_error(L, "%s", err);
    /* robots: requests submitted with a robots.txt cache are checked
     * before every request curl sends, redirects included */
    lua_getfield(L, 1, "robots");
    if (lua_toboolean(L, -1))
      cfg.url_check = ft_robots_url_check;
    lua_pop(L, 1);
  }
  lua_engine *le = lua_newuserdata(L, sizeof(*le));
  memset(le, 0, sizeof(*le));
  le->ll = ll;
  le->ref = LUA_NOREF;
  int rc = ft_engine_new(&le->engine, ll->loop, &cfg);
  if (rc != 0)
    return luaL_error(L, "fetchtree: %s", ft_strerror(rc));
  ft_engine_set_done(le->engine, on_done, le);
  push_engine(le, &ll->list);
  luaL_getmetatable(L, ENGINE_MT);
  lua_setmetatable(L, -2);
  return 1;
}

int ft_lua_to_request(lua_State *L, int idx, ft_request *r) {
  size_t blen = 0, ulen = 0, mlen = 0;
  const char *body =
      lua_isstring(L, idx + 3) ? lua_tolstring(L, idx + 3, &blen) : NULL;
  const char *method =
      lua_isstring(L, idx + 1) ? lua_tolstring(L, idx + 1, &mlen) : NULL;
  const char *url = lua_tolstring(L, idx, &ulen);
  if (!url)
    return FT_EINVAL;
  int rc = ft_request_set(r, url, method, body, blen);
  /* a C string ends at a NUL: the request is refused rather than fetched
   * cut short, and the record shows the whole URL */
  if (rc == 0 && strlen(url) != ulen)
    rc = ft_request_set_url(r, url, ulen);
  if (rc == 0 && method && strlen(method) != mlen)
    rc = ft_request_refuse(r, FT_ERR_INPUT, "bad method: it contains a NUL byte");
  if (rc == 0 && lua_istable(L, idx + 2)) {
    size_t n = lua_objlen(L, idx + 2);
    char why[256];
    for (size_t i = 1; i <= n && rc == 0; i++) {
      lua_rawgeti(L, idx + 2, (int)i);
      size_t len = 0;
      const char *line = lua_tolstring(L, -1, &len);
      if (!line) {
        rc = ft_request_refuse(r, FT_ERR_INPUT, "bad header line: not a string");
      } else if (ft_header_check(line, len, why, sizeof(why)) != 0) {
        /* left out, and the engine ends the request with the reason */
        rc = ft_request_refuse(r, FT_ERR_INPUT, why);
      } else {
        rc = ft_request_add_header(r, line);
      }
      lua_pop(L, 1);
    }
  }
  return rc;
}

/* E:submit(id, url, method, headers_list, body, timeout_s, retries, object,
 * robots) -> true: the outcome goes to on_done, maybe before this returns
 * (a request that fails at once; a header, method or URL the request
 * check refuses ends there as an input or url error) | nil, why for a
 * request that could not be made at all, never reported to on_done.
 * robots, the crawl's robots.txt cache (core.robots_new, whose userdata
 * starts with the ft_robots_cache pointer), makes the engine's url_check
 * apply to this request. */
static int l_submit(lua_State *L) {
  lua_engine *le = check_engine(L, 1);
  ft_request *r = ft_request_new();
  if (!r)
    return luaL_error(L, "out of memory");
  r->index = (uint64_t)luaL_checknumber(L, 2);
  luaL_checkstring(L, 3);
  int rc = ft_lua_to_request(L, 3, r);
  if (rc != 0) {
    ft_request_free(r);
    if (rc == FT_ENOMEM)
      return luaL_error(L, "out of memory");
    lua_pushnil(L);
    lua_pushfstring(L, "the request was refused: %s", ft_strerror(rc));
    return 2;
  }
  if (lua_isnumber(L, 7))
    r->timeout_ms = (long)(lua_tonumber(L, 7) * 1000);
  if (lua_isnumber(L, 8))
    r->retries = (int)lua_tonumber(L, 8);
  if (lua_isstring(L, 9)) {
    int e = 0;
    const char *name = lua_tostring(L, 9);
    r->obj = ft_tree_get(ft_engine_tree(le->engine), name, &e);
    if (!r->obj) { /* not the root in its place: the request's own error */
      char why[512];
      ft_tree_get_error(name, e, why, sizeof(why));
      if (ft_request_refuse(r, e == FT_ENOMEM ? FT_ERR_INTERNAL : FT_ERR_INPUT,
                            why) != 0) {
        ft_request_free(r);
        return luaL_error(L, "out of memory");
      }
    }
  }
  ft_robots_cache **robots = luaL_testudata(L, 10, FT_LUA_ROBOTS_MT);
  if (robots)
    r->udata = *robots;
  le->pending++;
  le->ll->busy++; /* a request that fails at once is reported from here */
  ft_engine_submit(le->engine, r);
  leave(le->ll);
  lua_pushboolean(L, 1);
  return 1;
}

/* E:configure(pattern, rps, window, concurrency, retries): limits for the
 * objects whose names match pattern, checked as obj:set_limits checks them
 * (false removes a limit; a bad value raises) -> true | nil, err */
static int l_configure(lua_State *L) {
  lua_engine *le = check_engine(L, 1);
  const char *pattern = luaL_checkstring(L, 2);
  ft_obj_settings st;
  char err[512];
  if (ft_lua_limits_args(L, 3, "configure", &st, err, sizeof(err)) != 0)
    return luaL_error(L, "%s", err);
  int rc = ft_tree_configure(ft_engine_tree(le->engine), pattern, &st);
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushstring(L, ft_strerror(rc));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* E:set_limits(name, rps, window, concurrency, retries): change one
 * object's limits live, checked as obj:set_limits checks them (false
 * removes a limit; a bad value raises) -> true | nil, err */
static int l_set_limits(lua_State *L) {
  lua_engine *le = check_engine(L, 1);
  const char *name = luaL_checkstring(L, 2);
  ft_obj_settings st;
  char err[512];
  if (ft_lua_limits_args(L, 3, "set_limits", &st, err, sizeof(err)) != 0)
    return luaL_error(L, "%s", err);
  int e = 0;
  ft_object *o = ft_tree_get(ft_engine_tree(le->engine), name, &e);
  int rc = o ? ft_object_set(o, &st) : e;
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushstring(L, ft_strerror(rc));
    return 2;
  }
  le->ll->busy++;
  ft_engine_recheck(le->engine);
  leave(le->ll);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_pending(lua_State *L) {
  lua_engine *le = check_engine(L, 1);
  lua_pushnumber(L, le->pending);
  return 1;
}

static int l_close(lua_State *L) {
  engine_close(L, luaL_checkudata(L, 1, ENGINE_MT), 1);
  return 0;
}

/* engine.on_done(fn): the completion callback for every engine. It does
 * not create the loop: a host may still hand its own (use_loop). */
static int l_on_done(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, DONE_KEY);
  return 0;
}

/* engine.step(timeout_ms): one round of I/O. 0 polls and returns; a
 * positive timeout waits at most that long for something to happen; a
 * negative one waits until something does. Returns true if the loop still
 * has work (transfers or timers). */
static int l_step(lua_State *L) {
  lua_loop *ll = get_loop(L);
  double t = luaL_optnumber(L, 1, 0);
  if (ll->borrowed)
    return luaL_error(L, "fetchtree: cannot wait for a response here: "
                         "fetchtree's own loop is running (in a handler, "
                         "ft.get yields; elsewhere, use ft.spawn)");
  if (ll->stepping)
    return luaL_error(L, "fetchtree: cannot wait for a response here: the "
                         "event loop is already running (use ft.spawn)");
  ll->stepping = 1;
  ll->busy++;
  ll->L = L;
  int alive;
  if (t == 0) {
    alive = uv_run(ll->loop, UV_RUN_NOWAIT);
  } else {
    if (t > 0)
      uv_timer_start(&ll->timer, on_loop_timer, (uint64_t)t, 0);
    alive = uv_run(ll->loop, UV_RUN_ONCE);
    uv_timer_stop(&ll->timer);
  }
  ll->stepping = 0;
  leave(ll);
  if (ll->interrupted) {
    /* Ctrl-C (ft_lua_engine_wake): end the wait here, in C, so that no
     * waiting loop depends on a Lua hook to stop (compiled code runs none) */
    ll->interrupted = 0;
    return luaL_error(L, "interrupted");
  }
  lua_pushboolean(L, alive != 0);
  return 1;
}

/* engine.fd(): a descriptor that becomes readable when the loop has work
 * to do, for applications that poll it from their own event loop. */
static int l_fd(lua_State *L) {
  lua_loop *ll = get_loop(L);
  lua_pushnumber(L, uv_backend_fd(ll->loop));
  return 1;
}

/* engine.borrowed(): is the loop the host's (so waiting means yielding)? */
static int l_borrowed(lua_State *L) {
  lua_pushboolean(L, get_loop(L)->borrowed);
  return 1;
}

int ft_lua_open_engine(lua_State *L) {
  static const luaL_Reg methods[] = {{"submit", l_submit},
                                     {"configure", l_configure},
                                     {"set_limits", l_set_limits},
                                     {"pending", l_pending},
                                     {"close", l_close},
                                     {NULL, NULL}};
  static const luaL_Reg fns[] = {{"new", l_new},
                                 {"on_done", l_on_done},
                                 {"step", l_step},
                                 {"fd", l_fd},
                                 {"borrowed", l_borrowed},
                                 {"check_settings", ft_lua_check_settings},
                                 {"settings", ft_lua_settings},
                                 {NULL, NULL}};
  if (luaL_newmetatable(L, ENGINE_MT)) {
    lua_createtable(L, 0, 3);
    for (const luaL_Reg *m = methods; m->name; m++) {
      lua_pushcfunction(L, m->func);
      lua_setfield(L, -2, m->name);
    }
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 4);
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_pushcfunction(L, f->func);
    lua_setfield(L, -2, f->name);
  }
  return 1;
}

void *ft_lua_engine_waker(lua_State *L) { return get_loop(L); }

void ft_lua_engine_wake(void *waker) {
  lua_loop *ll = waker;
  ll->interrupted = 1;
  uv_async_send(&ll->wake);
}

void ft_lua_engine_unwake(void *waker) { ((lua_loop *)waker)->interrupted = 0; }

void ft_lua_engine_release_loop(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
  lua_loop *ll = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!ll || !ll->borrowed || !ll->L)
    return;
  loop_gc_close(ll);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
}

/* ---- a host running the state's own loop (ft.run's crawl) ----------------- */

uv_loop_t *ft_lua_engine_enter_loop(lua_State *L) {
  lua_loop *ll = get_loop(L); /* may raise: no loop can be made */
  if (ll->borrowed || ll->stepping)
    return NULL;
  ll->stepping = 1; /* engine.step refuses to nest inside */
  ll->busy++;       /* engines closed meanwhile are freed by leave */
  ll->L = L;
  return ll->loop;
}

void ft_lua_engine_leave_loop(lua_State *L) {
  lua_loop *ll = get_loop(L);
  ll->stepping = 0;
  leave(ll);
}

int ft_lua_engine_woken(void *waker) {
  return ((lua_loop *)waker)->interrupted != 0;
}
