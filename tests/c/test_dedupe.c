/* test_dedupe.c - unit tests for core/dedupe.c: which keys are the same,
 * growth through many resizes, and no false positives. */
#include <stdio.h>
#include <string.h>

#include "dedupe.h"
#include "error.h"
#include "ft_test.h"

/* A string literal and its length, NUL bytes included. */
#define L(s) s, sizeof(s) - 1

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- which keys are equal ------------------------------------------------ */

/* Rows are added in order to one set; want is ft_dedupe_add's result. */
FT_TEST(test_keys) {
  static const struct {
    const char *name;
    const char *method;
    const char *url;
    const char *body;
    size_t body_len;
    int want;
  } rows[] = {
      {"first", "GET", "http://a.com/", NULL, 0, 1},
      {"same again", "GET", "http://a.com/", NULL, 0, 0},
      {"NULL method is GET", NULL, "http://a.com/", NULL, 0, 0},
      {"empty body is no body", "GET", "http://a.com/", L(""), 0},
      {"other url", "GET", "http://a.com/x", NULL, 0, 1},
      {"method distinguishes", "HEAD", "http://a.com/", NULL, 0, 1},
      {"methods are case-sensitive", "get", "http://a.com/", NULL, 0, 1},
      {"NULL method, new url", NULL, "http://b.com/", NULL, 0, 1},
      {"then GET is seen", "GET", "http://b.com/", NULL, 0, 0},
      {"body distinguishes", "POST", "http://a.com/", L("a=1"), 1},
      {"same body", "POST", "http://a.com/", L("a=1"), 0},
      {"other body", "POST", "http://a.com/", L("a=2"), 1},
      {"body with NUL", "POST", "http://a.com/", L("a\0b"), 1},
      {"same body with NUL", "POST", "http://a.com/", L("a\0b"), 0},
      {"bytes after NUL count", "POST", "http://a.com/", L("a\0c"), 1},
      {"only a NUL", "POST", "http://a.com/", L("\0"), 1},
      {"two NULs", "POST", "http://a.com/", L("\0\0"), 1},
      {"POST with empty body", "POST", "http://a.com/", NULL, 0, 1},
      /* the fields are length-prefixed, so moving bytes across matters */
      {"field split 1", "GET", "ab", L("c"), 1},
      {"field split 2", "GET", "a", L("bc"), 1},
      {"field split 3", "GETa", "b", L("c"), 1},
      {"field split 4", "GET", "abc", NULL, 0, 1},
      {"empty url", "GET", "", NULL, 0, 1},
      {"empty url again", NULL, "", NULL, 0, 0},
      {"long body, 8-byte boundary", "PUT", "u", L("0123456789abcdef"), 1},
      {"long body, one byte more", "PUT", "u", L("0123456789abcdef\0"), 1},
  };
  ft_dedupe *d = NULL;
  FT_CHECK_EQ_INT(ft_dedupe_new(&d), 0);
  if (d == NULL)
    return;
  size_t want_count = 0;
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    int rc = ft_dedupe_add(d, rows[i].method, rows[i].url, rows[i].body,
                           rows[i].body_len);
    if (rc != rows[i].want) {
      fprintf(stderr, "  row \"%s\": want %d, got %d\n", rows[i].name,
              rows[i].want, rc);
      ft_test_cur_failed_ = 1;
    }
    want_count += rows[i].want == 1;
  }
  FT_CHECK_EQ_INT(ft_dedupe_count(d), want_count);
  ft_dedupe_free(d);
}

FT_TEST(test_args) {
  FT_CHECK_EQ_INT(ft_dedupe_new(NULL), FT_EINVAL);
  ft_dedupe *d = NULL;
  FT_CHECK_EQ_INT(ft_dedupe_new(&d), 0);
  FT_CHECK_EQ_INT(ft_dedupe_add(NULL, "GET", "u", NULL, 0), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_dedupe_add(d, "GET", NULL, NULL, 0), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_dedupe_add(d, "GET", "u", NULL, 3), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_dedupe_count(d), 0);
  FT_CHECK_EQ_INT(ft_dedupe_count(NULL), 0);
  ft_dedupe_free(d);
  ft_dedupe_free(NULL);
}

/* ---- scale -------------------------------------------------------------- */

#define N_KEYS 200000

static void url_of(char *buf, size_t n, int i) {
  snprintf(buf, n, "http://host%d.example.com/path/%d?q=%d", i % 97, i, i * 7);
}

/* 200,000 keys go through nine doublings; every one is new on the first
 * pass and seen on the second, and the count is exact. */
FT_TEST(test_growth) {
  ft_dedupe *d = NULL;
  FT_CHECK_EQ_INT(ft_dedupe_new(&d), 0);
  if (d == NULL)
    return;
  char url[128];
  int fresh = 0, seen = 0;
  for (int i = 0; i < N_KEYS; i++) {
    url_of(url, sizeof url, i);
    fresh += ft_dedupe_add(d, NULL, url, NULL, 0) == 1;
  }
  FT_CHECK_EQ_INT(fresh, N_KEYS);
  FT_CHECK_EQ_INT(ft_dedupe_count(d), N_KEYS);
  for (int i = 0; i < N_KEYS; i++) {
    url_of(url, sizeof url, i);
    seen += ft_dedupe_add(d, "GET", url, "", 0) == 0;
  }
  FT_CHECK_EQ_INT(seen, N_KEYS);
  FT_CHECK_EQ_INT(ft_dedupe_count(d), N_KEYS);
  ft_dedupe_free(d);
}

/* Near-identical keys (one counter in the body, one bit apart, or the same
 * bytes in a different field) are all told apart. */
FT_TEST(test_no_false_positives) {
  ft_dedupe *d = NULL;
  FT_CHECK_EQ_INT(ft_dedupe_new(&d), 0);
  if (d == NULL)
    return;
  int fresh = 0;
  for (int i = 0; i < N_KEYS / 2; i++) {
    unsigned char body[8] = {0};
    for (int b = 0; b < 4; b++)
      body[b] = (unsigned char)(i >> (8 * b));
    fresh += ft_dedupe_add(d, "POST", "http://a.com/api", body, sizeof body) ==
             1;
  }
  for (int i = 0; i < N_KEYS / 2; i++) {
    char url[32];
    snprintf(url, sizeof url, "%08d", i);
    fresh += ft_dedupe_add(d, "POST", url, NULL, 0) == 1;
  }
  FT_CHECK_EQ_INT(fresh, N_KEYS);
  FT_CHECK_EQ_INT(ft_dedupe_count(d), N_KEYS);
  /* the same bytes as body instead of url are other keys */
  int moved = 0;
  for (int i = 0; i < 1000; i++) {
    char s[32];
    int n = snprintf(s, sizeof s, "%08d", i);
    moved += ft_dedupe_add(d, "POST", "", s, (size_t)n) == 1;
  }
  FT_CHECK_EQ_INT(moved, 1000);
  ft_dedupe_free(d);
}

/* ---- the keys themselves --------------------------------------------------- */

/* A durable run stores these keys (--state) and rebuilds its seen set from
 * them on resume, so they must never change: known answers, computed when
 * the format was fixed, over fields of every length around the 8-byte
 * words the hash reads, NUL and high bytes included. */
FT_TEST(test_known_keys) {
  static const char *urls[] = {"", "h", "http://a.com/",
                               "http://127.0.0.1:18555/item/1.json",
                               "https://example.com/a/b?c=d&e=f#g", "0123456",
                               "01234567", "012345678"};
  static const char body[] = "a\0b=1&c=\xff\x80 0123456789abcdef";
  static const struct {
    size_t url, body_len;
    const char *hex;
  } rows[] = {
      {0, 0, "9843467db14ac1ad06796d84efb865db"},
      {0, 9, "0a2d184e4f22f961fdf688688c95c7c8"},
      {0, 17, "9115d4125694952cd33d5d1fd60c7821"},
      {1, 0, "c12dfc2c851de964a25ddbd56bc69c1c"},
      {1, 9, "31d8ad818c248923e041915407c3e94a"},
      {1, 17, "80259a35c8c27ff120a26e658d156665"},
      {2, 0, "a3e0e24f05941b5eb98ff6f1d30192f9"},
      {2, 9, "2f2d14686d01ab122bb537fd76a68291"},
      {2, 17, "19fb57d1a8441064be9444adc4fd1f0b"},
      {3, 0, "401212406b1e4b6953b4d286cc65822b"},
      {3, 9, "0732d45db6977b0d872b4b61cc3a3b6b"},
      {3, 17, "34a70ceaa8b54b50b35283a28389ea7d"},
      {4, 0, "71dbda22385551d7492a3df964c9d146"},
      {4, 9, "ae4a2b06c90d5d1ef331b8518fabf843"},
      {4, 17, "f8bec701541acc267a5992f1b0105c9a"},
      {5, 0, "ede897e11a6e18918ac590379d17267f"},
      {5, 9, "dd5d6ea2f9cc8cae54c52626abb013cb"},
      {5, 17, "20177fdb48ae80586dc88139cb0adc0f"},
      {6, 0, "0c738253939354e38bbd3187e23d1db7"},
      {6, 9, "1af05806bd50d97eacd5aff5634c41f7"},
      {6, 17, "b9d78ac72ba13ba1a44ccc089bfa2463"},
      {7, 0, "347e2495b3d9b3f1ed5d9243ffd1bdac"},
      {7, 9, "0a2f1dec31370f635c360d241ff4f7f3"},
      {7, 17, "d3896bf198fce55ab8a42b8d9ce7ac4c"},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    size_t u = rows[i].url;
    const char *method = u % 3 == 1 ? "POST" : u % 3 == 2 ? NULL : "GET";
    unsigned char k[16];
    char hex[33];
    ft_dedupe_hash_key(method, urls[u], rows[i].body_len ? body : NULL,
                       rows[i].body_len, k);
    for (int j = 0; j < 16; j++)
      snprintf(hex + 2 * j, 3, "%02x", k[j]);
    FT_CHECK_EQ_STR(hex, rows[i].hex);
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_keys);
  FT_RUN(test_known_keys);
  FT_RUN(test_args);
  FT_RUN(test_growth);
  FT_RUN(test_no_false_positives);
  return FT_DONE();
}
