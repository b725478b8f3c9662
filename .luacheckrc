-- .luacheckrc - luacheck's settings for `make lint`: fetchtree's Lua runs
-- on LuaJIT; the specs run under busted.
std = "luajit"
color = false
files["tests/spec"] = { std = "+busted" }
