/* url.h - URL resolution and normalisation for crawling, on libcurl's URL
 * API (pure C, no parser of our own). */
#ifndef FT_URL_H
#define FT_URL_H

#include <stddef.h>

/* Resolves ref against base and normalises the result. base may be NULL,
 * and then ref must be absolute. Before resolution ref is cleaned as a
 * browser cleans an href: leading and trailing spaces and control bytes
 * are trimmed, tabs and newlines removed, the fragment ("#..." onwards)
 * dropped and each space written as "%20". The result has a lower-case
 * scheme and host, no dot segments, no default port (80 for http, 443 for
 * https), no fragment, and "/" for an empty path; other non-ASCII or
 * unsafe bytes are percent-encoded by curl (lower-case hex).
 * Only http and https results are accepted, and only hosts fetchtree can
 * judge as curl will connect to them: a host that keeps a '%' after
 * curl's decoding, or an IPv6 zone ID, is refused. The result is a fixed
 * point (resolving it again gives it back: "http://5%34" is
 * "http://0.0.0.54/", as curl reads "54"), and the host in it
 * (ft_url_host_span) is the host libcurl connects to for that string.
 * Returns 0 with *out a malloc'd string (free with free()), FT_ENOMEM, or
 * FT_EINVAL with a message in err (at most errlen bytes, NUL-terminated;
 * err may be NULL): "scheme not allowed: mailto", "not an absolute URL: x",
 * "invalid base URL: <curl's reason>", "invalid URL: <curl's reason>",
 * "invalid URL: a '%' in the host", "invalid URL: an IPv6 zone ID in the
 * host".
 * On error *out is left untouched. */
int ft_url_resolve(const char *base, const char *ref, char **out, char *err,
                   size_t errlen);

/* The lower-case host name of an absolute URL, without port (an IPv6
 * address keeps its brackets: "[::1]"). Any scheme curl can parse with a
 * host is accepted. Returns 0 with *out malloc'd (free with free()),
 * FT_ENOMEM, or FT_EINVAL when url is NULL, unparseable or has no host. */
int ft_url_host(const char *url, char **out);

/* 1 when u (n bytes) is an absolute http or https URL that ft_url_resolve
 * would return unchanged, judged without curl for a narrow, common form
 * (see url.c); 0 means "resolve it to know", not "invalid". On 1 the host
 * is at u + *host_off, *host_len bytes (either pointer may be NULL). */
int ft_url_is_normal(const char *u, size_t n, size_t *host_off,
                     size_t *host_len);

/* Where the host is in norm, a URL ft_url_resolve returned: norm + *off,
 * *len bytes (an IPv6 address with its brackets, no user info or port). */
void ft_url_host_span(const char *norm, size_t *off, size_t *len);

/* Is url an absolute http or https URL curl can parse? Returns 0, or a
 * negative code with a message in err. The plain form ft_url_is_normal
 * knows is accepted without curl. fetchtree fetch checks every input URL
 * here, so that all URL input errors are alike: kind url, no attempt. */
int ft_url_check(const char *url, char *err, size_t errlen);

#endif
