/* script.h - the boundary between C and Lua: the only part of fetchtree that touches lua_State. */
#ifndef FT_SCRIPT_H
#define FT_SCRIPT_H

#include <stddef.h>

#include "request.h"

typedef struct ft_script ft_script;

/* A Lua state with the standard libraries and fetchtree's own modules
 * (compiled into the binary) ready for require. Returns 0, or a negative
 * code with a message in err. */
int ft_script_new(ft_script **out, char *err, size_t errlen);
void ft_script_free(ft_script *s);

/* Fill r's url, method, headers, body and meta from a JSON request line
 * `{"url":..., "method":..., "headers":{...}, "body":..., "meta":...}`.
 * Returns 0, or FT_EINVAL with the reason in err (r is left unchanged). */
int ft_script_parse_request(ft_script *s, const char *line, size_t len,
                            ft_request *r, char *err, size_t errlen);

#endif
