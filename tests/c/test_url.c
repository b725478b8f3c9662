/* test_url.c - unit tests for core/url.c: resolution, normalisation and
 * host extraction, the input URL check, as tables of input and exact
 * expected output or error. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ft_test.h"
#include "ft_trace.h"
#include "url.h"

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

#define BASE "http://Ex.com/d/e/f.html?x=1#top"

/* ---- ft_url_resolve ----------------------------------------------------- */

FT_TEST(test_resolve) {
  static const struct {
    const char *name;
    const char *base;
    const char *ref;
    int want_rc;
    const char *want; /* the URL, or the error message */
  } rows[] = {
      {"relative path", BASE, "a/b", 0, "http://ex.com/d/e/a/b"},
      {"parent", BASE, "../x", 0, "http://ex.com/d/x"},
      {"parent above root", BASE, "../../../../x", 0, "http://ex.com/x"},
      {"dot", BASE, ".", 0, "http://ex.com/d/e/"},
      {"absolute path", BASE, "/abs", 0, "http://ex.com/abs"},
      {"query only keeps path", BASE, "?q=1", 0, "http://ex.com/d/e/f.html?q=1"},
      {"fragment only is the base", BASE, "#frag", 0,
       "http://ex.com/d/e/f.html?x=1"},
      {"empty is the base", BASE, "", 0, "http://ex.com/d/e/f.html?x=1"},
      {"blank is the base", BASE, "  \t", 0, "http://ex.com/d/e/f.html?x=1"},
      {"network path", BASE, "//other.host/p", 0, "http://other.host/p"},
      {"network path keeps base scheme", "https://a.com/", "//b.com/p", 0,
       "https://b.com/p"},
      {"absolute replaces base", BASE, "https://b.org/x?y#z", 0,
       "https://b.org/x?y"},
      {"normalised", BASE, "HTTP://Example.COM:80/a/./b/../c#f", 0,
       "http://example.com/a/c"},
      {"no base, absolute", NULL, "HTTP://Example.COM:80/a/./b/../c#f", 0,
       "http://example.com/a/c"},
      {"https default port dropped", NULL, "https://A.com:443/x", 0,
       "https://a.com/x"},
      {"https on port 80 kept", NULL, "https://a.com:80/x", 0,
       "https://a.com:80/x"},
      {"http on port 443 kept", NULL, "http://a.com:443/x", 0,
       "http://a.com:443/x"},
      {"non-default port kept", NULL, "http://a.com:8080/x", 0,
       "http://a.com:8080/x"},
      {"leading zeros in default port", NULL, "http://a.com:0080/", 0,
       "http://a.com/"},
      {"base default port dropped", "https://a.com:443/d/", "x", 0,
       "https://a.com/d/x"},
      {"empty path becomes /", NULL, "http://a.com", 0, "http://a.com/"},
      {"empty path with query", NULL, "http://a.com?q", 0, "http://a.com/?q"},
      {"userinfo kept", NULL, "http://u:p@A.com/", 0, "http://u:p@a.com/"},
      {"ipv6 default port", NULL, "http://[::1]:80/", 0, "http://[::1]/"},
      {"escapes kept as written", NULL, "http://a.com/%7euser/%2F", 0,
       "http://a.com/%7euser/%2F"},
      {"space in relative path and query", BASE, "a b?q=c d", 0,
       "http://ex.com/d/e/a%20b?q=c%20d"},
      {"space in absolute URL", NULL, "http://a.com/a b?q=c d#e f", 0,
       "http://a.com/a%20b?q=c%20d"},
      {"surrounding whitespace trimmed", BASE, " \n /x \r\n", 0,
       "http://ex.com/x"},
      {"tab and newline inside removed", BASE, "/a\tb\nc", 0,
       "http://ex.com/abc"},
      {"non-ASCII relative", BASE, "caf\xc3\xa9", 0,
       "http://ex.com/d/e/caf%c3%a9"},
      {"non-ASCII absolute", NULL, "http://a.com/caf\xc3\xa9", 0,
       "http://a.com/caf%c3%a9"},
      {"mailto rejected", BASE, "mailto:x@y", FT_EINVAL,
       "scheme not allowed: mailto"},
      {"javascript rejected", BASE, "javascript:void(0)", FT_EINVAL,
       "scheme not allowed: javascript"},
      {"upper-case scheme named in lower case", BASE, " JavaScript:x",
       FT_EINVAL, "scheme not allowed: javascript"},
      {"data rejected", BASE, "data:text/html,hi", FT_EINVAL,
       "scheme not allowed: data"},
      {"ftp rejected", BASE, "ftp://a.com/", FT_EINVAL,
       "scheme not allowed: ftp"},
      {"file rejected", NULL, "file:///etc/passwd", FT_EINVAL,
       "scheme not allowed: file"},
      {"relative on an ftp base rejected", "ftp://a.com/d/", "x", FT_EINVAL,
       "scheme not allowed: ftp"},
      {"relative without base", NULL, "/rel", FT_EINVAL,
       "not an absolute URL: /rel"},
      {"empty without base", NULL, "", FT_EINVAL, "not an absolute URL: "},
      {"no host", BASE, "http://", FT_EINVAL, "invalid URL: No host part in the URL"},
      {"bad base", "http://", "x", FT_EINVAL,
       "invalid base URL: No host part in the URL"},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    char *out = NULL;
    char err[256] = "";
    int rc = ft_url_resolve(rows[i].base, rows[i].ref, &out, err, sizeof err);
    const char *got = rc == 0 ? out : err;
    if (rc != rows[i].want_rc || strcmp(got, rows[i].want) != 0) {
      fprintf(stderr, "  row \"%s\": want %d \"%s\", got %d \"%s\"\n",
              rows[i].name, rows[i].want_rc, rows[i].want, rc, got);
      ft_test_cur_failed_ = 1;
    }
    if (rc != 0)
      FT_CHECK(out == NULL);
    free(out);
  }
}

/* A NULL err buffer is allowed; *out is untouched on error. */
FT_TEST(test_resolve_null_err) {
  char *out = (char *)"untouched";
  FT_CHECK_EQ_INT(ft_url_resolve(NULL, "mailto:x", &out, NULL, 0), FT_EINVAL);
  FT_CHECK(strcmp(out, "untouched") == 0);
  FT_CHECK_EQ_INT(ft_url_resolve(NULL, NULL, &out, NULL, 0), FT_EINVAL);
  char small[8];
  FT_CHECK_EQ_INT(ft_url_resolve(NULL, "mailto:x", &out, small, sizeof small),
                  FT_EINVAL);
  FT_CHECK(strcmp(small, "scheme ") == 0);
}

/* Resolving an already normalised URL gives it back unchanged. */
FT_TEST(test_resolve_idempotent) {
  static const char *const urls[] = {
      "http://ex.com/d/e/f.html?x=1", "https://a.com:8443/a%20b?q=c%20d",
      "http://a.com/caf%c3%a9", "http://[::1]/",
  };
  for (size_t i = 0; i < N_ROWS(urls); i++) {
    char *out = NULL;
    FT_CHECK_EQ_INT(ft_url_resolve(NULL, urls[i], &out, NULL, 0), 0);
    FT_CHECK(out != NULL && strcmp(out, urls[i]) == 0);
    char *again = NULL;
    FT_CHECK_EQ_INT(ft_url_resolve(urls[i], "", &again, NULL, 0), 0);
    FT_CHECK(again != NULL && strcmp(again, urls[i]) == 0);
    free(out);
    free(again);
  }
}

/* ---- ft_url_host -------------------------------------------------------- */

FT_TEST(test_host) {
  static const struct {
    const char *url;
    int want_rc;
    const char *want;
  } rows[] = {
      {"http://Example.COM:8080/x", 0, "example.com"},
      {"https://a.b.c/", 0, "a.b.c"},
      {"HTTP://U:P@Host.Org", 0, "host.org"},
      {"http://[::1]:80/", 0, "[::1]"},
      {"http://127.0.0.1/", 0, "127.0.0.1"},
      {"ftp://files.example.com/x", 0, "files.example.com"},
      {" http://trim.me/ ", 0, "trim.me"},
      {"/relative", FT_EINVAL, NULL},
      {"example.com", FT_EINVAL, NULL},
      {"mailto:x@y", FT_EINVAL, NULL},
      {"http://", FT_EINVAL, NULL},
      {"", FT_EINVAL, NULL},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    char *out = NULL;
    int rc = ft_url_host(rows[i].url, &out);
    int ok = rc == rows[i].want_rc &&
             (rc != 0 || (out != NULL && strcmp(out, rows[i].want) == 0));
    if (!ok) {
      fprintf(stderr, "  row \"%s\": want %d \"%s\", got %d \"%s\"\n",
              rows[i].url, rows[i].want_rc, rows[i].want ? rows[i].want : "",
              rc, out ? out : "");
      ft_test_cur_failed_ = 1;
    }
    free(out);
  }
  char *out = NULL;
  FT_CHECK_EQ_INT(ft_url_host(NULL, &out), FT_EINVAL);
}

/* The host's place in a resolved URL, as ft_url_host reads it. */
FT_TEST(test_host_span) {
  static const char *const refs[] = {
      "http://Example.COM:8080/x", "HTTP://U:P@Host.Org", "http://[::1]:81/",
      "http://a:b@[fe80::1]/", "https://x.y/?q=@", "http://h/a@b:c",
      "http://u@h:99?x",
  };
  for (size_t i = 0; i < N_ROWS(refs); i++) {
    char *norm = NULL, *host = NULL;
    size_t off = 0, len = 0;
    FT_CHECK_EQ_INT(ft_url_resolve(NULL, refs[i], &norm, NULL, 0), 0);
    FT_CHECK_EQ_INT(ft_url_host(refs[i], &host), 0);
    if (norm && host) {
      ft_url_host_span(norm, &off, &len);
      FT_CHECK(len == strlen(host) && memcmp(norm + off, host, len) == 0);
    }
    free(norm);
    free(host);
  }
}

/* ---- ft_url_is_normal ---------------------------------------------------- */

/* When ft_url_is_normal says 1, the long way agrees: ft_url_resolve gives
 * the URL back unchanged and ft_url_host the same host. */
static int agrees_with_curl(const char *u) {
  size_t off = 0, len = 0;
  if (!ft_url_is_normal(u, strlen(u), &off, &len))
    return 1;
  char *out = NULL, *host = NULL;
  size_t soff = 0, slen = 0;
  int ok = ft_url_resolve(NULL, u, &out, NULL, 0) == 0 && strcmp(out, u) == 0 &&
           ft_url_host(u, &host) == 0 && strlen(host) == len &&
           memcmp(host, u + off, len) == 0;
  if (ok) {
    ft_url_host_span(out, &soff, &slen);
    ok = soff == off && slen == len;
  }
  if (!ok)
    fprintf(stderr, "  \"%s\": normal, but curl gives \"%s\" host \"%s\"\n",
            u, out ? out : "(error)", host ? host : "(error)");
  free(out);
  free(host);
  return ok;
}

FT_TEST(test_is_normal) {
  static const struct {
    const char *url;
    int want;
  } rows[] = {
      {"http://127.0.0.1:18555/item/1.json", 1},
      {"https://news.ycombinator.com/item?id=1&p=2", 1},
      {"http://a.com/x/y.z/~u/a%20b%7E?q=(1)+2,3;k=v:w@x/y?z", 1},
      {"https://a-b.c.d:8443/", 1},
      {"http://a.com/..x/.y/z..", 1},
      {"http://255.255.255.255/", 1},
      {"http://a/%2e%2e/b/%2E/c", 1}, /* escaped dots are not dot segments */
      {"http://a/b?x=/../y", 1},      /* nor are dots in the query */
      {"http://Ex.com/", 0},          /* host case */
      {"HTTP://ex.com/", 0},          /* scheme case */
      {"http://a.com", 0},            /* no path: curl adds "/" */
      {"http://a.com:80/", 0},        /* default port */
      {"https://a.com:443/", 0},
      {"http://a.com:080/", 0},       /* leading zero */
      {"http://a.com:/", 0},          /* empty port */
      {"http://a.com:99999/", 0},
      {"http://127.1/", 0},           /* curl writes 127.0.0.1 */
      {"http://0x7f.0.0.1/", 0},
      {"http://010.0.0.1/", 0},
      {"http://1.2.3.4.5/", 0},
      {"http://256.0.0.1/", 0},
      {"http://a/./b", 0},            /* dot segments */
      {"http://a/b/..", 0},
      {"http://a/b/../c?x", 0},
      {"http://a/b?", 0},             /* empty query */
      {"http://a/b#f", 0},            /* fragment */
      {"http://a/b c", 0},            /* space */
      {"http://a/caf\xc3\xa9", 0},   /* non-ASCII */
      {"http://a/%zz", 0},            /* bad escape */
      {"http://a/%4", 0},
      {"http://u:p@a/", 0},           /* user info */
      {"http://[::1]/", 0},           /* IPv6 */
      {"http://a/\"<>", 0},
      {"ftp://a/", 0},
      {" http://a/", 0},
      {"", 0},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    int got = ft_url_is_normal(rows[i].url, strlen(rows[i].url), NULL, NULL);
    if (got != rows[i].want) {
      fprintf(stderr, "  \"%s\": want %d, got %d\n", rows[i].url, rows[i].want,
              got);
      ft_test_cur_failed_ = 1;
    }
    FT_CHECK(agrees_with_curl(rows[i].url));
  }
  /* a NUL inside is never normal */
  FT_CHECK_EQ_INT(ft_url_is_normal("http://a/b\0c", 12, NULL, NULL), 0);
}

/* Generated URLs, many of them near the edges of the narrow form: every
 * one ft_url_is_normal accepts, curl leaves as it is. */
FT_TEST(test_is_normal_generated) {
  static const char *const schemes[] = {"http://", "https://", "HTTP://",
                                        "http:/"};
  static const char *const hosts[] = {
      "a.com",   "ex-1.org", "Ex.com",  "127.0.0.1", "127.1",    "1.2.3",
      "0.0.0.0", "a..b",     "-a.b",    "a.b.",      "0x10.1.1.1", "b_c.d",
      "xn--caf-dma.fr", "9.9.9.99", "01.2.3.4"};
  static const char *const ports[] = {"", "", "", ":8080", ":80", ":443",
                                      ":0", ":65535", ":65536", ":"};
  static const char good[] = "abcXYZ019-._~!$&'()*+,;=:@/?%..//";
  static const char bad[] = "#[]\"<> \\^`{|}\x7f\x01\xc3";
  uint64_t rng = 0x5eed1234abcdull;
  int normal = 0;
  for (int k = 0; k < 20000; k++) {
    char u[256];
    size_t n = (size_t)snprintf(u, sizeof(u), "%s%s%s",
                                schemes[rng_next(&rng) % N_ROWS(schemes)],
                                hosts[rng_next(&rng) % N_ROWS(hosts)],
                                ports[rng_next(&rng) % N_ROWS(ports)]);
    size_t len = rng_next(&rng) % 24;
    if (rng_next(&rng) % 8 != 0)
      u[n++] = '/';
    for (size_t j = 0; j < len; j++) {
      char c = rng_next(&rng) % 16 ? good[rng_next(&rng) % (sizeof(good) - 1)]
                                    : bad[rng_next(&rng) % (sizeof(bad) - 1)];
      if (c == '%' && rng_next(&rng) % 2) {
        static const char hex[] = "0123456789abcdefABCDEFg";
        u[n++] = '%';
        u[n++] = hex[rng_next(&rng) % (sizeof(hex) - 1)];
        c = hex[rng_next(&rng) % (sizeof(hex) - 1)];
      }
      u[n++] = c;
    }
    u[n] = '\0';
    normal += ft_url_is_normal(u, n, NULL, NULL);
    if (!agrees_with_curl(u)) {
      ft_test_cur_failed_ = 1;
      break;
    }
  }
  /* the generator reaches the accepting side often enough to mean it */
  FT_CHECK(normal > 1000);
  printf("# %d of 20000 generated URLs were normal\n", normal);
}

/* Every byte value in a path and in a host: accepted exactly when it is
 * one of the narrow form's characters, and then curl agrees. */
FT_TEST(test_is_normal_bytes) {
  static const char path_ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789-._~!$&'()*+,;=:@/?";
  static const char host_ok[] = "abcdefghijklmnopqrstuvwxyz0123456789-.";
  for (int c = 1; c < 256; c++) {
    char u[32];
    int n = snprintf(u, sizeof(u), "http://a.com/x%cy", c);
    int want = strchr(path_ok, c) != NULL;
    if (ft_url_is_normal(u, (size_t)n, NULL, NULL) != want) {
      fprintf(stderr, "  path byte 0x%02x: want %d\n", c, want);
      ft_test_cur_failed_ = 1;
    }
    FT_CHECK(agrees_with_curl(u));
    n = snprintf(u, sizeof(u), "http://a%cb.com/", c);
    /* ':' starts a port and '/' the path: both end the host */
    want = strchr(host_ok, c) != NULL;
    if (c != ':' && c != '/' &&
        ft_url_is_normal(u, (size_t)n, NULL, NULL) != want) {
      fprintf(stderr, "  host byte 0x%02x: want %d\n", c, want);
      ft_test_cur_failed_ = 1;
    }
    FT_CHECK(agrees_with_curl(u));
  }
}

/* ---- idempotence, and the policy host is the host connected to --------- */

/* The host curl connects to for the URL string u: what libcurl's transfer
 * code reads (url.c, parseurlandfillconn in 7.88: the same set flags, then
 * CURLUPART_HOST with no flags). malloc'd, or NULL when curl refuses u. */
static char *curl_host(const char *u) {
  CURLU *h = curl_url();
  char *host = NULL, *copy = NULL;
  if (h && curl_url_set(h, CURLUPART_URL, u,
                        CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) ==
               CURLUE_OK &&
      curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK)
    copy = strdup(host);
  curl_free(host);
  curl_url_cleanup(h);
  return copy;
}

/* For one input (ref against base): when it resolves, resolving the result
 * again gives it back, and the host fetchtree routes and filters by (the
 * span core.resolve returns) is the host curl connects to for that string.
 * Returns 1 when resolved, 0 when refused, -1 (and says why) on a failure. */
static int check_norm(const char *base, const char *ref) {
  char *n1 = NULL, *n2 = NULL, *ch = NULL;
  char err[256] = "";
  int ok = 1;
  if (ft_url_resolve(base, ref, &n1, err, sizeof err) != 0)
    return 0;
  if (ft_url_resolve(NULL, n1, &n2, err, sizeof err) != 0 ||
      strcmp(n1, n2) != 0) {
    fprintf(stderr, "  not idempotent: \"%s\" -> \"%s\" -> \"%s\"\n", ref, n1,
            n2 ? n2 : err);
    ok = 0;
  }
  size_t off = 0, len = 0;
  ft_url_host_span(n1, &off, &len);
  ch = curl_host(n1);
  if (!ch || strlen(ch) != len || memcmp(ch, n1 + off, len) != 0) {
    fprintf(stderr, "  \"%s\" -> \"%s\": policy host \"%.*s\", curl's \"%s\"\n",
            ref, n1, (int)len, n1 + off, ch ? ch : "(refused)");
    ok = 0;
  }
  /* the fast path, where it answers, agrees */
  size_t foff = 0, flen = 0;
  if (ft_url_is_normal(n1, strlen(n1), &foff, &flen) &&
      (foff != off || flen != len)) {
    fprintf(stderr, "  \"%s\": fast path host differs\n", n1);
    ok = 0;
  }
  free(n1);
  free(n2);
  free(ch);
  return ok ? 1 : -1;
}

/* The issue's examples and their neighbours: percent-encoded hosts that
 * decode to a number, escapes curl cannot decode in a host, zone IDs. */
FT_TEST(test_norm_examples) {
  static const struct {
    const char *ref;
    const char *want; /* the URL, or NULL: refused */
  } rows[] = {
      {"http://5%34", "http://0.0.0.54/"},
      {"http://5%34/x", "http://0.0.0.54/x"},
      {"http://0x7f.1/", "http://127.0.0.1/"},
      {"http://%31%32%37.1/", "http://127.0.0.1/"},
      {"http://1%2e2%2e3%2e4/", "http://1.2.3.4/"},
      {"http://o%6d/", "http://om/"},
      {"http://%41.com/", "http://a.com/"},
      {"http://o%m/", NULL},
      {"http://o%25m/", NULL},
      {"http://a%25b.com/", NULL},
      {"http://[fe80::1%25eth0]/", NULL},
      {"http://[::1]/", "http://[::1]/"},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    char *out = NULL;
    char err[256] = "";
    int rc = ft_url_resolve(NULL, rows[i].ref, &out, err, sizeof err);
    int ok = rows[i].want ? rc == 0 && strcmp(out, rows[i].want) == 0
                          : rc == FT_EINVAL && strncmp(err, "invalid URL: ", 13) == 0;
    if (!ok) {
      fprintf(stderr, "  \"%s\": want \"%s\", got %d \"%s\"\n", rows[i].ref,
              rows[i].want ? rows[i].want : "(refused)", rc, rc ? err : out);
      ft_test_cur_failed_ = 1;
    }
    FT_CHECK(check_norm(NULL, rows[i].ref) >= 0);
    free(out);
  }
}

/* Appends a random piece from list to u at *n. */
static void pick(char *u, size_t *n, const char *const *list, size_t count,
                 uint64_t *rng) {
  const char *p = list[rng_next(rng) % count];
  size_t l = strlen(p);
  memcpy(u + *n, p, l);
  *n += l;
}

/* Generated URLs and relative refs (fixed seed, 30,000 of them), with
 * hosts built from letters, digits, dots and escapes of those and of
 * bytes curl refuses, numeric IPv4 forms, IPv6, user info, ports, dot
 * segments and escapes in paths: every one that resolves is a fixed point,
 * and its policy host is curl's host. */
FT_TEST(test_norm_generated) {
  static const char *const schemes[] = {"http://", "https://", "HTTP://",
                                        "hTtPs://", "//"};
  static const char *const users[] = {"", "", "", "", "u@", "u:p@", "U%40x@",
                                      "a%3ab@", ":@"};
  static const char *const host_bits[] = {
      "a", "Z", "0", "1", "9", "x", ".", "-", "%2e", "%2E", "%30", "%35",
      "%41", "%6d", "%78", "%25", "%", "%zz", "%c3%a9", "\xc3\xa9", "0x",
      "127", "255", "256", "4294967295", "%20", "%2f", "%3a", "_"};
  static const char *const whole_hosts[] = {
      "[::1]", "[::FFFF:1.2.3.4]", "[fe80::1%25eth0]", "[FE80::A]",
      "127.1", "0x7f.0.0.1", "010.0.0.1", "1.2.3", "0", "a.b.", ""};
  static const char *const ports[] = {"", "", "", ":8080", ":80", ":443",
                                      ":0", ":65535", ":0080", ":"};
  static const char *const path_bits[] = {
      "/", "/", "a", "B", ".", "..", "%2e", "%2E%2e", "%41", "%7e", "%zz",
      "%", " ", "\xc3\xa9", "?", "&", "=", "#f", "@", ":", ";", "~", "+",
      "%00", "%25", "\\", "|"};
  static const char *const bases[] = {"http://Ex.com/d/e/f?x",
                                      "https://5%34/a/", "http://[::1]:81/"};
  uint64_t rng = 0x1d3a5f7e2b4c6d8full;
  int resolved = 0, failed = 0;
  for (int k = 0; k < 30000 && failed < 5; k++) {
    char u[512];
    size_t n = 0;
    int relative = rng_next(&rng) % 6 == 0;
    if (!relative) {
      pick(u, &n, schemes, N_ROWS(schemes) - 1, &rng);
      pick(u, &n, users, N_ROWS(users), &rng);
      if (rng_next(&rng) % 4 == 0) {
        pick(u, &n, whole_hosts, N_ROWS(whole_hosts), &rng);
      } else {
        size_t parts = 1 + rng_next(&rng) % 6;
        for (size_t j = 0; j < parts; j++)
          pick(u, &n, host_bits, N_ROWS(host_bits), &rng);
      }
      pick(u, &n, ports, N_ROWS(ports), &rng);
    } else if (rng_next(&rng) % 3 == 0) {
      memcpy(u, "//", 2);
      n = 2;
      size_t parts = 1 + rng_next(&rng) % 4;
      for (size_t j = 0; j < parts; j++)
        pick(u, &n, host_bits, N_ROWS(host_bits), &rng);
    }
    size_t segs = rng_next(&rng) % 8;
    for (size_t j = 0; j < segs; j++)
      pick(u, &n, path_bits, N_ROWS(path_bits), &rng);
    u[n] = '\0';
    const char *base = relative ? bases[rng_next(&rng) % N_ROWS(bases)] : NULL;
    int r = check_norm(base, u);
    if (r < 0) {
      failed++;
      ft_test_cur_failed_ = 1;
    }
    resolved += r > 0;
  }
  /* the generator reaches both sides often enough to mean it */
  FT_CHECK(resolved > 5000 && resolved < 29000);
  printf("# %d of 30000 generated URLs resolved\n", resolved);
}

/* ---- ft_url_check ------------------------------------------------------- */

FT_TEST(test_url_check) {
  static const struct {
    const char *url;
    int ok;
    const char *msg; /* a substring of the message, or NULL */
  } rows[] = {
      {"http://a/", 1, NULL},
      {"https://x.y:8080/p?q", 1, NULL},
      {"HTTP://A/", 1, NULL},
      {"HtTpS://example.com", 1, NULL},
      {"http://127.0.0.1:1/x#frag", 1, NULL},
      {"http://[::1]:8080/", 1, NULL},
      {"http://user:pw@host/", 1, NULL},
      {"file:///etc/passwd", 0, "scheme not allowed"},
      {"FILE:///etc/passwd", 0, "scheme not allowed"},
      {"ftp://x/", 0, NULL},
      {"gopher://x/", 0, NULL},
      {"not a url", 0, NULL},
      {"", 0, NULL},
      {"http://", 0, NULL},
      {"https://", 0, NULL},
      {"//a/", 0, NULL},
      {"/relative/path", 0, NULL},
      {"a/", 0, NULL},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    char err[256];
    memset(err, 'Z', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    int rc = ft_url_check(rows[i].url, err, sizeof(err));
    int bad = 0;
    if (rows[i].ok) {
      bad = rc != 0;
    } else {
      bad = rc >= 0 || err[0] == 'Z' || err[0] == '\0' ||
            (rows[i].msg && !strstr(err, rows[i].msg));
    }
    if (bad) {
      fprintf(stderr, "  \"%s\": want %s%s%s, got rc %d, message \"%s\"\n",
              rows[i].url, rows[i].ok ? "ok" : "rejected",
              rows[i].msg ? " with " : "", rows[i].msg ? rows[i].msg : "", rc,
              rc == 0 ? "" : err);
      ft_test_cur_failed_ = 1;
    }
  }
  /* the rejected scheme is named, and the error is FT_EINVAL */
  char err[128];
  FT_CHECK_EQ_INT(ft_url_check("file:///etc/passwd", err, sizeof(err)),
                  FT_EINVAL);
  FT_CHECK(strstr(err, "file") != NULL);
  FT_CHECK_EQ_INT(ft_url_check("ftp://x/", err, sizeof(err)), FT_EINVAL);
  /* a short message buffer is cut and stays terminated */
  char small[8];
  memset(small, 'Z', sizeof(small));
  FT_CHECK(ft_url_check("file:///x", small, sizeof(small)) < 0);
  FT_CHECK(memchr(small, '\0', sizeof(small)) != NULL);
  FT_CHECK(strcmp(small, "scheme ") == 0);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_resolve);
  FT_RUN(test_resolve_null_err);
  FT_RUN(test_resolve_idempotent);
  FT_RUN(test_host);
  FT_RUN(test_host_span);
  FT_RUN(test_is_normal);
  FT_RUN(test_is_normal_generated);
  FT_RUN(test_is_normal_bytes);
  FT_RUN(test_norm_examples);
  FT_RUN(test_norm_generated);
  FT_RUN(test_url_check);
  return FT_DONE();
}
