/* storage.h - fetchtree's durable state in one SQLite database: object
 * key-value storage, object SQL tables and the crash-safe run journal. */
#ifndef FT_STORAGE_H
#define FT_STORAGE_H

#include <stddef.h>
#include <stdint.h>

/* Design
 *
 * One SQLite database holds everything a run must not lose: the key-value
 * storage and SQL tables that crawl scripts use through obj.storage, and the
 * run journal (the frontier of pending requests, the de-duplication set and
 * small metadata such as the output offset). A run without --state uses an
 * in-memory database, so the same code path runs either way.
 *
 * Batching. Every write goes into one open transaction (BEGIN IMMEDIATE,
 * opened by the first write after a commit); ft_store_commit ends it. The
 * caller commits every N ms or N writes, and commits the journal, the seen
 * set and the output offset together, so a rerun after kill -9 resumes from
 * one consistent point: nothing committed is lost, nothing uncommitted is
 * half there. Reads on the same ft_store see the uncommitted batch; other
 * connections see only committed data.
 *
 * Durability. The file is in WAL mode with synchronous=NORMAL. A commit is
 * written to the WAL in the OS page cache before ft_store_commit returns, so
 * a killed process (kill -9, crash, _exit) loses nothing committed. An OS
 * crash or power loss may lose the last few commits, never consistency (the
 * WAL is fsynced at each checkpoint). That is the right trade for a crawl:
 * FULL would fsync at every commit.
 *
 * Errors. Functions return 0 (or a documented positive value) or a negative
 * ft_err. SQLite failures map to FT_ENOMEM, FT_EBUSY (another process holds
 * the write lock past the busy timeout), FT_EIO (disk full, I/O error),
 * FT_EINVAL (constraint, e.g. a duplicate pending id) or FT_ESQL, and
 * ft_store_errmsg then holds SQLite's message.
 *
 * A lost batch breaks the store. If SQLite rolls the whole batch back by
 * itself (it does on disk full and some I/O errors), if a COMMIT fails, if a
 * journal write (frontier, seen set, metadata) fails other than by FT_EINVAL
 * (a duplicate id: that one statement is refused), or if the caller calls
 * ft_store_abandon, the writes since the last commit are gone or must not be
 * saved, and the caller has moved on as if they were there: committing
 * anything after that would save a frontier and output offset that match
 * nothing (a rerun would repeat or lose requests). So from then on every
 * write and ft_store_commit fails with FT_EIO and the reason, reads still
 * work, and the file stays at its last good commit, from where the next run
 * resumes. A failed write the batch survives (a constraint, a refused
 * statement) does not break it.
 *
 * One process at a time. A store on a file holds an exclusive flock(2) on
 * it from ft_store_open to ft_store_close; a second ft_store_open of the same
 * file, from this process or another, fails with FT_EBUSY. The kernel drops
 * the lock when its holder dies, even by SIGKILL.
 *
 * Not thread-safe: one ft_store is used from one thread. Callbacks may call
 * back into the same ft_store (an iterating statement that is still in use
 * is never reset under its caller); the data a callback receives is valid
 * only during the callback. */
typedef struct ft_store ft_store;

/* ---- opening and batching ---------------------------------------------- */

/* Opens (creating if missing) the state database at `path`; NULL or
 * ":memory:" opens a private in-memory database. A new or empty file gets the
 * schema; an existing file must be a fetchtree state database of a schema
 * version this build knows. On failure *out is untouched, a message goes to
 * err (when err != NULL and errlen > 0) and the result is FT_EINVAL (not a
 * fetchtree state database, not an SQLite file at all, unknown schema
 * version), FT_EIO (cannot open or read the file), FT_EBUSY (another
 * ft_store has the file open: "in use by another fetchtree process") or
 * FT_ENOMEM. A file that is not ours is never modified. */
int ft_store_open(ft_store **out, const char *path, char *err, size_t errlen);

/* Commits an open batch unless the store is broken (use ft_store_commit
 * first to see its result), then closes the database and lets go of the
 * lock. NULL is allowed. */
void ft_store_close(ft_store *s);

/* Ends the open batch: everything written since the last commit becomes
 * durable and visible to other connections. 0 when no batch is open;
 * FT_EIO on a broken store. A failure breaks the store. */
int ft_store_commit(ft_store *s);

/* The caller lost track of what the open batch stands for (its output
 * failed): rolls the batch back and breaks the store with the message why
 * (see "A lost batch" above). NULL is allowed. */
void ft_store_abandon(ft_store *s, const char *why);

/* Whether s is broken (see above); 0 for NULL. */
int ft_store_broken(const ft_store *s);

/* The message of the last failure on s ("" if none); valid until the next
 * call on s. */
const char *ft_store_errmsg(const ft_store *s);

/* ---- key-value storage per object --------------------------------------- */

/* Values are opaque bytes (the Lua side serialises); keys are the klen
 * bytes at key (NUL bytes included: "a\0b" and "a" are two keys), compared
 * as raw bytes. The same key under two objects is two entries. */

/* Copies the value of (obj, key) into a malloc'd buffer in *val (with a NUL
 * byte after the len bytes, not counted) and its length into *len (len may be
 * NULL). Returns 0, FT_ENOTFOUND (*val set to NULL), FT_EINVAL (a NULL
 * argument) or an SQLite error. */
int ft_store_get(ft_store *s, const char *obj, const char *key, size_t klen,
                 char **val, size_t *len);

/* Sets (obj, key) to the len bytes at val (val may be NULL when len is 0:
 * an empty value, which is not the same as absent). */
int ft_store_put(ft_store *s, const char *obj, const char *key, size_t klen,
                 const void *val, size_t len);

/* Removes (obj, key). Returns 0 even if it was absent. */
int ft_store_delete(ft_store *s, const char *obj, const char *key,
                    size_t klen);

/* Called per entry by ft_store_list with the key's klen bytes (NUL
 * terminated after them); return non-zero to stop. */
typedef int (*ft_store_row_fn)(void *ud, const char *key, size_t klen,
                               const void *val, size_t len);

/* Calls fn for the object's keys that start with the plen bytes of `prefix`
 * (NULL or plen 0 = all keys), in ascending byte order, at most `limit` of them
 * (limit <= 0 = no limit). The prefix is matched as exact bytes, as a key
 * range (never LIKE), so '%', '_' and 0xFF bytes are ordinary. Returns 0
 * (also when fn stopped it) or an error. */
int ft_store_list(ft_store *s, const char *obj, const char *prefix,
                  size_t plen, int limit, ft_store_row_fn fn, void *ud);

/* ---- SQL on the object's own tables ------------------------------------- */

/* In the query text, {name} (name: 1 to 64 of [A-Za-z0-9_]) stands for the
 * object's table (or index, view, trigger) "name"; it is rewritten to a
 * quoted identifier "o_<16 hex>_name", the hex being the 64-bit FNV-1a hash
 * of obj (ft_store_table_name shows the result). {name} inside string
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
 * spaces, comments and semicolons is FT_EINVAL. */
typedef enum ft_sql_type {
  FT_SQL_NULL,
  FT_SQL_INT,
  FT_SQL_REAL,
  FT_SQL_TEXT,
  FT_SQL_BLOB
} ft_sql_type;

/* One bound argument or result column. TEXT and BLOB use s and len (s may
 * hold NUL bytes; in results it is never NULL and TEXT is NUL-terminated);
 * INT uses i; REAL uses r. */
typedef struct ft_sql_value {
  ft_sql_type type;
  int64_t i;
  double r;
  const char *s;
  size_t len;
} ft_sql_value;

/* Called per result row with the column names and values (valid only during
 * the call); return non-zero to stop. */
typedef int (*ft_sql_row_fn)(void *ud, int ncols, const char *const *names,
                             const ft_sql_value *vals);

/* Runs one statement for object obj with nargs bound arguments (exactly as
 * many as the statement has parameters; ?NNN and :name count as SQLite
 * counts them). Rows go to fn (which may be NULL). *changes (if not NULL)
 * gets the number of rows inserted, updated or deleted by an INSERT, UPDATE
 * or DELETE run to completion, else 0. The statement runs inside the open
 * batch. Returns 0, or FT_EINVAL with SQLite's message or the authorizer's
 * reason (which starts "not authorized") in err and ft_store_errmsg, or
 * another error of the list above. */
int ft_store_sql(ft_store *s, const char *obj, const char *query,
                 const ft_sql_value *args, int nargs, ft_sql_row_fn fn,
                 void *ud, int64_t *changes, char *err, size_t errlen);

/* Writes the real name of obj's table `name` ("o_<16 hex>_name", unquoted)
 * into buf. Returns 0, FT_EINVAL (NULL argument or a name that {name} would
 * not accept) or FT_ERANGE (buf too small; 20 + strlen(name) bytes are
 * enough). For diagnostics and tests. */
int ft_store_table_name(const char *obj, const char *name, char *buf,
                        size_t len);

/* ---- the run journal ----------------------------------------------------- */

/* A request is an opaque blob (the caller serialises url, method, headers,
 * body, meta, depth and object name) under a 64-bit id the caller assigns,
 * normally increasing. */

/* Adds a request to the frontier. FT_EINVAL if the id is already there. */
int ft_store_pending_add(ft_store *s, int64_t id, const void *req, size_t len);

/* Called per request by ft_store_pending_take; return non-zero to stop
 * (the request that was being handed over counts as taken). */
typedef int (*ft_store_row2_fn)(void *ud, int64_t id, const void *blob,
                                size_t len);

/* Hands over, in ascending id order, up to `limit` (<= 0: all) pending
 * requests not yet handed out by this ft_store. Taken requests stay in the
 * frontier (a crash must not lose them) until ft_store_pending_done; after a
 * reopen they are handed out again. An id added at or below the highest id
 * already handed out is handed out by a later take, still in order. Returns
 * the number handed over, or an error. */
int ft_store_pending_take(ft_store *s, int limit, ft_store_row2_fn fn,
                          void *ud);

/* The request finished: it leaves the frontier. 0 even if it was absent. */
int ft_store_pending_done(ft_store *s, int64_t id);

/* The number of requests in the frontier (taken or not), or an error. */
int64_t ft_store_pending_count(ft_store *s);

/* Adds a 16-byte request key to the de-duplication set. Returns 1 if it is
 * new (now stored), 0 if it was there, or an error. */
int ft_store_seen_add(ft_store *s, const unsigned char key[16]);

/* Calls fn for every key in the set (to rebuild the caller's in-memory set on
 * resume), in no particular order; fn returns non-zero to stop. */
int ft_store_seen_each(ft_store *s,
                       int (*fn)(void *ud, const unsigned char key[16]),
                       void *ud);

/* Small run metadata ("finished", "out_offset", "next_id", "script", ...):
 * get copies the value into a malloc'd string in *val (FT_ENOTFOUND: *val
 * NULL); set inserts or replaces. */
int ft_store_meta_get(ft_store *s, const char *key, char **val);
int ft_store_meta_set(ft_store *s, const char *key, const char *val);

/* Forgets the journal, the seen set and the metadata (for --restart), in the
 * open batch. Object storage (key-value and SQL tables) is kept. */
int ft_store_reset(ft_store *s);

#endif
