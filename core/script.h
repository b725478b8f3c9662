/* script.h - the boundary between C and Lua: the only part of fetchtree that touches lua_State.
 *
 * The rest of fetchtree calls these functions and never the Lua stack.
 * They are implemented by script.c (the Lua state) and the lua_*.c files
 * named in each section below; what those files share among themselves is
 * in script_internal.h, not here. */
#ifndef FT_SCRIPT_H
#define FT_SCRIPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "request.h"

typedef struct ft_script ft_script;

/* ---- the Lua state (script.c) ------------------------------------------- */

/* A Lua state with the standard libraries and fetchtree's own modules
 * (compiled into the binary) ready for require. Returns 0, or a negative
 * code with a message in err. */
int ft_script_new(ft_script **out, char *err, size_t errlen);
void ft_script_free(ft_script *s);

/* Fill r's url, method, headers, body and meta from a JSON request line
 * `{"url":..., "method":..., "headers":{...}, "body":..., "meta":...}`.
 * Returns 0, or FT_EINVAL with the reason in err (r is left unchanged). */
int ft_script_parse_request(ft_script *s, const char *line, size_t len,
                            ft_request *r, char *err, size_t errlen);

/* Make the Lua code running now (or next) raise "interrupted". Safe to
 * call from a signal handler (lua_sethook is). */
void ft_script_interrupt(ft_script *s);

/* The loader of the Lua module (luaopen_fetchtree): registers fetchtree's
 * modules in the host's state L and returns require "fetchtree". */
struct lua_State;
int ft_script_open_module(struct lua_State *L);

/* Run the Lua program at path with arg = {[0]=path, args...} and the
 * global ft = require "fetchtree". Returns 0, or FT_ELUA with the message
 * and traceback in err. */
int ft_script_exec(ft_script *s, const char *path, char **args, int nargs,
                   char *err, size_t errlen);

/* ---- crawl scripts (`fetchtree run`, ft.run) ----------------------------
 * The crawl driver (core/crawl.c, ft_crawl) calls these; ft.run reaches it
 * through fetchtree.core's run (core.run, lua_run.c), which binds the
 * caller's crawl instance to this script engine for the length of the run.
 * In lua_crawl.c, but for the output's two (lua_output.c). */

struct ft_config;

typedef struct ft_crawl_info {
  int has_on_response; /* C writes default records when the spec has none */
  int has_on_error;
  int has_state;       /* the spec named a state database */
} ft_crawl_info;

/* Records and obj:emit output go to out; record_flags (FT_RECORD_NO_BODY,
 * FT_RECORD_NO_HEADERS) shape the default records written from Lua, as
 * they do fetchtree run's own. */
void ft_script_set_output(ft_script *s, FILE *out, int record_flags);

/* How the records written from Lua (core.write_record, write_default) went:
 * *records (may be NULL) is set to the lines handed to the output stream
 * without an error; returns the errno of the first write that failed, or 0.
 * (A stream buffers: a line counted here is lost when a later flush fails,
 * and that failure shows only in the flush.) */
int ft_script_output_state(const ft_script *s, uint64_t *records);

/* Load the crawl script at path, run it with arg = {[0]=path, args...}, and
 * apply the spec's settings (rps, window, concurrency, ...) to cfg.
 * Returns 0, or a negative code with "file:line: message" in err. */
int ft_script_crawl_load(ft_script *s, const char *path, char **args,
                         int nargs, int with_meta, struct ft_config *cfg,
                         ft_crawl_info *info, char *err, size_t errlen);

/* The next request from start and the follow-up queue: 1 and *out set, 0
 * when none now (follow-ups may come), -1 when done, FT_ELUA when start
 * raised or memory ran out (message and traceback in err; start is then
 * over). want: how many the caller expects to take now (start runs on to
 * that many before it yields; 1 keeps it one at a time). */
int ft_script_crawl_next(ft_script *s, int want, ft_request **out, char *err,
                         size_t errlen);

/* Hand a final response (error == FT_ERR_NONE) to on_response, or a failed
 * request to on_error; either writes its records. Errors in handlers become
 * records of kind "script"; this returns FT_ELUA only for failures of
 * fetchtree's own Lua code (message in err). */
int ft_script_crawl_done(ft_script *s, const ft_request *req,
                         const ft_response *res, char *err, size_t errlen);

/* ---- objects, alarms and storage (lua_crawl.c) ------------------------- */

struct ft_tree;

/* Requests are routed into tree (obj:set_limits acts on it too). */
void ft_script_set_tree(ft_script *s, struct ft_tree *tree);

/* Apply the spec's `objects` limits to tree. Returns 0 or a negative code
 * with a message. */
int ft_script_crawl_objects(ft_script *s, struct ft_tree *tree, char *err,
                            size_t errlen);

/* obj:after(ms, fn) asks the host, through fn(ud, id, ms), to call
 * ft_script_alarm(s, id) in ms milliseconds. id 0 is not an alarm but a
 * nudge: limits changed, the engine should look again. */
typedef void (*ft_alarm_fn)(void *ud, uint64_t id, uint64_t ms);
void ft_script_set_alarm_fn(ft_script *s, ft_alarm_fn fn, void *ud);
int ft_script_alarm(ft_script *s, uint64_t id, char *err, size_t errlen);

/* A crawl handler waiting for something (ft.get) calls fn(ud, +1), and
 * fn(ud, -1) when it is done: the host keeps the run going meanwhile. */
void ft_script_set_hold_fn(ft_script *s, void (*fn)(void *ud, int delta),
                           void *ud);

/* Object storage lives in the SQLite database at path (NULL: in memory),
 * opened on first use. */
int ft_script_set_state(ft_script *s, const char *path);

/* Commit storage writes made since the last commit. */
int ft_script_commit(ft_script *s);

/* ---- durable runs (--state; lua_crawl.c) ------------------------------- */

typedef struct ft_journal_info {
  int finished;       /* the crawl in this database has finished */
  int resuming;       /* an earlier run started it: resume */
  int64_t out_offset; /* records up to here are committed */
  char out_tail[40];  /* what the checkpoint noted of the output's tail
                         (ft_script_checkpoint), "" if nothing */
  int64_t start_pos;  /* emits of start already taken */
  int64_t next_id;
  int64_t pending;    /* requests in the frontier */
} ft_journal_info;

/* Open the state database for a crash-safe run (after crawl_load and
 * ft_script_set_state): with restart, forget an earlier run first. Loads
 * the seen set and tells the crawl to resume. From then on the frontier,
 * the seen set and storage are written to the database and made durable
 * together by ft_script_checkpoint. Returns 0 or a negative code. */
int ft_script_journal_open(ft_script *s, int restart, ft_journal_info *info,
                           char *err, size_t errlen);

/* Request id is done (its records are in the output). */
int ft_script_journal_done(ft_script *s, uint64_t id);

/* Commit: the output is written and synced up to out_offset, with the
 * frontier, seen set, storage and start position to match; out_tail (NULL:
 * none) is the caller's note identifying the output's bytes before
 * out_offset, handed back in ft_journal_info on resume. With finished, mark
 * the crawl finished. Without a journal: commit storage. Returns 0, or a
 * negative code (message: ft_script_journal_error); after a failed
 * checkpoint no later one commits anything (the state stays at the last
 * good one). The caller checks first that every record reached the output
 * (ft_script_output_state, its own writes) and calls
 * ft_script_journal_abandon instead when one did not. */
int ft_script_checkpoint(ft_script *s, int64_t out_offset,
                         const char *out_tail, int finished);

/* The output went wrong (a write failed): nothing from now on is committed,
 * the state stays at the last checkpoint. No-op without a journal. */
void ft_script_journal_abandon(ft_script *s, const char *why);

/* Why the last checkpoint or journal write failed ("" if none). */
const char *ft_script_journal_error(ft_script *s);

/* ---- the REPL ------------------------------------------------------------- */

/* The Lua state, for core/repl.c (the one other file that touches it); s
 * keeps owning it. */
struct lua_State;
struct lua_State *ft_script_lua(ft_script *s);

#endif
