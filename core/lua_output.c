/* lua_output.c - the records Lua writes to a run's output: fetchtree.core's write_record, write_default and encode, and how those writes went.
 *
 * A crawl's handlers write their records from Lua, into the FILE the crawl
 * driver (crawl.c) hands over with ft_script_set_output; the driver asks
 * ft_script_output_state before every checkpoint, so that a record that
 * failed to reach the output is never committed as written. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>

#include "lua_record.h"
#include "record.h"
#include "script_internal.h"

void ft_script_set_output(ft_script *s, FILE *out, int record_flags) {
  s->out = out;
  s->record_flags = record_flags;
}

int ft_script_output_state(const ft_script *s, uint64_t *records) {
  if (records)
    *records = s->records;
  return s->write_failed;
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
  ft_script *s = ft_script_self(L);
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
  ft_script *s = ft_script_self(L);
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
  ft_script *s = ft_script_self(L);
  encode_arg(L, s);
  lua_pushlstring(L, s->json.data ? s->json.data : "", s->json.len);
  return 1;
}

void ft_lua_output_register(lua_State *L, ft_script *s) {
  static const luaL_Reg fns[] = {{"write_record", core_write_record},
                                 {"write_default", core_write_default},
                                 {"encode", core_encode},
                                 {NULL, NULL}};
  ft_script_register(L, s, fns);
}
