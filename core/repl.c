/* repl.c - `fetchtree repl`: read a statement, evaluate it, print the result.
 *
 * The C half reads lines (libedit on a terminal, plain reads otherwise),
 * compiles them and runs them in a script state (core/script.c) that has
 * ft loaded; the Lua half (lua/fetchtree/repl.lua) binds the globals,
 * formats results and errors and writes :help. Every call into Lua is
 * protected: an error prints, and the prompt stays.
 *
 * Compiling follows lua.c: a line is first tried as `return <line>`, so an
 * expression prints its value; then as a statement. A chunk whose syntax
 * error is at '<eof>' is unfinished, and the next line (prompt ">> ")
 * continues it.
 *
 * Ctrl-C: at the prompt it drops the line being typed. While a statement
 * runs, a SIGINT handler asks Lua to raise "interrupted", through a hook
 * like ft_script_interrupt's that also waits out the engine's callbacks
 * (see interrupt_hook). It is installed with SA_RESETHAND, so a second
 * Ctrl-C ends the process, for code that never gives the hook a chance
 * (a loop LuaJIT has compiled). */
#include "repl.h"

#include <editline/readline.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua_engine.h"
#include "script.h"

#define PROMPT "ft> "
#define PROMPT_MORE ">> "
#define HISTORY_MAX 1000

typedef struct repl {
  ft_script *script;
  lua_State *L;
  int tty;        /* a terminal: prompt, line editor, history */
  char *history;  /* history file, or NULL */
  char *last;     /* the line last added to the history */
  int module_ref; /* the fetchtree.repl table */
  char *buf;      /* non-terminal input: getline's buffer */
  size_t cap;
  int exiting; /* os.exit was called: leave after this statement */
  int exit_code;
  int complete_ref; /* the names completing the word at the cursor */
  int complete_i;
} repl;

/* what one read gave */
enum { READ_LINE, READ_EOF, READ_CANCEL };

static volatile sig_atomic_t got_sigint;

/* Push fetchtree.repl[name]. */
static void push_fn(repl *r, const char *name) {
  lua_rawgeti(r->L, LUA_REGISTRYINDEX, r->module_ref);
  lua_getfield(r->L, -1, name);
  lua_remove(r->L, -2);
}

/* ---- signals ------------------------------------------------------------- */

/* At the prompt: note it; the read returns early (no SA_RESTART). */
static void on_sigint_prompt(int sig) {
  (void)sig;
  got_sigint = 1;
}

/* fetchtree.engine.step (a registry reference), when ft is loaded. */
static int engine_step_ref = LUA_NOREF;

/* Is fetchtree.engine.step on the running stack? The Lua it calls back (a
 * response's dispatch) runs inside a protected call of the engine's own:
 * "interrupted" raised there would fail that callback only, and the
 * statement waiting for the response would wait for ever. */
static int inside_engine_step(lua_State *L) {
  if (engine_step_ref == LUA_NOREF)
    return 0;
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "f", &ar);
    lua_rawgeti(L, LUA_REGISTRYINDEX, engine_step_ref);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (same)
      return 1;
  }
  return 0;
}

/* Raise "interrupted" in the running Lua code; inside the engine's
 * callbacks, stay armed until the engine has returned. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (inside_engine_step(L))
    return;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

/* While a statement runs: make the Lua code raise "interrupted" (what
 * ft_script_interrupt does, with the hook above; lua_sethook is safe in a
 * signal handler). */
static lua_State *volatile interrupt_target;
static void *volatile interrupt_waker; /* wakes a waiting engine.step */

static void on_sigint_run(int sig) {
  (void)sig;
  got_sigint = 1;
  if (interrupt_target)
    lua_sethook(interrupt_target, interrupt_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  if (interrupt_waker)
    ft_lua_engine_wake(interrupt_waker);
}

static void set_sigint(void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = fn;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

/* ---- reading ------------------------------------------------------------- */

/* The history file: $FETCHTREE_HISTORY, else ~/.fetchtree_history; NULL
 * when neither can be named. */
static char *history_path(void) {
  const char *p = getenv("FETCHTREE_HISTORY");
  if (p && *p)
    return strdup(p);
  const char *home = getenv("HOME");
  if (!home || !*home)
    return NULL;
  size_t n = strlen(home) + sizeof("/.fetchtree_history");
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s/.fetchtree_history", home);
  return s;
}

/* Remember line (not blank, not the same as the one before) and save the
 * history at once, so that os.exit or a kill loses none of it. The file is
 * created 0600; errors are ignored: history is a convenience. */
static void history_add(repl *r, const char *line) {
  if (line[strspn(line, " \t")] == '\0')
    return;
  if (r->last && strcmp(r->last, line) == 0)
    return;
  free(r->last);
  r->last = strdup(line);
  add_history(line);
  if (!r->history)
    return;
  int fd = open(r->history, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  close(fd);
  write_history(r->history);
}

/* ---- completion ---------------------------------------------------------- */

/* Tab completes Lua names: globals and keywords, and fields after `a.b.`
 * or `obj:` (fetchtree.repl.complete computes them). */

static repl *completing; /* the session the editor completes for */
static char word_breaks[] = " \t\n\"\\'`@$><=;|&{(}[]),+-*/%^#~";

/* Run by lua_cpcall: fetchtree.repl.complete(text), with text (the light
 * userdata) pushed inside the protected call; a table it returns is kept
 * as the completing session's complete_ref. */
static int find_completions(lua_State *L) {
  const char *text = lua_touserdata(L, 1);
  repl *r = completing;
  push_fn(r, "complete");
  lua_pushstring(L, text);
  lua_call(L, 1, 1);
  if (lua_istable(L, -1))
    r->complete_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* The state-th name completing text, malloc'd, or NULL after the last
 * (rl_completion_matches calls it with state 0, 1, 2, ...). */
static char *complete_next(const char *text, int state) {
  repl *r = completing;
  lua_State *L = r->L;
  if (state == 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, r->complete_ref);
    r->complete_ref = LUA_NOREF;
    r->complete_i = 0;
    if (lua_cpcall(L, find_completions, (void *)text) != 0) {
      lua_pop(L, 1); /* the message: no completions, then */
      return NULL;
    }
  }
  if (r->complete_ref == LUA_NOREF)
    return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->complete_ref);
  lua_rawgeti(L, -1, ++r->complete_i);
  const char *s = lua_tostring(L, -1);
  char *out = s ? strdup(s) : NULL;
  lua_pop(L, 2);
  return out;
}

static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* no file names when nothing matches */
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, complete_next);
}

/* Read one line (without its newline) into *out, malloc'd. Returns
 * READ_LINE, READ_EOF at the end of input, or READ_CANCEL when Ctrl-C
 * dropped the line being typed. */
static int read_line(repl *r, const char *prompt, char **out) {
  *out = NULL;
  if (!r->tty) {
    ssize_t n = getline(&r->buf, &r->cap, stdin);
    if (n < 0)
      return READ_EOF;
    if (n > 0 && r->buf[n - 1] == '\n')
      r->buf[--n] = '\0';
    *out = strdup(r->buf);
    return *out ? READ_LINE : READ_EOF;
  }
  got_sigint = 0; /* on_sigint_prompt is the handler, between statements */
  char *line = readline(prompt);
  if (got_sigint) {
    /* the editor gave up on the line: start afresh on a new one */
    free(line);
    fputs("^C\n", stdout);
    fflush(stdout);
    return READ_CANCEL;
  }
  if (!line)
    return READ_EOF;
  history_add(r, line);
  *out = line;
  return READ_LINE;
}

/* ---- compiling ----------------------------------------------------------- */

/* A syntax error at the end of the chunk: more input may finish it. */
static int is_unfinished(lua_State *L) {
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  static const char mark[] = "'<eof>'";
  size_t mlen = sizeof(mark) - 1;
  return msg && len >= mlen && strcmp(msg + len - mlen, mark) == 0;
}

static int load(lua_State *L, const char *prefix, const char *code) {
  size_t plen = strlen(prefix);
  size_t clen = strlen(code);
  char *s = malloc(plen + clen + 1);
  if (!s) {
    lua_pushstring(L, "not enough memory");
    return LUA_ERRMEM;
  }
  memcpy(s, prefix, plen);
  memcpy(s + plen, code, clen + 1);
  int rc = luaL_loadbuffer(L, s, plen + clen, "=stdin");
  free(s);
  return rc;
}

/* Compile code, an expression or a statement. Returns 0 with the function
 * of a statement on the stack, or 2 with that of an expression, which
 * must be called with fetchtree.repl.values as its argument; 1 when code
 * is unfinished, or -1 on a syntax error, each with the message on the
 * stack. `=expr` is `return expr`.
 *
 * An expression runs as `return (...)(expr)`: its calls are arguments, not
 * tail calls, so an error in them still knows its line (`error("x")` says
 * "stdin:1: x"). The `)` goes on expr's last line, not a line of its own:
 * code for expr's last operation (an index: `x.y`) is placed at the `)`,
 * whose line its errors would report. That form cannot take a trailing `;`
 * or a trailing `--` comment, so the plain `return expr` is the
 * fallback. */
static int compile(lua_State *L, const char *code) {
  int is_expr = code[0] == '=';
  const char *expr = is_expr ? code + 1 : code;
  if (load(L, "return ", expr) == 0) {
    lua_pop(L, 1);
    size_t n = strlen(expr);
    char *wrapped = malloc(n + 2);
    if (wrapped) {
      memcpy(wrapped, expr, n);
      memcpy(wrapped + n, ")", 2);
      int rc = load(L, "return (...)(", wrapped);
      free(wrapped);
      if (rc == 0)
        return 2;
      lua_pop(L, 1);
    }
    return load(L, "return ", expr) == 0 ? 0 : -1;
  }
  if (is_expr)
    return is_unfinished(L) ? 1 : -1;
  int expr_unfinished = is_unfinished(L);
  if (load(L, "", code) == 0) {
    lua_remove(L, -2);
    return 0;
  }
  if (is_unfinished(L)) {
    lua_remove(L, -2);
    return 1;
  }
  if (expr_unfinished) { /* `{` or `f(`: the expression may go on */
    lua_pop(L, 1);
    return 1;
  }
  lua_remove(L, -2);
  return -1;
}

/* ---- running ------------------------------------------------------------- */

static void print_error(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fflush(stdout);
  fprintf(stderr, "%s\n", msg ? msg : "(error object is not a string)");
  fflush(stderr);
}

/* Write a string result (when there is one) on stdout. */
static void print_result(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (s) {
    fwrite(s, 1, len, stdout);
    fputc('\n', stdout);
  }
  fflush(stdout);
}

/* Is the value at idx the token os.exit raises (see repl_exit)? */
static int is_exit_token(repl *r, int idx) {
  return lua_type(r->L, idx) == LUA_TLIGHTUSERDATA &&
         lua_touserdata(r->L, idx) == r;
}

/* Run the function on the stack top (an expression's with
 * fetchtree.repl.values as its argument) and print what it returns,
 * through fetchtree.repl.show. Ctrl-C interrupts it. Returns 0, or -1 when
 * it raised (the message is printed). The function is popped. */
static int execute(repl *r, int is_expr) {
  lua_State *L = r->L;
  int base = lua_gettop(L); /* the function */
  push_fn(r, "traceback");
  lua_insert(L, base);
  if (is_expr)
    push_fn(r, "values");

  interrupt_target = L;
  interrupt_waker = ft_lua_engine_waker(L);
  ft_lua_engine_unwake(interrupt_waker);
  got_sigint = 0;
  set_sigint(on_sigint_run, SA_RESETHAND);
  int rc = lua_pcall(L, is_expr ? 1 : 0, LUA_MULTRET, base);
  if (rc == 0) {
    int n = lua_gettop(L) - base;
    push_fn(r, "show");
    lua_insert(L, base + 1);
    rc = lua_pcall(L, n, 1, base);
    if (rc == 0)
      print_result(L);
  }
  set_sigint(r->tty ? on_sigint_prompt : SIG_DFL, 0);
  interrupt_target = NULL;
  ft_lua_engine_unwake(interrupt_waker); /* one no step took */
  interrupt_waker = NULL;
  lua_sethook(L, NULL, 0, 0); /* an interrupt that came too late */
  if (rc != 0 && !is_exit_token(r, -1)) {
    if (r->tty && got_sigint) /* after the terminal's ^C */
      fputc('\n', stdout);
    print_error(L);
  }
  lua_settop(L, base - 1);
  return rc == 0 ? 0 : -1;
}

/* os.exit(code) in the REPL: leave once the statement is over, the way
 * Ctrl-D does (the Lua state closed, nothing left for the leak checker),
 * not with exit() from inside Lua. It raises the token r (a light
 * userdata) to end the statement at once; a pcall that catches it only
 * delays the exit to the statement's end. */
static int repl_exit(lua_State *L) {
  repl *r = lua_touserdata(L, lua_upvalueindex(1));
  if (lua_isboolean(L, 1))
    r->exit_code = lua_toboolean(L, 1) ? 0 : 1;
  else
    r->exit_code = (int)luaL_optinteger(L, 1, 0);
  r->exiting = 1;
  lua_pushlightuserdata(L, r);
  return lua_error(L);
}

/* Call fetchtree.repl[name]() and print the string it returns. */
static void call_print(repl *r, const char *name) {
  lua_State *L = r->L;
  int top = lua_gettop(L);
  push_fn(r, name);
  if (lua_pcall(L, 0, 1, 0) != 0)
    print_error(L);
  else
    print_result(L);
  lua_settop(L, top);
}

/* A line starting with ':' is a REPL command (a prefix will do). Returns
 * 2 to leave, else 0. */
static int command(repl *r, const char *line) {
  size_t n = strcspn(line, " \t");
  if (n > 1 &&
      (strncmp(line, ":quit", n) == 0 || strncmp(line, ":exit", n) == 0))
    return 2;
  if (n > 1 && strncmp(line, ":help", n) == 0) {
    call_print(r, "help");
    return 0;
  }
  fflush(stdout);
  fprintf(stderr, "unknown command %.*s (:help lists the commands)\n", (int)n,
          line);
  return 0;
}

/* Read and evaluate one statement, which may take several lines. Returns 1
 * at the end of input, 2 on :quit, else 0. */
static int step(repl *r) {
  char *line;
  int st = read_line(r, PROMPT, &line);
  if (st == READ_EOF)
    return 1;
  if (st == READ_CANCEL)
    return 0;
  const char *p = line + strspn(line, " \t");
  if (*p == '\0') {
    free(line);
    return 0;
  }
  if (*p == ':') {
    int quit = command(r, p);
    free(line);
    return quit;
  }
  char *code = line;
  int rc;
  while ((rc = compile(r->L, code)) == 1) {
    char *more;
    st = read_line(r, PROMPT_MORE, &more);
    if (st == READ_CANCEL) {
      lua_pop(r->L, 1);
      free(code);
      return 0;
    }
    if (st == READ_EOF) { /* say why it is unfinished */
      if (r->tty)
        fputc('\n', stdout);
      print_error(r->L);
      lua_pop(r->L, 1);
      free(code);
      return !r->tty;
    }
    lua_pop(r->L, 1);
    size_t a = strlen(code), b = strlen(more);
    char *joined = realloc(code, a + b + 2);
    if (!joined) {
      free(more);
      break;
    }
    code = joined;
    code[a] = '\n';
    memcpy(code + a + 1, more, b + 1);
    free(more);
  }
  if (rc == 0 || rc == 2)
    execute(r, rc == 2);
  else if (rc < 0) {
    print_error(r->L);
    lua_pop(r->L, 1);
  }
  free(code);
  return r->exiting ? 2 : 0;
}

/* ---- setting up ---------------------------------------------------------- */

static void usage(FILE *f) {
  fputs("usage: fetchtree repl\n"
        "\n"
        "An interactive Lua prompt (LuaJIT) with ft = require \"fetchtree\"\n"
        "loaded and get, fetch_all and run bound to ft.get, ft.fetch_all\n"
        "and ft.run. Expressions print their value; :help lists the API.\n"
        "With standard input not a terminal, statements are read line by\n"
        "line with no prompt: echo '1+1' | fetchtree repl prints 2.\n"
        "History: $FETCHTREE_HISTORY, else ~/.fetchtree_history.\n",
        f);
}

/* Load fetchtree.repl and run its setup (the globals ft, get, ...). Returns
 * 0, or -1 when the REPL's own module is broken (message printed). */
static int setup(repl *r) {
  lua_State *L = r->L;
  lua_getglobal(L, "require");
  lua_pushstring(L, "fetchtree.repl");
  if (lua_pcall(L, 1, 1, 0) != 0) {
    fprintf(stderr, "fetchtree: %s\n", lua_tostring(L, -1));
    return -1;
  }
  r->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->module_ref);
  lua_pushlightuserdata(L, r);
  lua_setfield(L, -2, "exit_token"); /* traceback passes it through */
  lua_pop(L, 1);
  lua_getglobal(L, "os");
  lua_pushlightuserdata(L, r);
  lua_pushcclosure(L, repl_exit, 1);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
  push_fn(r, "setup");
  if (lua_pcall(L, 0, 1, 0) != 0) {
    fprintf(stderr, "fetchtree: %s\n", lua_tostring(L, -1));
    return -1;
  }
  if (lua_isstring(L, -1)) /* why ft is missing: go on without it */
    fprintf(stderr, "fetchtree: the ft module is not available: %s\n",
            lua_tostring(L, -1));
  lua_pop(L, 1);
  push_fn(r, "engine_step");
  if (lua_isfunction(L, -1))
    engine_step_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_pop(L, 1);
  return 0;
}

int ft_repl_main(int argc, char **argv) {
  if (argc > 1) {
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
      usage(stdout);
      return 0;
    }
    fprintf(stderr, "fetchtree repl: unexpected argument '%s'\n", argv[1]);
    usage(stderr);
    return 2;
  }
  repl r;
  memset(&r, 0, sizeof(r));
  r.complete_ref = LUA_NOREF;
  char err[512];
  if (ft_script_new(&r.script, err, sizeof(err)) != 0) {
    fprintf(stderr, "fetchtree: %s\n", err);
    return 1;
  }
  r.L = ft_script_lua(r.script);
  if (setup(&r) != 0) {
    ft_script_free(r.script);
    return 1;
  }
  r.tty = isatty(0) && isatty(1);
  if (r.tty) {
    rl_readline_name = "fetchtree";
    completing = &r;
    rl_attempted_completion_function = complete;
    rl_completer_word_break_characters = word_breaks;
    rl_initialize();
    stifle_history(HISTORY_MAX);
    r.history = history_path();
    if (r.history)
      read_history(r.history);
    set_sigint(on_sigint_prompt, 0);
    call_print(&r, "banner");
  }
  int st;
  while ((st = step(&r)) == 0) {
  }
  if (r.tty && st == 1) { /* Ctrl-D: end the prompt's line */
    fputc('\n', stdout);
    fflush(stdout);
  }
  set_sigint(SIG_DFL, 0);
  ft_script_free(r.script);
  free(r.history);
  free(r.last);
  free(r.buf);
  return r.exit_code;
}
