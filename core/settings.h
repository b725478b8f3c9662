/* settings.h - every setting of fetchtree, declared once: name, type, unit,
 * range, default and the places that accept it, with the checks every entry
 * point uses (pure C; the Lua side is lua_settings.h).
 *
 * A setting reaches fetchtree through up to eight places: an option of
 * `fetchtree fetch` or `fetchtree run`, a field of a crawl spec, a field of
 * an object pattern in the spec's `objects`, a field of a request table
 * (ft.get, ft.request, ft.fetch_all), engine.new (and ft.fetch_all's
 * options), ft.run's options, and an object's limits changed live
 * (obj:set_limits, the engine's set_limits and configure). Each place asks this
 * table whether a name is known there and whether a value is good, so one value
 * is taken or refused the same way everywhere, with the same words: the reason
 * a check gives ("must be a whole number from 1 to 100000, got 2.7") is the
 * same text whatever the place, which only adds its own prefix
 * ("fetchtree fetch: --concurrency: ", "script.lua:3: field 'concurrency': ").
 *
 * The command line's option list (getopt's table and --help) is made from
 * this table, and tests/spec/settings_spec.lua checks the man page and the
 * README against it. */
#ifndef FT_SETTINGS_H
#define FT_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fetchtree.h"

/* Where a setting is accepted (a bit set). */
typedef enum ft_place {
  FT_PLACE_FETCH = 1 << 0,   /* an option of `fetchtree fetch` */
  FT_PLACE_RUN = 1 << 1,     /* an option of `fetchtree run` */
  FT_PLACE_SPEC = 1 << 2,    /* a field of a crawl spec */
  FT_PLACE_OBJECT = 1 << 3,  /* a field of an object pattern (spec.objects) */
  FT_PLACE_REQUEST = 1 << 4, /* a field of a request table (ft.get, ...) */
  FT_PLACE_ENGINE = 1 << 5,  /* engine.new{...}, ft.fetch_all's options */
  FT_PLACE_FT_RUN = 1 << 6,  /* ft.run's options */
  FT_PLACE_LIMITS = 1 << 7,  /* obj:set_limits{...}, E:set_limits and
                              * E:configure: rps, window, concurrency and
                              * retries, where false removes a limit */
  FT_PLACE_EMIT = 1 << 8,    /* a request table of a crawl: emit{...} in
                              * start, obj:fetch{...} in a handler */
  FT_PLACE_LINE = 1 << 9,    /* a JSON request line of `fetchtree fetch` */
} ft_place;

#define FT_PLACE_CLI (FT_PLACE_FETCH | FT_PLACE_RUN)

/* What a setting's value is. */
typedef enum ft_setting_type {
  FT_SETTING_INT,      /* a whole number in [min, max] */
  FT_SETTING_NUMBER,   /* a finite number in [min, max] (min exclusive when
                        * the row says so); NaN and infinities refused */
  FT_SETTING_SIZE,     /* bytes: a whole number, or text with K, M or G
                        * (powers of 1024): "512K", "64M" */
  FT_SETTING_BOOL,     /* a flag on the command line, a boolean in Lua */
  FT_SETTING_STRING,   /* text */
  FT_SETTING_FILE,     /* the name of a readable file */
  FT_SETTING_STATUSES, /* HTTP statuses 100..599: "429,503" or {429, 503} */
  FT_SETTING_NAMES,    /* header names (RFC 9110 tokens): a list in Lua; on
                        * the command line one per use of the option */
  FT_SETTING_STRINGS,  /* a list of strings (Lua only) */
  FT_SETTING_FUNCTION, /* a Lua function */
  FT_SETTING_TABLE,    /* a Lua table, checked by the code that uses it */
  FT_SETTING_ROBOTS,   /* true/false, or in a spec { agent =, recheck = } */
  FT_SETTING_OUT,      /* ft.run's out: a function or a file name */
  FT_SETTING_ANY,      /* any value: the name is known, its user checks it */
} ft_setting_type;

/* Names the settings, for code that acts on one (cli.c's switch). */
typedef enum ft_setting_id {
  FT_S_OUT,
  FT_S_ORDERED,
  FT_S_NO_BODY,
  FT_S_NO_HEADERS,
  FT_S_QUIET,
  FT_S_PROGRESS,
  FT_S_STATS,
  FT_S_HEADER,
  FT_S_USER_AGENT,
  FT_S_COMPRESSED,
  FT_S_TIMEOUT,
  FT_S_CONNECT_TIMEOUT,
  FT_S_MAX_REDIRECTS,
  FT_S_MAX_BODY,
  FT_S_CACERT,
  FT_S_SENSITIVE_HEADERS,
  FT_S_CONCURRENCY,
  FT_S_HOST_CONNECTIONS,
  FT_S_RPS,
  FT_S_WINDOW,
  FT_S_RETRIES,
  FT_S_RETRY_ON,
  FT_S_BACKOFF_BASE,
  FT_S_BACKOFF_CAP,
  FT_S_MAX_RETRY_AFTER,
  FT_S_SEED,
  FT_S_WITH_META,
  FT_S_STATE,
  FT_S_RESTART,
  FT_S_HELP,
  /* spec and object pattern fields */
  FT_S_START,
  FT_S_ON_RESPONSE,
  FT_S_ON_ERROR,
  FT_S_ROUTE,
  FT_S_OBJECTS,
  FT_S_ALLOW_HOSTS,
  FT_S_MAX_DEPTH,
  FT_S_DEDUPE,
  FT_S_ROBOTS,
  /* request table fields (checked by fetchtree.request) */
  FT_S_URL,
  FT_S_METHOD,
  FT_S_HEADERS,
  FT_S_BODY,
  FT_S_META,
  FT_S_COUNT
} ft_setting_id;

/* One row of the table. */
typedef struct ft_setting {
  ft_setting_id id;
  const char *name;   /* in Lua: "max_redirects" */
  const char *option; /* on the command line: "max-redirects", or NULL */
  char short_opt;     /* 'c' for -c, or 0 */
  ft_setting_type type;
  const char *unit;    /* "seconds", "milliseconds", NULL */
  double min, max;     /* INT, NUMBER, SIZE */
  int min_exclusive;   /* NUMBER: min itself is refused */
  unsigned places;     /* ft_place bits */
  const char *dflt;    /* the default, as text ("30"), or NULL */
  const char *section; /* --help's heading ("Pacing"), NULL: not listed */
  const char *arg;     /* --help's name for the value ("S", "N"), or NULL */
  const char *help;    /* --help's text; '\n' starts a continuation line */
} ft_setting;

/* The table, ft_settings_count rows, in --help's order; row i has id i. */
extern const ft_setting ft_settings[];
extern const size_t ft_settings_count;

/* A checked value. Which field holds it follows the type: INT and NUMBER
 * in num (INT: integral), SIZE in size, BOOL in flag, STRING, FILE and
 * NAMES in str (NAMES: comma-separated; not owned), STATUSES in statuses
 * (1 = listed). off: the value was false where it removes a limit
 * (ft_setting_removable), num is then 0. */
typedef struct ft_setting_value {
  int off;
  double num;
  int64_t size;
  int flag;
  const char *str;
  uint8_t statuses[FT_RETRY_STATUS_MAX];
} ft_setting_value;

/* The row named name (Lua's spelling) accepted in one of places, or NULL. */
const ft_setting *ft_settings_find(const char *name, unsigned places);

/* The row whose command-line option is opt (without "--"), or NULL. */
const ft_setting *ft_settings_find_option(const char *opt);

/* The known name nearest to name (edit distance, at most about a third of
 * its length) among the rows accepted in places, or NULL when none is
 * near. options: compare with the command-line spellings instead. */
const char *ft_settings_nearest(const char *name, unsigned places, int options);

/* Damerau-Levenshtein distance (with transpositions) of a and b; exposed
 * for the unit test. */
size_t ft_settings_distance(const char *a, const char *b);

/* "a whole number from 1 to 100000" etc.: what s wants, into buf. */
void ft_setting_expect(const ft_setting *s, char *buf, size_t len);

/* A number as the messages show it: "2.7", "1000000", "nan", "-inf". */
void ft_settings_format_number(double v, char *buf, size_t len);

/* Checks the number v for s (INT, NUMBER or SIZE). Returns 0, or FT_ERANGE
 * with the reason in why: "must be <expect>, got <v>". */
int ft_setting_check_number(const ft_setting *s, double v, char *why,
                            size_t whylen);

/* Parses and checks text (a command-line argument, or a string given in
 * Lua for SIZE, STATUSES or NAMES) for s into *v. Returns 0, or FT_EINVAL
 * / FT_ERANGE with the reason in why. v->str points into text. */
int ft_setting_parse(const ft_setting *s, const char *text, ft_setting_value *v,
                     char *why, size_t whylen);

/* Puts a checked value of s into cfg (the settings ft_config has; others
 * are left to their callers: returns 0 for them without a change). String
 * fields point at v->str: they must outlive cfg's use (ft_engine_new
 * copies them). */
void ft_setting_apply(const ft_setting *s, const ft_setting_value *v,
                      ft_config *cfg);

/* Whether false is taken for s in place, meaning "remove this limit":
 * rps, concurrency and retries (the object's own value, so that it
 * inherits again) in FT_PLACE_LIMITS. Elsewhere a setting left out is
 * the setting's absence. */
int ft_setting_removable(const ft_setting *s, ft_place place);

/* The place's name in messages: "engine.new", "a spec", ... */
const char *ft_place_name(ft_place place);

/* Writes --help's option list: the command-line rows whose places include
 * place and none of except, in table order; with except 0, under a heading
 * per section ("Pacing:"). Options are padded to column 26, help text that
 * goes on starts there. */
void ft_settings_usage(FILE *f, unsigned place, unsigned except);

#endif
