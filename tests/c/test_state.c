/* test_state.c - the conformance suite of ft_state (core/state.h): every test
 * runs against every backend in `backends` below; a new backend is one more
 * row there, and is done when this file passes. Callbacks are counted,
 * libuv-style. The sqlite backend's own promises: test_state_sqlite.c; the
 * redis backend's: test_state_redis.c. The redis row runs against a
 * redis-server this program starts (ft_redis.h) and stops; without one
 * (not installed: `make deps`) every redis row fails. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "ft_redis.h"
#include "ft_test.h"
#include "state.h"

/* ---- the backends ------------------------------------------------------- */

typedef struct backend {
  const char *name;
  const char *prefix; /* the address ft_state_open takes, before a path */
  int file;           /* the address ends with a fresh temporary file */
  int redis;          /* the address is our redis-server's, a fresh prefix */
  const ft_state_backend *be;
} backend;

static const backend backends[] = {
    {"memory", "memory:", 0, 0, &ft_state_memory_backend},
    {"sqlite", "sqlite:", 1, 0, &ft_state_sqlite_backend},
    {"redis", "redis://", 0, 1, &ft_state_redis_backend},
};

static char addr[128]; /* the current test's address */
static char path[96];  /* its file, if any */
static ft_redis_server redis; /* port 0: it did not start */

static void fresh_address(const backend *b) {
  static int serial;
  path[0] = '\0';
  if (b->file) {
    snprintf(path, sizeof path, "/tmp/ft_state_test_XXXXXX");
    int fd = mkstemp(path);
    if (fd >= 0)
      close(fd);
  }
  if (b->redis) /* each test its own keys; reopening finds them again */
    snprintf(path, sizeof path, "127.0.0.1:%d/0?prefix=t%d:", redis.port,
             ++serial);
  snprintf(addr, sizeof addr, "%s%s", b->prefix, path);
}

/* What ft_state_open_backend takes for the current address: the path, the
 * redis address after its scheme, or NULL. */
static const char *backend_where(const backend *b) {
  return path[0] != '\0' ? path : NULL;
}

static void remove_files(void) {
  static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
  char p[128];
  for (size_t i = 0; path[0] == '/' && i < sizeof sfx / sizeof sfx[0]; i++) {
    snprintf(p, sizeof p, "%s%s", path, sfx[i]);
    unlink(p);
  }
}

/* Opens the current address; a failure fails the test. */
static ft_state *open_state(void) {
  ft_state *s = NULL;
  char err[256] = "";
  int rc = ft_state_open(&s, addr, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "  ft_state_open(%s): %d %s\n", addr, rc, err);
    ft_test_cur_failed_ = 1;
  }
  return s;
}

/* Runs test fn once per backend, each on a fresh address, as one line of
 * output per backend. */
#define RUN_ALL(fn)                                                           \
  for (size_t bi_ = 0; bi_ < sizeof backends / sizeof backends[0]; bi_++) {   \
    fresh_address(&backends[bi_]);                                            \
    ft_test_cur_failed_ = 0;                                                  \
    fn(&backends[bi_]);                                                       \
    remove_files();                                                           \
    if (ft_test_cur_failed_)                                                  \
      ft_test_failed_++;                                                      \
    else                                                                      \
      ft_test_passed_++;                                                      \
    printf("%s - %s [%s]\n", ft_test_cur_failed_ ? "not ok" : "ok", #fn,     \
           backends[bi_].name);                                               \
  }

/* ---- helpers -------------------------------------------------------------- */

static int has_value(ft_state *s, const char *obj, const char *key,
                     size_t klen, const char *want, size_t wlen) {
  char *v = NULL;
  size_t len = 0;
  int rc = ft_state_kv_get(s, obj, key, klen, &v, &len);
  int ok = rc == 0 && len == wlen && memcmp(v, want, wlen) == 0 &&
           v[len] == '\0';
  free(v);
  return ok;
}

static int is_absent(ft_state *s, const char *obj, const char *key,
                     size_t klen) {
  char *v = (char *)"x";
  return ft_state_kv_get(s, obj, key, klen, &v, NULL) == FT_ENOTFOUND &&
         v == NULL;
}

/* kv_list results as "key=value," (a NUL byte in a key as \0). */
typedef struct collect {
  char buf[1024];
  int calls, stop_after;
  ft_state *reenter; /* if set: deletes every key it is handed */
  const char *obj;
} collect;

static int collect_kv(void *ud, const char *key, size_t klen, const void *val,
                      size_t len) {
  collect *c = ud;
  for (size_t i = 0; i < klen; i++) {
    size_t n = strlen(c->buf);
    snprintf(c->buf + n, sizeof c->buf - n, key[i] ? "%c" : "\\0", key[i]);
  }
  size_t n = strlen(c->buf);
  snprintf(c->buf + n, sizeof c->buf - n, "=%.*s,", (int)len,
           (const char *)val);
  c->calls++;
  if (c->reenter != NULL)
    ft_state_kv_delete(c->reenter, c->obj, key, klen);
  return c->stop_after > 0 && c->calls >= c->stop_after;
}

/* frontier_take results: ids and blobs, with a callback count. */
typedef struct taken {
  int64_t ids[64];
  char blobs[64][16];
  int calls, stop_after;
  ft_state *reenter; /* if set: takes again, acks the id it holds */
  int inner;         /* requests the re-entrant take handed out */
} taken;

static int take_cb(void *ud, int64_t id, const void *blob, size_t len) {
  taken *t = ud;
  if (t->calls < 64) {
    t->ids[t->calls] = id;
    snprintf(t->blobs[t->calls], sizeof t->blobs[0], "%.*s", (int)len,
             (const char *)blob);
  }
  t->calls++;
  if (t->reenter != NULL) {
    ft_state *s = t->reenter;
    t->reenter = NULL;
    taken in = {0};
    t->inner = ft_state_frontier_take(s, 1, take_cb, &in);
    if (in.calls == 1 && in.ids[0] == id)
      t->inner = -1000; /* the request in hand was handed out again */
    ft_state_frontier_ack(s, id);
    t->reenter = s;
  }
  return t->stop_after > 0 && t->calls >= t->stop_after;
}

static int ids_are(const taken *t, const int64_t *want, int n) {
  if (t->calls != n)
    return 0;
  for (int i = 0; i < n; i++)
    if (t->ids[i] != want[i])
      return 0;
  return 1;
}

/* seen_add answers, counted. */
typedef struct seen_count {
  int calls, fresh, status;
} seen_count;

static void seen_cb(void *ud, const unsigned char key[16], int is_new,
                    int status) {
  seen_count *c = ud;
  c->calls++;
  c->fresh += is_new;
  if (status != 0)
    c->status = status;
}

/* The answer of one seen_add, which must come before it returns: 1 new, 0
 * seen, negative an error, -100 no answer yet. */
static int seen1(ft_state *s, const unsigned char key[16]) {
  seen_count c = {0};
  int rc = ft_state_seen_add(s, key, seen_cb, &c);
  if (rc != 0)
    return c.calls == 0 ? rc : -200; /* an error and an answer: wrong */
  if (c.calls != 1)
    return -100;
  return c.status != 0 ? c.status : c.fresh;
}

/* ---- opening ------------------------------------------------------------------ */

/* The address picks the backend; an unknown file is an SQLite file, an
 * unknown scheme an error. */
FT_TEST(test_open_by_address) {
  static const struct {
    const char *addr, *backend;
  } rows[] = {
      {NULL, "memory"},
      {"", "memory"},
      {"memory:", "memory"},
      {"sqlite::memory:", "sqlite"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    ft_state *s = NULL;
    char err[256];
    FT_CHECK_EQ_INT(ft_state_open(&s, rows[i].addr, err, sizeof err), 0);
    FT_CHECK_EQ_STR(ft_state_backend_name(s), rows[i].backend);
    FT_CHECK_EQ_INT(ft_state_durable(s), strcmp(rows[i].backend, "sqlite") == 0);
    ft_state_close(s);
  }
  char p[64];
  snprintf(p, sizeof p, "/tmp/ft_state_test_XXXXXX");
  int fd = mkstemp(p);
  if (fd >= 0)
    close(fd);
  ft_state *s = NULL;
  char err[256];
  FT_CHECK_EQ_INT(ft_state_open(&s, p, err, sizeof err), 0);
  FT_CHECK_EQ_STR(ft_state_backend_name(s), "sqlite");
  ft_state_close(s);
  unlink(p);
  char wal[80];
  snprintf(wal, sizeof wal, "%s-wal", p);
  unlink(wal);
  snprintf(wal, sizeof wal, "%s-shm", p);
  unlink(wal);
  FT_CHECK_EQ_INT(ft_state_open(NULL, NULL, err, sizeof err), FT_EINVAL);
  /* a scheme of no backend here is refused, not taken as a file name */
  static const char *const unknown[] = {"rediss://127.0.0.1:1/", "memcache://x",
                                        "sqlite3://f.db"};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    s = NULL;
    err[0] = '\0';
    FT_CHECK_EQ_INT(ft_state_open(&s, unknown[i], err, sizeof err), FT_EINVAL);
    FT_CHECK(s == NULL);
    FT_CHECK(strstr(err, "unknown state address") != NULL);
    FT_CHECK(access(unknown[i], F_OK) != 0); /* no file of that name */
  }
}

/* ---- key-value storage ----------------------------------------------------------- */

static void kv_put_get_delete(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  static const struct {
    char op; /* p put, d delete, g get (want NULL = absent) */
    const char *key, *val;
  } steps[] = {
      {'g', "a", NULL},       {'p', "a", "one"},   {'g', "a", "one"},
      {'p', "a", "two"},      {'g', "a", "two"},   {'p', "b", "bee"},
      {'d', "a", NULL},       {'g', "a", NULL},    {'g', "b", "bee"},
      {'d', "nothere", NULL}, {'p', "a", "again"}, {'g', "a", "again"},
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    const char *k = steps[i].key, *v = steps[i].val;
    if (steps[i].op == 'p')
      FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", k, strlen(k), v, strlen(v)), 0);
    else if (steps[i].op == 'd')
      FT_CHECK_EQ_INT(ft_state_kv_delete(s, "o", k, strlen(k)), 0);
    else if (v == NULL)
      FT_CHECK(is_absent(s, "o", k, strlen(k)));
    else
      FT_CHECK(has_value(s, "o", k, strlen(k), v, strlen(v)));
  }
  FT_CHECK_EQ_INT(ft_state_kv_put(s, NULL, "k", 1, "v", 1), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", NULL, 0, "v", 1), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, NULL, 1), FT_EINVAL);
  FT_CHECK(!ft_state_broken(s)); /* misuse breaks nothing */
  ft_state_close(s);
}

/* Values and keys are bytes: NUL bytes are data ("a\0b" and "a" are two
 * keys), an empty value is not an absent one, and objects do not share
 * keys. */
static void kv_bytes_and_objects(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  static const char bin[] = {'a', 0, 'b', 0, 0, (char)0xFF, 'c'};
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "bin", 3, bin, sizeof bin), 0);
  FT_CHECK(has_value(s, "o", "bin", 3, bin, sizeof bin));
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "empty", 5, NULL, 0), 0);
  FT_CHECK(has_value(s, "o", "empty", 5, "", 0));
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "a", 1, "plain", 5), 0);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "a\0b", 3, "nul", 3), 0);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "a\0", 2, "end", 3), 0);
  FT_CHECK(has_value(s, "o", "a", 1, "plain", 5));
  FT_CHECK(has_value(s, "o", "a\0b", 3, "nul", 3));
  FT_CHECK(has_value(s, "o", "a\0", 2, "end", 3));
  collect c = {0};
  FT_CHECK_EQ_INT(ft_state_kv_list(s, "o", "a", 1, 0, collect_kv, &c), 0);
  FT_CHECK_EQ_STR(c.buf, "a=plain,a\\0=end,a\\0b=nul,");
  memset(&c, 0, sizeof c);
  FT_CHECK_EQ_INT(ft_state_kv_list(s, "o", "a\0", 2, 0, collect_kv, &c), 0);
  FT_CHECK_EQ_STR(c.buf, "a\\0=end,a\\0b=nul,");
  FT_CHECK_EQ_INT(ft_state_kv_delete(s, "o", "a\0b", 3), 0);
  FT_CHECK(is_absent(s, "o", "a\0b", 3));
  FT_CHECK(has_value(s, "o", "a", 1, "plain", 5));
  /* objects */
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "A", "k", 1, "from A", 6), 0);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "B", "k", 1, "from B", 6), 0);
  FT_CHECK_EQ_INT(ft_state_kv_delete(s, "A", "k", 1), 0);
  FT_CHECK(is_absent(s, "A", "k", 1));
  FT_CHECK(has_value(s, "B", "k", 1, "from B", 6));
  memset(&c, 0, sizeof c);
  FT_CHECK_EQ_INT(ft_state_kv_list(s, "A", NULL, 0, 0, collect_kv, &c), 0);
  FT_CHECK_EQ_INT(c.calls, 0);
  /* a long key (past any short-key buffer) */
  char big[1000];
  memset(big, 'k', sizeof big);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", big, sizeof big, "v", 1), 0);
  FT_CHECK(has_value(s, "o", big, sizeof big, "v", 1));
  ft_state_close(s);
}

/* Prefix listing is an exact byte range, in byte order (shorter first), at
 * most `limit`, stopped by the callback; the callback may write. */
static void kv_list_prefix_limit(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  static const char *const keys[] = {
      "b",   "a",   "a\xff\x01", "a\xff", "a\xffz", "a\xfe", "\xff\xff",
      "\xff\xff" "a", "\xff", "ab%", "abc", "a_c", "A"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    FT_CHECK_EQ_INT(
        ft_state_kv_put(s, "o", keys[i], strlen(keys[i]), "v", 1), 0);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "other", "a\xff", 2, "x", 1), 0);
  static const struct {
    const char *prefix;
    int limit, stop_after;
    const char *want;
    int calls;
  } cases[] = {
      {NULL, 0, 0,
       "A=v,a=v,a_c=v,ab%=v,abc=v,a\xfe=v,a\xff=v,a\xff\x01=v,a\xffz=v,b=v,"
       "\xff=v,\xff\xff=v,\xff\xff" "a=v,",
       13},
      {"", 3, 0, "A=v,a=v,a_c=v,", 3},
      {"a\xff", 0, 0, "a\xff=v,a\xff\x01=v,a\xffz=v,", 3},
      {"\xff", 0, 0, "\xff=v,\xff\xff=v,\xff\xff" "a=v,", 3},
      {"a_", 0, 0, "a_c=v,", 1},
      {"%", 0, 0, "", 0},
      {"a", 2, 0, "a=v,a_c=v,", 2},
      {"a", 0, 2, "a=v,a_c=v,", 2},
      {"a", -1, 0,
       "a=v,a_c=v,ab%=v,abc=v,a\xfe=v,a\xff=v,a\xff\x01=v,a\xffz=v,", 8},
      {"zz", 0, 0, "", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    collect c = {.stop_after = cases[i].stop_after};
    const char *p = cases[i].prefix;
    FT_CHECK_EQ_INT(ft_state_kv_list(s, "o", p, p ? strlen(p) : 0,
                                     cases[i].limit, collect_kv, &c),
                    0);
    FT_CHECK_EQ_STR(c.buf, cases[i].want);
    FT_CHECK_EQ_INT(c.calls, cases[i].calls);
  }
  /* a callback that deletes what it is handed sees every entry once */
  collect c = {.reenter = s, .obj = "o"};
  FT_CHECK_EQ_INT(ft_state_kv_list(s, "o", "a", 1, 0, collect_kv, &c), 0);
  FT_CHECK_EQ_INT(c.calls, 8);
  memset(&c, 0, sizeof c);
  FT_CHECK_EQ_INT(ft_state_kv_list(s, "o", NULL, 0, 0, collect_kv, &c), 0);
  FT_CHECK_EQ_STR(c.buf, "A=v,b=v,\xff=v,\xff\xff=v,\xff\xff" "a=v,");
  ft_state_close(s);
}

/* ---- the frontier ---------------------------------------------------------------- */

/* Order, batches, late ids, duplicates, acks and the count. */
static void frontier_order_batches_ack(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  char blob[16];
  for (int i = 1; i <= 5; i++) {
    snprintf(blob, sizeof blob, "r%d", i);
    FT_CHECK_EQ_INT(ft_state_frontier_push(s, i * 10, blob, strlen(blob)), 0);
  }
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 5);
  taken t = {0};
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 2, take_cb, &t), 2);
  FT_CHECK(ids_are(&t, (int64_t[]){10, 20}, 2));
  FT_CHECK_EQ_STR(t.blobs[1], "r2");
  /* a duplicate id is refused and breaks nothing */
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 20, "dup", 3), FT_EINVAL);
  FT_CHECK(!ft_state_broken(s));
  memset(&t, 0, sizeof t);
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 2, take_cb, &t), 2);
  FT_CHECK(ids_are(&t, (int64_t[]){30, 40}, 2));
  /* late ids (at or below the highest handed out) come next, in order */
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 35, "late", 4), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 5, "early", 5), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 60, "r6", 2), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 0, "", 0), 0); /* empty blob */
  memset(&t, 0, sizeof t);
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 5);
  FT_CHECK(ids_are(&t, (int64_t[]){0, 5, 35, 50, 60}, 5));
  FT_CHECK_EQ_STR(t.blobs[0], "");
  FT_CHECK_EQ_STR(t.blobs[2], "late");
  memset(&t, 0, sizeof t);
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 0);
  FT_CHECK_EQ_INT(t.calls, 0);
  /* the count is of requests not acked, taken or not */
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 9);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 10), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 10), 0); /* absent: fine */
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 999), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 8);
  /* an acked id may come back as a new request */
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 10, "again", 5), 0);
  memset(&t, 0, sizeof t);
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 1);
  FT_CHECK(ids_are(&t, (int64_t[]){10}, 1));
  FT_CHECK_EQ_STR(t.blobs[0], "again");
  ft_state_close(s);
}

/* A callback that stops the take, or takes again and acks the request it
 * holds: nothing is handed out twice, the stopping one counts as taken. */
static void frontier_take_reentrant_and_stop(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  for (int i = 1; i <= 6; i++)
    FT_CHECK_EQ_INT(ft_state_frontier_push(s, i, "x", 1), 0);
  taken t = {.stop_after = 2};
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 2);
  FT_CHECK(ids_are(&t, (int64_t[]){1, 2}, 2));
  t = (taken){.reenter = s};
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 2, take_cb, &t), 2);
  /* 3 handed out, inside it 4 (taken by the inner take), then 5, inside
   * it 6: `limit` counts what this take handed out, not what it skipped */
  FT_CHECK(ids_are(&t, (int64_t[]){3, 5}, 2));
  FT_CHECK_EQ_INT(t.inner, 1);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 4); /* 3 and 5 acked */
  memset(&t, 0, sizeof t);
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 7, "y", 1), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 1);
  FT_CHECK(ids_are(&t, (int64_t[]){7}, 1));
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, NULL, NULL), FT_EINVAL);
  ft_state_close(s);
}

/* What a durable backend keeps: requests taken but not acked are handed
 * out again after a reopen; committed acks stay acked. */
static void frontier_survives_reopen(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  if (!ft_state_durable(s)) { /* nothing to reopen */
    ft_state_close(s);
    return;
  }
  for (int i = 1; i <= 3; i++)
    FT_CHECK_EQ_INT(ft_state_frontier_push(s, i, "x", 1), 0);
  taken t = {0};
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 3);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 2), 0);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  ft_state_close(s);
  s = open_state();
  if (s == NULL)
    return;
  memset(&t, 0, sizeof t);
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 2);
  FT_CHECK(ids_are(&t, (int64_t[]){1, 3}, 2));
  ft_state_close(s);
}

/* ---- the seen set ------------------------------------------------------------------ */

/* add-if-absent, answered exactly once per call and (on these backends)
 * before the call returns; keys are 16 raw bytes, NUL bytes included. */
static void seen_add_if_absent(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  unsigned char k[3][16];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 16; j++)
      k[i][j] = (unsigned char)(i * 16 + j * 7 + (j == 0 ? 0 : 0x80));
  k[2][3] = 0;
  FT_CHECK_EQ_INT(seen1(s, k[0]), 1);
  FT_CHECK_EQ_INT(seen1(s, k[1]), 1);
  FT_CHECK_EQ_INT(seen1(s, k[0]), 0);
  FT_CHECK_EQ_INT(seen1(s, k[2]), 1);
  FT_CHECK_EQ_INT(seen1(s, k[2]), 0);
  /* many keys, each answered once: all new, then all seen */
  seen_count c = {0};
  unsigned char key[16] = {0};
  for (int i = 0; i < 5000; i++) {
    memcpy(key, &i, sizeof i);
    key[15] = 0xAB;
    FT_CHECK_EQ_INT(ft_state_seen_add(s, key, seen_cb, &c), 0);
  }
  FT_CHECK_EQ_INT(c.calls, 5000);
  FT_CHECK_EQ_INT(c.fresh, 5000);
  c = (seen_count){0};
  for (int i = 0; i < 5000; i++) {
    memcpy(key, &i, sizeof i);
    key[15] = 0xAB;
    FT_CHECK_EQ_INT(ft_state_seen_add(s, key, seen_cb, &c), 0);
  }
  FT_CHECK_EQ_INT(c.calls, 5000);
  FT_CHECK_EQ_INT(c.fresh, 0);
  FT_CHECK_EQ_INT(c.status, 0);
  FT_CHECK_EQ_INT(ft_state_seen_add(s, key, NULL, NULL), FT_EINVAL);
  ft_state_close(s);
}

/* ---- metadata and reset ------------------------------------------------------------ */

static void meta_get_set(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  char *v = (char *)"x";
  FT_CHECK_EQ_INT(ft_state_meta_get(s, "next_id", &v), FT_ENOTFOUND);
  FT_CHECK(v == NULL);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "next_id", "41"), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_tail", ""), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "next_id", "42"), 0);
  FT_CHECK_EQ_INT(ft_state_meta_get(s, "next_id", &v), 0);
  FT_CHECK(v != NULL && strcmp(v, "42") == 0);
  free(v);
  FT_CHECK_EQ_INT(ft_state_meta_get(s, "out_tail", &v), 0);
  FT_CHECK(v != NULL && strcmp(v, "") == 0);
  free(v);
  ft_state_close(s);
}

/* reset forgets the frontier, the seen set and the metadata; object storage
 * stays, and ids start over. */
static void reset_keeps_storage(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  const unsigned char key[16] = {1, 2, 3};
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, "v", 1), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 1, "a", 1), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 2, "b", 1), 0);
  taken t = {0};
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 1, take_cb, &t), 1);
  FT_CHECK_EQ_INT(seen1(s, key), 1);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "finished", "1"), 0);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  FT_CHECK_EQ_INT(ft_state_reset(s), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 0);
  memset(&t, 0, sizeof t);
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 0);
  FT_CHECK_EQ_INT(seen1(s, key), 1);
  char *v = NULL;
  FT_CHECK_EQ_INT(ft_state_meta_get(s, "finished", &v), FT_ENOTFOUND);
  FT_CHECK(has_value(s, "o", "k", 1, "v", 1));
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 1, "again", 5), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_cb, &t), 1);
  FT_CHECK(ids_are(&t, (int64_t[]){1}, 1));
  ft_state_close(s);
}

/* ---- commit, abandon, broken ------------------------------------------------------- */

/* After abandon every write and commit fails with FT_EIO and the reason,
 * reads still answer; a durable backend is back at its last commit when
 * reopened. */
static void abandon_breaks(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  const unsigned char key[16] = {9};
  FT_CHECK_EQ_INT(ft_state_commit(s), 0); /* nothing to commit: fine */
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "kept", 4, "1", 1), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 1, "a", 1), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "100"), 0);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  FT_CHECK(!ft_state_broken(s));
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "lost", 4, "2", 1), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "200"), 0);
  ft_state_abandon(s, "writing records failed");
  FT_CHECK(ft_state_broken(s));
  FT_CHECK(strstr(ft_state_errmsg(s), "writing records failed") != NULL);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, "v", 1), FT_EIO);
  FT_CHECK(strstr(ft_state_errmsg(s), "writing records failed") != NULL);
  FT_CHECK_EQ_INT(ft_state_kv_delete(s, "o", "kept", 4), FT_EIO);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 2, "b", 1), FT_EIO);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 1), FT_EIO);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "finished", "1"), FT_EIO);
  FT_CHECK(seen1(s, key) == FT_EIO);
  FT_CHECK_EQ_INT(ft_state_reset(s), FT_EIO);
  FT_CHECK_EQ_INT(ft_state_commit(s), FT_EIO);
  FT_CHECK(strstr(ft_state_errmsg(s), "writing records failed") != NULL);
  FT_CHECK(has_value(s, "o", "kept", 4, "1", 1)); /* reads answer */
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 1);
  int durable = ft_state_durable(s);
  ft_state_close(s);
  ft_state_abandon(NULL, "x"); /* allowed */
  FT_CHECK(!ft_state_broken(NULL));
  if (!durable)
    return;
  s = open_state();
  if (s == NULL)
    return;
  FT_CHECK(!ft_state_broken(s));
  FT_CHECK(has_value(s, "o", "kept", 4, "1", 1));
  FT_CHECK(is_absent(s, "o", "lost", 4));
  char *v = NULL;
  FT_CHECK_EQ_INT(ft_state_meta_get(s, "out_offset", &v), 0);
  FT_CHECK(v != NULL && strcmp(v, "100") == 0);
  free(v);
  ft_state_close(s);
}

/* Committed writes are what a durable backend has after a reopen; the
 * uncommitted ones at close are committed by close (a state that is not
 * broken). */
static void commit_then_reopen(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  if (!ft_state_durable(s)) {
    ft_state_close(s);
    return;
  }
  const unsigned char key[16] = {7, 7};
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "a", 1, "1", 1), 0);
  FT_CHECK_EQ_INT(seen1(s, key), 1);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "b", 1, "2", 1), 0);
  ft_state_close(s);
  s = open_state();
  if (s == NULL)
    return;
  FT_CHECK(has_value(s, "o", "a", 1, "1", 1));
  FT_CHECK(has_value(s, "o", "b", 1, "2", 1));
  FT_CHECK_EQ_INT(seen1(s, key), 0);
  ft_state_close(s);
}

/* ---- rate limits ---------------------------------------------------------------------- */

/* The largest number of starts in any half-open window [t, t + w). */
static int max_in_window(const uint64_t *t, int n, uint64_t w) {
  int best = 0;
  for (int i = 0, j = 0; i < n; i++) {
    while (t[i] - t[j] >= w)
      j++;
    if (i - j + 1 > best)
      best = i - j + 1;
  }
  return best;
}

/* Grants of every size, asked at clock times that move on unevenly: never
 * more than K starts in any window, across grants, and no slower than the
 * rule allows (with demand always waiting, start i is (i / K) windows after
 * the first). */
static void limiter_grants_exact(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  const uint64_t W = 1000000000ull; /* 1 s */
  const double rps = 10;            /* K = 10 */
  static uint64_t all[2000];
  int n = 0, grants = 0;
  uint64_t now = 5 * W;
  unsigned seed = 12345;
  while (n < 1000) {
    seed = seed * 1103515245u + 12345u;
    int want = 1 + (int)((seed >> 16) % 7);
    uint64_t got[8];
    int g = ft_state_limiter_grant(s, "host", rps, W, now, 3 * W, want, got);
    FT_CHECK(g >= 0 && g <= want);
    if (g < 0)
      break;
    grants++;
    for (int i = 0; i < g; i++) {
      FT_CHECK(got[i] >= now && got[i] <= now + 3 * W);
      FT_CHECK(n == 0 || got[i] >= all[n - 1]);
      all[n++] = got[i];
    }
    if (g == 0) /* the horizon is full: time passes */
      now += W / 3;
    else
      now += (seed >> 8) % (W / 20);
  }
  FT_CHECK(grants > 100);
  FT_CHECK_EQ_INT(max_in_window(all, n, W), 10);
  /* full rate: demand was always there, so start i is at the first plus
   * floor(i / K) windows */
  for (int i = 10; i < n; i++)
    if (all[i] != all[i - 10] + W) {
      FT_CHECK_EQ_INT(all[i] - all[i - 10], W);
      break;
    }
  /* another object has its own limit */
  uint64_t got[10];
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "other", rps, W, now, 0, 10, got),
                  10);
  FT_CHECK_EQ_INT(got[9], now);
  ft_state_close(s);
}

/* Unlimited, a horizon of 0, a rate change between grants, and rates the
 * limiter refuses. */
static void limiter_grant_edges(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  const uint64_t W = 1000000000ull;
  uint64_t got[20];
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "u", 0, W, 77, 0, 20, got), 20);
  FT_CHECK(got[0] == 77 && got[19] == 77);
  /* 2 per second: a grant of 5 with no horizon gets the 2 that start now */
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "h", 2, W, W, 0, 5, got), 2);
  FT_CHECK(got[0] == W && got[1] == W);
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "h", 2, W, W, 0, 5, got), 0);
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "h", 2, W, W, W, 5, got), 2);
  FT_CHECK(got[0] == 2 * W && got[1] == 2 * W);
  /* raised to 4 per second: two more fit in the window already used */
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "h", 4, W, 2 * W, 0, 5, got), 2);
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "h", NAN, W, 0, 0, 1, got),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "h", 1e12, W, 0, 0, 1, got),
                  FT_ERANGE);
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "h", 2, W, 0, 0, 0, got), 0);
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, NULL, 2, W, 0, 0, 1, got),
                  FT_EINVAL);
  ft_state_close(s);
}

/* ---- concurrency caps ------------------------------------------------------------------ */

/* Three holders ask for batches of 2 of a cap of 3: never more than 3 held
 * between them, each grant exactly what is free (min(want, cap - held)), a
 * release gives slots back to the others. A backend that over-grants fails
 * the first step (B would get 2). */
static void slots_cap_across_holders(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  const uint64_t L = 1000000000ull; /* leases that do not end here */
  int held = -1;
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, 2, L, 10, &held), 2);
  FT_CHECK_EQ_INT(held, 2);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "B", 3, 2, L, 11, &held), 1);
  FT_CHECK_EQ_INT(held, 1);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "C", 3, 2, L, 12, &held), 0);
  FT_CHECK_EQ_INT(held, 0);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, 2, L, 13, &held), 0);
  FT_CHECK_EQ_INT(held, 2); /* A keeps what it had */
  /* another object has its own cap; the own holder (NULL) is a holder */
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "p", NULL, 3, 2, L, 14, &held), 2);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "p", "", 3, 2, L, 14, &held), 1);
  FT_CHECK_EQ_INT(held, 3);
  /* releases give back: to the releaser's count and to the others */
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "A", 1, 20), 1);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "C", 3, 2, L, 21, &held), 1);
  FT_CHECK_EQ_INT(held, 1);
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "B", 5, 22), 1); /* had 1 */
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "B", 1, 22), 0); /* none */
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "nobody", 1, 22), 0);
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "A", 0, 22), 0);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, 2, L, 23, &held), 1);
  FT_CHECK_EQ_INT(held, 2);
  /* many batches of random sizes from four holders, with releases: the
   * answers are exactly those of a model that never lets out more than 3 */
  static const char *const names[] = {"A", "B", "C", "D"};
  int model[4] = {2, 0, 1, 0}; /* what A..D hold now */
  int calls = 0, granted = 0, capped = 0; /* capped: g < want */
  unsigned seed = 777;
  for (int i = 0; i < 2000; i++) {
    seed = seed * 1103515245u + 12345u;
    int who = (int)((seed >> 16) % 4), want = (int)((seed >> 20) % 3);
    int total = model[0] + model[1] + model[2] + model[3];
    if ((seed >> 24) % 3 == 0) {
      int r = ft_state_slots_release(s, "o", names[who], want, 30 + i);
      FT_CHECK_EQ_INT(r, want < model[who] ? want : model[who]);
      model[who] -= r > 0 ? r : 0;
      continue;
    }
    int g = ft_state_slots_acquire(s, "o", names[who], 3, want, L, 30 + i,
                                   &held);
    calls++;
    int expect = want < 3 - total ? want : 3 - total;
    FT_CHECK_EQ_INT(g, expect);
    if (g != expect)
      break;
    model[who] += g;
    granted += g;
    capped += g < want;
    FT_CHECK_EQ_INT(held, model[who]);
    FT_CHECK(model[0] + model[1] + model[2] + model[3] <= 3);
  }
  /* the loop granted often, and often hit the cap */
  FT_CHECK(calls > 1000 && granted > 200 && capped > 100);
  ft_state_close(s);
}

/* The cap is each call's: lowering it takes nothing back and grants nothing
 * until the holders are under it; raising it lets more out at once. */
static void slots_cap_changes(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  const uint64_t L = 1000000000ull;
  int held = -1;
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 4, 4, L, 1, &held), 4);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "B", 2, 1, L, 2, &held), 0);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 2, 0, L, 3, &held), 0);
  FT_CHECK_EQ_INT(held, 4); /* nothing taken back */
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "A", 2, 4), 2);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "B", 2, 1, L, 5, &held), 0);
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "A", 1, 6), 1);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "B", 2, 5, L, 7, &held), 1);
  FT_CHECK_EQ_INT(held, 1);
  /* raised to 6: 4 more (A 1, B 1 held), in one batch */
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "B", 6, 9, L, 8, &held), 4);
  FT_CHECK_EQ_INT(held, 5);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 6, 9, L, 9, &held), 0);
  FT_CHECK_EQ_INT(held, 1);
  ft_state_close(s);
}

/* Leases: a holder's slots come back to the others when its lease ends
 * (at now_ns >= acquire + lease_ns, on the injected clock); acquiring, want
 * 0 included, renews all of the holder's slots; the holder learns through
 * held that it lost them, and releasing them then gives back nothing. */
static void slots_leases_expire(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  int held = -1;
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, 2, 100, 1000, &held),
                  2);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "B", 3, 3, 100, 1050, &held),
                  1);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "C", 3, 3, 100, 1099, &held),
                  0);
  /* A's lease ends at 1100: its 2 slots are free for C */
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "C", 3, 3, 100, 1100, &held),
                  2);
  FT_CHECK_EQ_INT(held, 2);
  /* A renews too late: it held nothing, and nothing is free */
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, 0, 100, 1101, &held),
                  0);
  FT_CHECK_EQ_INT(held, 0);
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "A", 2, 1101), 0);
  /* C renews at 1190 (want 0): its lease now ends at 1290, not 1200 */
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "C", 3, 0, 100, 1190, &held),
                  0);
  FT_CHECK_EQ_INT(held, 2);
  /* B (1050 + 100) has expired; C has not */
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, 3, 100, 1250, &held),
                  1);
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "B", 1, 1250), 0);
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "C", 3, 1289), 2);
  /* a grant renews the older slots with the new ones; a lease that would
   * pass the clock's end holds until then */
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "x", "A", 2, 1, 100, 0, &held), 1);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "x", "A", 2, 1, 100, 90, &held),
                  1);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "x", "B", 2, 1, 100, 150, &held),
                  0);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "x", "B", 2, 1, 100, 190, &held),
                  1);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "y", "A", 1, 1, UINT64_MAX, 5,
                                         &held),
                  1);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "y", "B", 1, 1, 1, UINT64_MAX - 1,
                                         &held),
                  0);
  ft_state_close(s);
}

/* Misuse is refused with FT_EINVAL and held 0, and breaks nothing; slots are
 * not part of the batch: a broken state still acquires and releases. */
static void slots_bad_arguments_and_broken(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  int held = -1;
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, NULL, "A", 3, 1, 100, 0, &held),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(held, 0);
  held = -1;
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 0, 1, 100, 0, &held),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(held, 0);
  FT_CHECK(strstr(ft_state_errmsg(s), "slots_acquire") != NULL);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", -3, 1, 100, 0, &held),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, -1, 100, 0, &held),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, 1, 0, 0, &held),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(NULL, "o", "A", 3, 1, 100, 0, &held),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_slots_release(s, NULL, "A", 1, 0), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "A", -1, 0), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_slots_release(NULL, "o", "A", 1, 0), FT_EINVAL);
  FT_CHECK(!ft_state_broken(s));
  /* nothing was granted by the refused calls: the whole cap is free */
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, 5, 100, 0, NULL), 3);
  ft_state_abandon(s, "gone");
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "A", 2, 1), 2);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "B", 3, 5, 100, 1, &held), 2);
  FT_CHECK_EQ_INT(held, 2);
  uint64_t got[2];
  FT_CHECK_EQ_INT(ft_state_limiter_grant(s, "o", 0, 1000, 5, 0, 2, got), 2);
  ft_state_close(s);
}

/* A backend without the slot ops is served from this process (the sqlite
 * row always is; here the memory backend too); one with only one of the two
 * cannot be opened. */
static void slots_without_ops(const backend *b) {
  ft_state_backend be = *b->be;
  be.slots_acquire = NULL;
  be.slots_release = NULL;
  ft_state *s = NULL;
  char err[256] = "";
  FT_CHECK_EQ_INT(
      ft_state_open_backend(&s, &be, backend_where(b), err, sizeof err),
      0);
  if (s == NULL)
    return;
  int held = -1;
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "A", 3, 2, 100, 0, &held), 2);
  FT_CHECK_EQ_INT(held, 2);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "B", 3, 2, 100, 0, &held), 1);
  FT_CHECK_EQ_INT(ft_state_slots_release(s, "o", "A", 2, 50), 2);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "C", 3, 3, 100, 100, &held),
                  3); /* B's lease ended at 100 */
  FT_CHECK_EQ_INT(ft_state_slots_acquire(s, "o", "C", 0, 3, 100, 100, &held),
                  FT_EINVAL);
  FT_CHECK(strstr(ft_state_errmsg(s), "slots_acquire") != NULL);
  ft_state_close(s);
  for (int half = 0; half < 2; half++) {
    ft_state_backend one = *b->be;
    if (half == 0) {
      one.slots_acquire = ft_state_memory_backend.slots_acquire;
      one.slots_release = NULL;
    } else {
      one.slots_acquire = NULL;
      one.slots_release = ft_state_memory_backend.slots_release;
    }
    s = NULL;
    err[0] = '\0';
    FT_CHECK_EQ_INT(
        ft_state_open_backend(&s, &one, backend_where(b), err, sizeof err),
        FT_EINVAL);
    FT_CHECK(s == NULL);
    FT_CHECK(strstr(err, "slots_release") != NULL);
  }
}

/* ---- SQL (optional) --------------------------------------------------------------------- */

typedef struct rows {
  char buf[256];
  int calls;
} rows;

static int row_cb(void *ud, int ncols, const char *const *names,
                  const ft_sql_value *vals) {
  rows *r = ud;
  r->calls++;
  for (int i = 0; i < ncols; i++) {
    size_t n = strlen(r->buf);
    if (vals[i].type == FT_SQL_INT)
      snprintf(r->buf + n, sizeof r->buf - n, "%s:%lld;", names[i],
               (long long)vals[i].i);
    else
      snprintf(r->buf + n, sizeof r->buf - n, "%s:?;", names[i]);
  }
  return 0;
}

/* memory and sqlite have obj.storage:sql (memory through its private
 * SQLite); the SQL tables are committed and abandoned with the state.
 * Redis has no SQL: it refuses, saying what would work. */
static void sql_where_present(const backend *b) {
  ft_state *s = open_state();
  if (s == NULL)
    return;
  char err[256] = "";
  if (b->redis) {
    FT_CHECK(!ft_state_has_sql(s));
    FT_CHECK_EQ_INT(ft_state_sql(s, "o", "SELECT 1", NULL, 0, NULL, NULL,
                                 NULL, err, sizeof err),
                    FT_EINVAL);
    FT_CHECK_EQ_STR(err, "obj.storage:sql needs a SQLite state (--state FILE);"
                         " this run's state is redis");
    FT_CHECK(!ft_state_broken(s));
    ft_state_close(s);
    return;
  }
  FT_CHECK(ft_state_has_sql(s));
  int64_t ch = -1;
  FT_CHECK_EQ_INT(ft_state_sql(s, "o", "CREATE TABLE {t}(x)", NULL, 0, NULL,
                               NULL, &ch, err, sizeof err),
                  0);
  ft_sql_value v = {.type = FT_SQL_INT, .i = 7};
  FT_CHECK_EQ_INT(ft_state_sql(s, "o", "INSERT INTO {t} VALUES (?)", &v, 1,
                               NULL, NULL, &ch, err, sizeof err),
                  0);
  FT_CHECK_EQ_INT(ch, 1);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  rows r = {0};
  FT_CHECK_EQ_INT(ft_state_sql(s, "o", "SELECT x FROM {t}", NULL, 0, row_cb,
                               &r, NULL, err, sizeof err),
                  0);
  FT_CHECK_EQ_STR(r.buf, "x:7;");
  /* another object does not see it */
  FT_CHECK_EQ_INT(ft_state_sql(s, "p", "SELECT x FROM {t}", NULL, 0, row_cb,
                               &r, NULL, err, sizeof err),
                  FT_EINVAL);
  FT_CHECK(strstr(err, "no such table") != NULL);
  ft_state_abandon(s, "gone");
  FT_CHECK_EQ_INT(ft_state_sql(s, "o", "INSERT INTO {t} VALUES (8)", NULL, 0,
                               NULL, NULL, NULL, err, sizeof err),
                  FT_EIO);
  FT_CHECK(strstr(err, "gone") != NULL);
  ft_state_close(s);
}

/* A backend without the sql op refuses obj.storage:sql with a message
 * that says what would work. */
static void sql_absent_says_so(const backend *b) {
  ft_state_backend nosql = *b->be;
  nosql.sql = NULL;
  ft_state *s = NULL;
  char err[256] = "";
  FT_CHECK_EQ_INT(
      ft_state_open_backend(&s, &nosql, backend_where(b), err, sizeof err),
      0);
  if (s == NULL)
    return;
  FT_CHECK(!ft_state_has_sql(s));
  FT_CHECK_EQ_INT(ft_state_sql(s, "o", "SELECT 1", NULL, 0, NULL, NULL, NULL,
                               err, sizeof err),
                  FT_EINVAL);
  FT_CHECK(strstr(err, "obj.storage:sql needs a SQLite state (--state FILE)") !=
           NULL);
  FT_CHECK(strstr(ft_state_errmsg(s), "needs a SQLite state") != NULL);
  FT_CHECK(!ft_state_broken(s));
  ft_state_close(s);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  char err[256];
  if (ft_redis_start(&redis, err, sizeof err) != 0)
    fprintf(stderr, "  redis-server: %s: every redis row fails\n", err);
  FT_RUN(test_open_by_address);
  RUN_ALL(kv_put_get_delete);
  RUN_ALL(kv_bytes_and_objects);
  RUN_ALL(kv_list_prefix_limit);
  RUN_ALL(frontier_order_batches_ack);
  RUN_ALL(frontier_take_reentrant_and_stop);
  RUN_ALL(frontier_survives_reopen);
  RUN_ALL(seen_add_if_absent);
  RUN_ALL(meta_get_set);
  RUN_ALL(reset_keeps_storage);
  RUN_ALL(abandon_breaks);
  RUN_ALL(commit_then_reopen);
  RUN_ALL(limiter_grants_exact);
  RUN_ALL(limiter_grant_edges);
  RUN_ALL(slots_cap_across_holders);
  RUN_ALL(slots_cap_changes);
  RUN_ALL(slots_leases_expire);
  RUN_ALL(slots_bad_arguments_and_broken);
  RUN_ALL(slots_without_ops);
  RUN_ALL(sql_where_present);
  RUN_ALL(sql_absent_says_so);
  ft_redis_stop(&redis);
  return FT_DONE();
}
