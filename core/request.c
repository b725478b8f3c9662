/* request.c - ft_request: making, filling and freeing requests, and the names of error kinds.
 *
 * This is what a C embedder needs to build requests without calling
 * libcurl: the headers are a curl_slist because that is what the transfer
 * hands to CURLOPT_HTTPHEADER as it is, but only this file and fetch.c
 * touch it. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

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

int ft_request_add_header(ft_request *r, const char *line) {
  if (!r || !line)
    return FT_EINVAL;
  /* a non-empty name, then ':' or ';'; no line breaks, which would let a
   * value smuggle in a header (or a request) of its own */
  size_t name = strcspn(line, ":;\r\n");
  if (name == 0 || (line[name] != ':' && line[name] != ';') ||
      strpbrk(line, "\r\n"))
    return FT_EINVAL;
  /* curl_slist_append leaves the list as it was when it fails */
  struct curl_slist *l = curl_slist_append(r->headers, line);
  if (!l)
    return FT_ENOMEM;
  r->headers = l;
  return FT_OK;
}
