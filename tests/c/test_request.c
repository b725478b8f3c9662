/* test_request.c - unit tests for core/request.c: ft_request_set,
 * ft_request_add_header, ft_errkind_name. */
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

int main(void) {
  FT_RUN(test_new_defaults);
  FT_RUN(test_set_copies);
  FT_RUN(test_set_invalid_leaves_request);
  FT_RUN(test_add_header_rows);
  FT_RUN(test_errkind_names);
  return FT_DONE();
}
