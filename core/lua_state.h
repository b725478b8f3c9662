/* lua_state.h - a run's state (state.h) bound to Lua: fetchtree.core's seen,
 * journal_* and storage functions. */
#ifndef FT_LUA_STATE_H
#define FT_LUA_STATE_H

#include <stddef.h>

#include "state.h"

struct lua_State;

/* What the bindings share with script.c, which embeds it in its ft_script:
 * the state (opened on first use, at `where`: NULL for memory, else the
 * --state path) and whether the run is durable (journal: the frontier lives
 * in the state, and core.journal_done acks there). */
typedef struct ft_lua_state {
  ft_state *state;
  char *where;
  int journal;
} ft_lua_state;

/* Opens ls->state unless it is open. Returns 0 or the ft_state_open error
 * (err says why). */
int ft_lua_state_open(ft_lua_state *ls, char *err, size_t errlen);

/* Closes the state (a durable run's open batch is abandoned first: it
 * commits at checkpoints only) and frees where. */
void ft_lua_state_close(ft_lua_state *ls);

/* Sets the state bindings into the table at the top of L's stack, each with
 * ls (which must outlive L's use of them) as its upvalue: seen, journal_add,
 * journal_take, journal_done, storage, store_get, store_put, store_delete,
 * store_list, store_sql. */
void ft_lua_state_register(struct lua_State *L, ft_lua_state *ls);

#endif
