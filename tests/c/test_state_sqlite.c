/* test_state_sqlite.c - what only the sqlite backend of ft_state promises
 * (core/state_sqlite.c): SQL, durability, the file lock, damaged and foreign
 * files; what every backend promises is in test_state.c. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "ft_test.h"
#include "state.h"

/* ---- helpers ------------------------------------------------------------ */

/* The sqlite backend at path (NULL: a private in-memory database). */
static int sq_open_at(ft_state **out, const char *path, char *err,
                      size_t errlen) {
  return ft_state_open_backend(out, &ft_state_sqlite_backend, path, err,
                               errlen);
}

static void seen_answer(void *ud, const unsigned char key[16], int is_new,
                        int status) {
  *(int *)ud = status != 0 ? status : is_new;
}

/* ft_state_seen_add's answer (1 new, 0 seen) or its error. */
static int seen_add1(ft_state *s, const unsigned char key[16]) {
  int answer = -100;
  int rc = ft_state_seen_add(s, key, seen_answer, &answer);
  return rc != 0 ? rc : answer;
}

/* A fresh, empty temporary file name (mkstemp creates the file: an empty
 * file must open as a new store). */
static void tmp_path(char *buf, size_t len) {
  snprintf(buf, len, "/tmp/ft_storage_test_XXXXXX");
  int fd = mkstemp(buf);
  if (fd >= 0)
    close(fd);
}

static void tmp_remove(const char *path) {
  static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
  char p[256];
  for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
    snprintf(p, sizeof p, "%s%s", path, sfx[i]);
    unlink(p);
  }
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static ft_state *open_ok(const char *path) {
  ft_state *s = NULL;
  char err[256] = "";
  int rc = sq_open_at(&s, path, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "  sq_open_at(%s): %d %s\n", path ? path : "NULL", rc,
            err);
  return s;
}

/* open_ok for a test that cannot go on without the store (path NULL: in
 * memory): a failure is the test's, and the files go. */
static ft_state *open_or_fail(const char *path) {
  ft_state *s = open_ok(path);
  if (s == NULL) {
    ft_test_cur_failed_ = 1;
    if (path)
      tmp_remove(path);
  }
  return s;
}

/* An integer from a second, plain SQLite connection to path (-1 on error). */
static long long other_conn_int(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  long long v = -1;
  if (sqlite3_open(path, &db) == SQLITE_OK) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

/* Whether (obj, key) holds exactly the given bytes. */
static int has_value(ft_state *s, const char *obj, const char *key,
                     const char *want, size_t wlen) {
  char *v = NULL;
  size_t len = 0;
  int rc = ft_state_kv_get(s, obj, key, strlen(key), &v, &len);
  int ok =
      rc == 0 && len == wlen && memcmp(v, want, wlen) == 0 && v[len] == '\0';
  free(v);
  return ok;
}

/* Collects list results as "key=value," into a buffer. */
typedef struct collect {
  char buf[1024];
  int calls, stop_after;
} collect;

static int collect_row(void *ud, const char *key, size_t klen, const void *val,
                       size_t len) {
  collect *c = ud;
  for (size_t i = 0; i < klen; i++) { /* a NUL byte in a key as \0 */
    size_t n = strlen(c->buf);
    if (key[i] != '\0')
      snprintf(c->buf + n, sizeof c->buf - n, "%c", key[i]);
    else
      snprintf(c->buf + n, sizeof c->buf - n, "\\0");
  }
  size_t n = strlen(c->buf);
  snprintf(c->buf + n, sizeof c->buf - n, "=%.*s,", (int)len,
           (const char *)val);
  c->calls++;
  return c->stop_after > 0 && c->calls >= c->stop_after;
}

/* Collects SQL rows as "name:value|name:value;" (blobs and text with NUL
 * bytes as their length). */
typedef struct rows {
  char buf[2048];
  int calls;
} rows;

static int collect_sql(void *ud, int ncols, const char *const *names,
                       const ft_sql_value *vals) {
  rows *r = ud;
  r->calls++;
  for (int i = 0; i < ncols; i++) {
    size_t n = strlen(r->buf);
    char *p = r->buf + n;
    size_t room = sizeof r->buf - n;
    const ft_sql_value *v = &vals[i];
    switch (v->type) {
    case FT_SQL_NULL:
      snprintf(p, room, "%s:null", names[i]);
      break;
    case FT_SQL_INT:
      snprintf(p, room, "%s:%lld", names[i], (long long)v->i);
      break;
    case FT_SQL_REAL:
      snprintf(p, room, "%s:%g", names[i], v->r);
      break;
    case FT_SQL_TEXT:
      snprintf(p, room, "%s:t'%s'(%zu)", names[i], v->s, v->len);
      break;
    case FT_SQL_BLOB:
      snprintf(p, room, "%s:b(%zu)", names[i], v->len);
      break;
    }
    n = strlen(r->buf);
    snprintf(r->buf + n, sizeof r->buf - n, i + 1 < ncols ? "|" : ";");
  }
  return 0;
}

/* Runs one statement without arguments; returns the result code. */
static int sql0(ft_state *s, const char *obj, const char *q, rows *r,
                int64_t *changes, char *err, size_t errlen) {
  return ft_state_sql(s, obj, q, NULL, 0, r ? collect_sql : NULL, r, changes,
                      err, errlen);
}

/* ---- SQL on the object's tables ----------------------------------------- */

/* Create, insert with each argument type, select back with column names, and
 * the changes count of each kind of statement. */
FT_TEST(test_sql_types_names_changes) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  char err[256] = "";
  int64_t ch = -1;
  FT_CHECK_EQ_INT(sql0(s, "o", "CREATE TABLE {t}(n, i, r, s, b)", NULL, &ch,
                       err, sizeof err),
                  0);
  FT_CHECK_EQ_INT(ch, 0);
  static const char text[] = "te\0xt";
  static const unsigned char blob[] = {0, 1, 2, 0xFF};
  ft_sql_value args[] = {
      {.type = FT_SQL_NULL},
      {.type = FT_SQL_INT, .i = -9007199254740993LL},
      {.type = FT_SQL_REAL, .r = 2.5},
      {.type = FT_SQL_TEXT, .s = text, .len = 5},
      {.type = FT_SQL_BLOB, .s = (const char *)blob, .len = sizeof blob},
  };
  FT_CHECK_EQ_INT(ft_state_sql(s, "o", "INSERT INTO {t} VALUES (?, ?, ?, ?, ?)",
                               args, 5, NULL, NULL, &ch, err, sizeof err),
                  0);
  FT_CHECK_EQ_INT(ch, 1);
  rows r = {0};
  FT_CHECK_EQ_INT(sql0(s, "o", "SELECT n, i, r AS real, s, b FROM {t}", &r, &ch,
                       err, sizeof err),
                  0);
  FT_CHECK_EQ_INT(ch, 0);
  FT_CHECK_EQ_INT(r.calls, 1);
  FT_CHECK_EQ_STR(r.buf, "n:null|i:-9007199254740993|real:2.5|"
                         "s:t'te'(5)|b:b(4);");

  /* more rows, then UPDATE and DELETE counts; SELECT reports 0 */
  for (int i = 0; i < 4; i++) {
    ft_sql_value v = {.type = FT_SQL_INT, .i = i};
    FT_CHECK_EQ_INT(ft_state_sql(s, "o", "INSERT INTO {t}(i) VALUES (?1)", &v,
                                 1, NULL, NULL, &ch, err, sizeof err),
                    0);
  }
  FT_CHECK_EQ_INT(
      sql0(s, "o", "UPDATE {t} SET r = 1 WHERE i < 3", NULL, &ch, err, 256), 0);
  FT_CHECK_EQ_INT(ch, 4);
  FT_CHECK_EQ_INT(sql0(s, "o", "SELECT * FROM {t}", NULL, &ch, err, 256), 0);
  FT_CHECK_EQ_INT(ch, 0);
  FT_CHECK_EQ_INT(
      sql0(s, "o", "CREATE INDEX {t_i} ON {t}(i)", NULL, &ch, err, 256), 0);
  FT_CHECK_EQ_INT(ch, 0);
  FT_CHECK_EQ_INT(sql0(s, "o", "DELETE FROM {t} WHERE i >= 2 -- tail comment",
                       NULL, &ch, err, 256),
                  0);
  FT_CHECK_EQ_INT(ch, 2);
  memset(&r, 0, sizeof r);
  FT_CHECK_EQ_INT(sql0(s, "o", "SELECT count(*) AS c FROM {t};  /* end */ ;",
                       &r, &ch, err, 256),
                  0);
  FT_CHECK_EQ_STR(r.buf, "c:3;");
  /* {name} inside a literal stays as written; json_each is allowed */
  memset(&r, 0, sizeof r);
  FT_CHECK_EQ_INT(sql0(s, "o",
                       "SELECT '{t}' AS lit, count(*) AS n FROM "
                       "json_each('[1,2,3]')",
                       &r, NULL, err, 256),
                  0);
  FT_CHECK_EQ_STR(r.buf, "lit:t'{t}'(3)|n:3;");
  ft_state_close(s);
}

/* Two objects each have their own {t}. */
FT_TEST(test_sql_objects_isolated) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  char err[256] = "";
  const char *objs[] = {"alpha", "beta"};
  for (int o = 0; o < 2; o++) {
    FT_CHECK_EQ_INT(sql0(s, objs[o], "CREATE TABLE {t}(x TEXT)", NULL, NULL,
                         err, sizeof err),
                    0);
    ft_sql_value v = {
        .type = FT_SQL_TEXT, .s = objs[o], .len = strlen(objs[o])};
    for (int i = 0; i <= o; i++)
      FT_CHECK_EQ_INT(ft_state_sql(s, objs[o], "INSERT INTO {t} VALUES (?)", &v,
                                   1, NULL, NULL, NULL, err, sizeof err),
                      0);
  }
  rows a = {0}, b = {0};
  FT_CHECK_EQ_INT(sql0(s, "alpha", "SELECT x FROM {t}", &a, NULL, err, 256), 0);
  FT_CHECK_EQ_INT(sql0(s, "beta", "SELECT x FROM {t}", &b, NULL, err, 256), 0);
  FT_CHECK_EQ_STR(a.buf, "x:t'alpha'(5);");
  FT_CHECK_EQ_STR(b.buf, "x:t'beta'(4);x:t'beta'(4);");
  /* the real name is the object's prefix plus the name */
  char name[128];
  FT_CHECK_EQ_INT(ft_state_sql_table_name("alpha", "t", name, sizeof name), 0);
  FT_CHECK(strlen(name) == 20 && strncmp(name, "o_", 2) == 0 &&
           strcmp(name + 18, "_t") == 0);
  char name2[128];
  FT_CHECK_EQ_INT(ft_state_sql_table_name("beta", "t", name2, sizeof name2), 0);
  FT_CHECK(strcmp(name, name2) != 0);
  FT_CHECK_EQ_INT(ft_state_sql_table_name("alpha", "t", name, 20), FT_ERANGE);
  FT_CHECK_EQ_INT(ft_state_sql_table_name("alpha", "a-b", name, sizeof name),
                  FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_sql_table_name("alpha", "", name, sizeof name),
                  FT_EINVAL);
  ft_state_close(s);
}

/* Everything outside the object's own tables is refused with a reason, and
 * the refused statement changed nothing. */
FT_TEST(test_sql_refused) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  char err[256] = "";
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "other", "k", 1, "v", 1), 0);
  FT_CHECK_EQ_INT(sql0(s, "other", "CREATE TABLE {t}(x)", NULL, NULL, err, 256),
                  0);
  FT_CHECK_EQ_INT(
      sql0(s, "other", "INSERT INTO {t} VALUES (1)", NULL, NULL, err, 256), 0);
  FT_CHECK_EQ_INT(sql0(s, "me", "CREATE TABLE {t}(x)", NULL, NULL, err, 256),
                  0);
  char other_t[128], q1[256], q2[256];
  ft_state_sql_table_name("other", "t", other_t, sizeof other_t);
  snprintf(q1, sizeof q1, "SELECT * FROM \"%s\"", other_t);
  snprintf(q2, sizeof q2, "INSERT INTO {t} SELECT x FROM %s", other_t);
  const struct {
    const char *q, *want;
  } cases[] = {
      {q1, "not authorized"},
      {q2, "not authorized"},
      {"SELECT * FROM ft_kv", "not authorized"},
      {"DELETE FROM ft_kv", "not authorized"},
      {"SELECT * FROM ft_pending", "not authorized"},
      {"INSERT INTO ft_meta VALUES ('a', 'b')", "not authorized"},
      {"SELECT * FROM {t} JOIN ft_seen", "not authorized"},
      {"CREATE TABLE plain(x)", "not authorized"},
      {"CREATE INDEX {i} ON ft_kv(val)", "not authorized"},
      {"CREATE TRIGGER {tr} AFTER INSERT ON ft_kv BEGIN SELECT 1; END",
       "not authorized"},
      {"SELECT * FROM sqlite_master", "not authorized"},
      {"SELECT * FROM 'sqlite_schema'", "not authorized"},
      {"SELECT * FROM main.\"SQLITE_MASTER\"", "not authorized"},
      {"SELECT * FROM pragma_table_info('ft_kv')", "not authorized"},
      {"ATTACH DATABASE ':memory:' AS x", "not authorized"},
      {"DETACH DATABASE x", "not authorized"},
      {"PRAGMA table_info(ft_kv)", "not authorized"},
      {"PRAGMA journal_mode = DELETE", "not authorized"},
      {"BEGIN", "not authorized"},
      {"COMMIT", "not authorized"},
      {"ROLLBACK", "not authorized"},
      {"SAVEPOINT sp", "not authorized"},
      {"ANALYZE", "not authorized"},
      {"ALTER TABLE {t} RENAME TO plain", "RENAME TO must name"},
      {"ALTER TABLE {t} RENAME TO \"o_0123456789abcdef_t\"", "RENAME TO"},
      {"SELECT * FROM dbstat", "not authorized"},
      {"CREATE VIRTUAL TABLE {x} USING dbstat", "not authorized"},
      {"VACUUM", "VACUUM"},
      {"SELECT 1; SELECT 2", "only one SQL statement"},
      {"INSERT INTO {t} VALUES (1); DELETE FROM {t}", "only one SQL statement"},
      {"SELEC 1", "syntax error"},
      {"SELECT * FROM {nosuch}", "no such table"},
      {"  -- nothing\n", "empty"},
      {"SELECT ?", "1 parameters but 0 arguments"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    err[0] = '\0';
    int rc = sql0(s, "me", cases[i].q, NULL, NULL, err, sizeof err);
    if (rc != FT_EINVAL || strstr(err, cases[i].want) == NULL ||
        strcmp(err, ft_state_errmsg(s)) != 0) {
      fprintf(stderr, "  %s -> %d \"%s\"\n", cases[i].q, rc, err);
      FT_CHECK(0);
    }
  }
  /* nothing changed: the statement "INSERT ...; DELETE ..." inserted nothing */
  FT_CHECK(has_value(s, "other", "k", "v", 1));
  rows r = {0};
  FT_CHECK_EQ_INT(
      sql0(s, "me", "SELECT count(*) AS n FROM {t}", &r, NULL, err, 256), 0);
  FT_CHECK_EQ_STR(r.buf, "n:0;");
  memset(&r, 0, sizeof r);
  FT_CHECK_EQ_INT(
      sql0(s, "other", "SELECT count(*) AS n FROM {t}", &r, NULL, err, 256), 0);
  FT_CHECK_EQ_STR(r.buf, "n:1;");
  /* the store still works, outside the authorizer */
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "me", "k", 1, "w", 1), 0);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  ft_state_close(s);
}

/* A trigger or view of the object cannot reach other tables: they are
 * checked when used. */
FT_TEST(test_sql_trigger_and_view_checked_on_use) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  char err[256] = "";
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, "v", 1), 0);
  FT_CHECK_EQ_INT(sql0(s, "o", "CREATE TABLE {t}(x)", NULL, NULL, err, 256), 0);
  int rc = sql0(s, "o",
                "CREATE TRIGGER {tr} AFTER INSERT ON {t}"
                " BEGIN DELETE FROM ft_kv; END",
                NULL, NULL, err, 256);
  FT_CHECK_EQ_INT(rc, 0); /* created, but firing it is refused */
  rc = sql0(s, "o", "INSERT INTO {t} VALUES (1)", NULL, NULL, err, 256);
  FT_CHECK_EQ_INT(rc, FT_EINVAL);
  FT_CHECK(strstr(err, "not authorized") != NULL);
  FT_CHECK(has_value(s, "o", "k", "v", 1));
  rc = sql0(s, "o", "CREATE VIEW {v} AS SELECT * FROM ft_kv", NULL, NULL, err,
            256);
  FT_CHECK_EQ_INT(rc, 0);
  rc = sql0(s, "o", "SELECT * FROM {v}", NULL, NULL, err, 256);
  FT_CHECK_EQ_INT(rc, FT_EINVAL);
  FT_CHECK(strstr(err, "not authorized") != NULL);
  /* the object's own trigger on its own tables works */
  FT_CHECK_EQ_INT(
      sql0(s, "o", "DROP TRIGGER IF EXISTS {tr}", NULL, NULL, err, 256), 0);
  FT_CHECK_EQ_INT(sql0(s, "o", "CREATE TABLE {log}(x)", NULL, NULL, err, 256),
                  0);
  FT_CHECK_EQ_INT(sql0(s, "o",
                       "CREATE TRIGGER {tr2} AFTER INSERT ON {t}"
                       " BEGIN INSERT INTO {log} VALUES (new.x * 2); END",
                       NULL, NULL, err, 256),
                  0);
  int64_t ch = -1;
  FT_CHECK_EQ_INT(
      sql0(s, "o", "INSERT INTO {t} VALUES (21)", NULL, &ch, err, 256), 0);
  FT_CHECK_EQ_INT(ch, 1);
  rows r = {0};
  FT_CHECK_EQ_INT(sql0(s, "o", "SELECT x FROM {log}", &r, NULL, err, 256), 0);
  FT_CHECK_EQ_STR(r.buf, "x:42;");
  /* ALTER and DROP of its own tables are allowed */
  FT_CHECK_EQ_INT(
      sql0(s, "o", "ALTER TABLE {log} ADD COLUMN y", NULL, NULL, err, 256), 0);
  FT_CHECK_EQ_INT(sql0(s, "o", "DROP TABLE {log}", NULL, &ch, err, 256), 0);
  FT_CHECK_EQ_INT(ch, 0);
  ft_state_close(s);
}

/* Constraints that make SQLite create its own indexes, RETURNING, renames
 * within the object, SQLite's functions and (when built in) FTS5 all work
 * under the authorizer. */
FT_TEST(test_sql_constraints_returning_fts) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  char err[256] = "";
  int64_t ch = -1;
  static const char *const ok[] = {
      "CREATE TABLE {u}(x TEXT UNIQUE, y INTEGER PRIMARY KEY AUTOINCREMENT)",
      "CREATE TABLE {w}(k TEXT PRIMARY KEY, v) WITHOUT ROWID",
      "CREATE UNIQUE INDEX IF NOT EXISTS {w_v} ON {w}(v)",
      "INSERT INTO {w} VALUES ('a', 1), ('b', 2)",
      "ALTER TABLE {w} RENAME TO {w2}",
      "ALTER TABLE {w2} RENAME COLUMN v TO val",
      "SELECT sqlite_version()",
      "DROP TABLE {u}",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int rc = sql0(s, "o", ok[i], NULL, NULL, err, sizeof err);
    if (rc != 0) {
      fprintf(stderr, "  %s -> %d %s\n", ok[i], rc, err);
      FT_CHECK(0);
    }
  }
  FT_CHECK_EQ_INT(sql0(s, "o", "INSERT INTO {w2} VALUES ('c', 2)", NULL, &ch,
                       err, sizeof err),
                  FT_EINVAL); /* the UNIQUE index is enforced */
  FT_CHECK(strstr(err, "UNIQUE constraint failed") != NULL);
  rows r = {0};
  FT_CHECK_EQ_INT(sql0(s, "o", "UPDATE {w2} SET val = val * 10 RETURNING k", &r,
                       &ch, err, sizeof err),
                  0);
  FT_CHECK_EQ_INT(ch, 2);
  FT_CHECK_EQ_INT(r.calls, 2);
  if (sqlite3_compileoption_used("ENABLE_FTS5")) {
    FT_CHECK_EQ_INT(sql0(s, "o", "CREATE VIRTUAL TABLE {f} USING fts5(body)",
                         NULL, NULL, err, sizeof err),
                    0);
    FT_CHECK_EQ_INT(sql0(s, "o",
                         "INSERT INTO {f} VALUES ('hello world'), ('other')",
                         NULL, NULL, err, sizeof err),
                    0);
    memset(&r, 0, sizeof r);
    FT_CHECK_EQ_INT(sql0(s, "o", "SELECT body FROM {f} WHERE {f} MATCH 'hello'",
                         &r, NULL, err, sizeof err),
                    0);
    FT_CHECK_EQ_STR(r.buf, "body:t'hello world'(11);");
  }
  ft_state_close(s);
}

/* A row callback may use the store (the authorizer is off during it), even
 * after DDL made SQLite re-prepare the cached statements. */
typedef struct cb_ctx {
  ft_state *s;
  int rc;
} cb_ctx;

static int put_from_row(void *ud, int ncols, const char *const *names,
                        const ft_sql_value *vals) {
  cb_ctx *c = ud;
  char key[32];
  snprintf(key, sizeof key, "row%lld", (long long)vals[0].i);
  if (c->rc == 0)
    c->rc = ft_state_kv_put(c->s, "o", key, strlen(key), "1", 1);
  return 0;
}

FT_TEST(test_sql_callback_reenters) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  char err[256] = "";
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "warm", 4, "1", 1), 0); /* cached */
  FT_CHECK_EQ_INT(sql0(s, "o", "CREATE TABLE {t}(x)", NULL, NULL, err, 256), 0);
  FT_CHECK_EQ_INT(
      sql0(s, "o", "INSERT INTO {t} VALUES (1), (2)", NULL, NULL, err, 256), 0);
  cb_ctx c = {s, 0};
  FT_CHECK_EQ_INT(ft_state_sql(s, "o", "SELECT x FROM {t} ORDER BY x", NULL, 0,
                               put_from_row, &c, NULL, err, sizeof err),
                  0);
  FT_CHECK_EQ_INT(c.rc, 0);
  FT_CHECK(has_value(s, "o", "row1", "1", 1));
  FT_CHECK(has_value(s, "o", "row2", "1", 1));
  ft_state_close(s);
}

/* ---- batching and durability -------------------------------------------- */

/* Writes are invisible to another connection until ft_state_commit. */
FT_TEST(test_batch_visible_after_commit) {
  char path[64];
  tmp_path(path, sizeof path);
  ft_state *s = open_or_fail(path);
  if (s == NULL)
    return;
  const char *q = "SELECT count(*) FROM ft_kv WHERE obj = 'o'";
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "a", 1, "1", 1), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 1, "r", 1), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "10"), 0);
  FT_CHECK_EQ_INT(other_conn_int(path, q), 0);
  FT_CHECK_EQ_INT(other_conn_int(path, "SELECT count(*) FROM ft_pending"), 0);
  FT_CHECK(has_value(s, "o", "a", "1", 1)); /* our own batch is visible */
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  FT_CHECK_EQ_INT(other_conn_int(path, q), 1);
  FT_CHECK_EQ_INT(other_conn_int(path, "SELECT count(*) FROM ft_pending"), 1);
  FT_CHECK_EQ_INT(
      other_conn_int(path, "SELECT val FROM ft_meta WHERE key='out_offset'"),
      10);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0); /* nothing open: fine */
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "b", 1, "2", 1), 0);
  FT_CHECK_EQ_INT(other_conn_int(path, q), 1);
  ft_state_close(s); /* commits */
  FT_CHECK_EQ_INT(other_conn_int(path, q), 2);
  tmp_remove(path);
}

/* A child opens the store, commits some writes, writes more, and _exits
 * without closing: the parent finds exactly the committed ones. */
FT_TEST(test_crash_keeps_exactly_committed) {
  char path[64];
  tmp_path(path, sizeof path);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    ft_state *s = NULL;
    if (sq_open_at(&s, path, NULL, 0) != 0)
      _exit(2);
    int bad = 0;
    for (int i = 0; i < 3; i++) {
      char k[16];
      snprintf(k, sizeof k, "c%d", i);
      bad |= ft_state_kv_put(s, "o", k, strlen(k), "yes", 3);
      bad |= ft_state_frontier_push(s, 100 + i, "req", 3);
    }
    bad |= seen_add1(s, (const unsigned char *)"0123456789abcdef") != 1;
    bad |= ft_state_meta_set(s, "out_offset", "300");
    bad |= ft_state_commit(s);
    for (int i = 0; i < 200; i++) { /* enough to spill to the WAL */
      char k[16];
      snprintf(k, sizeof k, "u%d", i);
      bad |= ft_state_kv_put(s, "o", k, strlen(k), "no", 2);
    }
    bad |= ft_state_frontier_ack(s, 100);
    bad |= ft_state_meta_set(s, "out_offset", "999");
    bad |= seen_add1(s, (const unsigned char *)"fedcba9876543210") != 1;
    _exit(bad ? 3 : 0);
  }
  int status = 0;
  FT_CHECK(pid > 0);
  FT_CHECK(waitpid(pid, &status, 0) == pid);
  FT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ft_state *s = open_or_fail(path);
  if (s == NULL)
    return;
  collect c = {0};
  FT_CHECK_EQ_INT(ft_state_kv_list(s, "o", NULL, 0, 0, collect_row, &c), 0);
  FT_CHECK_EQ_STR(c.buf, "c0=yes,c1=yes,c2=yes,");
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 3);
  char *v = NULL;
  FT_CHECK_EQ_INT(ft_state_meta_get(s, "out_offset", &v), 0);
  FT_CHECK(v != NULL && strcmp(v, "300") == 0);
  free(v);
  FT_CHECK_EQ_INT(
      seen_add1(s, (const unsigned char *)"fedcba9876543210"), 1);
  FT_CHECK_EQ_INT(
      seen_add1(s, (const unsigned char *)"0123456789abcdef"), 0);
  ft_state_close(s);
  tmp_remove(path);
}

/* ---- the run journal ----------------------------------------------------- */

typedef struct taken {
  int64_t ids[64];
  char blobs[64][16];
  int n, stop_after;
  ft_state *s; /* set: each callback also takes one more, nested */
  int nested_rc;
} taken;

static int take_row(void *ud, int64_t id, const void *blob, size_t len) {
  taken *t = ud;
  if (t->n < 64) {
    t->ids[t->n] = id;
    snprintf(t->blobs[t->n], sizeof t->blobs[0], "%.*s", (int)len,
             (const char *)blob);
    t->n++;
  }
  if (t->s != NULL) {
    ft_state *s = t->s;
    t->s = NULL; /* one level of nesting */
    int rc = ft_state_frontier_take(s, 1, take_row, t);
    if (rc < 0)
      t->nested_rc = rc;
    t->s = s;
  }
  return t->stop_after > 0 && t->n >= t->stop_after;
}

static int ids_are(const taken *t, const int64_t *want, int n) {
  if (t->n != n) {
    fprintf(stderr, "  took %d ids, want %d\n", t->n, n);
    return 0;
  }
  for (int i = 0; i < n; i++)
    if (t->ids[i] != want[i]) {
      fprintf(stderr, "  id %d: %lld, want %lld\n", i, (long long)t->ids[i],
              (long long)want[i]);
      return 0;
    }
  return 1;
}

/* add / take / done / count, no id handed out twice, late ids in order, and
 * the frontier survives a reopen. */
FT_TEST(test_pending_frontier) {
  char path[64];
  tmp_path(path, sizeof path);
  ft_state *s = open_or_fail(path);
  if (s == NULL)
    return;
  for (int64_t id = 1; id <= 5; id++) {
    char b[32];
    snprintf(b, sizeof b, "req%lld", (long long)id);
    FT_CHECK_EQ_INT(ft_state_frontier_push(s, id, b, strlen(b)), 0);
  }
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 3, "dup", 3), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 5);

  taken t = {0};
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 2, take_row, &t), 2);
  FT_CHECK(ids_are(&t, (int64_t[]){1, 2}, 2));
  FT_CHECK_EQ_STR(t.blobs[1], "req2");
  t.n = 0;
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 10, take_row, &t), 3);
  FT_CHECK(ids_are(&t, (int64_t[]){3, 4, 5}, 3));
  t.n = 0;
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 10, take_row, &t), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 5); /* taken is still pending */

  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 1), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 3), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 3), 0); /* absent: fine */
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 3);

  /* a new id, and two "late" ids below the highest handed out */
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 6, "req6", 4), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 0, "req0", 4), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, -7, "reqm7", 5), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 8, "req8", 4), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 0), 0); /* done before taken */
  t.n = 0;
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 2, take_row, &t), 2);
  FT_CHECK(ids_are(&t, (int64_t[]){-7, 6}, 2));
  FT_CHECK_EQ_STR(t.blobs[0], "reqm7");
  t.n = 0;
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_row, &t), 1);
  FT_CHECK(ids_are(&t, (int64_t[]){8}, 1));
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 6); /* -7 2 4 5 6 8 */
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 6), 0);
  ft_state_close(s);

  /* after a reopen every pending request is handed out again */
  s = open_or_fail(path);
  if (s == NULL)
    return;
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 5);
  t.n = 0;
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, -1, take_row, &t), 5);
  FT_CHECK(ids_are(&t, (int64_t[]){-7, 2, 4, 5, 8}, 5));
  ft_state_close(s);
  tmp_remove(path);
}

/* The count follows adds and dones (only real removals count) across a
 * commit. */
FT_TEST(test_pending_count_tracks_done) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  for (int64_t id = 1; id <= 10; id++)
    FT_CHECK_EQ_INT(ft_state_frontier_push(s, id, "r", 1), 0);
  for (int64_t id = 1; id <= 10; id += 3)
    FT_CHECK_EQ_INT(ft_state_frontier_ack(s, id), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 6);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 6);
  ft_state_close(s);
}

/* A callback that takes again (nested) and one that stops early: no id is
 * handed out twice, none is lost, order is kept. */
FT_TEST(test_pending_take_reentrant_and_stop) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  for (int64_t id = 1; id <= 12; id++)
    FT_CHECK_EQ_INT(ft_state_frontier_push(s, id, "r", 1), 0);
  taken t = {.s = s};
  int n = ft_state_frontier_take(s, 4, take_row, &t);
  FT_CHECK(n >= 2 && n <= 4);
  FT_CHECK_EQ_INT(t.nested_rc, 0);
  t.s = NULL;
  t.stop_after = t.n + 2;
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_row, &t), 2);
  t.stop_after = 0;
  ft_state_frontier_take(s, 0, take_row, &t);
  int64_t want[12];
  for (int i = 0; i < 12; i++)
    want[i] = i + 1;
  FT_CHECK(ids_are(&t, want, 12));
  ft_state_close(s);
}

/* seen_add says new / already there, and the set survives a reopen (the
 * backend's in-memory copy is loaded from the file). */
FT_TEST(test_seen_set) {
  char path[64];
  tmp_path(path, sizeof path);
  ft_state *s = open_or_fail(path);
  if (s == NULL)
    return;
  unsigned char k[3][16];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 16; j++)
      k[i][j] = (unsigned char)(i * 16 + j * 7 + (j == 0 ? 0 : 0x80));
  k[2][3] = 0; /* NUL bytes inside a key */
  FT_CHECK_EQ_INT(seen_add1(s, k[0]), 1);
  FT_CHECK_EQ_INT(seen_add1(s, k[1]), 1);
  FT_CHECK_EQ_INT(seen_add1(s, k[0]), 0);
  FT_CHECK_EQ_INT(seen_add1(s, k[2]), 1);
  FT_CHECK_EQ_INT(seen_add1(s, k[2]), 0);
  ft_state_close(s);
  s = open_or_fail(path);
  if (s == NULL)
    return;
  for (int i = 0; i < 3; i++)
    FT_CHECK_EQ_INT(seen_add1(s, k[i]), 0);
  FT_CHECK_EQ_INT(other_conn_int(path, "SELECT count(*) FROM ft_seen"), 3);
  ft_state_close(s);
  tmp_remove(path);
}

/* reset forgets the journal, the seen set and meta; object storage stays. */
FT_TEST(test_reset_keeps_object_storage) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  char err[256];
  const unsigned char key[16] = {1, 2, 3};
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, "v", 1), 0);
  FT_CHECK_EQ_INT(sql0(s, "o", "CREATE TABLE {t}(x)", NULL, NULL, err, 256), 0);
  FT_CHECK_EQ_INT(
      sql0(s, "o", "INSERT INTO {t} VALUES (7)", NULL, NULL, err, 256), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 1, "a", 1), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 2, "b", 1), 0);
  taken t = {0};
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 1, take_row, &t), 1);
  FT_CHECK_EQ_INT(seen_add1(s, key), 1);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "finished", "1"), 0);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);

  FT_CHECK_EQ_INT(ft_state_reset(s), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_count(s), 0);
  t.n = 0;
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_row, &t), 0);
  FT_CHECK_EQ_INT(seen_add1(s, key), 1);
  char *v = NULL;
  FT_CHECK_EQ_INT(ft_state_meta_get(s, "finished", &v), FT_ENOTFOUND);
  FT_CHECK(has_value(s, "o", "k", "v", 1));
  rows r = {0};
  FT_CHECK_EQ_INT(sql0(s, "o", "SELECT x FROM {t}", &r, NULL, err, 256), 0);
  FT_CHECK_EQ_STR(r.buf, "x:7;");
  /* ids start over after a reset */
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 1, "again", 5), 0);
  t.n = 0;
  FT_CHECK_EQ_INT(ft_state_frontier_take(s, 0, take_row, &t), 1);
  FT_CHECK(ids_are(&t, (int64_t[]){1}, 1));
  ft_state_close(s);
}

/* ---- opening ------------------------------------------------------------- */

/* Files that are not fetchtree state databases are refused, and left as they
 * were. */
FT_TEST(test_open_refuses_foreign_files) {
  char path[64], err[256];
  ft_state *s = NULL;

  /* another program's SQLite database */
  tmp_path(path, sizeof path);
  sqlite3 *db = NULL;
  FT_CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
  FT_CHECK_EQ_INT(sqlite3_exec(db,
                               "CREATE TABLE users(name); INSERT INTO "
                               "users VALUES ('ann')",
                               NULL, NULL, NULL),
                  SQLITE_OK);
  sqlite3_close(db);
  err[0] = '\0';
  FT_CHECK_EQ_INT(sq_open_at(&s, path, err, sizeof err), FT_EINVAL);
  FT_CHECK(s == NULL);
  FT_CHECK(strstr(err, "not a fetchtree state database") != NULL);
  FT_CHECK_EQ_INT(other_conn_int(path, "SELECT count(*) FROM users"), 1);
  FT_CHECK_EQ_INT(other_conn_int(path, "SELECT count(*) FROM sqlite_master"),
                  1);
  char wal[80];
  snprintf(wal, sizeof wal, "%s-wal", path);
  FT_CHECK(!file_exists(wal)); /* not switched to WAL */
  tmp_remove(path);

  /* a file that is not SQLite at all */
  tmp_path(path, sizeof path);
  FILE *f = fopen(path, "wb");
  char junk[4096];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (char)("garbage!"[i % 8]);
  fwrite(junk, 1, sizeof junk, f);
  fclose(f);
  err[0] = '\0';
  FT_CHECK_EQ_INT(sq_open_at(&s, path, err, sizeof err), FT_EINVAL);
  FT_CHECK(s == NULL);
  FT_CHECK(strstr(err, "not a fetchtree state database") != NULL);
  f = fopen(path, "rb");
  char back[sizeof junk + 1];
  size_t nread = f != NULL ? fread(back, 1, sizeof back, f) : 0;
  if (f != NULL)
    fclose(f);
  FT_CHECK(nread == sizeof junk && memcmp(back, junk, sizeof junk) == 0);
  tmp_remove(path);

  /* our database from a newer schema version */
  tmp_path(path, sizeof path);
  s = open_ok(path);
  ft_state_close(s);
  s = NULL;
  FT_CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_exec(db, "UPDATE ft_info SET val = '99' WHERE key = 'schema_version'",
               NULL, NULL, NULL);
  sqlite3_close(db);
  err[0] = '\0';
  FT_CHECK_EQ_INT(sq_open_at(&s, path, err, sizeof err), FT_EINVAL);
  FT_CHECK(strstr(err, "version 99") != NULL);
  tmp_remove(path);

  /* a file of schema 1 (FNV-1a seen keys and table names), which this
   * build's hashes cannot read: refused, saying why and what to do */
  tmp_path(path, sizeof path);
  s = open_ok(path);
  ft_state_close(s);
  s = NULL;
  FT_CHECK_EQ_INT(other_conn_int(path, "SELECT CAST(val AS INTEGER) FROM ft_info"
                                       " WHERE key = 'schema_version'"),
                  2);
  FT_CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_exec(db, "UPDATE ft_info SET val = '1' WHERE key = 'schema_version'",
               NULL, NULL, NULL);
  sqlite3_close(db);
  err[0] = '\0';
  FT_CHECK_EQ_INT(sq_open_at(&s, path, err, sizeof err), FT_EINVAL);
  FT_CHECK(strstr(err, "schema version 1 is not supported (this fetchtree"
                       " reads version 2): an older fetchtree wrote it") !=
           NULL);
  FT_CHECK(strstr(err, "start over with a new state file") != NULL);
  tmp_remove(path);

  /* a path that cannot be created */
  err[0] = '\0';
  FT_CHECK_EQ_INT(
      sq_open_at(&s, "/nonexistent-dir/x/state.db", err, sizeof err),
      FT_EIO);
  FT_CHECK(err[0] != '\0');
  FT_CHECK_EQ_INT(sq_open_at(NULL, NULL, NULL, 0), FT_EINVAL);
}

/* SQLite's busy timeout counts the sleeps it asks the VFS for, so with this
 * sleep, which returns at once, the store's 5 s wait for a lock gives up at
 * once. */
static int no_sleep(sqlite3_vfs *vfs, int us) {
  (void)vfs;
  return us;
}

/* A file locked by another connection is reported with SQLite's own error
 * (FT_EBUSY), not as a file that is not a fetchtree state database; it opens
 * once the lock is gone. */
FT_TEST(test_open_locked_is_not_foreign) {
  char path[64], err[256] = "";
  tmp_path(path, sizeof path);
  sqlite3 *db = NULL;
  FT_CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
  FT_CHECK_EQ_INT(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                  SQLITE_OK);
  static sqlite3_vfs quick;
  quick = *sqlite3_vfs_find(NULL);
  quick.zName = "ft_test_no_sleep";
  quick.xSleep = no_sleep;
  FT_CHECK_EQ_INT(sqlite3_vfs_register(&quick, 1), SQLITE_OK);
  ft_state *s = NULL;
  FT_CHECK_EQ_INT(sq_open_at(&s, path, err, sizeof err), FT_EBUSY);
  sqlite3_vfs_unregister(&quick);
  FT_CHECK(s == NULL);
  FT_CHECK(strstr(err, "locked") != NULL);
  if (strstr(err, "not a fetchtree state database") != NULL) {
    fprintf(stderr, "  got \"%s\"\n", err);
    FT_CHECK(0);
  }
  FT_CHECK_EQ_INT(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  s = open_ok(path);
  FT_CHECK(s != NULL);
  ft_state_close(s);
  tmp_remove(path);
}

/* A new store is in WAL mode and keeps its data across reopen; an in-memory
 * store works the same way. */
FT_TEST(test_open_reopen_wal) {
  char path[64];
  tmp_path(path, sizeof path);
  ft_state *s = open_ok(path);
  FT_CHECK(s != NULL);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, "v", 1), 0);
  ft_state_close(s);
  s = open_ok(path);
  FT_CHECK(s != NULL);
  FT_CHECK(has_value(s, "o", "k", "v", 1));
  char wal[80];
  snprintf(wal, sizeof wal, "%s-wal", path);
  FT_CHECK(file_exists(wal));
  ft_state_close(s);
  tmp_remove(path);

  s = open_ok(":memory:");
  FT_CHECK(s != NULL);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, "v", 1), 0);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  FT_CHECK(has_value(s, "o", "k", "v", 1));
  ft_state_close(s);
  ft_state_close(NULL);
}

/* What script SQL may run, with the exact message of each refusal: no
 * extension loading and no fts3_tokenizer (whose two-argument form takes a
 * native pointer from a blob: a crafted one crashed the process). */
#define SQLITE_NAME_REFUSED                                                    \
  "not authorized: names starting with sqlite_ (SQLite's internal tables)"    \
  " may not appear in the query; pass such text as a bound argument"
FT_TEST(test_sql_functions_allowed_and_refused) {
  ft_state *s = open_or_fail(NULL);
  if (s == NULL)
    return;
  const struct {
    const char *q;
    int rc;
    const char *err; /* the whole message, "" when rc is 0 */
  } cases[] = {
      {"SELECT upper('a'), length(x'00'), json_extract('{\"a\":1}', '$.a')",
       0, ""},
      {"SELECT sqlite_version()", 0, ""},
      {"CREATE VIRTUAL TABLE {f3} USING fts3(a)", 0, ""},
      {"CREATE VIRTUAL TABLE {f4} USING fts4(a, tokenize=porter)", 0, ""},
      {"CREATE VIRTUAL TABLE {f5} USING fts5(a)", 0, ""},
      {"INSERT INTO {f3}(a) VALUES ('hello world')", 0, ""},
      {"SELECT snippet({f3}) FROM {f3} WHERE {f3} MATCH 'hello'", 0, ""},
      {"SELECT fts3_tokenizer('simple')", FT_EINVAL,
       "not authorized: function fts3_tokenizer"},
      {"SELECT fts3_tokenizer('evil', X'4141414141414141')", FT_EINVAL,
       "not authorized: function fts3_tokenizer"},
      {"SELECT FTS3_Tokenizer('evil', X'4141414141414141')", FT_EINVAL,
       "not authorized: function fts3_tokenizer"},
      {"CREATE VIRTUAL TABLE {ev} USING fts3(a, tokenize=evil)", FT_EINVAL,
       "unknown tokenizer: evil"},
      {"SELECT load_extension('/nonexistent/x.so')", FT_EINVAL,
       "not authorized: function load_extension"},
      {"SELECT load_extension('/nonexistent/x.so', 'init')", FT_EINVAL,
       "not authorized: function load_extension"},
      {"SELECT rtreenode(2, x'0000')", FT_EINVAL,
       "not authorized: function rtreenode"},
      {"SELECT rtreedepth(x'0000')", FT_EINVAL,
       "not authorized: function rtreedepth"},
      {"SELECT rtreecheck('{f3}')", FT_EINVAL,
       "not authorized: function rtreecheck"},
      {"CREATE VIRTUAL TABLE {rt} USING rtree(id, x0, x1)", 0, ""},
      {"INSERT INTO {rt} VALUES (1, 0, 1)", 0, ""},
      {"ATTACH DATABASE ':memory:' AS x", FT_EINVAL, "not authorized: ATTACH"},
      {"DETACH DATABASE x", FT_EINVAL, "not authorized: DETACH"},
      {"PRAGMA journal_mode = DELETE", FT_EINVAL,
       "not authorized: PRAGMA journal_mode"},
      {"PRAGMA writable_schema = 1", FT_EINVAL,
       "not authorized: PRAGMA writable_schema"},
      {"PRAGMA page_size = 1024", FT_EINVAL,
       "not authorized: PRAGMA page_size"},
      {"PRAGMA locking_mode = EXCLUSIVE", FT_EINVAL,
       "not authorized: PRAGMA locking_mode"},
      {"SELECT * FROM ft_pending", FT_EINVAL,
       "not authorized: \"ft_pending\" is not one of this object's tables"
       " (write {name} for the object's table name)"},
      {"UPDATE sqlite_master SET sql = ''", FT_EINVAL, SQLITE_NAME_REFUSED},
      {"DELETE FROM main.sqlite_schema", FT_EINVAL, SQLITE_NAME_REFUSED},
      {"UPDATE ft_meta SET val = '0'", FT_EINVAL,
       "not authorized: \"ft_meta\" is not one of this object's tables"
       " (write {name} for the object's table name)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[256] = "";
    int rc = sql0(s, "o", cases[i].q, NULL, NULL, err, sizeof err);
    if (rc != cases[i].rc || strcmp(err, cases[i].err) != 0) {
      fprintf(stderr, "  %s -> %d \"%s\"\n", cases[i].q, rc, err);
      FT_CHECK(0);
    }
  }
  ft_state_close(s);
}

/* ---- a lost batch, and one process per file ----------------------------- */

/* A VFS over the default one whose writes fail with SQLITE_FULL while
 * full_fail is set: a disk that has filled up. */
static int full_fail;
static sqlite3_vfs full_vfs, *full_real;

typedef struct full_file {
  sqlite3_file base;
  sqlite3_file *real; /* follows this struct in the same allocation */
} full_file;

#define REAL(f) (((full_file *)(f))->real)
static int ff_close(sqlite3_file *f) {
  return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
}
static int ff_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o) {
  return REAL(f)->pMethods->xRead(REAL(f), p, n, o);
}
static int ff_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o) {
  if (full_fail)
    return SQLITE_FULL;
  return REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 n) {
  return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int ff_sync(sqlite3_file *f, int fl) {
  return REAL(f)->pMethods->xSync(REAL(f), fl);
}
static int ff_size(sqlite3_file *f, sqlite3_int64 *n) {
  return REAL(f)->pMethods->xFileSize(REAL(f), n);
}
static int ff_lock(sqlite3_file *f, int l) {
  return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int ff_unlock(sqlite3_file *f, int l) {
  return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int ff_check(sqlite3_file *f, int *r) {
  return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}
static int ff_fctl(sqlite3_file *f, int op, void *a) {
  return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int ff_sector(sqlite3_file *f) {
  return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int ff_dev(sqlite3_file *f) {
  return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int ff_shmmap(sqlite3_file *f, int i, int sz, int ext,
                     void volatile **pp) {
  return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, pp);
}
static int ff_shmlock(sqlite3_file *f, int o, int n, int fl) {
  return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
}
static void ff_shmbarrier(sqlite3_file *f) {
  REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int ff_shmunmap(sqlite3_file *f, int del) {
  return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int ff_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp) {
  return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) {
  return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}
#undef REAL

static const sqlite3_io_methods full_io = {
    3,         ff_close,  ff_read,       ff_write,    ff_truncate,
    ff_sync,   ff_size,   ff_lock,       ff_unlock,   ff_check,
    ff_fctl,   ff_sector, ff_dev,        ff_shmmap,   ff_shmlock,
    ff_shmbarrier, ff_shmunmap, ff_fetch, ff_unfetch};

static int ff_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
                   int flags, int *out) {
  (void)vfs;
  full_file *ff = (full_file *)f;
  ff->real = (sqlite3_file *)(ff + 1);
  ff->real->pMethods = NULL;
  int rc = full_real->xOpen(full_real, name, ff->real, flags, out);
  f->pMethods = ff->real->pMethods != NULL ? &full_io : NULL;
  return rc;
}

/* Makes full_vfs the default VFS (0) or puts the real one back (-1). */
static int full_vfs_install(int on) {
  if (!on)
    return sqlite3_vfs_unregister(&full_vfs);
  full_real = sqlite3_vfs_find(NULL);
  full_vfs = *full_real;
  full_vfs.zName = "ft_test_full";
  full_vfs.szOsFile = (int)sizeof(full_file) + full_real->szOsFile;
  full_vfs.xOpen = ff_open;
  return sqlite3_vfs_register(&full_vfs, 1);
}

/* The disk fills up while a batch is open: the commit fails, and from then
 * on the store commits nothing, not even once there is room again (the
 * caller moved on as if the lost batch were saved: a frontier and output
 * offset committed after it would match nothing). The file keeps exactly
 * its last good commit. A statement that fails on its own (a constraint)
 * does not break the store. */
FT_TEST(test_lost_batch_breaks_store) {
  char path[64], err[256] = "";
  tmp_path(path, sizeof path);
  FT_CHECK_EQ_INT(full_vfs_install(1), SQLITE_OK);
  ft_state *s = open_or_fail(path);
  if (s == NULL) {
    full_vfs_install(0);
    return;
  }
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 1, "r1", 2), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "100"), 0);
  FT_CHECK_EQ_INT(sql0(s, "o", "CREATE TABLE {t}(k PRIMARY KEY)", NULL, NULL,
                       err, sizeof err),
                  0);
  FT_CHECK_EQ_INT(sql0(s, "o", "INSERT INTO {t} VALUES (1)", NULL, NULL, err,
                       sizeof err),
                  0);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  /* a constraint failure: the batch goes on */
  FT_CHECK_EQ_INT(sql0(s, "o", "INSERT INTO {t} VALUES (1)", NULL, NULL, err,
                       sizeof err),
                  FT_EINVAL);
  FT_CHECK(!ft_state_broken(s));
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 2, "r2", 2), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 1), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "200"), 0);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  /* the disk is full */
  FT_CHECK_EQ_INT(ft_state_frontier_push(s, 3, "r3", 2), 0);
  FT_CHECK_EQ_INT(ft_state_frontier_ack(s, 2), 0);
  full_fail = 1;
  int rc = ft_state_meta_set(s, "out_offset", "300");
  if (rc == 0)
    rc = ft_state_commit(s);
  FT_CHECK_EQ_INT(rc, FT_EIO);
  FT_CHECK(ft_state_broken(s));
  full_fail = 0;
  /* room again: still nothing is committed */
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "400"), FT_EIO);
  FT_CHECK(strstr(ft_state_errmsg(s), "full") != NULL);
  FT_CHECK(strstr(ft_state_errmsg(s),
                  "nothing written since the last commit is saved") != NULL);
  FT_CHECK_EQ_INT(ft_state_kv_put(s, "o", "k", 1, "v", 1), FT_EIO);
  FT_CHECK_EQ_INT(ft_state_commit(s), FT_EIO);
  ft_state_close(s);
  FT_CHECK_EQ_INT(full_vfs_install(0), SQLITE_OK);
  FT_CHECK_EQ_INT(
      other_conn_int(path, "SELECT val FROM ft_meta WHERE key='out_offset'"),
      200);
  FT_CHECK_EQ_INT(other_conn_int(path, "SELECT group_concat(id) FROM"
                                       " ft_pending"),
                  2);
  FT_CHECK_EQ_INT(other_conn_int(path, "SELECT count(*) FROM ft_kv"), 0);
  tmp_remove(path);
}

/* The caller's output failed: ft_state_abandon drops the open batch and
 * nothing is committed after, not by ft_state_close either. */
FT_TEST(test_abandon_commits_nothing) {
  char path[64];
  tmp_path(path, sizeof path);
  ft_state *s = open_or_fail(path);
  if (s == NULL)
    return;
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "10"), 0);
  FT_CHECK_EQ_INT(ft_state_commit(s), 0);
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "20"), 0);
  ft_state_abandon(s, "writing records failed");
  FT_CHECK(ft_state_broken(s));
  FT_CHECK_EQ_INT(ft_state_meta_set(s, "out_offset", "30"), FT_EIO);
  FT_CHECK(strncmp(ft_state_errmsg(s), "writing records failed;", 23) == 0);
  FT_CHECK_EQ_INT(ft_state_commit(s), FT_EIO);
  ft_state_close(s);
  FT_CHECK_EQ_INT(
      other_conn_int(path, "SELECT val FROM ft_meta WHERE key='out_offset'"),
      10);
  tmp_remove(path);
}

/* One store per file at a time, across processes: a second open fails with
 * FT_EBUSY and says so; a holder killed by SIGKILL lets go. */
FT_TEST(test_open_one_process_per_file) {
  char path[64], err[256] = "";
  tmp_path(path, sizeof path);
  ft_state *a = open_or_fail(path);
  if (a == NULL)
    return;
  ft_state *b = NULL;
  FT_CHECK_EQ_INT(sq_open_at(&b, path, err, sizeof err), FT_EBUSY);
  FT_CHECK(b == NULL);
  FT_CHECK(strstr(err, "in use by another fetchtree process") != NULL);
  ft_state_close(a);
  int ready[2];
  FT_CHECK_EQ_INT(pipe(ready), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    ft_state *c = NULL;
    if (sq_open_at(&c, path, NULL, 0) != 0)
      _exit(2);
    if (write(ready[1], "x", 1) != 1)
      _exit(3);
    for (;;)
      pause();
  }
  FT_CHECK(pid > 0);
  char x;
  FT_CHECK_EQ_INT((int)read(ready[0], &x, 1), 1);
  FT_CHECK_EQ_INT(sq_open_at(&b, path, err, sizeof err), FT_EBUSY);
  kill(pid, SIGKILL);
  int status = 0;
  FT_CHECK(waitpid(pid, &status, 0) == pid);
  close(ready[0]);
  close(ready[1]);
  b = open_ok(path);
  FT_CHECK(b != NULL);
  ft_state_close(b);
  tmp_remove(path);
}

int main(void) {
  FT_RUN(test_sql_types_names_changes);
  FT_RUN(test_sql_objects_isolated);
  FT_RUN(test_sql_refused);
  FT_RUN(test_sql_trigger_and_view_checked_on_use);
  FT_RUN(test_sql_constraints_returning_fts);
  FT_RUN(test_sql_callback_reenters);
  FT_RUN(test_batch_visible_after_commit);
  FT_RUN(test_crash_keeps_exactly_committed);
  FT_RUN(test_pending_frontier);
  FT_RUN(test_pending_count_tracks_done);
  FT_RUN(test_pending_take_reentrant_and_stop);
  FT_RUN(test_seen_set);
  FT_RUN(test_reset_keeps_object_storage);
  FT_RUN(test_open_refuses_foreign_files);
  FT_RUN(test_open_locked_is_not_foreign);
  FT_RUN(test_open_reopen_wal);
  FT_RUN(test_sql_functions_allowed_and_refused);
  FT_RUN(test_lost_batch_breaks_store);
  FT_RUN(test_abandon_commits_nothing);
  FT_RUN(test_open_one_process_per_file);
  return FT_DONE();
}
