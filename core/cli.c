/* cli.c - the fetchtree command line: option parsing and the `fetch` command.
 *
 * `fetchtree fetch` reads requests a line at a time, lazily, as the engine
 * asks for them (the engine only asks when it has room), and writes one
 * JSON Lines record per input line. With --ordered, records wait in a
 * reorder window until all earlier ones are out; the window's size bounds
 * how far reading may run ahead of writing, so memory stays flat. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "engine.h"
#include "lua_engine.h"
#include "error.h"
#include "fetch.h"
#include "record.h"
#include "repl.h"
#include "request.h"
#include "script.h"
#include "stats.h"
#include "stats_json.h"
#include "tree.h"
#include "url.h"

/* ---- input ------------------------------------------------------------- */

typedef struct input {
  char **files; /* NULL-terminated; "-" is stdin */
  int cur;
  FILE *f;
  char *line;
  size_t cap;
  int eof;
  int failed; /* an input could not be opened or read to its end */
} input;

/* Next line that is neither blank nor a comment (its first non-blank
 * character is '#'), with surrounding white space trimmed, or NULL at the
 * end of the last file. A file that cannot be opened or read (a directory
 * given as standard input, an I/O error) is reported by name, sets
 * in->failed and is skipped: the files named were checked before the
 * run, but standard input and later failures cannot be. */
static char *input_next(input *in, size_t *len) {
  for (;;) {
    if (!in->f) {
      const char *name = in->files[in->cur];
      if (!name) {
        in->eof = 1;
        return NULL;
      }
      in->cur++;
      in->f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
      if (!in->f) {
        fprintf(stderr, "fetchtree: %s: %s\n", name, strerror(errno));
        in->failed = 1;
        continue;
      }
    }
    errno = 0;
    ssize_t n = getline(&in->line, &in->cap, in->f);
    if (n < 0) {
      if (ferror(in->f)) {
        const char *name = in->files[in->cur - 1];
        fprintf(stderr, "fetchtree: %s: %s\n",
                strcmp(name, "-") == 0 ? "standard input" : name,
                strerror(errno ? errno : EIO));
        in->failed = 1;
      }
      if (in->f != stdin)
        fclose(in->f);
      in->f = NULL;
      continue;
    }
    char *s = in->line;
    char *e = s + n;
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
      s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
                     e[-1] == '\n'))
      e--;
    if (s == e || *s == '#')
      continue;
    *e = '\0';
    *len = (size_t)(e - s);
    return s;
  }
}

/* ---- the fetch run ----------------------------------------------------- */

typedef struct slot {
  char *data; /* rendered record, or NULL while not finished */
  size_t len;
} slot;

typedef struct fetch_run {
  ft_config cfg;
  ft_engine *engine;
  ft_script *script; /* created at the first JSON line */
  input in;
  uint64_t next_index;
  struct curl_slist *extra_headers;
  char *sensitive; /* --sensitive-header names, comma-separated */

  FILE *out;
  const char *out_path;
  char *out_buf; /* run->out's stdio buffer */
  int record_flags;
  ft_buf rec;
  int write_failed; /* errno of the first failed write of records, or 0 */
  uint64_t records; /* records written by this file (Lua's: the script's) */

  int ordered;
  slot *window;
  uint64_t window_size;
  uint64_t next_write;

  ft_stats stats;
  uint64_t started_ns;
  int progress;
  int quiet;
  uv_timer_t progress_timer;
  int progress_on; /* progress_timer is initialised */
  uv_async_t stop; /* ends the run from outside the engine's callbacks */
  int stop_on;     /* stop is initialised */
  volatile sig_atomic_t got_sigint; /* set by the signal handler */
  int interrupted;
  int stopping; /* a failure is ending the run: the sources give no more */
  int failed;   /* a failure (out of memory) ended the run: exit 1 */

  /* `fetchtree run` */
  int is_run;
  const char *script_path;
  char **script_args;
  int nscript_args;
  int with_meta;
  ft_crawl_info info;
  int start_failed;
  int script_failed;
  const char *state_path; /* --state */
  int restart;            /* --restart */
  int journal;            /* a crash-safe run */
  int64_t resume_offset;  /* output committed by the previous run */
  char resume_tail[40];   /* its output_tail then ("" if not noted) */
  int state_failed;       /* a checkpoint failed: none commits any more */
  const char *stats_path; /* --stats */
  struct run_alarm *alarms; /* pending obj:after alarms */
  uv_timer_t commit_timer;
  int commit_timer_on;
} fetch_run;

/* An obj:after alarm waiting in the loop. */
typedef struct run_alarm {
  uv_timer_t timer;
  uint64_t id;
  fetch_run *run;
  struct run_alarm *prev, *next;
} run_alarm;

/* Ends the run soon, and never from inside one of the engine's callbacks:
 * ft_engine_stop hands every request back, the one a done callback is
 * still holding too, and a caller up the stack may still be using what a
 * stop frees. So the stop goes through run->stop, an async handle the loop
 * serves once the current callback has returned; meanwhile the sources
 * give no more requests. Safe to call more than once. */
static void stop_soon(fetch_run *run) {
  run->stopping = 1;
  if (run->stop_on)
    uv_async_send(&run->stop);
}

/* A failure that ends the run (out of memory): says so once, exits 1. */
static void fail_run(fetch_run *run, const char *msg) {
  if (!run->failed)
    fprintf(stderr, "fetchtree: %s\n", msg);
  run->failed = 1;
  stop_soon(run);
}

/* The first failed write of records ends the run: no more input is taken,
 * what is in flight comes back cancelled, and execute reports err. */
static void write_failed(fetch_run *run, int err) {
  if (run->write_failed)
    return;
  run->write_failed = err ? err : EIO;
  stop_soon(run);
}

/* A failed write among the records Lua wrote (core.write_record and
 * write_default) ends the run as one of emit_bytes' own does. */
static void check_script_output(fetch_run *run) {
  if (!run->script)
    return;
  int err = ft_script_output_state(run->script, NULL);
  if (err)
    write_failed(run, err);
}

/* The records written so far: by this file and from Lua. */
static uint64_t records_written(const fetch_run *run) {
  uint64_t n = 0;
  if (run->script)
    ft_script_output_state(run->script, &n);
  return run->records + n;
}

static void emit_bytes(fetch_run *run, const char *p, size_t n) {
  if (run->write_failed)
    return;
  errno = 0;
  if (fwrite(p, 1, n, run->out) != n)
    write_failed(run, errno);
  else
    run->records++;
}

/* A finished record for index i: out now, or into the reorder window. */
static void emit_record(fetch_run *run, uint64_t i, ft_buf *rec) {
  if (!run->ordered) {
    emit_bytes(run, rec->data, rec->len);
    return;
  }
  slot *s = &run->window[i % run->window_size];
  s->data = malloc(rec->len);
  if (!s->data) {
    fail_run(run, "out of memory");
    return;
  }
  memcpy(s->data, rec->data, rec->len);
  s->len = rec->len;
  int moved = 0;
  for (;;) {
    slot *w = &run->window[run->next_write % run->window_size];
    if (!w->data)
      break;
    emit_bytes(run, w->data, w->len);
    free(w->data);
    w->data = NULL;
    run->next_write++;
    moved = 1;
  }
  if (moved)
    ft_engine_recheck(run->engine);
}

static void finish(fetch_run *run, const ft_request *req,
                   const ft_response *res) {
  ft_stats_add(&run->stats, res);
  run->rec.len = 0;
  ft_record_write(&run->rec, req, res, run->record_flags);
  if (run->rec.oom) {
    fail_run(run, "out of memory writing a record");
    return;
  }
  emit_record(run, req->index, &run->rec);
}

static void on_done(void *ud, ft_request *req, const ft_response *res) {
  finish(ud, req, res);
  ft_request_free(req);
}

/* A line that cannot become a request still yields its record. */
static void finish_bad_line(fetch_run *run, ft_request *req, ft_errkind kind,
                            const char *msg) {
  ft_response res;
  memset(&res, 0, sizeof(res));
  res.error = kind;
  res.message = msg;
  finish(run, req, &res);
  ft_request_free(req);
}

static int add_extra_headers(fetch_run *run, ft_request *r) {
  for (struct curl_slist *h = run->extra_headers; h; h = h->next) {
    int rc = ft_request_add_header(r, h->data);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int source(void *ud, ft_request **out) {
  fetch_run *run = ud;
  char err[512];
  for (;;) {
    if (run->interrupted || run->stopping)
      return -1;
    if (run->ordered && run->next_index >= run->next_write + run->window_size)
      return 0; /* the reorder window is full */
    size_t len;
    char *line = input_next(&run->in, &len);
    if (!line)
      return -1;
    ft_request *r = ft_request_new();
    if (!r) {
      fail_run(run, "out of memory");
      return -1;
    }
    r->index = run->next_index++;
    if (line[0] == '{') {
      if (!run->script && ft_script_new(&run->script, err, sizeof(err)) != 0) {
        ft_request_free(r);
        fail_run(run, err);
        return -1;
      }
      if (ft_script_parse_request(run->script, line, len, r, err,
                                  sizeof(err)) != 0) {
        /* keep the line itself, cut to a sane length, as the url */
        r->url = strndup(line, 200);
        finish_bad_line(run, r, FT_ERR_INPUT, err);
        continue;
      }
    } else {
      ft_request_set_url(r, line, len); /* a NUL inside: refused, kind url */
    }
    if (!r->url) {
      ft_request_free(r);
      fail_run(run, "out of memory");
      return -1;
    }
    if (ft_url_check(r->url, err, sizeof(err)) != 0) {
      finish_bad_line(run, r, FT_ERR_URL, err);
      continue;
    }
    if (add_extra_headers(run, r) != 0) {
      finish_bad_line(run, r, FT_ERR_INTERNAL, "out of memory");
      continue;
    }
    *out = r;
    return 1;
  }
}

/* ---- the run command's source and completion ------------------------- */

static int run_source(void *ud, ft_request **out) {
  fetch_run *run = ud;
  char err[4096];
  if (run->interrupted || run->start_failed || run->stopping)
    return -1;
  /* start may run ahead by the slots free now: it then yields once per
   * batch rather than once per request */
  ft_engine_counts c;
  ft_engine_counts_get(run->engine, &c);
  int want = run->cfg.concurrency - c.in_flight;
  int rc = ft_script_crawl_next(run->script, want < 1 ? 1 : want > 256 ? 256 : want,
                                out, err, sizeof(err));
  check_script_output(run); /* start may write records */
  if (rc == FT_ELUA) {
    fprintf(stderr, "fetchtree run: start failed: %s\n", err);
    run->start_failed = 1;
    return -1;
  }
  if (rc > 0 && add_extra_headers(run, *out) != 0) {
    ft_request_free(*out);
    *out = NULL;
    fail_run(run, "out of memory");
    return -1;
  }
  return rc > 0 ? 1 : rc;
}

static void run_done(void *ud, ft_request *req, const ft_response *res) {
  fetch_run *run = ud;
  char err[4096];
  ft_stats_add(&run->stats, res);
  if (res->error == FT_ERR_CANCELLED || run->write_failed) {
    /* interrupted, or records can no longer be written: abandoned, no
     * handler runs */
  } else if (!run->info.has_on_response &&
             (res->error == FT_ERR_NONE || !run->info.has_on_error)) {
    run->rec.len = 0;
    ft_record_write(&run->rec, req, res, run->record_flags);
    emit_bytes(run, run->rec.data, run->rec.len);
    /* the record is out: the request is done (with handlers, the crawl
     * says so itself when the handler has finished, which may be later) */
    if (!run->write_failed &&
        ft_script_journal_done(run->script, req->index) != 0) {
      fprintf(stderr, "fetchtree run: cannot save the state\n");
      run->script_failed = 1;
    }
  } else {
    if (ft_script_crawl_done(run->script, req, res, err, sizeof(err)) != 0) {
      fprintf(stderr, "fetchtree run: internal error: %s\n", err);
      run->script_failed = 1;
    }
    check_script_output(run);
  }
  ft_request_free(req);
  ft_engine_recheck(run->engine);
}

/* ---- progress and signals ---------------------------------------------- */

static void on_progress(uv_timer_t *t) {
  fetch_run *run = t->data;
  double secs = (double)(uv_hrtime() - run->started_ns) / 1e9;
  uint64_t done = run->stats.requests;
  uint64_t errors = done - run->stats.ok;
  double rate = secs > 0 ? (double)done / secs : 0;
  if (run->in.eof) {
    uint64_t total = run->next_index;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\r\033[K%llu/%llu  %.0f/s  errors %llu  ETA %.0fs",
            (unsigned long long)done, (unsigned long long)total, rate,
            (unsigned long long)errors, eta);
  } else {
    fprintf(stderr, "\r\033[K%llu  %.0f/s  errors %llu",
            (unsigned long long)done, rate, (unsigned long long)errors);
  }
}

/* SIGINT is caught with sigaction rather than uv_signal so that it can
 * also stop a Lua handler that never returns (the loop would not turn to
 * deliver a uv_signal). The handler can only reach the run through a
 * static: signals know nothing else. A second Ctrl-C kills at once. */
static fetch_run *volatile sigint_run;

static void on_sigint_signal(int signum) {
  fetch_run *run = sigint_run;
  (void)signum;
  signal(SIGINT, SIG_DFL);
  if (!run)
    return;
  run->got_sigint = 1;
  if (run->script)
    ft_script_interrupt(run->script);
  uv_async_send(&run->stop);
}

/* run->stop: after Ctrl-C, or a failure (stop_soon) */
static void on_stop(uv_async_t *a) {
  fetch_run *run = a->data;
  if (run->got_sigint)
    run->interrupted = 1;
  ft_engine_stop(run->engine);
}

/* ---- options ----------------------------------------------------------- */

static void usage_fetch(FILE *f) {
  fputs(
      "usage: fetchtree fetch [options] [FILE...]\n"
      "\n"
      "Fetch every request in FILEs (or standard input), one per line: a URL,\n"
      "or a JSON object {\"url\":..,\"method\":..,\"headers\":{..},\"body\":..,\"meta\":..}.\n"
      "Writes one JSON Lines record per input line; blank lines and lines whose\n"
      "first non-blank character is # (comments) are skipped.\n"
      "\n"
      "Output:\n"
      "  -o, --out FILE          write records to FILE instead of stdout\n"
      "      --ordered           records in input order (default: completion order)\n"
      "      --no-body           leave bodies out of records\n"
      "      --no-headers        leave response headers out of records\n"
      "  -q, --quiet             no progress line and no summary on stderr\n"
      "      --progress          the progress line even if stderr is not a terminal\n"
      "      --stats FILE        write the object tree's statistics as JSON\n"
      "Requests:\n"
      "  -H, --header 'N: V'     add a header to every request (repeatable)\n"
      "  -A, --user-agent UA     User-Agent (default fetchtree/" FT_VERSION ")\n"
      "      --compressed        ask for compressed bodies (Accept-Encoding); a\n"
      "                          body that comes compressed is decoded either way\n"
      "      --timeout S         total time for one attempt, seconds (30)\n"
      "      --connect-timeout S time to connect, seconds (10)\n"
      "      --max-redirects N   redirects followed, 0 for none (10)\n"
      "      --max-body SIZE     largest body accepted, e.g. 64M (64M)\n"
      "      --cacert FILE       verify TLS servers against the CAs in FILE (PEM)\n"
      "      --sensitive-header NAME\n"
      "                          a header not sent on when a redirect leaves the\n"
      "                          host, like Authorization and Cookie (repeatable)\n"
      "Pacing:\n"
      "  -c, --concurrency N     requests in flight at once (64)\n"
      "      --host-connections N connections per host (default: concurrency)\n"
      "      --rps R             at most R*W/1000 attempts start in any W ms\n"
      "      --window W          the rate window in milliseconds (1000)\n"
      "Retries:\n"
      "      --retries N         retries after the first attempt (5)\n"
      "      --retry-on LIST     retryable statuses (408,429,500,502,503,504)\n"
      "      --backoff-base MS   backoff base (100)\n"
      "      --backoff-cap MS    backoff cap (10000)\n"
      "      --max-retry-after S longest Retry-After honoured, seconds (60)\n"
      "      --seed N            seed for the retry jitter\n",
      f);
}

static void usage_run(FILE *f) {
  fputs("usage: fetchtree run SCRIPT.lua [options] [-- script args]\n"
        "\n"
        "Run a crawl script: SCRIPT.lua returns a spec whose start(emit)\n"
        "generates requests and whose on_response(res, obj) turns each\n"
        "response into records and follow-up fetches. Records are written\n"
        "as JSON Lines. Options are those of `fetchtree fetch` (they override\n"
        "the spec's fields of the same meaning), and:\n"
        "      --with-meta         add _url, _status, _index, _depth to records\n"
        "      --state FILE        a crash-safe run: frontier, seen set, storage and\n"
        "                          output progress in this SQLite database; the\n"
        "                          same command again resumes after a crash\n"
        "      --restart           with --state: forget an earlier run, start over\n"
        "      --stats FILE        write the object tree's statistics as JSON\n",
        f);
}

static void usage(FILE *f) {
  fputs("usage: fetchtree COMMAND [options]\n"
        "\n"
        "fetchtree fetches very long lists of HTTP resources as fast as the\n"
        "target allows, and not one request faster.\n"
        "\n"
        "Commands:\n"
        "  fetch [options] [FILE...]   fetch a list of requests, write JSON Lines\n"
        "  run SCRIPT.lua [options] [-- args]  run a Lua crawl script\n"
        "  repl                        an interactive Lua prompt with ft loaded\n"
        "                              (also: fetchtree alone, on a terminal)\n"
        "  lua FILE [args]             run a Lua program with ft loaded\n"
        "\n"
        "  fetchtree COMMAND --help    options of a command\n"
        "  fetchtree --version         the version\n",
        f);
}

static int parse_double(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < lo || v > hi || v != v)
    return -1;
  *out = v;
  return 0;
}

static int parse_size(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0)
    return -1;
  double m = 1;
  if (*end == 'k' || *end == 'K')
    m = 1024;
  else if (*end == 'm' || *end == 'M')
    m = 1024.0 * 1024;
  else if (*end == 'g' || *end == 'G')
    m = 1024.0 * 1024 * 1024;
  if (m != 1)
    end++;
  if (*end)
    return -1;
  *out = (int64_t)(v * m);
  return 0;
}

enum {
  OPT_ORDERED = 256,
  OPT_NO_BODY,
  OPT_NO_HEADERS,
  OPT_TIMEOUT,
  OPT_CONNECT_TIMEOUT,
  OPT_MAX_REDIRECTS,
  OPT_MAX_BODY,
  OPT_HOST_CONN,
  OPT_RPS,
  OPT_WINDOW,
  OPT_RETRIES,
  OPT_RETRY_ON,
  OPT_BACKOFF_BASE,
  OPT_BACKOFF_CAP,
  OPT_MAX_RETRY_AFTER,
  OPT_SEED,
  OPT_PROGRESS,
  OPT_CACERT,
  OPT_WITH_META,
  OPT_STATE,
  OPT_STATS,
  OPT_RESTART,
  OPT_COMPRESSED,
  OPT_SENSITIVE,
};

static const struct option fetch_opts[] = {
    {"out", required_argument, 0, 'o'},
    {"ordered", no_argument, 0, OPT_ORDERED},
    {"no-body", no_argument, 0, OPT_NO_BODY},
    {"no-headers", no_argument, 0, OPT_NO_HEADERS},
    {"quiet", no_argument, 0, 'q'},
    {"progress", no_argument, 0, OPT_PROGRESS},
    {"header", required_argument, 0, 'H'},
    {"user-agent", required_argument, 0, 'A'},
    {"compressed", no_argument, 0, OPT_COMPRESSED},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {"connect-timeout", required_argument, 0, OPT_CONNECT_TIMEOUT},
    {"max-redirects", required_argument, 0, OPT_MAX_REDIRECTS},
    {"max-body", required_argument, 0, OPT_MAX_BODY},
    {"concurrency", required_argument, 0, 'c'},
    {"host-connections", required_argument, 0, OPT_HOST_CONN},
    {"rps", required_argument, 0, OPT_RPS},
    {"window", required_argument, 0, OPT_WINDOW},
    {"retries", required_argument, 0, OPT_RETRIES},
    {"retry-on", required_argument, 0, OPT_RETRY_ON},
    {"backoff-base", required_argument, 0, OPT_BACKOFF_BASE},
    {"backoff-cap", required_argument, 0, OPT_BACKOFF_CAP},
    {"max-retry-after", required_argument, 0, OPT_MAX_RETRY_AFTER},
    {"seed", required_argument, 0, OPT_SEED},
    {"cacert", required_argument, 0, OPT_CACERT},
    {"sensitive-header", required_argument, 0, OPT_SENSITIVE},
    {"with-meta", no_argument, 0, OPT_WITH_META},
    {"state", required_argument, 0, OPT_STATE},
    {"stats", required_argument, 0, OPT_STATS},
    {"restart", no_argument, 0, OPT_RESTART},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

/* --sensitive-header NAME: a field name (RFC 9110 token), added to the
 * comma-separated list in run->cfg (after the spec's, on run's second
 * parse). Returns NULL, or what is wrong. */
static const char *add_sensitive_header(fetch_run *run, const char *name) {
  const char *old = run->cfg.sensitive_headers;
  size_t n = strlen(name), k = old ? strlen(old) : 0;
  if (!ft_token_valid(name, n))
    return "--sensitive-header wants a header name";
  char *list = malloc(k + n + 2);
  if (!list)
    return "out of memory";
  snprintf(list, k + n + 2, "%s%s%s", old ? old : "", old ? "," : "", name);
  free(run->sensitive);
  run->sensitive = list;
  run->cfg.sensitive_headers = list;
  return NULL;
}

/* Parse the options of fetch or run into run. Returns 0, 1 after --help,
 * or -1 after printing a usage error. */
static int parse_args(fetch_run *run, int argc, char **argv) {
  ft_config *c = &run->cfg;
  const char *cmd = run->is_run ? "run" : "fetch";
  double d;
  int opt;
  optind = 0; /* GNU: start afresh (run parses twice) */
  while ((opt = getopt_long(argc, argv, "o:qH:A:c:h", fetch_opts, NULL)) !=
         -1) {
    const char *a = optarg;
    const char *bad = NULL;
    char why[256];
    switch (opt) {
    case 'o':
      run->out_path = a;
      break;
    case OPT_ORDERED:
      run->ordered = 1;
      break;
    case OPT_NO_BODY:
      run->record_flags |= FT_RECORD_NO_BODY;
      break;
    case OPT_NO_HEADERS:
      run->record_flags |= FT_RECORD_NO_HEADERS;
      break;
    case 'q':
      run->quiet = 1;
      break;
    case OPT_PROGRESS:
      run->progress = 1;
      break;
    case 'H': {
      if (ft_header_check(a, strlen(a), why, sizeof(why)) != 0) {
        bad = why; /* a malformed or refused header (request.h) */
        break;
      }
      struct curl_slist *n = curl_slist_append(run->extra_headers, a);
      if (!n)
        bad = "out of memory";
      else
        run->extra_headers = n;
      break;
    }
    case 'A':
      c->user_agent = a;
      break;
    case OPT_COMPRESSED:
      c->compressed = 1;
      break;
    case OPT_TIMEOUT:
      if (parse_double(a, 0.001, 1e6, &d))
        bad = "--timeout wants seconds > 0";
      else
        c->timeout_ms = (long)(d * 1000);
      break;
    case OPT_CONNECT_TIMEOUT:
      if (parse_double(a, 0.001, 1e6, &d))
        bad = "--connect-timeout wants seconds > 0";
      else
        c->connect_timeout_ms = (long)(d * 1000);
      break;
    case OPT_MAX_REDIRECTS:
      if (parse_double(a, 0, 1000, &d) || d != (long)d)
        bad = "--max-redirects wants a whole number 0..1000";
      else
        c->max_redirects = (long)d;
      break;
    case OPT_MAX_BODY:
      if (parse_size(a, &c->max_body))
        bad = "--max-body wants a size such as 65536, 512K, 64M or 1G";
      break;
    case 'c':
      if (parse_double(a, 1, 100000, &d) || d != (int)d)
        bad = "--concurrency wants a whole number 1..100000";
      else
        c->concurrency = (int)d;
      break;
    case OPT_HOST_CONN:
      if (parse_double(a, 1, 100000, &d) || d != (int)d)
        bad = "--host-connections wants a whole number >= 1";
      else
        c->host_connections = (int)d;
      break;
    case OPT_RPS:
      if (parse_double(a, 0.000001, 1e9, &c->rps))
        bad = "--rps wants a number > 0";
      break;
    case OPT_WINDOW:
      if (parse_double(a, 1, 86400000, &c->window_ms))
        bad = "--window wants milliseconds >= 1";
      break;
    case OPT_RETRIES:
      if (parse_double(a, 0, 1000, &d) || d != (int)d)
        bad = "--retries wants a whole number 0..1000";
      else
        c->retry.max_retries = (int)d;
      break;
    case OPT_RETRY_ON:
      if (ft_retry_parse_statuses(&c->retry, a) != 0)
        bad = "--retry-on wants statuses like 429,503";
      break;
    case OPT_BACKOFF_BASE:
      if (parse_double(a, 0, 3600000, &d))
        bad = "--backoff-base wants milliseconds";
      else
        c->retry.base_ns = (uint64_t)(d * 1e6);
      break;
    case OPT_BACKOFF_CAP:
      if (parse_double(a, 0, 86400000, &d))
        bad = "--backoff-cap wants milliseconds";
      else
        c->retry.cap_ns = (uint64_t)(d * 1e6);
      break;
    case OPT_MAX_RETRY_AFTER:
      if (parse_double(a, 0, 86400 * 30, &d))
        bad = "--max-retry-after wants seconds";
      else
        c->retry.max_retry_after_ns = (uint64_t)(d * 1e9);
      break;
    case OPT_SEED:
      if (parse_double(a, 1, 1e18, &d))
        bad = "--seed wants a number >= 1";
      else
        c->seed = (uint64_t)d;
      break;
    case OPT_CACERT:
      if (access(a, R_OK) != 0)
        bad = "--cacert wants a readable PEM file";
      else
        c->ca_file = a;
      break;
    case OPT_SENSITIVE:
      bad = add_sensitive_header(run, a);
      break;
    case OPT_WITH_META:
      if (!run->is_run)
        bad = "--with-meta is an option of `fetchtree run`";
      run->with_meta = 1;
      break;
    case OPT_STATE:
      if (!run->is_run)
        bad = "--state is an option of `fetchtree run`";
      run->state_path = a;
      break;
    case OPT_STATS:
      run->stats_path = a;
      break;
    case OPT_RESTART:
      if (!run->is_run)
        bad = "--restart is an option of `fetchtree run`";
      run->restart = 1;
      break;
    case 'h':
      if (run->is_run)
        usage_run(stdout);
      else
        usage_fetch(stdout);
      return 1;
    default:
      fprintf(stderr, "fetchtree %s: try 'fetchtree %s --help'\n", cmd, cmd);
      return -1;
    }
    if (bad) {
      fprintf(stderr, "fetchtree %s: %s (got '%s')\n", cmd, bad, a ? a : "");
      return -1;
    }
  }
  return 0;
}

/* ---- alarms, storage commits, the stats tree ------------------------------ */

static void on_alarm_closed(uv_handle_t *h) { free(h->data); }

static void alarm_remove(run_alarm *a) {
  if (a->prev)
    a->prev->next = a->next;
  else
    a->run->alarms = a->next;
  if (a->next)
    a->next->prev = a->prev;
  uv_close((uv_handle_t *)&a->timer, on_alarm_closed);
}

static void on_alarm(uv_timer_t *t) {
  run_alarm *a = t->data;
  fetch_run *run = a->run;
  uint64_t id = a->id;
  char err[4096];
  alarm_remove(a);
  if (id != 0) {
    ft_engine_outside_work(run->engine, -1);
    if (!run->interrupted && !run->write_failed &&
        ft_script_alarm(run->script, id, err, sizeof(err)) != 0) {
      fprintf(stderr, "fetchtree run: internal error: %s\n", err);
      run->script_failed = 1;
    }
    check_script_output(run);
  }
  ft_engine_recheck(run->engine);
}

/* obj:after asks for an alarm (id 0: just look at the queues again soon,
 * since limits changed; never a call back into the engine from Lua). */
static void set_alarm(void *ud, uint64_t id, uint64_t ms) {
  fetch_run *run = ud;
  run_alarm *a = calloc(1, sizeof(*a));
  if (!a) {
    fail_run(run, "out of memory");
    return;
  }
  a->id = id;
  a->run = run;
  uv_timer_init(ft_engine_loop(run->engine), &a->timer);
  a->timer.data = a;
  a->next = run->alarms;
  if (a->next)
    a->next->prev = a;
  run->alarms = a;
  if (id != 0)
    ft_engine_outside_work(run->engine, 1);
  uv_timer_start(&a->timer, on_alarm, ms, 0);
}

static void hold_run(void *ud, int delta) {
  fetch_run *run = ud;
  ft_engine_outside_work(run->engine, delta);
  if (delta < 0)
    ft_engine_recheck(run->engine);
}

static void alarms_cancel(fetch_run *run) {
  while (run->alarms) {
    if (run->alarms->id != 0 && run->engine)
      ft_engine_outside_work(run->engine, -1);
    alarm_remove(run->alarms);
  }
}

/* Notes which bytes the output holds before off, so that a resumed run can
 * tell its own output from another file: the FNV-1a hash of the (up to)
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
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)data[i];
    h *= 0x100000001b3ull;
  }
  snprintf(buf, len, "%lld:%016llx", (long long)off, (unsigned long long)h);
}

/* Hands every record written so far to the output and learns how each
 * write went: Lua's (check_script_output), then a flush of the stream's
 * buffer. glibc drops a buffer it failed to write and a later fflush
 * succeeds, so the error flag counts too. The first failure ends the run
 * (write_failed). Returns run->write_failed. */
static int flush_records(fetch_run *run) {
  check_script_output(run);
  errno = 0;
  if (!run->write_failed && fflush(run->out) != 0)
    write_failed(run, errno);
  if (!run->write_failed && ferror(run->out))
    write_failed(run, EIO);
  return run->write_failed;
}

/* Make everything so far durable: the output first (written and synced),
 * then the database that says how much of it counts (a crash in between
 * leaves records past the committed offset, which the next run cuts off and
 * redoes). This is the one place that decides what a crash-safe run
 * commits. After a failed write of records the output holds less than was
 * handed to it, so nothing is committed again (the state stays at the last
 * good commit, the next run cuts back to it): returns 1, the run already
 * ending with "writing records: ...". After a failed sync or checkpoint,
 * likewise, with why on stderr once: returns -1. Without a journal: commits
 * storage (0, or a negative code). */
static int checkpoint(fetch_run *run, int finished) {
  if (!run->journal)
    return ft_script_commit(run->script);
  if (run->state_failed)
    return run->write_failed ? 1 : -1;
  if (flush_records(run)) {
    ft_script_journal_abandon(run->script, "writing records failed");
    run->state_failed = 1;
    return 1;
  }
  char tail[40] = "";
  int fd = fileno(run->out);
  struct stat sb;
  off_t off = 0;
  if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
    off = ftello(run->out);
    /* a file system that cannot sync (EINVAL, ENOSYS) is no failure */
    if (off < 0 ||
        (fdatasync(fd) != 0 && errno != EINVAL && errno != ENOSYS)) {
      write_failed(run, off < 0 ? EIO : errno);
      ft_script_journal_abandon(run->script, "syncing the records failed");
      goto failed;
    }
    output_tail(fd, (int64_t)off, tail, sizeof(tail));
  } /* else a pipe or device: no offset to keep (execute warns) */
  if (ft_script_checkpoint(run->script, (int64_t)off, tail, finished) == 0)
    return 0;
failed:
  run->state_failed = 1;
  fprintf(stderr,
          "fetchtree run: state: %s; run the same command again to resume"
          " from there\n",
          ft_script_journal_error(run->script));
  return -1;
}

/* Every 200 ms, a checkpoint. One that fails for the state's sake ends the
 * run (a failed write of records has ended it already). */
static void on_commit_timer(uv_timer_t *t) {
  fetch_run *run = t->data;
  if (checkpoint(run, 0) < 0) {
    run->script_failed = 1;
    ft_engine_stop(run->engine);
  }
}

/* The top of the object tree for the summary: objects one and two levels
 * down, most requests first, ten at most. */
typedef struct top_objects {
  ft_object *o[10];
  int n;
} top_objects;

static void collect_top(ft_object *o, void *ud) {
  top_objects *t = ud;
  if (o->depth < 1 || o->depth > 2 || o->stats.requests == 0)
    return;
  int i = t->n < 10 ? t->n++ : 9;
  if (i == 9 && t->n == 10 && t->o[9] &&
      t->o[9]->stats.requests >= o->stats.requests)
    return;
  t->o[i] = o;
  while (i > 0 && t->o[i - 1]->stats.requests < t->o[i]->stats.requests) {
    ft_object *x = t->o[i - 1];
    t->o[i - 1] = t->o[i];
    t->o[i] = x;
    i--;
  }
}

static void print_tree_top(fetch_run *run) {
  top_objects t;
  memset(&t, 0, sizeof(t));
  ft_tree_foreach(ft_engine_tree(run->engine), collect_top, &t);
  if (t.n == 0)
    return;
  fprintf(stderr, "  objects (%zu):\n", ft_tree_count(ft_engine_tree(run->engine)));
  for (int i = 0; i < t.n; i++) {
    const ft_obj_stats *st = &t.o[i]->stats;
    fprintf(stderr, "    %-32s %llu requests, %llu ok, %llu retries, p50 %.2f ms\n",
            t.o[i]->name, (unsigned long long)st->requests,
            (unsigned long long)st->ok,
            (unsigned long long)st->retries,
            ft_obj_stats_percentile(st, 0.5));
  }
}

static int write_stats(fetch_run *run) {
  ft_buf b = {0};
  ft_stats_tree_json(ft_engine_tree(run->engine), &b);
  ft_buf_putc(&b, '\n');
  FILE *f = fopen(run->stats_path, "w");
  int ok = f && !b.oom && fwrite(b.data, 1, b.len, f) == b.len;
  if (f && fclose(f) != 0)
    ok = 0;
  if (!ok)
    fprintf(stderr, "fetchtree: %s: %s\n", run->stats_path, strerror(errno));
  ft_buf_free(&b);
  return ok ? 0 : -1;
}

/* File descriptors a run needs besides its connections: standard streams,
 * the loop's, the state database and its journal, input and output files,
 * name resolutions in progress. Each connection takes one, and curl keeps
 * up to twice the concurrency open (idle ones for reuse). */
enum { FD_RESERVE = 32 };

/* Caps the concurrency to what the open-files limit (raised to its hard
 * limit in main) can serve, with a warning: beyond it, connections fail
 * for want of a descriptor, which curl reports as a failed connect. */
static void cap_concurrency(fetch_run *run) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return;
  rlim_t need = 2 * (rlim_t)run->cfg.concurrency + FD_RESERVE;
  if (rl.rlim_cur >= need)
    return;
  int c = rl.rlim_cur > FD_RESERVE + 2 ? (int)((rl.rlim_cur - FD_RESERVE) / 2)
                                       : 1;
  fprintf(stderr, "fetchtree: warning: the open files limit (ulimit -n %llu) "
                  "allows a concurrency of %d, not %d: using %d\n",
          (unsigned long long)rl.rlim_cur, c, run->cfg.concurrency, c);
  run->cfg.concurrency = c;
  if (run->cfg.host_connections > c)
    run->cfg.host_connections = c;
}

/* Opens the output: --out FILE (for update in a crash-safe run, which
 * keeps what the last run committed), else stdout; with a 1 MB buffer.
 * Returns 0, or the exit code (2) after saying why. */
static int open_output(fetch_run *run) {
  if (run->out_path) {
    /* a resumed run keeps what the last one committed */
    run->out = fopen(run->out_path, run->journal ? "r+" : "w");
    if (!run->out && run->journal && errno == ENOENT)
      run->out = fopen(run->out_path, "w");
    if (!run->out) {
      fprintf(stderr, "fetchtree: %s: %s\n", run->out_path, strerror(errno));
      run->out = stdout;
      return 2;
    }
  }
  /* glibc ignores the size when setvbuf is given no buffer, and writes in
   * st_blksize pieces (4 KB: 5,500 write calls per 60,000 records) */
  run->out_buf = malloc(1 << 20);
  setvbuf(run->out, run->out_buf, _IOFBF, run->out_buf ? 1 << 20 : BUFSIZ);
  return 0;
}

/* A crash-safe run: cuts what the last run wrote past its last checkpoint,
 * once sure the output is the one it wrote (never pads a shorter or other
 * file); an output that is not a regular file cannot be cut, which a
 * resumed run warns of. Returns 0, or the exit code (1) after saying why. */
static int resume_output(fetch_run *run) {
  int fd = fileno(run->out);
  struct stat sb;
  if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
    char tail[40] = "";
    if (run->resume_tail[0] && sb.st_size >= run->resume_offset)
      output_tail(fd, run->resume_offset, tail, sizeof(tail));
    if (sb.st_size < run->resume_offset ||
        (run->resume_tail[0] && strcmp(tail, run->resume_tail) != 0)) {
      fprintf(stderr,
              "fetchtree run: the output (%lld bytes) is not the one the "
              "run being resumed wrote (%lld bytes of records): resume "
              "with the same file, by --out FILE or >> (never >, which "
              "empties it), or start again with --restart\n",
              (long long)sb.st_size, (long long)run->resume_offset);
      return 1;
    }
    if (ftruncate(fd, (off_t)run->resume_offset) != 0 ||
        fseeko(run->out, (off_t)run->resume_offset, SEEK_SET) != 0) {
      fprintf(stderr, "fetchtree run: cannot truncate the output: %s\n",
              strerror(errno));
      return 1;
    }
  } else if (run->resume_offset > 0) {
    fprintf(stderr, "fetchtree run: records go to a pipe, so the records of "
                    "the last unsaved moments of the previous run may "
                    "appear again\n");
  }
  return 0;
}

/* Makes on loop all a run needs before its engine starts: the reorder
 * window (--ordered), the engine (its concurrency capped to the open-files
 * limit) with src and done, the script's hooks, objects and commit timer,
 * the stop handle and the SIGINT handler, the progress line. Returns 0, or
 * -1 after saying why; either way end_run closes what was made. */
static int start_run(fetch_run *run, uv_loop_t *loop, ft_source_fn src,
                     ft_done_fn done) {
  if (run->ordered) {
    run->window_size = (uint64_t)run->cfg.concurrency * 16;
    if (run->window_size < 4096)
      run->window_size = 4096;
    run->window = calloc(run->window_size, sizeof(*run->window));
    if (!run->window) {
      fprintf(stderr, "fetchtree: out of memory\n");
      return -1;
    }
  }
  cap_concurrency(run);
  int e = ft_engine_new(&run->engine, loop, &run->cfg);
  if (e != 0) {
    fprintf(stderr, "fetchtree: %s\n", ft_strerror(e));
    return -1;
  }
  ft_engine_set_source(run->engine, src, run);
  ft_engine_set_done(run->engine, done, run);
  if (run->script) {
    char err[512];
    ft_script_set_tree(run->script, ft_engine_tree(run->engine));
    ft_script_set_alarm_fn(run->script, set_alarm, run);
    ft_script_set_hold_fn(run->script, hold_run, run);
    /* ft.get in a handler: its engine runs on this loop, and yields */
    ft_lua_engine_use_loop(ft_script_lua(run->script), loop);
    if (ft_script_crawl_objects(run->script, ft_engine_tree(run->engine), err,
                                sizeof(err)) != 0) {
      fprintf(stderr, "fetchtree run: %s: %s\n", run->script_path, err);
      return -1;
    }
    uv_timer_init(loop, &run->commit_timer);
    run->commit_timer.data = run;
    uv_timer_start(&run->commit_timer, on_commit_timer, 200, 200);
    uv_unref((uv_handle_t *)&run->commit_timer);
    run->commit_timer_on = 1;
  }

  uv_async_init(loop, &run->stop, on_stop);
  run->stop.data = run;
  uv_unref((uv_handle_t *)&run->stop);
  run->stop_on = 1;
  sigint_run = run;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigint_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  if (!run->quiet && (run->progress || isatty(2))) {
    uv_timer_init(loop, &run->progress_timer);
    run->progress_timer.data = run;
    uv_timer_start(&run->progress_timer, on_progress, 250, 250);
    uv_unref((uv_handle_t *)&run->progress_timer);
    run->progress = 1;
    run->progress_on = 1;
  } else {
    run->progress = 0;
  }
  return 0;
}

/* After the engine has run: the last records out, the final checkpoint
 * (the crawl finished only if nothing failed and no Ctrl-C came), the
 * summary, --stats. Returns the exit code. */
static int finish_run(fetch_run *run) {
  if (run->got_sigint)
    run->interrupted = 1; /* even if the run ended before the loop saw it */
  alarms_cancel(run);
  flush_records(run);
  if (run->script &&
      checkpoint(run, !run->interrupted && !run->start_failed &&
                          !run->script_failed && !run->failed &&
                          !run->write_failed && !run->in.failed) < 0) {
    fprintf(stderr, "fetchtree: could not save the state\n");
    run->script_failed = 1;
  }
  double secs = (double)(uv_hrtime() - run->started_ns) / 1e9;

  if (run->progress) {
    uv_timer_stop(&run->progress_timer);
    fputs("\r\033[K", stderr);
  }
  if (!run->quiet) {
    ft_stats_print(&run->stats, stderr, secs);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
      fprintf(stderr, "  peak RSS %.1f MB\n", (double)ru.ru_maxrss / 1024.0);
    if (run->is_run)
      print_tree_top(run);
    if (run->interrupted)
      fprintf(stderr, "fetchtree: interrupted after %llu records\n",
              (unsigned long long)records_written(run));
  }
  if (run->stats_path && write_stats(run) != 0)
    run->write_failed = EIO;
  if (run->write_failed) {
    fprintf(stderr, "fetchtree: writing records: %s\n",
            strerror(run->write_failed));
    return 1;
  }
  if (run->interrupted)
    return 130;
  return run->start_failed || run->script_failed || run->failed ||
                 run->in.failed
             ? 1
             : 0;
}

/* Undoes start_run, whether it got to the end or not (closing only what
 * was initialised), lets the loop (if loop_ok) close its handles, and
 * closes the output unless it is stdout. */
static void end_run(fetch_run *run, uv_loop_t *loop, int loop_ok) {
  alarms_cancel(run);
  if (run->commit_timer_on)
    uv_close((uv_handle_t *)&run->commit_timer, NULL);
  if (run->progress_on)
    uv_close((uv_handle_t *)&run->progress_timer, NULL);
  if (run->script) /* Lua engines on this loop go before it */
    ft_lua_engine_release_loop(ft_script_lua(run->script));
  if (run->engine) {
    signal(SIGINT, SIG_DFL);
    sigint_run = NULL;
    if (run->stop_on)
      uv_close((uv_handle_t *)&run->stop, NULL);
    ft_engine_free(run->engine);
    run->engine = NULL;
  }
  if (loop_ok) {
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
  }
  if (run->out && run->out != stdout) {
    fclose(run->out);
    free(run->out_buf); /* stdout keeps its buffer until the process ends */
    run->out_buf = NULL;
  }
}

/* A run's whole life: open the output (a crash-safe run cuts it back to
 * its last commit), start the engine over run's source, run it until it is
 * done, stopped or interrupted, then the final checkpoint and the summary,
 * and close everything. Returns the exit code. */
static int execute(fetch_run *run, ft_source_fn src, ft_done_fn done) {
  int rc = open_output(run);
  if (rc != 0)
    return rc;
  if (run->journal && (rc = resume_output(run)) != 0)
    return rc;
  if (run->script)
    ft_script_set_output(run->script, run->out, run->record_flags);
  uv_loop_t loop;
  int loop_ok = uv_loop_init(&loop) == 0;
  rc = 1;
  if (loop_ok && start_run(run, &loop, src, done) == 0) {
    run->started_ns = uv_hrtime();
    ft_engine_run(run->engine);
    rc = finish_run(run);
  }
  end_run(run, &loop, loop_ok);
  return rc;
}

static void run_cleanup(fetch_run *run) {
  if (run->window) {
    for (uint64_t i = 0; i < run->window_size; i++)
      free(run->window[i].data);
    free(run->window);
  }
  ft_script_free(run->script);
  curl_slist_free_all(run->extra_headers);
  free(run->sensitive);
  ft_buf_free(&run->rec);
  free(run->in.line);
  if (run->in.f && run->in.f != stdin)
    fclose(run->in.f);
}

static int cmd_fetch(int argc, char **argv) {
  static char *stdin_only[] = {"-", NULL};
  int rc = 2;
  fetch_run run;
  memset(&run, 0, sizeof(run));
  ft_config_default(&run.cfg);
  run.out = stdout;

  int p = parse_args(&run, argc, argv);
  if (p != 0) {
    rc = p > 0 ? 0 : 2;
    goto cleanup;
  }
  run.in.files = optind < argc ? argv + optind : stdin_only;
  /* every file named must be there to read before anything is fetched;
   * a directory opens, but reads as an error (EISDIR) */
  for (char **f = run.in.files; *f; f++) {
    struct stat sb;
    if (strcmp(*f, "-") == 0)
      continue;
    if (access(*f, R_OK) != 0 || stat(*f, &sb) != 0 ||
        (S_ISDIR(sb.st_mode) && (errno = EISDIR))) {
      fprintf(stderr, "fetchtree fetch: %s: %s\n", *f, strerror(errno));
      goto cleanup;
    }
  }
  rc = execute(&run, source, on_done);
cleanup:
  run_cleanup(&run);
  return rc;
}

/* `fetchtree run SCRIPT.lua [options] [-- args]`: the options are parsed
 * twice, before loading the script (to find it and catch usage errors) and
 * after (so that they override what the spec says). */
/* A crash-safe run (--state, or the spec's state): opens its journal and
 * notes what the last run committed of the output. Returns -1 to go on
 * with the run, else the exit code: 0 when the crawl has finished, 1 or 2
 * after saying why. */
static int open_state(fetch_run *run) {
  char err[4096];
  if (!run->state_path && !run->info.has_state) {
    if (!run->restart)
      return -1;
    fputs("fetchtree run: --restart goes with --state\n", stderr);
    return 2;
  }
  ft_journal_info ji;
  if (ft_script_journal_open(run->script, run->restart, &ji, err,
                             sizeof(err)) != 0) {
    fprintf(stderr, "fetchtree run: state: %s\n", err);
    return 1;
  }
  if (ji.finished) {
    if (!run->quiet)
      fprintf(stderr, "fetchtree run: this crawl has finished (its state "
                      "says so); --restart runs it again\n");
    return 0;
  }
  run->journal = 1;
  run->resume_offset = ji.out_offset;
  snprintf(run->resume_tail, sizeof(run->resume_tail), "%s", ji.out_tail);
  if (ji.resuming && !run->quiet)
    fprintf(stderr, "fetchtree run: resuming: %lld requests pending, %lld "
                    "bytes of records kept\n",
            (long long)ji.pending, (long long)ji.out_offset);
  return -1;
}

static int cmd_run(int argc, char **argv) {
  int rc = 2;
  char err[4096];
  fetch_run run;
  memset(&run, 0, sizeof(run));
  ft_config_default(&run.cfg);
  run.out = stdout;
  run.is_run = 1;

  /* the script's own arguments follow "--" */
  int nopts = argc;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      nopts = i;
      run.script_args = argv + i + 1;
      run.nscript_args = argc - i - 1;
      break;
    }
  }
  char **opts = calloc((size_t)nopts + 1, sizeof(*opts));
  if (!opts)
    goto cleanup;
  memcpy(opts, argv, (size_t)nopts * sizeof(*opts));
  int p = parse_args(&run, nopts, opts);
  if (p != 0) {
    rc = p > 0 ? 0 : 2;
    goto cleanup;
  }
  if (optind >= nopts) {
    fputs("fetchtree run: which script? (fetchtree run SCRIPT.lua)\n", stderr);
    goto cleanup;
  }
  if (optind + 1 < nopts) {
    fprintf(stderr, "fetchtree run: unexpected argument '%s' (script "
                    "arguments go after --)\n", opts[optind + 1]);
    goto cleanup;
  }
  run.script_path = opts[optind];

  rc = 1;
  if (ft_script_new(&run.script, err, sizeof(err)) != 0) {
    fprintf(stderr, "fetchtree run: %s\n", err);
    goto cleanup;
  }
  if (ft_script_crawl_load(run.script, run.script_path, run.script_args,
                           run.nscript_args, run.with_meta, &run.cfg,
                           &run.info, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    goto cleanup;
  }
  if (run.state_path && /* --state wins over the spec's state */
      ft_script_set_state(run.script, run.state_path) != 0)
    goto cleanup;
  memcpy(opts, argv, (size_t)nopts * sizeof(*opts));
  curl_slist_free_all(run.extra_headers); /* collected again */
  run.extra_headers = NULL;
  if (parse_args(&run, nopts, opts) != 0)
    goto cleanup;
  if ((rc = open_state(&run)) < 0)
    rc = execute(&run, run_source, run_done);
cleanup:
  free(opts);
  run_cleanup(&run);
  return rc;
}

/* `fetchtree lua FILE [args]`: run a Lua program with fetchtree loaded,
 * as a plain luajit would with the module. */
static int cmd_lua(int argc, char **argv) {
  char err[4096];
  ft_script *s = NULL;
  if (argc < 2 || strcmp(argv[1], "--help") == 0) {
    fputs("usage: fetchtree lua FILE [args]   run a Lua program with "
          "ft = require \"fetchtree\"\n", argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (ft_script_new(&s, err, sizeof(err)) != 0) {
    fprintf(stderr, "fetchtree lua: %s\n", err);
    return 1;
  }
  int rc = ft_script_exec(s, argv[1], argv + 2, argc - 2, err, sizeof(err));
  if (rc != 0)
    fprintf(stderr, "fetchtree lua: %s\n", err);
  fflush(stdout);
  ft_script_free(s);
  return rc != 0 ? 1 : 0;
}

/* Opens /dev/null on each of the standard descriptors that is closed: a
 * process started with one closed (`>&-`) would otherwise get it back from
 * its first open, and libuv aborts when it closes a descriptor below 3;
 * records or messages would also land in whatever file took the number.
 * Returns 0, or -1 when one cannot be opened. */
static int open_std_fds(void) {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
      continue;
    /* the lowest free number, so fd itself: those below are open */
    int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (n != fd) {
      if (n >= 0)
        close(n);
      return -1;
    }
  }
  return 0;
}

/* Raises the soft open-files limit to the hard one: a run with many
 * connections needs a descriptor for each (cap_concurrency warns when
 * even the hard limit is too low). */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  if (open_std_fds() != 0)
    return 1; /* nothing to say it on */
  /* a failed write of records is then EPIPE, reported, not a silent death */
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
#ifdef __GLIBC__
  /* libcurl frees a transfer's 16 KB download buffer when it ends and
   * mallocs it again when the next starts; with glibc's default 128 KB trim
   * threshold a batch of endings gave the top of the heap back to the
   * kernel and the next batch faulted it in again (1,300 brk calls and five
   * times the page faults of curl's own loop per 60,000 requests). The
   * process is the allocator's only user: keep up to 32 MB for reuse. */
  mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
#endif
  if (argc < 2 && !(isatty(0) && isatty(1))) {
    usage(stderr);
    return 2;
  }
  /* on a terminal, fetchtree alone opens the REPL */
  const char *cmd = argc < 2 ? "repl" : argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("fetchtree %s (%s, libuv %s)\n", FT_VERSION, curl_version(),
           uv_version_string());
    return 0;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
      strcmp(cmd, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "fetchtree: cannot initialise libcurl\n");
    return 1;
  }
  int rc;
  if (strcmp(cmd, "fetch") == 0) {
    rc = cmd_fetch(argc - 1, argv + 1);
  } else if (strcmp(cmd, "run") == 0) {
    rc = cmd_run(argc - 1, argv + 1);
  } else if (strcmp(cmd, "repl") == 0) {
    rc = ft_repl_main(argc - 1, argv + 1);
  } else if (strcmp(cmd, "lua") == 0) {
    rc = cmd_lua(argc - 1, argv + 1);
  } else {
    fprintf(stderr, "fetchtree: unknown command '%s'\n", cmd);
    usage(stderr);
    rc = 2;
  }
  curl_global_cleanup();
  return rc;
}
