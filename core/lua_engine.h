/* lua_engine.h - the engine bound to Lua as the module fetchtree.engine. */
#ifndef FT_LUA_ENGINE_H
#define FT_LUA_ENGINE_H

struct lua_State;

/* The loader of fetchtree.engine: new, on_done, step, fd. */
int ft_lua_open_engine(struct lua_State *L);

#endif
