/* lua_settings.h - settings (settings.h) given as Lua values: one field, or
 * a whole table for one place (a spec, an object pattern, engine.new's or
 * ft.run's options, a request table). */
#ifndef FT_LUA_SETTINGS_H
#define FT_LUA_SETTINGS_H

#include <stddef.h>

#include "settings.h"

struct lua_State;

/* Checks the Lua value at idx for setting s in place into *v. Returns 0, or
 * FT_EINVAL / FT_ERANGE with the reason in why, the same text
 * ft_setting_parse gives for the same value on the command line ("must be
 * a whole number from 1 to 100000, got 2.7"). Strings in *v point into
 * Lua strings: the value's own, or for a list of names the joined list,
 * kept in L's registry until the next call. Leaves the stack as it was. */
int ft_settings_from_lua(struct lua_State *L, int idx, const ft_setting *s,
                         ft_place place, ft_setting_value *v, char *why,
                         size_t whylen);

/* Checks every field of the table at idx for place, in the table's order
 * (an unknown field first: "field 'on_respnose': unknown field (did you
 * mean 'on_response'?)"), and with cfg not NULL puts the ft_config
 * settings into it (ft_setting_apply: strings point into Lua, as above).
 * A spec's objects are checked too, each pattern as an object pattern.
 * label names the table in messages: "engine.new", or a spec's file name,
 * when messages say "FILE:LINE: field 'x': reason" with the line of the
 * field in the spec's file where it can be found (a function's own line,
 * else the first line of the file that sets the field), else "label:
 * field 'x': reason". Returns 0, or FT_EINVAL with the message in err.
 * Leaves the stack as it was. */
int ft_settings_check_table(struct lua_State *L, int idx, ft_place place,
                            ft_config *cfg, const char *label, char *err,
                            size_t errlen);

/* An object's limits from the Lua table at idx, checked for the place
 * "limits" (FT_PLACE_LIMITS: fields rps, window, concurrency, retries,
 * nothing else) into st, for ft_object_set and ft_tree_configure. A field
 * left out leaves the object's value alone; false removes the limit (rps,
 * concurrency) or the object's own retries (it inherits again); rps
 * without window has the window 1000; a window without rps is refused.
 * Returns 0, or FT_EINVAL with "label: field 'x': reason" in err, the
 * reason the same as for the value anywhere else ("must be a whole number
 * from 1 to 100000, got 2.7"), an unknown field naming the nearest. */
struct ft_obj_settings;
int ft_lua_limits_table(struct lua_State *L, int idx, const char *label,
                        struct ft_obj_settings *st, char *err,
                        size_t errlen);

/* The same from the stack slots idx .. idx+3 (rps, window, concurrency,
 * retries; idx absolute; nil or absent: left out), for the engine's
 * positional set_limits and configure. Leaves the stack as it was. */
int ft_lua_limits_args(struct lua_State *L, int idx, const char *label,
                       struct ft_obj_settings *st, char *err, size_t errlen);

/* check_settings(place, t [, label]) -> true | nil, message: the Lua face
 * of ft_settings_check_table; place is "fetch", "run", "spec", "object",
 * "request", "engine", "ft.run" or "limits". Raises for an unknown place. */
int ft_lua_check_settings(struct lua_State *L);

/* settings() -> the table as a list of { name =, option =, short =, type =,
 * unit =, min =, max =, min_exclusive =, default =, places = { spec =
 * true, ... } }, for tests and tools. */
int ft_lua_settings(struct lua_State *L);

/* The place named name ("spec", "engine", "ft.run", ...), or 0. */
ft_place ft_place_from_name(const char *name);

#endif
