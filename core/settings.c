/* settings.c - the one table of fetchtree's settings, and the checks every
 * entry point makes against it (see settings.h). */
#include "settings.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "request.h"

#define CLI FT_PLACE_CLI
#define FETCH FT_PLACE_FETCH
#define RUN FT_PLACE_RUN
#define SPEC FT_PLACE_SPEC
#define OBJ FT_PLACE_OBJECT
#define REQ FT_PLACE_REQUEST
#define ENG FT_PLACE_ENGINE
#define FTRUN FT_PLACE_FT_RUN
#define LIM FT_PLACE_LIMITS
#define EMIT FT_PLACE_EMIT
#define LINE FT_PLACE_LINE
/* what engine.new, ft.run and a spec all take: the ft_config settings */
#define CONF (SPEC | ENG | FTRUN)

/* Rows in --help's order; ids in ft_setting_id's. The ranges are the ones
 * the command line had: a spec, engine.new and ft.run now keep to them too
 * (rps > 0: no rate limit is the setting left out). */
const ft_setting ft_settings[] = {
    /* Output */
    {FT_S_OUT, "out", "out", 'o', FT_SETTING_OUT, NULL, 0, 0, 0, CLI | FTRUN,
     NULL, "Output", "FILE", "write records to FILE instead of stdout"},
    {FT_S_ORDERED, "ordered", "ordered", 0, FT_SETTING_BOOL, NULL, 0, 0, 0, CLI,
     NULL, "Output", NULL,
     "records in input order (default: completion order)"},
    {FT_S_NO_BODY, "no_body", "no-body", 0, FT_SETTING_BOOL, NULL, 0, 0, 0,
     CLI | FTRUN, NULL, "Output", NULL, "leave bodies out of records"},
    {FT_S_NO_HEADERS, "no_headers", "no-headers", 0, FT_SETTING_BOOL, NULL, 0,
     0, 0, CLI | FTRUN, NULL, "Output", NULL,
     "leave response headers out of records"},
    {FT_S_QUIET, "quiet", "quiet", 'q', FT_SETTING_BOOL, NULL, 0, 0, 0, CLI,
     NULL, "Output", NULL, "no progress line and no summary on stderr"},
    {FT_S_PROGRESS, "progress", "progress", 0, FT_SETTING_BOOL, NULL, 0, 0, 0,
     CLI, NULL, "Output", NULL,
     "the progress line even if stderr is not a terminal"},
    {FT_S_STATS, "stats", "stats", 0, FT_SETTING_STRING, NULL, 0, 0, 0, CLI,
     NULL, "Output", "FILE", "write the object tree's statistics as JSON"},
    /* Requests */
    {FT_S_HEADER, "header", "header", 'H', FT_SETTING_STRING, NULL, 0, 0, 0,
     CLI, NULL, "Requests", "'N: V'",
     "add a header to every request (repeatable)"},
    {FT_S_USER_AGENT, "user_agent", "user-agent", 'A', FT_SETTING_STRING, NULL,
     0, 0, 0, CLI | CONF, "fetchtree/" FT_VERSION, "Requests", "UA",
     "User-Agent (default fetchtree/" FT_VERSION ")"},
    {FT_S_COMPRESSED, "compressed", "compressed", 0, FT_SETTING_BOOL, NULL, 0,
     0, 0, CLI | CONF, "false", "Requests", NULL,
     "ask for compressed bodies (Accept-Encoding); a\n"
     "body that comes compressed is decoded either way"},
    {FT_S_TIMEOUT, "timeout", "timeout", 0, FT_SETTING_NUMBER, "seconds", 0.001,
     1e6, 0, CLI | CONF | REQ, "30", "Requests", "S",
     "total time for one attempt, seconds (30)"},
    {FT_S_CONNECT_TIMEOUT, "connect_timeout", "connect-timeout", 0,
     FT_SETTING_NUMBER, "seconds", 0.001, 1e6, 0, CLI | CONF, "10", "Requests",
     "S", "time to connect, seconds (10)"},
    {FT_S_MAX_REDIRECTS, "max_redirects", "max-redirects", 0, FT_SETTING_INT,
     NULL, 0, 1000, 0, CLI | CONF, "10", "Requests", "N",
     "redirects followed, 0 for none (10)"},
    {FT_S_MAX_BODY, "max_body", "max-body", 0, FT_SETTING_SIZE, "bytes", 0,
     1e15, 0, CLI | CONF, "64M", "Requests", "SIZE",
     "largest body accepted, e.g. 64M (64M)"},
    {FT_S_CACERT, "cacert", "cacert", 0, FT_SETTING_FILE, NULL, 0, 0, 0,
     CLI | ENG | FTRUN, NULL, "Requests", "FILE",
     "verify TLS servers against the CAs in FILE (PEM)"},
    {FT_S_SENSITIVE_HEADERS, "sensitive_headers", "sensitive-header", 0,
     FT_SETTING_NAMES, NULL, 0, 0, 0, CLI | CONF, NULL, "Requests", "NAME",
     "a header not sent on when a redirect leaves the\n"
     "host, like Authorization and Cookie (repeatable)"},
    /* Pacing */
    {FT_S_CONCURRENCY, "concurrency", "concurrency", 'c', FT_SETTING_INT, NULL,
     1, 100000, 0, CLI | CONF | OBJ | LIM, "64", "Pacing", "N",
     "requests in flight at once (64)"},
    {FT_S_HOST_CONNECTIONS, "host_connections", "host-connections", 0,
     FT_SETTING_INT, NULL, 1, 100000, 0, CLI | CONF, NULL, "Pacing", "N",
     "connections per host (default: concurrency)"},
    {FT_S_RPS, "rps", "rps", 0, FT_SETTING_NUMBER, "requests per window", 0,
     1e9, 1, CLI | CONF | OBJ | LIM, NULL, "Pacing", "R",
     "at most R*W/1000 attempts start in any W ms"},
    {FT_S_WINDOW, "window", "window", 0, FT_SETTING_NUMBER, "milliseconds", 1,
     86400000, 0, CLI | CONF | OBJ | LIM, "1000", "Pacing", "W",
     "the rate window in milliseconds (1000)"},
    /* Retries */
    {FT_S_RETRIES, "retries", "retries", 0, FT_SETTING_INT, NULL, 0, 1000, 0,
     CLI | CONF | OBJ | REQ | LIM, "5", "Retries", "N",
     "retries after the first attempt (5)"},
    {FT_S_RETRY_ON, "retry_on", "retry-on", 0, FT_SETTING_STATUSES, NULL, 0, 0,
     0, CLI | CONF, "408,429,500,502,503,504", "Retries", "LIST",
     "retryable statuses (408,429,500,502,503,504)"},
    {FT_S_BACKOFF_BASE, "backoff_base", "backoff-base", 0, FT_SETTING_NUMBER,
     "milliseconds", 0, 3600000, 0, CLI | CONF, "100", "Retries", "MS",
     "backoff base (100)"},
    {FT_S_BACKOFF_CAP, "backoff_cap", "backoff-cap", 0, FT_SETTING_NUMBER,
     "milliseconds", 0, 86400000, 0, CLI | CONF, "10000", "Retries", "MS",
     "backoff cap (10000)"},
    {FT_S_MAX_RETRY_AFTER, "max_retry_after", "max-retry-after", 0,
     FT_SETTING_NUMBER, "seconds", 0, 86400 * 30, 0, CLI | CONF, "60",
     "Retries", "S", "longest Retry-After honoured, seconds (60)"},
    {FT_S_SEED, "seed", "seed", 0, FT_SETTING_INT, NULL, 1, 1e18, 0,
     CLI | ENG | FTRUN, NULL, "Retries", "N", "seed for the retry jitter"},
    /* `fetchtree run` */
    {FT_S_WITH_META, "with_meta", "with-meta", 0, FT_SETTING_BOOL, NULL, 0, 0,
     0, RUN | FTRUN, "false", "Run", NULL,
     "add _url, _status, _index, _depth to records"},
    {FT_S_STATE, "state", "state", 0, FT_SETTING_STRING, NULL, 0, 0, 0,
     RUN | SPEC | FTRUN, NULL, "Run", "FILE",
     "a crash-safe run: frontier, seen set, storage and\n"
     "output progress in this SQLite database; the\n"
     "same command again resumes after a crash"},
    {FT_S_RESTART, "restart", "restart", 0, FT_SETTING_BOOL, NULL, 0, 0, 0,
     RUN | FTRUN, NULL, "Run", NULL,
     "with --state: forget an earlier run, start over"},
    {FT_S_HELP, "help", "help", 'h', FT_SETTING_BOOL, NULL, 0, 0, 0, CLI, NULL,
     NULL, NULL, "this list"},
    /* the spec's own fields */
    {FT_S_START, "start", NULL, 0, FT_SETTING_FUNCTION, NULL, 0, 0, 0, SPEC,
     NULL, NULL, NULL, "start(emit): emits the first requests (required)"},
    {FT_S_ON_RESPONSE, "on_response", NULL, 0, FT_SETTING_FUNCTION, NULL, 0, 0,
     0, SPEC | OBJ, NULL, NULL, NULL, "on_response(res, obj): records"},
    {FT_S_ON_ERROR, "on_error", NULL, 0, FT_SETTING_FUNCTION, NULL, 0, 0, 0,
     SPEC | OBJ, NULL, NULL, NULL, "on_error(err, obj): records"},
    {FT_S_ROUTE, "route", NULL, 0, FT_SETTING_FUNCTION, NULL, 0, 0, 0, SPEC,
     NULL, NULL, NULL, "route(req): the object a request belongs to"},
    {FT_S_OBJECTS, "objects", NULL, 0, FT_SETTING_TABLE, NULL, 0, 0, 0, SPEC,
     NULL, NULL, NULL, "{ [\"/pattern/*\"] = { rps = ..., ... } }"},
    {FT_S_ALLOW_HOSTS, "allow_hosts", NULL, 0, FT_SETTING_STRINGS, NULL, 0, 0,
     0, SPEC, NULL, NULL, NULL, "follow-ups only to these hosts"},
    {FT_S_MAX_DEPTH, "max_depth", NULL, 0, FT_SETTING_INT, NULL, 0, 1e9, 0,
     SPEC, NULL, NULL, NULL, "follow-ups at most this deep"},
    {FT_S_DEDUPE, "dedupe", NULL, 0, FT_SETTING_BOOL, NULL, 0, 0, 0,
     SPEC | EMIT, "true", NULL, NULL, "fetch a request only once"},
    {FT_S_ROBOTS, "robots", NULL, 0, FT_SETTING_ROBOTS, NULL, 0, 0, 0,
     SPEC | OBJ | ENG, "false", NULL, NULL, "obey robots.txt"},
    /* a request table's fields (fetchtree.request checks their values) */
    {FT_S_URL, "url", NULL, 0, FT_SETTING_ANY, NULL, 0, 0, 0, REQ | EMIT | LINE,
     NULL, NULL, NULL, "the URL"},
    {FT_S_METHOD, "method", NULL, 0, FT_SETTING_ANY, NULL, 0, 0, 0,
     REQ | EMIT | LINE, NULL, NULL, NULL, "the method (GET)"},
    {FT_S_HEADERS, "headers", NULL, 0, FT_SETTING_ANY, NULL, 0, 0, 0,
     REQ | EMIT | LINE, NULL, NULL, NULL, "{ Name = value }"},
    {FT_S_BODY, "body", NULL, 0, FT_SETTING_ANY, NULL, 0, 0, 0,
     REQ | EMIT | LINE, NULL, NULL, NULL, "the request body"},
    {FT_S_META, "meta", NULL, 0, FT_SETTING_ANY, NULL, 0, 0, 0,
     REQ | EMIT | LINE, NULL, NULL, NULL, "carried to the record"},
};

const size_t ft_settings_count = sizeof(ft_settings) / sizeof(ft_settings[0]);

const ft_setting *ft_settings_find(const char *name, unsigned places) {
  for (size_t i = 0; i < ft_settings_count; i++)
    if ((ft_settings[i].places & places) &&
        strcmp(ft_settings[i].name, name) == 0)
      return &ft_settings[i];
  return NULL;
}

const ft_setting *ft_settings_find_option(const char *opt) {
  for (size_t i = 0; i < ft_settings_count; i++)
    if (ft_settings[i].option && strcmp(ft_settings[i].option, opt) == 0)
      return &ft_settings[i];
  return NULL;
}

/* ---- nearest names ------------------------------------------------------ */

size_t ft_settings_distance(const char *a, const char *b) {
  enum { MAX = 64 };
  size_t n = strlen(a), m = strlen(b);
  if (n >= MAX || m >= MAX) /* names are short; a long one is near nothing */
    return n > m ? n : m;
  size_t d[MAX + 1][MAX + 1];
  for (size_t i = 0; i <= n; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= n; i++) {
    for (size_t j = 1; j <= m; j++) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v)
        v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < v)
        v = d[i - 1][j - 1] + cost;
      /* a swap of neighbours is one typo, not two */
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  }
  return d[n][m];
}

const char *ft_settings_nearest(const char *name, unsigned places,
                                int options) {
  const char *best = NULL;
  size_t best_d = (size_t)-1;
  size_t len = strlen(name);
  /* a third of the name, at least 1 and at most 3: "rsp" -> "rps", but
   * "x" is near nothing that has nothing in common with it */
  size_t limit = len / 3;
  if (limit < 1)
    limit = 1;
  if (limit > 3)
    limit = 3;
  for (size_t i = 0; i < ft_settings_count; i++) {
    const ft_setting *s = &ft_settings[i];
    const char *cand = options ? s->option : s->name;
    if (!cand || !(s->places & places))
      continue;
    size_t d = ft_settings_distance(name, cand);
    if (d < best_d) {
      best_d = d;
      best = cand;
    }
  }
  return best_d <= limit ? best : NULL;
}

/* ---- checking values ------------------------------------------------------
 */

void ft_settings_format_number(double v, char *buf, size_t len) {
  if (isnan(v))
    snprintf(buf, len, "nan");
  else if (isinf(v))
    snprintf(buf, len, v < 0 ? "-inf" : "inf");
  else if (v == floor(v) && fabs(v) < 1e16)
    snprintf(buf, len, "%.0f", v);
  else
    snprintf(buf, len, "%.14g", v);
}

void ft_setting_expect(const ft_setting *s, char *buf, size_t len) {
  char lo[32], hi[32];
  ft_settings_format_number(s->min, lo, sizeof(lo));
  ft_settings_format_number(s->max, hi, sizeof(hi));
  const char *unit = s->unit ? s->unit : "";
  const char *of = s->unit ? " of " : "";
  switch (s->type) {
  case FT_SETTING_INT:
    snprintf(buf, len, "a whole number%s%s from %s to %s", of, unit, lo, hi);
    break;
  case FT_SETTING_NUMBER:
    if (s->min_exclusive)
      snprintf(buf, len, "a number%s%s above %s, at most %s", of, unit, lo, hi);
    else
      snprintf(buf, len, "a number%s%s from %s to %s", of, unit, lo, hi);
    break;
  case FT_SETTING_SIZE:
    snprintf(buf, len,
             "a size in bytes from %s to %s, such as 65536, 512K, 64M or 1G",
             lo, hi);
    break;
  case FT_SETTING_BOOL:
    snprintf(buf, len, "a boolean");
    break;
  case FT_SETTING_STRING:
    snprintf(buf, len, "a string");
    break;
  case FT_SETTING_FILE:
    snprintf(buf, len, "the name of a readable file");
    break;
  case FT_SETTING_STATUSES:
    snprintf(buf, len, "a list of HTTP statuses 100..599, such as 429,503");
    break;
  case FT_SETTING_NAMES:
    snprintf(buf, len, "a list of header names");
    break;
  case FT_SETTING_STRINGS:
    snprintf(buf, len, "a list of strings");
    break;
  case FT_SETTING_FUNCTION:
    snprintf(buf, len, "a function");
    break;
  case FT_SETTING_TABLE:
    snprintf(buf, len, "a table");
    break;
  case FT_SETTING_ROBOTS:
    snprintf(buf, len, "true, false or { agent = string, recheck = seconds }");
    break;
  case FT_SETTING_OUT:
    snprintf(buf, len, "a function or a file name");
    break;
  case FT_SETTING_ANY:
    snprintf(buf, len, "a value");
    break;
  }
}

/* why = "must be <expect>, got <got>" */
static void must_be(const ft_setting *s, const char *got, char *why,
                    size_t whylen) {
  char expect[160];
  ft_setting_expect(s, expect, sizeof(expect));
  snprintf(why, whylen, "must be %s, got %s", expect, got);
}

int ft_setting_check_number(const ft_setting *s, double v, char *why,
                            size_t whylen) {
  int ok =
      !isnan(v) && v <= s->max && (s->min_exclusive ? v > s->min : v >= s->min);
  if (ok && (s->type == FT_SETTING_INT || s->type == FT_SETTING_SIZE))
    ok = v == floor(v);
  if (ok)
    return 0;
  char got[40];
  ft_settings_format_number(v, got, sizeof(got));
  must_be(s, got, why, whylen);
  return FT_ERANGE;
}

/* text, quoted and cut for a message */
static void quoted(const char *text, char *buf, size_t len) {
  snprintf(buf, len, "'%.60s%s'", text, strlen(text) > 60 ? "..." : "");
}

/* Refuses text for setting s: "must be ..., got 'text'" into why. */
static int refuse_text(const ft_setting *s, const char *text, char *why,
                       size_t whylen) {
  char got[80];
  quoted(text, got, sizeof(got));
  must_be(s, got, why, whylen);
  return FT_EINVAL;
}

/* A number from text (SIZE: with a k, M or G suffix), in s's range. */
static int parse_number(const ft_setting *s, const char *text,
                        ft_setting_value *v, char *why, size_t whylen) {
  char *end;
  errno = 0;
  double d = strtod(text, &end);
  double m = 1;
  if (s->type == FT_SETTING_SIZE && end != text) {
    if (*end == 'k' || *end == 'K')
      m = 1024;
    else if (*end == 'm' || *end == 'M')
      m = 1024.0 * 1024;
    else if (*end == 'g' || *end == 'G')
      m = 1024.0 * 1024 * 1024;
    if (m != 1)
      end++;
  }
  /* strtod's ERANGE (1e999) still gives a number the range refuses */
  if (end == text || *end || (errno && errno != ERANGE))
    return refuse_text(s, text, why, whylen);
  d *= m;
  int rc = ft_setting_check_number(s, d, why, whylen);
  if (rc != 0)
    return rc;
  v->num = d;
  v->size = (int64_t)d;
  return 0;
}

int ft_setting_parse(const ft_setting *s, const char *text, ft_setting_value *v,
                     char *why, size_t whylen) {
  memset(v, 0, sizeof(*v));
  switch (s->type) {
  case FT_SETTING_INT:
  case FT_SETTING_NUMBER:
  case FT_SETTING_SIZE:
    return parse_number(s, text, v, why, whylen);
  case FT_SETTING_BOOL:
    if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0) {
      v->flag = 1;
      return 0;
    }
    if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
      return 0;
    return refuse_text(s, text, why, whylen);
  case FT_SETTING_STATUSES: {
    ft_retry_policy p;
    ft_retry_policy_default(&p);
    if (ft_retry_parse_statuses(&p, text) != 0) {
      return refuse_text(s, text, why, whylen);
    }
    memcpy(v->statuses, p.retry_status, sizeof(v->statuses));
    v->str = text;
    return 0;
  }
  case FT_SETTING_NAMES: {
    /* comma-separated names (the command line gives one per use) */
    const char *p = text;
    for (;;) {
      const char *c = strchr(p, ',');
      size_t n = c ? (size_t)(c - p) : strlen(p);
      if (!ft_token_valid(p, n)) {
        return refuse_text(s, text, why, whylen);
      }
      if (!c)
        break;
      p = c + 1;
    }
    v->str = text;
    return 0;
  }
  case FT_SETTING_FILE:
    if (access(text, R_OK) != 0) {
      return refuse_text(s, text, why, whylen);
    }
    v->str = text;
    return 0;
  case FT_SETTING_STRING:
  case FT_SETTING_OUT:
  case FT_SETTING_STRINGS:
  case FT_SETTING_ANY:
    v->str = text;
    return 0;
  case FT_SETTING_FUNCTION:
  case FT_SETTING_TABLE:
  case FT_SETTING_ROBOTS:
    break;
  }
  return refuse_text(s, text, why, whylen);
}

void ft_setting_apply(const ft_setting *s, const ft_setting_value *v,
                      ft_config *cfg) {
  switch (s->id) {
  case FT_S_USER_AGENT:
    cfg->user_agent = v->str;
    break;
  case FT_S_COMPRESSED:
    cfg->compressed = v->flag;
    break;
  case FT_S_TIMEOUT:
    cfg->timeout_ms = (long)(v->num * 1000);
    break;
  case FT_S_CONNECT_TIMEOUT:
    cfg->connect_timeout_ms = (long)(v->num * 1000);
    break;
  case FT_S_MAX_REDIRECTS:
    cfg->max_redirects = (long)v->num;
    break;
  case FT_S_MAX_BODY:
    cfg->max_body = v->size;
    break;
  case FT_S_CACERT:
    cfg->ca_file = v->str;
    break;
  case FT_S_SENSITIVE_HEADERS:
    cfg->sensitive_headers = v->str;
    break;
  case FT_S_CONCURRENCY:
    cfg->concurrency = (int)v->num;
    break;
  case FT_S_HOST_CONNECTIONS:
    cfg->host_connections = (int)v->num;
    break;
  case FT_S_RPS:
    cfg->rps = v->num;
    break;
  case FT_S_WINDOW:
    cfg->window_ms = v->num;
    break;
  case FT_S_RETRIES:
    cfg->retry.max_retries = (int)v->num;
    break;
  case FT_S_RETRY_ON:
    memcpy(cfg->retry.retry_status, v->statuses,
           sizeof(cfg->retry.retry_status));
    break;
  case FT_S_BACKOFF_BASE:
    cfg->retry.base_ns = (uint64_t)(v->num * 1e6);
    break;
  case FT_S_BACKOFF_CAP:
    cfg->retry.cap_ns = (uint64_t)(v->num * 1e6);
    break;
  case FT_S_MAX_RETRY_AFTER:
    cfg->retry.max_retry_after_ns = (uint64_t)(v->num * 1e9);
    break;
  case FT_S_SEED:
    cfg->seed = (uint64_t)v->num;
    break;
  default: /* not an ft_config setting: its place applies it */
    break;
  }
}

const char *ft_place_name(ft_place place) {
  switch (place) {
  case FT_PLACE_FETCH:
    return "fetchtree fetch";
  case FT_PLACE_RUN:
    return "fetchtree run";
  case FT_PLACE_SPEC:
    return "a crawl spec";
  case FT_PLACE_OBJECT:
    return "an object pattern";
  case FT_PLACE_REQUEST:
    return "a request";
  case FT_PLACE_ENGINE:
    return "engine.new";
  case FT_PLACE_FT_RUN:
    return "ft.run";
  case FT_PLACE_LIMITS:
    return "set_limits";
  case FT_PLACE_EMIT:
    return "a crawl's request";
  case FT_PLACE_LINE:
    return "a request line";
  }
  return "?";
}

int ft_setting_removable(const ft_setting *s, ft_place place) {
  return place == FT_PLACE_LIMITS &&
         (s->id == FT_S_RPS || s->id == FT_S_CONCURRENCY ||
          s->id == FT_S_RETRIES);
}

/* ---- --help -----------------------------------------------------------------
 */

/* The help column: options are padded to it, continuation lines start
 * there. */
#define HELP_COL 26

void ft_settings_usage(FILE *f, unsigned place, unsigned except) {
  const char *section = NULL;
  for (size_t i = 0; i < ft_settings_count; i++) {
    const ft_setting *s = &ft_settings[i];
    if (!s->option || !s->section || !(s->places & place) ||
        (s->places & except))
      continue;
    if (!section || strcmp(section, s->section) != 0) {
      section = s->section;
      if (!except) /* one heading per group, in fetch's full list */
        fprintf(f, "%s:\n", section);
    }
    char left[80];
    int n = snprintf(
        left, sizeof(left), "  %c%c%s--%s%s%s", s->short_opt ? '-' : ' ',
        s->short_opt ? s->short_opt : ' ', s->short_opt ? ", " : "  ",
        s->option, s->arg ? " " : "", s->arg ? s->arg : "");
    if (n <= HELP_COL)
      fprintf(f, "%-*s", n < HELP_COL ? HELP_COL : n + 1, left);
    else
      fprintf(f, "%s\n%*s", left, HELP_COL, "");
    for (const char *h = s->help; *h;) {
      const char *nl = strchr(h, '\n');
      size_t len = nl ? (size_t)(nl - h) : strlen(h);
      fprintf(f, "%.*s\n", (int)len, h);
      if (!nl)
        break;
      h = nl + 1;
      fprintf(f, "%*s", HELP_COL, "");
    }
  }
}
