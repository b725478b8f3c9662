/* lua_engine.h - the engine bound to Lua as the module fetchtree.engine. */
#ifndef FT_LUA_ENGINE_H
#define FT_LUA_ENGINE_H

#include <uv.h>

struct lua_State;

/* The metatable of the crawl's robots.txt cache (core.robots_new in
 * lua_robots.c): a userdata whose first field is the ft_robots_cache pointer,
 * which E:submit hands to the engine's url_check. */
#define FT_LUA_ROBOTS_MT "fetchtree.robots_cache"

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

/* Push only the error table of a failed req (res->error set), as
 * ft_lua_push_outcome's second value. */
void ft_lua_push_error(struct lua_State *L, const struct ft_request *req,
                       const struct ft_response *res);

/* The request fields at stack slots idx .. idx+3 (url, method or nil, a
 * list of "Name: value" lines or nil, body or nil) into r, through
 * ft_request_set and ft_request_add_header. What r cannot carry or send as
 * given (a NUL byte in the URL, method or a header, a header line
 * ft_header_check refuses) is not an error here: r is marked with
 * ft_request_refuse, and the engine ends it with that reason (kind url for
 * the URL, input for the rest), so that it still yields its one record.
 * Returns 0, FT_ENOMEM, or FT_EINVAL when the url is not a string. */
int ft_lua_to_request(struct lua_State *L, int idx, struct ft_request *r);

/* Before the host closes that loop: close the Lua engines on it. */
void ft_lua_engine_release_loop(struct lua_State *L);

/* The loader of fetchtree.engine: new, on_done, step, fd. */
int ft_lua_open_engine(struct lua_State *L);

/* A handle that interrupts waiting: take it (from ordinary code) with
 * ft_lua_engine_waker; ft_lua_engine_wake(it), safe to call from a signal
 * handler, makes a running engine.step return early, and the current or
 * next engine.step raise "interrupted". ft_lua_engine_unwake(it) drops
 * an interrupt that no step took. */
void *ft_lua_engine_waker(struct lua_State *L);
void ft_lua_engine_wake(void *waker);
void ft_lua_engine_unwake(void *waker);

/* Whether ft_lua_engine_wake was called and no step has taken it yet
 * (a crawl running the loop itself asks at every turn). */
int ft_lua_engine_woken(void *waker);

/* For a host that runs L's own loop itself for a while (ft.run's crawl):
 * returns the loop, marked as stepping (an engine.step inside raises
 * instead of nesting uv_run) and busy (an engine closed meanwhile is freed
 * afterwards, not under the loop); or NULL when the loop is a host's
 * already (inside fetchtree run) or already running (inside a step).
 * Raises when no loop can be made. ft_lua_engine_leave_loop(L) ends it. */
uv_loop_t *ft_lua_engine_enter_loop(struct lua_State *L);
void ft_lua_engine_leave_loop(struct lua_State *L);

#endif
