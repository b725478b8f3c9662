/* crawl.h - one run of fetchtree (ft_crawl): what `fetchtree fetch`, `fetchtree run`, ft.run and the REPL all drive.
 *
 * A crawl owns everything a run is made of: the engine and its object
 * tree, the script engine (a Lua state running fetchtree.crawl), the state
 * (the frontier, seen set and storage of a crash-safe run), the output of
 * records (its resume truncation, flushes and checkpoints), obj:after
 * alarms, the count of handlers that hold the run open, Ctrl-C and the
 * statistics. Its callers keep only what is theirs: option parsing, the
 * terminal (progress line, summary) and, for ft.run, the Lua values.
 *
 *   ft_crawl_new(&c, &spec, &settings, err, errlen);  load the spec
 *   ft_crawl_get_settings(c)->cfg...                  (options win over it)
 *   ft_crawl_run(c);                                    until done or stopped
 *   ft_crawl_get_stats(c, &st);                             the summary's figures
 *   ft_crawl_free(c);
 *
 * The design note (who owns what, a request's way from `start` to its
 * record, where a second state backend plugs in) is at the top of crawl.c. */
#ifndef FT_CRAWL_H
#define FT_CRAWL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "engine.h"
#include "script.h"
#include "stats.h"

struct curl_slist;

typedef struct ft_crawl ft_crawl;

/* Where a crawl's requests come from. */
typedef enum ft_crawl_kind {
  /* `fetchtree fetch`: the lines of files (a URL or a JSON request each),
   * one default record per line; no script. */
  FT_CRAWL_LIST,
  /* `fetchtree run`: a crawl script, loaded into a script engine the
   * crawl makes and owns. */
  FT_CRAWL_SCRIPT,
  /* ft.run: a crawl instance already loaded in a caller's script engine
   * (its closures live in the caller's lua_State). */
  FT_CRAWL_LOADED,
} ft_crawl_kind;

typedef struct ft_crawl_spec {
  ft_crawl_kind kind;
  /* FT_CRAWL_LIST: NULL-terminated file names ("-": standard input),
   * read lazily as the engine has room */
  char **files;
  /* FT_CRAWL_SCRIPT: the script and its arguments (arg[1..]) */
  const char *path;
  char **args;
  int nargs;
  /* FT_CRAWL_LOADED: the caller's script engine, whose crawl instance
   * the crawl drives (borrowed: the caller frees it, after the crawl), and
   * the function that applies the instance's settings to cfg and info
   * (called once by ft_crawl_new; 0, or a negative code with err set). */
  ft_script *script;
  int (*load)(void *ud, ft_config *cfg, ft_crawl_info *info, char *err,
              size_t errlen);
  void *load_ud;
} ft_crawl_spec;

/* How one run goes: what a command line or ft.run's options say. Strings
 * and lists are borrowed: they must outlive the crawl. */
typedef struct ft_crawl_settings {
  ft_config cfg;          /* the engine's; a script's spec applies over it */
  const char *name;       /* names the run in messages ("fetchtree run") */
  uv_loop_t *loop;        /* run on this loop (ft.run: the Lua state's);
                             NULL: a loop of the crawl's own */
  const char *out_path;   /* records into this file (kept up to the last
                             checkpoint when a crash-safe run resumes) */
  FILE *out;              /* else into this stream; NULL: stdout */
  int script_records;     /* else no output at all: the script takes every
                             record (ft.run's out function), and a
                             crash-safe run keeps no output offset */
  int record_flags;       /* FT_RECORD_NO_BODY, FT_RECORD_NO_HEADERS */
  int ordered;            /* FT_CRAWL_LIST: records in input order */
  int with_meta;          /* FT_CRAWL_SCRIPT: _url, _status... in records */
  const char *state_path; /* the state database; wins over the spec's */
  int restart;            /* forget what the state holds of an earlier run */
  struct curl_slist *extra_headers; /* added to every request */
  int quiet;              /* no notes on stderr (resuming, finished) */
  int catch_sigint;       /* while running, Ctrl-C stops the run (and a
                             second one ends the process) */
  /* called every progress_ms (0: never) while the run runs */
  void (*progress)(void *ud, ft_crawl *c);
  unsigned progress_ms;
  void *progress_ud;
  /* asked at every turn of the loop and before an error is reported: a
   * nonzero answer stops the run as interrupted (the REPL's Ctrl-C) */
  int (*interrupted)(void *ud);
  void *interrupted_ud;
} ft_crawl_settings;

/* A run's figures, for the progress line, the summary and ft.run. */
typedef struct ft_crawl_stats {
  ft_stats stats;        /* final outcomes by status and error kind */
  uint64_t records;      /* records written */
  uint64_t taken;        /* requests taken from the source so far */
  int source_done;       /* FT_CRAWL_LIST: the input is read to its end */
  double elapsed_s;      /* wall time of ft_crawl_run so far */
  int ran;               /* the engine ran (else the run could not start,
                            and said why) */
  int finished_before;   /* the state said the crawl had finished: no run */
  int interrupted;       /* stopped by ft_crawl_stop(c, 1) or Ctrl-C */
  int stopped;           /* ft_crawl_stop was called: a crash-safe run is
                            not marked finished */
  int write_errno;       /* the first failed write of records, or 0 */
  int failed;            /* start raised, fetchtree's own Lua failed, the
                            state could not be saved, an input could not
                            be read, memory ran out */
  const char *start_error; /* what start raised (with its traceback), or
                              NULL; valid until ft_crawl_free */
  const char *error;     /* the first other failure that ended the run or
                            kept it from starting, as said on stderr
                            (without the program's name), or NULL; valid
                            until ft_crawl_free */
} ft_crawl_stats;

/* Makes a crawl from spec and settings (both copied; what they point to
 * is borrowed). A script is loaded and run here (its spec's fields then
 * apply over settings->cfg); a list's files are opened later, by run.
 * Returns 0 with *out set, or a negative code with *out NULL and the
 * message in err ("file:line: message" for a script). */
int ft_crawl_new(ft_crawl **out, const ft_crawl_spec *spec,
                 const ft_crawl_settings *settings, char *err, size_t errlen);

/* The settings the run will use (cfg with the spec's fields applied), to
 * change between new and run: command-line options win over a spec's
 * fields. What they point to is borrowed, as at ft_crawl_new. */
ft_crawl_settings *ft_crawl_get_settings(ft_crawl *c);

/* Runs the crawl to its end: opens the state and the output (a crash-safe
 * run resumes, cutting the output back to its last checkpoint), starts the
 * engine over the crawl's source, and runs the loop until the source is
 * done and nothing is in flight, held or waiting for an alarm, or until
 * ft_crawl_stop; then the last records out and the final checkpoint (which
 * marks the crawl finished only when nothing failed and nobody stopped
 * it). Says what went wrong on stderr, as it goes.
 * Returns 0 when the crawl ran to its end, was stopped by
 * ft_crawl_stop(c, 0) or had finished before (ft_crawl_get_stats tells
 * which), FT_EINVAL when it could not start for a reason of usage
 * (--restart without a state, an output that cannot be opened), or
 * another negative code when it could not start or ended early:
 * ft_crawl_get_stats says why. Once per crawl. */
int ft_crawl_run(ft_crawl *c);

/* Ends the run soon: the source gives no more, what is in flight comes
 * back cancelled, handlers waiting are abandoned, and the final checkpoint
 * does not mark the crawl finished (the same command resumes it). With
 * interrupted, the run ends as interrupted (ft_crawl_run then returns a
 * negative code) and the Lua code running now, in a script engine of the
 * crawl's own, raises "interrupted". Safe from a signal handler and from
 * the crawl's own callbacks; a no-op outside ft_crawl_run. */
void ft_crawl_stop(ft_crawl *c, int interrupted);

/* The figures so far (during or after the run). */
void ft_crawl_get_stats(const ft_crawl *c, ft_crawl_stats *st);

/* The object tree (for the summary and --stats): valid from ft_crawl_run
 * until ft_crawl_free; NULL before. */
struct ft_tree *ft_crawl_tree(ft_crawl *c);

/* Frees the crawl and what it owns (a script engine it made, its loop,
 * the output it opened). NULL is a no-op. Not from inside the run. */
void ft_crawl_free(ft_crawl *c);

#endif
