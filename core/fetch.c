/* fetch.c - one transfer: a pooled curl easy handle, its buffers, and how its outcome is classified.
 *
 * Handles are reused across requests (ft_xfer_prepare resets them), so the
 * connection cache, DNS cache and TLS session cache of the multi handle
 * carry over. Security defaults live here and nowhere else: http and https
 * only, also after redirects; TLS verification on (curl's default, never
 * turned off); credentials stay with the host they were given for (curl
 * drops Authorization and Cookie headers and URL credentials when a
 * redirect leaves the original host, as long as UNRESTRICTED_AUTH is 0;
 * for Proxy-Authorization and the headers the user marks sensitive, the
 * header callback does it, see sens_list in fetch.h). */
#include "fetch.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "engine.h"
#include "error.h"

#define FT_BODY_KEEP (1u << 20) /* body buffer kept between requests */
#define FT_STR_(x) #x
#define FT_STR(x) FT_STR_(x) /* a macro's value as a string literal */

/* Grow *buf so it holds need bytes, doubling but to no more than max
 * when need fits in it; 0 or -1 when out of memory. */
static int buf_reserve(char **buf, size_t *cap, size_t need, size_t max) {
  if (need <= *cap)
    return 0;
  size_t n = *cap ? *cap : 4096;
  while (n < need)
    n *= 2;
  if (n > max && need <= max)
    n = max;
  char *p = realloc(*buf, n);
  if (!p)
    return -1;
  *buf = p;
  *cap = n;
  return 0;
}

/* Let go of the body so far; a big buffer goes back to the system. */
static void body_drop(ft_xfer *x) {
  if (x->body_cap > FT_BODY_KEEP) {
    free(x->body);
    x->body = NULL;
    x->body_cap = 0;
  }
  x->body_len = 0;
}

/* Body bytes arrive decoded (curl inflates gzip, brotli, zstd on the way),
 * so max_body bounds the decoded size as it grows: the first byte over it
 * ends the transfer, and the buffer never grows past max_body + 1. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  ft_xfer *x = ud;
  size_t n = size * nmemb;
  if (x->max_body >= 0 && (uint64_t)x->body_len + n > (uint64_t)x->max_body) {
    x->too_large = 1;
    body_drop(x); /* a too_large response has no body */
    return 0;     /* curl ends the transfer with CURLE_WRITE_ERROR */
  }
  size_t max = x->max_body >= 0 ? (size_t)x->max_body + 1 : SIZE_MAX;
  if (buf_reserve(&x->body, &x->body_cap, x->body_len + n + 1, max) != 0) {
    x->oom = 1;
    return 0;
  }
  memcpy(x->body + x->body_len, data, n);
  x->body_len += n;
  return n;
}

/* p[0..n) = s[0..n) with A-Z lowercased (ASCII only, whatever the
 * locale), eight bytes at a time while s has them (avail: bytes readable
 * at s); a word may write up to 7 bytes past p + n. */
static void lower_ascii(char *p, const char *s, size_t n, size_t avail) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  size_t i = 0;
  for (; i < n && i + 8 <= avail; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    uint64_t low7 = w & ~highs;
    /* the high bit of each byte: above 'Z', and from 'A' up (low 7 bits) */
    uint64_t above_z = low7 + (0x7f - 'Z') * ones;
    uint64_t from_a = low7 + (0x80 - 'A') * ones;
    uint64_t upper = (from_a & ~above_z) & ~w & highs;
    w |= upper >> 2; /* 0x80 >> 2 is the case bit 0x20 */
    memcpy(p + i, &w, 8);
  }
  for (; i < n; i++) {
    char c = s[i];
    p[i] = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
  }
}

/* scheme, host and port of an absolute URL (CURLU_DEFAULT_PORT) */
typedef struct {
  char *scheme, *host, *port;
} url_origin;

static void origin_free(url_origin *o) {
  curl_free(o->scheme);
  curl_free(o->host);
  curl_free(o->port);
}

/* The origin of ref (absolute, or relative to base when base is not
 * NULL), as curl resolves a Location against the URL it was fetching.
 * Returns 0, or -1 when it does not parse (o is then empty). */
static int origin_of(const char *base, const char *ref, url_origin *o) {
  int rc = -1;
  memset(o, 0, sizeof(*o));
  CURLU *u = curl_url();
  if (!u)
    return -1;
  if (base && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
    goto cleanup;
  if (curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &o->scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &o->host, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PORT, &o->port, CURLU_DEFAULT_PORT) !=
          CURLUE_OK)
    goto cleanup;
  rc = 0;
cleanup:
  curl_url_cleanup(u);
  if (rc != 0)
    origin_free(o);
  return rc;
}

/* A 3xx answer's Location (value[0..n)) decides what the next hop is sent
 * with: the request's sensitive headers go only to its own origin (scheme,
 * host and port, the test curl applies to Authorization and Cookie), so
 * they are cut when the target is elsewhere or does not parse, and put
 * back when a later hop returns. */
static void on_location(ft_xfer *x, const char *value, size_t n) {
  char *loc = strndup(value, n);
  char *cur = NULL;
  url_origin from, to;
  int leaves = 1;
  curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &cur);
  if (loc && cur && origin_of(cur, loc, &to) == 0) {
    if (origin_of(NULL, x->req->url, &from) == 0) {
      leaves = strcasecmp(from.scheme, to.scheme) != 0 ||
               strcasecmp(from.host, to.host) != 0 ||
               strcmp(from.port, to.port) != 0;
      origin_free(&from);
    }
    origin_free(&to);
  }
  free(loc);
  for (size_t i = 0; i < x->nsens; i++)
    *x->sens[i].at = leaves ? '\0' : x->sens[i].saved;
}

/* "HTTP/1.1 302 Found": the status, or 0 */
static int status_of(const char *line, size_t n) {
  size_t i = 5;
  while (i < n && line[i] != ' ')
    i++;
  while (i < n && line[i] == ' ')
    i++;
  int st = 0;
  for (int k = 0; k < 3 && i < n && line[i] >= '0' && line[i] <= '9'; k++)
    st = st * 10 + (line[i++] - '0');
  return st;
}

/* Headers arrive a line at a time, for every response on the redirect
 * chain: a status line starts the set afresh, so what stays is the last.
 * Each line costs O(its length): the pairs are appended, never searched.
 * A response with more than FT_MAX_HEADERS fields is refused (bad_reply):
 * curl caps header bytes, not their number. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
  ft_xfer *x = ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    x->hdr_len = 0;
    x->hdr_count = 0;
    x->hop_status = status_of(data, n);
    x->hop_located = 0;
    return n;
  }
  const char *colon = memchr(data, ':', n);
  if (!colon || colon == data || data[0] == ' ' || data[0] == '\t')
    return n; /* blank line, continuation or junk */
  if (x->hdr_count >= FT_MAX_HEADERS) {
    x->bad_reply = "more than " FT_STR(FT_MAX_HEADERS) " header fields in "
                   "one response";
    return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
  }
  size_t nlen = (size_t)(colon - data);
  const char *v = colon + 1;
  const char *end = data + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                     end[-1] == '\t'))
    end--;
  size_t vlen = (size_t)(end - v);
  if (x->nsens > 0 && !x->hop_located && x->hop_status >= 300 &&
      x->hop_status < 400 && nlen == 8 &&
      strncasecmp(data, "location", 8) == 0) {
    x->hop_located = 1; /* curl follows the first */
    on_location(x, v, vlen);
  }
  /* 7 bytes of room more: the name is lowercased a word at a time */
  if (buf_reserve(&x->hdr, &x->hdr_cap, x->hdr_len + nlen + vlen + 2 + 7,
                  SIZE_MAX) != 0) {
    x->oom = 1;
    return 0;
  }
  char *p = x->hdr + x->hdr_len;
  lower_ascii(p, data, nlen, n);
  p[nlen] = '\0';
  memcpy(p + nlen + 1, v, vlen);
  p[nlen + 1 + vlen] = '\0';
  x->hdr_len += nlen + vlen + 2;
  x->hdr_count++;
  return n;
}

/* Before curl sends a request (the first, or a redirect's): ask the
 * config's url_check about the URL curl is about to request; refusing
 * aborts the transfer (CURLE_ABORTED_BY_CALLBACK) and sets x->refused,
 * which the engine reports as FT_ERR_ROBOTS. */
static int on_prereq(void *ud, char *ip, char *local_ip, int port,
                     int local_port) {
  ft_xfer *x = ud;
  char *url = NULL;
  (void)ip, (void)local_ip, (void)port, (void)local_port;
  if (!x->cfg || !x->cfg->url_check)
    return CURL_PREREQFUNC_OK;
  if (curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK ||
      !url || x->cfg->url_check(x->cfg->url_check_ud, x->req, url) != 0) {
    x->refused = 1;
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}

int ft_xfer_init(ft_xfer *x, void *owner) {
  memset(x, 0, sizeof(*x));
  x->owner = owner;
  x->easy = curl_easy_init();
  return x->easy ? 0 : FT_ENOMEM;
}

/* Free the copy of a request's header list; only once curl no longer
 * reads it (the handle is reset or cleaned up, or out of the multi). */
static void sens_free(ft_xfer *x) {
  curl_slist_free_all(x->sens_list);
  free(x->sens);
  x->sens_list = NULL;
  x->sens = NULL;
  x->nsens = 0;
}

void ft_xfer_cleanup(ft_xfer *x) {
  if (x->easy)
    curl_easy_cleanup(x->easy);
  sens_free(x);
  free(x->body);
  free(x->hdr);
  memset(x, 0, sizeof(*x));
}

void ft_xfer_clear(ft_xfer *x) {
  body_drop(x);
  x->hdr_len = 0;
  x->hdr_count = 0;
  x->too_large = 0;
  x->oom = 0;
  x->refused = 0;
  x->bad_reply = NULL;
  x->hop_status = 0;
  x->hop_located = 0;
  x->socket_errno = 0;
  x->errbuf[0] = '\0';
  x->req = NULL;
}

const char *ft_xfer_header(const ft_xfer *x, const char *lname) {
  const char *p = x->hdr;
  const char *end = x->hdr + x->hdr_len;
  while (p && p < end) {
    const char *v = p + strlen(p) + 1;
    if (strcmp(p, lname) == 0)
      return v;
    p = v + strlen(v) + 1;
  }
  return NULL;
}

#define SETOPT(opt, val)                                                      \
  do {                                                                        \
    if (curl_easy_setopt(c, opt, val) != CURLE_OK) {                          \
      snprintf(x->errbuf, sizeof(x->errbuf), "curl refused option %s", #opt); \
      return FT_ECURL;                                                        \
    }                                                                         \
  } while (0)

struct curl_slist *ft_fetch_plain_headers(const char *user_agent,
                                          int compressed) {
  /* Every byte of these costs curl ~100 instructions per request (its
   * printf writes a header a byte at a time), so the list is what servers
   * choose from in practice: no "deflate", which none prefers to gzip. An
   * empty line costs no printing. */
  struct curl_slist *list = NULL;
  char line[128] = "Accept-Encoding:";
  curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  if (!(v->features & CURL_VERSION_LIBZ))
    return NULL; /* let curl say what it can decode, and send the agent */
  if (compressed) {
    strcat(line, " gzip");
    if (v->features & CURL_VERSION_BROTLI)
      strcat(line, ", br");
#ifdef CURL_VERSION_ZSTD
    if (v->features & CURL_VERSION_ZSTD)
      strcat(line, ", zstd");
#endif
  }
  if (!(list = curl_slist_append(NULL, line)))
    return NULL;
  if (user_agent && user_agent[0] && !strpbrk(user_agent, "\r\n")) {
    size_t n = strlen("User-Agent: ") + strlen(user_agent) + 1;
    char *ua = malloc(n);
    struct curl_slist *l2 = NULL;
    if (ua) {
      snprintf(ua, n, "User-Agent: %s", user_agent);
      l2 = curl_slist_append(list, ua);
      free(ua);
    }
    if (!l2) {
      curl_slist_free_all(list);
      return NULL;
    }
    list = l2;
  }
  return list;
}

int ft_fetch_no_proxy_env(void) {
  static const char *const vars[] = {"http_proxy",  "HTTP_PROXY",
                                     "https_proxy", "HTTPS_PROXY",
                                     "all_proxy",   "ALL_PROXY"};
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
    const char *v = getenv(vars[i]);
    if (v && v[0])
      return 0;
  }
  return 1;
}

/* Is there a header line "name:..." (any case) in l? */
static int has_header(const struct curl_slist *l, const char *name) {
  size_t n = strlen(name);
  for (; l; l = l->next)
    if (strncasecmp(l->data, name, n) == 0 && l->data[n] == ':')
      return 1;
  return 0;
}

int ft_fetch_is_sensitive(const char *name, size_t n, const char *extra) {
  static const char *const always[] = {"authorization", "cookie",
                                       "proxy-authorization"};
  for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
    if (strlen(always[i]) == n && strncasecmp(name, always[i], n) == 0)
      return 1;
  for (const char *p = extra; p && *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    size_t k = strcspn(p, ", ");
    if (k == n && k > 0 && strncasecmp(p, name, n) == 0)
      return 1;
    p += k;
  }
  return 0;
}

/* The colon of the header line "Name: value" when Name is sensitive
 * (extra as in ft_fetch_is_sensitive), else NULL. */
static char *sensitive_colon(char *line, const char *extra) {
  char *colon = strchr(line, ':');
  if (colon && ft_fetch_is_sensitive(line, (size_t)(colon - line), extra))
    return colon;
  return NULL;
}

/* When req has sensitive headers and redirects are followed, give curl a
 * copy of its list whose sensitive lines on_location can cut (see
 * sens_list in fetch.h); else use req->headers as it is. Returns the list
 * to send, or NULL with x->oom set when out of memory. */
static struct curl_slist *sens_prepare(ft_xfer *x, const ft_request *req,
                                       const ft_config *cfg) {
  size_t count = 0;
  if (cfg->max_redirects <= 0)
    return req->headers;
  for (const struct curl_slist *l = req->headers; l; l = l->next)
    if (sensitive_colon(l->data, cfg->sensitive_headers))
      count++;
  if (count == 0)
    return req->headers;
  x->sens = calloc(count, sizeof(*x->sens));
  if (!x->sens)
    goto oom;
  for (const struct curl_slist *l = req->headers; l; l = l->next) {
    struct curl_slist *t = curl_slist_append(x->sens_list, l->data);
    if (!t)
      goto oom;
    x->sens_list = t;
  }
  for (struct curl_slist *l = x->sens_list; l; l = l->next) {
    char *colon = sensitive_colon(l->data, cfg->sensitive_headers);
    if (colon) {
      x->sens[x->nsens].at = colon + 1;
      x->sens[x->nsens].saved = colon[1];
      x->nsens++;
    }
  }
  return x->sens_list;
oom:
  sens_free(x);
  x->oom = 1;
  return NULL;
}

/* The message for an attempt that failed because no socket could be
 * opened (x->socket_errno set), which curl reports only as "couldn't
 * connect": "cannot open a socket: Too many open files (EMFILE) ...".
 * Written to x->errbuf, which is returned. */
static const char *socket_message(ft_xfer *x) {
  int e = x->socket_errno;
  snprintf(x->errbuf, sizeof(x->errbuf), "cannot open a socket: %s%s",
           strerror(e),
           e == EMFILE ? " (EMFILE): lower --concurrency or raise ulimit -n"
           : e == ENFILE ? " (ENFILE)"
                         : "");
  return x->errbuf;
}

/* CURLOPT_URL; curl refuses a URL over CURL_MAX_INPUT_LENGTH (8 MB).
 * Returns 0, or -1 with the message in x->errbuf. */
static int set_url(ft_xfer *x, const char *url) {
  if (curl_easy_setopt(x->easy, CURLOPT_URL, url) == CURLE_OK)
    return 0;
  snprintf(x->errbuf, sizeof(x->errbuf),
           "URL refused by libcurl (%zu bytes; it takes up to 8 MB)",
           strlen(url));
  return -1;
}

/* A plain GET: no body, no method but GET, no extra headers. */
static int is_plain(const ft_request *req) {
  return !req->body && !req->headers &&
         (!req->method || strcmp(req->method, "GET") == 0);
}

/* Every option that says who x reports to: its buffers and callbacks,
 * the engine's socket callbacks (see ft_xfer_prepare) and, when the config
 * has one, the url_check hook. 0, or FT_ECURL. */
static int set_callbacks(ft_xfer *x, const ft_config *cfg,
                         curl_closesocket_callback on_close, void *close_ud,
                         curl_opensocket_callback on_open) {
  CURL *c = x->easy;
  SETOPT(CURLOPT_PRIVATE, (void *)x);
  SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
  SETOPT(CURLOPT_NOSIGNAL, 1L);
  SETOPT(CURLOPT_WRITEFUNCTION, on_body);
  SETOPT(CURLOPT_WRITEDATA, (void *)x);
  SETOPT(CURLOPT_HEADERFUNCTION, on_header);
  SETOPT(CURLOPT_HEADERDATA, (void *)x);
  SETOPT(CURLOPT_CLOSESOCKETFUNCTION, on_close);
  SETOPT(CURLOPT_CLOSESOCKETDATA, close_ud);
  SETOPT(CURLOPT_OPENSOCKETFUNCTION, on_open);
  SETOPT(CURLOPT_OPENSOCKETDATA, (void *)x);
  if (cfg->url_check) {
    SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(CURLOPT_PREREQDATA, (void *)x);
  }
  return 0;
}

/* The header lines req is sent with: the engine's ready-made ones for a
 * request with none, else req's own (with their sensitive lines cut on
 * hops that leave its origin, see sens_prepare) and the user agent.
 * 0, FT_ENOMEM or FT_ECURL. */
static int set_headers(ft_xfer *x, ft_request *req, const ft_config *cfg) {
  CURL *c = x->easy;
  /* The engine's ready-made lines carry Accept-Encoding and User-Agent:
   * given as options, curl formats both anew with its printf for every
   * request (8,000 instructions of a 100,000-instruction fetch). */
  if (req->headers || !x->plain_headers) {
    /* not asked to, curl must not ask for compression either: an empty
     * Accept-Encoding line removes its own (unless the request has one) */
    if (req->headers && !cfg->compressed && x->plain_headers &&
        !has_header(req->headers, "Accept-Encoding") &&
        ft_request_add_header(req, "Accept-Encoding:") != 0) {
      snprintf(x->errbuf, sizeof(x->errbuf), "out of memory");
      return FT_ENOMEM;
    }
    if (req->headers) {
      struct curl_slist *send = sens_prepare(x, req, cfg);
      if (!send) {
        snprintf(x->errbuf, sizeof(x->errbuf), "out of memory");
        return FT_ENOMEM;
      }
      SETOPT(CURLOPT_HTTPHEADER, send);
    }
    if (cfg->user_agent)
      SETOPT(CURLOPT_USERAGENT, cfg->user_agent);
  } else {
    SETOPT(CURLOPT_HTTPHEADER, x->plain_headers);
  }
  return 0;
}

/* The method and body of req (GET when it has neither). 0 or FT_ECURL. */
static int set_method(ft_xfer *x, const ft_request *req) {
  CURL *c = x->easy;
  const char *m = req->method;
  if (req->body) {
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    SETOPT(CURLOPT_POSTFIELDS, req->body);
    if (m && strcmp(m, "POST") != 0)
      SETOPT(CURLOPT_CUSTOMREQUEST, m);
  } else if (m && strcmp(m, "HEAD") == 0) {
    SETOPT(CURLOPT_NOBODY, 1L);
  } else if (m && strcmp(m, "GET") != 0) {
    SETOPT(CURLOPT_CUSTOMREQUEST, m);
  }
  return 0;
}

int ft_xfer_prepare(ft_xfer *x, ft_request *req, const ft_config *cfg,
                    curl_closesocket_callback on_close, void *close_ud,
                    curl_opensocket_callback on_open) {
  CURL *c = x->easy;
  ft_xfer_clear(x);
  x->req = req;
  x->max_body = cfg->max_body;
  x->cfg = cfg;

  /* The common case, a plain GET on a handle whose last request was one
   * too, needs only what differs per request: a reset and thirty options
   * per request cost more than a tenth of the work of a small fetch. */
  if (x->plain_ready && is_plain(req)) {
    if (set_url(x, req->url) != 0)
      return FT_EINVAL;
    SETOPT(CURLOPT_PIPEWAIT, strncmp(req->url, "https:", 6) == 0 ? 1L : 0L);
    SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms
                                                   : cfg->timeout_ms);
    return 0;
  }
  x->plain_ready = 0;
  curl_easy_reset(c);
  sens_free(x); /* curl no longer holds the last request's copy */

  if (set_url(x, req->url) != 0)
    return FT_EINVAL;
  int rc = set_callbacks(x, cfg, on_close, close_ud, on_open);
  if (rc != 0)
    return rc;

  SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
  SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
  SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
  SETOPT(CURLOPT_UNRESTRICTED_AUTH, 0L);
  SETOPT(CURLOPT_FOLLOWLOCATION, cfg->max_redirects > 0 ? 1L : 0L);
  SETOPT(CURLOPT_MAXREDIRS, cfg->max_redirects);
  SETOPT(CURLOPT_ACCEPT_ENCODING, ""); /* every encoding curl can decode */
  SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  /* Over https, wait for a connection being set up to learn whether it
   * multiplexes (HTTP/2 via ALPN) rather than opening another. Not over
   * plain http: there it would queue every request behind a slow one. */
  if (strncmp(req->url, "https:", 6) == 0)
    SETOPT(CURLOPT_PIPEWAIT, 1L);
  SETOPT(CURLOPT_TCP_NODELAY, 1L);
  SETOPT(CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
  SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms
                                                 : cfg->timeout_ms);
  /* max_body is enforced on the decoded bytes in on_body; curl's
   * MAXFILESIZE would judge the encoded Content-Length, and cost more per
   * request than the check. */
  if (cfg->ca_file)
    SETOPT(CURLOPT_CAINFO, cfg->ca_file);
  /* With no proxy variable set, an empty proxy says "none": curl otherwise
   * looks for them with getenv for every request (1,700 instructions). */
  if (x->no_proxy_env)
    SETOPT(CURLOPT_PROXY, "");
  rc = set_headers(x, req, cfg);
  if (rc == 0)
    rc = set_method(x, req);
  if (rc != 0)
    return rc;
  x->plain_ready = is_plain(req);
  return 0;
}

/* Does curl's error text say the response itself was broken? Some
 * results (CURLE_RECV_ERROR) come from a dead connection and from bytes
 * that are not HTTP alike; curl tells them apart only in its message. */
static int says_bad_reply(const char *m) {
  return m && (strstr(m, "chunked-encoding") ||         /* bad chunk framing */
               strstr(m, "Too large response headers") || /* over 300 KB */
               strstr(m, "Malformed encoding"));
}

ft_errkind ft_fetch_classify(CURLcode rc, long os_errno, long redirects,
                             int too_large, const char *curl_msg,
                             int *transient) {
  *transient = 0;
  if (too_large)
    return FT_ERR_TOO_LARGE;
  switch (rc) {
  case CURLE_OK:
    return FT_ERR_NONE;
  case CURLE_UNSUPPORTED_PROTOCOL:
    /* the engine only starts http and https URLs, so without a redirect
     * this is the server answering in something else (e.g. HTTP/0.9) */
    return redirects > 0 ? FT_ERR_REDIRECT : FT_ERR_PROTOCOL;
  case CURLE_URL_MALFORMAT:
    return FT_ERR_URL;
  case CURLE_TOO_MANY_REDIRECTS:
    return FT_ERR_REDIRECT;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    *transient = 1;
    return FT_ERR_DNS;
  case CURLE_COULDNT_CONNECT:
    *transient = 1;
    return FT_ERR_CONNECT;
  case CURLE_OPERATION_TIMEDOUT:
    *transient = 1;
    return FT_ERR_TIMEOUT;
  case CURLE_FILESIZE_EXCEEDED:
    return FT_ERR_TOO_LARGE;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_USE_SSL_FAILED:
    return FT_ERR_TLS;
  case CURLE_RECV_ERROR:
    if (says_bad_reply(curl_msg))
      return FT_ERR_PROTOCOL;
    *transient = 1;
    return FT_ERR_RESET;
  case CURLE_SEND_ERROR:
  case CURLE_GOT_NOTHING:
    *transient = 1;
    return FT_ERR_RESET;
  case CURLE_PARTIAL_FILE:
    *transient = 1;
    return FT_ERR_PROTOCOL;
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_HTTP3:
  case CURLE_RANGE_ERROR:
    return FT_ERR_PROTOCOL;
#if LIBCURL_VERSION_NUM >= 0x080600
  case CURLE_TOO_LARGE: /* a response header over curl's caps */
    return FT_ERR_PROTOCOL;
#endif
  case CURLE_OUT_OF_MEMORY:
    /* Before 8.6 curl says "out of memory" for a response header line
     * longer than it keeps (CURL_MAX_HTTP_HEADER, 100 KB); fetchtree's
     * own allocation failures are flagged on the transfer instead. */
    return FT_ERR_PROTOCOL;
  default:
    if (os_errno == ECONNRESET || os_errno == EPIPE) {
      *transient = 1;
      return FT_ERR_RESET;
    }
    return FT_ERR_PROTOCOL;
  }
}

ft_errkind ft_xfer_outcome(ft_xfer *x, CURLcode rc, int *transient,
                           const char **msg) {
  long os_errno = 0, redirects = 0;
  *transient = 0;
  if (x->oom) {
    *msg = "out of memory";
    return FT_ERR_INTERNAL;
  }
  if (x->bad_reply) {
    *msg = x->bad_reply;
    return FT_ERR_PROTOCOL;
  }
  if (x->refused) { /* cfg->url_check said no */
    *msg = x->errbuf[0] ? x->errbuf : "refused by the URL check";
    return FT_ERR_ROBOTS;
  }
  curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
  curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_COUNT, &redirects);
  ft_errkind kind = ft_fetch_classify(rc, os_errno, redirects, x->too_large,
                                      x->errbuf, transient);
  if (kind == FT_ERR_NONE)
    *msg = "";
  else if (kind == FT_ERR_TOO_LARGE)
    *msg = "response body larger than the maximum size";
  else if (x->socket_errno)
    *msg = socket_message(x); /* curl: only "couldn't connect" */
  else if (rc == CURLE_OUT_OF_MEMORY && !x->errbuf[0])
    *msg = "a response header line longer than libcurl takes (100 KB), "
           "or out of memory";
  else
    *msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
  return kind;
}
