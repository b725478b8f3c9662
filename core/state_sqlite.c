/* state_sqlite.c - the sqlite backend of ft_state (state.h): a run's state in
 * one SQLite file (--state FILE), crash-safe, one process at a time. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "buf.h"
#include "dedupe.h"
#include "error.h"
#include "hash.h"
#include "record.h"

/* Design
 *
 * One SQLite database holds everything a run must not lose: the object
 * key-value storage (ft_kv) and the objects' own SQL tables, the frontier
 * (ft_pending), the seen set (ft_seen) and the run metadata (ft_meta).
 *
 * Batching. Every write goes into one open transaction (BEGIN IMMEDIATE,
 * opened by the first write after a commit); sq_commit ends it. Reads on
 * the same connection see the uncommitted batch; other connections see only
 * committed data. A lost batch breaks the state (state.h): set_broken rolls
 * it back, so the file stays at its last good commit.
 *
 * Durability. The file is in WAL mode with synchronous=NORMAL. A commit is
 * written to the WAL in the OS page cache before sq_commit returns, so a
 * killed process (kill -9, crash, _exit) loses nothing committed. An OS
 * crash or power loss may lose the last few commits, never consistency (the
 * WAL is fsynced at each checkpoint). That is the right trade for a crawl:
 * FULL would fsync at every commit.
 *
 * One process at a time. A state on a file holds an exclusive flock(2) on
 * it from open to close; a second open of the same file, from this process
 * or another, fails with FT_EBUSY ("in use by another fetchtree process").
 * The kernel drops the lock when its holder dies, even by SIGKILL.
 *
 * The seen set is answered from an in-memory copy (ft_dedupe, loaded from
 * ft_seen on the first seen_add), so a request already seen costs no SQLite
 * lookup; a new key is inserted into ft_seen in the batch.
 *
 * Errors. SQLite failures map to FT_ENOMEM, FT_EBUSY (another process holds
 * the write lock past the busy timeout), FT_EIO (disk full, I/O error),
 * FT_EINVAL (constraint, e.g. a duplicate frontier id) or FT_ESQL, and
 * sq_errmsg then holds SQLite's message.
 *
 * Callbacks may call back into the same state: an iterating statement that
 * is still in use is never reset under its caller. */

#define STORE_APP_ID 0x46547374 /* PRAGMA application_id: "FTst" */
/* ft_info 'schema_version' this build reads. 2: seen keys and object table
 * names are XXH3 hashes (hash.h); 1 (FNV-1a and a mixer of our own) is read
 * by older builds only. */
#define STORE_SCHEMA 2
#define STORE_BUSY_MS 5000      /* wait this long for another writer's lock */
#define NAME_MAX_LEN 64         /* longest name accepted in {name} */
#define PREFIX_LEN 19           /* "o_" + 16 hex + "_" */

static const char schema_sql[] =
    "CREATE TABLE ft_info(key TEXT PRIMARY KEY, val TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE ft_kv(obj TEXT NOT NULL, key TEXT NOT NULL,"
    " val BLOB NOT NULL, PRIMARY KEY (obj, key));"
    "CREATE TABLE ft_pending(id INTEGER PRIMARY KEY, req BLOB NOT NULL);"
    "CREATE TABLE ft_seen(key BLOB PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TABLE ft_meta(key TEXT PRIMARY KEY, val TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "INSERT INTO ft_info VALUES ('format', 'fetchtree state'),"
    " ('schema_version', '2');"
    "PRAGMA application_id = 1179939700;"; /* STORE_APP_ID */

/* ---- prepared statements, one cached per kind --------------------------- */

enum {
  ST_BEGIN,
  ST_COMMIT,
  ST_KV_GET,
  ST_KV_PUT,
  ST_KV_DEL,
  ST_KV_FROM,  /* keys >= lo */
  ST_KV_RANGE, /* keys >= lo and < hi */
  ST_PEND_ADD,
  ST_PEND_TAKE,
  ST_PEND_GET,
  ST_PEND_DONE,
  ST_PEND_COUNT,
  ST_SEEN_ADD,
  ST_SEEN_EACH,
  ST_META_GET,
  ST_META_SET,
  ST_COUNT_
};

static const char *const stmt_sql[ST_COUNT_] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_KV_GET] = "SELECT val FROM ft_kv WHERE obj = ?1 AND key = ?2",
    [ST_KV_PUT] = "INSERT INTO ft_kv(obj, key, val) VALUES (?1, ?2, ?3)"
                  " ON CONFLICT(obj, key) DO UPDATE SET val = excluded.val",
    [ST_KV_DEL] = "DELETE FROM ft_kv WHERE obj = ?1 AND key = ?2",
    [ST_KV_FROM] = "SELECT key, val FROM ft_kv WHERE obj = ?1 AND key >= ?2"
                   " ORDER BY key LIMIT ?3",
    [ST_KV_RANGE] = "SELECT key, val FROM ft_kv WHERE obj = ?1 AND key >= ?2"
                    " AND key < ?4 ORDER BY key LIMIT ?3",
    [ST_PEND_ADD] = "INSERT INTO ft_pending(id, req) VALUES (?1, ?2)",
    [ST_PEND_TAKE] = "SELECT id, req FROM ft_pending WHERE id >= ?1"
                     " ORDER BY id LIMIT ?2",
    [ST_PEND_GET] = "SELECT req FROM ft_pending WHERE id = ?1",
    [ST_PEND_DONE] = "DELETE FROM ft_pending WHERE id = ?1",
    [ST_PEND_COUNT] = "SELECT count(*) FROM ft_pending",
    [ST_SEEN_ADD] = "INSERT OR IGNORE INTO ft_seen(key) VALUES (?1)",
    [ST_SEEN_EACH] = "SELECT key FROM ft_seen",
    [ST_META_GET] = "SELECT val FROM ft_meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO ft_meta(key, val) VALUES (?1, ?2)"
                    " ON CONFLICT(key) DO UPDATE SET val = excluded.val",
};

/* The authorizer's state while one sq_sql statement is prepared or
 * stepped (s->auth points to it; NULL otherwise, which allows everything). */
typedef struct auth_ctx {
  const char *prefix; /* "o_<16 hex>_" of the object */
  int ddl, dml;       /* a schema change / a top-level write was authorized */
  int denied;         /* reason holds why the statement was refused */
  char reason[256];
} auth_ctx;

typedef struct sq_state {
  sqlite3 *db;
  sqlite3_stmt *st[ST_COUNT_]; /* prepared on first use */
  auth_ctx *auth;
  /* pending_take: ids <= take_cursor were handed out (once taken_any);
   * late holds, sorted, ids added at or below the cursor afterwards. */
  int taken_any;
  int64_t take_cursor;
  int64_t *late;
  size_t late_n, late_cap;
  int64_t pending_n; /* rows in ft_pending, valid when pending_ok */
  int pending_ok;
  int in_batch;  /* our BEGIN is open (SQLite may end it by itself) */
  int broken;    /* a batch was lost: nothing is committed any more */
  int lock_fd;   /* holds the flock on the database file, or -1 */
  ft_dedupe *seen; /* ft_seen's keys, once seen_loaded */
  int seen_loaded;
  char broken_msg[512];
  char errmsg[512];
} sq_state;

/* ---- errors ------------------------------------------------------------- */

static int map_rc(int rc) {
  switch (rc & 0xff) {
  case SQLITE_NOMEM:
    return FT_ENOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return FT_EBUSY;
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
  case SQLITE_PROTOCOL:
    return FT_EIO;
  case SQLITE_CONSTRAINT:
  case SQLITE_MISMATCH:
  case SQLITE_RANGE:
  case SQLITE_TOOBIG:
    return FT_EINVAL;
  default:
    return FT_ESQL;
  }
}

/* Formats the message of a failure into s->errmsg and returns code. */
static int set_err(sq_state *s, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

/* From now on s commits nothing and every write fails with FT_EIO and
 * "why: ..." in errmsg (see state.h, "A lost batch"), why formatted from fmt the
 * first time s breaks. The open batch, if any, is rolled back. */
static void set_broken(sq_state *s, const char *fmt, ...) {
  if (!s->broken) {
    s->broken = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->broken_msg, sizeof s->broken_msg, fmt, ap);
    va_end(ap);
  }
  if (!sqlite3_get_autocommit(s->db))
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  s->in_batch = 0;
  s->pending_ok = 0;
}

/* FT_EIO with the reason the store broke. */
static int broken_err(sq_state *s) {
  return set_err(s, FT_EIO,
                 "%s; nothing written since the last commit is saved (the"
                 " state stays at that commit)",
                 s->broken_msg);
}

/* Records SQLite's message for the failure rc and returns the ft_err. When
 * SQLite rolled the batch back by itself (disk full, some I/O errors), the
 * writes since the last commit are gone: the store breaks, since committing
 * what came after them would save a state that matches nothing. */
static int sq_fail(sq_state *s, int rc) {
  set_err(s, 0, "%s", sqlite3_errmsg(s->db));
  if (s->in_batch && sqlite3_get_autocommit(s->db))
    set_broken(s, "a write to the state database failed (%s)", s->errmsg);
  if (sqlite3_get_autocommit(s->db))
    s->pending_ok = 0;
  return map_rc(rc);
}

/* A failed write to the journal (frontier, seen set, metadata): unless
 * SQLite refused just that statement (FT_EINVAL: a duplicate id, which the
 * caller is told of), the batch may be partial and the journal no longer
 * matches the run, so the store breaks. Returns rc. */
static int journal_fail(sq_state *s, int rc) {
  if (rc != 0 && rc != FT_EINVAL && !s->broken) {
    set_broken(s, "a journal write to the state database failed (%s)",
               s->errmsg);
    broken_err(s);
  }
  return rc;
}

static void sq_abandon(void *b, const char *why) {
  sq_state *s = b;
  if (s == NULL)
    return;
  set_broken(s, "%s", why != NULL ? why : "the batch was abandoned");
  broken_err(s);
}

static int sq_broken(void *b) {
  const sq_state *s = b;
  return s != NULL && s->broken;
}

static const char *sq_errmsg(void *b) {
  sq_state *s = b;
  return s != NULL ? s->errmsg : "";
}

/* ---- statement cache and batching --------------------------------------- */

/* Gets the statement of `kind`: the cached one, or, when a caller up the
 * stack is still iterating it (a callback re-entered the store), a fresh one
 * that stmt_put finalizes. */
static int stmt_get(sq_state *s, int kind, sqlite3_stmt **out) {
  sqlite3_stmt *cached = s->st[kind];
  if (cached != NULL && !sqlite3_stmt_busy(cached)) {
    *out = cached;
    return 0;
  }
  unsigned flags = cached == NULL ? SQLITE_PREPARE_PERSISTENT : 0;
  int rc = sqlite3_prepare_v3(s->db, stmt_sql[kind], -1, flags, out, NULL);
  if (rc != SQLITE_OK)
    return sq_fail(s, rc);
  if (cached == NULL)
    s->st[kind] = *out;
  return 0;
}

static void stmt_put(sq_state *s, int kind, sqlite3_stmt *st) {
  if (st == s->st[kind]) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  } else {
    sqlite3_finalize(st);
  }
}

/* Runs st (of `kind`, from stmt_get), a statement that returns no rows, and
 * gives it back; 0 or the error. */
static int stmt_finish(sq_state *s, int kind, sqlite3_stmt *st) {
  int r = sqlite3_step(st);
  int rc = r == SQLITE_DONE ? 0 : sq_fail(s, r);
  stmt_put(s, kind, st);
  return rc;
}

/* Runs the statement of `kind`, which takes no parameters. */
static int stmt_exec(sq_state *s, int kind) {
  sqlite3_stmt *st;
  int rc = stmt_get(s, kind, &st);
  return rc != 0 ? rc : stmt_finish(s, kind, st);
}

/* Opens the batch transaction unless one is open; a broken store opens
 * none (a write outside a batch would be committed at once). */
static int batch_begin(sq_state *s) {
  if (s->broken)
    return broken_err(s);
  if (!sqlite3_get_autocommit(s->db))
    return 0;
  int rc = stmt_exec(s, ST_BEGIN);
  if (rc == 0)
    s->in_batch = 1;
  return rc;
}

/* A failed COMMIT breaks the store whether or not SQLite kept the batch
 * open: the caller saw the failure and its own state moved on. */
static int sq_commit(void *b) {
  sq_state *s = b;
  if (s == NULL)
    return FT_EINVAL;
  if (s->broken)
    return broken_err(s);
  if (sqlite3_get_autocommit(s->db))
    return 0;
  int rc = stmt_exec(s, ST_COMMIT);
  if (rc == 0) {
    s->in_batch = 0;
  } else {
    set_broken(s, "a commit to the state database failed (%s)", s->errmsg);
    broken_err(s);
  }
  return rc;
}

/* For a write: opens the batch unless one is open and gets the statement of
 * `kind`; the caller binds it and ends with stmt_finish. */
static int write_stmt(sq_state *s, int kind, sqlite3_stmt **st) {
  int rc = batch_begin(s);
  return rc != 0 ? rc : stmt_get(s, kind, st);
}

/* Binds len bytes as a BLOB; an empty value is an empty BLOB, never NULL.
 * The bytes must outlive the step (every caller resets before returning). */
static int bind_bytes(sqlite3_stmt *st, int i, const void *p, size_t len) {
  if (len == 0)
    return sqlite3_bind_zeroblob(st, i, 0);
  return sqlite3_bind_blob64(st, i, p, len, SQLITE_STATIC);
}

static int bind_str(sqlite3_stmt *st, int i, const char *p, size_t len) {
  return sqlite3_bind_text64(st, i, len > 0 ? p : "", len, SQLITE_STATIC,
                             SQLITE_UTF8);
}

/* A malloc'd copy of column i with a NUL byte appended. */
static int column_dup(sq_state *s, sqlite3_stmt *st, int i, char **out,
                      size_t *len) {
  const void *p = sqlite3_column_blob(st, i);
  size_t n = (size_t)sqlite3_column_bytes(st, i);
  char *copy = ft_bytes_dup(p, n);
  if (copy == NULL)
    return set_err(s, FT_ENOMEM, "out of memory");
  *out = copy;
  if (len != NULL)
    *len = n;
  return 0;
}

/* ---- opening and closing ------------------------------------------------ */

/* One integer from the first row of sql. */
static int query_int(sqlite3 *db, const char *sql, int64_t *v) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *v = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_NOTFOUND;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Inside BEGIN IMMEDIATE (so two processes opening a new file do not both
 * create the schema): recognises our database, or creates the schema in an
 * empty one. A foreign database is left as it was. */
static int schema_check(sq_state *s, const char *path) {
  int64_t app = 0, nobj = 0, ver = 0;
  int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = query_int(s->db, "PRAGMA application_id", &app);
  if (rc == SQLITE_OK)
    rc = query_int(s->db, "SELECT count(*) FROM sqlite_master", &nobj);
  if (rc != SQLITE_OK) { /* not an SQLite file, or locked, or unreadable */
    int code = map_rc(rc);
    if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT) {
      code = FT_EINVAL;
      set_err(s, 0, "%s: not a fetchtree state database (%s)", path,
              sqlite3_errmsg(s->db));
    } else {
      set_err(s, 0, "%s: %s", path, sqlite3_errmsg(s->db));
    }
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return code;
  }
  int code = 0;
  if (app == STORE_APP_ID) {
    rc = query_int(s->db,
                   "SELECT CAST(val AS INTEGER) FROM ft_info"
                   " WHERE key = 'schema_version'",
                   &ver);
    if (rc != SQLITE_OK)
      code = set_err(s, FT_EINVAL,
                     "%s: not a fetchtree state database (no schema version)",
                     path);
    else if (ver > 0 && ver < STORE_SCHEMA)
      code = set_err(s, FT_EINVAL,
                     "%s: state database schema version %lld is not supported"
                     " (this fetchtree reads version %d): an older fetchtree"
                     " wrote it (other hashes); resume with that one, or"
                     " start over with a new state file",
                     path, (long long)ver, STORE_SCHEMA);
    else if (ver != STORE_SCHEMA)
      code = set_err(s, FT_EINVAL,
                     "%s: state database schema version %lld is not supported"
                     " (this fetchtree reads version %d)",
                     path, (long long)ver, STORE_SCHEMA);
  } else if (app == 0 && nobj == 0) {
    rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
      code = sq_fail(s, rc);
  } else {
    code = set_err(s, FT_EINVAL,
                   "%s: not a fetchtree state database (an SQLite database"
                   " of another program)",
                   path);
  }
  if (code == 0) {
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
      code = sq_fail(s, rc);
  }
  if (code != 0)
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return code;
}

static int store_auth(void *ud, int action, const char *a1, const char *a2,
                      const char *dbname, const char *trigger);

/* Takes the run lock on the database file at path (which SQLite has just
 * opened, so it exists): an flock(2) on a descriptor of our own, held until
 * sq_close. flock locks belong to the open file description, so
 * SQLite's own POSIX locks on the same file neither conflict with it nor
 * release it when SQLite closes a descriptor, and the kernel drops it when
 * the holder dies, even by SIGKILL. */
static int take_run_lock(sq_state *s, const char *path) {
  s->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
  if (s->lock_fd < 0)
    return set_err(s, FT_EIO, "%s: %s", path, strerror(errno));
  int r;
  do
    r = flock(s->lock_fd, LOCK_EX | LOCK_NB);
  while (r != 0 && errno == EINTR);
  if (r == 0)
    return 0;
  int e = errno;
  close(s->lock_fd);
  s->lock_fd = -1;
  if (e == EWOULDBLOCK)
    return set_err(s, FT_EBUSY,
                   "%s: in use by another fetchtree process (a state database"
                   " serves one run at a time)",
                   path);
  return set_err(s, FT_EIO, "%s: cannot lock: %s", path, strerror(e));
}

static int sq_open(void **out, const char *path, char *err, size_t errlen) {
  if (out == NULL) {
    ft_errf(err, errlen, "ft_state_open: out is NULL");
    return FT_EINVAL;
  }
  sq_state *s = calloc(1, sizeof *s);
  if (s == NULL) {
    ft_errf(err, errlen, "out of memory");
    return FT_ENOMEM;
  }
  s->lock_fd = -1;
  const char *p = path != NULL && path[0] != '\0' ? path : ":memory:";
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(p, &s->db, flags, NULL);
  int code = 0;
  if (rc != SQLITE_OK) {
    code = map_rc(rc);
    set_err(s, 0, "%s: %s", p,
            s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
  }
  if (code == 0 && strcmp(p, ":memory:") != 0 && p[0] != '\0')
    code = take_run_lock(s, p);
  if (code == 0) {
    sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
    /* script SQL (sq_sql) runs on this connection: no extension
     * loading, and no fts3_tokenizer(), whose two-argument form installs a
     * tokenizer from a pointer given as a blob (the authorizer refuses both
     * functions too, see store_auth) */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, NULL);
    code = schema_check(s, p);
  }
  /* Only now that the file is known to be ours: WAL, and NORMAL sync (see
   * "Durability" above). A file system without WAL support keeps the rollback
   * journal, which is just as crash-safe. */
  if (code == 0) {
    rc = sqlite3_exec(s->db,
                      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK)
      code = sq_fail(s, rc);
  }
  if (code == 0) {
    rc = query_int(s->db, "SELECT count(*) FROM ft_pending", &s->pending_n);
    if (rc != SQLITE_OK)
      code = sq_fail(s, rc);
    s->pending_ok = 1;
  }
  if (code == 0)
    sqlite3_set_authorizer(s->db, store_auth, s);
  if (code != 0) {
    ft_errf(err, errlen, "%s", s->errmsg);
    sqlite3_close(s->db);
    if (s->lock_fd >= 0)
      close(s->lock_fd);
    free(s);
    return code;
  }
  *out = s;
  return 0;
}

static void sq_close(void *b) {
  sq_state *s = b;
  if (s == NULL)
    return;
  if (sq_commit(s) != 0 && !sqlite3_get_autocommit(s->db))
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  for (int i = 0; i < ST_COUNT_; i++)
    sqlite3_finalize(s->st[i]);
  sqlite3_close(s->db);
  if (s->lock_fd >= 0)
    close(s->lock_fd); /* after SQLite let go of the file */
  free(s->late);
  ft_dedupe_free(s->seen);
  free(s);
}

/* ---- key-value storage per object ---------------------------------------- */

static int sq_kv_get(void *b, const char *obj, const char *key, size_t klen,
                 char **val, size_t *len) {
  sq_state *s = b;
  if (s == NULL || obj == NULL || key == NULL || val == NULL)
    return FT_EINVAL;
  *val = NULL;
  sqlite3_stmt *st;
  int rc = stmt_get(s, ST_KV_GET, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, obj, strlen(obj));
  bind_str(st, 2, key, klen);
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW)
    rc = column_dup(s, st, 0, val, len);
  else if (r == SQLITE_DONE)
    rc = FT_ENOTFOUND;
  else
    rc = sq_fail(s, r);
  stmt_put(s, ST_KV_GET, st);
  return rc;
}

static int sq_kv_put(void *b, const char *obj, const char *key, size_t klen,
                 const void *val, size_t len) {
  sq_state *s = b;
  if (s == NULL || obj == NULL || key == NULL || (val == NULL && len > 0))
    return FT_EINVAL;
  sqlite3_stmt *st;
  int rc = write_stmt(s, ST_KV_PUT, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, obj, strlen(obj));
  bind_str(st, 2, key, klen);
  bind_bytes(st, 3, val, len);
  return stmt_finish(s, ST_KV_PUT, st);
}

static int sq_kv_delete(void *b, const char *obj, const char *key,
                    size_t klen) {
  sq_state *s = b;
  if (s == NULL || obj == NULL || key == NULL)
    return FT_EINVAL;
  sqlite3_stmt *st;
  int rc = write_stmt(s, ST_KV_DEL, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, obj, strlen(obj));
  bind_str(st, 2, key, klen);
  return stmt_finish(s, ST_KV_DEL, st);
}

/* Keys starting with prefix P are exactly the range [P, succ(P)), where
 * succ(P) drops P's trailing 0xFF bytes and adds one to the last byte left;
 * when P is all 0xFF bytes the range has no upper end. Keys are TEXT
 * compared with the BINARY collation, i.e. memcmp. */
static int sq_kv_list(void *b, const char *obj, const char *prefix,
                  size_t plen, int limit, ft_state_kv_fn fn, void *ud) {
  sq_state *s = b;
  if (s == NULL || obj == NULL || fn == NULL)
    return FT_EINVAL;
  if (prefix == NULL)
    plen = 0;
  size_t hlen = plen;
  while (hlen > 0 && (unsigned char)prefix[hlen - 1] == 0xFF)
    hlen--;
  char *hi = NULL;
  if (hlen > 0) {
    hi = malloc(hlen);
    if (hi == NULL)
      return set_err(s, FT_ENOMEM, "out of memory");
    memcpy(hi, prefix, hlen);
    hi[hlen - 1] = (char)((unsigned char)hi[hlen - 1] + 1);
  }
  int kind = hi != NULL ? ST_KV_RANGE : ST_KV_FROM;
  sqlite3_stmt *st;
  int rc = stmt_get(s, kind, &st);
  if (rc != 0) {
    free(hi);
    return rc;
  }
  bind_str(st, 1, obj, strlen(obj));
  bind_str(st, 2, prefix, plen);
  sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
  if (hi != NULL)
    bind_str(st, 4, hi, hlen);
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    const char *key = (const char *)sqlite3_column_text(st, 0);
    size_t klen = (size_t)sqlite3_column_bytes(st, 0);
    const void *val = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    if (fn(ud, key != NULL ? key : "", klen, val != NULL ? val : "", len) !=
        0) {
      r = SQLITE_DONE;
      break;
    }
  }
  if (r != SQLITE_DONE)
    rc = sq_fail(s, r);
  stmt_put(s, kind, st);
  free(hi);
  return rc;
}

/* ---- SQL on the object's own tables: names ------------------------------ */


static void obj_prefix(const char *obj, char buf[PREFIX_LEN + 1]) {
  snprintf(buf, PREFIX_LEN + 1, "o_%016llx_", 
           (unsigned long long)ft_hash_str(obj));
}

static int is_name_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_';
}

/* Characters of an SQL identifier or number (SQLite takes bytes >= 0x80 as
 * identifier characters). */
static int is_ident_char(int c) {
  return is_name_char(c) || c == '$' || (unsigned char)c >= 0x80;
}

int ft_state_sql_table_name(const char *obj, const char *name, char *buf,
                        size_t len) {
  if (obj == NULL || name == NULL || buf == NULL)
    return FT_EINVAL;
  size_t n = strlen(name);
  if (n == 0 || n > NAME_MAX_LEN)
    return FT_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!is_name_char((unsigned char)name[i]))
      return FT_EINVAL;
  if (len < PREFIX_LEN + n + 1)
    return FT_ERANGE;
  obj_prefix(obj, buf);
  memcpy(buf + PREFIX_LEN, name, n + 1);
  return 0;
}

/* ASCII case-insensitive "does p[0..n) start with lower-case word w". */
static int starts_with_ci(const char *p, size_t n, const char *w) {
  size_t wn = strlen(w);
  if (n < wn)
    return 0;
  for (size_t i = 0; i < wn; i++) {
    int c = (unsigned char)p[i];
    if (c >= 'A' && c <= 'Z')
      c += 'a' - 'A';
    if (c != w[i])
      return 0;
  }
  return 1;
}

static int equals_ci(const char *p, size_t n, const char *w) {
  return n == strlen(w) && starts_with_ci(p, n, w);
}

/* SQLite's own functions whose names start with sqlite_ (harmless). */
static int is_sqlite_function(const char *p, size_t n) {
  static const char *const fns[] = {
      "sqlite_version", "sqlite_source_id", "sqlite_compileoption_used",
      "sqlite_compileoption_get", "sqlite_offset"};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
    if (equals_ci(p, n, fns[i]))
      return 1;
  return 0;
}

/* Copies query to *out with each {name} outside literals, quoted identifiers
 * and comments replaced by "<prefix>name". Two things the authorizer cannot
 * see are refused here (FT_EINVAL, reason in s):
 * - a literal or identifier starting with "sqlite_": SQLite's internal
 *   tables are reachable only that way, and the authorizer must let SQLite's
 *   own accesses to them through;
 * - ALTER TABLE ... RENAME TO a name not written {name}: the authorizer is
 *   not shown the new name, which could leave the object's namespace. */
enum { TK_SPACE, TK_NAME, TK_WORD, TK_OTHER };

static int sql_rewrite(sq_state *s, const char *q, const char *prefix,
                       char **out) {
  ft_buf b = {0};
  size_t n = strlen(q), i = 0;
  int rename = 0; /* 1: after RENAME, 2: after RENAME TO */
  while (i < n) {
    int c = (unsigned char)q[i];
    size_t j = i + 1;
    size_t off = 0, end = 0; /* a quoted token's text is q[i+off, j-end) */
    int tok = TK_OTHER, check = 0;
    if (c == '\'' || c == '"' || c == '`') {
      while (j < n && !(q[j] == c && q[j + 1] != c)) /* '' is a quote */
        j += q[j] == c ? 2 : 1;
      j = j < n ? j + 1 : n;
      check = 1, off = 1, end = j - i >= 2 ? 1 : 0;
    } else if (c == '[') {
      while (j < n && q[j] != ']')
        j++;
      j = j < n ? j + 1 : n;
      check = 1, off = 1, end = j - i >= 2 ? 1 : 0;
    } else if (c == '-' && q[j] == '-') {
      while (j < n && q[j] != '\n')
        j++;
      tok = TK_SPACE;
    } else if (c == '/' && q[j] == '*') {
      const char *e = strstr(q + i + 2, "*/");
      j = e != NULL ? (size_t)(e - q) + 2 : n;
      tok = TK_SPACE;
    } else if (c == ' ' || (c >= '\t' && c <= '\r')) {
      tok = TK_SPACE;
    } else if (c == '{') {
      while (j < n && is_name_char((unsigned char)q[j]))
        j++;
      if (j > i + 1 && j - i - 1 <= NAME_MAX_LEN && q[j] == '}')
        tok = TK_NAME;
      else
        j = i + 1; /* not a {name}: SQLite will say what it thinks */
    } else if (c == '?' || c == ':' || c == '@' || c == '$') {
      while (j < n && is_ident_char((unsigned char)q[j]))
        j++;
    } else if (is_ident_char(c)) {
      while (j < n && is_ident_char((unsigned char)q[j]))
        j++;
      if (c < '0' || c > '9') {
        tok = TK_WORD;
        check = !is_sqlite_function(q + i, j - i);
      }
    }
    if (check && starts_with_ci(q + i + off, j - i - off - end, "sqlite_")) {
      ft_buf_free(&b);
      return set_err(s, FT_EINVAL,
                     "not authorized: names starting with sqlite_ (SQLite's"
                     " internal tables) may not appear in the query; pass"
                     " such text as a bound argument");
    }
    if (tok != TK_SPACE) {
      if (rename == 2 && tok != TK_NAME) {
        ft_buf_free(&b);
        return set_err(s, FT_EINVAL,
                       "not authorized: RENAME TO must name the new table"
                       " as {name}");
      }
      if (tok == TK_WORD && equals_ci(q + i, j - i, "rename"))
        rename = 1;
      else if (tok == TK_WORD && rename == 1 && equals_ci(q + i, j - i, "to"))
        rename = 2;
      else
        rename = 0;
    }
    if (tok == TK_NAME) {
      ft_buf_putc(&b, '"');
      ft_buf_put(&b, prefix, PREFIX_LEN);
      ft_buf_put(&b, q + i + 1, j - i - 1);
      ft_buf_putc(&b, '"');
      j++; /* the closing brace */
    } else {
      ft_buf_put(&b, q + i, j - i);
    }
    i = j;
  }
  ft_buf_putc(&b, '\0');
  if (b.oom) {
    ft_buf_free(&b);
    return set_err(s, FT_ENOMEM, "out of memory");
  }
  *out = b.data;
  return 0;
}

/* ---- SQL on the object's own tables: the authorizer ---------------------- */

static int deny(auth_ctx *c, const char *fmt, const char *what) {
  if (!c->denied) {
    c->denied = 1;
    snprintf(c->reason, sizeof c->reason, fmt, what != NULL ? what : "?");
  }
  return SQLITE_DENY;
}

/* SQLite's schema tables: the user cannot name them (sql_rewrite), so every
 * access the authorizer sees is SQLite's own bookkeeping for a CREATE, DROP
 * or ALTER; SQLite itself refuses direct writes to sqlite_master. */
static int is_internal(const char *name) {
  static const char *const t[] = {"sqlite_master", "sqlite_temp_master",
                                  "sqlite_schema", "sqlite_temp_schema",
                                  "sqlite_sequence"};
  for (size_t i = 0; name != NULL && i < sizeof t / sizeof t[0]; i++)
    if (equals_ci(name, strlen(name), t[i]))
      return 1;
  return 0;
}

/* Allows a table (index, view, trigger) name of this object only; the
 * index SQLite makes for a UNIQUE or PRIMARY KEY constraint of the object's
 * table is named "sqlite_autoindex_<table>_<n>". */
static int check_name(auth_ctx *c, const char *name) {
  if (name == NULL || is_internal(name))
    return SQLITE_OK;
  const char *own = name;
  if (starts_with_ci(name, strlen(name), "sqlite_autoindex_"))
    own = name + strlen("sqlite_autoindex_");
  if (starts_with_ci(own, strlen(own), c->prefix) && own[PREFIX_LEN] != 0)
    return SQLITE_OK;
  return deny(c,
              "not authorized: \"%s\" is not one of this object's tables"
              " (write {name} for the object's table name)",
              name);
}

/* SQL functions a script may not call. The rest of SQLite's built-in
 * functions compute on their arguments only. These do more: load_extension
 * loads native code; fts3_tokenizer(name, blob) installs a tokenizer from a
 * native pointer in a blob (a crafted one crashes the process) and with one
 * argument shows a pointer; rtreenode and rtreedepth are R*Tree debugging
 * helpers that parse a raw node blob, and rtreecheck reads tables by a name
 * given as text. */
static int is_denied_function(const char *name) {
  static const char *const fns[] = {"load_extension", "fts3_tokenizer",
                                    "rtreenode", "rtreedepth", "rtreecheck"};
  for (size_t i = 0; name != NULL && i < sizeof fns / sizeof fns[0]; i++)
    if (equals_ci(name, strlen(name), fns[i]))
      return 1;
  return 0;
}

static int store_auth(void *ud, int action, const char *a1, const char *a2,
                      const char *dbname, const char *trigger) {
  sq_state *s = ud;
  auth_ctx *c = s->auth;
  (void)dbname;
  if (c == NULL)
    return SQLITE_OK; /* fetchtree's own statements */
  switch (action) {
  case SQLITE_FUNCTION: /* a2: the function's name */
    return is_denied_function(a2) ? deny(c, "not authorized: function %s", a2)
                                  : SQLITE_OK;
  case SQLITE_SELECT:
  case SQLITE_RECURSIVE:
    return SQLITE_OK;
  case SQLITE_READ:
    if (a1 != NULL && (equals_ci(a1, strlen(a1), "json_each") ||
                       equals_ci(a1, strlen(a1), "json_tree")))
      return SQLITE_OK;
    return check_name(c, a1);
  case SQLITE_INSERT:
  case SQLITE_UPDATE:
  case SQLITE_DELETE:
    if (trigger == NULL && !is_internal(a1))
      c->dml = 1;
    return check_name(c, a1);
  case SQLITE_CREATE_TABLE:
  case SQLITE_CREATE_TEMP_TABLE:
  case SQLITE_CREATE_VIEW:
  case SQLITE_CREATE_TEMP_VIEW:
  case SQLITE_DROP_TABLE:
  case SQLITE_DROP_TEMP_TABLE:
  case SQLITE_DROP_VIEW:
  case SQLITE_DROP_TEMP_VIEW:
  case SQLITE_REINDEX:
    c->ddl = 1;
    return check_name(c, a1);
  case SQLITE_CREATE_INDEX:
  case SQLITE_CREATE_TEMP_INDEX:
  case SQLITE_DROP_INDEX:
  case SQLITE_DROP_TEMP_INDEX:
  case SQLITE_CREATE_TRIGGER:
  case SQLITE_CREATE_TEMP_TRIGGER:
  case SQLITE_DROP_TRIGGER:
  case SQLITE_DROP_TEMP_TRIGGER:
    c->ddl = 1; /* a1: the index or trigger, a2: its table */
    return check_name(c, a1) == SQLITE_OK ? check_name(c, a2) : SQLITE_DENY;
  case SQLITE_ALTER_TABLE:
    c->ddl = 1; /* a1: the database, a2: the table */
    return check_name(c, a2);
  case SQLITE_CREATE_VTABLE:
  case SQLITE_DROP_VTABLE:
    c->ddl = 1; /* a1: the table, a2: the module */
    if (a2 == NULL || !(equals_ci(a2, strlen(a2), "fts5") ||
                        equals_ci(a2, strlen(a2), "fts4") ||
                        equals_ci(a2, strlen(a2), "fts3") ||
                        equals_ci(a2, strlen(a2), "rtree")))
      return deny(c, "not authorized: virtual table module %s", a2);
    return check_name(c, a1);
  case SQLITE_PRAGMA: /* read-only, asked by FTS5 and R*Tree themselves */
    if (a1 != NULL && a2 == NULL &&
        (equals_ci(a1, strlen(a1), "data_version") ||
         equals_ci(a1, strlen(a1), "page_size")))
      return SQLITE_OK;
    return deny(c, "not authorized: PRAGMA %s", a1);
  case SQLITE_TRANSACTION:
  case SQLITE_SAVEPOINT:
    return deny(c,
                "not authorized: %s (fetchtree commits storage writes in"
                " batches; transaction statements are not allowed)",
                a1);
  case SQLITE_ATTACH:
    return deny(c, "not authorized: %s", "ATTACH");
  case SQLITE_DETACH:
    return deny(c, "not authorized: %s", "DETACH");
  case SQLITE_ANALYZE:
    return deny(c, "not authorized: %s", "ANALYZE");
  default:
    return deny(c, "not authorized: %s", "this kind of statement");
  }
}

/* ---- SQL on the object's own tables: running ----------------------------- */

/* Whether p holds only spaces, comments and semicolons. */
static int only_trailing_noise(const char *p) {
  for (;;) {
    if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' ||
        *p == '\v' || *p == ';') {
      p++;
    } else if (p[0] == '-' && p[1] == '-') {
      while (*p != '\0' && *p != '\n')
        p++;
    } else if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      if (e == NULL)
        return 1; /* an unterminated comment runs to the end */
      p = e + 2;
    } else {
      return *p == '\0';
    }
  }
}

static int bind_arg(sqlite3_stmt *st, int i, const ft_sql_value *v) {
  switch (v->type) {
  case FT_SQL_NULL:
    return sqlite3_bind_null(st, i);
  case FT_SQL_INT:
    return sqlite3_bind_int64(st, i, v->i);
  case FT_SQL_REAL:
    return sqlite3_bind_double(st, i, v->r);
  case FT_SQL_TEXT:
    return sqlite3_bind_text64(st, i, v->s != NULL ? v->s : "",
                               v->s != NULL ? v->len : 0, SQLITE_TRANSIENT,
                               SQLITE_UTF8);
  case FT_SQL_BLOB:
    if (v->s == NULL || v->len == 0)
      return sqlite3_bind_zeroblob(st, i, 0);
    return sqlite3_bind_blob64(st, i, v->s, v->len, SQLITE_TRANSIENT);
  }
  return SQLITE_MISUSE;
}

/* Fills vals[i] from result column i. */
static void column_value(sqlite3_stmt *st, int i, ft_sql_value *v) {
  memset(v, 0, sizeof *v);
  switch (sqlite3_column_type(st, i)) {
  case SQLITE_INTEGER:
    v->type = FT_SQL_INT;
    v->i = sqlite3_column_int64(st, i);
    break;
  case SQLITE_FLOAT:
    v->type = FT_SQL_REAL;
    v->r = sqlite3_column_double(st, i);
    break;
  case SQLITE_TEXT:
    v->type = FT_SQL_TEXT;
    v->s = (const char *)sqlite3_column_text(st, i);
    v->len = (size_t)sqlite3_column_bytes(st, i);
    break;
  case SQLITE_BLOB:
    v->type = FT_SQL_BLOB;
    v->s = sqlite3_column_blob(st, i);
    v->len = (size_t)sqlite3_column_bytes(st, i);
    break;
  default:
    v->type = FT_SQL_NULL;
    break;
  }
  if ((v->type == FT_SQL_TEXT || v->type == FT_SQL_BLOB) && v->s == NULL)
    v->s = "";
}

/* Maps a failure of the user's statement: SQLite's errors are the caller's
 * (FT_EINVAL) unless they are resource errors. */
static int user_fail(sq_state *s, int rc, const auth_ctx *c) {
  int code = sq_fail(s, rc);
  if (c->denied)
    set_err(s, 0, "%s", c->reason);
  if (code == FT_ESQL)
    code = FT_EINVAL;
  return code;
}

/* Steps st, handing rows to fn with the authorizer off (the callback may use
 * the store). Returns 0 or an error; *completed says st reached its end. */
static int sql_rows(sq_state *s, sqlite3_stmt *st, auth_ctx *c,
                    ft_sql_row_fn fn, void *ud, int *completed) {
  const char **names = NULL;
  ft_sql_value *vals = NULL;
  int cap = 0, rc = 0, r;
  *completed = 0;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    if (fn == NULL)
      continue;
    int n = sqlite3_data_count(st);
    if (n > cap) {
      const char **nn = realloc(names, (size_t)n * sizeof *nn);
      if (nn != NULL)
        names = nn;
      ft_sql_value *nv = realloc(vals, (size_t)n * sizeof *nv);
      if (nv != NULL)
        vals = nv;
      if (nn == NULL || nv == NULL) {
        rc = set_err(s, FT_ENOMEM, "out of memory");
        break;
      }
      cap = n;
    }
    for (int i = 0; i < n; i++) {
      names[i] = sqlite3_column_name(st, i);
      column_value(st, i, &vals[i]);
    }
    s->auth = NULL;
    int stop = fn(ud, n, names, vals);
    s->auth = c;
    if (stop != 0)
      break;
  }
  if (r == SQLITE_DONE)
    *completed = 1;
  else if (r != SQLITE_ROW && rc == 0)
    rc = user_fail(s, r, c);
  free(names);
  free(vals);
  return rc;
}

/* Runs one statement of a script's (obj.storage:sql) on obj's own tables.
 *
 * In the query text, {name} (name: 1 to 64 of [A-Za-z0-9_]) stands for the
 * object's table (or index, view, trigger) "name"; it is rewritten to a
 * quoted identifier "o_<16 hex>_name", the hex being the XXH3 64-bit hash
 * of obj (ft_state_sql_table_name shows the result). {name} inside string
 * literals, quoted identifiers and comments is left alone.
 *
 * While the statement is prepared and run, an authorizer refuses: any table,
 * index, view or trigger whose name does not carry this object's prefix
 * (fetchtree's own tables, other objects' tables, pragma_* and dbstat
 * virtual tables; json_each and json_tree are allowed), virtual tables other
 * than fts3/fts4/fts5/rtree, ATTACH and DETACH, PRAGMA, ANALYZE, the
 * functions load_extension and fts3_tokenizer (native code, or a native
 * pointer from a blob; the connection disables both besides) and the R*Tree
 * debugging functions rtreenode, rtreedepth and rtreecheck, and
 * transaction statements (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE:
 * fetchtree's batching owns the transaction). Triggers and views are checked
 * when they are used, so a trigger on the object's table cannot write
 * elsewhere. PRAGMA data_version and page_size, as reads (FTS5 and R*Tree
 * ask for them), are allowed.
 * Two rules are checked on the text, where the authorizer cannot see: names
 * beginning with "sqlite_" may not appear at all, not even as a string
 * literal, since SQLite accepts a string literal as a table name (bind such
 * text as an argument; SQLite's sqlite_version() and similar functions are
 * fine); and ALTER TABLE ... RENAME TO must write the new name as {name}.
 *
 * Only one statement per call: text after the first statement other than
 * spaces, comments and semicolons is FT_EINVAL; so is a parameter count
 * other than nargs (?NNN and :name count as SQLite counts them). The
 * statement runs inside the open batch. */
static int sq_sql(void *b, const char *obj, const char *query,
                 const ft_sql_value *args, int nargs, ft_sql_row_fn fn,
                 void *ud, int64_t *changes, char *err, size_t errlen) {
  sq_state *s = b;
  if (changes != NULL)
    *changes = 0;
  if (s == NULL || obj == NULL || query == NULL || nargs < 0 ||
      (nargs > 0 && args == NULL)) {
    ft_errf(err, errlen, "ft_state_sql: invalid argument");
    return FT_EINVAL;
  }
  char prefix[PREFIX_LEN + 1];
  obj_prefix(obj, prefix);
  char *sql = NULL;
  int rc = sql_rewrite(s, query, prefix, &sql);
  if (rc == 0)
    rc = batch_begin(s);
  if (rc != 0) {
    free(sql);
    ft_errf(err, errlen, "%s", s->errmsg);
    return rc;
  }

  auth_ctx c = {.prefix = prefix};
  auth_ctx *prev = s->auth;
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  s->auth = &c;
  int r = sqlite3_prepare_v2(s->db, sql, -1, &st, &tail);
  if (r != SQLITE_OK) {
    rc = user_fail(s, r, &c);
  } else if (st == NULL) {
    rc = set_err(s, FT_EINVAL, "empty SQL statement");
  } else if (!only_trailing_noise(tail)) {
    rc = set_err(s, FT_EINVAL,
                 "only one SQL statement per call (text follows the first:"
                 " \"%.40s\")",
                 tail);
  } else if (sqlite3_bind_parameter_count(st) != nargs) {
    rc = set_err(s, FT_EINVAL,
                 "the statement has %d parameters but %d arguments were given",
                 sqlite3_bind_parameter_count(st), nargs);
  }
  for (int i = 0; rc == 0 && i < nargs; i++) {
    r = bind_arg(st, i + 1, &args[i]);
    if (r != SQLITE_OK)
      rc = user_fail(s, r, &c);
  }
  int completed = 0;
  if (rc == 0)
    rc = sql_rows(s, st, &c, fn, ud, &completed);
  if (rc == 0 && completed && c.dml && !c.ddl && changes != NULL)
    *changes = sqlite3_changes64(s->db);
  sqlite3_finalize(st);
  s->auth = prev;
  free(sql);
  if (rc != 0)
    ft_errf(err, errlen, "%s", s->errmsg);
  return rc;
}

/* ---- the run journal: the frontier ----------------------------------------
 */

/* The position of id in the sorted late list, or where it would go. */
static size_t late_find(const sq_state *s, int64_t id) {
  size_t lo = 0, hi = s->late_n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->late[mid] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void late_remove_at(sq_state *s, size_t i) {
  memmove(s->late + i, s->late + i + 1, (s->late_n - i - 1) * sizeof *s->late);
  s->late_n--;
}

static int sq_frontier_push(void *b, int64_t id, const void *req, size_t len) {
  sq_state *s = b;
  if (s == NULL || (req == NULL && len > 0))
    return FT_EINVAL;
  int late = s->taken_any && id <= s->take_cursor;
  if (late && s->late_n == s->late_cap) { /* room first: no failure after */
    size_t cap = s->late_cap > 0 ? s->late_cap * 2 : 16;
    int64_t *p = realloc(s->late, cap * sizeof *p);
    if (p == NULL)
      return set_err(s, FT_ENOMEM, "out of memory");
    s->late = p;
    s->late_cap = cap;
  }
  sqlite3_stmt *st;
  int rc = write_stmt(s, ST_PEND_ADD, &st);
  if (rc != 0)
    return journal_fail(s, rc);
  sqlite3_bind_int64(st, 1, id);
  bind_bytes(st, 2, req, len);
  rc = stmt_finish(s, ST_PEND_ADD, st);
  if (rc != 0)
    return journal_fail(s, rc);
  s->pending_n++;
  if (late) {
    size_t i = late_find(s, id);
    memmove(s->late + i + 1, s->late + i, (s->late_n - i) * sizeof *s->late);
    s->late[i] = id;
    s->late_n++;
  }
  return 0;
}

/* Hands the first late id over if it is still pending. *handed: 1 if it
 * was. The id leaves the late list once its row was looked up, before fn
 * runs (a take from inside fn must not hand it out again); if the lookup
 * fails it stays, for the next take. */
static int take_late(sq_state *s, ft_state_request_fn fn, void *ud, int *handed,
                     int *stop) {
  int64_t id = s->late[0];
  sqlite3_stmt *st;
  int rc = stmt_get(s, ST_PEND_GET, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  int r = sqlite3_step(st);
  *handed = 0;
  if (r == SQLITE_ROW || r == SQLITE_DONE)
    late_remove_at(s, 0);
  if (r == SQLITE_ROW) {
    const void *blob = sqlite3_column_blob(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    *handed = 1;
    *stop = fn(ud, id, blob != NULL ? blob : "", len) != 0;
  } else if (r != SQLITE_DONE) {
    rc = sq_fail(s, r);
  }
  stmt_put(s, ST_PEND_GET, st);
  return rc;
}

/* Walks ft_pending from just above the cursor and merges in the late ids, so
 * ids come out ascending. A row at or below the cursor is skipped: a take
 * run from inside fn already handed it out. */
static int sq_frontier_take(void *b, int limit, ft_state_request_fn fn,
                          void *ud) {
  sq_state *s = b;
  if (s == NULL || fn == NULL)
    return FT_EINVAL;
  int db_done = s->taken_any && s->take_cursor == INT64_MAX;
  sqlite3_stmt *st;
  int rc = stmt_get(s, ST_PEND_TAKE, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1,
                     s->taken_any ? s->take_cursor + !db_done : INT64_MIN);
  /* no LIMIT in SQL: rows a take inside fn handed out are skipped below,
   * and the loop stops at `limit` handed out, not at `limit` rows read */
  sqlite3_bind_int(st, 2, -1);
  int n = 0, stop = 0, have = 0;
  int64_t id = 0;
  while (rc == 0 && !stop && (limit <= 0 || n < limit)) {
    if (!have && !db_done) {
      int r = sqlite3_step(st);
      if (r == SQLITE_ROW) {
        have = 1;
        id = sqlite3_column_int64(st, 0);
      } else if (r == SQLITE_DONE) {
        db_done = 1;
      } else {
        rc = sq_fail(s, r);
        break;
      }
    }
    if (have && s->taken_any && id <= s->take_cursor) {
      have = 0;
      continue;
    }
    if (s->late_n > 0 && (!have || s->late[0] < id)) {
      int handed = 0;
      rc = take_late(s, fn, ud, &handed, &stop);
      n += handed;
      continue;
    }
    if (!have)
      break;
    const void *blob = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    s->taken_any = 1;
    s->take_cursor = id;
    have = 0;
    n++;
    stop = fn(ud, id, blob != NULL ? blob : "", len) != 0;
  }
  stmt_put(s, ST_PEND_TAKE, st);
  return rc != 0 ? rc : n;
}

static int sq_frontier_ack(void *b, int64_t id) {
  sq_state *s = b;
  if (s == NULL)
    return FT_EINVAL;
  sqlite3_stmt *st;
  int rc = write_stmt(s, ST_PEND_DONE, &st);
  if (rc != 0)
    return journal_fail(s, rc);
  sqlite3_bind_int64(st, 1, id);
  rc = stmt_finish(s, ST_PEND_DONE, st);
  if (rc != 0)
    return journal_fail(s, rc);
  if (sqlite3_changes(s->db) > 0)
    s->pending_n--;
  size_t i = late_find(s, id);
  if (i < s->late_n && s->late[i] == id)
    late_remove_at(s, i);
  return 0;
}

static int64_t sq_frontier_count(void *b) {
  sq_state *s = b;
  if (s == NULL)
    return FT_EINVAL;
  if (s->pending_ok)
    return s->pending_n;
  sqlite3_stmt *st;
  int rc = stmt_get(s, ST_PEND_COUNT, &st);
  if (rc != 0)
    return rc;
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW) {
    s->pending_n = sqlite3_column_int64(st, 0);
    s->pending_ok = 1;
  } else {
    rc = sq_fail(s, r);
  }
  stmt_put(s, ST_PEND_COUNT, st);
  return rc != 0 ? rc : s->pending_n;
}

/* ---- the run journal: the seen set and metadata ---------------------------
 */

/* Loads ft_seen into s->seen (once). A key whose length is not 16 (not
 * ours) is skipped. */
static int seen_load(sq_state *s) {
  if (s->seen_loaded)
    return 0;
  if (s->seen == NULL && ft_dedupe_new(&s->seen) != 0)
    return set_err(s, FT_ENOMEM, "out of memory");
  sqlite3_stmt *st;
  int rc = stmt_get(s, ST_SEEN_EACH, &st);
  if (rc != 0)
    return rc;
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 0) != 16)
      continue;
    if (ft_dedupe_add_key(s->seen, sqlite3_column_blob(st, 0)) < 0) {
      rc = set_err(s, FT_ENOMEM, "out of memory");
      break;
    }
  }
  if (rc == 0 && r != SQLITE_DONE)
    rc = sq_fail(s, r);
  stmt_put(s, ST_SEEN_EACH, st);
  if (rc == 0)
    s->seen_loaded = 1;
  return rc;
}

/* Answers from the in-memory copy; a new key goes to ft_seen first and into
 * the copy once it is in the batch. Always answers before returning. */
static int sq_seen_add(void *b, const unsigned char key[16],
                       ft_state_seen_fn fn, void *ud) {
  sq_state *s = b;
  if (s->broken)
    return broken_err(s);
  int rc = seen_load(s);
  if (rc != 0)
    return journal_fail(s, rc);
  if (ft_dedupe_add_key(s->seen, key) == 0) { /* seen it */
    fn(ud, key, 0, 0);
    return 0;
  }
  /* the copy now holds the key: if the insert fails the state breaks, and
   * a broken state answers nothing more */
  sqlite3_stmt *st;
  rc = write_stmt(s, ST_SEEN_ADD, &st);
  if (rc == 0) {
    bind_bytes(st, 1, key, 16);
    rc = stmt_finish(s, ST_SEEN_ADD, st);
  }
  if (rc != 0) {
    if (!s->broken)
      set_broken(s, "a seen-set write to the state database failed (%s)",
                 s->errmsg);
    return broken_err(s);
  }
  fn(ud, key, 1, 0);
  return 0;
}

static int sq_meta_get(void *b, const char *key, char **val) {
  sq_state *s = b;
  if (s == NULL || key == NULL || val == NULL)
    return FT_EINVAL;
  *val = NULL;
  sqlite3_stmt *st;
  int rc = stmt_get(s, ST_META_GET, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, key, strlen(key));
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW)
    rc = column_dup(s, st, 0, val, NULL);
  else if (r == SQLITE_DONE)
    rc = FT_ENOTFOUND;
  else
    rc = sq_fail(s, r);
  stmt_put(s, ST_META_GET, st);
  return rc;
}

static int sq_meta_set(void *b, const char *key, const char *val) {
  sq_state *s = b;
  if (s == NULL || key == NULL || val == NULL)
    return FT_EINVAL;
  sqlite3_stmt *st;
  int rc = write_stmt(s, ST_META_SET, &st);
  if (rc != 0)
    return journal_fail(s, rc);
  bind_str(st, 1, key, strlen(key));
  bind_str(st, 2, val, strlen(val));
  return journal_fail(s, stmt_finish(s, ST_META_SET, st));
}

static int sq_reset(void *b) {
  sq_state *s = b;
  if (s == NULL)
    return FT_EINVAL;
  int rc = batch_begin(s);
  if (rc != 0)
    return journal_fail(s, rc);
  int r = sqlite3_exec(s->db,
                       "DELETE FROM ft_pending; DELETE FROM ft_seen;"
                       " DELETE FROM ft_meta",
                       NULL, NULL, NULL);
  if (r != SQLITE_OK)
    return journal_fail(s, sq_fail(s, r));
  s->taken_any = 0;
  s->take_cursor = 0;
  s->late_n = 0;
  s->pending_n = 0;
  s->pending_ok = 1;
  ft_dedupe_free(s->seen);
  s->seen = NULL;
  s->seen_loaded = 0;
  return 0;
}

/* ---- the backend ------------------------------------------------------------ */

const ft_state_backend ft_state_sqlite_backend = {
    .name = "sqlite",
    .flags = FT_STATE_DURABLE,
    .open = sq_open,
    .close = sq_close,
    .errmsg = sq_errmsg,
    .commit = sq_commit,
    .abandon = sq_abandon,
    .broken = sq_broken,
    .reset = sq_reset,
    .frontier_push = sq_frontier_push,
    .frontier_take = sq_frontier_take,
    .frontier_ack = sq_frontier_ack,
    .frontier_count = sq_frontier_count,
    .seen_add = sq_seen_add,
    .kv_get = sq_kv_get,
    .kv_put = sq_kv_put,
    .kv_delete = sq_kv_delete,
    .kv_list = sq_kv_list,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .limiter_grant = NULL, /* one process at a time: state.c's local limits */
    .sql = sq_sql,
};
