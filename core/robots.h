/* robots.h - robots.txt (RFC 9309): the parser, the matcher, and a per-origin cache of rules. */
#ifndef FT_ROBOTS_H
#define FT_ROBOTS_H

#include <stddef.h>

/* What the rules of one robots.txt say for one crawler (ft_robots), and
 * which origin ("http://host:port") has which rules (ft_robots_cache).
 * Pure C, no Lua: the crawl (lua/fetchtree/robots.lua) decides when to
 * fetch robots.txt and hands the outcome here; the engine asks the cache
 * before every request curl sends, redirects included (ft_robots_url_check).
 *
 * Semantics (RFC 9309):
 * - Groups start with one or more user-agent lines; a rule line ends the
 *   run of user-agent lines, so the next user-agent line starts a new
 *   group. Rules before any user-agent line belong to no group.
 * - The crawler's product token (ft_robots_product) is compared without
 *   case with the leading [A-Za-z_-] characters of each user-agent value.
 *   All groups naming it are merged; if none does, all "*" groups are;
 *   if there is no "*" group either, nothing is disallowed.
 * - Allow and Disallow patterns match the path and query of the URL from
 *   their start; "*" matches any run of characters and a "$" at the end of
 *   a pattern anchors it at the end. The matching rule with the longest
 *   pattern (in octets) wins; between an Allow and a Disallow of the same
 *   length, Allow. An empty pattern is no rule. "/robots.txt" is always
 *   allowed.
 * - Before comparison, paths and patterns are percent-normalised alike:
 *   %XX of an unreserved character (A-Z a-z 0-9 - . _ ~) is that character,
 *   other %xx escapes get upper-case hex, and bytes outside printable
 *   US-ASCII are percent-encoded; in the path a literal "*" or "$" is
 *   compared as %2A / %24 (so the pattern "/a-%2A" matches the path
 *   "/a-*"). Reserved characters that are not escaped are compared as
 *   they are (the RFC's example of encoding "https://" inside a query is
 *   not applied: both sides would need the same URL parser).
 * - Only the first FT_ROBOTS_MAX_BYTES of a file are parsed (the RFC's
 *   minimum of 500 KiB); a line cut by that limit is dropped.
 * - Crawl-delay (not in the RFC, but common) of the chosen groups: the
 *   first positive number. */

#define FT_ROBOTS_MAX_BYTES (500 * 1024)

typedef struct ft_robots ft_robots;

/* Parse the len bytes of a robots.txt at txt for the crawler whose product
 * token is agent (NULL or "" : only "*" groups apply). Returns 0 with *out
 * set (free it with ft_robots_free), or FT_ENOMEM. Any text parses: lines
 * that are not "key: value" with a known key are ignored. */
int ft_robots_parse(const char *txt, size_t len, const char *agent,
                    ft_robots **out);

/* Rules that allow everything (allow != 0) or disallow everything but
 * /robots.txt. Returns 0 with *out set, or FT_ENOMEM. */
int ft_robots_new_all(int allow, ft_robots **out);

/* The rules for a fetch of robots.txt that ended with HTTP status (0 when
 * no response came: unreachable): 2xx parses body; 3xx (a redirect that was
 * not followed) and 4xx allow everything (RFC 9309 2.3.1.3: "unavailable");
 * 5xx and 0 disallow everything ("unreachable"). Returns 0 or FT_ENOMEM. */
int ft_robots_from_status(long status, const char *body, size_t len,
                          const char *agent, ft_robots **out);

void ft_robots_free(ft_robots *r);

/* 1 if the rules allow path (the path and query of a URL, "" meaning "/";
 * len bytes, not necessarily NUL-terminated), 0 if they disallow it. */
int ft_robots_allowed(const ft_robots *r, const char *path, size_t len);

/* The chosen groups' Crawl-delay in seconds, or 0 when none. */
double ft_robots_crawl_delay(const ft_robots *r);

/* The product token of a User-Agent string: its leading [A-Za-z_-]
 * characters ("fetchtree/0.1" -> "fetchtree"), into buf (always
 * NUL-terminated when buflen > 0). Returns the token's length. */
size_t ft_robots_product(const char *user_agent, char *buf, size_t buflen);

/* Split an absolute http(s) URL: its origin "scheme://host[:port]" (scheme
 * and host lower-case, user info and the scheme's default port dropped)
 * into buf, and where its path starts (*path, *path_len: path and query, no
 * fragment; "" for none). Returns 0, FT_EINVAL (not http or https, or no
 * host) or FT_ERANGE (buf too small). */
int ft_robots_origin(const char *url, char *buf, size_t buflen,
                     const char **path, size_t *path_len);

/* ---- the cache: rules per origin ---------------------------------------- */

typedef struct ft_robots_cache ft_robots_cache;

enum {
  FT_ROBOTS_DISALLOW = 0,
  FT_ROBOTS_ALLOW = 1,
  FT_ROBOTS_UNKNOWN = 2 /* no rules for the URL's origin yet */
};

/* Returns a new, empty cache or NULL when out of memory. */
ft_robots_cache *ft_robots_cache_new(void);

/* Frees the cache and every rule set in it; NULL is a no-op. */
void ft_robots_cache_free(ft_robots_cache *c);

/* The rules of origin (as ft_robots_origin writes it) are now r, which the
 * cache owns from then on (also on failure, when it frees r); NULL forgets
 * the origin. Returns 0 or FT_ENOMEM. */
int ft_robots_cache_put(ft_robots_cache *c, const char *origin, ft_robots *r);

/* The rules of origin, or NULL. */
const ft_robots *ft_robots_cache_get(const ft_robots_cache *c,
                                     const char *origin);

/* FT_ROBOTS_ALLOW, _DISALLOW or _UNKNOWN for url under the cache's rules;
 * a URL that is not http(s) is FT_ROBOTS_UNKNOWN. */
int ft_robots_cache_check(const ft_robots_cache *c, const char *url);

/* The engine's URL check (ft_config.url_check) for robots.txt: req->udata
 * is the ft_robots_cache of a request that obeys robots.txt (NULL: one that
 * does not, always allowed). Returns 0 when url may be requested, non-zero
 * when not (disallowed, or its origin's rules are not known yet). */
struct ft_request;
int ft_robots_url_check(void *ud, const struct ft_request *req,
                        const char *url);

#endif
