/* request.h - what the engine fetches (ft_request) and what it hands back (ft_response). */
#ifndef FT_REQUEST_H
#define FT_REQUEST_H

/* ft_request, ft_response, ft_errkind and their functions (ft_request_new,
 * ft_request_free, ft_request_set, ft_request_add_header, ft_errkind_name)
 * are public: they are defined in fetchtree.h. */
#include "fetchtree.h"

#include <stddef.h>

/* Whether the n bytes at s are an RFC 9110 token (n > 0; letters, digits
 * and "!#$%&'*+-.^_`|~"): a header name or a method. Returns 1 or 0. */
int ft_token_valid(const char *s, size_t n);

/* Whether the header line (len bytes at line) may be sent as given: a name
 * that is an RFC 9110 token, then ':' and a value without control bytes
 * but tab (CR, LF and NUL would let it add a header or a request of its
 * own), or "Name;" (libcurl's way to send a header empty); and not one of
 * the headers that frame the message or manage the connection, which
 * libcurl writes itself and a request must not override:
 * Content-Length, Transfer-Encoding, TE, Connection, Keep-Alive,
 * Proxy-Connection, Upgrade, and Expect with a value ("Expect:", which
 * turns off libcurl's 100-continue, is allowed). Host is judged against
 * the URL by ft_request_check, which has it. Returns 0, or FT_EINVAL with
 * the reason in err ("header refused: Content-Length: ..."). */
int ft_header_check(const char *line, size_t len, char *err, size_t errlen);

/* Whether r may be fetched as it is: what ft_lua_to_request found it
 * could not carry (ft_request_refuse), then the method (a token, not
 * CONNECT, and not HEAD with a body), each header line (ft_header_check),
 * and a Host header, which must name the URL's host and port. Returns
 * FT_ERR_NONE, or the kind to end r with (FT_ERR_INPUT, or FT_ERR_URL for
 * a URL it could not carry) and the reason in err. The engine calls it
 * before r's first attempt. */
ft_errkind ft_request_check(const ft_request *r, char *err, size_t errlen);

/* Marks r as not to be fetched, for kind and a copy of why (the first call
 * wins): for input a C string cannot carry, such as a NUL byte inside a
 * URL from Lua. The request still goes to the engine, which ends it with
 * that error, so it yields its one record. Returns 0 or FT_ENOMEM. */
int ft_request_refuse(ft_request *r, ft_errkind kind, const char *why);

/* Sets r's URL to a copy of the len bytes at url. A NUL byte inside, which
 * a C string would end at, marks r refused (kind url, "invalid URL: it
 * contains a NUL byte"), and the copy shows each NUL as "%00" for the
 * record. Returns 0, or FT_ENOMEM with r's URL unchanged. */
int ft_request_set_url(ft_request *r, const char *url, size_t len);

#endif
