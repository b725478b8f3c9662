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
  int hdr_count;          /* header fields of the last response */
  int64_t max_body;
  int too_large;          /* the write callback refused more data */
  int refused;            /* cfg->url_check refused a URL: FT_ERR_ROBOTS */
  int oom;
  const char *bad_reply;  /* why the header callback refused the response
                             (static text: kind protocol), else NULL */
  int hop_status;         /* status of the response whose headers arrive */
  int hop_located;        /* its Location header was looked at */
  /* A request with sensitive headers (ft_fetch_is_sensitive) is sent with
   * a copy of its header list, sens_list, in which each such line can be
   * cut after its colon ("Name:", which sends nothing) for the hops of a
   * redirect that leave the request's origin, and restored for hops that
   * come back. sens[i].at is the byte after the colon, sens[i].saved what
   * it held. */
  struct curl_slist *sens_list;
  struct ft_sens {
    char *at;
    char saved;
  } *sens;
  size_t nsens;
  int socket_errno;       /* why the last socket could not be opened, or 0 */
  int plain_ready;        /* set up for a plain GET: the next one is cheap */
  struct curl_slist *plain_headers; /* the engine's, for requests with none */
  int no_proxy_env;       /* no proxy variable is set: say so to curl */
  const struct ft_config *cfg; /* for its url_check, set by prepare */
  char errbuf[CURL_ERROR_SIZE];
  struct ft_xfer *next;   /* free list */
} ft_xfer;

/* Create the easy handle. Returns 0 or FT_ENOMEM. */
int ft_xfer_init(ft_xfer *x, void *owner);
void ft_xfer_cleanup(ft_xfer *x);

/* Set every option for one attempt of req (the handle is reset first, so
 * nothing leaks over from the previous request). The socket callbacks let
 * the engine keep a poll handle per socket across transfers: on_close gets
 * close_ud, on_open gets x and sets x->socket_errno when it cannot open a
 * socket (curl itself says only "couldn't connect"). Returns 0, FT_EINVAL
 * when curl refuses the URL itself (longer than it takes: kind url),
 * FT_ENOMEM, or FT_ECURL when another option is refused; the message is in
 * x->errbuf. */
int ft_xfer_prepare(ft_xfer *x, ft_request *req, const struct ft_config *cfg,
                    curl_closesocket_callback on_close, void *close_ud,
                    curl_opensocket_callback on_open);

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

/* The most header fields one response may have; more is kind protocol.
 * Servers send a few dozen; curl itself caps a response's header bytes
 * (300 KB) and one header line (100 KB), not their number. */
#define FT_MAX_HEADERS 1000

/* Map a finished transfer's curl result to an error kind. curl_msg is
 * curl's error text (CURLOPT_ERRORBUFFER; NULL or "" when none): some
 * results mean a broken response or a broken connection depending on it.
 * *transient is set to 1 when retrying may help (connect failure, reset,
 * timeout, DNS, a truncated body). */
ft_errkind ft_fetch_classify(CURLcode rc, long os_errno, long redirects,
                             int too_large, const char *curl_msg,
                             int *transient);

/* The outcome of the attempt that just ended on x with curl result rc:
 * its error kind (FT_ERR_NONE for any HTTP status), *transient as above,
 * and *msg, the error text ("" for none; static or in x->errbuf, valid
 * until x is prepared again). */
ft_errkind ft_xfer_outcome(ft_xfer *x, CURLcode rc, int *transient,
                           const char **msg);

/* Is the header named name[0..n) (any case) one that is not sent on when
 * a redirect leaves the request's origin? Authorization, Cookie and
 * Proxy-Authorization always are; extra is NULL or the comma-separated
 * names the user marked sensitive (ft_config.sensitive_headers). */
int ft_fetch_is_sensitive(const char *name, size_t n, const char *extra);

#endif
