/* test_state_redis.c - what the redis state backend (core/state_redis.c)
 * promises beyond the conformance suite (test_state.c): its addresses, its
 * key layout and prefixes, a commit as one MULTI/EXEC in one round trip,
 * and what a failed commit does. Against redis-servers this program starts
 * (ft_redis.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ft_redis.h"
#include "ft_test.h"
#include "state.h"

static ft_redis_server redis; /* port 0: it did not start */

/* A direct connection to our server, to look behind the backend. */
static redisContext *direct(void) {
  struct timeval tv = {5, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", redis.port, tv);
  if (c == NULL || c->err) {
    fprintf(stderr, "  cannot connect to redis-server on %d\n", redis.port);
    ft_test_cur_failed_ = 1;
    if (c != NULL)
      redisFree(c);
    return NULL;
  }
  return c;
}

/* The integer after "name:" (or "name=" for commandstats' calls=) in INFO
 * section; 0 when absent. */
static long long info_field(redisContext *c, const char *section,
                            const char *name) {
  redisReply *r = redisCommand(c, "INFO %s", section);
  long long v = 0;
  if (r != NULL && r->type == REDIS_REPLY_STRING) {
    const char *p = strstr(r->str, name);
    if (p != NULL)
      v = strtoll(p + strlen(name), NULL, 10);
  }
  if (r != NULL)
    freeReplyObject(r);
  return v;
}

static long long command(redisContext *c, const char *fmt, const char *arg) {
  redisReply *r = redisCommand(c, fmt, arg);
  long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  if (r != NULL)
    freeReplyObject(r);
  return v;
}

/* Opens "redis://" + where; a failure fails the test. */
static ft_state *open_at(const char *where) {
  char a[256], err[256] = "";
  snprintf(a, sizeof a, "redis://%s", where);
  ft_state *s = NULL;
  int rc = ft_state_open(&s, a, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "  ft_state_open(%s): %d %s\n", a, rc, err);
    ft_test_cur_failed_ = 1;
  }
  return s;
}

/* The answer of one seen_add, which this backend gives before returning:
 * 1 new, 0 seen, negative an error, -100 no answer. */
static void seen_cb(void *ud, const unsigned char key[16], int is_new,
                    int status) {
  *(int *)ud = status != 0 ? status : is_new;
}

static int seen1(ft_state *s, const unsigned char key[16]) {
  int answer = -100;
  int rc = ft_state_seen_add(s, key, seen_cb, &answer);
  return rc != 0 ? rc : answer;
}

/* kv_list results as "key=value,". */
static int list_cb(void *ud, const char *key, size_t klen, const void *val,
                   size_t len) {
  char *buf = ud;
  size_t n = strlen(buf);
  snprintf(buf + n, 128 - n, "%.*s=%.*s,", (int)klen, key, (int)len,
           (const char *)val);
  return 0;
}

/* frontier_take results: ids, the second blob, whether ascending. */
typedef struct takes {
  int64_t ids[400];
  int n, ordered;
  char blob2[16];
} takes;

static int takes_cb(void *ud, int64_t id, const void *blob, size_t len) {
  takes *t = ud;
  if (t->n == 0)
    t->ordered = 1;
  else if (id <= t->ids[t->n - 1])
    t->ordered = 0;
  if (t->n == 1)
    snprintf(t->blob2, sizeof t->blob2, "%.*s", (int)len, (const char *)blob);
  if (t->n < 400)
    t->ids[t->n++] = id;
  return 0;
}

/* ---- addresses ----------------------------------------------------------- */

/* Good addresses open (and land where they say: the db, the prefix); bad
 * ones fail with these exact messages, which never repeat the address (it
 * may hold a password). "%d" stands for our server's port, "%c" for a port
 * where nothing listens. */
FT_TEST(test_addresses) {
  static const struct {
    const char *where;
    int rc;
    const char *msg; /* exact; or, for a server's answer, its start */
    int exact;
  } rows[] = {
      {"127.0.0.1:%d", 0, NULL, 1},
      {"127.0.0.1:%d/", 0, NULL, 1},
      {"127.0.0.1:%d/0", 0, NULL, 1},
      {"127.0.0.1:%d/3?prefix=job%%3A7:", 0, NULL, 1},
      {"localhost:%d/2", 0, NULL, 1},
      {"", FT_EINVAL, "redis address: no host (redis://HOST[:PORT])", 1},
      {"/0", FT_EINVAL, "redis address: no host (redis://HOST[:PORT])", 1},
      {"h:0", FT_EINVAL, "redis address: port must be 1 to 65535", 1},
      {"h:70000", FT_EINVAL, "redis address: ", 0},
      {"h:1/x", FT_EINVAL,
       "redis address: the path must be a database number (/0, /1, ...)", 1},
      {"h:1/1/2", FT_EINVAL,
       "redis address: the path must be a database number (/0, /1, ...)", 1},
      {"h:1/-1", FT_EINVAL,
       "redis address: the path must be a database number (/0, /1, ...)", 1},
      {"h:1/99999999999", FT_EINVAL,
       "redis address: the path must be a database number (/0, /1, ...)", 1},
      {"h:1?job=x", FT_EINVAL,
       "redis address: unknown parameter 'job' (the one known is prefix=)", 1},
      {"h:1?prefix", FT_EINVAL,
       "redis address: unknown parameter 'prefix' (the one known is prefix=)",
       1},
      {"h:1?prefix=a&prefix=b", FT_EINVAL, "redis address: prefix= given twice",
       1},
      {"h:1?prefix=", FT_EINVAL,
       "redis address: prefix= must be a non-empty string without NUL bytes",
       1},
      {"h:1?prefix=a%00b", FT_EINVAL,
       "redis address: prefix= must be a non-empty string without NUL bytes",
       1},
      {"h:1#x", FT_EINVAL,
       "redis address: a fragment (#...) means nothing here", 1},
      {"user@h:1", FT_EINVAL,
       "redis address: a user needs a password (redis://USER:PASSWORD@HOST)",
       1},
      {"127.0.0.1:%c", FT_EIO, "redis 127.0.0.1:%c: cannot connect: ", 0},
      {"127.0.0.1:%d/99", FT_EIO,
       "redis 127.0.0.1:%d: SELECT: ERR DB index is out of range", 1},
      {":secret@127.0.0.1:%d", FT_EIO,
       "redis 127.0.0.1:%d: AUTH: ERR AUTH <password> called without any"
       " password configured",
       0},
  };
  int closed = ft_redis_free_port();
  for (size_t i = 0; i < FT_N_ROWS(rows); i++) {
    char where[128], want[256], a[160], err[256] = "";
    const char *fmts[2] = {rows[i].where, rows[i].msg ? rows[i].msg : ""};
    char *outs[2] = {where, want};
    size_t lens[2] = {sizeof where, sizeof want};
    for (int f = 0; f < 2; f++) { /* %d: our port, %c: a closed one */
      char *o = outs[f];
      size_t n = 0;
      for (const char *p = fmts[f]; *p != '\0' && n + 8 < lens[f]; p++) {
        if (p[0] == '%' && (p[1] == 'd' || p[1] == 'c')) {
          n += (size_t)snprintf(o + n, lens[f] - n, "%d",
                                p[1] == 'd' ? redis.port : closed);
          p++;
        } else if (p[0] == '%' && p[1] == '%') {
          o[n++] = '%';
          p++;
        } else {
          o[n++] = *p;
        }
      }
      o[n] = '\0';
    }
    snprintf(a, sizeof a, "redis://%s", where);
    ft_state *s = NULL;
    int rc = ft_state_open(&s, a, err, sizeof err);
    int ok = rc == rows[i].rc &&
             (rows[i].msg == NULL ||
              (rows[i].exact ? strcmp(err, want) == 0
                             : strncmp(err, want, strlen(want)) == 0));
    if (!ok)
      fprintf(stderr, "  %s: %d \"%s\", want %d \"%s\"\n", a, rc, err,
              rows[i].rc, want);
    FT_CHECK(ok);
    FT_CHECK((rc == 0) == (s != NULL));
    if (s != NULL) {
      FT_CHECK_EQ_STR(ft_state_backend_name(s), "redis");
      FT_CHECK(ft_state_durable(s));
      FT_CHECK_EQ_INT(ft_state_meta_set(s, "where", where), 0);
      FT_CHECK_EQ_INT(ft_state_commit(s), 0);
    }
    ft_state_close(s);
  }
  /* the db and the prefix are where the writes went */
  redisContext *c = direct();
  if (c == NULL)
    return;
  redisReply *r = redisCommand(c, "SELECT 3");
  freeReplyObject(r);
  r = redisCommand(c, "HGET job:7:meta where");
  FT_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
  if (r != NULL && r->type == REDIS_REPLY_STRING)
    FT_CHECK(strstr(r->str, "/3?prefix=job%3A7:") != NULL);
  freeReplyObject(r);
  r = redisCommand(c, "SELECT 0");
  freeReplyObject(r);
  FT_CHECK_EQ_INT(command(c, "HEXISTS fetchtree:meta %s", "where"), 1);
  redisFree(c);
}

/* AUTH: a password (percent-encoded in the address) the server wants; a
 * wrong one is refused with the server's answer. */
FT_TEST(test_password) {
  redisContext *c = direct();
  if (c == NULL)
    return;
  redisReply *r = redisCommand(c, "CONFIG SET requirepass s@cret");
  freeReplyObject(r);
  char where[96], err[256] = "", a[128];
  snprintf(where, sizeof where, ":s%%40cret@127.0.0.1:%d", redis.port);
  ft_state *s = open_at(where);
  FT_CHECK(s != NULL);
  ft_state_close(s);
  snprintf(where, sizeof where, "default:s%%40cret@127.0.0.1:%d", redis.port);
  s = open_at(where);
  FT_CHECK(s != NULL);
  ft_state_close(s);
  snprintf(a, sizeof a, "redis://:wrong@127.0.0.1:%d", redis.port);
  s = NULL;
  FT_CHECK_EQ_INT(ft_state_open(&s, a, err, sizeof err), FT_EIO);
  FT_CHECK(s == NULL);
  char want[128];
  snprintf(want, sizeof want, "redis 127.0.0.1:%d: AUTH: WRONGPASS",
           redis.port);
  FT_CHECK(strncmp(err, want, strlen(want)) == 0);
  FT_CHECK(strstr(err, "wrong") == NULL); /* the password is not repeated */
  r = redisCommand(c, "CONFIG SET requirepass %s", "");
  FT_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
  freeReplyObject(r);
  redisFree(c);
}

/* ---- keys and prefixes --------------------------------------------------- */

/* Two jobs (prefixes) on one server share nothing: the same writes in both,
 * then one is reset; the other keeps everything. The keys are the ones the
 * design note names, under each prefix. */
FT_TEST(test_prefix_keeps_jobs_apart) {
  char wa[96], wb[96];
  snprintf(wa, sizeof wa, "127.0.0.1:%d/5?prefix=a:", redis.port);
  snprintf(wb, sizeof wb, "127.0.0.1:%d/5?prefix=b:", redis.port);
  ft_state *A = open_at(wa), *B = open_at(wb);
  if (A == NULL || B == NULL) {
    ft_state_close(A);
    ft_state_close(B);
    return;
  }
  const unsigned char key[16] = {1, 2, 3};
  ft_state *both[2] = {A, B};
  for (int i = 0; i < 2; i++) {
    ft_state *s = both[i];
    FT_CHECK_EQ_INT(ft_state_frontier_push(s, 1, i ? "B" : "A", 1), 0);
    FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, i ? "B" : "A", 1), 0);
    FT_CHECK_EQ_INT(ft_state_meta_set(s, "finished", i ? "B" : "A"), 0);
    FT_CHECK_EQ_INT(seen1(s, key), 1);
    FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  }
  redisContext *c = direct();
  if (c != NULL) {
    redisReply *r = redisCommand(c, "SELECT 5");
    freeReplyObject(r);
    r = redisCommand(c, "KEYS *");
    FT_CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY);
    char names[256] = "";
    if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
      /* sorted, so the check does not depend on Redis's order */
      for (size_t i = 0; i < r->elements; i++)
        for (size_t j = i + 1; j < r->elements; j++)
          if (strcmp(r->element[i]->str, r->element[j]->str) > 0) {
            redisReply *t = r->element[i];
            r->element[i] = r->element[j];
            r->element[j] = t;
          }
      for (size_t i = 0; i < r->elements; i++) {
        size_t n = strlen(names);
        snprintf(names + n, sizeof names - n, "%s ", r->element[i]->str);
      }
    }
    FT_CHECK_EQ_STR(names, "a:frontier a:kv:o a:kvx:o a:meta a:seen "
                           "b:frontier b:kv:o b:kvx:o b:meta b:seen ");
    freeReplyObject(r);
  }
  /* reset A: its frontier and metadata go, its storage stays; B keeps all */
  FT_CHECK_EQ_INT(ft_state_reset(A), 0);
  FT_CHECK_EQ_INT(ft_state_commit(A), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(A), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(B), 1);
  char *v = NULL;
  FT_CHECK_EQ_INT(ft_state_meta_get(A, "finished", &v), FT_ENOTFOUND);
  FT_CHECK_EQ_INT(ft_state_meta_get(B, "finished", &v), 0);
  FT_CHECK(v != NULL && strcmp(v, "B") == 0);
  free(v);
  FT_CHECK_EQ_INT(ft_state_kv_get(A, "o", "k", 1, &v, NULL), 0);
  FT_CHECK(v != NULL && strcmp(v, "A") == 0);
  free(v);
  if (c != NULL) {
    FT_CHECK_EQ_INT(command(c, "EXISTS %s", "a:frontier"), 0);
    FT_CHECK_EQ_INT(command(c, "EXISTS %s", "a:meta"), 0);
    FT_CHECK_EQ_INT(command(c, "EXISTS %s", "a:seen"), 0);
    FT_CHECK_EQ_INT(command(c, "SCARD %s", "b:seen"), 1);
    FT_CHECK_EQ_INT(command(c, "EXISTS %s", "a:kv:o"), 1);
    FT_CHECK_EQ_INT(command(c, "ZCARD %s", "b:frontier"), 1);
    redisFree(c);
  }
  ft_state_close(A);
  ft_state_close(B);
}

/* ---- the commit ---------------------------------------------------------- */

/* Writes send nothing; the commit is one MULTI and one EXEC that carry
 * them all, in one round trip: the server reads it in one go
 * (total_reads_processed, less the INFO that asks, moves by 1); an empty
 * commit sends nothing at all. */
FT_TEST(test_commit_is_one_round_trip) {
  char where[96];
  snprintf(where, sizeof where, "127.0.0.1:%d/6?prefix=rt:", redis.port);
  ft_state *s = open_at(where);
  redisContext *c = direct();
  if (s == NULL || c == NULL) {
    ft_state_close(s);
    if (c != NULL)
      redisFree(c);
    return;
  }
  long long multi0 = info_field(c, "commandstats", "cmdstat_multi:calls=");
  long long exec0 = info_field(c, "commandstats", "cmdstat_exec:calls=");
  long long hset0 = info_field(c, "commandstats", "cmdstat_hset:calls=");
  char k[24], v[24];
  for (int i = 0; i < 40; i++) { /* 40 puts, 40 deletes of other keys */
    snprintf(k, sizeof k, "key%d", i);
    snprintf(v, sizeof v, "value%d", i);
    FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", k, strlen(k), v, strlen(v)), 0);
    snprintf(k, sizeof k, "gone%d", i);
    FT_CHECK_EQ_INT(ft_state_kv_delete(s, "o", k, strlen(k)), 0);
  }
  for (int i = 0; i < 10; i++)
    FT_CHECK_EQ_INT(ft_state_frontier_ack(s, i), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "123"), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "next_id", "7"), 0);
  FT_CHECK_EQ_INT(ft_state_reset(s), 0);
  /* nothing sent yet */
  FT_CHECK_EQ_INT(info_field(c, "commandstats", "cmdstat_hset:calls="), hset0);
  long long reads0 = info_field(c, "stats", "total_reads_processed:");
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  long long reads1 = info_field(c, "stats", "total_reads_processed:");
  printf("# commit of 93 writes: %lld round trip(s)\n", reads1 - reads0 - 1);
  FT_CHECK_EQ_INT(reads1 - reads0 - 1, 1);
  FT_CHECK_EQ_INT(info_field(c, "commandstats", "cmdstat_multi:calls="),
                  multi0 + 1);
  FT_CHECK_EQ_INT(info_field(c, "commandstats", "cmdstat_exec:calls="),
                  exec0 + 1);
  FT_CHECK_EQ_INT(info_field(c, "commandstats", "cmdstat_hset:calls="),
                  hset0 + 40); /* the reset dropped the metadata's */
  /* nothing to commit: no round trip */
  reads0 = info_field(c, "stats", "total_reads_processed:");
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  reads1 = info_field(c, "stats", "total_reads_processed:");
  FT_CHECK_EQ_INT(reads1 - reads0 - 1, 0);
  /* what the commit wrote */
  redisReply *r = redisCommand(c, "SELECT 6");
  freeReplyObject(r);
  FT_CHECK_EQ_INT(command(c, "HLEN %s", "rt:kv:o"), 40);
  FT_CHECK_EQ_INT(command(c, "ZCARD %s", "rt:kvx:o"), 40);
  FT_CHECK_EQ_INT(command(c, "HLEN %s", "rt:meta"), 0); /* reset after */
  redisFree(c);
  ft_state_close(s);
}

/* A commit Redis refuses part of (a key of ours that someone made another
 * type: Redis runs the rest of a MULTI) breaks the state and says so; one
 * whose server is gone breaks it saying the outcome is unknown. */
FT_TEST(test_failed_commit_breaks) {
  char where[96];
  snprintf(where, sizeof where, "127.0.0.1:%d/7?prefix=f:", redis.port);
  ft_state *s = open_at(where);
  redisContext *c = direct();
  if (s != NULL && c != NULL) {
    redisReply *r = redisCommand(c, "SELECT 7");
    freeReplyObject(r);
    r = redisCommand(c, "SET f:kv:o not-a-hash");
    freeReplyObject(r);
    FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, "v", 1), 0);
    FT_CHECK_EQ_INT(ft_state_commit(s), FT_EIO);
    FT_CHECK(ft_state_broken(s));
    FT_CHECK(strstr(ft_state_errmsg(s),
                    "commit: redis applied part of the batch and refused the"
                    " rest: WRONGTYPE") != NULL);
    FT_CHECK_EQ_INT(ft_state_kv_put(s, "p", "k", 1, "v", 1), FT_EIO);
    FT_CHECK(strstr(ft_state_errmsg(s), "WRONGTYPE") != NULL);
  }
  ft_state_close(s);
  if (c != NULL)
    redisFree(c);
  /* a server of its own, stopped under the open state */
  ft_redis_server gone;
  char err[256];
  if (ft_redis_start(&gone, err, sizeof err) != 0) {
    fprintf(stderr, "  second redis-server: %s\n", err);
    ft_test_cur_failed_ = 1;
    return;
  }
  snprintf(where, sizeof where, "127.0.0.1:%d", gone.port);
  s = open_at(where);
  if (s != NULL) {
    FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, "v", 1), 0);
    ft_redis_stop(&gone);
    FT_CHECK_EQ_INT(ft_state_commit(s), FT_EIO);
    FT_CHECK(ft_state_broken(s));
    FT_CHECK(strstr(ft_state_errmsg(s),
                    "whether Redis applied the batch is unknown") != NULL);
    char *v = NULL;
    FT_CHECK(ft_state_kv_get(s, "o", "k", 1, &v, NULL) < 0); /* no server */
    FT_CHECK(v == NULL);
  }
  ft_state_close(s);
  ft_redis_stop(&gone);
}

/* The batch sees its own writes over Redis's: a committed key deleted or
 * replaced, then listed; committed requests acked and one pushed again,
 * then counted and taken across more than one page of a take; a committed
 * seen key, new again after a reset. */
FT_TEST(test_batch_over_committed) {
  char where[96];
  snprintf(where, sizeof where, "127.0.0.1:%d/8?prefix=o:", redis.port);
  ft_state *s = open_at(where);
  if (s == NULL)
    return;
  const unsigned char key[16] = {5};
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "a", 1, "1", 1), 0);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "b", 1, "2", 1), 0);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "c", 1, "3", 1), 0);
  for (int i = 1; i <= 300; i++) /* more than one page (256) of a take */
    FT_CHECK_EQ_INT(ft_state_frontier_push(s, i, "old", 3), 0);
  FT_CHECK_EQ_INT(seen1(s, key), 1);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  /* storage */
  FT_CHECK_EQ_INT(ft_state_kv_delete(s, "o", "b", 1), 0);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "c", 1, "new", 3), 0);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "d", 1, "4", 1), 0);
  char *v = NULL;
  FT_CHECK_EQ_INT(ft_state_kv_get(s, "o", "b", 1, &v, NULL), FT_ENOTFOUND);
  FT_CHECK_EQ_INT(ft_state_kv_get(s, "o", "c", 1, &v, NULL), 0);
  FT_CHECK(v != NULL && strcmp(v, "new") == 0);
  free(v);
  char list[128] = "";
  FT_CHECK_EQ_INT(ft_state_kv_list(s, "o", NULL, 0, 0, list_cb, list), 0);
  FT_CHECK_EQ_STR(list, "a=1,c=new,d=4,");
  list[0] = '\0';
  FT_CHECK_EQ_INT(ft_state_kv_list(s, "o", NULL, 0, 2, list_cb, list), 0);
  FT_CHECK_EQ_STR(list, "a=1,c=new,");
  /* the frontier: 300 committed; 2 and 3 acked, 2 pushed again, 301 new */
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 2), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 3), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 2, "new", 3), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 1, "dup", 3), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 301, "new", 3), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 300);
  takes t = {0};
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, takes_cb, &t), 300);
  FT_CHECK_EQ_INT(t.n, 300);
  FT_CHECK(t.ids[0] == 1 && t.ids[1] == 2 && t.ids[2] == 4 &&
           t.ids[299] == 301);
  FT_CHECK_EQ_STR(t.blob2, "new");
  FT_CHECK(t.ordered);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 300);
  /* the seen set */
  FT_CHECK_EQ_INT(seen1(s, key), 0);
  FT_CHECK_EQ_INT(ft_state_reset(s), 0);
  FT_CHECK_EQ_INT(seen1(s, key), 1);
  FT_CHECK_EQ_INT(seen1(s, key), 0);
  ft_state_close(s);
  /* reopened: what close committed, taken again from the start */
  s = open_at(where);
  if (s == NULL)
    return;
  FT_CHECK_EQ_INT(seen1(s, key), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 0);
  ft_state_close(s);
}

/* ---- limits shared by two holders ---------------------------------------- */

/* Two ft_states on one prefix (two processes of one job) share each
 * object's limits through Redis: their grants of random sizes, taken in
 * turn, never put more than K starts in any window between them, and run
 * at full rate; each one's own slot holder is its own, under one cap. The
 * local fallback (state.c, limits of this process only) fails both: each
 * would get the whole rate, and the whole cap. */
FT_TEST(test_limits_shared) {
  char where[96];
  snprintf(where, sizeof where, "127.0.0.1:%d/9?prefix=lim:", redis.port);
  ft_state *A = open_at(where), *B = open_at(where);
  if (A == NULL || B == NULL) {
    ft_state_close(A);
    ft_state_close(B);
    return;
  }
  const uint64_t W = 1000000000ull;
  static uint64_t all[600];
  int n = 0;
  uint64_t now = 7 * W;
  unsigned seed = 99;
  while (n < 500) {
    seed = seed * 1103515245u + 12345u;
    ft_state *s = (seed >> 16) & 1 ? A : B;
    int want = 1 + (int)((seed >> 18) % 6);
    uint64_t got[8];
    int g = ft_state_limiter_grant(s, "host", 10, W, now, 2 * W, want, got);
    FT_CHECK(g >= 0 && g <= want);
    if (g < 0)
      break;
    for (int i = 0; i < g; i++) {
      FT_CHECK(n == 0 || got[i] >= all[n - 1]); /* one sequence, shared */
      all[n++] = got[i];
    }
    now += g == 0 ? W / 4 : (seed >> 8) % (W / 30);
  }
  int best = 0;
  for (int i = 0, j = 0; i < n; i++) {
    while (all[i] - all[j] >= W)
      j++;
    best = i - j + 1 > best ? i - j + 1 : best;
  }
  FT_CHECK_EQ_INT(best, 10);
  FT_CHECK_EQ_INT(all[n - 1] - all[n - 11], W); /* full rate */
  /* slots: each ft_state's own holder (NULL) is distinct, the cap shared */
  const uint64_t L = 1000 * W;
  int held = -1;
  FT_CHECK_EQ_INT(ft_state_slots_acquire(A, "o", NULL, 3, 2, L, 1, &held), 2);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(B, "o", NULL, 3, 2, L, 2, &held), 1);
  FT_CHECK_EQ_INT(held, 1);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(B, "o", "", 3, 2, L, 3, &held), 0);
  FT_CHECK_EQ_INT(ft_state_slots_release(A, "o", NULL, 2, 4), 2);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(B, "o", NULL, 3, 5, L, 5, &held), 2);
  FT_CHECK_EQ_INT(held, 3);
  /* a reset of the job keeps its limits (state.h) */
  FT_CHECK_EQ_INT(ft_state_reset(A), 0);
  FT_CHECK_EQ_INT(ft_state_commit(A), 0);
  FT_CHECK_EQ_INT(ft_state_slots_acquire(A, "o", NULL, 3, 1, L, 6, &held), 0);
  ft_state_close(A);
  ft_state_close(B);
}

/* Two processes grant from one limit at once, as fast as they can: their
 * optimistic transactions collide (WATCH calls beyond the grants are the
 * ones started over), and still no window of W holds more than K of the
 * starts both were granted. */
FT_TEST(test_limits_two_processes) {
  const uint64_t W = 1000000000ull;
  enum { PER_CHILD = 300 };
  redisContext *c = direct();
  if (c == NULL)
    return;
  long long watch0 = info_field(c, "commandstats", "cmdstat_watch:calls=");
  int fds[2][2];
  pid_t pids[2] = {0, 0};
  for (int k = 0; k < 2; k++) {
    if (pipe(fds[k]) != 0 || (pids[k] = fork()) < 0) {
      FT_CHECK(0);
      return;
    }
    if (pids[k] == 0) { /* a worker: its own connection, its own clock */
      close(fds[k][0]);
      char where[96];
      snprintf(where, sizeof where, "127.0.0.1:%d/10?prefix=race:", redis.port);
      ft_state *s = NULL;
      char a[128], err[256];
      snprintf(a, sizeof a, "redis://%s", where);
      int rc = ft_state_open(&s, a, err, sizeof err);
      uint64_t now = 3 * W + (uint64_t)k * 7777;
      for (int n = 0; rc == 0 && n < PER_CHILD;) {
        uint64_t got[3]; /* grants of 3: n / 3 grants in all */
        int g =
            ft_state_limiter_grant(s, "shared", 20, W, now, 1000 * W, 3, got);
        if (g <= 0)
          break;
        if (write(fds[k][1], got, (size_t)g * sizeof got[0]) < 0)
          break;
        n += g;
        now += W / 100;
      }
      ft_state_close(s);
      close(fds[k][1]);
      _exit(0);
    }
    close(fds[k][1]);
  }
  static uint64_t all[2 * PER_CHILD + 16];
  size_t n = 0;
  for (int k = 0; k < 2; k++) {
    ssize_t r;
    while (n < FT_N_ROWS(all) &&
           (r = read(fds[k][0], (char *)(all + n),
                     (FT_N_ROWS(all) - n) * sizeof all[0])) > 0)
      n += (size_t)r / sizeof all[0]; /* writes of whole starts: atomic */
    close(fds[k][0]);
    int st = 0;
    waitpid(pids[k], &st, 0);
    FT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  FT_CHECK(n >= 2 * PER_CHILD);
  for (size_t i = 1; i < n; i++) /* insertion sort: one sequence */
    for (size_t j = i; j > 0 && all[j] < all[j - 1]; j--) {
      uint64_t t = all[j];
      all[j] = all[j - 1];
      all[j - 1] = t;
    }
  int best = 0;
  for (size_t i = 0, j = 0; i < n; i++) {
    while (all[i] - all[j] >= W)
      j++;
    best = (int)(i - j + 1) > best ? (int)(i - j + 1) : best;
  }
  FT_CHECK_EQ_INT(best, 20);
  long long watches = info_field(c, "commandstats", "cmdstat_watch:calls=");
  printf("# two processes, %zu starts granted: %lld transactions started"
         " over\n",
         n, watches - watch0 - (long long)(n / 3));
  redisFree(c);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  char err[256];
  if (ft_redis_start(&redis, err, sizeof err) != 0) {
    fprintf(stderr, "redis-server: %s\n", err);
    printf("not ok - redis-server\nc: 0 passed, 1 failed\n");
    return 1;
  }
  FT_RUN(test_addresses);
  FT_RUN(test_password);
  FT_RUN(test_prefix_keeps_jobs_apart);
  FT_RUN(test_commit_is_one_round_trip);
  FT_RUN(test_failed_commit_breaks);
  FT_RUN(test_batch_over_committed);
  FT_RUN(test_limits_shared);
  FT_RUN(test_limits_two_processes);
  ft_redis_stop(&redis);
  return FT_DONE();
}
