/* test_dedupe.c - unit tests for core/dedupe.c: which keys are the same,
 * growth through many resizes, and no false positives. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dedupe.h"
#include "error.h"
#include "ft_test.h"
#include "hash.h"

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
 * them on resume, so they must never change (schema version 2): known
 * answers over fields of every length around 8-byte words, NUL and high
 * bytes included, each also checked against XXH3-128 computed in one go
 * over the documented encoding (three fields, each after its length as 8
 * little-endian bytes; the key is the hash's low then high 64 bits, each
 * little-endian). */
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
      {0, 0, "6e4d42836b5a4e61762eb74109e192a2"},
      {0, 9, "a74cc74a5e047d235db15f7e802a74c9"},
      {0, 17, "76b6ec6b3264f71bbc73e7c9df290b21"},
      {1, 0, "dfddd8fb7a410aa9686cd085fbda07ee"},
      {1, 9, "41a54b11c6799fddde5d2d45726f28a0"},
      {1, 17, "4d9e55093bff46346ed580f5139411da"},
      {2, 0, "7eb07e2621bfdaecbdffffbdbba29c27"},
      {2, 9, "2320cf1de8b3a997e5c55ab7b096e0fe"},
      {2, 17, "69f1e71650d6fb1fd132c2bb22d43c3a"},
      {3, 0, "110f2fc0b041f69044774e49a81c6d51"},
      {3, 9, "310407637ad3db970034161bd626a4a6"},
      {3, 17, "ece69d35ca5fbb5d46e46450a0d6deaf"},
      {4, 0, "be9d1f053c95d48c7bf3396d06396ffc"},
      {4, 9, "706544a9ddba827316d1c828ce3915a0"},
      {4, 17, "5997c8d3938d57ea1c30e86bd9bb754c"},
      {5, 0, "cd7e1bd5e9bddc03710eb84b6aaeeae2"},
      {5, 9, "63664c7de8ee4b579da5b78f2f80b6d6"},
      {5, 17, "b484b480d1500fdd6adcf1862ea2381c"},
      {6, 0, "8a0e74662fd75bdba9831c81516aa0d9"},
      {6, 9, "a0c70ad7ea31654803fd43adaf9de46a"},
      {6, 17, "4afa5b93215dddeac997ca7a4f639718"},
      {7, 0, "c8b9898b2a30d33db67389b337dd57b1"},
      {7, 9, "b361837524a94d847275e22756fd3398"},
      {7, 17, "90cb44e330fcd576c437486f822a3503"},
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
    /* the same key from the documented encoding */
    const char *m = method != NULL ? method : "GET";
    const char *f[3] = {m, urls[u], body};
    size_t fl[3] = {strlen(m), strlen(urls[u]), rows[i].body_len};
    unsigned char enc[256];
    size_t n = 0;
    for (int j = 0; j < 3; j++) {
      for (int b = 0; b < 8; b++)
        enc[n++] = (unsigned char)((uint64_t)fl[j] >> (8 * b));
      memcpy(enc + n, f[j], fl[j]);
      n += fl[j];
    }
    XXH128_hash_t h = XXH3_128bits(enc, n);
    unsigned char want[16];
    for (int b = 0; b < 8; b++) {
      want[b] = (unsigned char)(h.low64 >> (8 * b));
      want[8 + b] = (unsigned char)(h.high64 >> (8 * b));
    }
    FT_CHECK(memcmp(k, want, 16) == 0);
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
