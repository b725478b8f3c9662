/* test_tree.c - unit tests for core/tree.c with an injected clock. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "ft_test.h"
#include "ft_trace.h"
#include "limiter.h"
#include "record.h"
#include "stats_json.h"
#include "tree.h"


/* ---- helpers ------------------------------------------------------------ */

static ft_tree *new_tree(void) {
  ft_tree *t = NULL;
  FT_CHECK_EQ_INT(ft_tree_new(&t, 0), FT_OK);
  return t;
}

static ft_object *get(ft_tree *t, const char *name) {
  int err = -100;
  ft_object *o = ft_tree_get(t, name, &err);
  FT_CHECK(o != NULL);
  FT_CHECK_EQ_INT(err, FT_OK);
  return o;
}

static ft_obj_settings rate(double rps, double window_ms) {
  ft_obj_settings s = {0};
  s.has_rps = 1;
  s.rps = rps;
  s.window_ms = window_ms;
  return s;
}

static ft_obj_settings cap(int n) {
  ft_obj_settings s = {0};
  s.has_concurrency = 1;
  s.concurrency = n;
  return s;
}

static ft_obj_settings retries(int n) {
  ft_obj_settings s = {0};
  s.has_retries = 1;
  s.retries = n;
  return s;
}

/* Is the JSON text balanced: brackets nest and match outside strings, the
 * strings close, and the top-level value ends at the last byte? */
static int json_balanced(const char *s, size_t n) {
  char stack[8192];
  size_t depth = 0;
  int in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = 0;
      continue;
    }
    if (c == '"') {
      in_str = 1;
    } else if (c == '{' || c == '[') {
      if (depth == sizeof(stack))
        return 0;
      stack[depth++] = c;
    } else if (c == '}' || c == ']') {
      if (depth == 0 || stack[depth - 1] != (c == '}' ? '{' : '['))
        return 0;
      if (--depth == 0 && i != n - 1)
        return 0;
    }
  }
  return depth == 0 && !in_str && n > 0;
}

/* ft_buf is not NUL-terminated: search its len bytes. */
static const char *find(const ft_buf *b, const char *needle) {
  if (b->data == NULL)
    return NULL;
  return memmem(b->data, b->len, needle, strlen(needle));
}

static int buf_is(const ft_buf *b, const char *want) {
  return b->data != NULL && b->len == strlen(want) &&
         memcmp(b->data, want, b->len) == 0;
}

/* ---- names -------------------------------------------------------------- */

FT_TEST(test_same_name_same_object) {
  ft_tree *t = new_tree();
  ft_object *a = get(t, "/host/a");
  ft_object *ab = get(t, "/host/ab");
  FT_CHECK(a != ab);
  FT_CHECK(get(t, "/host/a") == a);
  FT_CHECK(get(t, "/host/ab") == ab);
  FT_CHECK(get(t, "/") == ft_tree_root(t));
  FT_CHECK(get(t, "/host") == a->parent);
  FT_CHECK_EQ_INT(ft_tree_count(t), 4);
  FT_CHECK(strcmp(a->name, "/host/a") == 0);
  /* err may be NULL */
  FT_CHECK(ft_tree_get(t, "/host/a", NULL) == a);
  ft_tree_free(t);
}

/* ft_tree_get keeps its last answer: a repeat of the same name (in any
 * buffer) is that object, and any other name, even one that the cached
 * name starts with or that starts with it, is looked up for real. */
FT_TEST(test_last_lookup_cache) {
  ft_tree *t = new_tree();
  ft_object *a = get(t, "/host/a");
  char copy[] = "/host/a"; /* byte-identical, another address */
  FT_CHECK(get(t, copy) == a);
  FT_CHECK(get(t, "/host/a") == a);
  /* alternate names: each miss replaces the cache, each repeat hits it */
  ft_object *b = get(t, "/host/b");
  FT_CHECK(b != a);
  FT_CHECK(get(t, "/host/b") == b);
  FT_CHECK(get(t, "/host/a") == a);
  FT_CHECK(get(t, "/host/b") == b);
  /* names around the cached one: a prefix, an extension, a near miss */
  FT_CHECK(get(t, "/host/b") == b);
  FT_CHECK(get(t, "/host") == b->parent);
  FT_CHECK(get(t, "/host/b") == b);
  ft_object *bc = get(t, "/host/b/c"); /* created: cached too */
  FT_CHECK(bc->parent == b);
  FT_CHECK(get(t, "/host/b/c") == bc);
  FT_CHECK(get(t, "/host/bc") != bc);
  FT_CHECK(get(t, "/host/b/c") == bc);
  FT_CHECK_EQ_INT(ft_tree_count(t), 6); /* /, /host, a, b, b/c, bc */
  /* invalid names are refused right after a hit on their valid stem, and
   * leave the cache answering correctly */
  static const char *bad[] = {"/host/b/c/", "/host/b/c//", "/host/b//c"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    FT_CHECK(get(t, "/host/b/c") == bc);
    int err = 0;
    FT_CHECK(ft_tree_get(t, bad[i], &err) == NULL);
    FT_CHECK_EQ_INT(err, FT_EINVAL);
    FT_CHECK(get(t, "/host/b/c") == bc);
  }
  FT_CHECK_EQ_INT(ft_tree_count(t), 6); /* nothing made for them */
  /* the cache belongs to its tree */
  ft_tree *t2 = new_tree();
  ft_object *a2 = get(t2, "/host/a");
  FT_CHECK(a2 != a);
  FT_CHECK(get(t, "/host/a") == a);
  FT_CHECK(get(t2, "/host/a") == a2);
  ft_tree_free(t2);
  ft_tree_free(t);
}

FT_TEST(test_ancestors) {
  ft_tree *t = new_tree();
  FT_CHECK_EQ_INT(ft_tree_count(t), 1);
  ft_object *root = ft_tree_root(t);
  FT_CHECK(root->parent == NULL);
  FT_CHECK_EQ_INT(root->depth, 0);
  FT_CHECK(strcmp(root->name, "/") == 0);
  FT_CHECK_EQ_INT(root->retries, -1);

  ft_object *c = get(t, "/a/b/c");
  FT_CHECK_EQ_INT(ft_tree_count(t), 4);
  static const char *chain[] = {"/a/b/c", "/a/b", "/a", "/"};
  ft_object *o = c;
  for (int i = 0; i < 4; i++) {
    FT_CHECK(o != NULL);
    if (o == NULL)
      break;
    FT_CHECK(strcmp(o->name, chain[i]) == 0);
    FT_CHECK_EQ_INT(o->depth, 3 - i);
    FT_CHECK(o == get(t, chain[i]));
    o = o->parent;
  }
  FT_CHECK(o == NULL);
  /* a sibling branch reuses the existing ancestors */
  ft_object *d = get(t, "/a/d");
  FT_CHECK(d->parent == c->parent->parent);
  FT_CHECK_EQ_INT(ft_tree_count(t), 5);
  /* any bytes but '/' in a segment */
  ft_object *odd = get(t, "/a b/\xff\x01*");
  FT_CHECK_EQ_INT(odd->depth, 2);
  FT_CHECK(strcmp(odd->parent->name, "/a b") == 0);
  /* deep names need no recursion */
  enum { DEEP = 3000 };
  char *deep = malloc(2 * DEEP + 1);
  for (int i = 0; i < DEEP; i++) {
    deep[2 * i] = '/';
    deep[2 * i + 1] = 'x';
  }
  deep[2 * DEEP] = '\0';
  ft_object *z = get(t, deep);
  FT_CHECK_EQ_INT(z->depth, DEEP);
  ft_buf b = {0};
  ft_stats_tree_json(t, &b);
  FT_CHECK(json_balanced(b.data, b.len));
  ft_buf_free(&b);
  free(deep);
  ft_tree_free(t);
}

FT_TEST(test_invalid_names) {
  static const char *bad[] = {"",    "x",  "/a/",   "//a",   "/a//b",
                              "a/b", "//", "/a/b/", "host/a"};
  ft_tree *t = new_tree();
  get(t, "/a");
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int err = 0;
    FT_CHECK(ft_tree_get(t, bad[i], &err) == NULL);
    if (err != FT_EINVAL)
      fprintf(stderr, "  name \"%s\"\n", bad[i]);
    FT_CHECK_EQ_INT(err, FT_EINVAL);
  }
  int err = 0;
  FT_CHECK(ft_tree_get(t, NULL, &err) == NULL);
  FT_CHECK_EQ_INT(err, FT_EINVAL);
  FT_CHECK_EQ_INT(ft_tree_count(t), 2); /* nothing created on the way */
  ft_tree_free(t);
}

/* ---- patterns ----------------------------------------------------------- */

FT_TEST(test_pattern_rows) {
  static const struct {
    const char *pattern, *name;
    int match;
  } rows[] = {
      {"/", "/", 1},
      {"/", "/a", 0},
      {"/host/*", "/host/a", 1},
      {"/host/*", "/host", 0},
      {"/host/*", "/host/a/b", 0},
      {"/host/*", "/other/a", 0},
      {"/*", "/host", 1},
      {"/*", "/", 0},
      {"/*", "/host/a", 0},
      {"/*/a", "/x/a", 1},
      {"/*/a", "/x/b", 0},
      {"/*/*", "/x/y", 1},
      {"/host/a", "/host/a", 1},
      {"/host/a", "/host/ab", 0},
      {"/host/ab", "/host/a", 0},
      {"/host/a*", "/host/ab", 0}, /* "*" is a wildcard only as a segment */
      {"/host/a*", "/host/a*", 1},
      {"/host/*a", "/host/xy", 0},
      {"/host/*a", "/host/*a", 1},
      {"/**", "/x", 0},
      {"/h", "/host", 0},
      {"/host", "/h", 0},
      {"/host/*/path", "/host/x/path", 1},
      {"/host/*/path", "/host/x/paths", 0},
      {"/host/*/path", "/host/x/y/path", 0},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    for (int after = 0; after < 2; after++) {
      ft_tree *t = new_tree();
      ft_obj_settings s = cap(5);
      ft_object *o = NULL;
      if (after)
        o = get(t, rows[i].name);
      FT_CHECK_EQ_INT(ft_tree_configure(t, rows[i].pattern, &s), FT_OK);
      if (!after)
        o = get(t, rows[i].name);
      int got = o && o->concurrency == 5;
      if (got != rows[i].match)
        fprintf(stderr, "  pattern \"%s\" name \"%s\" after %d: got %d\n",
                rows[i].pattern, rows[i].name, after, got);
      FT_CHECK_EQ_INT(got, rows[i].match);
      ft_tree_free(t);
    }
  }
}

FT_TEST(test_bad_patterns_and_settings) {
  static const char *bad[] = {"", "x", "/a/", "//a", "/a//b", "*", "a/*"};
  ft_tree *t = new_tree();
  ft_obj_settings s = cap(2);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    FT_CHECK_EQ_INT(ft_tree_configure(t, bad[i], &s), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_tree_configure(t, NULL, &s), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/", NULL), FT_EINVAL);
  static const struct {
    double rps, window_ms;
    int rc;
  } rs[] = {
      {NAN, 1000, FT_EINVAL},  {INFINITY, 1000, FT_EINVAL},
      {10, -1, FT_EINVAL},     {10, NAN, FT_EINVAL},
      {1e12, 1000, FT_ERANGE}, {10, 1e30, FT_ERANGE},
  };
  for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
    ft_obj_settings r = rate(rs[i].rps, rs[i].window_ms);
    FT_CHECK_EQ_INT(ft_tree_configure(t, "/", &r), rs[i].rc);
    FT_CHECK_EQ_INT(ft_object_set(ft_tree_root(t), &r), rs[i].rc);
  }
  /* nothing was stored */
  ft_object *o = get(t, "/a");
  FT_CHECK(o->limiter == NULL && o->concurrency == 0);
  FT_CHECK(ft_tree_root(t)->limiter == NULL);
  ft_tree_free(t);
}

/* A rate the limiter refuses although its K is below FT_LIMITER_MAX_CAPACITY
 * + 1: the limiter takes a K within its rounding tolerance of an integer as
 * that integer, here the maximum + 1. configure must refuse it before
 * storing the pattern, or every matching object created later fails. */
FT_TEST(test_configure_rate_the_limiter_refuses) {
  ft_tree *t = new_tree();
  ft_object *old = get(t, "/host/old");
  ft_obj_settings s = rate((double)FT_LIMITER_MAX_CAPACITY + 1.0 - 1e-6, 1000);
  s.has_concurrency = 1;
  s.concurrency = 3;
  ft_limiter *l = NULL;
  FT_CHECK_EQ_INT(ft_limiter_new(&l, s.rps, 1000000000ull), FT_ERANGE);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &s), FT_ERANGE);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/", &s), FT_ERANGE);
  FT_CHECK_EQ_INT(ft_object_set(old, &s), FT_ERANGE);
  /* nothing was changed or stored: a matching object created now works */
  FT_CHECK(old->limiter == NULL && old->concurrency == 0);
  FT_CHECK(ft_tree_root(t)->limiter == NULL);
  int err = -100;
  ft_object *young = ft_tree_get(t, "/host/young", &err);
  FT_CHECK(young != NULL);
  FT_CHECK_EQ_INT(err, FT_OK);
  if (young)
    FT_CHECK(young->limiter == NULL && young->concurrency == 0);
  ft_tree_free(t);
}

FT_TEST(test_configure_before_and_after) {
  ft_tree *t = new_tree();
  ft_object *old = get(t, "/host/old");
  ft_obj_settings s = rate(10, 0); /* window 0 means 1000 ms */
  s.has_concurrency = 1;
  s.concurrency = 4;
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &s), FT_OK);
  ft_object *young = get(t, "/host/young");
  ft_object *objs[] = {old, young};
  for (int i = 0; i < 2; i++) {
    FT_CHECK(objs[i]->limiter != NULL);
    FT_CHECK_EQ_INT(ft_limiter_capacity(objs[i]->limiter), 10);
    FT_CHECK_EQ_INT(ft_limiter_window(objs[i]->limiter), SEC);
    FT_CHECK_EQ_INT(objs[i]->concurrency, 4);
  }
  ft_object *host = get(t, "/host"), *below = get(t, "/host/young/x");
  FT_CHECK(host->limiter == NULL && host->concurrency == 0);
  FT_CHECK(below->limiter == NULL && below->concurrency == 0);
  ft_tree_free(t);
}

FT_TEST(test_later_pattern_wins_per_field) {
  for (int after = 0; after < 2; after++) {
    ft_tree *t = new_tree();
    if (after) {
      get(t, "/host/a");
      get(t, "/host/b");
      get(t, "/host/c");
    }
    ft_obj_settings all = rate(10, 1000);
    all.has_concurrency = 1;
    all.concurrency = 4;
    all.has_retries = 1;
    all.retries = 2;
    ft_obj_settings a_rate = rate(3, 1000), any_a_retries = retries(7);
    ft_obj_settings c_off = rate(0, 0);
    FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &all), FT_OK);
    FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/a", &a_rate), FT_OK);
    FT_CHECK_EQ_INT(ft_tree_configure(t, "/*/a", &any_a_retries), FT_OK);
    FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/c", &c_off), FT_OK);
    ft_object *a = get(t, "/host/a"), *b = get(t, "/host/b");
    ft_object *c = get(t, "/host/c");
    FT_CHECK_EQ_INT(ft_limiter_capacity(a->limiter), 3);
    FT_CHECK_EQ_INT(a->concurrency, 4);
    FT_CHECK_EQ_INT(a->retries, 7);
    FT_CHECK_EQ_INT(ft_limiter_capacity(b->limiter), 10);
    FT_CHECK_EQ_INT(b->concurrency, 4);
    FT_CHECK_EQ_INT(b->retries, 2);
    FT_CHECK(c->limiter == NULL); /* rps 0 removes the earlier rate */
    FT_CHECK_EQ_INT(c->concurrency, 4);
    ft_tree_free(t);
  }
  /* the order of configuration decides, not specificity */
  ft_tree *t = new_tree();
  ft_obj_settings three = rate(3, 1000), ten = rate(10, 1000);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/a", &three), FT_OK);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &ten), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_capacity(get(t, "/host/a")->limiter), 10);
  ft_tree_free(t);
}

FT_TEST(test_retries_inheritance) {
  ft_tree *t = new_tree();
  FT_CHECK_EQ_INT(get(t, "/x/y")->retries, -1); /* nothing set anywhere */
  ft_obj_settings r3 = retries(3), r1 = retries(1);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/", &r3), FT_OK);
  FT_CHECK_EQ_INT(get(t, "/x/y")->retries, 3); /* re-derived below "/" */
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/a", &r1), FT_OK);
  ft_object *host = get(t, "/host"), *a = get(t, "/host/a");
  ft_object *ap = get(t, "/host/a/p"), *b = get(t, "/host/b");
  ft_object *bc = get(t, "/host/b/c");
  FT_CHECK_EQ_INT(host->retries, 3);
  FT_CHECK_EQ_INT(a->retries, 1);
  FT_CHECK_EQ_INT(ap->retries, 1);
  FT_CHECK_EQ_INT(bc->retries, 3);

  /* a live change on an ancestor reaches descendants without their own */
  ft_obj_settings r7 = retries(7), unset = retries(-1), r0 = retries(0);
  FT_CHECK_EQ_INT(ft_object_set(host, &r7), FT_OK);
  FT_CHECK_EQ_INT(host->retries, 7);
  FT_CHECK_EQ_INT(b->retries, 7);
  FT_CHECK_EQ_INT(bc->retries, 7);
  FT_CHECK_EQ_INT(a->retries, 1);
  FT_CHECK_EQ_INT(ap->retries, 1);
  FT_CHECK_EQ_INT(get(t, "/x/y")->retries, 3);
  FT_CHECK_EQ_INT(get(t, "/host/z")->retries, 7); /* created later */
  /* removing the own setting inherits again */
  FT_CHECK_EQ_INT(ft_object_set(host, &unset), FT_OK);
  FT_CHECK_EQ_INT(bc->retries, 3);
  FT_CHECK_EQ_INT(get(t, "/host/z")->retries, 3);
  FT_CHECK_EQ_INT(ft_object_set(ft_tree_root(t), &r0), FT_OK);
  FT_CHECK_EQ_INT(bc->retries, 0);
  FT_CHECK_EQ_INT(host->retries, 0);
  FT_CHECK_EQ_INT(ap->retries, 1);
  /* a pattern configured later over existing objects, then re-derived */
  ft_obj_settings r2 = retries(2);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &r2), FT_OK);
  FT_CHECK_EQ_INT(b->retries, 2);
  FT_CHECK_EQ_INT(bc->retries, 2);
  FT_CHECK_EQ_INT(a->retries, 2);
  FT_CHECK_EQ_INT(ap->retries, 2);
  FT_CHECK_EQ_INT(host->retries, 0);
  ft_tree_free(t);
}

/* ---- admission ---------------------------------------------------------- */

FT_TEST(test_concurrency_caps) {
  ft_tree *t = new_tree();
  ft_obj_settings two = cap(2);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/", &two), FT_OK);
  ft_object *a = get(t, "/host/a"), *b = get(t, "/host/b");
  ft_object *xy = get(t, "/x/y"), *root = ft_tree_root(t);
  FT_CHECK_EQ_INT(ft_object_admit(a, 0), 0);
  ft_object_start(a, 0);
  FT_CHECK_EQ_INT(ft_object_admit(xy, 0), 0);
  ft_object_start(xy, 0);
  FT_CHECK(ft_object_admit(b, 0) == FT_TREE_BUSY);
  FT_CHECK(ft_object_admit(a, 0) == FT_TREE_BUSY);
  FT_CHECK(ft_object_admit(root, 0) == FT_TREE_BUSY);
  FT_CHECK_EQ_INT(root->active, 2);
  FT_CHECK_EQ_INT(a->parent->active, 1);
  FT_CHECK_EQ_INT(xy->parent->active, 1);
  ft_object_finish(xy);
  FT_CHECK_EQ_INT(ft_object_admit(b, 0), 0);
  FT_CHECK_EQ_INT(root->active, 1);
  FT_CHECK_EQ_INT(xy->active, 0);
  ft_object_finish(a);
  ft_tree_free(t);

  /* a cap on /host/a blocks only its own subtree */
  t = new_tree();
  ft_obj_settings one = cap(1);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/a", &one), FT_OK);
  ft_object *p = get(t, "/host/a/p"), *q = get(t, "/host/a/q");
  b = get(t, "/host/b");
  a = get(t, "/host/a");
  ft_object_start(p, 0);
  FT_CHECK(ft_object_admit(q, 0) == FT_TREE_BUSY);
  FT_CHECK(ft_object_admit(a, 0) == FT_TREE_BUSY);
  FT_CHECK_EQ_INT(ft_object_admit(b, 0), 0);
  FT_CHECK_EQ_INT(ft_object_admit(a->parent, 0), 0);
  FT_CHECK_EQ_INT(ft_object_admit(ft_tree_root(t), 0), 0);
  ft_object_finish(p);
  FT_CHECK_EQ_INT(ft_object_admit(q, 0), 0);

  /* a cap wins over a rate: BUSY, not a time */
  ft_obj_settings r1 = rate(1, 1000);
  FT_CHECK_EQ_INT(ft_object_set(b, &r1), FT_OK);
  ft_object_start(b, 0);
  uint64_t d = ft_object_admit(b, 0);
  FT_CHECK(d == SEC);
  FT_CHECK_EQ_INT(ft_object_set(b, &one), FT_OK);
  FT_CHECK(ft_object_admit(b, 0) == FT_TREE_BUSY);
  ft_object_finish(b);
  FT_CHECK(ft_object_admit(b, 0) == SEC);
  ft_tree_free(t);
}

/* A greedy caller over hosts h[0..nh): whenever some host is admitted it
 * starts there (and the attempt ends at once); when none is, time advances by
 * the smallest delay (exactly, or a random step in [1, delay]). Starts stop at
 * n in all or at time `until`. Returns the number of starts. */
static size_t run_greedy(ft_object **h, int nh, size_t n, uint64_t until,
                         int random_steps, uint64_t seed, uint64_t *all,
                         uint64_t **per, size_t *nper) {
  uint64_t s = seed | 1, now = 0;
  size_t total = 0;
  for (int i = 0; i < nh; i++)
    nper[i] = 0;
  while (total < n && now < until) {
    int first = (int)(rng_next(&s) % (uint64_t)nh), started = 0;
    uint64_t dmin = UINT64_MAX;
    for (int k = 0; k < nh && !started; k++) {
      int i = (first + k) % nh;
      uint64_t d = ft_object_admit(h[i], now), worst = 0;
      for (ft_object *p = h[i]; p; p = p->parent) {
        uint64_t dp = ft_limiter_delay(p->limiter, now);
        worst = dp > worst ? dp : worst;
      }
      FT_CHECK_EQ_INT(d, worst); /* the largest wait on the path */
      if (d == 0) {
        ft_object_start(h[i], now);
        ft_object_finish(h[i]);
        all[total++] = now;
        per[i][nper[i]++] = now;
        started = 1;
      } else if (d < dmin) {
        dmin = d;
      }
    }
    if (!started)
      now += random_steps ? 1 + rng_next(&s) % dmin : dmin;
  }
  return total;
}

/* Rates on "/" (8 per s) and on every host (5 per s) are both enforced: in
 * every interval [t, t + 1 s) the total holds at most 8 starts and each host
 * at most 5, and the limits are reached. */
FT_TEST(test_rates_root_and_hosts) {
  enum { N = 2000 };
  uint64_t *all = malloc(N * sizeof(*all));
  uint64_t *per[2] = {malloc(N * sizeof(uint64_t)),
                      malloc(N * sizeof(uint64_t))};
  size_t nper[2];
  for (int mode = 0; mode < 2; mode++) {
    ft_tree *t = new_tree();
    ft_obj_settings root_rate = rate(8, 1000), host_rate = rate(5, 1000);
    FT_CHECK_EQ_INT(ft_tree_configure(t, "/", &root_rate), FT_OK);
    FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &host_rate), FT_OK);
    ft_object *h[2] = {get(t, "/host/a"), get(t, "/host/b")};
    size_t n = run_greedy(h, 2, N, UINT64_MAX, mode, 77 + mode, all, per, nper);
    FT_CHECK_EQ_INT(n, N);
    FT_CHECK_EQ_INT(max_in_window(all, N, SEC), 8);
    size_t m0 = max_in_window(per[0], nper[0], SEC);
    size_t m1 = max_in_window(per[1], nper[1], SEC);
    FT_CHECK(m0 <= 5 && m1 <= 5);
    FT_CHECK(m0 == 5 || m1 == 5);
    FT_CHECK(nper[0] > N / 4 && nper[1] > N / 4);
    FT_CHECK_EQ_INT(ft_tree_root(t)->stats.requests, 0);
    ft_tree_free(t);
  }
  free(all);
  free(per[0]);
  free(per[1]);
}

/* One host's limit does not slow another: with "/" at 8 per s, hosts at 5
 * per s and /host/a lowered to 1 per s, /host/b still gets its full 5 per s
 * (100 starts in 20 s) while /host/a is held to 1 per s. */
FT_TEST(test_host_rates_independent) {
  enum { N = 4000 };
  uint64_t *all = malloc(N * sizeof(*all));
  uint64_t *per[2] = {malloc(N * sizeof(uint64_t)),
                      malloc(N * sizeof(uint64_t))};
  size_t nper[2];
  ft_tree *t = new_tree();
  ft_obj_settings root_rate = rate(8, 1000), host_rate = rate(5, 1000);
  ft_obj_settings slow = rate(1, 1000);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/", &root_rate), FT_OK);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &host_rate), FT_OK);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/a", &slow), FT_OK);
  ft_object *h[2] = {get(t, "/host/a"), get(t, "/host/b")};
  run_greedy(h, 2, N, 20 * SEC, 0, 5, all, per, nper);
  FT_CHECK_EQ_INT(nper[0], 20);
  FT_CHECK_EQ_INT(nper[1], 100);
  FT_CHECK_EQ_INT(max_in_window(per[0], nper[0], SEC), 1);
  FT_CHECK_EQ_INT(max_in_window(per[1], nper[1], SEC), 5);
  FT_CHECK(max_in_window(all, nper[0] + nper[1], SEC) <= 8);
  ft_tree_free(t);
  free(all);
  free(per[0]);
  free(per[1]);
}

/* The wait ft_object_admit reports is the largest over the path: "/" at 3
 * per s and /host/a at 1 per 2 s, after starts at 0 (a), 500 and 600 ms (x):
 * at 700 ms "/" frees up in 300 ms but /host/a only in 1300 ms. */
FT_TEST(test_admit_delay_is_largest) {
  ft_tree *t = new_tree();
  ft_obj_settings three = rate(3, 1000), slow = rate(0.5, 0);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/", &three), FT_OK);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/a", &slow), FT_OK);
  ft_object *a = get(t, "/host/a"), *x = get(t, "/x");
  ft_object_start(a, 0);
  FT_CHECK_EQ_INT(ft_object_admit(x, 500 * MS), 0);
  ft_object_start(x, 500 * MS);
  ft_object_start(x, 600 * MS);
  FT_CHECK_EQ_INT(ft_object_admit(x, 700 * MS), 300 * MS);
  FT_CHECK_EQ_INT(ft_object_admit(a, 700 * MS), 1300 * MS);
  FT_CHECK_EQ_INT(ft_object_admit(a->parent, 700 * MS), 300 * MS);
  FT_CHECK_EQ_INT(ft_object_admit(a, 2 * SEC), 0);
  ft_tree_free(t);
}

/* A live rate change keeps the limiter and its history: lowering to 2 per s
 * right after 10 starts waits for the two newest to age out; raising to 20
 * per s allows 20 starts in a fresh window, not 21. */
FT_TEST(test_live_rps_lower_then_higher) {
  ft_tree *t = new_tree();
  ft_obj_settings ten = rate(10, 1000);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &ten), FT_OK);
  ft_object *o = get(t, "/host/a");
  ft_limiter *l = o->limiter;
  FT_CHECK(l != NULL);
  for (uint64_t i = 0; i < 10; i++) {
    FT_CHECK_EQ_INT(ft_object_admit(o, i * MS), 0);
    ft_object_start(o, i * MS);
    ft_object_finish(o);
  }
  FT_CHECK_EQ_INT(ft_object_admit(o, 10 * MS), 990 * MS);
  ft_obj_settings two = rate(2, 1000), twenty = rate(20, 1000);
  FT_CHECK_EQ_INT(ft_object_set(o, &two), FT_OK);
  FT_CHECK(o->limiter == l);
  FT_CHECK_EQ_INT(ft_limiter_capacity(o->limiter), 2);
  /* newest two starts at 8 and 9 ms: free again at 1008 ms */
  FT_CHECK_EQ_INT(ft_object_admit(o, 500 * MS), 508 * MS);
  FT_CHECK_EQ_INT(ft_object_admit(o, 1008 * MS), 0);

  FT_CHECK_EQ_INT(ft_object_set(o, &twenty), FT_OK);
  FT_CHECK(o->limiter == l);
  FT_CHECK(ft_limiter_rps(o->limiter) == 20.0);
  for (int i = 0; i < 20; i++) {
    FT_CHECK_EQ_INT(ft_object_admit(o, 2 * SEC), 0);
    ft_object_start(o, 2 * SEC);
    ft_object_finish(o);
  }
  FT_CHECK_EQ_INT(ft_object_admit(o, 2 * SEC), SEC);
  /* an invalid change leaves the limiter as it was */
  ft_obj_settings nan_rate = rate(NAN, 1000);
  FT_CHECK_EQ_INT(ft_object_set(o, &nan_rate), FT_EINVAL);
  FT_CHECK(o->limiter == l && ft_limiter_capacity(l) == 20);
  /* rps 0 removes the limit */
  ft_obj_settings off = rate(0, 0);
  FT_CHECK_EQ_INT(ft_object_set(o, &off), FT_OK);
  FT_CHECK(o->limiter == NULL);
  FT_CHECK_EQ_INT(ft_object_admit(o, 2 * SEC), 0);
  /* and a new rate on an object without one creates a limiter */
  ft_object *b = get(t, "/x");
  FT_CHECK_EQ_INT(ft_object_set(b, &two), FT_OK);
  FT_CHECK_EQ_INT(ft_limiter_capacity(b->limiter), 2);
  ft_tree_free(t);
}

/* ---- stats -------------------------------------------------------------- */

typedef struct sums {
  ft_obj_stats s;
  int children;
} sums;

static void add_to_parent(ft_object *o, void *ud) {
  (void)ud;
  if (o->parent == NULL)
    return;
  sums *p = o->parent->udata;
  p->children++;
  p->s.requests += o->stats.requests;
  p->s.ok += o->stats.ok;
  p->s.attempts += o->stats.attempts;
  p->s.bytes += o->stats.bytes;
  for (int i = 0; i < FT_ERR_COUNT; i++)
    p->s.by_error[i] += o->stats.by_error[i];
  for (int i = 0; i < FT_OBJ_HIST_BUCKETS; i++)
    p->s.hist[i] += o->stats.hist[i];
  if (o->stats.max_us > p->s.max_us)
    p->s.max_us = o->stats.max_us;
  p->s.status_other += o->stats.status_other;
  for (int i = 0; i < FT_OBJ_STATUSES; i++)
    p->s.status_count[i] += o->stats.status_count[i]; /* total only */
}

static uint64_t status_total(const ft_obj_stats *s) {
  uint64_t n = s->status_other;
  for (int i = 0; i < FT_OBJ_STATUSES; i++)
    n += s->status_count[i];
  return n;
}

static uint64_t status_of(const ft_obj_stats *s, int code) {
  for (int i = 0; i < FT_OBJ_STATUSES; i++)
    if (s->status_code[i] == code)
      return s->status_count[i];
  return 0;
}

static void attach_sums(ft_object *o, void *ud) {
  (void)ud;
  o->udata = calloc(1, sizeof(sums));
}

static void free_sums(ft_object *o, void *ud) {
  (void)ud;
  free(o->udata);
  o->udata = NULL;
}

FT_TEST(test_stats_aggregation) {
  static const char *leaves[] = {"/host/a/p1", "/host/a/p2", "/host/b",
                                 "/x/y/z", "/w"};
  static const long statuses[] = {200, 404, 500, 0, 301};
  static const ft_errkind errors[] = {FT_ERR_NONE, FT_ERR_TIMEOUT,
                                      FT_ERR_CONNECT, FT_ERR_RETRIES};
  enum { NL = 5, N = 3000 };
  ft_tree *t = new_tree();
  ft_object *leaf[NL];
  for (int i = 0; i < NL; i++)
    leaf[i] = get(t, leaves[i]);

  /* one request on a leaf appears in every ancestor */
  ft_response one = {0};
  one.status = 503;
  one.attempts = 3;
  one.elapsed_ms = 12.5;
  one.body_len = 7;
  one.error = FT_ERR_TIMEOUT;
  ft_object_count(leaf[0], &one);
  for (ft_object *o = leaf[0]; o; o = o->parent) {
    FT_CHECK_EQ_INT(o->stats.requests, 1);
    FT_CHECK_EQ_INT(o->stats.ok, 0);
    FT_CHECK_EQ_INT(o->stats.attempts, 3);
    FT_CHECK_EQ_INT(o->stats.bytes, 7);
    FT_CHECK_EQ_INT(o->stats.by_error[FT_ERR_TIMEOUT], 1);
    FT_CHECK_EQ_INT(status_of(&o->stats, 503), 1);
    FT_CHECK_EQ_INT(o->stats.max_us, 12500);
  }
  FT_CHECK_EQ_INT(leaf[1]->stats.requests, 0);
  FT_CHECK_EQ_INT(get(t, "/x")->stats.requests, 0);

  /* many requests on random leaves: each parent is the sum of children */
  uint64_t s = 31337, ok = 0;
  for (int i = 0; i < N; i++) {
    ft_response r = {0};
    r.status = statuses[rng_next(&s) % 5];
    r.error = errors[rng_next(&s) % 4];
    r.attempts = (int)(rng_next(&s) % 4); /* 0: never attempted */
    r.elapsed_ms = (double)(rng_next(&s) % 5000000) / 1000.0;
    r.body_len = rng_next(&s) % 1000;
    ok += r.error == FT_ERR_NONE;
    ft_object_count(leaf[rng_next(&s) % NL], &r);
  }
  ft_tree_foreach(t, attach_sums, NULL);
  ft_tree_foreach(t, add_to_parent, NULL);
  int checked = 0;
  static const char *inner[] = {"/", "/host", "/host/a", "/x", "/x/y"};
  for (size_t k = 0; k < sizeof(inner) / sizeof(inner[0]); k++) {
    ft_object *o = get(t, inner[k]);
    const sums *sm = o->udata;
    FT_CHECK(sm->children > 0);
    FT_CHECK_EQ_INT(o->stats.requests, sm->s.requests);
    FT_CHECK_EQ_INT(o->stats.ok, sm->s.ok);
    FT_CHECK_EQ_INT(o->stats.attempts, sm->s.attempts);
    FT_CHECK_EQ_INT(o->stats.bytes, sm->s.bytes);
    FT_CHECK_EQ_INT(o->stats.max_us, sm->s.max_us);
    FT_CHECK_EQ_INT(status_total(&o->stats), status_total(&sm->s));
    FT_CHECK(
        memcmp(o->stats.by_error, sm->s.by_error, sizeof(sm->s.by_error)) == 0);
    FT_CHECK(memcmp(o->stats.hist, sm->s.hist, sizeof(sm->s.hist)) == 0);
    checked++;
  }
  FT_CHECK_EQ_INT(checked, 5);
  ft_object *root = ft_tree_root(t);
  FT_CHECK_EQ_INT(root->stats.requests, N + 1);
  FT_CHECK_EQ_INT(root->stats.ok, ok);
  /* statuses 0 are not counted; the rest are */
  FT_CHECK(status_total(&root->stats) < root->stats.requests);
  FT_CHECK_EQ_INT(status_of(&root->stats, 0), 0);
  ft_tree_foreach(t, free_sums, NULL);
  ft_tree_free(t);
}

FT_TEST(test_status_overflow) {
  ft_tree *t = new_tree();
  ft_object *o = get(t, "/s");
  ft_response r = {0};
  r.attempts = 1;
  for (int rep = 0; rep < 2; rep++) {
    for (long code = 100; code < 120; code++) { /* 20 distinct codes */
      r.status = code;
      ft_object_count(o, &r);
    }
  }
  r.status = 70000; /* does not fit a slot */
  ft_object_count(o, &r);
  for (ft_object *p = o; p; p = p->parent) {
    for (int i = 0; i < FT_OBJ_STATUSES; i++) {
      FT_CHECK_EQ_INT(p->stats.status_code[i], 100 + i);
      FT_CHECK_EQ_INT(p->stats.status_count[i], 2);
    }
    FT_CHECK_EQ_INT(p->stats.status_other, 9);
  }
  ft_buf b = {0};
  ft_stats_tree_json(t, &b);
  FT_CHECK(find(&b, "\"statuses\":{\"100\":2,\"101\":2,") != NULL);
  FT_CHECK(find(&b, "\"115\":2,\"other\":9}") != NULL);
  FT_CHECK(find(&b, "\"116\"") == NULL);
  ft_buf_free(&b);
  ft_tree_free(t);
}

/* Retries are the attempts after each request's first: a request that
 * never started (cancelled while queued, attempts 0) takes none away. The
 * summary once printed attempts - requests, 2^64 - 1 after an interrupt. */
FT_TEST(test_stats_retries) {
  ft_tree *t = new_tree();
  ft_object *o = get(t, "/host/r");
  static const int attempts[] = {0, 0, 1, 3, 0};
  for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
    ft_response r = {0};
    r.attempts = attempts[i];
    r.error = attempts[i] ? FT_ERR_NONE : FT_ERR_CANCELLED;
    ft_object_count(o, &r);
  }
  for (ft_object *p = o; p; p = p->parent) {
    FT_CHECK_EQ_INT(p->stats.requests, 5);
    FT_CHECK_EQ_INT(p->stats.attempts, 4);
    FT_CHECK_EQ_INT(p->stats.retries, 2);
  }
  ft_buf b = {0};
  ft_stats_tree_json(t, &b);
  FT_CHECK(find(&b, "\"attempts\":4,\"retries\":2,") != NULL);
  ft_buf_free(&b);
  ft_tree_free(t);
}

/* Percentiles are within 1/8 below the true latency (8 sub-buckets per
 * power of two), over values from 1 us to 20 min. */
FT_TEST(test_latency_percentiles) {
  ft_tree *t = new_tree();
  ft_object *o = get(t, "/l");
  uint64_t s = 99;
  int bad = 0;
  for (int i = 0; i < 5000; i++) {
    uint64_t v = 1 + rng_next(&s) % (i < 2500 ? 2000 : 1200000000ull);
    memset(&o->stats, 0, sizeof(o->stats));
    ft_response r = {0};
    r.attempts = 1;
    r.elapsed_ms = (double)v / 1000.0;
    ft_object_count(o, &r);
    uint64_t rec = o->stats.max_us; /* v, or v - 1 after rounding */
    double p = ft_obj_stats_percentile(&o->stats, 0.5) * 1000.0;
    if (p > (double)rec + 1e-6 || p < (double)rec * 7.0 / 8.0 - 1e-6 ||
        rec + 1 < v || rec > v)
      bad++;
  }
  FT_CHECK_EQ_INT(bad, 0);
  memset(&o->stats, 0, sizeof(o->stats));
  FT_CHECK(ft_obj_stats_percentile(&o->stats, 0.5) == 0);
  ft_response r = {0};
  r.attempts = 1;
  r.elapsed_ms = 1.0;
  for (int i = 0; i < 100; i++)
    ft_object_count(o, &r);
  r.elapsed_ms = 100.0;
  ft_object_count(o, &r);
  r.attempts = 0; /* never attempted: no latency */
  r.elapsed_ms = 5000.0;
  ft_object_count(o, &r);
  double p50 = ft_obj_stats_percentile(&o->stats, 0.5);
  FT_CHECK(p50 > 0.875 && p50 <= 1.0);
  FT_CHECK(ft_obj_stats_percentile(&o->stats, 0.99) <= 1.0);
  FT_CHECK(ft_obj_stats_percentile(&o->stats, 1.0) > 87.5);
  FT_CHECK_EQ_INT(o->stats.max_us, 100000);
  ft_tree_free(t);
}

/* ---- JSON --------------------------------------------------------------- */

FT_TEST(test_json) {
  ft_tree *t = new_tree();
  ft_buf b = {0};
  ft_stats_tree_json(t, &b);
  FT_CHECK(buf_is(&b,
                  "{\"name\":\"/\",\"requests\":0,\"ok\":0,\"attempts\":0,"
                  "\"retries\":0,\"bytes\":0,\"statuses\":{\"other\":0},"
                  "\"errors\":{},\"latency_ms\":{\"p50\":0.000,\"p90\":0.000,"
                  "\"p99\":0.000,\"max\":0.000},\"limits\":{},"
                  "\"children\":[]}"));
  ft_buf_free(&b);

  ft_obj_settings c3 = cap(3), r5 = rate(5, 0), half = rate(0.5, 2000);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/", &c3), FT_OK);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &r5), FT_OK);
  ft_object *hb = get(t, "/host/b"); /* b before a: output sorts by name */
  ft_object *ha = get(t, "/host/a");
  ft_object *q = get(t, "/q\"x");
  FT_CHECK_EQ_INT(ft_object_set(q, &half), FT_OK);
  get(t, "/a");
  ft_response ok = {0};
  ok.status = 200;
  ok.attempts = 2;
  ok.body_len = 10;
  ok.elapsed_ms = 5.0;
  ft_object_count(ha, &ok);
  ft_response to = {0};
  to.attempts = 3;
  to.error = FT_ERR_TIMEOUT;
  to.elapsed_ms = 2.0;
  ft_object_count(hb, &to);
  ft_stats_tree_json(t, &b);
  FT_CHECK(json_balanced(b.data, b.len));
  static const char *want[] = {
      "{\"name\":\"/\",\"requests\":2,\"ok\":1,\"attempts\":5,\"retries\":3,"
      "\"bytes\":10,\"statuses\":{\"200\":1,\"other\":0},"
      "\"errors\":{\"timeout\":1},",
      "\"max\":5.000},\"limits\":{\"concurrency\":3},\"children\":[{"
      "\"name\":\"/a\",",
      "{\"name\":\"/host/a\",\"requests\":1,\"ok\":1,\"attempts\":2,"
      "\"retries\":1,\"bytes\":10,\"statuses\":{\"200\":1,\"other\":0},"
      "\"errors\":{},",
      "\"limits\":{\"rps\":5,\"window_ms\":1000},\"children\":[]}",
      "{\"name\":\"/host/b\",\"requests\":1,\"ok\":0,\"attempts\":3,"
      "\"retries\":2,\"bytes\":0,\"statuses\":{\"other\":0},"
      "\"errors\":{\"timeout\":1},",
      "\"name\":\"/q\\\"x\"",
      "\"limits\":{\"rps\":0.5,\"window_ms\":2000}",
      "\"limits\":{},\"children\":[{\"name\":\"/host/a\"",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    if (find(&b, want[i]) == NULL)
      fprintf(stderr, "  missing: %s\n", want[i]);
    FT_CHECK(find(&b, want[i]) != NULL);
  }
  /* children sorted by name at every level */
  const char *pa = find(&b, "\"/a\""), *ph = find(&b, "\"/host\"");
  const char *pha = find(&b, "\"/host/a\""), *phb = find(&b, "\"/host/b\"");
  const char *pq = find(&b, "\"/q\\\"x\"");
  FT_CHECK(pa && ph && pha && phb && pq);
  FT_CHECK(pa < ph && ph < pha && pha < phb && phb < pq);
  ft_buf_free(&b);

  /* the JSON checker itself rejects unbalanced text */
  FT_CHECK(!json_balanced("{\"a\":[}", 7));
  FT_CHECK(!json_balanced("{}{}", 4));
  FT_CHECK(!json_balanced("{\"}\"", 4));
  ft_tree_free(t);
}

/* ---- walking and scale -------------------------------------------------- */

static void check_order(ft_object *o, void *ud) {
  size_t *n = ud;
  FT_CHECK(o->udata == NULL);
  FT_CHECK(o->parent == NULL || o->parent->udata != NULL);
  o->udata = o; /* visited */
  (*n)++;
}

FT_TEST(test_foreach_parents_first) {
  static const char *names[] = {"/c/d/e", "/a", "/c/f", "/b/x/y/z", "/c"};
  ft_tree *t = new_tree();
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    get(t, names[i]);
  size_t n = 0;
  ft_tree_foreach(t, check_order, &n);
  FT_CHECK_EQ_INT(n, ft_tree_count(t));
  FT_CHECK_EQ_INT(n, 10);
  ft_tree_free(t);
}

/* ft_tree_walk: enter before the children, which come in bytewise name
 * order whatever the creation order, leave after the last descendant. */
static void walk_enter(ft_object *o, void *ud) {
  ft_buf *b = ud;
  ft_buf_puts(b, "(");
  ft_buf_puts(b, o->name);
}

static void walk_leave(ft_object *o, void *ud) {
  ft_buf *b = ud;
  (void)o;
  ft_buf_puts(b, ")");
}

FT_TEST(test_walk_name_order) {
  static const char *names[] = {"/c/d/e", "/a", "/c/f", "/b/x/y/z", "/c",
                                "/B"};
  ft_tree *t = new_tree();
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    get(t, names[i]);
  ft_buf b = {0};
  ft_tree_walk(t, walk_enter, walk_leave, &b);
  ft_buf_putc(&b, '\0');
  FT_CHECK_EQ_STR(b.data, "(/(/B)(/a)(/b(/b/x(/b/x/y(/b/x/y/z))))"
                          "(/c(/c/d(/c/d/e))(/c/f)))");
  /* either callback may be NULL */
  b.len = 0;
  ft_tree_walk(t, NULL, walk_leave, &b);
  FT_CHECK_EQ_INT(b.len, ft_tree_count(t));
  b.len = 0;
  ft_tree_walk(t, walk_enter, NULL, &b);
  ft_buf_putc(&b, '\0');
  FT_CHECK_EQ_STR(b.data, "(/(/B(/a(/b(/b/x(/b/x/y(/b/x/y/z(/c(/c/d(/c/d/e(/c/f");
  ft_buf_free(&b);
  /* a rate is reported as configured, and only where one is set */
  ft_obj_settings st = {0};
  st.has_rps = 1;
  st.rps = 2.5;
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/c", &st), FT_OK);
  double rps = -1, window_ms = -1;
  FT_CHECK_EQ_INT(ft_object_rate(get(t, "/c"), &rps, &window_ms), 1);
  FT_CHECK(rps == 2.5 && window_ms == 1000);
  rps = -1;
  FT_CHECK_EQ_INT(ft_object_rate(get(t, "/c/f"), &rps, &window_ms), 0);
  FT_CHECK(rps == -1);
  ft_tree_free(t);
}

/* ft_tree_new's slot: slot_size zeroed bytes per object, aligned for any
 * type, each object's its own and kept until ft_tree_free; none with 0. */
FT_TEST(test_object_slot) {
  ft_tree *t = NULL;
  FT_CHECK_EQ_INT(ft_tree_new(&t, FT_TREE_SLOT_MAX + 1), FT_EINVAL);
  FT_CHECK(t == NULL);
  FT_CHECK_EQ_INT(ft_tree_new(NULL, 8), FT_EINVAL);
  static const char *names[] = {"/", "/a", "/ab", "/abc", "/a/bcdefg",
                                "/abcdefgh", "/abcdefghi/j"};
  enum { N = sizeof(names) / sizeof(names[0]) };
  for (size_t size = 1; size <= 40; size += 13) {
    FT_CHECK_EQ_INT(ft_tree_new(&t, size), FT_OK);
    unsigned char *slots[N];
    for (size_t i = 0; i < N; i++) {
      ft_object *o = get(t, names[i]);
      slots[i] = o->slot;
      FT_CHECK(slots[i] != NULL);
      FT_CHECK((uintptr_t)slots[i] % _Alignof(max_align_t) == 0);
      for (size_t k = 0; k < size; k++)
        FT_CHECK(slots[i][k] == 0);
      memset(slots[i], (int)(i + 1), size); /* ASan: all of it is ours */
    }
    for (size_t i = 0; i < N; i++) {
      FT_CHECK(get(t, names[i])->slot == slots[i]);
      for (size_t k = 0; k < size; k++)
        FT_CHECK(slots[i][k] == i + 1); /* no object wrote over another */
      FT_CHECK_EQ_STR(get(t, names[i])->name, names[i]);
    }
    ft_tree_free(t);
  }
  t = new_tree(); /* slot_size 0 */
  FT_CHECK(get(t, "/x")->slot == NULL && ft_tree_root(t)->slot == NULL);
  ft_tree_free(t);
}

FT_TEST(test_many_objects_fast) {
  enum { HOSTS = 5000, LOOKUPS = 10 };
  struct timespec a, z;
  clock_gettime(CLOCK_MONOTONIC, &a);
  ft_tree *t = new_tree();
  ft_obj_settings r = rate(100, 1000);
  FT_CHECK_EQ_INT(ft_tree_configure(t, "/host/*", &r), FT_OK);
  ft_object **objs = malloc(2 * HOSTS * sizeof(*objs));
  char name[64];
  for (int i = 0; i < HOSTS; i++) {
    snprintf(name, sizeof(name), "/host/h%d/p", i);
    objs[2 * i + 1] = get(t, name);
    objs[2 * i] = objs[2 * i + 1]->parent;
  }
  FT_CHECK_EQ_INT(ft_tree_count(t), 2 * HOSTS + 2);
  int wrong = 0;
  for (int k = 0; k < LOOKUPS; k++) {
    for (int i = 0; i < HOSTS; i++) {
      snprintf(name, sizeof(name), "/host/h%d", i);
      wrong += ft_tree_get(t, name, NULL) != objs[2 * i];
      snprintf(name, sizeof(name), "/host/h%d/p", i);
      ft_object *o = ft_tree_get(t, name, NULL);
      wrong += o != objs[2 * i + 1];
      ft_object_start(o, (uint64_t)k);
      ft_object_finish(o);
    }
  }
  FT_CHECK_EQ_INT(wrong, 0);
  FT_CHECK(objs[0]->limiter != NULL && objs[1]->limiter == NULL);
  ft_buf b = {0};
  ft_stats_tree_json(t, &b);
  FT_CHECK(json_balanced(b.data, b.len));
  ft_buf_free(&b);
  ft_tree_free(t);
  free(objs);
  clock_gettime(CLOCK_MONOTONIC, &z);
  double secs = (double)(z.tv_sec - a.tv_sec) + (z.tv_nsec - a.tv_nsec) / 1e9;
  if (secs >= 0.5)
    fprintf(stderr, "  took %.3f s\n", secs);
  FT_CHECK(secs < 0.5);
}

int main(void) {
  FT_RUN(test_same_name_same_object);
  FT_RUN(test_last_lookup_cache);
  FT_RUN(test_ancestors);
  FT_RUN(test_invalid_names);
  FT_RUN(test_pattern_rows);
  FT_RUN(test_bad_patterns_and_settings);
  FT_RUN(test_configure_rate_the_limiter_refuses);
  FT_RUN(test_configure_before_and_after);
  FT_RUN(test_later_pattern_wins_per_field);
  FT_RUN(test_retries_inheritance);
  FT_RUN(test_concurrency_caps);
  FT_RUN(test_rates_root_and_hosts);
  FT_RUN(test_host_rates_independent);
  FT_RUN(test_admit_delay_is_largest);
  FT_RUN(test_live_rps_lower_then_higher);
  FT_RUN(test_stats_aggregation);
  FT_RUN(test_status_overflow);
  FT_RUN(test_stats_retries);
  FT_RUN(test_latency_percentiles);
  FT_RUN(test_json);
  FT_RUN(test_foreach_parents_first);
  FT_RUN(test_walk_name_order);
  FT_RUN(test_object_slot);
  FT_RUN(test_many_objects_fast);
  return FT_DONE();
}
