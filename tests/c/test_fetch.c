/* test_fetch.c - unit tests for core/fetch.c: how a curl result is
 * classified, error kind names, which headers are sensitive. */
#include <errno.h>
#include <string.h>

#include "error.h"
#include "fetch.h"
#include "ft_test.h"
#include "retry.h"

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- ft_fetch_classify -------------------------------------------------- */

FT_TEST(test_classify) {
  static const struct {
    const char *name;
    CURLcode rc;
    long os_errno, redirects;
    int too_large;
    const char *msg; /* curl's error text */
    const char *kind;
    int transient;
  } rows[] = {
      {"ok", CURLE_OK, 0, 0, 0, "", "none", 0},
      {"ok after redirects", CURLE_OK, 0, 3, 0, NULL, "none", 0},
      {"resolve host", CURLE_COULDNT_RESOLVE_HOST, 0, 0, 0, "", "dns", 1},
      {"resolve proxy", CURLE_COULDNT_RESOLVE_PROXY, 0, 0, 0, "", "dns", 1},
      {"connect", CURLE_COULDNT_CONNECT, ECONNREFUSED, 0, 0, "", "connect", 1},
      {"timeout", CURLE_OPERATION_TIMEDOUT, 0, 0, 0, "", "timeout", 1},
      {"peer verification", CURLE_PEER_FAILED_VERIFICATION, 0, 0, 0, "", "tls",
       0},
      {"ssl connect", CURLE_SSL_CONNECT_ERROR, 0, 0, 0, "", "tls", 0},
      {"ssl connect, reset errno", CURLE_SSL_CONNECT_ERROR, ECONNRESET, 0, 0,
       "", "tls", 0},
      {"recv", CURLE_RECV_ERROR, ECONNRESET, 0, 0,
       "Recv failure: Connection reset by peer", "reset", 1},
      {"recv, no message", CURLE_RECV_ERROR, 0, 0, 0, NULL, "reset", 1},
      {"recv, bad chunk", CURLE_RECV_ERROR, 0, 0, 0,
       "Malformed encoding found in chunked-encoding", "protocol", 0},
      {"recv, bad chunk length", CURLE_RECV_ERROR, 0, 0, 0,
       "Illegal or missing hexadecimal sequence in chunked-encoding",
       "protocol", 0},
      {"recv, headers over curl's cap", CURLE_RECV_ERROR, 0, 0, 0,
       "Too large response headers: 307232 > 307200", "protocol", 0},
      {"send", CURLE_SEND_ERROR, EPIPE, 0, 0, "", "reset", 1},
      {"got nothing", CURLE_GOT_NOTHING, 0, 0, 0, "", "reset", 1},
      {"partial file", CURLE_PARTIAL_FILE, 0, 0, 0, "", "protocol", 1},
      {"weird reply", CURLE_WEIRD_SERVER_REPLY, 0, 0, 0, "", "protocol", 0},
      {"http2", CURLE_HTTP2, 0, 0, 0, "", "protocol", 0},
      {"bad content encoding", CURLE_BAD_CONTENT_ENCODING, 0, 0, 0, "",
       "protocol", 0},
      {"unsupported protocol, no redirect", CURLE_UNSUPPORTED_PROTOCOL, 0, 0, 0,
       "", "protocol", 0},
      {"unsupported protocol after a redirect", CURLE_UNSUPPORTED_PROTOCOL, 0,
       1, 0, "", "redirect", 0},
      {"too many redirects", CURLE_TOO_MANY_REDIRECTS, 0, 20, 0, "", "redirect",
       0},
      {"url malformat", CURLE_URL_MALFORMAT, 0, 0, 0, "", "url", 0},
      {"filesize exceeded", CURLE_FILESIZE_EXCEEDED, 0, 0, 0, "", "too_large",
       0},
      {"write error, too large", CURLE_WRITE_ERROR, 0, 0, 1, "", "too_large",
       0},
      {"too large wins over a transient code", CURLE_RECV_ERROR, ECONNRESET, 0,
       1, "", "too_large", 0},
      {"out of memory: a header line over curl's cap", CURLE_OUT_OF_MEMORY, 0,
       0, 0, "", "protocol", 0},
      {"unknown code, ECONNRESET", (CURLcode)9999, ECONNRESET, 0, 0, "",
       "reset", 1},
      {"unknown code, EPIPE", (CURLcode)9999, EPIPE, 0, 0, "", "reset", 1},
      {"unlisted code, ECONNRESET", CURLE_ABORTED_BY_CALLBACK, ECONNRESET, 0, 0,
       "", "reset", 1},
      {"unknown code, no errno", (CURLcode)9999, 0, 0, 0, "", "protocol", 0},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    int transient = 7; /* must be overwritten */
    ft_errkind k = ft_fetch_classify(rows[i].rc, rows[i].os_errno,
                                     rows[i].redirects, rows[i].too_large,
                                     rows[i].msg, &transient);
    const char *kind = ft_errkind_name(k);
    if (strcmp(kind, rows[i].kind) != 0 || transient != rows[i].transient) {
      fprintf(stderr, "  row \"%s\": want %s/%d, got %s/%d\n", rows[i].name,
              rows[i].kind, rows[i].transient, kind, transient);
      ft_test_cur_failed_ = 1;
    }
  }
}

/* The default retry policy retries what classify calls transient and
 * nothing else: a broken response (protocol) is final at once. */
FT_TEST(test_protocol_not_retried) {
  ft_retry_policy p;
  ft_retry_policy_default(&p);
  static const char *const bad[] = {
      "Malformed encoding found in chunked-encoding",
      "Too large response headers: 307232 > 307200"};
  for (size_t i = 0; i < N_ROWS(bad); i++) {
    int transient = 7;
    uint64_t delay = 1;
    ft_errkind k =
        ft_fetch_classify(CURLE_RECV_ERROR, 0, 0, 0, bad[i], &transient);
    FT_CHECK(k == FT_ERR_PROTOCOL);
    FT_CHECK_EQ_INT(
        ft_retry_decide(&p, 1, 0, transient, NULL, 0, NULL, &delay, NULL), 0);
  }
}

/* ---- ft_fetch_is_sensitive ------------------------------------------- */

FT_TEST(test_sensitive) {
  static const struct {
    const char *name, *extra;
    int want;
  } rows[] = {
      {"Authorization", NULL, 1},
      {"authorization", NULL, 1},
      {"Cookie", NULL, 1},
      {"Proxy-Authorization", NULL, 1},
      {"PROXY-AUTHORIZATION", "", 1},
      {"Accept", NULL, 0},
      {"Auth", NULL, 0},
      {"X-Api-Key", NULL, 0},
      {"X-Api-Key", "x-api-key", 1},
      {"X-Api-Key", "X-Token, X-Api-Key", 1},
      {"X-Api-Key", "X-Token,X-Api-Key,", 1},
      {"X-Api", "X-Api-Key", 0},
      {"X-Api-Key-2", "X-Api-Key", 0},
      {"X-Token", " , X-Token", 1},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    int got = ft_fetch_is_sensitive(rows[i].name, strlen(rows[i].name),
                                    rows[i].extra);
    if (got != rows[i].want) {
      fprintf(stderr, "  row %s / %s: want %d\n", rows[i].name,
              rows[i].extra ? rows[i].extra : "NULL", rows[i].want);
      ft_test_cur_failed_ = 1;
    }
  }
}

/* ---- ft_errkind_name ---------------------------------------------------- */

FT_TEST(test_errkind_names) {
  for (int i = 0; i < FT_ERR_COUNT; i++) {
    const char *a = ft_errkind_name((ft_errkind)i);
    FT_CHECK(a != NULL && a[0] != '\0');
    if (!a)
      continue;
    for (int j = 0; j < i; j++) {
      const char *b = ft_errkind_name((ft_errkind)j);
      if (b && strcmp(a, b) == 0) {
        fprintf(stderr, "  kinds %d and %d are both \"%s\"\n", j, i, a);
        ft_test_cur_failed_ = 1;
      }
    }
  }
  /* the names records and specs rely on */
  static const struct {
    ft_errkind kind;
    const char *name;
  } rows[] = {
      {FT_ERR_NONE, "none"},           {FT_ERR_INPUT, "input"},
      {FT_ERR_URL, "url"},             {FT_ERR_DNS, "dns"},
      {FT_ERR_CONNECT, "connect"},     {FT_ERR_TIMEOUT, "timeout"},
      {FT_ERR_TLS, "tls"},             {FT_ERR_TOO_LARGE, "too_large"},
      {FT_ERR_PROTOCOL, "protocol"},   {FT_ERR_RESET, "reset"},
      {FT_ERR_REDIRECT, "redirect"},   {FT_ERR_HTTP, "http"},
      {FT_ERR_RETRIES, "retries_exhausted"},
      {FT_ERR_RETRY_AFTER, "retry_after"},
      {FT_ERR_CANCELLED, "cancelled"}, {FT_ERR_SCRIPT, "script"},
      {FT_ERR_INTERNAL, "internal"},   {FT_ERR_ROBOTS, "robots"},
  };
  FT_CHECK_EQ_INT(N_ROWS(rows), FT_ERR_COUNT);
  for (size_t i = 0; i < N_ROWS(rows); i++)
    FT_CHECK(strcmp(ft_errkind_name(rows[i].kind), rows[i].name) == 0);
  /* out of range: a name all the same */
  FT_CHECK(strcmp(ft_errkind_name(FT_ERR_COUNT), "internal") == 0);
  FT_CHECK(strcmp(ft_errkind_name((ft_errkind)-1), "internal") == 0);
}

/* ---- ft_request_new / ft_request_free ----------------------------------- */

FT_TEST(test_request_new_free) {
  ft_request *r = ft_request_new();
  FT_CHECK(r != NULL);
  if (!r)
    return;
  FT_CHECK_EQ_INT(r->retries, -1);
  FT_CHECK(r->url == NULL && r->method == NULL && r->headers == NULL &&
           r->body == NULL && r->meta_json == NULL && r->next == NULL);
  FT_CHECK_EQ_INT(r->index, 0);
  FT_CHECK_EQ_INT(r->timeout_ms, 0);
  FT_CHECK_EQ_INT(r->attempts, 0);
  /* everything owned is freed (the leak checker would say otherwise) */
  r->url = strdup("http://a/");
  r->method = strdup("POST");
  r->headers = curl_slist_append(NULL, "X-A: 1");
  r->headers = curl_slist_append(r->headers, "X-B: 2");
  r->body = strdup("x");
  r->body_len = 1;
  r->meta_json = strdup("{}");
  ft_request_free(r);
  ft_request_free(NULL);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_classify);
  FT_RUN(test_protocol_not_retried);
  FT_RUN(test_sensitive);
  FT_RUN(test_errkind_names);
  FT_RUN(test_request_new_free);
  return FT_DONE();
}
