/* cli.c - the fetchtree command line: options, the output's terminal (progress line, summary, --stats) and main.
 *
 * A run itself, `fetchtree fetch` (a list of requests) or `fetchtree run`
 * (a crawl script), is an ft_crawl (crawl.c): this file turns the options
 * into its spec and settings, runs it, and draws what the terminal shows. */
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

#include "crawl.h"
#include "engine.h"
#include "error.h"
#include "fetch.h"
#include "record.h"
#include "repl.h"
#include "request.h"
#include "script.h"
#include "settings.h"
#include "stats.h"
#include "stats_json.h"
#include "tree.h"

/* ---- a command's options ------------------------------------------------- */

/* What the command line says of one `fetch` or `run`: parse_args fills
 * it, crawl_settings turns it into the crawl's settings. */
typedef struct command {
  ft_config cfg;
  int is_run; /* `fetchtree run` (else `fetch`) */
  const char *out_path;
  int ordered;
  int record_flags;
  int quiet;
  int progress;
  struct curl_slist *extra_headers;
  char *sensitive; /* --sensitive-header names, comma-separated */
  int with_meta;
  const char *state_path; /* --state */
  const char *stats_path; /* --stats */
  int restart;            /* --restart */
} command;

/* ---- options ----------------------------------------------------------- */

/* The option lists come from the settings table (settings.c), so --help,
 * getopt and the checks cannot drift apart. */
static void usage_fetch(FILE *f) {
  fputs(
      "usage: fetchtree fetch [options] [FILE...]\n"
      "\n"
      "Fetch every request in FILEs (or standard input), one per line: a URL,\n"
      "or a JSON object {\"url\":..,\"method\":..,\"headers\":{..},\"body\":..,\"meta\":..}.\n"
      "Writes one JSON Lines record per input line; blank lines and lines whose\n"
      "first non-blank character is # (comments) are skipped.\n"
      "\n",
      f);
  ft_settings_usage(f, FT_PLACE_FETCH, 0);
}

static void usage_run(FILE *f) {
  fputs("usage: fetchtree run SCRIPT.lua [options] [-- script args]\n"
        "\n"
        "Run a crawl script: SCRIPT.lua returns a spec whose start(emit)\n"
        "generates requests and whose on_response(res, obj) turns each\n"
        "response into records and follow-up fetches. Records are written\n"
        "as JSON Lines. Options are those of `fetchtree fetch` (they override\n"
        "the spec's fields of the same meaning), and:\n",
        f);
  ft_settings_usage(f, FT_PLACE_RUN, FT_PLACE_FETCH);
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

/* getopt_long's table, made from the settings table: a long option's val
 * is OPT_BASE + its id, or its short letter. */
#define OPT_BASE 256
static struct option cli_opts[FT_S_COUNT + 1];
static char cli_short[2 * FT_S_COUNT + 2];

static void make_opts(void) {
  if (cli_opts[0].name)
    return;
  size_t n = 0, k = 0;
  cli_short[k++] = ':'; /* a missing argument returns ':' */
  for (size_t i = 0; i < ft_settings_count; i++) {
    const ft_setting *st = &ft_settings[i];
    if (!st->option || !(st->places & FT_PLACE_CLI))
      continue;
    int has_arg = st->type != FT_SETTING_BOOL;
    cli_opts[n].name = st->option;
    cli_opts[n].has_arg = has_arg ? required_argument : no_argument;
    cli_opts[n].flag = NULL;
    cli_opts[n].val = st->short_opt ? st->short_opt : OPT_BASE + (int)st->id;
    n++;
    if (st->short_opt) {
      cli_short[k++] = st->short_opt;
      if (has_arg)
        cli_short[k++] = ':';
    }
  }
}

/* The setting getopt_long's answer opt stands for, or NULL. */
static const ft_setting *opt_setting(int opt) {
  if (opt >= OPT_BASE && opt < OPT_BASE + FT_S_COUNT)
    return &ft_settings[opt - OPT_BASE];
  for (size_t i = 0; i < ft_settings_count; i++)
    if (ft_settings[i].short_opt && ft_settings[i].short_opt == opt)
      return &ft_settings[i];
  return NULL;
}

/* --sensitive-header NAME (checked): added to the comma-separated list in
 * run->cfg (after the spec's, on run's second parse). Returns NULL, or
 * what is wrong. */
static const char *add_sensitive_header(command *run, const char *name) {
  const char *old = run->cfg.sensitive_headers;
  size_t n = strlen(name), k = old ? strlen(old) : 0;
  char *list = malloc(k + n + 2);
  if (!list)
    return "out of memory";
  snprintf(list, k + n + 2, "%s%s%s", old ? old : "", old ? "," : "", name);
  free(run->sensitive);
  run->sensitive = list;
  run->cfg.sensitive_headers = list;
  return NULL;
}

/* An option getopt does not know (or one without its argument): says so,
 * with the nearest known option. */
static void unknown_option(const char *cmd, int opt, char **argv) {
  const char *arg = argv[optind - 1];
  if (opt == ':') {
    fprintf(stderr, "fetchtree %s: %s: wants a value\n", cmd, arg);
  } else if (strncmp(arg, "--", 2) == 0) {
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg + 2, "="), arg + 2);
    const char *near = ft_settings_nearest(name, FT_PLACE_CLI, 1);
    if (near)
      fprintf(stderr, "fetchtree %s: unknown option '--%s' (did you mean "
              "'--%s'?)\n", cmd, name, near);
    else
      fprintf(stderr, "fetchtree %s: unknown option '--%s'\n", cmd, name);
  } else {
    fprintf(stderr, "fetchtree %s: unknown option '-%c'\n", cmd, optopt);
  }
  fprintf(stderr, "fetchtree %s: try 'fetchtree %s --help'\n", cmd, cmd);
}

/* Parse the options of fetch or run into run, each checked against the
 * settings table as a spec field or engine.new's would be. Returns 0, 1
 * after --help, or -1 after printing a usage error:
 * "fetchtree fetch: --concurrency: must be a whole number from 1 to
 * 100000, got 2.7". */
static int parse_args(command *run, int argc, char **argv) {
  ft_config *c = &run->cfg;
  const char *cmd = run->is_run ? "run" : "fetch";
  int opt;
  make_opts();
  optind = 0; /* GNU: start afresh (run parses twice) */
  opterr = 0; /* unknown_option says it */
  while ((opt = getopt_long(argc, argv, cli_short, cli_opts, NULL)) != -1) {
    const char *a = optarg;
    const ft_setting *st = opt_setting(opt);
    const char *bad = NULL;
    char why[512];
    ft_setting_value v;
    if (!st) {
      unknown_option(cmd, opt, argv);
      return -1;
    }
    if (!(st->places & (run->is_run ? FT_PLACE_RUN : FT_PLACE_FETCH))) {
      fprintf(stderr, "fetchtree %s: --%s is an option of `fetchtree run`\n",
              cmd, st->option);
      return -1;
    }
    if (a && ft_setting_parse(st, a, &v, why, sizeof(why)) != 0) {
      fprintf(stderr, "fetchtree %s: --%s: %s\n", cmd, st->option, why);
      return -1;
    }
    if (!a)
      v.flag = 1; /* a flag given */
    switch (st->id) {
    case FT_S_OUT:
      run->out_path = a;
      break;
    case FT_S_ORDERED:
      run->ordered = 1;
      break;
    case FT_S_NO_BODY:
      run->record_flags |= FT_RECORD_NO_BODY;
      break;
    case FT_S_NO_HEADERS:
      run->record_flags |= FT_RECORD_NO_HEADERS;
      break;
    case FT_S_QUIET:
      run->quiet = 1;
      break;
    case FT_S_PROGRESS:
      run->progress = 1;
      break;
    case FT_S_HEADER: {
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
    case FT_S_SENSITIVE_HEADERS:
      if (strchr(a, ',')) /* one name per use, as --help says */
        bad = "must be one header name (repeat the option for more)";
      else
        bad = add_sensitive_header(run, a);
      break;
    case FT_S_WITH_META:
      run->with_meta = 1;
      break;
    case FT_S_STATE:
      run->state_path = a;
      break;
    case FT_S_STATS:
      run->stats_path = a;
      break;
    case FT_S_RESTART:
      run->restart = 1;
      break;
    case FT_S_HELP:
      if (run->is_run)
        usage_run(stdout);
      else
        usage_fetch(stdout);
      return 1;
    default: /* an ft_config setting */
      ft_setting_apply(st, &v, c);
      break;
    }
    if (bad) {
      fprintf(stderr, "fetchtree %s: --%s: %s (got '%s')\n", cmd, st->option,
              bad, a ? a : "");
      return -1;
    }
  }
  return 0;
}
/* ---- the terminal: progress, summary, --stats ---------------------------- */

/* The progress line, every 250 ms on a terminal (or with --progress). */
static void show_progress(void *ud, ft_crawl *c) {
  (void)ud;
  ft_crawl_stats st;
  ft_crawl_get_stats(c, &st);
  uint64_t done = st.stats.requests;
  uint64_t errors = done - st.stats.ok;
  double rate = st.elapsed_s > 0 ? (double)done / st.elapsed_s : 0;
  if (st.source_done) {
    double eta = rate > 0 ? (double)(st.taken - done) / rate : 0;
    fprintf(stderr, "\r\033[K%llu/%llu  %.0f/s  errors %llu  ETA %.0fs",
            (unsigned long long)done, (unsigned long long)st.taken, rate,
            (unsigned long long)errors, eta);
  } else {
    fprintf(stderr, "\r\033[K%llu  %.0f/s  errors %llu",
            (unsigned long long)done, rate, (unsigned long long)errors);
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

static void print_tree_top(ft_tree *tree) {
  top_objects t;
  memset(&t, 0, sizeof(t));
  ft_tree_foreach(tree, collect_top, &t);
  if (t.n == 0)
    return;
  fprintf(stderr, "  objects (%zu):\n", ft_tree_count(tree));
  for (int i = 0; i < t.n; i++) {
    const ft_obj_stats *st = &t.o[i]->stats;
    fprintf(stderr, "    %-32s %llu requests, %llu ok, %llu retries, p50 %.2f ms\n",
            t.o[i]->name, (unsigned long long)st->requests,
            (unsigned long long)st->ok,
            (unsigned long long)st->retries,
            ft_obj_stats_percentile(st, 0.5));
  }
}

/* --stats FILE: the object tree's statistics as JSON. Returns 0, or -1
 * after saying why. */
static int write_stats(ft_tree *tree, const char *path) {
  ft_buf b = {0};
  if (tree)
    ft_stats_tree_json(tree, &b);
  ft_buf_putc(&b, '\n');
  FILE *f = fopen(path, "w");
  int ok = f && !b.oom && fwrite(b.data, 1, b.len, f) == b.len;
  if (f && fclose(f) != 0)
    ok = 0;
  if (!ok)
    fprintf(stderr, "fetchtree: %s: %s\n", path, strerror(errno));
  ft_buf_free(&b);
  return ok ? 0 : -1;
}

/* ---- running a command ---------------------------------------------------- */

/* The crawl's settings from what the command line said. */
static void crawl_settings(command *cmd, ft_crawl_settings *set) {
  memset(set, 0, sizeof(*set));
  set->cfg = cmd->cfg;
  set->name = cmd->is_run ? "fetchtree run" : "fetchtree fetch";
  set->out_path = cmd->out_path;
  set->record_flags = cmd->record_flags;
  set->ordered = cmd->ordered;
  set->with_meta = cmd->with_meta;
  set->state_path = cmd->state_path;
  set->restart = cmd->restart;
  set->extra_headers = cmd->extra_headers;
  set->quiet = cmd->quiet;
  set->catch_sigint = 1;
  if (!cmd->quiet && (cmd->progress || isatty(2))) {
    set->progress = show_progress;
    set->progress_ms = 250;
    cmd->progress = 1;
  } else {
    cmd->progress = 0;
  }
}

/* Runs the crawl, then what the terminal shows of it: the summary (unless
 * --quiet) and --stats. Returns the exit code: 0, 1 (a failure, said on
 * stderr), 2 (a usage error: an output that cannot be opened, --restart
 * without a state) or 130 (interrupted). */
static int run_crawl(command *cmd, ft_crawl *c) {
  int rc = ft_crawl_run(c);
  ft_crawl_stats st;
  ft_crawl_get_stats(c, &st);
  if (cmd->progress)
    fputs("\r\033[K", stderr);
  if (st.finished_before)
    return 0;
  if (rc != 0 && !st.ran) /* it could not start: said why */
    return rc == FT_EINVAL ? 2 : 1;
  if (st.start_error)
    fprintf(stderr, "fetchtree run: start failed: %s\n", st.start_error);
  if (!cmd->quiet) {
    ft_stats_print(&st.stats, stderr, st.elapsed_s);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
      fprintf(stderr, "  peak RSS %.1f MB\n", (double)ru.ru_maxrss / 1024.0);
    if (cmd->is_run)
      print_tree_top(ft_crawl_tree(c));
    if (st.interrupted)
      fprintf(stderr, "fetchtree: interrupted after %llu records\n",
              (unsigned long long)st.records);
  }
  int write_errno = st.write_errno;
  if (cmd->stats_path && write_stats(ft_crawl_tree(c), cmd->stats_path) != 0 &&
      !write_errno)
    write_errno = EIO;
  if (write_errno) {
    fprintf(stderr, "fetchtree: writing records: %s\n", strerror(write_errno));
    return 1;
  }
  if (st.interrupted)
    return 130;
  return st.failed ? 1 : 0;
}

static void command_cleanup(command *cmd) {
  curl_slist_free_all(cmd->extra_headers);
  free(cmd->sensitive);
}

static int cmd_fetch(int argc, char **argv) {
  static char *stdin_only[] = {"-", NULL};
  char err[512];
  int rc = 2;
  command cmd;
  memset(&cmd, 0, sizeof(cmd));
  ft_config_default(&cmd.cfg);
  ft_crawl *c = NULL;

  int p = parse_args(&cmd, argc, argv);
  if (p != 0) {
    rc = p > 0 ? 0 : 2;
    goto cleanup;
  }
  ft_crawl_spec spec = {.kind = FT_CRAWL_LIST};
  spec.files = optind < argc ? argv + optind : stdin_only;
  /* every file named must be there to read before anything is fetched;
   * a directory opens, but reads as an error (EISDIR) */
  for (char **f = spec.files; *f; f++) {
    struct stat sb;
    if (strcmp(*f, "-") == 0)
      continue;
    if (access(*f, R_OK) != 0 || stat(*f, &sb) != 0 ||
        (S_ISDIR(sb.st_mode) && (errno = EISDIR))) {
      fprintf(stderr, "fetchtree fetch: %s: %s\n", *f, strerror(errno));
      goto cleanup;
    }
  }
  ft_crawl_settings set;
  crawl_settings(&cmd, &set);
  rc = 1;
  if (ft_crawl_new(&c, &spec, &set, err, sizeof(err)) != 0) {
    fprintf(stderr, "fetchtree: %s\n", err);
    goto cleanup;
  }
  rc = run_crawl(&cmd, c);
cleanup:
  ft_crawl_free(c);
  command_cleanup(&cmd);
  return rc;
}

/* `fetchtree run SCRIPT.lua [options] [-- args]`: the options are parsed
 * twice, before loading the script (to find it and catch usage errors) and
 * after (so that they override what the spec says). */
static int cmd_run(int argc, char **argv) {
  int rc = 2;
  char err[4096];
  command cmd;
  memset(&cmd, 0, sizeof(cmd));
  ft_config_default(&cmd.cfg);
  cmd.is_run = 1;
  ft_crawl *c = NULL;
  ft_crawl_spec spec = {.kind = FT_CRAWL_SCRIPT};

  /* the script's own arguments follow "--" */
  int nopts = argc;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      nopts = i;
      spec.args = argv + i + 1;
      spec.nargs = argc - i - 1;
      break;
    }
  }
  char **opts = calloc((size_t)nopts + 1, sizeof(*opts));
  if (!opts)
    goto cleanup;
  memcpy(opts, argv, (size_t)nopts * sizeof(*opts));
  int p = parse_args(&cmd, nopts, opts);
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
  spec.path = opts[optind];

  rc = 1;
  ft_crawl_settings set;
  crawl_settings(&cmd, &set);
  if (ft_crawl_new(&c, &spec, &set, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    goto cleanup;
  }
  /* the options again, over the spec's fields */
  ft_crawl_settings *now = ft_crawl_get_settings(c);
  cmd.cfg = now->cfg;
  memcpy(opts, argv, (size_t)nopts * sizeof(*opts));
  curl_slist_free_all(cmd.extra_headers); /* collected again */
  cmd.extra_headers = NULL;
  if (parse_args(&cmd, nopts, opts) != 0)
    goto cleanup;
  now->cfg = cmd.cfg;
  now->extra_headers = cmd.extra_headers;
  rc = run_crawl(&cmd, c);
cleanup:
  free(opts);
  ft_crawl_free(c);
  command_cleanup(&cmd);
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
