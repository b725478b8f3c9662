/* test_robots.c - robots.txt: RFC 9309's examples and Google's documented
 * precedence examples, as tables of (robots.txt, agent, path, expected). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ft_test.h"
#include "fetchtree.h"
#include "robots.h"

typedef struct tcase {
  const char *txt;
  const char *agent;
  const char *path;
  int allowed;
} tcase;

static int check(const char *txt, const char *agent, const char *path) {
  ft_robots *r = NULL;
  if (ft_robots_parse(txt, strlen(txt), agent, &r) != 0)
    return -1;
  int a = ft_robots_allowed(r, path, strlen(path));
  ft_robots_free(r);
  return a;
}

static void run_table(const tcase *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int got = check(t[i].txt, t[i].agent, t[i].path);
    if (got != t[i].allowed)
      fprintf(stderr, "  case %zu: agent %s path %s: got %d, want %d\n", i,
              t[i].agent ? t[i].agent : "(none)", t[i].path, got,
              t[i].allowed);
    FT_CHECK_EQ_INT(got, t[i].allowed);
  }
}

/* run_table over a whole array of cases */
#define RUN_TABLE(t) run_table((t), sizeof(t) / sizeof((t)[0]))

/* RFC 9309 5.1, "Simple Example" */
static const char *rfc_simple = "User-Agent: *\n"
                                "Disallow: *.gif$\n"
                                "Disallow: /example/\n"
                                "Allow: /publications/\n"
                                "\n"
                                "User-Agent: foobot\n"
                                "Disallow:/\n"
                                "Allow:/example/page.html\n"
                                "Allow:/example/allowed.gif\n"
                                "\n"
                                "User-Agent: barbot\n"
                                "User-Agent: bazbot\n"
                                "Disallow: /example/page.html\n"
                                "\n"
                                "User-Agent: quxbot\n"
                                "\n"
                                "EOF\n";

FT_TEST(rfc_simple_example) {
  const tcase t[] = {
      /* "*": everything but .gif files and /example/ */
      {rfc_simple, "otherbot", "/", 1},
      {rfc_simple, "otherbot", "/picture.gif", 0},
      {rfc_simple, "otherbot", "/picture.gif?x=1", 1}, /* $ ends the path */
      {rfc_simple, "otherbot", "/example/", 0},
      {rfc_simple, "otherbot", "/example/page.html", 0},
      {rfc_simple, "otherbot", "/publications/", 1},
      {rfc_simple, NULL, "/example/x", 0},
      /* foobot: only the two allowed pages */
      {rfc_simple, "foobot", "/", 0},
      {rfc_simple, "foobot", "/example/page.html", 1},
      {rfc_simple, "foobot", "/example/allowed.gif", 1},
      {rfc_simple, "foobot", "/example/other.html", 0},
      {rfc_simple, "FooBot", "/example/page.html", 1}, /* case-insensitive */
      {rfc_simple, "foo", "/example/", 0},             /* not a prefix match */
      /* barbot and bazbot share one group */
      {rfc_simple, "barbot", "/example/page.html", 0},
      {rfc_simple, "bazbot", "/example/page.html", 0},
      {rfc_simple, "bazbot", "/example/other.html", 1},
      {rfc_simple, "bazbot", "/picture.gif", 1}, /* not the "*" group */
      /* quxbot: a group with no rules allows everything */
      {rfc_simple, "quxbot", "/example/page.html", 1},
      {rfc_simple, "quxbot", "/picture.gif", 1},
  };
  RUN_TABLE(t);
}

/* RFC 9309 5.2, "Longest Match" */
FT_TEST(rfc_longest_match) {
  const char *txt = "User-Agent: foobot\n"
                    "Allow: /example/page/\n"
                    "Disallow: /example/page/disallowed.gif\n";
  const tcase t[] = {
      {txt, "foobot", "/example/page/", 1},
      {txt, "foobot", "/example/page/allowed.gif", 1},
      {txt, "foobot", "/example/page/disallowed.gif", 0},
      {txt, "foobot", "/example/page/disallowed.gif?x", 0},
  };
  RUN_TABLE(t);
}

/* RFC 9309 2.2.2 and 2.2.3: percent-encoding, "*" and "$" */
FT_TEST(rfc_encoding_and_special_characters) {
  const char *txt = "User-agent: *\n"
                    "Disallow: /foo/bar/%E3%83%84\n"
                    "Disallow: /baz/%62%61%7A\n"
                    "Disallow: /path/file-with-a-%2A.html\n"
                    "Disallow: /path/foo-%24\n"
                    "Disallow: /this/path/exactly$\n"
                    "Disallow: /this/*/exactly\n"
                    "Disallow: /raw/\xE3\x83\x84\n"
                    "Disallow: /lower/%e3%83%84\n";
  const tcase t[] = {
      {txt, NULL, "/foo/bar/\xE3\x83\x84", 0},   /* raw UTF-8 in the path */
      {txt, NULL, "/foo/bar/%E3%83%84", 0},
      {txt, NULL, "/foo/bar/%e3%83%84", 0},      /* hex case */
      {txt, NULL, "/baz/baz", 0},                /* unreserved decoded */
      {txt, NULL, "/baz/%62az", 0},
      {txt, NULL, "/path/file-with-a-*.html", 0},
      {txt, NULL, "/path/file-with-a-x.html", 1}, /* %2A is not a wildcard */
      {txt, NULL, "/path/foo-$", 0},
      {txt, NULL, "/path/foo-", 1},
      {txt, NULL, "/this/path/exactly", 0},
      {txt, NULL, "/this/path/exactly/not", 0}, /* the "*" rule, a prefix */
      {"user-agent: *\ndisallow: /exact$\n", NULL, "/exact/not", 1},
      {"user-agent: *\ndisallow: /exact$\n", NULL, "/exact", 0},
      {"user-agent: *\ndisallow: /a$b\n", NULL, "/a$b", 0}, /* inner $ */
      {"user-agent: *\ndisallow: /a$b\n", NULL, "/a", 1},
      {txt, NULL, "/this/a/b/exactly", 0},
      {txt, NULL, "/this/exactly", 1},
      {txt, NULL, "/raw/%E3%83%84", 0},           /* raw UTF-8 in the rule */
      {txt, NULL, "/lower/\xE3\x83\x84", 0},
  };
  RUN_TABLE(t);
}

/* Google's documented precedence examples ("Order of precedence for
 * rules", developers.google.com/search/docs/crawling-indexing/robots/
 * robots_txt): the longest rule wins, Allow on a tie. */
FT_TEST(google_precedence) {
  const tcase t[] = {
      {"user-agent: *\nallow: /p\ndisallow: /\n", NULL, "/page", 1},
      {"user-agent: *\nallow: /folder\ndisallow: /folder\n", NULL,
       "/folder/page", 1},
      {"user-agent: *\nallow: /page\ndisallow: /*.htm\n", NULL, "/page.htm", 0},
      {"user-agent: *\nallow: /page\ndisallow: /*.ph\n", NULL, "/page.php5",
       1},
      {"user-agent: *\nallow: /$\ndisallow: /\n", NULL, "/", 1},
      {"user-agent: *\nallow: /$\ndisallow: /\n", NULL, "/page.htm", 0},
  };
  RUN_TABLE(t);
}

/* Google's examples of path matching: "/fish*" is "/fish", "*.php$", ... */
FT_TEST(google_path_matching) {
  const tcase t[] = {
      {"user-agent: *\ndisallow: /fish\n", NULL, "/fish", 0},
      {"user-agent: *\ndisallow: /fish\n", NULL, "/fish.html", 0},
      {"user-agent: *\ndisallow: /fish\n", NULL, "/fish/salmon.html", 0},
      {"user-agent: *\ndisallow: /fish\n", NULL, "/fishheads", 0},
      {"user-agent: *\ndisallow: /fish\n", NULL, "/fish.php?id=anything", 0},
      {"user-agent: *\ndisallow: /fish\n", NULL, "/Fish.asp", 1},
      {"user-agent: *\ndisallow: /fish\n", NULL, "/catfish", 1},
      {"user-agent: *\ndisallow: /fish*\n", NULL, "/fishheads/yummy.html", 0},
      {"user-agent: *\ndisallow: /fish/\n", NULL, "/fish", 1},
      {"user-agent: *\ndisallow: /fish/\n", NULL, "/fish/?id=anything", 0},
      {"user-agent: *\ndisallow: /*.php\n", NULL, "/index.php", 0},
      {"user-agent: *\ndisallow: /*.php\n", NULL, "/filename.php?parameters", 0},
      {"user-agent: *\ndisallow: /*.php\n", NULL, "/windows.PHP", 1},
      {"user-agent: *\ndisallow: /*.php$\n", NULL, "/folder/filename.php", 0},
      {"user-agent: *\ndisallow: /*.php$\n", NULL, "/filename.php?parameters", 1},
      {"user-agent: *\ndisallow: /*.php$\n", NULL, "/filename.php5", 1},
      {"user-agent: *\ndisallow: /fish*.php\n", NULL, "/fishheads/catfish.php?parameters", 0},
      {"user-agent: *\ndisallow: /fish*.php\n", NULL, "/Fish.PHP", 1},
      {"user-agent: *\ndisallow: /\n", NULL, "", 0}, /* no path is "/" */
      {"user-agent: *\ndisallow: *\n", NULL, "/x", 0},
  };
  RUN_TABLE(t);
}

/* Groups: merging, most specific group, rules outside groups, comments,
 * line endings, keys in any case, /robots.txt always allowed. */
FT_TEST(groups_and_syntax) {
  const char *merge = "user-agent: a\ndisallow: /x\n\n"
                      "user-agent: *\ndisallow: /y\n\n"
                      "user-agent: A\ndisallow: /z\n";
  const char *crlf = "User-Agent: fetchtree # ours\r\nDisallow: /a # c\r\n"
                     "\r\nUser-Agent: *\rDisallow: /b\r";
  const char *orphan = "Disallow: /orphan\nUser-agent: *\nDisallow: /b\n";
  const char *ends = "user-agent: a\nallow: /\nuser-agent: b\ndisallow: /\n";
  const char *none = "user-agent: other\ndisallow: /\n";
  const char *all = "user-agent: *\ndisallow: /\n";
  const char *bom = "\xEF\xBB\xBFuser-agent: *\ndisallow: /bom\n";
  const char *ver = "User-agent: fetchtree/1.0\nDisallow: /v\n";
  const tcase t[] = {
      {merge, "a", "/x", 0},
      {merge, "a", "/z", 0}, /* both "a" groups apply */
      {merge, "a", "/y", 1}, /* "*" does not when a group names us */
      {merge, "b", "/y", 0},
      {merge, "b", "/x", 1},
      {crlf, "fetchtree", "/a", 0},
      {crlf, "fetchtree", "/b", 1},
      {crlf, "other", "/b", 0},
      {crlf, "other", "/a", 1},
      {orphan, "x", "/orphan", 1},
      {orphan, "x", "/b", 0},
      {ends, "b", "/x", 0}, /* a rule line ended a's agent lines */
      {ends, "a", "/x", 1},
      {none, "x", "/anything", 1}, /* no group and no "*": no rules */
      {all, "x", "/robots.txt", 1},
      {all, "x", "/robots.txt.bak", 0},
      {bom, "x", "/bom", 0},
      {ver, "fetchtree", "/v", 0}, /* "fetchtree/1.0" names fetchtree */
  };
  RUN_TABLE(t);
}

FT_TEST(crawl_delay_and_statuses) {
  const char *txt = "User-agent: *\nCrawl-delay: 2.5\nDisallow: /x\n"
                    "User-agent: slow\nCrawl-delay: 10\n";
  ft_robots *r = NULL;
  FT_CHECK_EQ_INT(ft_robots_parse(txt, strlen(txt), "any", &r), 0);
  FT_CHECK(ft_robots_crawl_delay(r) == 2.5);
  ft_robots_free(r);
  FT_CHECK_EQ_INT(ft_robots_parse(txt, strlen(txt), "slow", &r), 0);
  FT_CHECK(ft_robots_crawl_delay(r) == 10);
  FT_CHECK_EQ_INT(ft_robots_allowed(r, "/x", 2), 1);
  ft_robots_free(r);
  /* 2xx parses, 3xx and 4xx allow all, 5xx and no answer disallow all */
  const long statuses[] = {200, 301, 404, 403, 500, 503, 0};
  const int allowed[] = {0, 1, 1, 1, 0, 0, 0};
  for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
    FT_CHECK_EQ_INT(ft_robots_from_status(statuses[i], txt, strlen(txt),
                                          "any", &r), 0);
    FT_CHECK_EQ_INT(ft_robots_allowed(r, "/x", 2), allowed[i]);
    FT_CHECK_EQ_INT(ft_robots_allowed(r, "/robots.txt", 11), 1);
    ft_robots_free(r);
  }
}

/* Only the first 500 KiB are parsed: a rule past it does not count, nor
 * does the line the limit cuts. */
FT_TEST(size_limit) {
  size_t pad = FT_ROBOTS_MAX_BYTES;
  const char *head = "User-agent: *\nDisallow: /early\n";
  const char *tail = "\nDisallow: /late\n";
  size_t n = strlen(head) + pad + strlen(tail);
  char *txt = malloc(n + 1);
  FT_CHECK(txt != NULL);
  if (!txt)
    return;
  strcpy(txt, head);
  memset(txt + strlen(head), '#', pad); /* one long comment line */
  strcpy(txt + strlen(head) + pad, tail);
  ft_robots *r = NULL;
  FT_CHECK_EQ_INT(ft_robots_parse(txt, n, NULL, &r), 0);
  FT_CHECK_EQ_INT(ft_robots_allowed(r, "/early", 6), 0);
  FT_CHECK_EQ_INT(ft_robots_allowed(r, "/late", 5), 1);
  ft_robots_free(r);
  free(txt);
}

FT_TEST(product_token) {
  char buf[32];
  FT_CHECK_EQ_INT(ft_robots_product("fetchtree/0.1.0", buf, sizeof(buf)), 9);
  FT_CHECK_EQ_STR(buf, "fetchtree");
  FT_CHECK_EQ_INT(ft_robots_product("My_Bot-2 (x)", buf, sizeof(buf)), 7);
  FT_CHECK_EQ_STR(buf, "My_Bot-");
  FT_CHECK_EQ_INT(ft_robots_product("", buf, sizeof(buf)), 0);
  FT_CHECK_EQ_STR(buf, "");
}

FT_TEST(origins) {
  char o[64];
  const char *p;
  size_t pn;
  FT_CHECK_EQ_INT(ft_robots_origin("HTTP://User:pw@Example.COM:80/a/b?q#f", o,
                                   sizeof(o), &p, &pn), 0);
  FT_CHECK_EQ_STR(o, "http://example.com");
  FT_CHECK(pn == 6 && memcmp(p, "/a/b?q", 6) == 0);
  FT_CHECK_EQ_INT(ft_robots_origin("https://h:8443", o, sizeof(o), &p, &pn), 0);
  FT_CHECK_EQ_STR(o, "https://h:8443");
  FT_CHECK_EQ_INT((int)pn, 0);
  FT_CHECK_EQ_INT(ft_robots_origin("https://[::1]:443/x", o, sizeof(o), &p, &pn), 0);
  FT_CHECK_EQ_STR(o, "https://[::1]");
  FT_CHECK_EQ_INT(ft_robots_origin("http://127.0.0.1:5000?x", o, sizeof(o), &p, &pn), 0);
  FT_CHECK_EQ_STR(o, "http://127.0.0.1:5000");
  FT_CHECK(pn == 2 && memcmp(p, "?x", 2) == 0);
  FT_CHECK_EQ_INT(ft_robots_origin("ftp://h/", o, sizeof(o), &p, &pn), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_robots_origin("http:///x", o, sizeof(o), &p, &pn), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_robots_origin("http://a-long-host/", o, 8, &p, &pn), FT_ERANGE);
}

FT_TEST(cache) {
  ft_robots_cache *c = ft_robots_cache_new();
  FT_CHECK(c != NULL);
  if (!c)
    return;
  FT_CHECK_EQ_INT(ft_robots_cache_check(c, "http://a/x"), FT_ROBOTS_UNKNOWN);
  char name[64];
  for (int i = 0; i < 100; i++) { /* enough to grow the table */
    ft_robots *r = NULL;
    const char *txt = "user-agent: *\ndisallow: /x\n";
    FT_CHECK_EQ_INT(ft_robots_parse(txt, strlen(txt), NULL, &r), 0);
    snprintf(name, sizeof(name), "http://h%d", i);
    FT_CHECK_EQ_INT(ft_robots_cache_put(c, name, r), 0);
  }
  FT_CHECK_EQ_INT(ft_robots_cache_check(c, "http://H7/x"), FT_ROBOTS_DISALLOW);
  FT_CHECK_EQ_INT(ft_robots_cache_check(c, "http://h7:80/y"), FT_ROBOTS_ALLOW);
  FT_CHECK_EQ_INT(ft_robots_cache_check(c, "http://h7:81/y"), FT_ROBOTS_UNKNOWN);
  FT_CHECK_EQ_INT(ft_robots_cache_check(c, "mailto:x"), FT_ROBOTS_UNKNOWN);
  ft_robots *all = NULL;
  FT_CHECK_EQ_INT(ft_robots_new_all(1, &all), 0);
  FT_CHECK_EQ_INT(ft_robots_cache_put(c, "http://h7", all), 0); /* replaces */
  FT_CHECK_EQ_INT(ft_robots_cache_check(c, "http://h7/x"), FT_ROBOTS_ALLOW);
  FT_CHECK_EQ_INT(ft_robots_cache_put(c, "http://h7", NULL), 0); /* forgets */
  FT_CHECK_EQ_INT(ft_robots_cache_check(c, "http://h7/x"), FT_ROBOTS_UNKNOWN);
  FT_CHECK_EQ_INT(ft_robots_cache_check(c, "http://h99/x"), FT_ROBOTS_DISALLOW);
  /* the engine's hook: requests without the cache are not checked */
  ft_request req;
  memset(&req, 0, sizeof(req));
  FT_CHECK_EQ_INT(ft_robots_url_check(NULL, &req, "http://h1/x"), 0);
  req.udata = c;
  FT_CHECK(ft_robots_url_check(NULL, &req, "http://h1/x") != 0);
  FT_CHECK(ft_robots_url_check(NULL, &req, "http://unknown/x") != 0);
  FT_CHECK_EQ_INT(ft_robots_url_check(NULL, &req, "http://h1/y"), 0);
  ft_robots_cache_free(c);
}

int main(void) {
  FT_RUN(rfc_simple_example);
  FT_RUN(rfc_longest_match);
  FT_RUN(rfc_encoding_and_special_characters);
  FT_RUN(google_precedence);
  FT_RUN(google_path_matching);
  FT_RUN(groups_and_syntax);
  FT_RUN(crawl_delay_and_statuses);
  FT_RUN(size_limit);
  FT_RUN(product_token);
  FT_RUN(origins);
  FT_RUN(cache);
  return FT_DONE();
}
