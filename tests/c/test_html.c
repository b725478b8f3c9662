/* test_html.c - unit tests for core/html.c: link extraction and XPath over
 * HTML and XML, as tables of input and exact expected output or error, with
 * stderr watched to prove libxml2 prints nothing. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/globals.h>
#include <libxml/xmlerror.h>

#include "error.h"
#include "ft_test.h"
#include "html.h"

/* A string literal and its length, NUL bytes included. */
#define L(s) s, sizeof(s) - 1

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

#define PAGE "http://ex.com/d/page.html"

/* ---- helpers ------------------------------------------------------------ */

/* fd 2 is pointed at a temporary file between quiet_begin and quiet_end;
 * quiet_end returns how many bytes were written to it. */
static int quiet_saved_fd_ = -1;
static FILE *quiet_file_;

static void quiet_begin(void) {
  fflush(stderr);
  quiet_file_ = tmpfile();
  quiet_saved_fd_ = dup(2);
  if (quiet_file_ != NULL && quiet_saved_fd_ >= 0)
    dup2(fileno(quiet_file_), 2);
}

static long quiet_end(void) {
  fflush(stderr);
  long n = -1;
  if (quiet_saved_fd_ >= 0) {
    dup2(quiet_saved_fd_, 2);
    close(quiet_saved_fd_);
  }
  if (quiet_file_ != NULL) {
    struct stat st;
    if (fstat(fileno(quiet_file_), &st) == 0)
      n = (long)st.st_size;
    fclose(quiet_file_);
  }
  quiet_file_ = NULL;
  quiet_saved_fd_ = -1;
  return n;
}

/* Joins a list with "\n" into a static buffer. */
static const char *joined(const ft_strlist *l) {
  static char buf[8192];
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < l->n; i++) {
    int w = snprintf(buf + off, sizeof buf - off, "%s%s", i ? "\n" : "",
                     l->items[i]);
    if (w < 0 || (size_t)w >= sizeof buf - off)
      break;
    off += (size_t)w;
  }
  return buf;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- ft_html_links ------------------------------------------------------ */

FT_TEST(test_links) {
  static const struct {
    const char *name;
    const char *body;
    size_t len;
    const char *page;
    const char *want; /* URLs joined with "\n" */
  } rows[] = {
      {"a and area", L("<a href=\"/x\">x</a><map><area href=\"y.html\"></map>"),
       PAGE, "http://ex.com/x\nhttp://ex.com/d/y.html"},
      {"relative and absolute",
       L("<p><a href='https://o.org/a'>1</a> <a href='../up'>2</a>"
         "<a href='q?z=1'>3</a>"),
       PAGE, "https://o.org/a\nhttp://ex.com/up\nhttp://ex.com/d/q?z=1"},
      {"base href relative to page",
       L("<html><head><base href=\"/b/\"></head><body><a href=\"c\">c</a>"),
       PAGE, "http://ex.com/b/c"},
      {"base applies to earlier links too",
       L("<a href=\"c\">c</a><base href=\"http://other.com/z/\">"), PAGE,
       "http://other.com/z/c"},
      {"first base with href wins",
       L("<base target=_blank><base href=\"/one/\"><base href=\"/two/\">"
         "<a href=c>c</a>"),
       PAGE, "http://ex.com/one/c"},
      {"bad base falls back to page",
       L("<base href=\"javascript:x\"><a href=c>c</a>"), PAGE,
       "http://ex.com/d/c"},
      {"fragments dropped",
       L("<a href=\"#top\">t</a><a href=\"/p#s\">p</a><a href=\"/p#t\">p</a>"),
       PAGE, "http://ex.com/d/page.html\nhttp://ex.com/p"},
      {"duplicates once, in first-seen order",
       L("<a href=/x></a><a href=/y></a><a href=\"/x#a\"></a>"
         "<a href=\"HTTP://EX.com:80/x\"></a><area href=/./y>"),
       PAGE, "http://ex.com/x\nhttp://ex.com/y"},
      {"other schemes skipped",
       L("<a href=\"mailto:x@y\">m</a><a href=\"javascript:void(0)\">j</a>"
         "<a href=\"tel:123\">t</a><a href=\"ftp://f.com/\">f</a>"
         "<a href=\"data:text/html,hi\">d</a><a href=\"/ok\">ok</a>"),
       PAGE, "http://ex.com/ok"},
      {"no href, empty href",
       L("<a name=x>n</a><a href=\"\">self</a>"), PAGE,
       "http://ex.com/d/page.html"},
      {"upper-case tags and attributes", L("<A HREF=\"/u\">u</A><AREA Href=/v>"),
       PAGE, "http://ex.com/u\nhttp://ex.com/v"},
      {"entities decoded", L("<a href=\"/q?a=1&amp;b=2\">q</a>"), PAGE,
       "http://ex.com/q?a=1&b=2"},
      {"whitespace around href", L("<a href=\"  /w\n \">w</a>"), PAGE,
       "http://ex.com/w"},
      {"space inside href", L("<a href=\"my file.pdf\">f</a>"), PAGE,
       "http://ex.com/d/my%20file.pdf"},
      {"only a and area count",
       L("<link href=/css><img src=/i><script src=/s></script>"
         "<!-- <a href=/comment> --><a href=/real>r</a>"),
       PAGE, "http://ex.com/real"},
      {"no page url: only absolute links",
       L("<a href=/rel>r</a><a href=\"http://abs.com/x\">a</a>"), NULL,
       "http://abs.com/x"},
      {"no page url, absolute base",
       L("<base href=\"https://b.com/d/\"><a href=rel>r</a>"), NULL,
       "https://b.com/d/rel"},
      {"malformed HTML still yields links",
       L("<html><body><a href=/one>1<a href=/two>2</b></i><table><tr>"
         "<a href='/three'<div><a href=\"/four\""),
       PAGE,
       "http://ex.com/one\nhttp://ex.com/two\nhttp://ex.com/three\n"
       "http://ex.com/four"},
      /* the value runs to the end; curl leaves < and > unencoded */
      {"unclosed attribute quote", L("<a href=\"/x>x</a><a href=/y>y</a>"),
       PAGE, "http://ex.com/x>x</a><a%20href=/y>y</a>"},
      {"empty body", L(""), PAGE, ""},
      {"text only", L("just some text"), PAGE, ""},
      {"binary garbage with NULs", L("\x00\xff\xfe<\x01a href=/g>\x00</a>"),
       PAGE, ""},
      {"non-ASCII href", L("<meta charset=utf-8><a href=\"/caf\xc3\xa9\">c</a>"),
       PAGE, "http://ex.com/caf%c3%a9"},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    ft_strlist l = {0};
    quiet_begin();
    int rc = ft_html_links(rows[i].body, rows[i].len, rows[i].page, &l);
    long printed = quiet_end();
    const char *got = joined(&l);
    if (rc != 0 || printed != 0 || strcmp(got, rows[i].want) != 0) {
      fprintf(stderr,
              "  row \"%s\": rc %d, stderr %ld bytes\n    want: %s\n    got:  %s\n",
              rows[i].name, rc, printed, rows[i].want, got);
      ft_test_cur_failed_ = 1;
    }
    ft_strlist_free(&l);
  }
}

/* Links are appended after what the list already holds. */
FT_TEST(test_links_append) {
  ft_strlist l = {0};
  FT_CHECK_EQ_INT(ft_strlist_push(&l, L("first")), 0);
  FT_CHECK_EQ_INT(ft_html_links(L("<a href=/a>a</a>"), PAGE, &l), 0);
  FT_CHECK(strcmp(joined(&l), "first\nhttp://ex.com/a") == 0);
  FT_CHECK_EQ_INT(ft_html_links(NULL, 0, PAGE, &l), 0);
  FT_CHECK_EQ_INT(l.n, 2);
  FT_CHECK_EQ_INT(ft_html_links(NULL, 1, PAGE, &l), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_html_links("x", 1, PAGE, NULL), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_html_links("x", (size_t)INT_MAX + 1, PAGE, &l), FT_ERANGE);
  FT_CHECK_EQ_INT(l.n, 2);
  ft_strlist_free(&l);
}

/* A big page: 40,000 links (half of them duplicates) inside 10,000 unclosed
 * <div>s (past libxml2's default depth limit of 256), quickly and quietly. */
FT_TEST(test_links_big) {
  size_t n_links = 40000, depth = 10000;
  size_t cap = n_links * 32 + depth * 10 + 64;
  char *body = malloc(cap);
  FT_CHECK(body != NULL);
  if (body == NULL)
    return;
  size_t len = 0;
  for (size_t i = 0; i < depth; i++)
    len += (size_t)snprintf(body + len, cap - len, "<div>");
  for (size_t i = 0; i < n_links; i++)
    len += (size_t)snprintf(body + len, cap - len, "<a href=/p%zu>x</a>",
                            i % (n_links / 2));
  ft_strlist l = {0};
  double t0 = now_s();
  quiet_begin();
  int rc = ft_html_links(body, len, PAGE, &l);
  long printed = quiet_end();
  double dt = now_s() - t0;
  FT_CHECK_EQ_INT(rc, 0);
  FT_CHECK_EQ_INT(printed, 0);
  FT_CHECK_EQ_INT(l.n, n_links / 2);
  FT_CHECK(l.n > 0 && strcmp(l.items[0], "http://ex.com/p0") == 0);
  FT_CHECK(l.n == n_links / 2 &&
           strcmp(l.items[l.n - 1], "http://ex.com/p19999") == 0);
  FT_CHECK(dt < 2.0);
  ft_strlist_free(&l);
  free(body);
}

/* ---- ft_xpath ----------------------------------------------------------- */

#define HTML_DOC                                                              \
  "<!DOCTYPE html><html><head><title>Hello</title></head><body>"              \
  "<h1>Head <i>line</i></h1><p class=x>one</p><p>two</p>"                     \
  "<a href=\"/a\">A</a><a href=\"/b\">B</a></body></html>"

#define XML_DOC                                                               \
  "<?xml version=\"1.0\"?><feed><item id=\"1\"><t>first</t></item>"           \
  "<item id=\"2\"><t>second</t></item><!-- c --></feed>"

#define XXE_DOC                                                               \
  "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM "                    \
  "\"file:///etc/passwd\">]><x>&e;</x>"

#define ENT_DOC                                                               \
  "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY co \"Acme &amp; Co\">]>"      \
  "<r><n>&co;</n><m a=\"by &co;\"/></r>"

#define LOL_DOC                                                               \
  "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">"            \
  "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"                            \
  "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"                            \
  "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">"                            \
  "<!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">"                            \
  "<!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\">"                            \
  "<!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">"                            \
  "<!ENTITY h \"&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;\">]>"                          \
  "<l>&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;</l>"

FT_TEST(test_xpath) {
  static const struct {
    const char *name;
    const char *body;
    size_t len;
    int is_xml;
    const char *expr;
    int want_rc;
    size_t want_n;    /* number of strings (when want_rc == 0) */
    const char *want; /* the strings joined with "\n", or the error */
  } rows[] = {
      {"title", L(HTML_DOC), 0, "//title", 0, 1, "Hello"},
      {"element string value", L(HTML_DOC), 0, "//h1", 0, 1, "Head line"},
      {"attributes", L(HTML_DOC), 0, "//a/@href", 0, 2, "/a\n/b"},
      {"text nodes", L(HTML_DOC), 0, "//p/text()", 0, 2, "one\ntwo"},
      {"predicate", L(HTML_DOC), 0, "//p[@class='x']", 0, 1, "one"},
      {"relative to the document", L(HTML_DOC), 0, "html/head/title", 0, 1,
       "Hello"},
      {"empty node-set", L(HTML_DOC), 0, "//table", 0, 0, ""},
      {"count", L(HTML_DOC), 0, "count(//a)", 0, 1, "2"},
      {"count of none", L(HTML_DOC), 0, "count(//table)", 0, 1, "0"},
      {"string()", L(HTML_DOC), 0, "string(//h1)", 0, 1, "Head line"},
      {"string() of nothing", L(HTML_DOC), 0, "string(//table)", 0, 1, ""},
      {"concat", L(HTML_DOC), 0, "concat(//title, '!')", 0, 1, "Hello!"},
      {"boolean true", L(HTML_DOC), 0, "boolean(//h1)", 0, 1, "true"},
      {"boolean false", L(HTML_DOC), 0, "count(//p) > 5", 0, 1, "false"},
      {"fraction", L(HTML_DOC), 0, "1 div 2", 0, 1, "0.5"},
      {"negative integer", L(HTML_DOC), 0, "-7 * 6", 0, 1, "-42"},
      {"NaN", L(HTML_DOC), 0, "0 div 0", 0, 1, "NaN"},
      {"infinity", L(HTML_DOC), 0, "-1 div 0", 0, 1, "-Infinity"},
      {"xml elements", L(XML_DOC), 1, "//item/t", 0, 2, "first\nsecond"},
      {"xml attribute", L(XML_DOC), 1, "/feed/item[2]/@id", 0, 1, "2"},
      {"xml text()", L(XML_DOC), 1, "//item[@id='1']/t/text()", 0, 1, "first"},
      {"xml comment", L(XML_DOC), 1, "//comment()", 0, 1, " c "},
      {"xml is case-sensitive", L(XML_DOC), 1, "//ITEM", 0, 0, ""},
      {"html is not", L("<TITLE>T</TITLE>"), 0, "//title", 0, 1, "T"},
      {"utf-8 text", L("<title>Caf\xc3\xa9 \xe2\x82\xac</title>"), 0, "//title",
       0, 1, "Caf\xc3\xa9 \xe2\x82\xac"},
      {"latin-1 by meta charset",
       L("<meta charset=\"iso-8859-1\"><title>Caf\xe9</title>"), 0,
       "string(//title)", 0, 1, "Caf\xc3\xa9"},
      {"not UTF-8 and no charset: Latin-1", L("<title>Caf\xe9</title>"), 0,
       "//title", 0, 1, "Caf\xc3\xa9"},
      {"unknown charset", L("<meta charset=\"x-bogus\"><title>T</title>"), 0,
       "//title", 0, 1, "T"},
      {"unknown xml encoding",
       L("<?xml version=\"1.0\" encoding=\"x-bogus\"?><r>t</r>"), 1, "//r",
       FT_EINVAL, 0, "cannot parse document"},
      {"internal entity expanded", L(ENT_DOC), 1, "//n", 0, 1, "Acme & Co"},
      {"internal entity in attribute", L(ENT_DOC), 1, "string(//m/@a)", 0, 1,
       "by Acme & Co"},
      {"xxe: external entity not loaded", L(XXE_DOC), 1, "string(/x)", 0, 1,
       ""},
      {"xxe: node value", L(XXE_DOC), 1, "//x", 0, 1, ""},
      {"billion laughs refused", L(LOL_DOC), 1, "string(/l)", FT_EINVAL, 0,
       "cannot parse document"},
      {"bad expression", L(HTML_DOC), 0, "//a[", FT_EINVAL, 0,
       "invalid XPath expression: //a[ (Invalid expression)"},
      {"empty expression", L(HTML_DOC), 0, "", FT_EINVAL, 0,
       "invalid XPath expression:  (Invalid expression)"},
      {"unknown function", L(HTML_DOC), 0, "nope()", FT_EINVAL, 0,
       "XPath evaluation failed: nope() (Unregistered function)"},
      {"undefined prefix", L(XML_DOC), 1, "//x:item", FT_EINVAL, 0,
       "XPath evaluation failed: //x:item (Undefined namespace prefix)"},
      {"malformed xml", L("<feed><item></feed>"), 1, "//item", FT_EINVAL, 0,
       "cannot parse document"},
      {"empty xml", L(""), 1, "//item", FT_EINVAL, 0, "cannot parse document"},
      {"empty html", L(""), 0, "//p", FT_EINVAL, 0, "cannot parse document"},
      /* stray text gets an implied <p> */
      {"garbage html recovers", L("<<<>>>\x01\x02<p>ok"), 0, "//p", 0, 2,
       ">>>\nok"},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    ft_strlist l = {0};
    char err[256] = "";
    quiet_begin();
    int rc = ft_xpath(rows[i].body, rows[i].len, rows[i].is_xml, rows[i].expr,
                      &l, err, sizeof err);
    long printed = quiet_end();
    const char *got = rc == 0 ? joined(&l) : err;
    size_t want_n = rows[i].want_rc == 0 ? rows[i].want_n : 0;
    if (rc != rows[i].want_rc || printed != 0 || l.n != want_n ||
        strcmp(got, rows[i].want) != 0) {
      fprintf(stderr,
              "  row \"%s\": rc %d (want %d), n %zu (want %zu), stderr %ld "
              "bytes\n    want: %s\n    got:  %s\n",
              rows[i].name, rc, rows[i].want_rc, l.n, want_n, printed,
              rows[i].want, got);
      ft_test_cur_failed_ = 1;
    }
    ft_strlist_free(&l);
  }
}

/* One entity of 100 KB referenced 100,000 times parses (libxml2 counts
 * entities, not bytes) but would expand to 10 GB: refused, fast. */
FT_TEST(test_xpath_entity_blowup) {
  size_t ent = 100000, refs = 100000;
  size_t cap = ent + refs * 3 + 200;
  char *doc = malloc(cap);
  FT_CHECK(doc != NULL);
  if (doc == NULL)
    return;
  size_t n = (size_t)snprintf(doc, cap,
                              "<?xml version=\"1.0\"?><!DOCTYPE q "
                              "[<!ENTITY e \"");
  memset(doc + n, 'x', ent);
  n += ent;
  n += (size_t)snprintf(doc + n, cap - n, "\">]><q>");
  for (size_t i = 0; i < refs; i++, n += 3)
    memcpy(doc + n, "&e;", 3);
  n += (size_t)snprintf(doc + n, cap - n, "</q>");
  ft_strlist l = {0};
  char err[128] = "";
  double t0 = now_s();
  quiet_begin();
  int rc = ft_xpath(doc, n, 1, "string-length(/q)", &l, err, sizeof err);
  long printed = quiet_end();
  FT_CHECK_EQ_INT(rc, FT_EINVAL);
  FT_CHECK(strcmp(err, "document too large once entities are expanded") == 0);
  FT_CHECK_EQ_INT(printed, 0);
  FT_CHECK_EQ_INT(l.n, 0);
  FT_CHECK(now_s() - t0 < 2.0);
  free(doc);
}

/* Results are appended; on error the list is as it was; NULL err is fine. */
FT_TEST(test_xpath_append_and_args) {
  ft_strlist l = {0};
  char err[64] = "";
  FT_CHECK_EQ_INT(ft_xpath(L(XML_DOC), 1, "//t", &l, NULL, 0), 0);
  FT_CHECK_EQ_INT(ft_xpath(L(XML_DOC), 1, "count(//t)", &l, NULL, 0), 0);
  FT_CHECK(strcmp(joined(&l), "first\nsecond\n2") == 0);
  quiet_begin();
  FT_CHECK_EQ_INT(ft_xpath(L(XML_DOC), 1, "//t[", &l, NULL, 0), FT_EINVAL);
  long printed = quiet_end();
  FT_CHECK_EQ_INT(printed, 0);
  FT_CHECK_EQ_INT(l.n, 3);
  FT_CHECK_EQ_INT(ft_xpath(L(XML_DOC), 1, NULL, &l, err, sizeof err),
                  FT_EINVAL);
  FT_CHECK(strcmp(err, "invalid argument") == 0);
  FT_CHECK_EQ_INT(
      ft_xpath("x", (size_t)INT_MAX + 1, 0, "//p", &l, err, sizeof err),
      FT_ERANGE);
  FT_CHECK(strcmp(err, "document too large") == 0);
  FT_CHECK_EQ_INT(l.n, 3);
  ft_strlist_free(&l);
}

/* The caller's libxml2 error handlers are left in place, and not called
 * for errors inside ft_xpath. */
static int caller_handler_calls_;
#if LIBXML_VERSION >= 21200
static void caller_handler(void *ctx, const xmlError *e) {
#else
static void caller_handler(void *ctx, xmlErrorPtr e) {
#endif
  (void)ctx;
  (void)e;
  caller_handler_calls_++;
}

FT_TEST(test_handlers_restored) {
  int token = 0;
  xmlSetStructuredErrorFunc(&token, caller_handler);
  ft_strlist l = {0};
  FT_CHECK_EQ_INT(ft_xpath(L(XML_DOC), 1, "//t[", &l, NULL, 0), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_xpath(L("<bad"), 1, "//t", &l, NULL, 0), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_html_links(L("<<a href=/x"), PAGE, &l), 0);
  FT_CHECK_EQ_INT(caller_handler_calls_, 0);
  FT_CHECK(xmlStructuredError == caller_handler);
  FT_CHECK(xmlStructuredErrorContext == &token);
  xmlSetStructuredErrorFunc(NULL, NULL);
  ft_strlist_free(&l);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_links);
  FT_RUN(test_links_append);
  FT_RUN(test_links_big);
  FT_RUN(test_xpath);
  FT_RUN(test_xpath_entity_blowup);
  FT_RUN(test_xpath_append_and_args);
  FT_RUN(test_handlers_restored);
  return FT_DONE();
}
