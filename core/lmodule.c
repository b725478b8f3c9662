/* lmodule.c - the entry point of the Lua module build/fetchtree.so: `require "fetchtree"` from a plain luajit. */
#include <lua.h>

#include "script.h"

int luaopen_fetchtree(lua_State *L);

int luaopen_fetchtree(lua_State *L) { return ft_script_open_module(L); }
