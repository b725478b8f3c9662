/* request.h - what the engine fetches (ft_request) and what it hands back (ft_response). */
#ifndef FT_REQUEST_H
#define FT_REQUEST_H

#include <stddef.h>
#include <stdint.h>

struct curl_slist;

/* Why a request failed. Names (ft_errkind_name) appear in records as error.kind. */
typedef enum ft_errkind {
  FT_ERR_NONE = 0,
  FT_ERR_INPUT,       /* malformed input line */
  FT_ERR_URL,         /* bad URL or refused scheme */
  FT_ERR_DNS,         /* host name did not resolve */
  FT_ERR_CONNECT,     /* connection refused or unreachable */
  FT_ERR_TIMEOUT,     /* connect or total timeout */
  FT_ERR_TLS,         /* handshake or certificate verification */
  FT_ERR_TOO_LARGE,   /* body over the maximum size */
  FT_ERR_PROTOCOL,    /* malformed or truncated response */
  FT_ERR_RESET,       /* connection reset or closed without a reply */
  FT_ERR_REDIRECT,    /* too many redirects, or to a refused scheme */
  FT_ERR_HTTP,        /* a retryable HTTP status (as a cause) */
  FT_ERR_RETRIES,     /* retries exhausted: see cause */
  FT_ERR_RETRY_AFTER, /* server asked to wait longer than allowed */
  FT_ERR_CANCELLED,   /* run stopped before the request finished */
  FT_ERR_SCRIPT,      /* a script handler failed */
  FT_ERR_INTERNAL,    /* out of memory or a library failure */
  FT_ERR_COUNT
} ft_errkind;

const char *ft_errkind_name(ft_errkind kind);

/* One request. The producer fills the public part; the engine owns the
 * private part while the request is in flight or waiting for a retry, and
 * gives it back through the done callback. ft_request_free frees both. */
typedef struct ft_request {
  uint64_t index;             /* position in the input; reported in records */
  char *url;                  /* owned */
  char *method;               /* owned; NULL means GET (POST when body) */
  struct curl_slist *headers; /* owned; "Name: value" lines */
  char *body;                 /* owned; may hold NUL bytes */
  size_t body_len;
  char *meta_json;            /* owned; JSON text passed through unchanged */
  long timeout_ms;            /* 0: the engine's default */
  int retries;                /* -1: the engine's default */
  void *udata;                /* the producer's */
  struct ft_object *obj;      /* the object it belongs to; NULL: the root */

  /* engine-private */
  int attempts;
  uint64_t first_start_ns;
  uint64_t due_ns;
  struct ft_request *next;
} ft_request;

/* A finished request as the done callback sees it. Everything it points to
 * is valid only during the callback. */
typedef struct ft_response {
  long status;             /* 0 when no response arrived */
  const char *final_url;   /* after redirects; NULL when unknown */
  const char *body;
  size_t body_len;
  const char *headers;     /* "name\0value\0" pairs, names lower-case */
  size_t headers_len;
  int header_count;
  int attempts;
  double elapsed_ms;       /* first attempt's start to the end of the last */
  ft_errkind error;        /* FT_ERR_NONE on success (any HTTP status) */
  ft_errkind cause;        /* for FT_ERR_RETRIES: the last attempt's kind */
  const char *message;     /* error text; "" when no error */
} ft_response;

ft_request *ft_request_new(void);
void ft_request_free(ft_request *r);

#endif
