/* lua_engine.h - the engine bound to Lua as the module fetchtree.engine. */
#ifndef FT_LUA_ENGINE_H
#define FT_LUA_ENGINE_H

#include <uv.h>

struct lua_State;

/* Let Lua engines in L run on loop, which the host runs (fetchtree run):
 * ft.get in a handler then yields instead of stepping a loop of its own.
 * Returns 0, or -1 when L already has a loop of its own. */
int ft_lua_engine_use_loop(struct lua_State *L, uv_loop_t *loop);

/* Push the outcome of req as two values: the response table (fields
 * status, url, body, _h (raw headers), attempts, elapsed_ms) and nil, or
 * nil and the error table (kind, message, cause, status, attempts, url). */
struct ft_request;
struct ft_response;
void ft_lua_push_outcome(struct lua_State *L, const struct ft_request *req,
                         const struct ft_response *res);

/* The request fields at stack slots idx .. idx+3 (url, method or nil, a
 * list of "Name: value" lines or nil, body or nil) into r, through
 * ft_request_set and ft_request_add_header. Returns 0, FT_ENOMEM, or
 * FT_EINVAL for no url or a header line ft_request_add_header refuses. */
int ft_lua_to_request(struct lua_State *L, int idx, struct ft_request *r);

/* Before the host closes that loop: close the Lua engines on it. */
void ft_lua_engine_release_loop(struct lua_State *L);

/* The loader of fetchtree.engine: new, on_done, step, fd. */
int ft_lua_open_engine(struct lua_State *L);

/* A handle that makes a running engine.step return early: take it (from
 * ordinary code) with ft_lua_engine_waker, then ft_lua_engine_wake(it) is
 * safe to call from a signal handler. */
void *ft_lua_engine_waker(struct lua_State *L);
void ft_lua_engine_wake(void *waker);

#endif
