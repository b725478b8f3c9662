/* crawl.c - one run of fetchtree, from its spec to its last record: the one crawl driver.
 *
 * Design note: the run
 * --------------------
 * Who owns what. An ft_crawl owns, for the length of a run:
 *
 *   ft_crawl ─┬─ engine (engine.c) ── object tree (tree.c): limits, stats
 *             ├─ script engine (script.c: the lua_State; lua_crawl.c:
 *             │    the calls into fetchtree.crawl); its own for
 *             │    `fetchtree run`, the caller's for ft.run
 *             ├─ state (state.h: memory, or SQLite with --state), reached
 *             │    only through ft_script_journal_* and ft_script_checkpoint
 *             ├─ output of records: the FILE, its resume truncation,
 *             │    flushes, the commit timer and checkpoints
 *             ├─ alarms (obj:after) and the hold count (handlers waiting)
 *             └─ stop: Ctrl-C, a failed write, ft_crawl_stop; stats
 *
 * cli.c parses options and draws the terminal (progress line, summary,
 * --stats); api.lua's ft.run turns its options into the same settings and
 * calls this through core.run (lua_run.c). Neither holds a run's logic.
 *
 * A request's way, from `start` to its record:
 *
 *   engine asks ──> script_source ──> ft_script_crawl_next ──> crawl.lua
 *     M.next: start's coroutine emits -> enqueue (depth, hosts, seen set:
 *     core.seen, route) -> the frontier (memory, or the state's through
 *     core.journal_add / journal_take) -> (id, url, ..., object name)
 *   ──> ft_request, routed to its ft_object ──> the engine: limits of the
 *     object and its ancestors, retries, curl
 *   ──> script_done: without handlers, the default record is written here
 *     and the request leaves the frontier (ft_script_journal_done); else
 *     ft_script_crawl_done -> crawl.lua M.respond / M.failure -> the
 *     object's handler coroutine -> records (core.write_record) and
 *     follow-ups (obj:fetch -> enqueue), then core.journal_done
 *   ──> every 200 ms (and at the end) a checkpoint: records flushed and
 *     synced, then the state commits the frontier, seen set, storage and
 *     the output offset together (one place: checkpoint()).
 *
 * `fetchtree fetch` is a crawl too (FT_CRAWL_LIST): its source is the
 * input's lines (input.c) and its records are written by list_done (with
 * --ordered, through the reorder window of reorder.c); it has no script,
 * alarms or state.
 *
 * Where a second state backend plugs in: the state is reached from here
 * only through ft_script_journal_open/_done/_abandon/_error and
 * ft_script_checkpoint (lua_crawl.c), and from Lua through fetchtree.core's
 * seen, journal_* and store_* (lua_state.c), all of them over the ft_state
 * interface of core/state.h. A backend is one file implementing
 * ft_state_backend (state_memory.c and state_sqlite.c are the two today)
 * and one row in state.c's table; it must pass tests/c/test_state.c, the
 * conformance suite; this file does not change. */
#include "crawl.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fetch.h"
#include "hash.h"
#include "input.h"
#include "lua_engine.h"
#include "record.h"
#include "reorder.h"
#include "request.h"
#include "tree.h"
#include "url.h"

/* ---- the crawl ------------------------------------------------------------ */

/* An obj:after alarm waiting in the loop. */
typedef struct crawl_alarm {
  uv_timer_t timer;
  uint64_t id; /* 0: not an alarm, a nudge to look at the queues again */
  ft_crawl *c;
  struct crawl_alarm *prev, *next;
} crawl_alarm;

struct ft_crawl {
  ft_crawl_spec spec;
  ft_crawl_settings set;
  ft_crawl_info info; /* a script's: who writes records, has a state */
  ft_script *script;  /* the script engine (a list's: made at the first
                         JSON line) */
  int owns_script;
  ft_engine *engine;
  uv_loop_t own_loop;
  uv_loop_t *loop;
  int loop_ok; /* own_loop is initialised */
  int ran;     /* ft_crawl_run was called */
  int engine_ran; /* start_run succeeded: the engine ran */
  char *start_error;
  char error[512]; /* the first failure that ended or refused the run */

  /* a list's source */
  ft_input in;
  uint64_t next_index;
  ft_reorder window; /* --ordered: records wait for earlier ones */

  /* the output of records */
  FILE *out;
  char *out_buf;    /* out's stdio buffer (an output we opened) */
  int out_opened;   /* we opened out: we close it */
  ft_buf rec;       /* a record being written, reused */
  int write_failed; /* errno of the first failed write of records, or 0 */
  uint64_t records; /* records written here (the script's: it counts) */

  /* the state of a crash-safe run */
  int journal;
  int64_t resume_offset; /* output committed by the previous run */
  char resume_tail[40];  /* its output_tail then ("" if not noted) */
  int state_failed;      /* a checkpoint failed: none commits any more */
  int finished_before;   /* the state says the crawl finished */
  uv_timer_t commit_timer;
  int commit_timer_on;

  crawl_alarm *alarms; /* pending obj:after alarms */

  /* ending */
  ft_stats stats;
  uint64_t started_ns;
  uint64_t ended_ns;
  uv_async_t stop; /* ends the run from outside the engine's callbacks */
  int stop_on;     /* stop is initialised */
  volatile sig_atomic_t got_sigint; /* set by ft_crawl_stop(c, 1) */
  volatile sig_atomic_t stop_asked; /* set by ft_crawl_stop */
  int interrupted;
  int stopping;      /* a failure is ending the run: sources give no more */
  int failed;        /* out of memory, a broken input */
  int start_failed;  /* start raised */
  int script_failed; /* fetchtree's own Lua failed, or the state */
  uv_timer_t progress_timer;
  int progress_on;
  uv_check_t interrupt_check; /* asks settings.interrupted each turn */
  int interrupt_check_on;
  struct sigaction old_sigint;
  int sigint_on;
};

/* Says msg on stderr, unless the run is being interrupted (the host's
 * Ctrl-C makes Lua code raise: not a failure worth a line). */
static void say(ft_crawl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(ft_crawl *c, const char *fmt, ...) {
  if (c->got_sigint ||
      (c->set.interrupted && c->set.interrupted(c->set.interrupted_ud)))
    return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

/* A failure that ends the run or keeps it from starting: "prefix: msg" on
 * stderr, and msg kept as the run's error (the first one only). */
static void fatal(ft_crawl *c, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fatal(ft_crawl *c, const char *prefix, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (!c->error[0])
    snprintf(c->error, sizeof(c->error), "%s", msg);
  fprintf(stderr, "%s: %s\n", prefix, msg);
}

/* Ends the run soon, and never from inside one of the engine's callbacks:
 * ft_engine_stop hands every request back, the one a done callback is
 * still holding too, and a caller up the stack may still be using what a
 * stop frees. So the stop goes through c->stop, an async handle the loop
 * serves once the current callback has returned; meanwhile the sources
 * give no more requests. Safe to call more than once. */
static void stop_soon(ft_crawl *c) {
  c->stopping = 1;
  if (c->stop_on)
    uv_async_send(&c->stop);
}

/* A failure that ends the run (out of memory): says so once. */
static void fail_run(ft_crawl *c, const char *msg) {
  if (!c->failed)
    fatal(c, "fetchtree", "%s", msg);
  c->failed = 1;
  stop_soon(c);
}

/* The first failed write of records ends the run: no more input is taken,
 * what is in flight comes back cancelled, and the run reports err. */
static void write_failed(ft_crawl *c, int err) {
  if (c->write_failed)
    return;
  c->write_failed = err ? err : EIO;
  stop_soon(c);
}

/* A failed write among the records Lua wrote (core.write_record and
 * write_default) ends the run as one of emit_bytes' own does. */
static void check_script_output(ft_crawl *c) {
  if (!c->script)
    return;
  int err = ft_script_output_state(c->script, NULL);
  if (err)
    write_failed(c, err);
}

/* The records written so far: here and from Lua. */
static uint64_t records_written(const ft_crawl *c) {
  uint64_t n = 0;
  if (c->script && c->spec.kind != FT_CRAWL_LIST)
    ft_script_output_state(c->script, &n);
  return c->records + n;
}

static void emit_bytes(ft_crawl *c, const char *p, size_t n) {
  if (c->write_failed || !c->out)
    return;
  errno = 0;
  if (fwrite(p, 1, n, c->out) != n)
    write_failed(c, errno);
  else
    c->records++;
}

static int add_extra_headers(ft_crawl *c, ft_request *r) {
  for (struct curl_slist *h = c->set.extra_headers; h; h = h->next) {
    int rc = ft_request_add_header(r, h->data);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- a list's source and records (`fetchtree fetch`) --------------------- */

/* A finished record for index i: out now, or into the reorder window,
 * from which every record whose turn has come goes out. */
static void emit_record(ft_crawl *c, uint64_t i, ft_buf *rec) {
  if (!c->set.ordered) {
    emit_bytes(c, rec->data, rec->len);
    return;
  }
  if (ft_reorder_put(&c->window, i, rec->data, rec->len) != 0) {
    fail_run(c, "out of memory");
    return;
  }
  int moved = 0;
  const char *data;
  size_t len;
  while ((data = ft_reorder_peek(&c->window, &len)) != NULL) {
    emit_bytes(c, data, len);
    ft_reorder_pop(&c->window);
    moved = 1;
  }
  if (moved)
    ft_engine_recheck(c->engine);
}

static void list_record(ft_crawl *c, const ft_request *req,
                        const ft_response *res) {
  ft_stats_add(&c->stats, res);
  c->rec.len = 0;
  ft_record_write(&c->rec, req, res, c->set.record_flags);
  if (c->rec.oom) {
    fail_run(c, "out of memory writing a record");
    return;
  }
  emit_record(c, req->index, &c->rec);
}

static void list_done(void *ud, ft_request *req, const ft_response *res) {
  list_record(ud, req, res);
  ft_request_free(req);
}

/* A line that cannot become a request still yields its record. */
static void list_bad_line(ft_crawl *c, ft_request *req, ft_errkind kind,
                          const char *msg) {
  ft_response res;
  memset(&res, 0, sizeof(res));
  res.error = kind;
  res.message = msg;
  list_record(c, req, &res);
  ft_request_free(req);
}

/* The next input line as a request (see ft_source_fn). */
static int list_source(void *ud, ft_request **out) {
  ft_crawl *c = ud;
  char err[512];
  for (;;) {
    if (c->interrupted || c->stopping)
      return -1;
    if (c->set.ordered && ft_reorder_full(&c->window, c->next_index))
      return 0; /* the reorder window is full */
    size_t len;
    char *line = ft_input_next(&c->in, &len);
    if (!line)
      return -1;
    ft_request *r = ft_request_new();
    if (!r) {
      fail_run(c, "out of memory");
      return -1;
    }
    r->index = c->next_index++;
    if (line[0] == '{') {
      if (!c->script && ft_script_new(&c->script, err, sizeof(err)) != 0) {
        ft_request_free(r);
        fail_run(c, err);
        return -1;
      }
      c->owns_script = 1;
      if (ft_script_parse_request(c->script, line, len, r, err,
                                  sizeof(err)) != 0) {
        /* keep the line itself, cut to a sane length, as the url */
        r->url = strndup(line, 200);
        list_bad_line(c, r, FT_ERR_INPUT, err);
        continue;
      }
    } else {
      ft_request_set_url(r, line, len); /* a NUL inside: refused, kind url */
    }
    if (!r->url) {
      ft_request_free(r);
      fail_run(c, "out of memory");
      return -1;
    }
    if (ft_url_check(r->url, err, sizeof(err)) != 0) {
      list_bad_line(c, r, FT_ERR_URL, err);
      continue;
    }
    if (add_extra_headers(c, r) != 0) {
      list_bad_line(c, r, FT_ERR_INTERNAL, "out of memory");
      continue;
    }
    *out = r;
    return 1;
  }
}

/* ---- a script's source and records ---------------------------------------- */

/* The next request of the crawl script (see ft_source_fn). */
static int script_source(void *ud, ft_request **out) {
  ft_crawl *c = ud;
  char err[4096];
  if (c->interrupted || c->start_failed || c->stopping)
    return -1;
  /* start may run ahead by the slots free now: it then yields once per
   * batch rather than once per request */
  ft_engine_counts n;
  ft_engine_counts_get(c->engine, &n);
  int want = c->set.cfg.concurrency - n.in_flight;
  int rc = ft_script_crawl_next(c->script,
                                want < 1 ? 1 : want > 256 ? 256 : want, out,
                                err, sizeof(err));
  check_script_output(c); /* start may write records */
  if (rc == FT_ELUA) {
    free(c->start_error);
    c->start_error = strdup(err);
    c->start_failed = 1;
    return -1;
  }
  if (rc > 0) {
    c->next_index++;
    if (add_extra_headers(c, *out) != 0) {
      ft_request_free(*out);
      *out = NULL;
      fail_run(c, "out of memory");
      return -1;
    }
  }
  return rc > 0 ? 1 : rc;
}

/* A request of the script came back: its default record, or its handler. */
static void script_done(void *ud, ft_request *req, const ft_response *res) {
  ft_crawl *c = ud;
  char err[4096];
  ft_stats_add(&c->stats, res);
  if (res->error == FT_ERR_CANCELLED || c->write_failed) {
    /* interrupted, or records can no longer be written: abandoned, no
     * handler runs */
  } else if (!c->info.has_on_response &&
             (res->error == FT_ERR_NONE || !c->info.has_on_error)) {
    c->rec.len = 0;
    ft_record_write(&c->rec, req, res, c->set.record_flags);
    emit_bytes(c, c->rec.data, c->rec.len);
    /* the record is out: the request is done (with handlers, the crawl
     * says so itself when the handler has finished, which may be later) */
    if (!c->write_failed &&
        ft_script_journal_done(c->script, req->index) != 0) {
      say(c, "%s: cannot save the state\n", c->set.name);
      c->script_failed = 1;
    }
  } else {
    if (ft_script_crawl_done(c->script, req, res, err, sizeof(err)) != 0) {
      say(c, "%s: internal error: %s\n", c->set.name, err);
      c->script_failed = 1;
    }
    check_script_output(c);
  }
  ft_request_free(req);
  ft_engine_recheck(c->engine);
}

/* ---- alarms (obj:after) and holds -------------------------------------- */

static void on_alarm_closed(uv_handle_t *h) { free(h->data); }

static void alarm_remove(crawl_alarm *a) {
  if (a->prev)
    a->prev->next = a->next;
  else
    a->c->alarms = a->next;
  if (a->next)
    a->next->prev = a->prev;
  uv_close((uv_handle_t *)&a->timer, on_alarm_closed);
}

static void on_alarm(uv_timer_t *t) {
  crawl_alarm *a = t->data;
  ft_crawl *c = a->c;
  uint64_t id = a->id;
  char err[4096];
  alarm_remove(a);
  if (id != 0) {
    ft_engine_outside_work(c->engine, -1);
    if (!c->interrupted && !c->write_failed &&
        ft_script_alarm(c->script, id, err, sizeof(err)) != 0) {
      say(c, "%s: internal error: %s\n", c->set.name, err);
      c->script_failed = 1;
    }
    check_script_output(c);
  }
  ft_engine_recheck(c->engine);
}

/* obj:after asks for an alarm (id 0: just look at the queues again soon,
 * since limits changed; never a call back into the engine from Lua). An
 * alarm holds the run open until it has fired. */
static void set_alarm(void *ud, uint64_t id, uint64_t ms) {
  ft_crawl *c = ud;
  crawl_alarm *a = calloc(1, sizeof(*a));
  if (!a) {
    fail_run(c, "out of memory");
    return;
  }
  a->id = id;
  a->c = c;
  uv_timer_init(c->loop, &a->timer);
  a->timer.data = a;
  a->next = c->alarms;
  if (a->next)
    a->next->prev = a;
  c->alarms = a;
  if (id != 0)
    ft_engine_outside_work(c->engine, 1);
  uv_timer_start(&a->timer, on_alarm, ms, 0);
}

/* A handler waits for something (ft.get: +1) or is done waiting (-1): the
 * run must not end meanwhile. */
static void on_handler_wait(void *ud, int delta) {
  ft_crawl *c = ud;
  ft_engine_outside_work(c->engine, delta);
  if (delta < 0)
    ft_engine_recheck(c->engine);
}

static void alarms_cancel(ft_crawl *c) {
  while (c->alarms) {
    if (c->alarms->id != 0 && c->engine)
      ft_engine_outside_work(c->engine, -1);
    alarm_remove(c->alarms);
  }
}

/* ---- the output of records and checkpoints ------------------------------ */

/* Notes which bytes the output holds before off, so that a resumed run can
 * tell its own output from another file: the hash (hash.h) of the (up to)
 * 4096 bytes before off, as "<off>:<16 hex>", into buf. Empty when the
 * bytes cannot be read back (an output that is not a regular file, or one
 * open for writing only whose /proc/self/fd link cannot be reopened). */
static void output_tail(int fd, int64_t off, char *buf, size_t len) {
  buf[0] = '\0';
  int rfd = fd, fl = fcntl(fd, F_GETFL);
  if (fl < 0)
    return;
  if ((fl & O_ACCMODE) == O_WRONLY) { /* stdout redirected by > or >> */
    char p[64];
    snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
    rfd = open(p, O_RDONLY | O_CLOEXEC);
    if (rfd < 0)
      return;
  }
  int64_t from = off > 4096 ? off - 4096 : 0;
  char data[4096];
  size_t n = (size_t)(off - from), got = 0;
  while (got < n) {
    ssize_t r = pread(rfd, data + got, n - got, (off_t)(from + (int64_t)got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (rfd != fd)
    close(rfd);
  if (got != n)
    return;
  uint64_t h = ft_hash64(data, n);
  snprintf(buf, len, "%lld:%016llx", (long long)off, (unsigned long long)h);
}

/* Hands every record written so far to the output and learns how each
 * write went: Lua's (check_script_output), then a flush of the stream's
 * buffer. glibc drops a buffer it failed to write and a later fflush
 * succeeds, so the error flag counts too. The first failure ends the run
 * (write_failed). Returns c->write_failed. */
static int flush_records(ft_crawl *c) {
  check_script_output(c);
  if (!c->out)
    return c->write_failed;
  errno = 0;
  if (!c->write_failed && fflush(c->out) != 0)
    write_failed(c, errno);
  if (!c->write_failed && ferror(c->out))
    write_failed(c, EIO);
  return c->write_failed;
}

/* Make everything so far durable: the output first (written and synced),
 * then the state that says how much of it counts (a crash in between
 * leaves records past the committed offset, which the next run cuts off and
 * redoes). This is the one place that decides what a crash-safe run
 * commits. After a failed write of records the output holds less than was
 * handed to it, so nothing is committed again (the state stays at the last
 * good commit, the next run cuts back to it): returns 1, the run already
 * ending with "writing records: ...". After a failed sync or checkpoint,
 * likewise, with why on stderr once: returns -1. Without a journal: commits
 * storage (0, or a negative code). */
static int checkpoint(ft_crawl *c, int finished) {
  if (!c->journal)
    return ft_script_commit(c->script);
  if (c->state_failed)
    return c->write_failed ? 1 : -1;
  if (flush_records(c)) {
    ft_script_journal_abandon(c->script, "writing records failed");
    c->state_failed = 1;
    return 1;
  }
  char tail[40] = "";
  int fd = c->out ? fileno(c->out) : -1;
  struct stat sb;
  off_t off = 0;
  if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
    off = ftello(c->out);
    /* a file system that cannot sync (EINVAL, ENOSYS) is no failure */
    if (off < 0 ||
        (fdatasync(fd) != 0 && errno != EINVAL && errno != ENOSYS)) {
      write_failed(c, off < 0 ? EIO : errno);
      ft_script_journal_abandon(c->script, "syncing the records failed");
      goto failed;
    }
    output_tail(fd, (int64_t)off, tail, sizeof(tail));
  } /* else a pipe, a device or Lua's out function: no offset to keep */
  if (ft_script_checkpoint(c->script, (int64_t)off, tail, finished) == 0)
    return 0;
failed:
  c->state_failed = 1;
  fatal(c, c->set.name,
        "state: %s; run the same command again to resume from there",
        ft_script_journal_error(c->script));
  return -1;
}

/* Every 200 ms, a checkpoint. One that fails for the state's sake ends the
 * run (a failed write of records has ended it already). */
static void on_commit_timer(uv_timer_t *t) {
  ft_crawl *c = t->data;
  if (checkpoint(c, 0) < 0) {
    c->script_failed = 1;
    ft_engine_stop(c->engine);
  }
}

/* Opens the output: out_path (for update in a crash-safe run, which keeps
 * what the last run committed), else the stream given, else stdout; an
 * output we open gets a 1 MB buffer. Returns 0, or FT_EINVAL after saying
 * why. */
static int open_output(ft_crawl *c) {
  if (c->set.script_records) /* no file: Lua's out function has them */
    return 0;
  c->out = c->set.out ? c->set.out : stdout;
  if (c->set.out_path) {
    /* a resumed run keeps what the last one committed */
    FILE *f = fopen(c->set.out_path, c->journal ? "r+" : "w");
    if (!f && c->journal && errno == ENOENT)
      f = fopen(c->set.out_path, "w");
    if (!f) {
      fatal(c, "fetchtree", "%s: %s", c->set.out_path, strerror(errno));
      return FT_EINVAL;
    }
    c->out = f;
    c->out_opened = 1;
  }
  /* (ft.run's stdout is the caller's, already in use: left as it is) */
  if ((c->out == stdout && c->spec.kind != FT_CRAWL_LOADED) ||
      c->out_opened) {
    /* glibc ignores the size when setvbuf is given no buffer, and writes
     * in st_blksize pieces (4 KB: 5,500 write calls per 60,000 records).
     * stdout's buffer is set once: it lives until the process ends. */
    static char *stdout_buf; /* stdout's, until the process ends */
    if (c->out != stdout) {
      c->out_buf = malloc(1 << 20);
      setvbuf(c->out, c->out_buf, _IOFBF, c->out_buf ? 1 << 20 : BUFSIZ);
    } else if (!stdout_buf) {
      stdout_buf = malloc(1 << 20);
      setvbuf(stdout, stdout_buf, _IOFBF, stdout_buf ? 1 << 20 : BUFSIZ);
    }
  }
  return 0;
}

/* A crash-safe run: cuts what the last run wrote past its last checkpoint,
 * once sure the output is the one it wrote (never pads a shorter or other
 * file); an output that is not a regular file cannot be cut, which a
 * resumed run warns of. Returns 0, or FT_EIO after saying why. */
static int resume_output(ft_crawl *c) {
  if (!c->out) /* records go to Lua: nothing here to cut */
    return 0;
  int fd = fileno(c->out);
  struct stat sb;
  if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
    char tail[40] = "";
    if (c->resume_tail[0] && sb.st_size >= c->resume_offset)
      output_tail(fd, c->resume_offset, tail, sizeof(tail));
    if (sb.st_size < c->resume_offset ||
        (c->resume_tail[0] && strcmp(tail, c->resume_tail) != 0)) {
      fatal(c, c->set.name,
            "the output (%lld bytes) is not the one the run being resumed "
            "wrote (%lld bytes of records): resume with the same file, by "
            "--out FILE or >> (never >, which empties it), or start again "
            "with --restart",
            (long long)sb.st_size, (long long)c->resume_offset);
      return FT_EIO;
    }
    if (ftruncate(fd, (off_t)c->resume_offset) != 0 ||
        fseeko(c->out, (off_t)c->resume_offset, SEEK_SET) != 0) {
      fatal(c, c->set.name, "cannot truncate the output: %s",
            strerror(errno));
      return FT_EIO;
    }
  } else if (c->resume_offset > 0) {
    fprintf(stderr, "%s: records go to a pipe, so the records of "
                    "the last unsaved moments of the previous run may "
                    "appear again\n",
            c->set.name);
  }
  return 0;
}

/* A crash-safe run (a state path, or the spec's state): opens its journal
 * and notes what the last run committed of the output. Returns 0 (go on,
 * or c->finished_before: nothing to run), FT_EINVAL (--restart without a
 * state) or another negative code after saying why. */
static int open_state(ft_crawl *c) {
  char err[4096];
  if (c->spec.kind == FT_CRAWL_LIST)
    return 0;
  if (c->set.state_path &&
      ft_script_set_state(c->script, c->set.state_path) != 0) {
    fatal(c, "fetchtree", "out of memory");
    return FT_ENOMEM;
  }
  if (!c->set.state_path && !c->info.has_state) {
    if (!c->set.restart)
      return 0;
    fatal(c, c->set.name, "--restart goes with --state");
    return FT_EINVAL;
  }
  ft_journal_info ji;
  if (ft_script_journal_open(c->script, c->set.restart, &ji, err,
                             sizeof(err)) != 0) {
    fatal(c, c->set.name, "state: %s", err);
    return FT_EIO;
  }
  if (ji.finished) {
    if (!c->set.quiet)
      fprintf(stderr, "%s: this crawl has finished (its state "
                      "says so); --restart runs it again\n",
              c->set.name);
    c->finished_before = 1;
    return 0;
  }
  c->journal = 1;
  c->resume_offset = ji.out_offset;
  snprintf(c->resume_tail, sizeof(c->resume_tail), "%s", ji.out_tail);
  if (ji.resuming && !c->set.quiet)
    fprintf(stderr, "%s: resuming: %lld requests pending, %lld "
                    "bytes of records kept\n",
            c->set.name, (long long)ji.pending, (long long)ji.out_offset);
  return 0;
}

/* ---- stopping: Ctrl-C, failures, the host ----------------------------- */

/* SIGINT is caught with sigaction rather than uv_signal so that it can
 * also stop a Lua handler that never returns (the loop would not turn to
 * deliver a uv_signal). The handler can only reach the crawl through a
 * static: signals know nothing else. The first Ctrl-C puts the default
 * action back, so a second one ends the process at once, as the terminal
 * expects, without any exit() of ours. */
static ft_crawl *volatile sigint_crawl;

static void on_sigint(int signum) {
  ft_crawl *c = sigint_crawl;
  (void)signum;
  signal(SIGINT, SIG_DFL);
  if (c)
    ft_crawl_stop(c, 1);
}

/* c->stop: after Ctrl-C, a failure (stop_soon) or ft_crawl_stop */
static void on_stop(uv_async_t *a) {
  ft_crawl *c = a->data;
  if (c->got_sigint)
    c->interrupted = 1;
  if (c->stop_asked)
    c->stopping = 1;
  ft_engine_stop(c->engine);
}

static void on_interrupt_check(uv_check_t *h) {
  ft_crawl *c = h->data;
  if (!c->got_sigint && c->set.interrupted(c->set.interrupted_ud))
    ft_crawl_stop(c, 1);
}

void ft_crawl_stop(ft_crawl *c, int interrupted) {
  if (!c || !c->stop_on)
    return;
  c->stop_asked = 1;
  if (interrupted) {
    c->got_sigint = 1;
    /* a handler that never returns stops too (a host with a Ctrl-C of its
     * own, the REPL, interrupts its Lua itself) */
    if (c->script && c->owns_script)
      ft_script_interrupt(c->script);
  }
  uv_async_send(&c->stop);
}

static void on_progress(uv_timer_t *t) {
  ft_crawl *c = t->data;
  c->set.progress(c->set.progress_ud, c);
}

/* ---- the run's life ------------------------------------------------------ */

/* File descriptors a run needs besides its connections: standard streams,
 * the loop's, the state database and its journal, input and output files,
 * name resolutions in progress. Each connection takes one, and curl keeps
 * up to twice the concurrency open (idle ones for reuse). */
enum { FD_RESERVE = 32 };

/* Caps the concurrency to what the open-files limit can serve, with a
 * warning: beyond it, connections fail for want of a descriptor, which
 * curl reports as a failed connect. */
static void cap_concurrency(ft_crawl *c) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return;
  rlim_t need = 2 * (rlim_t)c->set.cfg.concurrency + FD_RESERVE;
  if (rl.rlim_cur >= need)
    return;
  int n = rl.rlim_cur > FD_RESERVE + 2 ? (int)((rl.rlim_cur - FD_RESERVE) / 2)
                                       : 1;
  fprintf(stderr, "fetchtree: warning: the open files limit (ulimit -n %llu) "
                  "allows a concurrency of %d, not %d: using %d\n",
          (unsigned long long)rl.rlim_cur, n, c->set.cfg.concurrency, n);
  c->set.cfg.concurrency = n;
  if (c->set.cfg.host_connections > n)
    c->set.cfg.host_connections = n;
}

int ft_crawl_new(ft_crawl **out, const ft_crawl_spec *spec,
                 const ft_crawl_settings *settings, char *err,
                 size_t errlen) {
  *out = NULL;
  ft_crawl *c = calloc(1, sizeof(*c));
  if (!c) {
    ft_errf(err, errlen, "out of memory");
    return FT_ENOMEM;
  }
  c->spec = *spec;
  c->set = *settings;
  if (!c->set.name)
    c->set.name = "fetchtree";
  int rc = 0;
  switch (spec->kind) {
  case FT_CRAWL_LIST:
    c->in.files = spec->files;
    break;
  case FT_CRAWL_SCRIPT:
    if ((rc = ft_script_new(&c->script, err, errlen)) != 0)
      break;
    c->owns_script = 1;
    /* the spec's fields go into c->set.cfg, which the script keeps
     * pointing to (its user agent, for robots.txt) */
    rc = ft_script_crawl_load(c->script, spec->path, spec->args, spec->nargs,
                              settings->with_meta, &c->set.cfg, &c->info, err,
                              errlen);
    break;
  case FT_CRAWL_LOADED:
    c->script = spec->script;
    rc = spec->load ? spec->load(spec->load_ud, &c->set.cfg, &c->info, err,
                                 errlen)
                    : 0;
    break;
  default:
    ft_errf(err, errlen, "unknown kind of crawl");
    rc = FT_EINVAL;
  }
  if (rc != 0) {
    ft_crawl_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

ft_crawl_settings *ft_crawl_get_settings(ft_crawl *c) { return &c->set; }

/* Makes on the loop all a run needs before its engine starts: the reorder
 * window (ordered), the engine (its concurrency capped to the open-files
 * limit) over the crawl's source, the script's hooks, objects and commit
 * timer, the stop handle, the SIGINT handler, the progress timer.
 * Returns 0, or a negative code after saying why; either way end_run
 * closes what was made. */
static int start_run(ft_crawl *c) {
  int script = c->spec.kind != FT_CRAWL_LIST;
  if (c->set.ordered && !script) {
    uint64_t size = (uint64_t)c->set.cfg.concurrency * 16;
    if (ft_reorder_init(&c->window, size < 4096 ? 4096 : size) != 0) {
      fatal(c, "fetchtree", "out of memory");
      return FT_ENOMEM;
    }
  }
  cap_concurrency(c);
  int e = ft_engine_new(&c->engine, c->loop, &c->set.cfg);
  if (e != 0) {
    fatal(c, "fetchtree", "%s", ft_strerror(e));
    return e;
  }
  ft_engine_set_source(c->engine, script ? script_source : list_source, c);
  ft_engine_set_done(c->engine, script ? script_done : list_done, c);
  if (script) {
    char err[512];
    ft_tree *tree = ft_engine_tree(c->engine);
    ft_script_set_tree(c->script, tree);
    ft_script_set_alarm_fn(c->script, set_alarm, c);
    ft_script_set_hold_fn(c->script, on_handler_wait, c);
    /* ft.get in a handler: its engine runs on this loop, and yields (ft.run
     * runs on the Lua state's own loop already) */
    if (c->spec.kind == FT_CRAWL_SCRIPT)
      ft_lua_engine_use_loop(ft_script_lua(c->script), c->loop);
    if ((e = ft_script_crawl_objects(c->script, tree, err, sizeof(err))) !=
        0) {
      fatal(c, c->set.name, "%s: %s", c->spec.path ? c->spec.path : "spec",
            err);
      return e;
    }
    uv_timer_init(c->loop, &c->commit_timer);
    c->commit_timer.data = c;
    uv_timer_start(&c->commit_timer, on_commit_timer, 200, 200);
    uv_unref((uv_handle_t *)&c->commit_timer);
    c->commit_timer_on = 1;
  }

  uv_async_init(c->loop, &c->stop, on_stop);
  c->stop.data = c;
  uv_unref((uv_handle_t *)&c->stop);
  c->stop_on = 1;
  if (c->set.catch_sigint) {
    sigint_crawl = c;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &c->old_sigint);
    c->sigint_on = 1;
  }
  if (c->set.interrupted) {
    uv_check_init(c->loop, &c->interrupt_check);
    c->interrupt_check.data = c;
    uv_check_start(&c->interrupt_check, on_interrupt_check);
    uv_unref((uv_handle_t *)&c->interrupt_check);
    c->interrupt_check_on = 1;
  }
  if (c->set.progress && c->set.progress_ms > 0) {
    uv_timer_init(c->loop, &c->progress_timer);
    c->progress_timer.data = c;
    uv_timer_start(&c->progress_timer, on_progress, c->set.progress_ms,
                   c->set.progress_ms);
    uv_unref((uv_handle_t *)&c->progress_timer);
    c->progress_on = 1;
  }
  return 0;
}

/* After the engine has run: the last records out, and the final
 * checkpoint (the crawl finished only if nothing failed and nobody stopped
 * it). Returns 0 or the negative code ft_crawl_run returns. */
static int finish_run(ft_crawl *c) {
  if (c->got_sigint)
    c->interrupted = 1; /* even if the run ended before the loop saw it */
  alarms_cancel(c);
  if (c->progress_on)
    uv_timer_stop(&c->progress_timer);
  flush_records(c);
  if (c->spec.kind != FT_CRAWL_LIST &&
      checkpoint(c, !c->interrupted && !c->stop_asked && !c->start_failed &&
                        !c->script_failed && !c->failed &&
                        !c->write_failed) < 0) {
    fatal(c, "fetchtree", "could not save the state");
    c->script_failed = 1;
  }
  c->ended_ns = uv_hrtime();
  if (c->write_failed)
    return FT_EIO;
  if (c->start_failed)
    return FT_ELUA;
  if (c->interrupted || c->script_failed || c->failed || c->in.failed)
    return c->failed ? FT_ENOMEM : FT_EIO;
  return 0;
}

/* Undoes start_run, whether it got to the end or not (closing only what
 * was initialised), and lets the loop close its handles. The engine stays
 * (its tree holds the run's statistics) until ft_crawl_free. */
static void end_run(ft_crawl *c) {
  alarms_cancel(c);
  if (c->commit_timer_on)
    uv_close((uv_handle_t *)&c->commit_timer, NULL);
  c->commit_timer_on = 0;
  if (c->progress_on)
    uv_close((uv_handle_t *)&c->progress_timer, NULL);
  c->progress_on = 0;
  if (c->interrupt_check_on)
    uv_close((uv_handle_t *)&c->interrupt_check, NULL);
  c->interrupt_check_on = 0;
  if (c->sigint_on) {
    sigaction(SIGINT, &c->old_sigint, NULL);
    sigint_crawl = NULL;
    c->sigint_on = 0;
  }
  if (c->stop_on)
    uv_close((uv_handle_t *)&c->stop, NULL);
  c->stop_on = 0;
  if (c->script && c->spec.kind != FT_CRAWL_LIST) {
    /* the script engine may outlive the crawl (ft.run's): nothing of the
     * crawl stays reachable from it */
    ft_script_set_alarm_fn(c->script, NULL, NULL);
    ft_script_set_hold_fn(c->script, NULL, NULL);
    ft_script_set_output(c->script, NULL, 0);
    if (c->spec.kind == FT_CRAWL_SCRIPT) /* Lua engines on this loop go first */
      ft_lua_engine_release_loop(ft_script_lua(c->script));
  }
  if (c->engine)
    ft_engine_stop(c->engine);
  /* the close callbacks (a loop of the host's runs them when it turns) */
  if (c->loop == &c->own_loop)
    uv_run(c->loop, UV_RUN_NOWAIT);
}

int ft_crawl_run(ft_crawl *c) {
  if (c->ran)
    return FT_EINVAL;
  c->ran = 1;
  int rc = open_state(c);
  if (rc != 0 || c->finished_before)
    return rc;
  if ((rc = open_output(c)) != 0)
    return rc;
  if (c->journal && (rc = resume_output(c)) != 0)
    return rc;
  if (c->script && c->spec.kind != FT_CRAWL_LIST)
    ft_script_set_output(c->script, c->out, c->set.record_flags);
  if (c->set.loop) {
    c->loop = c->set.loop;
  } else {
    if (uv_loop_init(&c->own_loop) != 0) {
      fatal(c, "fetchtree", "cannot create an event loop");
      return FT_EUV;
    }
    c->loop = &c->own_loop;
    c->loop_ok = 1;
  }
  c->started_ns = uv_hrtime();
  rc = start_run(c);
  if (rc == 0) {
    c->engine_ran = 1;
    rc = ft_engine_run(c->engine);
    int frc = finish_run(c);
    if (frc != 0)
      rc = frc;
  } else {
    c->ended_ns = uv_hrtime();
  }
  end_run(c);
  return rc;
}

void ft_crawl_get_stats(const ft_crawl *c, ft_crawl_stats *st) {
  memset(st, 0, sizeof(*st));
  st->stats = c->stats;
  st->records = records_written(c);
  st->taken = c->next_index;
  st->source_done = c->spec.kind == FT_CRAWL_LIST && c->in.eof;
  uint64_t end = c->ended_ns ? c->ended_ns : uv_hrtime();
  st->elapsed_s = c->started_ns ? (double)(end - c->started_ns) / 1e9 : 0;
  st->finished_before = c->finished_before;
  st->ran = c->engine_ran;
  st->interrupted = c->interrupted || c->got_sigint;
  st->stopped = c->stop_asked;
  st->write_errno = c->write_failed;
  st->failed = c->start_failed || c->script_failed || c->failed ||
               c->in.failed;
  st->start_error = c->start_error;
  st->error = c->error[0] ? c->error : NULL;
}

ft_tree *ft_crawl_tree(ft_crawl *c) {
  return c->engine ? ft_engine_tree(c->engine) : NULL;
}

void ft_crawl_free(ft_crawl *c) {
  if (!c)
    return;
  if (c->engine) {
    ft_engine_free(c->engine);
    c->engine = NULL;
  }
  /* a host's loop: the close callbacks of our handles (end_run closed
   * them) run before c goes */
  if (c->loop && c->loop != &c->own_loop)
    uv_run(c->loop, UV_RUN_NOWAIT);
  if (c->script && c->spec.kind != FT_CRAWL_LIST)
    ft_script_set_tree(c->script, NULL);
  if (c->loop_ok) {
    uv_run(&c->own_loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->own_loop);
  }
  if (c->out_opened) {
    fclose(c->out);
    free(c->out_buf);
  }
  ft_reorder_free(&c->window);
  if (c->owns_script)
    ft_script_free(c->script);
  ft_buf_free(&c->rec);
  ft_input_close(&c->in);
  free(c->start_error);
  free(c);
}
