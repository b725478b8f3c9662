/* state_redis.c - the redis backend of ft_state (state.h): a run's state in
 * a Redis server under a key prefix, the first piece of the scale-out on
 * Redis (issue 14). */
#include "state.h"

#include <curl/curl.h>
#include <hiredis.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "limiter.h"

/* Design
 *
 * Address. redis://[[user]:password@]host[:port][/db][?prefix=KEYPREFIX]
 * (port 6379, db 0 and prefix "fetchtree:" when absent). hiredis parses no
 * addresses; libcurl's URL API (curl_url, CURLU_NON_SUPPORT_SCHEME), which
 * we link anyway, parses the generic URL syntax (user info, IPv6 hosts,
 * percent-encoding), so we check only what is Redis's own: the db number
 * and the one parameter. Messages never repeat the address: it may hold a
 * password.
 *
 * Keys, each the prefix and a name:
 *  - frontier: one sorted set, every score 0, each member the request's id
 *    as 8 big-endian bytes with the sign bit flipped (so byte order is id
 *    order) followed by the request's bytes. One key holds both: a take is
 *    one ZRANGEBYLEX per page that returns ids and requests together, a
 *    duplicate check and an ack are a lex range of one id ([id, id+1)),
 *    the count is ZCARD;
 *  - seen: a set of 16-byte keys;
 *  - meta: a hash;
 *  - kv:OBJ, a hash of the object's keys and values, and kvx:OBJ, a sorted
 *    set (scores 0) of the same keys: kv_list is one ZRANGEBYLEX (Redis
 *    orders members as raw bytes, shorter first on a tie: state.h's order,
 *    with prefix and limit done by the server) and one HMGET, whatever the
 *    object's size; an HSCAN-and-sort would read every key of the object
 *    on every list.
 * reset drops frontier, seen and meta; kv:* and kvx:* (object storage)
 * stay, as state.h says. Two prefixes of which one begins the other
 * ("a:" and "a:kv:x") can share keys: give jobs prefixes of one shape.
 *
 * The batch. Writes do not go to Redis when made: they land in overlays
 * here (sorted arrays, struct ov), one per kind, which reads consult
 * before Redis, so the batch sees its own writes (state.h); reset in the
 * batch is a flag that makes reads skip Redis's frontier, seen set and
 * metadata. ft_state_commit sends the whole batch as one MULTI ... EXEC,
 * pipelined: every command is appended to hiredis's output buffer and the
 * replies are read after, so a commit is one round trip whatever its size,
 * and Redis applies it all or nothing (a command Redis refuses when queued
 * aborts the EXEC). abandon drops the overlays: Redis is still at the last
 * commit. A commit whose connection fails before the EXEC reply cannot say
 * whether Redis applied it, and breaks the state saying so.
 *
 * Round trips today. Reads the batch cannot answer (a key not written in
 * it) cost one each, and so do the checks a write must answer at once: a
 * frontier push asks whether the id is there (state.h's duplicate
 * refusal), seen_add whether the key is in the set. hiredis's synchronous
 * API serves that, because the conformance suite's ops, and every caller
 * today, are synchronous; the async API on libuv (hiredis's adapter),
 * pipelined checks and answers that come later are the next step of issue
 * 14, and they change this file only, not the interface.
 *
 * Durable. A commit is durable when EXEC returns as far as the server's
 * persistence goes: with appendonly yes and appendfsync always a commit
 * survives a crash of the server; appendfsync everysec (Redis's default
 * with AOF) may lose the last second; without AOF (RDB snapshots only) the
 * writes since the last snapshot. A MULTI/EXEC is one unit in the AOF
 * (a torn one is dropped on load), so what survives is a whole commit.
 * A crash of this process loses only the open batch, as for sqlite.
 *
 * One holder. Nothing stops two processes opening the same prefix: there
 * is no lock like sqlite's flock, because the rest of issue 14 wants many
 * processes on one job. Until it gives them a way to share (claimed
 * requests, checks done at commit), two openers of one prefix each hand
 * out every request (what a take handed out is kept here, per ft_state),
 * and a key both ask about at once may be new to both; their commits do
 * not mix, each is one transaction. Use one process per prefix for now.
 *
 * Limits. Shared by every holder of the prefix, outside the batch (state.h,
 * "Limits"), each grant or release one optimistic transaction: WATCH the
 * object's key and read it (one round trip, pipelined), work out the
 * answer here, write it back in MULTI ... EXEC (one round trip), and start
 * over if another holder wrote the key in between (EXEC answers nil). So
 * a grant costs two round trips, whatever its size, and the arithmetic is
 * the memory backend's, in C on 64-bit integers (Redis's Lua numbers are
 * doubles, which cannot hold nanosecond clocks):
 *  - lim:OBJ, a string: the grant's arguments (rate, window), the last
 *    start granted, and core/limiter.c's whole state (ft_limiter_save);
 *    each grant loads the limiter, hands out its next starts exactly as
 *    mem_limiter_grant does, and saves it. K start times are 8 K bytes;
 *  - slots:OBJ, a hash: holder -> "N EXPIRES" (slots held, end of lease).
 *    The ft_state's own holder ("") is HOST:PID:CLIENT-ID, unique among
 *    the server's clients.
 * Clocks are the callers' (state.h): processes that share a limit must
 * pass times of one clock, which the rest of issue 14 provides.
 *
 * SQL. There is no sql op: Redis has no SQL. */

#define DEFAULT_PREFIX "fetchtree:"
#define DEFAULT_PORT 6379
#define TAKE_PAGE 256  /* requests per ZRANGEBYLEX of a take */
#define SADD_CHUNK 512 /* keys per SADD of a commit */

/* ---- overlays: sorted arrays of byte strings ----------------------------- */

typedef struct ov_entry {
  char *k; /* kl bytes */
  size_t kl;
  char *v; /* vl bytes, NUL after them; NULL when del */
  size_t vl;
  unsigned char del; /* deleted (kv, meta), acked (frontier) in the batch */
  unsigned char old; /* frontier: the id may be in Redis (it was acked) */
} ov_entry;

typedef struct ov {
  ov_entry *e;
  size_t n, cap;
} ov;

/* Byte order, shorter first on a tie (state.h's, and Redis's lex order). */
static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  if (c != 0)
    return c;
  return al < bl ? -1 : al > bl;
}

/* The index of k in o, or where it would go; 1 if it is there. */
static int ov_find(const ov *o, const char *k, size_t kl, size_t *at) {
  size_t lo = 0, hi = o->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cmp_bytes(o->e[mid].k, o->e[mid].kl, k, kl) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *at = lo;
  return lo < o->n && cmp_bytes(o->e[lo].k, o->e[lo].kl, k, kl) == 0;
}

/* Sets k to a copy of v (del: deleted, no value). Returns the entry, or
 * NULL when out of memory (o as it was). */
static ov_entry *ov_set(ov *o, const char *k, size_t kl, const void *v,
                        size_t vl, int del) {
  size_t at;
  char *val = del ? NULL : ft_bytes_dup(v, vl);
  if (!del && val == NULL)
    return NULL;
  if (ov_find(o, k, kl, &at)) {
    free(o->e[at].v);
    o->e[at].v = val;
    o->e[at].vl = del ? 0 : vl;
    o->e[at].del = (unsigned char)del;
    return &o->e[at];
  }
  char *key = ft_bytes_dup(k, kl);
  if (key == NULL || (o->n == o->cap && o->cap > SIZE_MAX / 4)) {
    free(key);
    free(val);
    return NULL;
  }
  if (o->n == o->cap) {
    size_t cap = o->cap > 0 ? o->cap * 2 : 32;
    ov_entry *e = realloc(o->e, cap * sizeof *e);
    if (e == NULL) {
      free(key);
      free(val);
      return NULL;
    }
    o->e = e;
    o->cap = cap;
  }
  memmove(o->e + at + 1, o->e + at, (o->n - at) * sizeof *o->e);
  o->e[at] = (ov_entry){.k = key,
                        .kl = kl,
                        .v = val,
                        .vl = del ? 0 : vl,
                        .del = (unsigned char)del};
  o->n++;
  return &o->e[at];
}

static void ov_remove(ov *o, size_t at) {
  free(o->e[at].k);
  free(o->e[at].v);
  memmove(o->e + at, o->e + at + 1, (o->n - at - 1) * sizeof *o->e);
  o->n--;
}

static void ov_clear(ov *o) {
  for (size_t i = 0; i < o->n; i++) {
    free(o->e[i].k);
    free(o->e[i].v);
  }
  free(o->e);
  memset(o, 0, sizeof *o);
}

/* ---- the state ----------------------------------------------------------- */

typedef struct rd_state {
  redisContext *c;
  char *prefix;
  char *k_frontier, *k_seen, *k_meta; /* prefix + name */
  char self[128]; /* the name of this ft_state's own slot holder */
  ov fr;          /* frontier: id8 -> request, del = acked */
  ov seen;        /* seen keys added in the batch */
  ov kv;          /* OBJ \0 KEY -> value, del = deleted */
  ov meta;        /* name -> value */
  ov late;        /* id8 of requests pushed at or below the take cursor */
  int cleared;   /* reset in the batch: Redis's frontier, seen, meta are gone */
  int dirty;     /* the batch has writes */
  int taken_any; /* a take handed something out... */
  int64_t cursor;  /* ...and this is the highest id it handed out */
  int64_t scan_hi; /* during a take: the page's last id (pushes at or below
                      it are late too); INT64_MIN otherwise */
  int broken;
  char broken_msg[512];
  char errmsg[512];
} rd_state;

static int set_err(rd_state *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_err(rd_state *s, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

static int oom(rd_state *s) { return set_err(s, FT_ENOMEM, "out of memory"); }

/* Breaks the state (state.h, "A lost batch breaks the state") with the
 * message already in errmsg, drops the batch; returns code. */
static int break_state(rd_state *s, int code) {
  if (!s->broken) {
    s->broken = 1;
    snprintf(s->broken_msg, sizeof s->broken_msg, "%s", s->errmsg);
  }
  ov_clear(&s->fr);
  ov_clear(&s->seen);
  ov_clear(&s->kv);
  ov_clear(&s->meta);
  s->cleared = 0;
  s->dirty = 0;
  return code;
}

/* Writes check this first: a broken state writes nothing (state.h). */
static int write_check(rd_state *s) {
  if (!s->broken)
    return 0;
  return set_err(s, FT_EIO,
                 "%s; nothing written since the last commit is saved",
                 s->broken_msg);
}

/* Runs one command (argc byte strings). Returns the reply (the caller
 * frees it), or NULL with errmsg set: a lost connection (hiredis cannot go
 * on with it: the state breaks) or an error reply. */
static redisReply *run(rd_state *s, int argc, const char **argv,
                       const size_t *lens) {
  redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
  if (r == NULL) {
    set_err(s, FT_EIO, "redis: %s",
            s->c->errstr[0] ? s->c->errstr : "connection lost");
    break_state(s, FT_EIO);
    return NULL;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    set_err(s, FT_EIO, "redis %s: %.*s", argv[0], (int)r->len, r->str);
    freeReplyObject(r);
    return NULL;
  }
  return r;
}

/* ---- ids and lex ranges -------------------------------------------------- */

/* id as 8 bytes whose byte order is the ids' order. */
static void id8(int64_t id, char out[8]) {
  uint64_t u = (uint64_t)id ^ 0x8000000000000000ull;
  for (int i = 7; i >= 0; i--) {
    out[i] = (char)(u & 0xFF);
    u >>= 8;
  }
}

static int64_t id_of(const char *p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; i++)
    u = u << 8 | (unsigned char)p[i];
  return (int64_t)(u ^ 0x8000000000000000ull);
}

/* The ZRANGEBYLEX bounds of the members of id: "[" id8(id) and "(" id8(id
 * + 1), or "+" for the last id. */
typedef struct id_range {
  char lo[9], hi[9];
  size_t hilen;
} id_range;

static void id_range_of(int64_t id, id_range *r) {
  r->lo[0] = '[';
  id8(id, r->lo + 1);
  if (id == INT64_MAX) {
    r->hi[0] = '+';
    r->hilen = 1;
  } else {
    r->hi[0] = '(';
    id8(id + 1, r->hi + 1);
    r->hilen = 9;
  }
}

/* ---- the address --------------------------------------------------------- */

typedef struct address {
  char host[256];
  int port;
  long db;
  char *user, *password, *prefix; /* malloc'd; user, password may be NULL */
} address;

static void address_free(address *a) {
  free(a->user);
  free(a->password);
  free(a->prefix);
}

/* Each part of an address, from the URL handle u into a: 0, or FT_EINVAL /
 * FT_ENOMEM with the reason in err. What they set is freed by
 * address_free, whatever they return. */

static int oom_err(char *err, size_t errlen) {
  ft_errf(err, errlen, "out of memory");
  return FT_ENOMEM;
}

/* HOST (IPv6 brackets dropped) and :PORT. */
static int address_host_port(CURLU *u, address *a, char *err, size_t errlen) {
  char *part = NULL;
  int rc = FT_EINVAL;
  if (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK ||
      part[0] == '\0') {
    ft_errf(err, errlen, "redis address: no host (redis://HOST[:PORT])");
    goto done;
  }
  size_t hl = strlen(part);
  const char *h = part;
  if (hl >= 2 && part[0] == '[' && part[hl - 1] == ']') { /* IPv6 */
    h++;
    hl -= 2;
  }
  if (hl >= sizeof a->host) {
    ft_errf(err, errlen, "redis address: host name too long");
    goto done;
  }
  memcpy(a->host, h, hl);
  a->host[hl] = '\0';
  curl_free(part);
  part = NULL;
  if (curl_url_get(u, CURLUPART_PORT, &part, 0) == CURLUE_OK) {
    char *end;
    long p = strtol(part, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535) {
      ft_errf(err, errlen, "redis address: port must be 1 to 65535");
      goto done;
    }
    a->port = (int)p;
  }
  rc = 0;
done:
  curl_free(part);
  return rc;
}

/* [USER]:PASSWORD@, percent-decoded; a user needs a password. */
static int address_credentials(CURLU *u, address *a, char *err, size_t errlen) {
  char *part = NULL;
  if (curl_url_get(u, CURLUPART_USER, &part, CURLU_URLDECODE) == CURLUE_OK) {
    if (part[0] != '\0')
      a->user = ft_bytes_dup(part, strlen(part));
    int oom = part[0] != '\0' && a->user == NULL;
    curl_free(part);
    part = NULL;
    if (oom)
      return oom_err(err, errlen);
  }
  if (curl_url_get(u, CURLUPART_PASSWORD, &part, CURLU_URLDECODE) ==
      CURLUE_OK) {
    a->password = ft_bytes_dup(part, strlen(part));
    curl_free(part);
    if (a->password == NULL)
      return oom_err(err, errlen);
  }
  if (a->user != NULL && a->password == NULL) {
    ft_errf(err, errlen,
            "redis address: a user needs a password (redis://USER:PASSWORD@"
            "HOST)");
    return FT_EINVAL;
  }
  return 0;
}

/* /DB: a database number, or nothing. */
static int address_db(CURLU *u, address *a, char *err, size_t errlen) {
  char *part = NULL;
  int rc = 0;
  if (curl_url_get(u, CURLUPART_PATH, &part, 0) == CURLUE_OK &&
      strcmp(part, "/") != 0 && part[0] != '\0') {
    const char *d = part + 1;
    char *end;
    long db = strtol(d, &end, 10);
    if (d[0] < '0' || d[0] > '9' || *end != '\0' || db > INT_MAX) {
      ft_errf(err, errlen,
              "redis address: the path must be a database number (/0, /1,"
              " ...)");
      rc = FT_EINVAL;
    } else {
      a->db = db;
    }
  }
  curl_free(part);
  return rc;
}

/* ?prefix=P, the one parameter (percent-decoded, non-empty, no NUL);
 * DEFAULT_PREFIX without it. */
static int address_query(CURLU *u, address *a, char *err, size_t errlen) {
  char *part = NULL;
  int rc = FT_EINVAL;
  if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK) {
    /* name=value pairs; prefix is the only name */
    for (char *p = part; p != NULL && *p != '\0';) {
      char *amp = strchr(p, '&');
      if (amp != NULL)
        *amp = '\0';
      char *eq = strchr(p, '=');
      if (eq == NULL || (size_t)(eq - p) != 6 || memcmp(p, "prefix", 6) != 0) {
        ft_errf(err, errlen,
                "redis address: unknown parameter '%.*s' (the one known is"
                " prefix=)",
                (int)(eq != NULL ? (size_t)(eq - p) : strlen(p)), p);
        goto done;
      }
      if (a->prefix != NULL) {
        ft_errf(err, errlen, "redis address: prefix= given twice");
        goto done;
      }
      int n = 0;
      char *v = curl_easy_unescape(NULL, eq + 1, 0, &n);
      if (v != NULL)
        a->prefix = ft_bytes_dup(v, (size_t)n);
      curl_free(v);
      if (a->prefix == NULL) {
        rc = oom_err(err, errlen);
        goto done;
      }
      if (n == 0 || strlen(a->prefix) != (size_t)n) {
        ft_errf(err, errlen,
                "redis address: prefix= must be a non-empty string without"
                " NUL bytes");
        goto done;
      }
      p = amp != NULL ? amp + 1 : NULL;
    }
  }
  if (a->prefix == NULL &&
      (a->prefix = ft_bytes_dup(DEFAULT_PREFIX, strlen(DEFAULT_PREFIX))) ==
          NULL) {
    rc = oom_err(err, errlen);
    goto done;
  }
  rc = 0;
done:
  curl_free(part);
  return rc;
}

/* Parses where (the address after "redis://") into a, with libcurl's URL
 * API (hiredis has no URL parser). Returns 0, or FT_EINVAL / FT_ENOMEM
 * with the reason in err (which never repeats the address: it may hold a
 * password). */
static int parse_address(const char *where, address *a, char *err,
                         size_t errlen) {
  memset(a, 0, sizeof *a);
  a->port = DEFAULT_PORT;
  int rc = FT_EINVAL;
  char *url = NULL, *part = NULL;
  CURLU *u = curl_url();
  size_t wl = where != NULL ? strlen(where) : 0;
  if (u == NULL || (url = malloc(wl + 9)) == NULL) {
    rc = oom_err(err, errlen);
    goto done;
  }
  if (wl == 0 ||
      where[0] == '/') { /* curl would take "redis:///0" as 0.0.0.0 */
    ft_errf(err, errlen, "redis address: no host (redis://HOST[:PORT])");
    goto done;
  }
  memcpy(url, "redis://", 8);
  memcpy(url + 8, where, wl + 1);
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
  if (uc != CURLUE_OK) {
    ft_errf(err, errlen, "redis address: %s", curl_url_strerror(uc));
    goto done;
  }
  if (curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
    ft_errf(err, errlen, "redis address: a fragment (#...) means nothing here");
    goto done;
  }
  if ((rc = address_host_port(u, a, err, errlen)) == 0 &&
      (rc = address_credentials(u, a, err, errlen)) == 0 &&
      (rc = address_db(u, a, err, errlen)) == 0)
    rc = address_query(u, a, err, errlen);
done:
  curl_free(part);
  curl_url_cleanup(u);
  free(url);
  if (rc != 0)
    address_free(a);
  return rc;
}

/* ---- opening and closing ------------------------------------------------- */

static void rd_close_all(rd_state *s) {
  if (s->c != NULL)
    redisFree(s->c);
  ov_clear(&s->fr);
  ov_clear(&s->seen);
  ov_clear(&s->kv);
  ov_clear(&s->meta);
  ov_clear(&s->late);
  free(s->prefix);
  free(s->k_frontier);
  free(s->k_seen);
  free(s->k_meta);
  free(s);
}

/* prefix + mid + name, malloc'd, its length in *len (may be NULL); NULL
 * when out of memory. Every key of a state is made here. */
static char *prefixed_key(const char *prefix, const char *mid, const char *name,
                          size_t *len) {
  size_t pl = strlen(prefix), ml = strlen(mid), nl = strlen(name);
  char *k = malloc(pl + ml + nl + 1);
  if (k != NULL) {
    memcpy(k, prefix, pl);
    memcpy(k + pl, mid, ml);
    memcpy(k + pl + ml, name, nl + 1);
    if (len != NULL)
      *len = pl + ml + nl;
  }
  return k;
}

static char *key_of(const char *prefix, const char *name) {
  return prefixed_key(prefix, "", name, NULL);
}

/* The state's key prefix + mid + obj (lim:OBJ, kv:OBJ...). */
static char *obj_key(rd_state *s, const char *mid, const char *obj,
                     size_t *len) {
  return prefixed_key(s->prefix, mid, obj, len);
}
/* Runs a command at open (AUTH, SELECT, PING): 0, or FT_EIO with err. */
static int open_command(rd_state *s, const address *a, const char *what,
                        int argc, const char **argv, char *err, size_t errlen) {
  redisReply *r = redisCommandArgv(s->c, argc, argv, NULL);
  int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
  if (!ok)
    ft_errf(err, errlen, "redis %s:%d: %s: %s", a->host, a->port, what,
            r != NULL ? r->str : s->c->errstr);
  freeReplyObject(r);
  return ok ? 0 : FT_EIO;
}

static int rd_open(void **out, const char *where, char *err, size_t errlen) {
  address a;
  int rc = parse_address(where, &a, err, errlen);
  if (rc != 0)
    return rc;
  rd_state *s = calloc(1, sizeof *s);
  if (s == NULL) {
    address_free(&a);
    ft_errf(err, errlen, "out of memory");
    return FT_ENOMEM;
  }
  s->scan_hi = INT64_MIN;
  s->prefix = a.prefix;
  a.prefix = NULL;
  s->k_frontier = key_of(s->prefix, "frontier");
  s->k_seen = key_of(s->prefix, "seen");
  s->k_meta = key_of(s->prefix, "meta");
  if (s->k_frontier == NULL || s->k_seen == NULL || s->k_meta == NULL) {
    ft_errf(err, errlen, "out of memory");
    rc = FT_ENOMEM;
    goto fail;
  }
  struct timeval tv = {5, 0};
  s->c = redisConnectWithTimeout(a.host, a.port, tv);
  if (s->c == NULL || s->c->err) {
    ft_errf(err, errlen, "redis %s:%d: cannot connect: %s", a.host, a.port,
            s->c != NULL ? s->c->errstr : "out of memory");
    rc = FT_EIO;
    goto fail;
  }
  /* a server that stops answering fails the call instead of hanging it */
  struct timeval io = {30, 0};
  redisSetTimeout(s->c, io);
  if (a.password != NULL) {
    const char *auth[] = {"AUTH", a.user != NULL ? a.user : a.password,
                          a.password};
    rc = open_command(s, &a, "AUTH", a.user != NULL ? 3 : 2, auth, err, errlen);
    if (rc != 0)
      goto fail;
  }
  char db[16];
  snprintf(db, sizeof db, "%ld", a.db);
  const char *sel[] = {a.db != 0 ? "SELECT" : "PING", db};
  rc = open_command(s, &a, a.db != 0 ? "SELECT" : "PING", a.db != 0 ? 2 : 1,
                    sel, err, errlen);
  if (rc != 0)
    goto fail;
  redisReply *id = redisCommand(s->c, "CLIENT ID");
  char host[64] = "";
  gethostname(host, sizeof host - 1);
  snprintf(s->self, sizeof s->self, "%s:%ld:%lld", host, (long)getpid(),
           id != NULL && id->type == REDIS_REPLY_INTEGER ? id->integer : 0LL);
  freeReplyObject(id);
  address_free(&a);
  *out = s;
  return 0;
fail:
  address_free(&a);
  rd_close_all(s);
  return rc;
}

static int rd_commit(void *b);

static void rd_close(void *b) {
  rd_state *s = b;
  if (!s->broken)
    rd_commit(s);
  rd_close_all(s);
}

static const char *rd_errmsg(void *b) {
  rd_state *s = b;
  return s->errmsg;
}

/* ---- commit, abandon, reset ---------------------------------------------- */

/* Appends one command to the pipeline of the commit; *n counts them. */
static int append(rd_state *s, int *n, int argc, const char **argv,
                  const size_t *lens) {
  if (redisAppendCommandArgv(s->c, argc, argv, lens) != REDIS_OK)
    return oom(s);
  (*n)++;
  return 0;
}

/* kv:OBJ or kvx:OBJ (index) of an overlay key OBJ \0 KEY, malloc'd, its
 * length in *len; the key's bytes after the NUL. */
static char *kv_redis_key(rd_state *s, const char *obj, int index,
                          size_t *len) {
  return obj_key(s, index ? "kvx:" : "kv:", obj, len);
}

/* Appends the batch's commands between MULTI and EXEC. */
static int append_batch(rd_state *s, int *n) {
  int rc = 0;
  if (s->cleared) {
    const char *argv[] = {"UNLINK", s->k_frontier, s->k_seen, s->k_meta};
    if ((rc = append(s, n, 4, argv, NULL)) != 0)
      return rc;
  }
  for (size_t i = 0; i < s->fr.n; i++) {
    ov_entry *e = &s->fr.e[i];
    if (e->old) { /* drop what Redis has under the id */
      id_range r;
      id_range_of(id_of(e->k), &r);
      const char *argv[] = {"ZREMRANGEBYLEX", s->k_frontier, r.lo, r.hi};
      size_t lens[] = {14, strlen(s->k_frontier), 9, r.hilen};
      if ((rc = append(s, n, 4, argv, lens)) != 0)
        return rc;
    }
    if (e->del)
      continue;
    char *m = malloc(8 + e->vl);
    if (m == NULL)
      return oom(s);
    memcpy(m, e->k, 8);
    if (e->vl > 0)
      memcpy(m + 8, e->v, e->vl);
    const char *argv[] = {"ZADD", s->k_frontier, "0", m};
    size_t lens[] = {4, strlen(s->k_frontier), 1, 8 + e->vl};
    rc = append(s, n, 4, argv, lens);
    free(m);
    if (rc != 0)
      return rc;
  }
  for (size_t i = 0; i < s->seen.n; i += SADD_CHUNK) {
    const char *argv[SADD_CHUNK + 2];
    size_t lens[SADD_CHUNK + 2];
    int argc = 2;
    argv[0] = "SADD";
    lens[0] = 4;
    argv[1] = s->k_seen;
    lens[1] = strlen(s->k_seen);
    for (size_t j = i; j < s->seen.n && j < i + SADD_CHUNK; j++, argc++) {
      argv[argc] = s->seen.e[j].k;
      lens[argc] = 16;
    }
    if ((rc = append(s, n, argc, argv, lens)) != 0)
      return rc;
  }
  for (size_t i = 0; i < s->kv.n && rc == 0; i++) {
    ov_entry *e = &s->kv.e[i];
    size_t ol = strlen(e->k), hl, xl;
    const char *key = e->k + ol + 1;
    size_t klen = e->kl - ol - 1;
    char *hk = kv_redis_key(s, e->k, 0, &hl);
    char *xk = kv_redis_key(s, e->k, 1, &xl);
    if (hk == NULL || xk == NULL)
      rc = oom(s);
    else if (e->del) {
      const char *a1[] = {"HDEL", hk, key}, *a2[] = {"ZREM", xk, key};
      size_t l1[] = {4, hl, klen}, l2[] = {4, xl, klen};
      rc = append(s, n, 3, a1, l1);
      if (rc == 0)
        rc = append(s, n, 3, a2, l2);
    } else {
      const char *a1[] = {"HSET", hk, key, e->v},
                 *a2[] = {"ZADD", xk, "0", key};
      size_t l1[] = {4, hl, klen, e->vl}, l2[] = {4, xl, 1, klen};
      rc = append(s, n, 4, a1, l1);
      if (rc == 0)
        rc = append(s, n, 4, a2, l2);
    }
    free(hk);
    free(xk);
  }
  for (size_t i = 0; i < s->meta.n && rc == 0; i++) {
    ov_entry *e = &s->meta.e[i];
    const char *argv[] = {e->del ? "HDEL" : "HSET", s->k_meta, e->k, e->v};
    size_t lens[] = {4, strlen(s->k_meta), e->kl, e->vl};
    rc = append(s, n, e->del ? 3 : 4, argv, lens);
  }
  return rc;
}

/* One MULTI ... EXEC, pipelined: all commands go out, then all replies
 * come back (see "The batch" above). */
static int rd_commit(void *b) {
  rd_state *s = b;
  int rc = write_check(s);
  if (rc != 0 || !s->dirty)
    return rc;
  int n = 0;
  const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
  rc = append(s, &n, 1, multi, NULL);
  if (rc == 0)
    rc = append_batch(s, &n);
  if (rc == 0)
    rc = append(s, &n, 1, exec, NULL);
  if (rc != 0)
    /* commands are in hiredis's buffer and cannot be taken back: this
     * connection can send nothing else */
    return break_state(s, rc);
  char refused[256] = "";
  for (int i = 0; i < n; i++) {
    redisReply *r = NULL;
    if (redisGetReply(s->c, (void **)&r) != REDIS_OK || r == NULL) {
      set_err(s, FT_EIO,
              "commit: redis: %s; whether Redis applied the batch is unknown",
              s->c->errstr[0] ? s->c->errstr : "connection lost");
      return break_state(s, FT_EIO);
    }
    if (i < n - 1) {
      if (r->type == REDIS_REPLY_ERROR && refused[0] == '\0')
        snprintf(refused, sizeof refused, "%.*s", (int)r->len, r->str);
    } else if (r->type == REDIS_REPLY_ERROR) {
      set_err(s, FT_EIO, "commit: redis refused the batch: %s%s%.*s", refused,
              refused[0] ? "; " : "", (int)r->len, r->str);
      rc = FT_EIO;
    } else if (r->type != REDIS_REPLY_ARRAY) {
      set_err(s, FT_EIO, "commit: redis did not run the batch");
      rc = FT_EIO;
    } else {
      for (size_t j = 0; j < r->elements && rc == 0; j++)
        if (r->element[j]->type == REDIS_REPLY_ERROR)
          rc = set_err(s, FT_EIO,
                       "commit: redis applied part of the batch and refused"
                       " the rest: %.*s",
                       (int)r->element[j]->len, r->element[j]->str);
    }
    freeReplyObject(r);
  }
  if (rc != 0)
    return break_state(s, rc);
  ov_clear(&s->fr);
  ov_clear(&s->seen);
  ov_clear(&s->kv);
  ov_clear(&s->meta);
  s->cleared = 0;
  s->dirty = 0;
  return 0;
}

static void rd_abandon(void *b, const char *why) {
  rd_state *s = b;
  set_err(s, FT_EIO, "%s", why);
  break_state(s, FT_EIO);
  write_check(s);
}

static int rd_broken(void *b) {
  rd_state *s = b;
  return s->broken;
}

static int rd_reset(void *b) {
  rd_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  ov_clear(&s->fr);
  ov_clear(&s->seen);
  ov_clear(&s->meta);
  ov_clear(&s->late);
  s->cleared = 1;
  s->dirty = 1;
  s->taken_any = 0;
  s->cursor = 0;
  return 0;
}

/* ---- the frontier -------------------------------------------------------- */

/* Whether Redis's frontier (as committed) holds id: 1, 0, or an error. */
static int redis_has_id(rd_state *s, int64_t id) {
  id_range r;
  id_range_of(id, &r);
  const char *argv[] = {"ZLEXCOUNT", s->k_frontier, r.lo, r.hi};
  size_t lens[] = {9, strlen(s->k_frontier), 9, r.hilen};
  redisReply *rep = run(s, 4, argv, lens);
  if (rep == NULL)
    return FT_EIO;
  int has = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
  freeReplyObject(rep);
  return has;
}

static int rd_frontier_push(void *b, int64_t id, const void *req, size_t len) {
  rd_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  char k[8];
  id8(id, k);
  size_t at;
  int in_batch = ov_find(&s->fr, k, 8, &at);
  if (in_batch && !s->fr.e[at].del)
    return set_err(s, FT_EINVAL, "frontier: request id %lld is already there",
                   (long long)id);
  if (!in_batch && !s->cleared) {
    int has = redis_has_id(s, id);
    if (has < 0)
      return break_state(s, has);
    if (has)
      return set_err(s, FT_EINVAL, "frontier: request id %lld is already there",
                     (long long)id);
  }
  ov_entry *e = ov_set(&s->fr, k, 8, req, len, 0);
  if (e == NULL)
    return break_state(s, oom(s));
  s->dirty = 1;
  int64_t hi = s->cursor > s->scan_hi ? s->cursor : s->scan_hi;
  if (s->taken_any && id <= hi && ov_set(&s->late, k, 8, NULL, 0, 1) == NULL)
    return break_state(s, oom(s));
  return 0;
}

static int rd_frontier_ack(void *b, int64_t id) {
  rd_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  char k[8];
  id8(id, k);
  size_t at;
  if (ov_find(&s->late, k, 8, &at))
    ov_remove(&s->late, at);
  if (ov_find(&s->fr, k, 8, &at)) {
    if (!s->fr.e[at].old) { /* pushed in this batch, never in Redis */
      ov_remove(&s->fr, at);
      return 0;
    }
    ov_set(&s->fr, k, 8, NULL, 0, 1);
  } else {
    ov_entry *e = ov_set(&s->fr, k, 8, NULL, 0, 1);
    if (e == NULL)
      return break_state(s, oom(s));
    e->old = 1;
  }
  s->dirty = 1;
  return 0;
}

/* The request of id as the batch sees it: 1 with a malloc'd copy in *blob,
 * 0 if absent, or an error. */
static int frontier_lookup(rd_state *s, int64_t id, char **blob, size_t *len) {
  char k[8];
  id8(id, k);
  size_t at;
  if (ov_find(&s->fr, k, 8, &at)) {
    if (s->fr.e[at].del)
      return 0;
    *len = s->fr.e[at].vl;
    return (*blob = ft_bytes_dup(s->fr.e[at].v, *len)) != NULL ? 1 : oom(s);
  }
  if (s->cleared)
    return 0;
  id_range r;
  id_range_of(id, &r);
  const char *argv[] = {"ZRANGEBYLEX", s->k_frontier, r.lo, r.hi,
                        "LIMIT",       "0",           "1"};
  size_t lens[] = {11, strlen(s->k_frontier), 9, r.hilen, 5, 1, 1};
  redisReply *rep = run(s, 7, argv, lens);
  if (rep == NULL)
    return FT_EIO;
  int found = rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
              rep->element[0]->len >= 8;
  if (found) {
    *len = rep->element[0]->len - 8;
    if ((*blob = ft_bytes_dup(rep->element[0]->str + 8, *len)) == NULL)
      found = oom(s);
  }
  freeReplyObject(rep);
  return found;
}

typedef struct cand {
  int64_t id;
  char *blob;
  size_t len;
} cand;

static int cmp_cand(const void *a, const void *b) {
  int64_t x = ((const cand *)a)->id, y = ((const cand *)b)->id;
  return x < y ? -1 : x > y;
}

/* Hands out one request (the cursor moves past it first, so a take inside
 * fn does not hand it out again). Returns fn's answer. */
static int hand_out(rd_state *s, const cand *c, ft_state_request_fn fn,
                    void *ud) {
  if (!s->taken_any || c->id > s->cursor)
    s->cursor = c->id;
  s->taken_any = 1;
  return fn(ud, c->id, c->blob, c->len);
}

/* First, the requests pushed below the cursor during an earlier take
 * (s->late), which a scan from the cursor would miss. Counts them in *n,
 * fn's answer in *stop. Returns 0 or an error. */
static int take_late(rd_state *s, int limit, ft_state_request_fn fn, void *ud,
                     int *n_out, int *stop_out) {
  int n = *n_out, stop = *stop_out;
  while (!stop && (limit <= 0 || n < limit) && s->late.n > 0) {
    int64_t id = id_of(s->late.e[0].k);
    ov_remove(&s->late, 0);
    if (id > s->cursor)
      continue; /* pushed above the cursor during a take: the scan finds it */
    cand c = {.id = id};
    int found = frontier_lookup(s, id, &c.blob, &c.len);
    if (found < 0)
      return found; /* *n and *stop stay as they were told */
    if (found == 0)
      continue;
    n++;
    stop = fn(ud, id, c.blob, c.len);
    free(c.blob);
  }
  *n_out = n;
  *stop_out = stop;
  return 0;
}

/* One page of the frontier from id lo (INT64_MIN: the first) merged with
 * the batch's own requests in the same id range, sorted by id, as copies
 * (*cs, *cn: the caller frees each blob and the array; a NULL blob is a
 * copy that ran out of memory). *full: Redis gave a whole page (more may
 * follow); *hi: the last id the page covers (INT64_MAX when not full).
 * Returns 0 or an error. */
static int page_candidates(rd_state *s, int64_t lo, cand **cs_out,
                           size_t *cn_out, int *full_out, int64_t *hi_out) {
  int whole = lo == INT64_MIN; /* "-": from the first member */
  redisReply *rep = NULL;
  int full = 0;
  if (!s->cleared) {
    char lob[9];
    lob[0] = '[';
    id8(lo, lob + 1);
    char page[16];
    snprintf(page, sizeof page, "%d", TAKE_PAGE);
    const char *argv[] = {"ZRANGEBYLEX", s->k_frontier, whole ? "-" : lob,
                          "+",           "LIMIT",       "0",
                          page};
    size_t lens[] = {11, strlen(s->k_frontier), whole ? 1 : 9, 1, 5,
                     1,  strlen(page)};
    rep = run(s, 7, argv, lens);
    if (rep == NULL) {
      return FT_EIO;
    }
    full = rep->type == REDIS_REPLY_ARRAY && rep->elements == TAKE_PAGE;
  }
  size_t rn = rep != NULL && rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
  int64_t hi = full ? id_of(rep->element[rn - 1]->str) : INT64_MAX;
  cand *cs = malloc((rn + s->fr.n + 1) * sizeof *cs);
  size_t cn = 0;
  if (cs == NULL) {
    freeReplyObject(rep);
    return oom(s);
  }
  for (size_t i = 0; i < rn; i++) {
    redisReply *m = rep->element[i];
    size_t at;
    if (m->len < 8 || ov_find(&s->fr, m->str, 8, &at))
      continue; /* the batch's own entry overrides Redis's */
    cs[cn++] =
        (cand){id_of(m->str), ft_bytes_dup(m->str + 8, m->len - 8), m->len - 8};
  }
  for (size_t i = 0; i < s->fr.n; i++) {
    int64_t id = id_of(s->fr.e[i].k);
    if (s->fr.e[i].del || id < lo || id > hi)
      continue;
    cs[cn++] =
        (cand){id, ft_bytes_dup(s->fr.e[i].v, s->fr.e[i].vl), s->fr.e[i].vl};
  }
  freeReplyObject(rep);
  if (cn > 1)
    qsort(cs, cn, sizeof *cs, cmp_cand);
  *cs_out = cs;
  *cn_out = cn;
  *full_out = full;
  *hi_out = hi;
  return 0;
}

/* Requests pushed at or below the cursor come first (their ids are below
 * every id the scan finds); then the scan goes on from the cursor, one
 * ZRANGEBYLEX page at a time merged with the batch's own requests in the
 * same id range. Candidates are copies: fn may push and ack meanwhile. */
static int rd_frontier_take(void *b, int limit, ft_state_request_fn fn,
                            void *ud) {
  rd_state *s = b;
  int n = 0, stop = 0, rc = take_late(s, limit, fn, ud, &n, &stop);
  if (rc != 0)
    return rc;
  int64_t outer_hi = s->scan_hi;
  int64_t from = INT64_MIN; /* the last id a page of this take reached */
  int first = 1;
  while (!stop && (limit <= 0 || n < limit)) {
    /* from the cursor (a take inside fn may have moved it) or the page */
    int64_t lo = INT64_MIN;
    if (s->taken_any || !first) {
      int64_t base = first ? s->cursor : from;
      if (s->taken_any && s->cursor > base)
        base = s->cursor;
      if (base == INT64_MAX)
        break;
      lo = base + 1;
    }
    cand *cs = NULL;
    size_t cn = 0;
    int full = 0;
    int64_t hi = INT64_MAX;
    rc = page_candidates(s, lo, &cs, &cn, &full, &hi);
    if (rc != 0)
      break;
    s->scan_hi = hi;
    for (size_t i = 0; i < cn; i++) {
      if (rc != 0 || stop || (limit > 0 && n >= limit))
        break;
      if (cs[i].blob == NULL) {
        rc = oom(s);
        break;
      }
      char k[8];
      size_t at;
      id8(cs[i].id, k);
      if ((s->taken_any && cs[i].id <= s->cursor) ||
          (ov_find(&s->fr, k, 8, &at) && s->fr.e[at].del))
        continue; /* a take inside fn handed it out, or fn acked it */
      n++;
      stop = hand_out(s, &cs[i], fn, ud);
    }
    for (size_t i = 0; i < cn; i++)
      free(cs[i].blob);
    free(cs);
    s->scan_hi = outer_hi;
    if (!full || rc != 0)
      break;
    from = hi;
    first = 0;
  }
  s->scan_hi = outer_hi;
  return rc != 0 ? rc : n;
}

/* ZCARD, less the batch's entries Redis has, plus the batch's requests:
 * one round trip (ZCARD and a ZLEXCOUNT per id acked in the batch,
 * pipelined). */
static int64_t rd_frontier_count(void *b) {
  rd_state *s = b;
  int64_t count = 0;
  for (size_t i = 0; i < s->fr.n; i++)
    count += !s->fr.e[i].del;
  if (s->cleared)
    return count;
  int n = 0;
  const char *zc[] = {"ZCARD", s->k_frontier};
  int rc = append(s, &n, 2, zc, NULL);
  for (size_t i = 0; i < s->fr.n && rc == 0; i++) {
    if (!s->fr.e[i].old)
      continue;
    id_range r;
    id_range_of(id_of(s->fr.e[i].k), &r);
    const char *argv[] = {"ZLEXCOUNT", s->k_frontier, r.lo, r.hi};
    size_t lens[] = {9, strlen(s->k_frontier), 9, r.hilen};
    rc = append(s, &n, 4, argv, lens);
  }
  if (rc != 0)
    return break_state(s, rc);
  for (int i = 0; i < n; i++) {
    redisReply *r = NULL;
    if (redisGetReply(s->c, (void **)&r) != REDIS_OK || r == NULL) {
      set_err(s, FT_EIO, "redis: %s",
              s->c->errstr[0] ? s->c->errstr : "connection lost");
      return break_state(s, FT_EIO);
    }
    if (r->type == REDIS_REPLY_INTEGER)
      count += i == 0 ? r->integer : -r->integer;
    else if (rc == 0)
      rc = set_err(s, FT_EIO, "redis: frontier count: %.*s", (int)r->len,
                   r->str != NULL ? r->str : "");
    freeReplyObject(r);
  }
  return rc != 0 ? rc : count;
}

/* ---- the seen set -------------------------------------------------------- */

static int rd_seen_add(void *b, const unsigned char key[16],
                       ft_state_seen_fn fn, void *ud) {
  rd_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  size_t at;
  int is_new = !ov_find(&s->seen, (const char *)key, 16, &at);
  if (is_new && !s->cleared) {
    const char *argv[] = {"SISMEMBER", s->k_seen, (const char *)key};
    size_t lens[] = {9, strlen(s->k_seen), 16};
    redisReply *r = run(s, 3, argv, lens);
    if (r == NULL)
      return break_state(s, FT_EIO);
    is_new = !(r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
  }
  if (is_new) {
    if (ov_set(&s->seen, (const char *)key, 16, NULL, 0, 1) == NULL)
      return break_state(s, oom(s));
    s->dirty = 1;
  }
  fn(ud, key, is_new, 0);
  return 0;
}

/* ---- key-value storage --------------------------------------------------- */

/* The overlay key OBJ \0 KEY, malloc'd; its length in *n. */
static char *ov_kv_key(const char *obj, const char *key, size_t klen,
                       size_t *n) {
  size_t ol = strlen(obj);
  *n = ol + 1 + klen;
  char *k = malloc(*n);
  if (k != NULL) {
    memcpy(k, obj, ol + 1);
    if (klen > 0)
      memcpy(k + ol + 1, key, klen);
  }
  return k;
}

static int rd_kv_get(void *b, const char *obj, const char *key, size_t klen,
                     char **val, size_t *len) {
  rd_state *s = b;
  size_t n, at;
  char *k = ov_kv_key(obj, key, klen, &n);
  if (k == NULL)
    return oom(s);
  int in_batch = ov_find(&s->kv, k, n, &at);
  free(k);
  if (in_batch) {
    ov_entry *e = &s->kv.e[at];
    if (e->del)
      return set_err(s, FT_ENOTFOUND, "no such key");
    if ((*val = ft_bytes_dup(e->v, e->vl)) == NULL)
      return oom(s);
    if (len != NULL)
      *len = e->vl;
    return 0;
  }
  size_t hl;
  char *hk = kv_redis_key(s, obj, 0, &hl);
  if (hk == NULL)
    return oom(s);
  const char *argv[] = {"HGET", hk, key};
  size_t lens[] = {4, hl, klen};
  redisReply *r = run(s, 3, argv, lens);
  free(hk);
  if (r == NULL)
    return FT_EIO;
  int rc = 0;
  if (r->type != REDIS_REPLY_STRING)
    rc = set_err(s, FT_ENOTFOUND, "no such key");
  else if ((*val = ft_bytes_dup(r->str, r->len)) == NULL)
    rc = oom(s);
  else if (len != NULL)
    *len = r->len;
  freeReplyObject(r);
  return rc;
}

static int kv_write(rd_state *s, const char *obj, const char *key, size_t klen,
                    const void *val, size_t len, int del) {
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  size_t n;
  char *k = ov_kv_key(obj, key, klen, &n);
  ov_entry *e = k != NULL ? ov_set(&s->kv, k, n, val, len, del) : NULL;
  free(k);
  if (e == NULL)
    return break_state(s, oom(s));
  s->dirty = 1;
  return 0;
}

static int rd_kv_put(void *b, const char *obj, const char *key, size_t klen,
                     const void *val, size_t len) {
  return kv_write(b, obj, key, klen, val, len, 0);
}

static int rd_kv_delete(void *b, const char *obj, const char *key,
                        size_t klen) {
  return kv_write(b, obj, key, klen, NULL, 0, 1);
}

typedef struct kv_item {
  char *k, *v;
  size_t kl, vl;
} kv_item;

static int cmp_item(const void *a, const void *b) {
  const kv_item *x = a, *y = b;
  return cmp_bytes(x->k, x->kl, y->k, y->kl);
}

/* The ZRANGEBYLEX bounds of the keys that start with prefix: "[" prefix
 * and "(" its successor (the prefix without its trailing 0xFF bytes, the
 * last byte then one up), "-" and "+" for the whole set. Malloc'd. */
static int prefix_range(const char *prefix, size_t plen, char **lo, size_t *lol,
                        char **hi, size_t *hil) {
  *lo = malloc(plen + 1);
  *hi = malloc(plen + 1);
  if (*lo == NULL || *hi == NULL)
    return FT_ENOMEM;
  if (plen == 0) {
    (*lo)[0] = '-';
    *lol = 1;
  } else {
    (*lo)[0] = '[';
    memcpy(*lo + 1, prefix, plen);
    *lol = plen + 1;
  }
  size_t sl = plen;
  while (sl > 0 && (unsigned char)prefix[sl - 1] == 0xFF)
    sl--;
  if (sl == 0) {
    (*hi)[0] = '+';
    *hil = 1;
  } else {
    (*hi)[0] = '(';
    memcpy(*hi + 1, prefix, sl);
    (*hi)[sl] = (char)((unsigned char)prefix[sl - 1] + 1);
    *hil = sl + 1;
  }
  return 0;
}

/* HMGET hk with the members of keys (a ZRANGEBYLEX reply): *vals gets the
 * reply, one element per key. Returns 0 or FT_EIO / FT_ENOMEM. */
static int hmget(rd_state *s, const char *hk, size_t hl, const redisReply *keys,
                 redisReply **vals) {
  size_t kn = keys->elements;
  const char **argv = malloc((kn + 2) * sizeof *argv);
  size_t *lens = malloc((kn + 2) * sizeof *lens);
  if (argv == NULL || lens == NULL) {
    free(argv);
    free(lens);
    return oom(s);
  }
  argv[0] = "HMGET";
  lens[0] = 5;
  argv[1] = hk;
  lens[1] = hl;
  for (size_t i = 0; i < kn; i++) {
    argv[i + 2] = keys->element[i]->str;
    lens[i + 2] = keys->element[i]->len;
  }
  *vals = run(s, (int)(kn + 2), argv, lens);
  free(argv);
  free(lens);
  if (*vals == NULL)
    return FT_EIO;
  if ((*vals)->type != REDIS_REPLY_ARRAY || (*vals)->elements != kn)
    return set_err(s, FT_EIO, "redis HMGET: bad reply");
  return 0;
}

/* Appends copies of key k and value v to items (room for it is there).
 * Returns 0 or FT_ENOMEM (the entry is there, for the caller to free). */
static int add_item(rd_state *s, kv_item *items, size_t *ni, const char *k,
                    size_t kl, const char *v, size_t vl) {
  kv_item *it = &items[(*ni)++];
  *it = (kv_item){ft_bytes_dup(k, kl), ft_bytes_dup(v, vl), kl, vl};
  return it->k == NULL || it->v == NULL ? oom(s) : 0;
}

/* Redis's keys in the range (ZRANGEBYLEX on kvx:OBJ, then HMGET on
 * kv:OBJ: two round trips), less the batch's, plus the batch's, sorted;
 * then fn gets copies of the first `limit`. */
static int rd_kv_list(void *b, const char *obj, const char *prefix, size_t plen,
                      int limit, ft_state_kv_fn fn, void *ud) {
  rd_state *s = b;
  kv_item *items = NULL;
  size_t ni = 0, cap = 0;
  char *lo = NULL, *hi = NULL, *ok = NULL, *hk = NULL, *xk = NULL;
  size_t lol, hil, okl, hl, xl;
  redisReply *keys = NULL, *vals = NULL;
  int rc = prefix_range(prefix, plen, &lo, &lol, &hi, &hil);
  ok = ov_kv_key(obj, prefix, plen, &okl);
  hk = kv_redis_key(s, obj, 0, &hl);
  xk = kv_redis_key(s, obj, 1, &xl);
  if (rc != 0 || ok == NULL || hk == NULL || xk == NULL) {
    rc = oom(s);
    goto done;
  }
  /* the batch's entries in the range: [first, end) */
  size_t first, end;
  ov_find(&s->kv, ok, okl, &first);
  for (end = first; end < s->kv.n && s->kv.e[end].kl >= okl &&
                    memcmp(s->kv.e[end].k, ok, okl) == 0;
       end++)
    ;
  size_t on = strlen(obj) + 1; /* OBJ \0 before the key */
  char lim[32];
  snprintf(lim, sizeof lim, "%lld",
           limit > 0 ? (long long)limit + (long long)(end - first) : -1LL);
  const char *za[] = {"ZRANGEBYLEX", xk, lo, hi, "LIMIT", "0", lim};
  size_t zl[] = {11, xl, lol, hil, 5, 1, strlen(lim)};
  if ((keys = run(s, 7, za, zl)) == NULL) {
    rc = FT_EIO;
    goto done;
  }
  size_t kn = keys->type == REDIS_REPLY_ARRAY ? keys->elements : 0;
  if (kn > 0 && (rc = hmget(s, hk, hl, keys, &vals)) != 0)
    goto done;
  cap = kn + (end - first);
  if (cap > 0 && (items = calloc(cap, sizeof *items)) == NULL) {
    rc = oom(s);
    goto done;
  }
  for (size_t i = 0; i < kn; i++) {
    redisReply *k = keys->element[i], *v = vals->element[i];
    size_t at;
    char *full = ov_kv_key(obj, k->str, k->len, &okl);
    if (full == NULL) {
      rc = oom(s);
      goto done;
    }
    int shadowed = ov_find(&s->kv, full, okl, &at);
    free(full);
    if (shadowed || v->type != REDIS_REPLY_STRING)
      continue; /* the batch's entry wins; a key without value is gone */
    if ((rc = add_item(s, items, &ni, k->str, k->len, v->str, v->len)) != 0)
      goto done;
  }
  for (size_t i = first; i < end; i++) {
    ov_entry *e = &s->kv.e[i];
    if (e->del)
      continue;
    if ((rc = add_item(s, items, &ni, e->k + on, e->kl - on, e->v, e->vl)) != 0)
      goto done;
  }
  if (ni > 1)
    qsort(items, ni, sizeof *items, cmp_item);
  if (limit > 0 && (size_t)limit < ni)
    ni = (size_t)limit;
  for (size_t i = 0; i < ni; i++)
    if (fn(ud, items[i].k, items[i].kl, items[i].v, items[i].vl) != 0)
      break;
done:
  for (size_t i = 0; i < cap && items != NULL; i++) {
    free(items[i].k);
    free(items[i].v);
  }
  free(items);
  freeReplyObject(keys);
  freeReplyObject(vals);
  free(lo);
  free(hi);
  free(ok);
  free(hk);
  free(xk);
  return rc;
}

/* ---- metadata ------------------------------------------------------------ */

static int rd_meta_get(void *b, const char *key, char **val) {
  rd_state *s = b;
  size_t at;
  if (ov_find(&s->meta, key, strlen(key), &at)) {
    if ((*val = ft_bytes_dup(s->meta.e[at].v, s->meta.e[at].vl)) == NULL)
      return oom(s);
    return 0;
  }
  if (s->cleared)
    return set_err(s, FT_ENOTFOUND, "no metadata %s", key);
  const char *argv[] = {"HGET", s->k_meta, key};
  redisReply *r = run(s, 3, argv, NULL);
  if (r == NULL)
    return FT_EIO;
  int rc = 0;
  if (r->type != REDIS_REPLY_STRING)
    rc = set_err(s, FT_ENOTFOUND, "no metadata %s", key);
  else if ((*val = ft_bytes_dup(r->str, r->len)) == NULL)
    rc = oom(s);
  freeReplyObject(r);
  return rc;
}

static int rd_meta_set(void *b, const char *key, const char *val) {
  rd_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  if (ov_set(&s->meta, key, strlen(key), val, strlen(val), 0) == NULL)
    return break_state(s, oom(s));
  s->dirty = 1;
  return 0;
}

/* ---- limits: optimistic transactions ------------------------------------- */

#define LIMIT_TRIES                                                            \
  1000 /* transactions a grant starts over before giving up                    \
        */

/* Reads n replies of a pipeline; the last one goes to *last (NULL: freed),
 * the others are freed. Returns 0, or FT_EIO (the state breaks: the
 * connection is gone) with errmsg set. */
static int read_replies(rd_state *s, int n, redisReply **last) {
  if (last != NULL)
    *last = NULL;
  for (int i = 0; i < n; i++) {
    redisReply *r = NULL;
    if (redisGetReply(s->c, (void **)&r) != REDIS_OK || r == NULL) {
      if (last != NULL && *last != NULL) {
        freeReplyObject(*last);
        *last = NULL;
      }
      set_err(s, FT_EIO, "redis: %s",
              s->c->errstr[0] ? s->c->errstr : "connection lost");
      return break_state(s, FT_EIO);
    }
    if (i == n - 1 && last != NULL)
      *last = r;
    else
      freeReplyObject(r);
  }
  return 0;
}

/* WATCH key, then cmd (GET or HGETALL) on it: one round trip. Returns 0
 * with cmd's reply in *reply, or an error (the watch is dropped). */
static int watch_read(rd_state *s, const char *cmd, const char *key,
                      size_t klen, redisReply **reply) {
  const char *w[] = {"WATCH", key}, *g[] = {cmd, key};
  size_t wl[] = {5, klen}, gl[] = {strlen(cmd), klen};
  int n = 0;
  int rc = append(s, &n, 2, w, wl);
  if (rc == 0)
    rc = append(s, &n, 2, g, gl);
  if (rc != 0)
    return break_state(s, rc);
  if ((rc = read_replies(s, n, reply)) != 0)
    return rc;
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    set_err(s, FT_EIO, "redis %s: %.*s", cmd, (int)(*reply)->len,
            (*reply)->str);
    freeReplyObject(*reply);
    *reply = NULL;
    const char *u[] = {"UNWATCH"};
    redisReply *r = run(s, 1, u, NULL);
    freeReplyObject(r);
    return FT_EIO;
  }
  return 0;
}

static void unwatch(rd_state *s) {
  const char *u[] = {"UNWATCH"};
  redisReply *r = run(s, 1, u, NULL);
  if (r != NULL)
    freeReplyObject(r);
}

/* Sends the commands appended since MULTI (n of them, MULTI included) and
 * EXEC, and reads the replies: 1 applied, 0 a watched key changed (start
 * over), or an error. */
static int exec_watched(rd_state *s, int n) {
  const char *e[] = {"EXEC"};
  int rc = append(s, &n, 1, e, NULL);
  redisReply *r = NULL;
  if (rc != 0)
    return break_state(s, rc);
  if ((rc = read_replies(s, n, &r)) != 0)
    return rc;
  int applied = r->type == REDIS_REPLY_ARRAY;
  if (r->type == REDIS_REPLY_ERROR)
    rc = set_err(s, FT_EIO, "redis EXEC: %.*s", (int)r->len, r->str);
  for (size_t i = 0; applied && i < r->elements; i++)
    if (r->element[i]->type == REDIS_REPLY_ERROR)
      rc = set_err(s, FT_EIO, "redis: %.*s", (int)r->element[i]->len,
                   r->element[i]->str);
  freeReplyObject(r);
  return rc != 0 ? rc : applied;
}

/* ---- rate limits --------------------------------------------------------- */

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++, v >>= 8)
    p[i] = (unsigned char)(v & 0xFF);
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* lim:OBJ's value: [rps bits, window, last start] then the limiter's saved
 * words, each 8 bytes little-endian. */
typedef struct lim_state {
  double rps;
  uint64_t window, last;
  ft_limiter *lim;
} lim_state;

/* Decodes a stored value (0, or FT_EINVAL / FT_ENOMEM). */
static int lim_decode(const char *p, size_t len, lim_state *ls) {
  if (len < 3 * 8 || len % 8 != 0)
    return FT_EINVAL;
  size_t n = len / 8 - 3;
  uint64_t bits = get64((const unsigned char *)p);
  memcpy(&ls->rps, &bits, sizeof ls->rps);
  ls->window = get64((const unsigned char *)p + 8);
  ls->last = get64((const unsigned char *)p + 16);
  uint64_t *w = malloc((n > 0 ? n : 1) * sizeof *w);
  if (w == NULL)
    return FT_ENOMEM;
  for (size_t i = 0; i < n; i++)
    w[i] = get64((const unsigned char *)p + 24 + 8 * i);
  int rc = ft_limiter_load(&ls->lim, w, n);
  free(w);
  return rc;
}

static char *lim_encode(const lim_state *ls, size_t *len) {
  size_t n = ft_limiter_saved_words(ls->lim);
  uint64_t *w = malloc((n > 0 ? n : 1) * sizeof *w);
  unsigned char *p = malloc(24 + 8 * n);
  if (w == NULL || p == NULL) {
    free(w);
    free(p);
    return NULL;
  }
  ft_limiter_save(ls->lim, w);
  uint64_t bits;
  memcpy(&bits, &ls->rps, sizeof bits);
  put64(p, bits);
  put64(p + 8, ls->window);
  put64(p + 16, ls->last);
  for (size_t i = 0; i < n; i++)
    put64(p + 24 + 8 * i, w[i]);
  free(w);
  *len = 24 + 8 * n;
  return (char *)p;
}

/* One try of a grant: the limiter from Redis (or a new one), the starts
 * as mem_limiter_grant hands them out, written back if nobody wrote in
 * between. Returns the number granted, FT_EBUSY for "start over", or an
 * error. */
static int grant_once(rd_state *s, const char *key, size_t klen, double rps,
                      uint64_t window_ns, uint64_t now_ns, uint64_t horizon_ns,
                      int want, uint64_t *starts) {
  redisReply *r = NULL;
  int rc = watch_read(s, "GET", key, klen, &r);
  if (rc != 0)
    return rc;
  lim_state ls = {0};
  if (r->type == REDIS_REPLY_STRING) {
    rc = lim_decode(r->str, r->len, &ls);
    if (rc == FT_EINVAL)
      set_err(s, FT_EINVAL, "limiter: %s holds no limiter's state", key);
    else if (rc != 0)
      oom(s);
  } else if ((rc = ft_limiter_new(&ls.lim, rps, window_ns)) != 0) {
    set_err(s, rc, "limiter: %s", ft_strerror(rc));
  } else {
    ls.rps = rps;
    ls.window = window_ns;
  }
  freeReplyObject(r);
  if (rc == 0 && (ls.rps != rps || ls.window != window_ns) &&
      (rc = ft_limiter_set(ls.lim, rps, window_ns)) != 0) /* keeps history */
    set_err(s, rc, "limiter: %s", ft_strerror(rc));
  if (rc != 0) {
    ft_limiter_free(ls.lim);
    unwatch(s);
    return rc;
  }
  ls.rps = rps;
  ls.window = window_ns;
  int n =
      ft_limiter_grant(ls.lim, rps, &ls.last, now_ns, horizon_ns, want, starts);
  size_t vl;
  char *v = lim_encode(&ls, &vl);
  ft_limiter_free(ls.lim);
  if (v == NULL) {
    unwatch(s);
    return oom(s);
  }
  int cmds = 0;
  const char *m[] = {"MULTI"}, *set[] = {"SET", key, v};
  size_t setl[] = {3, klen, vl};
  rc = append(s, &cmds, 1, m, NULL);
  if (rc == 0)
    rc = append(s, &cmds, 3, set, setl);
  free(v);
  if (rc != 0)
    return break_state(s, rc);
  rc = exec_watched(s, cmds);
  return rc < 0 ? rc : rc == 1 ? n : FT_EBUSY;
}

static int rd_limiter_grant(void *b, const char *obj, double rps,
                            uint64_t window_ns, uint64_t now_ns,
                            uint64_t horizon_ns, int want, uint64_t *starts) {
  rd_state *s = b;
  int rc = ft_limiter_check(rps, window_ns);
  if (rc != 0)
    return set_err(s, rc, "limiter: rps %g per %llu ns: %s", rps,
                   (unsigned long long)window_ns, ft_strerror(rc));
  size_t klen;
  char *key = obj_key(s, "lim:", obj, &klen);
  if (key == NULL)
    return oom(s);
  for (int i = 0; i < LIMIT_TRIES; i++)
    if ((rc = grant_once(s, key, klen, rps, window_ns, now_ns, horizon_ns, want,
                         starts)) != FT_EBUSY)
      break;
  if (rc == FT_EBUSY)
    set_err(s, rc, "limiter: %s changed under %d grants in a row", key,
            LIMIT_TRIES);
  free(key);
  return rc;
}

/* ---- concurrency caps ---------------------------------------------------- */

/* The holders of slots:OBJ from HGETALL's reply: parses "N EXPIRES". */
static int holder_parse(const redisReply *v, long long *n, uint64_t *exp) {
  char buf[64];
  if (v->type != REDIS_REPLY_STRING || v->len >= sizeof buf)
    return 0;
  memcpy(buf, v->str, v->len);
  buf[v->len] = '\0';
  unsigned long long e;
  if (sscanf(buf, "%lld %llu", n, &e) != 2)
    return 0;
  *exp = e;
  return 1;
}

/* One try of an acquire (release: want < 0 gives back -want): the live
 * holders from Redis, the answer as mem_slots_acquire / mem_slots_release
 * give it, written back if nobody wrote in between. Returns the number
 * granted (given back), FT_EBUSY for "start over", or an error. */
static int slots_once(rd_state *s, const char *key, size_t klen,
                      const char *name, int cap, int want, uint64_t lease_ns,
                      uint64_t now_ns, int *held) {
  redisReply *r = NULL;
  int rc = watch_read(s, "HGETALL", key, klen, &r);
  if (rc != 0)
    return rc;
  long long others = 0, mine = 0;
  uint64_t my_exp = 0;
  int cmds = 0;
  const char *m[] = {"MULTI"};
  rc = append(s, &cmds, 1, m, NULL);
  for (size_t i = 0;
       rc == 0 && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
    const redisReply *f = r->element[i];
    long long n;
    uint64_t exp;
    int ok = holder_parse(r->element[i + 1], &n, &exp);
    if (!ok || exp <= now_ns) { /* lease ended: no one's (or not ours) */
      const char *d[] = {"HDEL", key, f->str};
      size_t dl[] = {4, klen, f->len};
      rc = append(s, &cmds, 3, d, dl);
    } else if (f->len == strlen(name) && memcmp(f->str, name, f->len) == 0) {
      mine = n;
      my_exp = exp;
    } else {
      others += n;
    }
  }
  freeReplyObject(r);
  if (rc != 0)
    return break_state(s, rc);
  int g;
  char val[64];
  const char *hs[] = {"HSET", key, name, val}, *hd[] = {"HDEL", key, name};
  size_t hl[] = {4, klen, strlen(name), 0}, hdl[] = {4, klen, strlen(name)};
  if (want >= 0) { /* acquire */
    long long free_slots = cap - others - mine;
    g = free_slots <= 0 ? 0 : want < free_slots ? want : (int)free_slots;
    if (mine == 0 && g == 0) {
      rc = 0; /* nothing held, nothing granted: no lease to keep */
    } else {
      mine += g;
      uint64_t exp =
          now_ns + lease_ns < now_ns ? UINT64_MAX : now_ns + lease_ns;
      hl[3] = (size_t)snprintf(val, sizeof val, "%lld %llu", mine,
                               (unsigned long long)exp);
      rc = append(s, &cmds, 4, hs, hl);
    }
  } else { /* release */
    g = -want < mine ? -want : (int)mine;
    mine -= g;
    if (g > 0 && mine == 0) { /* holds nothing: its lease means nothing */
      rc = append(s, &cmds, 3, hd, hdl);
    } else if (g > 0) {
      hl[3] = (size_t)snprintf(val, sizeof val, "%lld %llu", mine,
                               (unsigned long long)my_exp);
      rc = append(s, &cmds, 4, hs, hl);
    }
  }
  if (rc != 0)
    return break_state(s, rc);
  rc = exec_watched(s, cmds);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return FT_EBUSY;
  *held = (int)mine;
  return g;
}

static int slots_run(rd_state *s, const char *obj, const char *holder, int cap,
                     int want, uint64_t lease_ns, uint64_t now_ns, int *held) {
  size_t klen;
  char *key = obj_key(s, "slots:", obj, &klen);
  if (key == NULL)
    return oom(s);
  const char *name = holder[0] != '\0' ? holder : s->self;
  int rc = FT_EBUSY;
  for (int i = 0; i < LIMIT_TRIES && rc == FT_EBUSY; i++)
    rc = slots_once(s, key, klen, name, cap, want, lease_ns, now_ns, held);
  if (rc == FT_EBUSY)
    set_err(s, rc, "slots: %s changed under %d tries in a row", key,
            LIMIT_TRIES);
  free(key);
  return rc;
}

static int rd_slots_acquire(void *b, const char *obj, const char *holder,
                            int cap, int want, uint64_t lease_ns,
                            uint64_t now_ns, int *held) {
  return slots_run(b, obj, holder, cap, want, lease_ns, now_ns, held);
}

static int rd_slots_release(void *b, const char *obj, const char *holder, int n,
                            uint64_t now_ns) {
  int held;
  return n == 0 ? 0 : slots_run(b, obj, holder, 0, -n, 1, now_ns, &held);
}

/* ---- the backend --------------------------------------------------------- */

const ft_state_backend ft_state_redis_backend = {
    .name = "redis",
    .flags = FT_STATE_DURABLE,
    .open = rd_open,
    .close = rd_close,
    .errmsg = rd_errmsg,
    .commit = rd_commit,
    .abandon = rd_abandon,
    .broken = rd_broken,
    .reset = rd_reset,
    .frontier_push = rd_frontier_push,
    .frontier_take = rd_frontier_take,
    .frontier_ack = rd_frontier_ack,
    .frontier_count = rd_frontier_count,
    .seen_add = rd_seen_add,
    .kv_get = rd_kv_get,
    .kv_put = rd_kv_put,
    .kv_delete = rd_kv_delete,
    .kv_list = rd_kv_list,
    .meta_get = rd_meta_get,
    .meta_set = rd_meta_set,
    .limiter_grant = rd_limiter_grant,
    .slots_acquire = rd_slots_acquire,
    .slots_release = rd_slots_release,
    .sql = NULL,
};
