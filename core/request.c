/* request.c - ft_request: making, filling and freeing requests, and the names of error kinds.
 *
 * This is what a C embedder needs to build requests without calling
 * libcurl: the headers are a curl_slist because that is what the transfer
 * hands to CURLOPT_HTTPHEADER as it is, but only this file and fetch.c
 * touch it. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "request.h"

static const char *const errkind_names[FT_ERR_COUNT] = {
    [FT_ERR_NONE] = "none",
    [FT_ERR_INPUT] = "input",
    [FT_ERR_URL] = "url",
    [FT_ERR_DNS] = "dns",
    [FT_ERR_CONNECT] = "connect",
    [FT_ERR_TIMEOUT] = "timeout",
    [FT_ERR_TLS] = "tls",
    [FT_ERR_TOO_LARGE] = "too_large",
    [FT_ERR_PROTOCOL] = "protocol",
    [FT_ERR_RESET] = "reset",
    [FT_ERR_REDIRECT] = "redirect",
    [FT_ERR_HTTP] = "http",
    [FT_ERR_RETRIES] = "retries_exhausted",
    [FT_ERR_RETRY_AFTER] = "retry_after",
    [FT_ERR_CANCELLED] = "cancelled",
    [FT_ERR_SCRIPT] = "script",
    [FT_ERR_INTERNAL] = "internal",
    [FT_ERR_ROBOTS] = "robots",
};

const char *ft_errkind_name(ft_errkind kind) {
  if (kind < 0 || kind >= FT_ERR_COUNT)
    return "internal";
  return errkind_names[kind];
}

ft_request *ft_request_new(void) {
  ft_request *r = calloc(1, sizeof(*r));
  if (r)
    r->retries = -1;
  return r;
}

void ft_request_free(ft_request *r) {
  if (!r)
    return;
  free(r->url);
  free(r->method);
  curl_slist_free_all(r->headers);
  free(r->body);
  free(r->meta_json);
  free(r->refused);
  free(r);
}

int ft_request_set(ft_request *r, const char *url, const char *method,
                   const void *body, size_t body_len) {
  if (!r || !url || (!body && body_len > 0))
    return FT_EINVAL;
  /* make every copy first, so that a failure leaves r as it was */
  char *u = strdup(url);
  char *m = method ? strdup(method) : NULL;
  char *b = NULL;
  if (body) {
    b = malloc(body_len + 1);
    if (b) {
      memcpy(b, body, body_len);
      b[body_len] = '\0';
    }
  }
  if (!u || (method && !m) || (body && !b)) {
    free(u);
    free(m);
    free(b);
    return FT_ENOMEM;
  }
  free(r->url);
  free(r->method);
  free(r->body);
  r->url = u;
  r->method = m;
  r->body = b;
  r->body_len = b ? body_len : 0;
  return FT_OK;
}

/* ---- what a request may carry -----------------------------------------
 * The checks are written here rather than taken from a library: libcurl
 * sends header lines as it gets them (it checks nothing), and what is
 * refused is fetchtree's policy, not HTTP syntax alone. */

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~", digits and letters. */
static int ft_tchar_(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

int ft_token_valid(const char *s, size_t n) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!ft_tchar_((unsigned char)s[i]))
      return 0;
  return 1;
}

/* Headers libcurl writes itself to frame the message or manage the
 * connection. A request's own copy would make libcurl's framing and the
 * bytes it sends disagree: with "Content-Length: 5" and a longer body, the
 * rest of the body is read by the server as the next request on the kept
 * connection, and its answer handed to the next request's record. */
static const struct {
  const char *name;
  const char *why;
} ft_framing_[] = {
    {"Content-Length", "libcurl sets it from the body"},
    {"Transfer-Encoding", "libcurl frames the body itself"},
    {"TE", "libcurl chooses the transfer codings it reads"},
    {"Connection", "libcurl manages the connection"},
    {"Keep-Alive", "libcurl manages the connection"},
    {"Proxy-Connection", "libcurl manages the connection"},
    {"Upgrade", "fetchtree does not switch protocols"},
};

int ft_header_check(const char *line, size_t len, char *err, size_t errlen) {
  if (!line) {
    ft_errf(err, errlen, "no header line");
    return FT_EINVAL;
  }
  size_t name = 0;
  while (name < len && ft_tchar_((unsigned char)line[name]))
    name++;
  if (name == 0 || name == len ||
      (line[name] != ':' && !(line[name] == ';' && name + 1 == len))) {
    /* say what is wrong with the line, quoting as much as is printable */
    int shown = 0;
    while ((size_t)shown < len && shown < 60 &&
           (unsigned char)line[shown] >= 0x20 && line[shown] != 0x7f)
      shown++;
    if (name == 0 && len > 0 && line[0] == ':')
      ft_errf(err, errlen, "bad header line: empty name: %.*s", shown, line);
    else if (name == len || (name < len && line[name] == ';'))
      ft_errf(err, errlen, "bad header line: no ':' after the name: %.*s",
              shown, line);
    else
      ft_errf(err, errlen,
              "bad header line: the name is not a token (RFC 9110): %.*s",
              shown, line);
    return FT_EINVAL;
  }
  for (size_t i = name + 1; i < len; i++) {
    unsigned char c = (unsigned char)line[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      ft_errf(err, errlen, "header %.*s: %s in the value", (int)name, line,
              c == '\r' || c == '\n' ? "a line break"
              : c == 0             ? "a NUL byte"
                                   : "a control byte");
      return FT_EINVAL;
    }
  }
  for (size_t i = 0; i < sizeof(ft_framing_) / sizeof(ft_framing_[0]); i++) {
    if (strlen(ft_framing_[i].name) == name &&
        strncasecmp(line, ft_framing_[i].name, name) == 0) {
      ft_errf(err, errlen, "header refused: %s (%s)", ft_framing_[i].name,
              ft_framing_[i].why);
      return FT_EINVAL;
    }
  }
  if (name == 6 && strncasecmp(line, "Expect", 6) == 0) {
    size_t v = name + 1;
    while (v < len && (line[v] == ' ' || line[v] == '\t'))
      v++;
    if (line[name] == ';' || v < len) {
      ft_errf(err, errlen, "header refused: Expect (libcurl decides on "
                           "100-continue; \"Expect:\" turns it off)");
      return FT_EINVAL;
    }
  }
  return 0;
}

int ft_request_add_header(ft_request *r, const char *line) {
  if (!r || !line || ft_header_check(line, strlen(line), NULL, 0) != 0)
    return FT_EINVAL;
  /* curl_slist_append leaves the list as it was when it fails */
  struct curl_slist *l = curl_slist_append(r->headers, line);
  if (!l)
    return FT_ENOMEM;
  r->headers = l;
  return FT_OK;
}

int ft_request_refuse(ft_request *r, ft_errkind kind, const char *why) {
  if (r->refused)
    return 0;
  r->refused = strdup(why);
  if (!r->refused)
    return FT_ENOMEM;
  r->refused_kind = kind;
  return 0;
}

int ft_request_set_url(ft_request *r, const char *url, size_t len) {
  char *copy = malloc(3 * len + 1);
  if (!copy)
    return FT_ENOMEM;
  size_t j = 0;
  for (size_t i = 0; i < len; i++) {
    if (url[i] == '\0') {
      memcpy(copy + j, "%00", 3);
      j += 3;
    } else {
      copy[j++] = url[i];
    }
  }
  copy[j] = '\0';
  if (j != len &&
      ft_request_refuse(r, FT_ERR_URL, "invalid URL: it contains a NUL byte")) {
    free(copy);
    return FT_ENOMEM;
  }
  free(r->url);
  r->url = copy;
  return 0;
}

/* Whether the Host value (len bytes at v, blanks around it allowed) names
 * url's host and port, as libcurl reads them from the URL it is given (a
 * missing port is the scheme's default). */
static int ft_host_agrees_(const char *url, const char *v, size_t len) {
  while (len > 0 && (*v == ' ' || *v == '\t'))
    v++, len--;
  while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
    len--;
  CURLU *u = curl_url();
  char *host = NULL, *port = NULL;
  int ok = 0;
  if (!u || curl_url_set(u, CURLUPART_URL, url,
                         CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) !=
                CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
    goto done;
  size_t hl = strlen(host);
  if (len < hl || strncasecmp(v, host, hl) != 0)
    goto done;
  if (len == hl) { /* no port: the scheme's default */
    ok = (strncasecmp(url, "http:", 5) == 0 && strcmp(port, "80") == 0) ||
         (strncasecmp(url, "https:", 6) == 0 && strcmp(port, "443") == 0);
    goto done;
  }
  ok = v[hl] == ':' && len - hl - 1 == strlen(port) &&
       memcmp(v + hl + 1, port, len - hl - 1) == 0;
done:
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return ok;
}

ft_errkind ft_request_check(const ft_request *r, char *err, size_t errlen) {
  if (r->refused) {
    ft_errf(err, errlen, "%s", r->refused);
    return r->refused_kind;
  }
  if (r->method) {
    size_t n = strlen(r->method), i = 0;
    while (i < n && ft_tchar_((unsigned char)r->method[i]))
      i++;
    if (n == 0 || i < n) {
      ft_errf(err, errlen, "bad method: %s",
              n == 0 ? "empty" : "not a token (no spaces or control bytes)");
      return FT_ERR_INPUT;
    }
    if (strcasecmp(r->method, "CONNECT") == 0) {
      ft_errf(err, errlen, "bad method: CONNECT (it turns the connection "
                           "into a tunnel)");
      return FT_ERR_INPUT;
    }
    if (r->body && strcasecmp(r->method, "HEAD") == 0) {
      ft_errf(err, errlen, "bad method: HEAD with a body (a HEAD answer has "
                           "no body to frame the next one by)");
      return FT_ERR_INPUT;
    }
  }
  for (const struct curl_slist *h = r->headers; h; h = h->next) {
    size_t len = strlen(h->data);
    if (ft_header_check(h->data, len, err, errlen) != 0)
      return FT_ERR_INPUT;
    if (len >= 5 && strncasecmp(h->data, "Host", 4) == 0 &&
        (h->data[4] == ':' || h->data[4] == ';') &&
        (h->data[4] == ';' || !r->url ||
         !ft_host_agrees_(r->url, h->data + 5, len - 5))) {
      ft_errf(err, errlen, "header refused: Host (it must name the URL's "
                           "host and port, or be left to libcurl)");
      return FT_ERR_INPUT;
    }
  }
  return FT_ERR_NONE;
}
