/* state.h - everything a run must share or keep, behind one interface with
 * one backend per file (state_memory.c, state_sqlite.c), in the manner of
 * redis's ae.c and its aeApi* backends. */
#ifndef FT_STATE_H
#define FT_STATE_H

#include <stddef.h>
#include <stdint.h>

/* Design
 *
 * A run keeps five things: the frontier (requests to do), the seen set
 * (requests already asked for), object key-value storage (what scripts keep
 * through obj.storage, and per-object durable data such as robots.txt, which
 * fetchtree/robots.lua keeps under its own keys there), run metadata (how far
 * `start` got, the output offset) and the limits of objects (rates and
 * concurrency caps). An ft_state holds them, and the run never knows which
 * backend it talks to:
 *
 *   memory   state_memory.c: hash tables and arrays in this process; a run
 *            without --state. Nothing outlives the process.
 *   sqlite   state_sqlite.c: one SQLite file (--state FILE), crash-safe,
 *            one process at a time (flock).
 *   redis    state_redis.c: a Redis server (redis://HOST:PORT/DB?prefix=P),
 *            durable as far as the server's persistence goes; the first
 *            piece of the scale-out (issue 14): one process per prefix for
 *            now, and no run uses it yet. tests/c/test_state.c runs the
 *            conformance suite on it against a redis-server of its own.
 *
 * The atomic commit. Every write (frontier push and ack, seen keys, storage,
 * metadata) goes into the open batch; ft_state_commit makes the batch durable
 * at once. A request's completion is its records (their end: the output
 * offset, a metadata write), its follow-ups (frontier pushes), its storage
 * writes and its ack: written in one batch and committed together, a rerun
 * after kill -9 resumes from one consistent point. The caller commits every
 * N ms (the checkpoint), not per request.
 *
 * A lost batch breaks the state. If a write the batch depends on fails, a
 * commit fails, or the caller calls ft_state_abandon (its output failed, so
 * the batch stands for records that are not there), nothing is committed any
 * more: every later write and commit fails with FT_EIO and the reason, reads
 * still work, and a durable backend stays at its last good commit (its
 * uncommitted writes are rolled back), from where the next run resumes. A
 * failed write the batch survives (a duplicate frontier id) does not break
 * it. A backend without FT_STATE_DURABLE (memory) need not roll back: nothing
 * of it outlives the process, and a broken state commits nothing anyway.
 *
 * Answers that come later. A remote backend cannot answer "was this request
 * seen?" without a round trip, so seen_add reports through a callback,
 * libuv-style, instead of a return value: a backend in this process calls it
 * before seen_add returns; a remote one calls it from its loop when the reply
 * arrives (and may pipeline many). We chose a callback over a combined "push
 * unless seen" op because crawl.lua asks the seen set before it builds the
 * request, and in runs whose frontier is in Lua (no --state) it never pushes
 * to this frontier at all: the callback keeps that call site and still lets
 * a remote backend batch. fetchtree.core's core.seen (lua_state.c) returns
 * its answer at once, so it needs a backend that answers before returning
 * and says so when one does not; making the crawl wait for the answer is the
 * Redis issue's part.
 *
 * Limits. Objects have two kinds, and a process that shares them must not
 * pay a round trip per request for either, so both ops hand out batches:
 *
 *  - rate limits: ft_state_limiter_grant hands out several start times at
 *    once, so a process asks once per batch of requests. The guarantee is
 *    core/limiter.c's (at most K starts in any window of W) across all
 *    grants of all holders;
 *  - concurrency caps: ft_state_slots_acquire grants several of an object's
 *    `cap` in-flight slots at once, to a holder (a process); at no time do
 *    the holders of obj hold more than its cap between them. A holder's
 *    slots on an object share one lease, which ends lease_ns after its last
 *    acquire: acquiring (want 0 does only that) renews the lease, so a
 *    holder that is alive renews every lease_ns / 3 or so, and the slots of
 *    one that died come back to the others when its lease ends.
 *    ft_state_slots_release gives slots back, several at once.
 *
 * Both ops are optional: state.c serves a backend without them from a
 * private memory state of this ft_state (exact limiters, slot tables), right
 * for a backend that serves one process, as sqlite's flock makes it. Limits
 * are not part of the batch: a grant, an acquire or a release takes effect
 * at once (on a shared backend, for every holder), commit and abandon leave
 * them alone, and a broken state still grants and releases (a run that
 * stops must give its slots back). They are kept by ft_state_reset.
 *
 * Where they plug into the engine; neither is wired today: the engine keeps
 * its own ft_limiter and its own count of attempts in flight per object, in
 * core/tree.c's ft_object_admit (per object on the path: concurrency cap
 * reached? limiter's delay?), ft_object_start (records the start, active++)
 * and ft_object_finish (active--). An object whose rate limit is shared
 * would instead keep a few granted start times, admit a request when the
 * earliest is due, and ask for the next grant (sized by its queue) when it
 * runs low. An object whose cap is shared would keep the slots it holds: in
 * admit, active < held admits, and when active reaches held it acquires a
 * batch (sized by its queue) instead of answering FT_TREE_BUSY at once; in
 * finish, a slot whose object still has queued requests is kept for the
 * next one, and surplus slots are released in a batch; a timer of the run
 * renews the leases (want 0) and, when the answer `held` is below active
 * (a lease ended while the process stalled), admits nothing more until
 * active is back under held. Every capped object on the path needs a slot,
 * as every limiter on it needs a start.
 *
 * SQL. obj.storage:sql needs SQLite: the sql op is optional. The sqlite
 * backend has it; a backend without it makes ft_state_sql fail with "needs a
 * SQLite state (--state FILE)". The memory backend has it too, through a
 * private in-memory SQLite database it opens on the first sql call: a run
 * without --state that uses obj.storage:sql behaves as before, and one that
 * does not pays nothing for SQLite (its key-value storage and seen set are
 * plain C tables). The object's SQL tables and its key-value pairs were
 * never reachable from each other (the SQL authorizer refuses fetchtree's
 * own tables), so keeping them in two places changes nothing a script sees.
 *
 * Errors. Functions return 0 (or a documented count) or a negative ft_err
 * (FT_ENOMEM, FT_EINVAL, FT_EIO, FT_EBUSY, FT_ENOTFOUND, FT_ESQL);
 * ft_state_errmsg then says why. Not thread-safe: one ft_state is used from
 * one thread. Callbacks may call back into the same ft_state; the data a
 * callback receives is valid only during the call. */
typedef struct ft_state ft_state;

/* ---- callbacks ----------------------------------------------------------- */

/* A request handed out by frontier_take: the caller's id and its serialized
 * bytes. Return non-zero to stop (this request counts as taken). */
typedef int (*ft_state_request_fn)(void *ud, int64_t id, const void *req,
                                   size_t len);

/* The answer of seen_add: is_new is 1 if the key was not in the set (it is
 * now), 0 if it was; status is 0, or a negative ft_err when the backend
 * could not answer (is_new is then 0). Called exactly once per seen_add that
 * returned 0. */
typedef void (*ft_state_seen_fn)(void *ud, const unsigned char key[16],
                                 int is_new, int status);

/* A key-value entry handed out by kv_list: the key's klen bytes (a NUL byte
 * follows them, not counted) and the value. Return non-zero to stop. */
typedef int (*ft_state_kv_fn)(void *ud, const char *key, size_t klen,
                              const void *val, size_t len);

/* ---- SQL values (the optional sql op) ----------------------------------- */

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

/* ---- the backend interface ------------------------------------------------ */

#define FT_STATE_DURABLE 1u /* commits outlive the process; a broken batch
                               is rolled back to the last commit */

/* One backend: a file that fills this table with its static functions. Each
 * op gets the backend's own handle (`b`, made by open). Every op but the
 * optional ones must be there; ft_state_* checks the arguments before it
 * calls an op, so ops may assume non-NULL pointers where the contract below
 * says so. Contracts are the ft_state_* functions' of the same name. */
typedef struct ft_state_backend {
  const char *name; /* "memory", "sqlite" */
  unsigned flags;   /* FT_STATE_DURABLE or 0 */

  /* where: the backend's part of the address (a path for sqlite; may be
   * NULL or ""). On failure nothing is left open and err says why. */
  int (*open)(void **b, const char *where, char *err, size_t errlen);
  void (*close)(void *b);
  const char *(*errmsg)(void *b);

  int (*commit)(void *b);
  void (*abandon)(void *b, const char *why);
  int (*broken)(void *b);
  int (*reset)(void *b);

  int (*frontier_push)(void *b, int64_t id, const void *req, size_t len);
  int (*frontier_take)(void *b, int limit, ft_state_request_fn fn, void *ud);
  int (*frontier_ack)(void *b, int64_t id);
  int64_t (*frontier_count)(void *b);

  int (*seen_add)(void *b, const unsigned char key[16], ft_state_seen_fn fn,
                  void *ud);

  int (*kv_get)(void *b, const char *obj, const char *key, size_t klen,
                char **val, size_t *len);
  int (*kv_put)(void *b, const char *obj, const char *key, size_t klen,
                const void *val, size_t len);
  int (*kv_delete)(void *b, const char *obj, const char *key, size_t klen);
  int (*kv_list)(void *b, const char *obj, const char *prefix, size_t plen,
                 int limit, ft_state_kv_fn fn, void *ud);

  int (*meta_get)(void *b, const char *key, char **val);
  int (*meta_set)(void *b, const char *key, const char *val);

  /* Optional (NULL: state.c grants from exact limiters of this process,
   * right for a backend that serves one process, as sqlite's flock makes
   * it). */
  int (*limiter_grant)(void *b, const char *obj, double rps,
                       uint64_t window_ns, uint64_t now_ns, uint64_t horizon_ns,
                       int want, uint64_t *starts);

  /* Optional, both or neither (NULL: state.c holds the slots in this
   * process, as for limiter_grant). holder is never NULL ("" for the
   * ft_state's own holder); held is never NULL. */
  int (*slots_acquire)(void *b, const char *obj, const char *holder, int cap,
                       int want, uint64_t lease_ns, uint64_t now_ns,
                       int *held);
  int (*slots_release)(void *b, const char *obj, const char *holder, int n,
                       uint64_t now_ns);

  /* Optional (NULL: obj.storage:sql is refused, see "SQL" above). */
  int (*sql)(void *b, const char *obj, const char *query,
             const ft_sql_value *args, int nargs, ft_sql_row_fn fn, void *ud,
             int64_t *changes, char *err, size_t errlen);
} ft_state_backend;

extern const ft_state_backend ft_state_memory_backend;
extern const ft_state_backend ft_state_sqlite_backend;
extern const ft_state_backend ft_state_redis_backend;

/* ---- opening, batching, errors ------------------------------------------- */

/* Opens the state at `where`: NULL, "" or "memory:" is the memory backend;
 * "sqlite:PATH" or a plain PATH the sqlite backend on that file (created if
 * missing; "sqlite::memory:" a private in-memory database);
 * "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P]" the redis backend
 * (state_redis.c: FT_EINVAL for a bad address, FT_EIO when the server
 * cannot be reached or refuses AUTH/SELECT). On failure *out
 * is untouched, err says why and the result is the backend's (sqlite:
 * FT_EINVAL not a fetchtree state database / unknown schema version, FT_EIO,
 * FT_EBUSY "in use by another fetchtree process", FT_ENOMEM). */
int ft_state_open(ft_state **out, const char *where, char *err, size_t errlen);

/* Opens backend be (a table of ft_state_backend, e.g. a test's) at where.
 * FT_EINVAL for a table with one of slots_acquire and slots_release. */
int ft_state_open_backend(ft_state **out, const ft_state_backend *be,
                          const char *where, char *err, size_t errlen);

/* Commits the open batch unless the state is broken, then frees everything.
 * NULL is allowed. */
void ft_state_close(ft_state *st);

/* The backend's name ("memory", "sqlite"), and whether it is durable. */
const char *ft_state_backend_name(const ft_state *st);
int ft_state_durable(const ft_state *st);

/* Ends the open batch: everything written since the last commit becomes
 * durable (and visible to other holders of a shared state) at once. 0 when
 * nothing was written; FT_EIO on a broken state. A failure breaks it. */
int ft_state_commit(ft_state *st);

/* The caller lost track of what the open batch stands for: the batch is
 * rolled back (durable backends) and the state breaks with the message why.
 * NULL is allowed. */
void ft_state_abandon(ft_state *st, const char *why);

/* Whether st is broken; 0 for NULL. */
int ft_state_broken(ft_state *st);

/* The message of the last failure on st ("" if none); valid until the next
 * call on st. */
const char *ft_state_errmsg(ft_state *st);

/* Forgets the frontier, the seen set and the metadata (--restart), in the
 * open batch. Object storage and limits (rates, slots) are kept. */
int ft_state_reset(ft_state *st);

/* ---- the frontier ---------------------------------------------------------- */

/* A request is an opaque blob (the caller serialises it) under a 64-bit id
 * the caller assigns, normally increasing. */

/* Adds a request. FT_EINVAL if the id is already in the frontier (the batch
 * survives that). */
int ft_state_frontier_push(ft_state *st, int64_t id, const void *req,
                           size_t len);

/* Hands fn, in ascending id order, up to `limit` (<= 0: all) requests not
 * yet handed out by this ft_state. Taken requests stay in the frontier (a
 * crash must not lose them) until acked; after a reopen they are handed out
 * again. An id pushed at or below the highest id already handed out is
 * handed out by a later take, still in order. Returns the number handed
 * over, or an error. */
int ft_state_frontier_take(ft_state *st, int limit, ft_state_request_fn fn,
                           void *ud);

/* The request is done: it leaves the frontier. 0 even if it was absent. */
int ft_state_frontier_ack(ft_state *st, int64_t id);

/* The number of requests in the frontier (taken or not), or an error. */
int64_t ft_state_frontier_count(ft_state *st);

/* ---- the seen set ----------------------------------------------------------- */

/* Adds a 16-byte request key (ft_dedupe_hash_key) if absent, and reports
 * through fn whether it was new (see "Answers that come later"): fn runs
 * exactly once, before this returns on the memory and sqlite backends,
 * possibly later on a remote one. Returns 0 when fn ran or will run, or a
 * negative ft_err (fn does not run). A failed durable write breaks the
 * state. */
int ft_state_seen_add(ft_state *st, const unsigned char key[16],
                      ft_state_seen_fn fn, void *ud);

/* ---- key-value storage per object ----------------------------------------- */

/* Values are opaque bytes; keys are the klen bytes at key (NUL bytes
 * included: "a\0b" and "a" are two keys), ordered as raw bytes (memcmp,
 * shorter first on a tie). The same key under two objects is two entries. */

/* Copies the value of (obj, key) into a malloc'd buffer in *val (a NUL byte
 * follows the len bytes, not counted); len may be NULL. Returns 0,
 * FT_ENOTFOUND (*val NULL) or an error. Sees the open batch's writes. */
int ft_state_kv_get(ft_state *st, const char *obj, const char *key,
                    size_t klen, char **val, size_t *len);

/* Sets (obj, key) to the len bytes at val (val may be NULL when len is 0:
 * an empty value, which is not the same as absent). */
int ft_state_kv_put(ft_state *st, const char *obj, const char *key,
                    size_t klen, const void *val, size_t len);

/* Removes (obj, key); 0 even if it was absent. */
int ft_state_kv_delete(ft_state *st, const char *obj, const char *key,
                       size_t klen);

/* Calls fn for obj's keys that start with the plen bytes at prefix (NULL or
 * plen 0: all), in ascending byte order, at most `limit` (<= 0: no limit).
 * Returns 0 (also when fn stopped) or an error. */
int ft_state_kv_list(ft_state *st, const char *obj, const char *prefix,
                     size_t plen, int limit, ft_state_kv_fn fn, void *ud);

/* ---- run metadata ----------------------------------------------------------- */

/* Small strings under fixed names ("started", "finished", "out_offset",
 * "out_tail", "start_pos", "next_id"): get copies into a malloc'd string
 * (FT_ENOTFOUND: *val NULL); set inserts or replaces, in the batch. */
int ft_state_meta_get(ft_state *st, const char *key, char **val);
int ft_state_meta_set(ft_state *st, const char *key, const char *val);

/* ---- rate limits ---------------------------------------------------------- */

/* Grants up to `want` start times (ns on the caller's monotonic clock, or a
 * shared clock for a shared backend) for object obj limited to rps per
 * window_ns (the rule of ft_limiter_new: at most K = floor(rps * W) starts
 * in any interval of W; rps <= 0: unlimited, every start is now_ns). Start
 * times are ascending, none before now_ns, none after now_ns + horizon_ns;
 * they are reserved: a start the caller does not use is lost, never given
 * to anyone else. The limit holds across every grant for obj, whatever the
 * grants' sizes. The rate may change between grants (ft_limiter_set's
 * rules). Returns the number granted (0..want) or an error (FT_EINVAL,
 * FT_ERANGE for a rate core/limiter.c cannot hold, FT_ENOMEM). */
int ft_state_limiter_grant(ft_state *st, const char *obj, double rps,
                           uint64_t window_ns, uint64_t now_ns,
                           uint64_t horizon_ns, int want, uint64_t *starts);

/* ---- concurrency caps ------------------------------------------------------- */

/* Grants holder up to `want` more of obj's `cap` in-flight slots at once: as
 * many as fit, so that all holders of obj together hold at most cap (slots
 * whose lease ended at or before now_ns are no one's). The cap is the one of
 * this call: raising it lets more slots out at once; lowering it below what
 * is held takes nothing back (held slots stay until released or their lease
 * ends) and grants nothing until the holders are under it. The holder's
 * slots on obj, the new ones and those it held, are then leased until
 * now_ns + lease_ns (saturating; now_ns on the caller's monotonic clock, or
 * a shared clock for a shared backend): acquiring renews, want 0 only
 * renews. A holder whose lease ended before this call held nothing any
 * more; it gets what is free like anyone else.
 *
 * holder names the process that holds the slots (NULL or "": this
 * ft_state's own; a shared backend gives it an id unique among its
 * holders); one ft_state may act for several holders; the backend keeps a
 * copy of the name. *held (may be NULL)
 * gets the number of slots holder holds on obj after the call (0 on error),
 * which tells a renewing holder whether it lost any. Returns the number
 * granted (0..want) or FT_EINVAL (obj NULL, cap <= 0, want < 0, lease_ns 0)
 * or FT_ENOMEM. */
int ft_state_slots_acquire(ft_state *st, const char *obj, const char *holder,
                           int cap, int want, uint64_t lease_ns,
                           uint64_t now_ns, int *held);

/* Gives back n of holder's slots on obj (NULL or "": this ft_state's own),
 * at once. Returns the number given back: n, or what holder still held if
 * that was less (slots whose lease ended at or before now_ns were given back
 * already); 0 when it held none. The lease of the slots kept is not
 * renewed. FT_EINVAL for obj NULL or n < 0. */
int ft_state_slots_release(ft_state *st, const char *obj, const char *holder,
                           int n, uint64_t now_ns);

/* ---- SQL on the object's own tables (optional) ----------------------------- */

/* Whether obj.storage:sql works on st. */
int ft_state_has_sql(const ft_state *st);

/* Runs one SQL statement on obj's own tables ({name} in the query stands
 * for the object's table "name"; what is allowed is written above sq_sql in
 * state_sqlite.c). Rows go to fn (may be NULL); *changes (may be NULL)
 * gets the rows an INSERT, UPDATE or DELETE changed. Returns 0, FT_EINVAL
 * with the reason in err (SQLite's message, "not authorized: ...", or, on a
 * backend without SQL, "obj.storage:sql needs a SQLite state (--state
 * FILE); this run's state is <backend>") or another error. */
int ft_state_sql(ft_state *st, const char *obj, const char *query,
                 const ft_sql_value *args, int nargs, ft_sql_row_fn fn,
                 void *ud, int64_t *changes, char *err, size_t errlen);

/* Writes the real name of obj's SQL table `name` ("o_<16 hex>_name", the hex
 * being the XXH3 64-bit hash of obj, unquoted) into buf. Returns 0,
 * FT_EINVAL (NULL argument or a name {name} would not accept) or FT_ERANGE
 * (buf too small; 20 + strlen(name) bytes are enough). */
int ft_state_sql_table_name(const char *obj, const char *name, char *buf,
                            size_t len);

#endif
