/* lua_settings.c - settings given as Lua values, checked against the one
 * table in settings.c: a field, or a whole table for one place. */
#include "lua_settings.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tree.h"

/* the registry slot keeping the last joined list of names alive */
#define SCRATCH_KEY "fetchtree.settings.scratch"

static const struct {
  const char *name;
  ft_place place;
} place_names[] = {
    {"fetch", FT_PLACE_FETCH},     {"run", FT_PLACE_RUN},
    {"spec", FT_PLACE_SPEC},       {"object", FT_PLACE_OBJECT},
    {"request", FT_PLACE_REQUEST}, {"engine", FT_PLACE_ENGINE},
    {"ft.run", FT_PLACE_FT_RUN},   {"limits", FT_PLACE_LIMITS},
    {"emit", FT_PLACE_EMIT},       {"line", FT_PLACE_LINE},
};
#define NPLACES (sizeof(place_names) / sizeof(place_names[0]))

ft_place ft_place_from_name(const char *name) {
  for (size_t i = 0; i < NPLACES; i++)
    if (strcmp(place_names[i].name, name) == 0)
      return place_names[i].place;
  return 0;
}

/* why = "must be <what s wants>, got <got>" */
static int refuse(const ft_setting *s, const char *got, char *why,
                  size_t whylen) {
  char expect[160];
  ft_setting_expect(s, expect, sizeof(expect));
  snprintf(why, whylen, "must be %s, got %s", expect, got);
  return FT_EINVAL;
}

static int refuse_type(lua_State *L, int idx, const ft_setting *s, char *why,
                       size_t whylen) {
  return refuse(s, lua_typename(L, lua_type(L, idx)), why, whylen);
}

/* The items of the list at idx joined with commas, pushed as a string; 0,
 * or FT_EINVAL when an item is not a string or a number (why set). */
static int join_list(lua_State *L, int idx, const ft_setting *s, char *why,
                     size_t whylen) {
  luaL_Buffer b;
  size_t n = lua_objlen(L, idx);
  luaL_buffinit(L, &b);
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    int t = lua_type(L, -1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER) {
      char got[64];
      snprintf(got, sizeof(got), "%s (item %zu)", lua_typename(L, t), i);
      lua_pop(L, 1);
      luaL_pushresult(&b);
      lua_pop(L, 1);
      return refuse(s, got, why, whylen);
    }
    if (i > 1)
      luaL_addchar(&b, ',');
    luaL_addvalue(&b); /* pops the item */
  }
  luaL_pushresult(&b);
  return 0;
}

int ft_settings_from_lua(lua_State *L, int idx, const ft_setting *s,
                         ft_place place, ft_setting_value *v, char *why,
                         size_t whylen) {
  int t = lua_type(L, idx);
  memset(v, 0, sizeof(*v));
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, idx) &&
      ft_setting_removable(s, place)) {
    v->off = 1; /* false: remove the limit */
    return 0;
  }
  switch (s->type) {
  case FT_SETTING_INT:
  case FT_SETTING_NUMBER:
    if (t != LUA_TNUMBER)
      return refuse_type(L, idx, s, why, whylen);
    v->num = lua_tonumber(L, idx);
    v->size = (int64_t)v->num;
    return ft_setting_check_number(s, v->num, why, whylen);
  case FT_SETTING_SIZE:
    if (t == LUA_TSTRING)
      return ft_setting_parse(s, lua_tostring(L, idx), v, why, whylen);
    if (t != LUA_TNUMBER)
      return refuse_type(L, idx, s, why, whylen);
    v->num = lua_tonumber(L, idx);
    if (ft_setting_check_number(s, v->num, why, whylen) != 0)
      return FT_ERANGE;
    v->size = (int64_t)v->num;
    return 0;
  case FT_SETTING_BOOL:
    if (t != LUA_TBOOLEAN)
      return refuse_type(L, idx, s, why, whylen);
    v->flag = lua_toboolean(L, idx);
    return 0;
  case FT_SETTING_STRING:
  case FT_SETTING_FILE:
    if (t != LUA_TSTRING)
      return refuse_type(L, idx, s, why, whylen);
    return ft_setting_parse(s, lua_tostring(L, idx), v, why, whylen);
  case FT_SETTING_STATUSES:
  case FT_SETTING_NAMES: {
    if (t == LUA_TSTRING)
      return ft_setting_parse(s, lua_tostring(L, idx), v, why, whylen);
    if (t != LUA_TTABLE)
      return refuse_type(L, idx, s, why, whylen);
    int abs = idx > 0 ? idx : lua_gettop(L) + idx + 1;
    if (join_list(L, abs, s, why, whylen) != 0)
      return FT_EINVAL;
    int rc = ft_setting_parse(s, lua_tostring(L, -1), v, why, whylen);
    /* keep the joined list alive for v->str (until the next call) */
    lua_setfield(L, LUA_REGISTRYINDEX, SCRATCH_KEY);
    return rc;
  }
  case FT_SETTING_STRINGS: {
    if (t != LUA_TTABLE)
      return refuse_type(L, idx, s, why, whylen);
    size_t n = lua_objlen(L, idx);
    for (size_t i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, (int)i);
      int it = lua_type(L, -1);
      lua_pop(L, 1);
      if (it != LUA_TSTRING) {
        char got[64];
        snprintf(got, sizeof(got), "%s (item %zu)", lua_typename(L, it), i);
        return refuse(s, got, why, whylen);
      }
    }
    return 0;
  }
  case FT_SETTING_FUNCTION:
    return t == LUA_TFUNCTION ? 0 : refuse_type(L, idx, s, why, whylen);
  case FT_SETTING_TABLE:
    return t == LUA_TTABLE ? 0 : refuse_type(L, idx, s, why, whylen);
  case FT_SETTING_ROBOTS:
    if (t == LUA_TBOOLEAN) {
      v->flag = lua_toboolean(L, idx);
      return 0;
    }
    if (t == LUA_TTABLE && place == FT_PLACE_SPEC) {
      v->flag = 1;
      return 0;
    }
    if (place != FT_PLACE_SPEC) { /* the rules' options are the spec's */
      snprintf(why, whylen, "must be a boolean, got %s", lua_typename(L, t));
      return FT_EINVAL;
    }
    return refuse_type(L, idx, s, why, whylen);
  case FT_SETTING_OUT:
    if (t == LUA_TFUNCTION)
      return 0;
    if (t != LUA_TSTRING)
      return refuse_type(L, idx, s, why, whylen);
    v->str = lua_tostring(L, idx);
    return 0;
  case FT_SETTING_ANY:
    return 0;
  }
  return refuse_type(L, idx, s, why, whylen);
}

/* ---- where a spec's field is --------------------------------------------- */

/* The file a spec came from: label when it names a readable file (fetchtree
 * run passes the script's path), else the file of the spec's start
 * function (ft.run's spec, written in a script). Copied into buf; "" when
 * neither is known. *anchor: the line where start is defined in that file,
 * or 0. */
static void spec_file(lua_State *L, int spec, const char *label, char *buf,
                      size_t len, int *anchor) {
  char src[512] = "";
  buf[0] = '\0';
  *anchor = 0;
  lua_getfield(L, spec, "start");
  if (lua_isfunction(L, -1)) {
    lua_Debug ar;
    if (lua_getinfo(L, ">S", &ar) && ar.source[0] == '@') {
      snprintf(src, sizeof(src), "%s", ar.source + 1);
      *anchor = ar.linedefined;
    }
  } else {
    lua_pop(L, 1);
  }
  FILE *f = fopen(label, "r");
  if (f) {
    fclose(f);
    snprintf(buf, len, "%s", label);
    if (strcmp(src, label) != 0)
      *anchor = 0;
    return;
  }
  snprintf(buf, len, "%s", src);
}

static int is_name_char(int c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

/* Does line set field (`field =`, not `field ==`)? */
static int sets_field(const char *line, const char *field) {
  size_t n = strlen(field);
  for (const char *p = strstr(line, field); p; p = strstr(p + 1, field)) {
    if (p > line && is_name_char((unsigned char)p[-1]))
      continue;
    const char *q = p + n;
    if (is_name_char((unsigned char)*q))
      continue;
    while (*q == ' ' || *q == '\t')
      q++;
    if (*q == '=' && q[1] != '=')
      return 1;
  }
  return 0;
}

/* The line of file where field is set: of the lines that set it (after
 * the first line naming the object pattern `after`, when not NULL), the
 * nearest to the line anchor (the spec's start function: a script may
 * hold more than one table setting the same names), the first when anchor
 * is 0; 0 when none does. */
static int find_line(const char *file, const char *field, const char *after,
                     int anchor) {
  FILE *f = fopen(file, "r");
  if (!f)
    return 0;
  char buf[4096];
  int lineno = 0, found = 0, past = after == NULL;
  while (fgets(buf, sizeof(buf), f)) {
    lineno++;
    if (!past && strstr(buf, after))
      past = 1;
    if (past && sets_field(buf, field)) {
      if (!found || abs(lineno - anchor) < abs(found - anchor))
        found = lineno;
      if (!anchor || lineno >= anchor)
        break; /* later lines are only farther */
    }
  }
  fclose(f);
  return found;
}

/* err = "FILE:LINE: field 'display': why", or "label: field ...". The value
 * is at vidx (0: none); spec is the spec table's index, or 0 when lines
 * are not looked for. */
static void field_error(lua_State *L, int spec, int vidx, const char *label,
                        const char *pattern, const char *field, const char *why,
                        char *err, size_t errlen) {
  char display[300];
  if (pattern)
    snprintf(display, sizeof(display), "objects[\"%s\"].%s", pattern, field);
  else
    snprintf(display, sizeof(display), "%s", field);
  if (spec) {
    char file[512];
    int line = 0;
    if (vidx && lua_isfunction(L, vidx)) {
      lua_Debug ar;
      lua_pushvalue(L, vidx);
      if (lua_getinfo(L, ">S", &ar) && ar.source[0] == '@' &&
          ar.linedefined > 0) {
        snprintf(file, sizeof(file), "%s", ar.source + 1);
        line = ar.linedefined;
      }
    }
    if (!line) {
      int anchor;
      spec_file(L, spec, label, file, sizeof(file), &anchor);
      if (file[0])
        line = find_line(file, field, pattern, anchor);
    }
    if (line) {
      snprintf(err, errlen, "%s:%d: field '%s': %s", file, line, display, why);
      return;
    }
  }
  snprintf(err, errlen, "%s: field '%s': %s", label, display, why);
}

/* ---- whole tables ----------------------------------------------------------
 */

/* The first key of the table at t that place does not accept (the least
 * in byte order among string keys, so the answer does not depend on the
 * table's layout; a key that is not a string before any), pushed, and 1;
 * or nothing pushed and 0 when every key is known. */
static int first_unknown(lua_State *L, int t, ft_place place) {
  lua_pushnil(L); /* the answer so far */
  lua_pushnil(L); /* the iteration's key */
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    int is_str = lua_type(L, -1) == LUA_TSTRING;
    if (is_str && ft_settings_find(lua_tostring(L, -1), place))
      continue;
    int best_str = lua_type(L, -2) == LUA_TSTRING;
    int better = lua_isnil(L, -2) || (!is_str && best_str) ||
                 (is_str && best_str &&
                  strcmp(lua_tostring(L, -1), lua_tostring(L, -2)) < 0);
    if (better) {
      lua_pushvalue(L, -1);
      lua_replace(L, -3);
    }
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

static int check_fields(lua_State *L, int t, ft_place place, ft_config *cfg,
                        int spec, const char *label, const char *pattern,
                        char *err, size_t errlen);

/* A spec's objects (at index o): each key a pattern, each value a table of
 * object pattern fields. */
static int check_objects(lua_State *L, int o, int spec, const char *label,
                         char *err, size_t errlen) {
  lua_pushnil(L);
  while (lua_next(L, o)) {
    const char *p = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!p || !(p[0] == '/' && p[1] != '/') || !lua_istable(L, -1)) {
      lua_pop(L, 2);
      field_error(L, spec, 0, label, NULL, "objects",
                  "wants { [\"/pattern/*\"] = { rps = ..., ... } }", err,
                  errlen);
      return FT_EINVAL;
    }
    int rc = check_fields(L, lua_gettop(L), FT_PLACE_OBJECT, NULL, spec, label,
                          p, err, errlen);
    lua_pop(L, 1);
    if (rc != 0) {
      lua_pop(L, 1);
      return rc;
    }
  }
  return 0;
}

static int check_fields(lua_State *L, int t, ft_place place, ft_config *cfg,
                        int spec, const char *label, const char *pattern,
                        char *err, size_t errlen) {
  char why[512];
  int top = lua_gettop(L);
  if (first_unknown(L, t, place)) {
    if (lua_type(L, -1) != LUA_TSTRING) {
      const char *tn = lua_typename(L, lua_type(L, -1));
      char key[64];
      if (lua_type(L, -1) == LUA_TNUMBER)
        snprintf(key, sizeof(key), "[%s]", lua_tostring(L, -1));
      else
        snprintf(key, sizeof(key), "[%s]", tn);
      snprintf(why, sizeof(why), "unknown field (fields have names)");
      field_error(L, 0, 0, label, pattern, key, why, err, errlen);
    } else {
      const char *k = lua_tostring(L, -1);
      const char *near = ft_settings_nearest(k, place, 0);
      if (ft_settings_find(k, ~0u) && !ft_settings_find(k, place))
        snprintf(why, sizeof(why), "not accepted in %s", ft_place_name(place));
      else if (near)
        snprintf(why, sizeof(why), "unknown field (did you mean '%s'?)", near);
      else
        snprintf(why, sizeof(why), "unknown field");
      lua_getfield(L, t, k);
      field_error(L, spec, lua_gettop(L), label, pattern, k, why, err, errlen);
    }
    lua_settop(L, top);
    return FT_EINVAL;
  }
  for (size_t i = 0; i < ft_settings_count; i++) {
    const ft_setting *s = &ft_settings[i];
    if (!(s->places & place))
      continue;
    lua_getfield(L, t, s->name);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      continue;
    }
    ft_setting_value v;
    if (ft_settings_from_lua(L, -1, s, place, &v, why, sizeof(why)) != 0) {
      field_error(L, spec, lua_gettop(L), label, pattern, s->name, why, err,
                  errlen);
      lua_settop(L, top);
      return FT_EINVAL;
    }
    if (cfg)
      ft_setting_apply(s, &v, cfg);
    int rc = 0;
    if (s->id == FT_S_OBJECTS && place == FT_PLACE_SPEC)
      rc = check_objects(L, lua_gettop(L), spec, label, err, errlen);
    lua_pop(L, 1);
    if (rc != 0) {
      lua_settop(L, top);
      return rc;
    }
  }
  return 0;
}

int ft_settings_check_table(lua_State *L, int idx, ft_place place,
                            ft_config *cfg, const char *label, char *err,
                            size_t errlen) {
  int t = idx > 0 ? idx : lua_gettop(L) + idx + 1;
  if (!lua_istable(L, t)) {
    snprintf(err, errlen, "%s: wants a table, got %s", label,
             lua_typename(L, lua_type(L, t)));
    return FT_EINVAL;
  }
  return check_fields(L, t, place, cfg, place == FT_PLACE_SPEC ? t : 0, label,
                      NULL, err, errlen);
}

/* ---- an object's limits ------------------------------------------------- */

int ft_lua_limits_table(lua_State *L, int idx, const char *label,
                        ft_obj_settings *st, char *err, size_t errlen) {
  static const ft_setting_id ids[] = {FT_S_RPS, FT_S_WINDOW, FT_S_CONCURRENCY,
                                      FT_S_RETRIES};
  int t = idx > 0 ? idx : lua_gettop(L) + idx + 1;
  memset(st, 0, sizeof(*st));
  if (ft_settings_check_table(L, t, FT_PLACE_LIMITS, NULL, label, err,
                              errlen) != 0)
    return FT_EINVAL;
  ft_setting_value v[4];
  int given[4];
  for (int i = 0; i < 4; i++) {
    const ft_setting *s = &ft_settings[ids[i]];
    char why[256];
    lua_getfield(L, t, s->name);
    given[i] = !lua_isnil(L, -1);
    /* checked above: this only reads the value */
    if (given[i] && ft_settings_from_lua(L, -1, s, FT_PLACE_LIMITS, &v[i], why,
                                         sizeof(why)) != 0) {
      lua_pop(L, 1);
      snprintf(err, errlen, "%s: field '%s': %s", label, s->name, why);
      return FT_EINVAL;
    }
    lua_pop(L, 1);
  }
  if (given[1] && !given[0]) {
    /* a window is the rate's: alone it would change nothing */
    snprintf(err, errlen,
             "%s: field 'window': goes with rps (the window of a rate)", label);
    return FT_EINVAL;
  }
  if (given[0]) {
    st->has_rps = 1;
    st->rps = v[0].off ? 0 : v[0].num; /* the tree: 0 removes the rate */
    st->window_ms = given[1] ? v[1].num : 1000;
  }
  if (given[2]) {
    st->has_concurrency = 1;
    st->concurrency = v[2].off ? 0 : (int)v[2].num; /* 0: no cap */
  }
  if (given[3]) {
    st->has_retries = 1;
    st->retries = v[3].off ? -1 : (int)v[3].num; /* -1: inherit again */
  }
  return 0;
}

int ft_lua_limits_args(lua_State *L, int idx, const char *label,
                       ft_obj_settings *st, char *err, size_t errlen) {
  static const char *const names[] = {"rps", "window", "concurrency",
                                      "retries"};
  int top = lua_gettop(L);
  lua_createtable(L, 0, 4);
  for (int i = 0; i < 4; i++) {
    if (idx + i > top)
      break;
    lua_pushvalue(L, idx + i);
    lua_setfield(L, -2, names[i]); /* nil: not set */
  }
  int rc = ft_lua_limits_table(L, -1, label, st, err, errlen);
  lua_settop(L, top);
  return rc;
}

int ft_lua_check_settings(lua_State *L) {
  const char *pname = luaL_checkstring(L, 1);
  ft_place place = ft_place_from_name(pname);
  if (!place)
    return luaL_error(L, "check_settings: unknown place '%s'", pname);
  const char *label = luaL_optstring(L, 3, pname);
  char err[1024];
  if (ft_settings_check_table(L, 2, place, NULL, label, err, sizeof(err)) !=
      0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static const char *type_name(ft_setting_type t) {
  static const char *const names[] = {
      "int",   "number",  "size",     "bool",  "string", "file", "statuses",
      "names", "strings", "function", "table", "robots", "out",  "any"};
  return (size_t)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

int ft_lua_settings(lua_State *L) {
  lua_createtable(L, (int)ft_settings_count, 0);
  for (size_t i = 0; i < ft_settings_count; i++) {
    const ft_setting *s = &ft_settings[i];
    lua_createtable(L, 0, 12);
    lua_pushstring(L, s->name);
    lua_setfield(L, -2, "name");
    if (s->option) {
      lua_pushstring(L, s->option);
      lua_setfield(L, -2, "option");
    }
    if (s->short_opt) {
      lua_pushlstring(L, &s->short_opt, 1);
      lua_setfield(L, -2, "short");
    }
    lua_pushstring(L, type_name(s->type));
    lua_setfield(L, -2, "type");
    if (s->unit) {
      lua_pushstring(L, s->unit);
      lua_setfield(L, -2, "unit");
    }
    if (s->type == FT_SETTING_INT || s->type == FT_SETTING_NUMBER ||
        s->type == FT_SETTING_SIZE) {
      lua_pushnumber(L, s->min);
      lua_setfield(L, -2, "min");
      lua_pushnumber(L, s->max);
      lua_setfield(L, -2, "max");
      lua_pushboolean(L, s->min_exclusive);
      lua_setfield(L, -2, "min_exclusive");
    }
    if (s->dflt) {
      lua_pushstring(L, s->dflt);
      lua_setfield(L, -2, "default");
    }
    lua_createtable(L, 0, 4);
    for (size_t p = 0; p < NPLACES; p++) {
      if (s->places & place_names[p].place) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, place_names[p].name);
      }
    }
    lua_setfield(L, -2, "places");
    lua_rawseti(L, -2, (int)i + 1);
  }
  return 1;
}
