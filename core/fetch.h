/* fetch.h - one transfer: a pooled curl easy handle, its buffers, and how its outcome is classified. */
#ifndef FT_FETCH_H
#define FT_FETCH_H

#include <curl/curl.h>

#include "request.h"

struct ft_config;

typedef struct ft_xfer {
  CURL *easy;
  ft_request *req;
  void *owner;            /* the engine */
  char *body;             /* response body, decoded */
  size_t body_len, body_cap;
  char *hdr;              /* "name\0value\0" pairs of the last response */
  size_t hdr_len, hdr_cap;
  int hdr_count;
  int64_t max_body;
  int too_large;          /* the write callback refused more data */
  int oom;
  int socket_errno;       /* why the last socket could not be opened, or 0 */
  int plain_ready;        /* set up for a plain GET: the next one is cheap */
  struct curl_slist *plain_headers; /* the engine's, for requests with none */
  int no_proxy_env;       /* no proxy variable is set: say so to curl */
  char errbuf[CURL_ERROR_SIZE];
  struct ft_xfer *next;   /* free list */
} ft_xfer;

/* Create the easy handle. Returns 0 or FT_ENOMEM. */
int ft_xfer_init(ft_xfer *x, void *owner);
void ft_xfer_cleanup(ft_xfer *x);

/* Set every option for one attempt of req (the handle is reset first, so
 * nothing leaks over from the previous request). The socket-close callback
 * lets the engine keep a poll handle per socket across transfers. Returns 0,
 * or FT_ECURL when an option is refused (the message is in x->errbuf). */
int ft_xfer_prepare(ft_xfer *x, ft_request *req, const struct ft_config *cfg,
                    curl_closesocket_callback on_close, void *close_ud);

/* Forget the last response (buffers are kept for the next one, but a very
 * large body buffer is released so one big response does not pin memory). */
void ft_xfer_clear(ft_xfer *x);

/* The headers a request without headers of its own is sent with: with
 * compressed, an Accept-Encoding line naming what this libcurl decodes,
 * else an empty "Accept-Encoding:" (curl then sends none of its own but
 * still decodes a body that comes compressed); and the User-Agent line
 * (none when user_agent is NULL or empty). Given as custom headers they
 * spare curl formatting them per request. NULL when out of memory or curl
 * decodes nothing (ft_xfer_prepare then sets the options).
 * Free with curl_slist_free_all. */
struct curl_slist *ft_fetch_plain_headers(const char *user_agent,
                                          int compressed);

/* 1 when none of the environment variables through which libcurl would
 * use a proxy is set (http_proxy, https_proxy, all_proxy, in either case):
 * requests may then say "no proxy" and spare curl reading them again. */
int ft_fetch_no_proxy_env(void);

/* Value of a response header by lower-case name, or NULL. */
const char *ft_xfer_header(const ft_xfer *x, const char *lname);

/* Map a finished transfer's curl result to an error kind. *transient is set
 * to 1 when retrying may help (connect failure, reset, timeout, DNS). */
ft_errkind ft_fetch_classify(CURLcode rc, long os_errno, long redirects,
                             int too_large, int *transient);

/* The message for an attempt that failed because no socket could be
 * opened (x->socket_errno set), which curl reports only as "couldn't
 * connect": "cannot open a socket: Too many open files (EMFILE) ...".
 * Written to x->errbuf, which is returned. */
const char *ft_xfer_socket_message(ft_xfer *x);

/* Is url an absolute http or https URL curl can parse? Returns 0, or a
 * negative code with a message in err. */
int ft_url_check(const char *url, char *err, size_t errlen);

#endif
