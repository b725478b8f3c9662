/* lua_engine.h - the engine bound to Lua as the module fetchtree.engine. */
#ifndef FT_LUA_ENGINE_H
#define FT_LUA_ENGINE_H

struct lua_State;

/* The loader of fetchtree.engine: new, on_done, step, fd. */
int ft_lua_open_engine(struct lua_State *L);

/* A handle that makes a running engine.step return early: take it (from
 * ordinary code) with ft_lua_engine_waker, then ft_lua_engine_wake(it) is
 * safe to call from a signal handler. */
void *ft_lua_engine_waker(struct lua_State *L);
void ft_lua_engine_wake(void *waker);

#endif
