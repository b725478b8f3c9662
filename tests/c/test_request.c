/* test_request.c - unit tests for core/request.c: ft_request_set,
 * ft_request_add_header, ft_header_check, ft_request_check,
 * ft_request_set_url, ft_errkind_name. */
#include <curl/curl.h>
#include <string.h>

#include "error.h"
#include "ft_test.h"
#include "request.h"

static int count_headers(const ft_request *r) {
  int n = 0;
  for (const struct curl_slist *l = r->headers; l; l = l->next)
    n++;
  return n;
}

FT_TEST(test_new_defaults) {
  ft_request *r = ft_request_new();
  FT_CHECK(r != NULL);
  FT_CHECK(r->url == NULL && r->method == NULL && r->body == NULL);
  FT_CHECK_EQ_INT(r->retries, -1);
  FT_CHECK_EQ_INT(r->timeout_ms, 0);
  ft_request_free(r);
  ft_request_free(NULL);
}

FT_TEST(test_set_copies) {
  ft_request *r = ft_request_new();
  char url[] = "http://a.example/x";
  char body[] = {'a', '\0', 'b'};
  FT_CHECK_EQ_INT(ft_request_set(r, url, "PUT", body, sizeof(body)), 0);
  url[0] = 'X';
  body[0] = 'X';
  FT_CHECK(strcmp(r->url, "http://a.example/x") == 0);
  FT_CHECK(strcmp(r->method, "PUT") == 0);
  FT_CHECK_EQ_INT(r->body_len, 3);
  FT_CHECK(memcmp(r->body, "a\0b", 3) == 0);
  FT_CHECK_EQ_INT(r->body[3], '\0');
  /* setting again replaces everything, NULLs included */
  FT_CHECK_EQ_INT(ft_request_set(r, "http://b.example/", NULL, NULL, 0), 0);
  FT_CHECK(strcmp(r->url, "http://b.example/") == 0);
  FT_CHECK(r->method == NULL && r->body == NULL);
  FT_CHECK_EQ_INT(r->body_len, 0);
  /* an empty body is a body (a POST with nothing in it) */
  FT_CHECK_EQ_INT(ft_request_set(r, "http://b.example/", NULL, "", 0), 0);
  FT_CHECK(r->body != NULL);
  FT_CHECK_EQ_INT(r->body_len, 0);
  ft_request_free(r);
}

FT_TEST(test_set_invalid_leaves_request) {
  ft_request *r = ft_request_new();
  FT_CHECK_EQ_INT(ft_request_set(r, "http://a.example/", "GET", NULL, 0), 0);
  FT_CHECK_EQ_INT(ft_request_set(NULL, "http://a/", NULL, NULL, 0), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_request_set(r, NULL, NULL, NULL, 0), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_request_set(r, "http://b/", NULL, NULL, 5), FT_EINVAL);
  FT_CHECK(strcmp(r->url, "http://a.example/") == 0);
  FT_CHECK(strcmp(r->method, "GET") == 0);
  ft_request_free(r);
}

/* Each row: a header line and what ft_request_add_header returns. */
static const struct {
  const char *line;
  int rc;
} header_rows[] = {
    {"Accept: application/json", 0},
    {"X-Empty;", 0},                     /* sent with no value */
    {"User-Agent:", 0},                  /* removes curl's own */
    {"Cookie: a=1; b=2", 0},
    {"", FT_EINVAL},
    {": value", FT_EINVAL},              /* no name */
    {"NoSeparator", FT_EINVAL},
    {"X: a\r\nEvil: b", FT_EINVAL},      /* a header smuggled in */
    {"X: a\n", FT_EINVAL},
    {"X\r\n: a", FT_EINVAL},
    {"X: a\x01b", FT_EINVAL},            /* a control byte */
    {"X: a\tb", 0},                      /* tab is allowed */
    {"A;b: c", FT_EINVAL},               /* ';' is not in a name */
    {"X A: b", FT_EINVAL},
    {"X;y", FT_EINVAL},                  /* ';' ends the line or nothing */
    /* framing and connection headers, in any case and any form */
    {"Content-Length: 5", FT_EINVAL},
    {"content-length:", FT_EINVAL},
    {"Transfer-Encoding: chunked", FT_EINVAL},
    {"Transfer-Encoding;", FT_EINVAL},
    {"TE: trailers", FT_EINVAL},
    {"Connection: close", FT_EINVAL},
    {"Keep-Alive: 5", FT_EINVAL},
    {"Proxy-Connection: keep-alive", FT_EINVAL},
    {"UPGRADE: h2c", FT_EINVAL},
    {"Expect: 100-continue", FT_EINVAL},
    {"Expect;", FT_EINVAL},
    {"Expect:", 0},                      /* turns 100-continue off */
    {"Content-Type: text/plain", 0},
    {"Content-Lengthy: 1", 0},           /* not the same name */
    {"Host: judged.later", 0},           /* by ft_request_check */
};

FT_TEST(test_add_header_rows) {
  ft_request *r = ft_request_new();
  int ok = 0;
  for (size_t i = 0; i < sizeof(header_rows) / sizeof(header_rows[0]); i++) {
    int rc = ft_request_add_header(r, header_rows[i].line);
    if (rc != header_rows[i].rc)
      fprintf(stderr, "  row %zu (\"%s\"): got %d, want %d\n", i,
              header_rows[i].line, rc, header_rows[i].rc);
    FT_CHECK_EQ_INT(rc, header_rows[i].rc);
    ok += rc == 0;
  }
  /* the accepted lines, in order, and nothing else */
  FT_CHECK_EQ_INT(count_headers(r), ok);
  FT_CHECK(strcmp(r->headers->data, "Accept: application/json") == 0);
  FT_CHECK_EQ_INT(ft_request_add_header(NULL, "A: b"), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_request_add_header(r, NULL), FT_EINVAL);
  FT_CHECK_EQ_INT(count_headers(r), ok);
  ft_request_free(r);
}

FT_TEST(test_errkind_names) {
  FT_CHECK(strcmp(ft_errkind_name(FT_ERR_NONE), "none") == 0);
  FT_CHECK(strcmp(ft_errkind_name(FT_ERR_CONNECT), "connect") == 0);
  FT_CHECK(strcmp(ft_errkind_name(FT_ERR_RETRIES), "retries_exhausted") == 0);
  FT_CHECK(strcmp(ft_errkind_name(FT_ERR_COUNT), "internal") == 0);
  FT_CHECK(strcmp(ft_errkind_name((ft_errkind)-1), "internal") == 0);
  for (int k = 0; k < FT_ERR_COUNT; k++)
    FT_CHECK(ft_errkind_name((ft_errkind)k) != NULL);
}

/* ft_header_check says why, and sees a NUL inside the line. */
FT_TEST(test_header_check_messages) {
  char err[256];
  FT_CHECK_EQ_INT(ft_header_check("X: a\0b", 6, err, sizeof err), FT_EINVAL);
  FT_CHECK(strstr(err, "NUL") != NULL);
  FT_CHECK_EQ_INT(ft_header_check("X: a\r\nY: b", 10, err, sizeof err),
                  FT_EINVAL);
  FT_CHECK(strstr(err, "line break") != NULL);
  FT_CHECK_EQ_INT(ft_header_check("Content-Length: 1", 17, err, sizeof err),
                  FT_EINVAL);
  FT_CHECK(strncmp(err, "header refused: Content-Length", 30) == 0);
  FT_CHECK_EQ_INT(ft_header_check("NoColon", 7, err, sizeof err), FT_EINVAL);
  FT_CHECK(strstr(err, "no ':'") != NULL);
  FT_CHECK_EQ_INT(ft_header_check(": v", 3, err, sizeof err), FT_EINVAL);
  FT_CHECK(strstr(err, "empty name") != NULL);
  FT_CHECK_EQ_INT(ft_header_check("X-A: ok", 7, NULL, 0), 0);
}

/* ft_request_check judges a whole request as the engine will, including
 * header lines an embedder appended to r->headers without
 * ft_request_add_header. */
FT_TEST(test_request_check_rows) {
  static const struct {
    const char *url, *method, *body, *header;
    ft_errkind want;
    const char *msg; /* part of the message, or NULL */
  } rows[] = {
      {"http://a.example/", NULL, NULL, NULL, FT_ERR_NONE, NULL},
      {"http://a.example/", "PROPFIND", NULL, NULL, FT_ERR_NONE, NULL},
      {"http://a.example/", "GET X", NULL, NULL, FT_ERR_INPUT, "bad method"},
      {"http://a.example/", "GET\r\nX:", NULL, NULL, FT_ERR_INPUT, "bad method"},
      {"http://a.example/", "", NULL, NULL, FT_ERR_INPUT, "bad method"},
      {"http://a.example/", "connect", NULL, NULL, FT_ERR_INPUT, "CONNECT"},
      {"http://a.example/", "HEAD", "x", NULL, FT_ERR_INPUT, "HEAD"},
      {"http://a.example/", "HEAD", NULL, NULL, FT_ERR_NONE, NULL},
      {"http://a.example/", "POST", "hello", "Content-Length: 2",
       FT_ERR_INPUT, "Content-Length"},
      {"http://a.example/", NULL, NULL, "X: a\r\nY: b", FT_ERR_INPUT,
       "line break"},
      {"http://a.example/", NULL, NULL, "Host: a.example", FT_ERR_NONE, NULL},
      {"http://a.example/", NULL, NULL, "Host:  A.Example ", FT_ERR_NONE, NULL},
      {"http://a.example/", NULL, NULL, "Host: a.example:80", FT_ERR_NONE, NULL},
      {"http://a.example/", NULL, NULL, "Host: a.example:81", FT_ERR_INPUT, "Host"},
      {"http://a.example/", NULL, NULL, "Host: b.example", FT_ERR_INPUT, "Host"},
      {"http://a.example/", NULL, NULL, "Host: a.example.evil", FT_ERR_INPUT, "Host"},
      {"http://a.example/", NULL, NULL, "Host:", FT_ERR_INPUT, "Host"},
      {"http://a.example/", NULL, NULL, "Host;", FT_ERR_INPUT, "Host"},
      {"http://a.example:8080/", NULL, NULL, "Host: a.example", FT_ERR_INPUT, "Host"},
      {"http://a.example:8080/", NULL, NULL, "Host: a.example:8080", FT_ERR_NONE, NULL},
      {"https://a.example/", NULL, NULL, "Host: a.example:443", FT_ERR_NONE, NULL},
      {"https://a.example/", NULL, NULL, "Host: a.example:80", FT_ERR_INPUT, "Host"},
      {"http://[::1]:81/", NULL, NULL, "Host: [::1]:81", FT_ERR_NONE, NULL},
      {"http://[::1]:81/", NULL, NULL, "Host: [::2]:81", FT_ERR_INPUT, "Host"},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    ft_request *r = ft_request_new();
    FT_CHECK_EQ_INT(ft_request_set(r, rows[i].url, rows[i].method, rows[i].body,
                                   rows[i].body ? strlen(rows[i].body) : 0),
                    0);
    if (rows[i].header) /* as an embedder may: past ft_request_add_header */
      r->headers = curl_slist_append(r->headers, rows[i].header);
    char err[256] = "";
    ft_errkind got = ft_request_check(r, err, sizeof err);
    if (got != rows[i].want ||
        (rows[i].msg && strstr(err, rows[i].msg) == NULL)) {
      fprintf(stderr, "  row %zu (%s %s %s): got %s \"%s\", want %s\n", i,
              rows[i].url, rows[i].method ? rows[i].method : "-",
              rows[i].header ? rows[i].header : "-", ft_errkind_name(got), err,
              ft_errkind_name(rows[i].want));
      ft_test_cur_failed_ = 1;
    }
    ft_request_free(r);
  }
}

/* A URL with a NUL inside is kept whole for the record and refused as url;
 * the first refusal is the one reported. */
FT_TEST(test_set_url_nul) {
  ft_request *r = ft_request_new();
  FT_CHECK_EQ_INT(ft_request_set_url(r, "http://a/b", 10), 0);
  FT_CHECK_EQ_STR(r->url, "http://a/b");
  FT_CHECK(r->refused == NULL);
  FT_CHECK_EQ_INT(ft_request_set_url(r, "http://a/b\0c", 12), 0);
  FT_CHECK_EQ_STR(r->url, "http://a/b%00c");
  char err[128];
  FT_CHECK_EQ_INT(ft_request_check(r, err, sizeof err), FT_ERR_URL);
  FT_CHECK(strstr(err, "NUL") != NULL);
  FT_CHECK_EQ_INT(ft_request_refuse(r, FT_ERR_INPUT, "later"), 0);
  FT_CHECK_EQ_INT(ft_request_check(r, err, sizeof err), FT_ERR_URL);
  ft_request_free(r);
}

int main(void) {
  FT_RUN(test_new_defaults);
  FT_RUN(test_set_copies);
  FT_RUN(test_set_invalid_leaves_request);
  FT_RUN(test_add_header_rows);
  FT_RUN(test_header_check_messages);
  FT_RUN(test_request_check_rows);
  FT_RUN(test_set_url_nul);
  FT_RUN(test_errkind_names);
  return FT_DONE();
}
