/* lua_state.c - fetchtree.core's state functions: the seen set, the durable
 * frontier (journal_*) and object storage handles, over ft_state (state.h). */
#include "lua_state.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "dedupe.h"
#include "error.h"

/* An object's storage is reached through a handle: a userdata holding the
 * object's name, made by core.storage(name) and read only by the
 * core.store_* functions below. Lua code cannot forge one or change the
 * name in one; fetchtree.crawl hands each object its own handle, and
 * fetchtree.core itself is out of scripts' reach (see fetchtree.api). */
#define STORAGE_MT "fetchtree.storage"

int ft_lua_state_open(ft_lua_state *ls, char *err, size_t errlen) {
  if (ls->state != NULL)
    return 0;
  return ft_state_open(&ls->state, ls->where, err, errlen);
}

void ft_lua_state_close(ft_lua_state *ls) {
  /* a durable run commits at its checkpoints only: writes after the last
   * one go with records past the committed offset, which the next run cuts */
  if (ls->journal)
    ft_state_abandon(ls->state, "closed");
  ls->journal = 0;
  ft_state_close(ls->state);
  ls->state = NULL;
  free(ls->where);
  ls->where = NULL;
}

static ft_lua_state *self(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* The run's state, opened on first use; raises "what: why" if it cannot
 * be. */
static ft_state *state_of(lua_State *L, const char *what) {
  ft_lua_state *ls = self(L);
  char err[512];
  if (ft_lua_state_open(ls, err, sizeof err) != 0)
    luaL_error(L, "%s: %s", what, err);
  return ls->state;
}

/* ---- the seen set ---------------------------------------------------------- */

typedef struct seen_answer {
  int answered, is_new, status;
} seen_answer;

static void seen_cb(void *ud, const unsigned char key[16], int is_new,
                    int status) {
  seen_answer *a = ud;
  a->answered = 1;
  a->is_new = is_new;
  a->status = status;
}

/* core.seen(method, url, body) -> true when new (and now remembered). A
 * method or URL with a NUL inside is always new and not remembered: cut
 * at the NUL it would pass for another request, and the engine refuses it
 * anyway (ft_request_check), with a record. The answer must come before
 * ft_state_seen_add returns (state.h, "Answers that come later"). */
static int core_seen(lua_State *L) {
  size_t blen = 0, mlen = 0, ulen = 0;
  const char *method = luaL_checklstring(L, 1, &mlen);
  const char *url = luaL_checklstring(L, 2, &ulen);
  const char *body = luaL_optlstring(L, 3, NULL, &blen);
  if (strlen(method) != mlen || strlen(url) != ulen) {
    lua_pushboolean(L, 1);
    return 1;
  }
  ft_state *st = state_of(L, "state");
  unsigned char key[16];
  ft_dedupe_hash_key(method, url, body, blen, key);
  seen_answer a = {0, 0, 0};
  int rc = ft_state_seen_add(st, key, seen_cb, &a);
  if (rc == 0 && a.answered && a.status != 0)
    rc = a.status;
  if (rc != 0)
    return luaL_error(L, "state: %s", ft_state_errmsg(st));
  if (!a.answered)
    return luaL_error(L,
                      "state: the %s backend answers the seen set later;"
                      " core.seen needs the answer now",
                      ft_state_backend_name(st));
  lua_pushboolean(L, a.is_new);
  return 1;
}

/* ---- the durable frontier (--state) ------------------------------------------ */

/* core.journal_add(id, blob): a request enters the durable frontier */
static int core_journal_add(lua_State *L) {
  ft_state *st = state_of(L, "state");
  size_t len;
  const char *blob = luaL_checklstring(L, 2, &len);
  if (ft_state_frontier_push(st, (int64_t)luaL_checknumber(L, 1), blob,
                             len) != 0)
    return luaL_error(L, "state: %s", ft_state_errmsg(st));
  return 0;
}

/* Appends id, blob to the table at the top of the stack. */
static int take_one(void *ud, int64_t id, const void *blob, size_t len) {
  lua_State *L = ud;
  int n = (int)lua_objlen(L, -1);
  lua_pushnumber(L, (lua_Number)id);
  lua_rawseti(L, -2, n + 1);
  lua_pushlstring(L, blob, len);
  lua_rawseti(L, -2, n + 2);
  return 0;
}

/* core.journal_take(limit) -> { id1, blob1, id2, blob2, ... }, oldest first */
static int core_journal_take(lua_State *L) {
  ft_state *st = state_of(L, "state");
  int limit = (int)luaL_checknumber(L, 1);
  lua_newtable(L);
  if (ft_state_frontier_take(st, limit, take_one, L) < 0) /* or a count */
    return luaL_error(L, "state: %s", ft_state_errmsg(st));
  return 1;
}

/* core.journal_done(id): a request that never reached the engine is done */
static int core_journal_done(lua_State *L) {
  ft_lua_state *ls = self(L);
  int64_t id = (int64_t)luaL_checknumber(L, 1);
  if (ls->journal && ft_state_frontier_ack(ls->state, id) != 0)
    return luaL_error(L, "state: %s", ft_state_errmsg(ls->state));
  return 0;
}

/* ---- storage handles ------------------------------------------------------------ */

/* core.storage(name) -> the handle of name's storage */
static int core_storage(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  char *h = lua_newuserdata(L, len + 1);
  memcpy(h, name, len + 1);
  luaL_getmetatable(L, STORAGE_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* The object name of the storage handle at idx; raises for anything else. */
static const char *storage_name(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, STORAGE_MT);
}

/* core.store_get(handle, key) -> value | nil */
static int core_store_get(lua_State *L) {
  ft_state *st = state_of(L, "storage");
  char *val = NULL;
  size_t len = 0, klen;
  const char *key = luaL_checklstring(L, 2, &klen); /* NUL bytes too */
  int rc = ft_state_kv_get(st, storage_name(L, 1), key, klen, &val, &len);
  if (rc == FT_ENOTFOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (rc != 0)
    return luaL_error(L, "storage: %s", ft_state_errmsg(st));
  lua_pushlstring(L, val, len);
  free(val);
  return 1;
}

/* core.store_put(handle, key, value) */
static int core_store_put(lua_State *L) {
  ft_state *st = state_of(L, "storage");
  size_t len, klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  const char *v = luaL_checklstring(L, 3, &len);
  if (ft_state_kv_put(st, storage_name(L, 1), key, klen, v, len) != 0)
    return luaL_error(L, "storage: %s", ft_state_errmsg(st));
  return 0;
}

/* core.store_delete(handle, key) */
static int core_store_delete(lua_State *L) {
  ft_state *st = state_of(L, "storage");
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  if (ft_state_kv_delete(st, storage_name(L, 1), key, klen) != 0)
    return luaL_error(L, "storage: %s", ft_state_errmsg(st));
  return 0;
}

/* Appends key, value to the table at the top of the stack. */
static int list_one(void *ud, const char *key, size_t klen, const void *val,
                    size_t len) {
  lua_State *L = ud;
  int n = (int)lua_objlen(L, -1);
  lua_pushlstring(L, key, klen);
  lua_rawseti(L, -2, n + 1);
  lua_pushlstring(L, val, len);
  lua_rawseti(L, -2, n + 2);
  return 0;
}

/* core.store_list(handle, prefix, limit) -> { key1, value1, key2, ... } */
static int core_store_list(lua_State *L) {
  ft_state *st = state_of(L, "storage");
  const char *obj = storage_name(L, 1);
  size_t plen = 0;
  const char *prefix = luaL_optlstring(L, 2, NULL, &plen);
  int limit = (int)luaL_optnumber(L, 3, 0);
  lua_newtable(L);
  if (ft_state_kv_list(st, obj, prefix, plen, limit, list_one, L) != 0)
    return luaL_error(L, "storage: %s", ft_state_errmsg(st));
  return 1;
}

/* Appends one result row, as a table of column name -> value. */
static int sql_row(void *ud, int ncols, const char *const *names,
                   const ft_sql_value *vals) {
  lua_State *L = ud;
  int n = (int)lua_objlen(L, -1);
  lua_createtable(L, 0, ncols);
  for (int i = 0; i < ncols; i++) {
    switch (vals[i].type) {
    case FT_SQL_INT:
      lua_pushnumber(L, (lua_Number)vals[i].i);
      break;
    case FT_SQL_REAL:
      lua_pushnumber(L, vals[i].r);
      break;
    case FT_SQL_TEXT:
    case FT_SQL_BLOB:
      lua_pushlstring(L, vals[i].s, vals[i].len);
      break;
    default:
      lua_pushnil(L);
    }
    lua_setfield(L, -2, names[i]);
  }
  lua_rawseti(L, -2, n + 1);
  return 0;
}

/* The Lua value at idx as an SQL argument; raises for a type SQL has no
 * column for. */
static void sql_arg(lua_State *L, int idx, int i, ft_sql_value *a) {
  memset(a, 0, sizeof *a);
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: {
    lua_Number v = lua_tonumber(L, idx);
    if (v == (lua_Number)(int64_t)v) {
      a->type = FT_SQL_INT;
      a->i = (int64_t)v;
    } else {
      a->type = FT_SQL_REAL;
      a->r = v;
    }
    break;
  }
  case LUA_TSTRING:
    a->type = FT_SQL_TEXT;
    a->s = lua_tolstring(L, idx, &a->len);
    break;
  case LUA_TBOOLEAN:
    a->type = FT_SQL_INT;
    a->i = lua_toboolean(L, idx);
    break;
  case LUA_TNIL:
    a->type = FT_SQL_NULL;
    break;
  default:
    luaL_error(L, "sql: argument %d must be a string, number, boolean or nil",
               i + 1);
  }
}

/* core.store_sql(handle, query, args...) -> rows, changes | nil, err */
static int core_store_sql(lua_State *L) {
  ft_state *st = state_of(L, "storage");
  const char *obj = storage_name(L, 1);
  const char *query = luaL_checkstring(L, 2);
  int nargs = lua_gettop(L) - 2;
  ft_sql_value args[32];
  if (nargs > 32)
    return luaL_error(L, "sql: at most 32 arguments");
  for (int i = 0; i < nargs; i++)
    sql_arg(L, i + 3, i, &args[i]);
  char err[512];
  int64_t changes = 0;
  lua_newtable(L);
  if (ft_state_sql(st, obj, query, args, nargs, sql_row, L, &changes, err,
                   sizeof(err)) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushnumber(L, (lua_Number)changes);
  return 2;
}

void ft_lua_state_register(lua_State *L, ft_lua_state *ls) {
  static const luaL_Reg fns[] = {
      {"seen", core_seen},
      {"journal_add", core_journal_add},
      {"journal_take", core_journal_take},
      {"journal_done", core_journal_done},
      {"storage", core_storage},
      {"store_get", core_store_get},
      {"store_put", core_store_put},
      {"store_delete", core_store_delete},
      {"store_list", core_store_list},
      {"store_sql", core_store_sql},
      {NULL, NULL}};
  if (luaL_newmetatable(L, STORAGE_MT)) {
    lua_pushliteral(L, "storage handle"); /* getmetatable's answer */
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  for (const luaL_Reg *f = fns; f->name != NULL; f++) {
    lua_pushlightuserdata(L, ls);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
}
